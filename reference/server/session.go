package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/agentws/agentws/reference/agent"
	"github.com/agentws/agentws/schemas/msg"
)

// Why a query's context is cancelled.
var (
	errSessionEnded = errors.New("the session ended")
	errShutdown     = errors.New("the server is shutting down")
)

// A session is the server-side state of one session_id (spec/PROTOCOL.md section 1).
type session struct {
	srv  *Server
	id   string
	user string
	log  *slog.Logger

	mu       sync.Mutex
	conn     *conn       // the live connection, or nil
	buf      frameBuffer // frames produced while conn is nil
	queue    []*query    // accepted queries waiting to run
	running  *query
	runner   bool // a goroutine runs the queue
	ended    bool
	expiry   *time.Timer // set while the session has no connection
	queryIDs int         // queries accepted so far, for their ids
}

type query struct {
	id     string
	req    agent.Request
	ctx    context.Context
	cancel context.CancelCauseFunc
}

func newSession(srv *Server, id, user string) *session {
	return &session{
		srv: srv, id: id, user: user,
		log: srv.log.With("session_id", id),
		buf: frameBuffer{maxCount: srv.cfg.BufferSize, maxBytes: srv.cfg.BufferBytes},
	}
}

// attach makes c the session's connection: c gets connected, then the frames of a
// replaced connection and the buffered frames, in order (CONN-1, CONN-2, TAKE-1). It
// returns the replaced connection, if any.
func (s *session) attach(c *conn) (old *conn, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return nil, false
	}
	frames := []frame{connectedFrame(s.id, s.srv.capabilities)}
	if old = s.conn; old != nil {
		frames = append(frames, old.closeNow(closeSessionReplaced, "session replaced")...)
	}
	frames = append(frames, s.buf.take()...)
	if s.expiry != nil {
		s.expiry.Stop()
		s.expiry = nil
	}
	s.conn = c
	c.enqueueAll(frames...)
	return old, true
}

// detach handles the end of connection c other than by disconnect: the session lives
// on for its TTL and buffers its frames (BUF-1 to BUF-3). unsent are c's frames that
// were not written.
func (s *session) detach(c *conn, unsent []frame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != c || s.ended {
		return
	}
	s.conn = nil
	for _, f := range unsent {
		s.buf.push(f)
	}
	s.expiry = time.AfterFunc(s.srv.cfg.SessionTTL, s.expire)
}

// expire ends the session when its TTL passed without a connection (BUF-6).
func (s *session) expire() {
	s.mu.Lock()
	expired := s.conn == nil && !s.ended && s.expiry != nil
	s.mu.Unlock()
	if expired {
		s.log.Info("session expired", "ttl", s.srv.cfg.SessionTTL)
		s.end(errSessionEnded)
	}
}

// end ends the session: its queries are cancelled, its buffer dropped, and it leaves
// the server's table (DISC-3, BUF-6).
func (s *session) end(cause error) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended = true
	if s.expiry != nil {
		s.expiry.Stop()
	}
	for _, q := range s.queue {
		q.cancel(cause)
	}
	s.queue = nil
	if s.running != nil {
		s.running.cancel(cause)
	}
	s.buf.take()
	s.mu.Unlock()
	s.srv.forget(s)
}

// emit sends a session-scoped frame to the live connection, or buffers it. It never
// waits for the client: a connection whose queue is full is a slow consumer, closed
// with 4002, and its queued frames go to the buffer with f.
func (s *session) emit(f frame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	if c := s.conn; c != nil {
		if c.offer(f) {
			return
		}
		s.log.Warn("slow consumer: its send queue is full; closing it with 4002 and buffering the session's frames", "send_queue", s.srv.cfg.SendQueue)
		s.srv.release(c)
		s.conn = nil
		for _, u := range c.closeNow(closeSlowConsumer, "slow consumer") {
			s.buf.push(u)
		}
		s.expiry = time.AfterFunc(s.srv.cfg.SessionTTL, s.expire)
	}
	s.buf.push(f)
}

