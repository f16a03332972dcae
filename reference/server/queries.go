package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agentws/agentws/reference/agent"
	"github.com/agentws/agentws/schemas/msg"
	"github.com/agentws/agentws/spec"
)

// rememberedQueries is how many finished queries a session remembers (QID-4).
var rememberedQueries = spec.Defaults().RememberedQueryIDs

type query struct {
	id     string
	size   int // querySize
	req    agent.Request
	ctx    context.Context
	cancel context.CancelCauseFunc

	// Bytes of the memory budget the query holds, guarded by its session's mu: its
	// text and the answer's chunks (held), and what was reserved at its admission
	// for its query_start (start). releaseLocked gives them back.
	held, start int

	started time.Time // when it began to run; zero while it waits
}

// finishedQueries remembers a session's last finished queries by query id, oldest
// dropped first (QID-4), and their terminal messages within a byte bound: beyond it the
// oldest messages are dropped, their ids kept, so that the query still never runs
// again (a duplicate gets result_dropped).
type finishedQueries struct {
	max      int // ids
	maxBytes int // bytes of the messages held
	bytes    int
	order    []string
	last     map[string]*finished
	kept     int // order[kept:] are the ids whose message is held
	mem      *memory
}

// rememberedBound bounds what remembering a terminal frame whose strings take n bytes
// holds (heldBytes).
func rememberedBound(n int) int { return 256 + n }

type finished struct {
	terminal any // msg.Complete or msg.Error; nil once dropped
	size     int
}

// add remembers the terminal message of query id, which is not remembered yet: a
// remembered id never runs again (submit). It returns the bytes it counted as held.
func (f *finishedQueries) add(id string, terminal any) int {
	if f.last == nil {
		f.last = map[string]*finished{}
	}
	f.order = append(f.order, id)
	size := heldBytes(terminal)
	f.last[id] = &finished{terminal: terminal, size: size}
	f.bytes += size
	f.mem.add(size)
	for len(f.order) > f.max {
		f.bytes -= f.last[f.order[0]].size
		f.mem.add(-f.last[f.order[0]].size)
		delete(f.last, f.order[0])
		f.order = f.order[1:]
		f.kept = max(f.kept-1, 0)
	}
	for f.bytes > f.maxBytes && f.dropOldest() {
	}
	return size
}

// dropOldest drops the oldest message still held, keeping its id, and reports whether
// there was one.
func (f *finishedQueries) dropOldest() bool {
	if f.kept >= len(f.order) {
		return false
	}
	e := f.last[f.order[f.kept]]
	f.bytes -= e.size
	f.mem.add(-e.size)
	e.terminal, e.size = nil, 0
	f.kept++
	return true
}

// clear forgets every query and releases the bytes their messages held.
func (f *finishedQueries) clear() {
	f.mem.add(-f.bytes)
	*f = finishedQueries{}
}

// lookup returns the terminal message of the finished query id, and whether the
// session remembers id at all; a remembered id without message was dropped.
func (f *finishedQueries) lookup(id string) (terminal any, remembered bool) {
	e, ok := f.last[id]
	if !ok {
		return nil, false
	}
	return e.terminal, true
}

// heldBytes is what a remembered terminal message holds: its strings, and a bound on
// the rest.
func heldBytes(terminal any) int {
	const fixed = 256
	switch m := terminal.(type) {
	case msg.Complete:
		return fixed + len(m.FullResponse) + len(m.QueryId)
	case msg.Error:
		return fixed + len(m.Error) + len(m.QueryId)
	}
	return fixed
}

// known returns the query of the session with this id that is queued or running.
func (s *session) known(id string) *query {
	if s.running != nil && s.running.id == id {
		return s.running
	}
	for _, q := range s.queue {
		if q.id == id {
			return q
		}
	}
	return nil
}

// refusal is a connection-scoped error that refuses a client frame.
func (s *session) refusal(code msg.ErrorCode, queryID, format string, args ...any) *frame {
	return s.srv.refusal(s.id, code, queryID, format, args...)
}

