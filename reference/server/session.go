package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/agentws/agentws/schemas/msg"
)

// Why a query's context is cancelled.
var (
	errSessionEnded = errors.New("the session ended")
	errShutdown     = errors.New("the server is shutting down")
	errCancelled    = errors.New("cancelled by the client")
)

// A session is the server-side state of one session_id (spec/PROTOCOL.md section 1).
type session struct {
	srv   *Server
	id    string
	user  string
	epoch string // the identity of this session's history (SEQ-5)
	log   *slog.Logger

	mu       sync.Mutex
	conn     *conn       // the live connection, or nil
	buf      frameBuffer // frames produced while conn is nil (BUF-3)
	hist     frameBuffer // the last session-scoped frames, delivered or not (SEQ-2)
	seq      int         // the seq of the last session-scoped frame (SEQ-1)
	queue    []*query    // accepted queries waiting to run
	running  *query
	runner   bool // a goroutine runs the queue
	ended    bool
	expiry   *time.Timer // set while the session has no connection
	queryIDs int         // query ids assigned so far
	finished finishedQueries
}

func newSession(srv *Server, id, user string) *session {
	epoch := make([]byte, 6)
	rand.Read(epoch)
	bounds := frameBuffer{maxCount: srv.cfg.BufferSize, maxBytes: srv.cfg.BufferBytes}
	return &session{
		srv: srv, id: id, user: user, epoch: hex.EncodeToString(epoch),
		log: srv.log.With("session_id", id),
		buf: bounds, hist: bounds,
		finished: finishedQueries{max: rememberedQueries},
	}
}

// resumeRequest is what a connection asks of the session's history: last_seq and
// epoch (SEQ-3 to SEQ-6).
type resumeRequest struct {
	asked   bool
	lastSeq int
	epoch   string
}

// attach makes c the session's connection (TAKE-1). c gets connected first (CONN-1),
// then, without a resume request, the frames of a replaced connection and the buffered
// frames (CONN-2, BUF-4); with one, the kept frames after last_seq (SEQ-3 to SEQ-5). It
// returns the replaced connection, if any.
func (s *session) attach(c *conn, r resumeRequest) (old *conn, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return nil, false
	}
	connected := msg.Connected{
		Type: msg.ConnectedTypeConnected, Message: "WebSocket connection established",
		SessionId: s.id, Timestamp: timestamp(), ProtocolVersion: ProtocolVersion,
		Capabilities: s.srv.capabilities, Epoch: s.epoch,
	}
	var unsent []frame
	if old = s.conn; old != nil {
		unsent = old.closeNow(closeSessionReplaced, "session replaced")
	}
	var frames []frame
	if r.asked {
		var resumed bool
		var missed int
		frames, resumed, missed = s.replay(r)
		connected.Resumed = &resumed
		if !resumed && missed > 0 {
			connected.Missed = &missed
		}
		s.buf.take()
	} else {
		frames = append(unsent, s.buf.take()...)
	}
	if s.expiry != nil {
		s.expiry.Stop()
		s.expiry = nil
	}
	s.conn = c
	c.enqueueAll(append([]frame{encode(connected)}, frames...)...)
	return old, true
}

// replay returns the kept frames after the request's last_seq, whether none of them
// was dropped, and how many were (SEQ-3, SEQ-4). A request naming another epoch, or a
// last_seq the session never reached, is for another history: all kept frames, not
// resumed, nothing known missed (SEQ-5).
func (s *session) replay(r resumeRequest) (frames []frame, resumed bool, missed int) {
	k := r.lastSeq
	stale := (r.epoch != "" && r.epoch != s.epoch) || k > s.seq
	if stale {
		k = 0
	}
	oldest := s.seq + 1
	if len(s.hist.frames) > 0 {
		oldest = s.hist.frames[0].seq
	}
	for _, f := range s.hist.frames {
		if f.seq > k {
			frames = append(frames, f)
		}
	}
	if stale {
		return frames, false, 0
	}
	if k+1 >= oldest {
		return frames, true, 0
	}
	return frames, false, oldest - (k + 1)
}

// detach handles the end of connection c other than by disconnect: the session lives
// on for its TTL and buffers its frames (BUF-1 to BUF-3). unsent are c's frames that
// were not written.
func (s *session) detach(c *conn, unsent []frame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == c && !s.ended {
		s.detachLocked(unsent)
	}
}

// detachLocked leaves the session without a connection: it buffers the unsent frames
// and starts the TTL. s.mu is held.
func (s *session) detachLocked(unsent []frame) {
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
	s.hist.take()
	s.mu.Unlock()
	s.srv.forget(s)
}

// emit sends a session-scoped frame, numbered with the session's next seq (SEQ-1)
// and kept in its history (SEQ-2), to the live connection, or buffers it. build makes
// the message for a seq.
func (s *session) emit(build func(seq int) any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.emitLocked(build)
}

// emitLocked is emit with s.mu held; it returns the message it sent, nil when the
// session has ended. It never waits for the client: a connection whose queue is full
// is a slow consumer, closed with 4002, and its queued frames go to the buffer.
func (s *session) emitLocked(build func(seq int) any) any {
	if s.ended {
		return nil
	}
	s.seq++
	m := build(s.seq)
	f := encode(m)
	f.session, f.seq = true, s.seq
	s.hist.push(f)
	if c := s.conn; c != nil {
		if c.offer(f) {
			return m
		}
		s.log.Warn("slow consumer: its send queue is full; closing it with 4002 and buffering the session's frames", "send_queue", s.srv.cfg.SendQueue)
		s.srv.release(c)
		s.detachLocked(c.closeNow(closeSlowConsumer, "slow consumer"))
	}
	s.buf.push(f)
	return m
}

// buffered returns the number of frames waiting in the offline buffer.
func (s *session) buffered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.len()
}

// busy reports whether a query runs or waits.
func (s *session) busy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running != nil || len(s.queue) > 0
}
