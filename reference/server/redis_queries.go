package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/agentws/agentws/reference/agent"
	"github.com/agentws/agentws/schemas/msg"
)

// seqMark stands for a frame's seq when it is encoded before Redis numbers it: the
// scripts splice the seq between the bytes before and after it.
const seqMark = 1<<52 + 7

var seqMarkBytes = []byte(`"seq":` + strconv.Itoa(seqMark))

// splice encodes the message that build makes, as the halves around its seq.
func splice(build func(seq int) any) []string {
	data := encode(build(seqMark)).data
	i := bytes.Index(data, seqMarkBytes)
	if i < 0 {
		panic(fmt.Sprintf("splice: %s carries no seq", data))
	}
	cut := i + len(`"seq":`)
	return []string{string(data[:cut]), string(data[cut+len(seqMarkBytes)-len(`"seq":`):])}
}

// A redisQuery is a query of the Redis store that this node runs.
type redisQuery struct {
	sid    string
	id     string
	req    agent.Request
	ctx    context.Context
	cancel context.CancelCauseFunc
}

// queuedRequest is what a queue entry holds of a query.
type queuedRequest struct {
	Query          string `json:"query"`
	SystemPrompt   string `json:"system_prompt,omitempty"`
	IncludeContext bool   `json:"include_context,omitempty"`
}

// submit is session.submit for the Redis store: the checks and the queueing are one
// script, so that a query_id is never taken for a new query on two nodes at once.
func (rs *redisSession) submit(q msg.Query, rate *queryRate) *frame {
	st := rs.st
	ok, wait, refund := rate.takeOrRefund(time.Now())
	req := queuedRequest{Query: q.Query}
	if q.SystemPrompt != nil {
		req.SystemPrompt = *q.SystemPrompt
	}
	if q.IncludeContext != nil {
		req.IncludeContext = *q.IncludeContext
	}
	body, _ := json.Marshal(req)
	flag := func(b bool) string {
		if b {
			return "1"
		}
		return "0"
	}
	mismatch := q.SessionId != "" && q.SessionId != rs.id
	res, err := st.call(st.lua.submit, []string{redisPrefix + "s:" + rs.id, redisPrefix + "q:" + rs.id, redisPrefix + "f:" + rs.id},
		rs.id, st.node, q.QueryId, strconv.Itoa(querySize(q)), string(body),
		strconv.Itoa(st.srv.cfg.QueueDepth), strconv.Itoa(st.srv.cfg.QueueBytes), flag(!ok), flag(mismatch))
	if err != nil {
		refund()
		return st.srv.refusal(rs.id, msg.ErrorCodeUnavailable, q.QueryId, "Query refused: %v; try again later", errStoreDown)
	}
	switch str(res[0]) {
	case "ended":
		refund()
		rs.mu.Lock()
		c := rs.conn
		rs.mu.Unlock()
		if c != nil {
			rs.lost(c)
		}
	case "known":
		refund()
	case "replay":
		refund()
		st.replay(rs, q.QueryId, str(res[1]))
	case "dropped":
		refund()
		return st.srv.refusal(rs.id, msg.ErrorCodeResultDropped, q.QueryId, "Query not run again: query %q finished, and its result is no longer held (-remembered-bytes)", q.QueryId)
	case "limited":
		return st.srv.rateLimited(rs.id, q.QueryId, wait)
	case "mismatch":
		return st.srv.refusal(rs.id, msg.ErrorCodeSessionMismatch, q.QueryId, "Query refused: its session_id %q is not this connection's %q", q.SessionId, rs.id)
	case "busy_depth":
		return st.srv.refusal(rs.id, msg.ErrorCodeBusy, q.QueryId, "Query refused: %d queries are already waiting in this session's queue", num(res[1]))
	case "busy_bytes":
		return st.srv.refusal(rs.id, msg.ErrorCodeBusy, q.QueryId, "Query refused: the %d queries waiting in this session's queue hold %d bytes of text, and this one would take them past %d", num(res[1]), num(res[2]), st.srv.cfg.QueueBytes)
	case "run":
		st.startRunner(rs.id, str(res[2]))
	}
	return nil
}

// replay emits again the terminal frame of a finished query, with a new seq and
// replayed true (QID-4).
func (st *redisStore) replay(rs *redisSession, qid, stored string) {
	var head struct {
		Type string `json:"type"`
	}
	json.Unmarshal([]byte(stored), &head)
	var terminal any
	switch head.Type {
	case "complete":
		var m msg.Complete
		json.Unmarshal([]byte(stored), &m)
		terminal = m
	default:
		var m msg.Error
		json.Unmarshal([]byte(stored), &m)
		terminal = m
	}
	if _, _, err := st.emit(rs.id, "", "", splice(func(seq int) any { return replayed(terminal, seq) })); err != nil {
		rs.log.Warn("could not replay the end of a finished query", "query_id", qid, "err", err)
	}
}