// refusal is a connection-scoped error of session sid that refuses a client frame.
func (s *Server) refusal(sid string, code msg.ErrorCode, queryID, format string, args ...any) *frame {
	s.metrics.refused.WithLabelValues(string(code)).Inc()
	f := errorFrame(sid, code, queryID, fmt.Sprintf(format, args...))
	return &f
}

// submit accepts a query: it runs at once when none runs, or waits in the queue
// (STREAM-7, STREAM-8), unless its query_id names one the session knows (QID-3, QID-4).
// It returns the error frame that refuses the query (STREAM-9, STREAM-10), for the
// caller to send once no lock is held, or nil.
//
// An accepted query reserves its text and its query_start in the memory budget; a
// replayed end reserves its frame. With no room even after the reclaimer ran, it is
// refused with busy (BUF-7). Every query counts against its client's rate, but one whose
// query_id the session knows (STREAM-11).
func (s *session) submit(q msg.Query, rate *queryRate) *frame {
	need := admission(q)
	s.srv.relieve(max(need, s.replayNeed(q.QueryId))) // before s.mu: it locks other sessions
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return nil
	}
	if q.QueryId != "" {
		if s.known(q.QueryId) != nil {
			s.log.Debug("query sent again while it runs or waits: not run again", "query_id", q.QueryId) // Debug: a client may repeat it at will
			return nil
		}
		switch terminal, ok := s.finished.lookup(q.QueryId); {
		case terminal != nil:
			replay := frameBound(heldBytes(terminal))
			if !s.srv.mem.tryReserve(replay) {
				return s.overBudget(q.QueryId)
			}
			s.log.Debug("query sent again after it finished: its end replayed", "query_id", q.QueryId)
			s.spendLocked(nil, replay, 0, func() any {
				return s.emitLocked(func(seq int) any { return replayed(terminal, seq) }, true)
			})
			return nil
		case ok:
			return s.refusal(msg.ErrorCodeResultDropped, q.QueryId, "Query not run again: query %q finished, and its result is no longer held (-remembered-bytes)", q.QueryId)
		}
	}
	if ok, wait := rate.take(time.Now()); !ok {
		return s.rateLimited(q.QueryId, wait)
	}
	switch {
	case q.SessionId != "" && q.SessionId != s.id:
		return s.refusal(msg.ErrorCodeSessionMismatch, q.QueryId, "Query refused: its session_id %q is not this connection's %q", q.SessionId, s.id)
	case len(s.queue) >= s.srv.cfg.QueueDepth: // waiting behind the running one
		return s.refusal(msg.ErrorCodeBusy, q.QueryId, "Query refused: %d queries are already waiting in this session's queue", len(s.queue))
	case len(s.queue) > 0 && s.queued+querySize(q) > s.srv.cfg.QueueBytes:
		return s.refusal(msg.ErrorCodeBusy, q.QueryId, "Query refused: the %d queries waiting in this session's queue hold %d bytes of text, and this one would take them past %d", len(s.queue), s.queued, s.srv.cfg.QueueBytes)
	case !s.srv.mem.tryReserve(need):
		return s.overBudget(q.QueryId)
	}
	if !s.runner {
		if !s.srv.startRunner(s.runQueue) {
			s.srv.mem.add(-need) // the admission reserved above
			return s.refusal(msg.ErrorCodeUnavailable, q.QueryId, "Query refused: the server is shutting down")
		}
		s.runner = true
	}
	qu := s.newQuery(q)
	qu.held, qu.start = qu.size, need-qu.size
	if s.running == nil {
		s.running = qu
	} else {
		s.queue = append(s.queue, qu)
		s.queued += qu.size
	}
	return nil
}

// maxRetryAfter bounds retry_after_ms: at a vanishing rate the wait is infinite.
const maxRetryAfter = 24 * time.Hour

// rateLimited refuses a query over its client's rate (STREAM-11): the client may send
// one again after wait.
func (s *session) rateLimited(queryID string, wait time.Duration) *frame {
	return s.srv.rateLimited(s.id, queryID, wait)
}