// submit accepts a query into the queue (STREAM-7, STREAM-8). It returns the error
// frame that refuses the query instead (STREAM-9, STREAM-10), for the caller to send
// once no lock is held, or nil.
func (s *session) submit(q msg.Query) *frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	refuse := func(code msg.ErrorCode, format string, args ...any) *frame {
		f := errorFrame(s.id, code, fmt.Sprintf(format, args...))
		return &f
	}
	switch {
	case s.ended:
		return nil
	case q.SessionId != "" && q.SessionId != s.id:
		return refuse(msg.ErrorCodeSessionMismatch, "Query refused: its session_id %q is not this connection's %q", q.SessionId, s.id)
	case len(s.queue) >= s.srv.cfg.QueueDepth:
		return refuse(msg.ErrorCodeBusy, "Query refused: %d queries are already waiting in this session's queue", len(s.queue))
	}
	if !s.runner {
		if !s.srv.startRunner(s.runQueue) {
			return refuse(msg.ErrorCodeUnavailable, "Query refused: the server is shutting down")
		}
		s.runner = true
	}
	s.queryIDs++
	qu := &query{id: fmt.Sprintf("q%d", s.queryIDs)}
	qu.req = agent.Request{SessionID: s.id, QueryID: qu.id, Query: q.Query}
	if q.SystemPrompt != nil {
		qu.req.SystemPrompt = *q.SystemPrompt
	}
	if q.IncludeContext != nil {
		qu.req.IncludeContext = *q.IncludeContext
	}
	qu.ctx, qu.cancel = context.WithCancelCause(s.srv.ctx)
	s.queue = append(s.queue, qu)
	return nil
}

// runQueue runs the queued queries one at a time, in order (STREAM-7).
func (s *session) runQueue() {
	for {
		s.mu.Lock()
		if len(s.queue) == 0 || s.ended {
			s.runner = false
			s.running = nil
			s.mu.Unlock()
			return
		}
		q := s.queue[0]
		s.queue = s.queue[1:]
		s.running = q
		s.mu.Unlock()
		s.run(q)
		q.cancel(nil)
	}
}

// run streams one query (STREAM-1 to STREAM-6).
func (s *session) run(q *query) {
	log := s.log.With("query_id", q.id)
	start := time.Now()
	s.emit(sessionFrame(msg.QueryStart{Type: msg.QueryStartTypeQueryStart, Query: q.req.Query, SessionId: s.id, Timestamp: timestamp()}))
	n := 0
	var full strings.Builder
	err := s.srv.cfg.Agent.Stream(q.ctx, q.req, func(content string) error {
		n++
		full.WriteString(content)
		s.emit(sessionFrame(msg.Chunk{Type: msg.ChunkTypeChunk, Content: content, ChunkNumber: n, SessionId: s.id, Timestamp: timestamp()}))
		return nil
	})
	cause := context.Cause(q.ctx)
	switch {
	case errors.Is(cause, errSessionEnded):
		log.Info("query cancelled: the session ended", "chunks", n)
	case errors.Is(cause, errShutdown):
		log.Warn("query stopped by the shutdown", "chunks", n)
		s.emit(sessionFrame(msg.Error{Type: msg.ErrorTypeError, Code: msg.ErrorCodeUnavailable, SessionId: s.id, Timestamp: timestamp(),
			Error: "Query stopped: the server is shutting down"}))
	case err != nil:
		log.Warn("query failed", "err", err, "chunks", n)
		s.emit(sessionFrame(msg.Error{Type: msg.ErrorTypeError, Code: msg.ErrorCodeQueryFailed, SessionId: s.id, Timestamp: timestamp(),
			Error: "Query execution failed: " + err.Error()}))
	default:
		log.Info("query complete", "chunks", n, "duration", time.Since(start))
		s.emit(sessionFrame(msg.Complete{Type: msg.CompleteTypeComplete, FullResponse: full.String(), TotalChunks: n, SessionId: s.id, Timestamp: timestamp()}))
	}
}

// stats returns the number of buffered frames.
func (s *session) buffered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.len()
}

// running reports whether a query runs or waits.
func (s *session) busy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running != nil || len(s.queue) > 0
}