// Why a query's frames were not stored.
var (
	errLost = errors.New("the query is no longer this node's to run")
)

// emit stores and delivers frames of query qid (or, with qid empty, an answer of the
// session), each as spliced halves, once however often batch (unique to them; "": no
// name) is retried, and returns the last seq and how many frames the
// session's connection is behind (deliver). It retries while Redis does not answer,
// for at most the write timeout.
func (st *redisStore) emit(sid, qid, batch string, halves ...[]string) (seq, lag int, err error) {
	args := []string{sid, st.node, qid, strconv.Itoa(st.srv.cfg.BufferSize), strconv.Itoa(st.srv.cfg.BufferBytes), batch}
	for _, h := range halves {
		args = append(args, h...)
	}
	res, err := st.retry(func() ([]any, error) {
		r, err := st.call(st.lua.emit, sessionKeys(sid)[:2], args...)
		return anyOf(r), err
	})
	if err != nil {
		return 0, 0, err
	}
	switch res[0] {
	case "lost":
		return 0, 0, errLost
	case "cancelled":
		return 0, 0, errCancelled
	}
	return res[1].(int), res[2].(int), nil
}

// pace waits, while the session's connection is more than half the buffer's frames
// behind seq, for its node to acknowledge more (ack.lua): a client that reads paces the
// query, as the memory store's full send queue does, and the history never drops a
// frame the connection has not had. It stops waiting when the session has no
// connection (its frames are buffered), when the query stops, and after twice the
// write timeout, the connection's own bound.
func (st *redisStore) pace(q *redisQuery, seq int) {
	window := max(1, st.srv.cfg.BufferSize/2)
	deadline := time.Now().Add(2 * st.srv.cfg.WriteTimeout)
	wait := 2 * time.Millisecond
	for time.Now().Before(deadline) {
		select {
		case <-time.After(wait): // polling the acknowledgements, which the reader's node writes
		case <-q.ctx.Done():
			return
		}
		wait = min(2*wait, 50*time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), storeCallTimeout)
		m, err := st.client.Do(ctx, st.client.B().Hmget().Key(redisPrefix+"s:"+q.sid).Field("owner", "acked").Build()).ToArray()
		cancel()
		st.noteCall(err)
		if err != nil {
			continue
		}
		owner, _ := m[0].ToString()
		acked, _ := m[1].AsInt64()
		if owner == "" || seq-int(acked) <= window {
			return
		}
	}
}

// anyOf turns a script's reply into strings and ints.
func anyOf(r []rueidis.RedisMessage) []any {
	out := make([]any, len(r))
	for i, m := range r {
		if n, err := m.ToInt64(); err == nil {
			out[i] = int(n)
		} else {
			out[i] = str(m)
		}
	}
	return out
}