func (s *Server) rateLimited(sid, queryID string, wait time.Duration) *frame {
	wait = min(wait, maxRetryAfter) // a rate so low that the next query is ages away
	ms := max(1, int((wait+time.Millisecond-1)/time.Millisecond))
	s.metrics.refused.WithLabelValues(string(msg.ErrorCodeRateLimited)).Inc()
	f := refusalFrame(msg.Error{
		Code: msg.ErrorCodeRateLimited, SessionId: sid, QueryId: queryID, RetryAfterMs: ms,
		Error: fmt.Sprintf("Query refused: this client sends queries faster than the server allows (%g a second, in bursts of %d); retry in %v", s.cfg.QueryRate, s.cfg.QueryBurst, time.Duration(ms)*time.Millisecond),
	})
	return &f
}

// admission is what an accepted query reserves of the memory budget: its text, held
// until it ends, and its query_start, which echoes the query.
func admission(q msg.Query) int { return querySize(q) + frameBound(len(q.Query)) }

// replayNeed is what replaying the end of the finished query id would reserve, 0 when
// the session holds none.
func (s *session) replayNeed(id string) int {
	if id == "" {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if terminal, _ := s.finished.lookup(id); terminal != nil {
		return frameBound(heldBytes(terminal))
	}
	return 0
}

// overBudget refuses a query when what the server holds leaves no room for it (BUF-7).
func (s *session) overBudget(queryID string) *frame {
	return s.refusal(msg.ErrorCodeBusy, queryID, "Query refused: the server holds %d bytes for its clients, and its budget of %d (-max-memory-bytes) has no room for this query's text and frames even after shedding what sessions hold for resumes and repeated query ids; try again when queries finish or sessions end", s.srv.mem.held.Load(), s.srv.mem.max)
}

// relieve runs the reclaimer at once when reserving n bytes would not fit the budget.
// The caller holds no session's mu.
func (s *Server) relieve(n int) {
	if s.mem.held.Load()+int64(n) <= s.mem.max {
		return
	}
	s.mem.want.Store(int64(n))
	s.reclaimPass()
	s.mem.want.CompareAndSwap(int64(n), 0)
}

// releaseLocked gives back the bytes q holds of the memory budget; s.mu is held.
func (s *session) releaseLocked(q *query) {
	s.srv.mem.add(-(q.held + q.start))
	q.held, q.start = 0, 0
}

// querySize is the bytes of text a query holds while it waits (STREAM-8): its query
// and system prompt.
func querySize(q msg.Query) int {
	n := len(q.Query)
	if q.SystemPrompt != nil {
		n += len(*q.SystemPrompt)
	}
	return n
}

// newQuery makes the query to run for q, assigning its id when it has none (QID-2).
func (s *session) newQuery(q msg.Query) *query {
	qu := &query{id: q.QueryId, size: querySize(q)}
	if qu.id == "" {
		s.queryIDs++
		qu.id = fmt.Sprintf("auto-%d", s.queryIDs)
	}
	qu.req = agent.Request{SessionID: s.id, QueryID: qu.id, Query: q.Query}
	if q.SystemPrompt != nil {
		qu.req.SystemPrompt = *q.SystemPrompt
	}
	if q.IncludeContext != nil {
		qu.req.IncludeContext = *q.IncludeContext
	}
	qu.ctx, qu.cancel = context.WithCancelCause(s.srv.ctx)
	return qu
}

// replayed returns a finished query's terminal message again, with a new seq and
// replayed true (QID-4).
func replayed(terminal any, seq int) any {
	yes := true
	switch m := terminal.(type) {
	case msg.Complete:
		m.Seq, m.Replayed, m.Timestamp = seq, &yes, timestamp()
		return m
	case msg.Error:
		m.Seq, m.Replayed, m.Timestamp = seq, &yes, timestamp()
		return m
	}
	panic(fmt.Sprintf("replayed: %T is no terminal message", terminal))
}

// cancelQuery stops a queued or running query (CANCEL-1, CANCEL-2); for any other id it
// returns the refusal to send (CANCEL-3). A queued query leaves the queue, ends with its
// error and is remembered as finished in one critical section: the same query_id sent
// again meanwhile is never taken for a new query.
func (s *session) cancelQuery(id string) *frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running != nil && s.running.id == id {
		s.running.cancel(errCancelled)
		return nil
	}
	i := slices.IndexFunc(s.queue, func(q *query) bool { return q.id == id })
	if i < 0 {
		return s.refusal(msg.ErrorCodeUnknownQuery, id, "No query %q is queued or running in this session", id)
	}
	q := s.queue[i]
	s.queue = slices.Delete(s.queue, i, i+1)
	s.queued -= q.size
	q.cancel(errCancelled)
	s.finishLocked(q, errorBuilder(s.id, q.id, msg.ErrorCodeCancelled, "Query cancelled by the client before it started"), true)
	return nil
}

// endQuery ends a query with an error frame (STREAM-6, CANCEL-1, CANCEL-2). The frame
// is small (errorText), and counted without a reservation.
func (s *session) endQuery(q *query, code msg.ErrorCode, text string) {
	s.finish(q, 0, errorBuilder(s.id, q.id, code, errorText(text)))
}

// maxErrorText bounds the text of an error frame: one that ends a query may quote the
// agent's error, a refusal the client's frame.
const maxErrorText = 512

// errorText cuts text to maxErrorText bytes, at a character boundary.
func errorText(text string) string { return clip(text, maxErrorText) }

// errorBuilder builds the error frame that ends a query, for a seq.
func errorBuilder(sessionID, queryID string, code msg.ErrorCode, text string) func(seq int) any {
	return func(seq int) any {
		return msg.Error{Type: msg.ErrorTypeError, Code: code, Error: text, SessionId: sessionID, QueryId: queryID, Seq: seq, Timestamp: timestamp()}
	}
}

// finish sends a query's terminal frame once the connection has room for it
// (awaitRoom), remembers it for a query sent again with the same id (QID-4), and marks
// the query done, in one critical section: a query sent again right after its terminal
// frame is never taken for a running one. It is the runner's; a cancelled query's
// terminal frame waits too. The frame and the remembered result draw on reserved bytes
// of the memory budget first.
func (s *session) finish(q *query, reserved int, build func(seq int) any) {
	stalled, _ := s.awaitRoom(nil)
	defer s.mu.Unlock()
	if stalled != nil {
		s.dropSlowLocked(stalled, "slow consumer: its send queue stayed full for the write timeout; closing it with 4002 and buffering the session's frames")
	}
	s.spendLocked(nil, reserved, 0, func() any {
		s.finishLocked(q, build, false)
		return nil
	})
}

// finishLocked is finish with s.mu held, for the runner or, answer, for a cancel: the
// query's end is counted in the metrics by its terminal frame, the bytes q held are
// given back, and when q was the running query, the next one in the queue becomes the
// running one.
func (s *session) finishLocked(q *query, build func(seq int) any, answer bool) {
	m := s.emitLocked(build, answer)
	s.srv.metrics.queryEnded(m, q.started)
	if m != nil {
		s.useCreditLocked(s.finished.add(q.id, m))
	}
	s.releaseLocked(q)
	if s.running == q {
		s.advanceLocked()
	}
}

// advanceLocked makes the first waiting query the running one, or none. s.mu is held.
func (s *session) advanceLocked() {
	s.running = nil
	if len(s.queue) > 0 {
		s.running = s.queue[0]
		s.queued -= s.running.size
		s.queue[0] = nil
		s.queue = s.queue[1:]
	}
}