// retry calls fn until it succeeds, for at most the write timeout, while Redis does
// not answer.
func (st *redisStore) retry(fn func() ([]any, error)) ([]any, error) {
	deadline := time.Now().Add(st.srv.cfg.WriteTimeout)
	wait := 20 * time.Millisecond
	for {
		res, err := fn()
		if err == nil || !errors.Is(err, errStoreDown) || time.Now().After(deadline) {
			return res, err
		}
		select {
		case <-time.After(wait):
		case <-st.srv.ctx.Done():
			return nil, err
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// startRunner runs, on this node, the queue of session sid from its entry.
func (st *redisStore) startRunner(sid, entry string) {
	if entry == "" {
		return
	}
	if !st.srv.startRunner(func() {
		for entry != "" {
			entry = st.run(sid, entry)
		}
	}) {
		// The server stops: the query goes back to the queue, for a node that does not.
		if _, err := st.call(st.lua.unclaim, []string{redisPrefix + "s:" + sid, redisPrefix + "q:" + sid}, sid, st.node, entry); err != nil {
			st.log.Warn("a query given to this node as it stops could not be given back: a node will end it once this node's lease lapses", "session_id", sid, "err", err)
		}
	}
}

// parseEntry reads a queue entry: "id\nsize\nrequest".
func parseEntry(sid, entry string) (*redisQuery, error) {
	id, rest, ok1 := strings.Cut(entry, "\n")
	_, body, ok2 := strings.Cut(rest, "\n")
	var req queuedRequest
	if !ok1 || !ok2 || json.Unmarshal([]byte(body), &req) != nil {
		return nil, fmt.Errorf("malformed queue entry %q", clip(entry, maxLogValue))
	}
	return &redisQuery{sid: sid, id: id, req: agent.Request{SessionID: sid, QueryID: id, Query: req.Query, SystemPrompt: req.SystemPrompt, IncludeContext: req.IncludeContext}}, nil
}

// run streams one query of the Redis store (STREAM-1 to STREAM-6) and returns the
// entry of the next one this node is to run, if any.
func (st *redisStore) run(sid, entry string) string {
	q, err := parseEntry(sid, entry)
	if err != nil {
		st.log.Error("queue entry not run", "session_id", sid, "err", err)
		return ""
	}
	log := st.log.With("session_id", sid, "query_id", q.id)
	q.ctx, q.cancel = context.WithCancelCause(st.srv.ctx)
	defer q.cancel(nil)
	st.mu.Lock()
	st.queries[sid] = q
	st.mu.Unlock()
	defer func() {
		st.mu.Lock()
		if st.queries[sid] == q {
			delete(st.queries, sid)
		}
		st.mu.Unlock()
	}()
	start := time.Now()
	_, _, err = st.emit(sid, q.id, st.node+" "+q.id+"#0", splice(func(seq int) any {
		return msg.QueryStart{Type: msg.QueryStartTypeQueryStart, Query: q.req.Query, SessionId: sid, QueryId: q.id, Seq: seq, Timestamp: timestamp()}
	}))
	var parts []string
	held := 0 // bytes of the memory budget the answer holds
	defer func() { st.srv.mem.add(-held) }()
	if err == nil {
		e := newEmitter(st, q)
		err = st.srv.cfg.Agent.Stream(q.ctx, q.req, func(content string) error {
			number := len(parts) + 1
			if number == 1 {
				st.srv.metrics.firstChunk.Observe(time.Since(start).Seconds())
			}
			need := len(content) + partOverhead
			if err := st.srv.mem.reserve(need, q.ctx.Done(), st.srv.cfg.WriteTimeout); err != nil {
				if errors.Is(err, errStopped) {
					return context.Cause(q.ctx)
				}
				return err
			}
			held += need
			if err := e.add(splice(func(seq int) any {
				return msg.Chunk{Type: msg.ChunkTypeChunk, Content: content, ChunkNumber: number, SessionId: sid, QueryId: q.id, Seq: seq, Timestamp: timestamp()}
			})); err != nil {
				return err
			}
			parts = append(parts, content)
			return nil
		})
		if ferr := e.wait(); err == nil {
			err = ferr
		}
	}
	n := len(parts)
	var build func(seq int) any
	switch cause := context.Cause(q.ctx); {
	case errors.Is(cause, errLost), errors.Is(err, errLost), errors.Is(cause, errSessionEnded):
		log.Info("query stopped: its session ended, or another node ended it", "chunks", n)
		st.srv.metrics.queryEnded(nil, start)
		return ""
	case errors.Is(cause, errCancelled), errors.Is(err, errCancelled):
		log.Info("query cancelled by the client", "chunks", n)
		build = errorBuilder(sid, q.id, msg.ErrorCodeCancelled, "Query cancelled by the client")
	case errors.Is(cause, errShutdown):
		log.Warn("query stopped by the shutdown", "chunks", n)
		build = errorBuilder(sid, q.id, msg.ErrorCodeUnavailable, "Query stopped: the server is shutting down")
	case errors.Is(err, errNoRoom):
		log.Warn("query stopped: no room in the memory budget for its answer", "chunks", n, "max_memory_bytes", st.srv.cfg.MaxMemoryBytes)
		build = errorBuilder(sid, q.id, msg.ErrorCodeUnavailable, fmt.Sprintf("Query stopped: the server's memory budget (-max-memory-bytes) had no room for its answer for %s", st.srv.cfg.WriteTimeout))
	case errors.Is(err, errStoreDown), errors.Is(cause, errStoreDown):
		log.Warn("query stopped: the session store did not answer", "chunks", n, "err", err)
		build = errorBuilder(sid, q.id, msg.ErrorCodeUnavailable, "Query stopped: the session store could not be reached")
	case err != nil:
		log.Warn("query failed", "err", err, "chunks", n)
		build = errorBuilder(sid, q.id, msg.ErrorCodeQueryFailed, "Query execution failed: "+agent.Public(err))
	default:
		log.Info("query complete", "chunks", n, "duration", time.Since(start))
		full := strings.Join(parts, "")
		build = func(seq int) any {
			return msg.Complete{Type: msg.CompleteTypeComplete, FullResponse: full, TotalChunks: n, SessionId: sid, QueryId: q.id, Seq: seq, Timestamp: timestamp()}
		}
	}
	return st.finish(sid, q, start, build)
}

// finish stores the terminal frame of q and returns the next entry to run. While Redis
// does not answer it keeps trying, until the server stops: the query is this node's,
// and no other will end it while the node renews its lease.
func (st *redisStore) finish(sid string, q *redisQuery, start time.Time, build func(seq int) any) string {
	h := splice(build)
	draining := "0"
	if st.srv.draining.Load() {
		draining = "1"
	}
	args := []string{sid, st.node, q.id, strconv.Itoa(st.srv.cfg.BufferSize), strconv.Itoa(st.srv.cfg.BufferBytes), h[0], h[1],
		strconv.Itoa(rememberedQueries), strconv.Itoa(st.srv.cfg.RememberedBytes), draining}
	wait := 20 * time.Millisecond
	giveUp := time.Time{} // once the server stops: a write timeout later
	for {
		res, err := st.call(st.lua.finish, sessionKeys(sid), args...)
		if err == nil {
			switch str(res[0]) {
			case "lost":
				st.srv.metrics.queryEnded(nil, start)
				return ""
			case "next":
				st.srv.metrics.queryEnded(build(0), start)
				return str(res[1])
			}
			st.srv.metrics.queryEnded(build(0), start)
			return ""
		}
		if st.srv.ctx.Err() != nil {
			if giveUp.IsZero() {
				giveUp = time.Now().Add(st.srv.cfg.WriteTimeout)
			} else if time.Now().After(giveUp) {
				st.log.Error("query end not stored: the session store did not answer before the server stopped; a node will end it when this node's lease lapses", "session_id", sid, "query_id", q.id, "err", err)
				return ""
			}
		}
		time.Sleep(wait) // a backoff while Redis does not answer
		wait = min(2*wait, time.Second)
	}
}

// stopQuery stops the query this node runs for session sid: with qid, only that one.
func (st *redisStore) stopQuery(sid, qid string, cause error) {
	st.mu.Lock()
	q := st.queries[sid]
	st.mu.Unlock()
	if q != nil && (qid == "" || q.id == qid) {
		q.cancel(cause)
	}
}

// cancelQuery is session.cancelQuery for the Redis store (CANCEL-1 to CANCEL-3).
func (rs *redisSession) cancelQuery(id string) *frame {
	st := rs.st
	h := splice(errorBuilder(rs.id, id, msg.ErrorCodeCancelled, "Query cancelled by the client before it started"))
	res, err := st.call(st.lua.cancel, sessionKeys(rs.id), rs.id, id, strconv.Itoa(st.srv.cfg.BufferSize), strconv.Itoa(st.srv.cfg.BufferBytes),
		h[0], h[1], strconv.Itoa(rememberedQueries), strconv.Itoa(st.srv.cfg.RememberedBytes))
	if err != nil {
		return st.srv.refusal(rs.id, msg.ErrorCodeUnavailable, id, "Cancel not done: %v; try again", errStoreDown)
	}
	if str(res[0]) == "unknown" {
		return st.srv.refusal(rs.id, msg.ErrorCodeUnknownQuery, id, "No query %q is queued or running in this session", id)
	}
	return nil
}

// claim runs, on this node, the first queued query of session sid if none runs.
func (st *redisStore) claim(sid string) { st.orphan(sid, "", "") }

// orphan ends, in session sid, what node dead left: its connection (the session goes
// offline) and its query qid (an unavailable error); the next queued query, or with
// dead empty the first when none runs, becomes this node's to run.
func (st *redisStore) orphan(sid, dead, qid string) error { return st.endLeft(sid, dead, qid, true) }

// endLeft is orphan; with detach false it leaves the session's connection alone.
func (st *redisStore) endLeft(sid, dead, qid string, detach bool) error {
	flag := "0"
	if detach {
		flag = "1"
	}
	h := splice(errorBuilder(sid, qid, msg.ErrorCodeUnavailable, "Query stopped: the server node running it stopped without finishing it"))
	res, err := st.call(st.lua.orphan, sessionKeys(sid), sid, dead, st.node, qid, strconv.Itoa(st.srv.cfg.BufferSize), strconv.Itoa(st.srv.cfg.BufferBytes),
		h[0], h[1], strconv.Itoa(rememberedQueries), strconv.Itoa(st.srv.cfg.RememberedBytes), strconv.FormatInt(st.srv.cfg.SessionTTL.Milliseconds(), 10), flag)
	if err != nil {
		st.log.Warn("could not end what a stopped node left", "session_id", sid, "node", dead, "err", err)
		return err
	}
	if str(res[0]) == "next" {
		st.startRunner(sid, str(res[1]))
	}
	return nil
}

// sweep ends what the nodes whose lease lapsed left: their queries end with
// unavailable, their connections' sessions go offline.
func (st *redisStore) sweep() {
	ctx, cancel := context.WithTimeout(context.Background(), storeCallTimeout)
	defer cancel()
	lapsed := time.Now().Add(-st.srv.cfg.NodeLease).UnixMilli()
	dead, err := st.client.Do(ctx, st.client.B().Zrangebyscore().Key(redisNodes).Min("-inf").Max(strconv.FormatInt(lapsed, 10)).Build()).AsStrSlice()
	st.noteCall(err)
	if err != nil {
		return
	}
	for _, node := range dead {
		if node == st.node {
			continue
		}
		runsKey, ownsKey := redisPrefix+"n:"+node+":runs", redisPrefix+"n:"+node+":owns"
		sids, err := st.client.Do(ctx, st.client.B().Sunion().Key(runsKey, ownsKey).Build()).AsStrSlice()
		if err != nil {
			return
		}
		st.log.Warn("a node's lease lapsed: ending its queries and taking its sessions offline", "lapsed_node", node, "sessions", len(sids))
		for _, sid := range sids {
			running, err := st.client.Do(ctx, st.client.B().Hmget().Key(redisPrefix+"s:"+sid).Field("running", "runner").Build()).ToArray()
			if err != nil {
				return
			}
			qid := ""
			if str(running[1]) == node {
				qid = str(running[0])
			}
			if st.orphan(sid, node, qid) != nil {
				return // the next sweep tries again: the node's sets and lease stay
			}
		}
		st.client.Do(ctx, st.client.B().Del().Key(runsKey, ownsKey).Build())
		st.client.Do(ctx, st.client.B().Hdel().Key(redisActive).Field(node).Build())
		st.client.Do(ctx, st.client.B().Zrem().Key(redisNodes).Member(node).Build())
	}
}

// An emitter stores the chunks of a running query in batches: the agent hands over a
// chunk and goes on while the previous batch is on its way to Redis, and the chunks
// handed over meanwhile go in the next one, a script call for them all. It holds at
// most maxBatch frames (and half the buffer's, the pace's window), or the send queue's
// bytes, waiting; beyond, the agent waits.
type emitter struct {
	st       *redisStore
	q        *redisQuery
	mu       sync.Mutex
	cond     sync.Cond
	pending  [][]string
	bytes    int
	flushing bool
	err      error
	batches  int // batches sent, each named for emit's retries
}

// maxBatch bounds the frames of one emit.
const maxBatch = 64

func newEmitter(st *redisStore, q *redisQuery) *emitter {
	e := &emitter{st: st, q: q}
	e.cond.L = &e.mu
	return e
}

// add queues the halves of a frame for the next batch; it returns the error of an
// earlier batch (the query was cancelled, lost, or Redis does not answer).
func (e *emitter) add(halves []string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for e.err == nil && (len(e.pending) >= min(maxBatch, max(1, e.st.srv.cfg.BufferSize/2)) || e.bytes >= e.st.srv.cfg.SendQueueBytes) {
		e.cond.Wait()
	}
	if e.err != nil {
		return e.err
	}
	e.pending = append(e.pending, halves)
	e.bytes += len(halves[0]) + len(halves[1])
	if !e.flushing {
		e.flushing = true
		go e.flush()
	}
	return nil
}

func (e *emitter) flush() {
	for {
		e.mu.Lock()
		batch := e.pending
		e.pending, e.bytes = nil, 0
		if len(batch) == 0 || e.err != nil {
			e.flushing = false
			e.cond.Broadcast()
			e.mu.Unlock()
			return
		}
		e.cond.Broadcast()
		e.mu.Unlock()
		e.batches++
		seq, lag, err := e.st.emit(e.q.sid, e.q.id, e.st.node+" "+e.q.id+"#"+strconv.Itoa(e.batches), batch...)
		if err != nil {
			e.mu.Lock()
			e.err = err
			e.mu.Unlock()
			e.q.cancel(err)
			continue
		}
		if lag > max(1, e.st.srv.cfg.BufferSize/2) {
			e.st.pace(e.q, seq)
		}
	}
}

// wait waits until every frame added was stored, and returns the error that stopped
// one, if any.
func (e *emitter) wait() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for e.flushing {
		e.cond.Wait()
	}
	return e.err
}