// runQueue runs the session's queries one at a time, in order (STREAM-7): the running
// one, until none is left. A query that ends without a terminal frame (its session
// ended) is passed here.
func (s *session) runQueue() {
	for {
		s.mu.Lock()
		q := s.running
		if q == nil || s.ended {
			s.runner = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		s.run(q)
		q.cancel(nil)
		s.mu.Lock()
		s.releaseLocked(q)
		if s.running == q {
			s.advanceLocked()
		}
		s.mu.Unlock()
	}
}

// run streams one query (STREAM-1 to STREAM-6), its query_id on every frame (QID-1).
// Each frame waits for room in the connection's send queue (emitPaced), so a client
// that reads paces the agent; a cancel stops the wait of a chunk at once, and the chunk
// is not sent. query_start always goes (STREAM-1), with the bytes reserved at the
// query's admission. Each chunk, and the complete with its remembered result, first
// reserves its bytes of the memory budget, waiting at most the write timeout for room:
// the chunks' text stays held for the complete. A query that finds no room ends with
// unavailable (BUF-7).
func (s *session) run(q *query) {
	log := s.log.With("query_id", q.id)
	q.started = time.Now()
	start := q.started
	s.emitPaced(q, nil, 0, 0, func(seq int) any {
		return msg.QueryStart{Type: msg.QueryStartTypeQueryStart, Query: q.req.Query, SessionId: s.id, QueryId: q.id, Seq: seq, Timestamp: timestamp()}
	})
	patience := s.srv.cfg.WriteTimeout
	var parts []string
	size := 0
	err := s.srv.cfg.Agent.Stream(q.ctx, q.req, func(content string) error {
		number := len(parts) + 1
		if number == 1 {
			s.srv.metrics.firstChunk.Observe(time.Since(start).Seconds())
		}
		keep := len(content) + partOverhead
		need := frameBound(len(content)) + keep
		if err := s.srv.mem.reserve(need, q.ctx.Done(), patience); err != nil {
			if errors.Is(err, errStopped) {
				return context.Cause(q.ctx)
			}
			return err
		}
		if !s.emitPaced(q, q.ctx.Done(), need, keep, func(seq int) any {
			return msg.Chunk{Type: msg.ChunkTypeChunk, Content: content, ChunkNumber: number, SessionId: s.id, QueryId: q.id, Seq: seq, Timestamp: timestamp()}
		}) {
			return context.Cause(q.ctx)
		}
		parts = append(parts, content)
		size += len(content)
		return nil
	})
	n := len(parts)
	reserved := 0
	if err == nil && context.Cause(q.ctx) == nil {
		need := frameBound(size) + rememberedBound(size+len(q.id))
		switch rerr := s.srv.mem.reserve(need, q.ctx.Done(), patience); {
		case rerr == nil:
			reserved = need
		case errors.Is(rerr, errNoRoom):
			err = rerr
		}
	}
	switch cause := context.Cause(q.ctx); {
	case errors.Is(cause, errSessionEnded):
		log.Info("query cancelled: the session ended", "chunks", n)
		s.srv.metrics.queryEnded(nil, start)
	case errors.Is(cause, errCancelled):
		log.Info("query cancelled by the client", "chunks", n)
		s.endQuery(q, msg.ErrorCodeCancelled, "Query cancelled by the client")
	case errors.Is(cause, errShutdown):
		log.Warn("query stopped by the shutdown", "chunks", n)
		s.endQuery(q, msg.ErrorCodeUnavailable, "Query stopped: the server is shutting down")
	case errors.Is(err, errNoRoom):
		log.Warn("query stopped: no room in the memory budget for its answer", "chunks", n, "max_memory_bytes", s.srv.cfg.MaxMemoryBytes, "waited", patience)
		s.endQuery(q, msg.ErrorCodeUnavailable, fmt.Sprintf("Query stopped: the server's memory budget (-max-memory-bytes) had no room for its answer for %s", patience))
	case err != nil:
		log.Warn("query failed", "err", err, "chunks", n)
		s.endQuery(q, msg.ErrorCodeQueryFailed, "Query execution failed: "+agent.Public(err)) // the detail is the log's
	default:
		log.Info("query complete", "chunks", n, "duration", time.Since(start))
		full := strings.Join(parts, "")
		parts = nil
		s.finish(q, reserved, func(seq int) any {
			return msg.Complete{Type: msg.CompleteTypeComplete, FullResponse: full, TotalChunks: n, SessionId: s.id, QueryId: q.id, Seq: seq, Timestamp: timestamp()}
		})
		return
	}
	s.srv.mem.add(-reserved)
}

// partOverhead bounds what keeping one chunk's text for the complete holds besides the
// text: its place in a slice of strings.
const partOverhead = 16
