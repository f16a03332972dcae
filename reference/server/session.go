package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/coder/websocket"

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

	// mu guards what follows. The lock order is session, then server, then
	// connection: code holding a conn's mu never takes a session's or the server's.
	mu       sync.Mutex
	conn     *conn       // the live connection, or nil
	left     *conn       // the connection whose drop began the current offline period
	buf      frameBuffer // frames produced while conn is nil (BUF-3)
	hist     frameBuffer // the last session-scoped frames, delivered or not (SEQ-2)
	seq      int         // the seq of the last session-scoped frame (SEQ-1)
	queue    []*query    // accepted queries waiting behind the running one (STREAM-8)
	queued   int         // the bytes of their text (querySize)
	running  *query      // the query that runs, from its acceptance to its end
	runner   bool        // a goroutine runs the queue
	ended    bool
	attached int         // connections that joined it, ever
	expiry   *time.Timer // set while the session has no connection
	queryIDs int         // query ids assigned so far
	finished finishedQueries
	credit   int // bytes reserved for what the frame being emitted adds to the memory count

	stats sessionStats // what the admin API shows of its activity (ADMIN-3)
}

func newSession(srv *Server, id, user string) *session {
	epoch := make([]byte, 6)
	rand.Read(epoch)
	bounds := frameBuffer{maxCount: srv.cfg.BufferSize, maxBytes: srv.cfg.BufferBytes}
	return &session{
		srv: srv, id: id, user: user, epoch: hex.EncodeToString(epoch),
		log: srv.log.With("session_id", id),
		buf: bounds, hist: bounds,
		finished: finishedQueries{max: rememberedQueries, maxBytes: srv.cfg.RememberedBytes, mem: &srv.mem},
	}
}

// resumeRequest is what a connection asks of the session's history: last_seq and
// epoch (SEQ-3 to SEQ-6).
type resumeRequest struct {
	asked   bool
	lastSeq int
	epoch   string
}

// attach makes c the session's connection (TAKE-1), in one critical section with the
// close of the connection it replaces. c gets connected first (CONN-1), then, without a
// resume request, the frames of a replaced connection and the buffered frames (CONN-2,
// BUF-4, BUF-8); with one, the kept frames after last_seq (SEQ-3 to SEQ-5). It returns
// the replaced connection, if any, or errSessionEnded when the session ended before c
// joined it, or errShutdown when the server stops: a connection that attaches after the
// drain closed the others is never left open.
func (s *session) attach(c *conn, r resumeRequest) (old *conn, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.ended:
		return nil, errSessionEnded
	case s.srv.draining.Load():
		if s.attached == 0 {
			s.endLocked(errShutdown) // made for c alone
		}
		return nil, errShutdown
	}
	connected := msg.Connected{
		Type: msg.ConnectedTypeConnected, Message: "WebSocket connection established",
		SessionId: s.id, Timestamp: timestamp(), ProtocolVersion: ProtocolVersion,
		Capabilities: s.srv.capabilities, Epoch: s.epoch,
	}
	var unsent []frame
	var unannounced int
	if old = s.conn; old != nil {
		unsent, unannounced = old.closeNow(closeSessionReplaced, "session replaced")
		s.srv.release(old)
	}
	buffered, evicted := s.buf.take()
	evicted += unannounced
	var frames []frame
	if r.asked {
		var resumed bool
		var missed int
		frames, resumed, missed = s.replay(r)
		connected.Resumed = &resumed
		if !resumed && missed > 0 {
			connected.Missed = &missed
		}
	} else {
		frames = append(unsent, buffered...)
		connected.Evicted = evicted
		if evicted > 0 {
			s.log.Info("a connection joins after the offline buffer evicted frames; connected tells it how many", "evicted", evicted, "delivered", len(buffered))
		}
	}
	if s.expiry != nil {
		s.expiry.Stop()
		s.expiry = nil
	}
	s.conn, s.left = c, nil
	s.srv.cameOnline(s)
	s.attached++
	c.join(s)
	s.stats.joined()
	c.stats.Store(&s.stats)
	first := encode(connected)
	first.evicted = connected.Evicted
	s.srv.mem.charge(&first)
	c.enqueueAll(append([]frame{first}, frames...)...)
	first.held.drop()
	dropAll(unsent) // handed over by closeNow and take, and queued or not wanted
	dropAll(buffered)
	return old, nil
}

// withdraw undoes the attach of c, whose upgrade failed: its frames go back to the
// buffer, and a session that c was the first to join gives its slot back (HS-10).
func (s *session) withdraw(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	unsent, unannounced := c.closeNow(websocket.StatusGoingAway, "")
	switch {
	case s.conn != c || s.ended:
		dropAll(unsent)
	case s.attached == 1:
		dropAll(unsent)
		s.endLocked(errSessionEnded)
	default:
		s.detachLocked(c, unsent, unannounced)
	}
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

// detach closes connection c with code, other than by disconnect, and when c is still
// the session's connection, buffers its unwritten frames (failed, a frame whose write
// failed, first) and starts the TTL (BUF-1 to BUF-3). It is one critical section: a
// frame the session emits meanwhile is queued on c before the take, or buffered after
// it, never lost between the two. When c was detached already (its reader saw the
// socket die while its writer was still writing), a frame whose write failed goes to
// the front of the buffer, as long as no connection took that buffer meanwhile. It
// takes over the holds of failed.
func (s *session) detach(c *conn, code websocket.StatusCode, reason string, failed []frame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	unsent, unannounced := c.closeNow(code, reason)
	switch {
	case s.ended:
	case s.conn == c:
		s.detachLocked(c, append(failed, unsent...), unannounced)
		return
	case s.conn == nil && s.left == c:
		for i := len(failed) - 1; i >= 0; i-- {
			s.countEvictedLocked(s.buf.pushFront(failed[i]))
		}
	}
	dropAll(failed)
	dropAll(unsent)
}

// detachLocked leaves the session without connection c: it buffers the unsent frames,
// keeps the count of evictions that were not announced for the next connection, and
// starts the TTL. It takes over the holds of unsent. s.mu is held.
func (s *session) detachLocked(c *conn, unsent []frame, unannounced int) {
	s.conn, s.left = nil, c
	s.buf.evicted += unannounced
	for _, f := range unsent {
		s.bufferLocked(f)
	}
	dropAll(unsent)
	s.expiry = time.AfterFunc(s.srv.cfg.SessionTTL, s.expire)
	s.srv.wentOffline(s)
}

// expire ends the session when its TTL passed without a connection (BUF-6). The check
// and the end are one critical section: a connection that joins meanwhile keeps it.
func (s *session) expire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil && !s.ended && s.expiry != nil {
		s.log.Info("session expired", "ttl", s.srv.cfg.SessionTTL)
		s.endLocked(errSessionEnded)
	}
}

// end ends the session: its queries are cancelled, its buffer dropped, and it leaves
// the server's table (DISC-3, BUF-6).
func (s *session) end(cause error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endLocked(cause)
}

// endLocked is end with s.mu held. The session leaves the server's table in the same
// critical section, so that no connection joins a session that has ended.
func (s *session) endLocked(cause error) {
	if s.ended {
		return
	}
	s.ended = true
	if s.expiry != nil {
		s.expiry.Stop()
	}
	for _, q := range s.queue {
		q.cancel(cause)
		s.releaseLocked(q)
	}
	s.queue, s.queued = nil, 0
	s.finished.clear()
	if s.running != nil {
		s.running.cancel(cause)
		s.releaseLocked(s.running)
	}
	buffered, evicted := s.buf.take()
	if evicted > 0 {
		s.log.Info("session ended with frames evicted from its offline buffer", "evicted", evicted)
	}
	dropAll(buffered)
	history, _ := s.hist.take()
	dropAll(history)
	s.srv.forget(s)
}

// emit sends a session-scoped frame that answers a client frame, numbered with the
// session's next seq (SEQ-1) and kept in its history (SEQ-2), to the live connection,
// or buffers it. build makes the message for a seq. It never waits for the client.
func (s *session) emit(build func(seq int) any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.emitLocked(build, true)
}

// emitLocked is emit with s.mu held, for an answer to a client frame or a frame of the
// runner, which waited for room; it returns the message it sent, nil when the session
// has ended. A connection with controlReserve answers unread keeps sending without
// reading: it is a slow consumer, closed with 4002, and its queued frames go to the
// buffer.
func (s *session) emitLocked(build func(seq int) any, answer bool) any {
	if s.ended {
		return nil
	}
	s.seq++
	m := build(s.seq)
	f := encode(m)
	f.session, f.seq = true, s.seq
	s.chargeLocked(&f)
	defer f.held.drop()
	s.hist.push(f)
	if c := s.conn; c != nil {
		if c.offer(f, answer) {
			return m
		}
		s.dropSlowLocked(c, "slow consumer: it sends but does not read its answers; closing it with 4002 and buffering the session's frames")
	}
	s.bufferLocked(f)
	return m
}

// chargeLocked charges f to the memory budget, drawing on the bytes reserved for it
// (s.credit) first. s.mu is held.
func (s *session) chargeLocked(f *frame) {
	s.srv.mem.charge(f)
	s.useCreditLocked(f.held.n)
}

// useCreditLocked counts n bytes, just counted as held, against the credit: the
// reserved bytes they stand for are released. s.mu is held.
func (s *session) useCreditLocked(n int) {
	use := min(n, s.credit)
	s.credit -= use
	s.srv.mem.add(-use)
}

// spendLocked emits a frame with bytes reserved for it: what the frame and the
// remembered result add is drawn from them, keep of the rest stays held for the
// running query q (the answer it builds), and the rest is released. It returns the
// message emitted, nil when the session has ended. s.mu is held.
func (s *session) spendLocked(q *query, reserved, keep int, emit func() any) any {
	if q != nil { // the query_start reserved at admission
		reserved += q.start
		q.start = 0
	}
	s.credit = reserved
	m := emit()
	if m != nil && q != nil {
		keep = min(keep, s.credit)
		q.held += keep
		s.credit -= keep
	}
	s.srv.mem.add(-s.credit)
	s.credit = 0
	return m
}

// emitPaced is emit for the query runner, with reserved bytes of the memory budget
// (spendLocked, which keeps keep of them for q): it first waits, without the lock, for
// room in the live connection's send queue (awaitRoom). It returns false, having
// emitted nothing and released the reserved bytes, when stop was closed first or the
// session ended: an agent that does not watch its context is stopped by its emit
// failing.
func (s *session) emitPaced(q *query, stop <-chan struct{}, reserved, keep int, build func(seq int) any) bool {
	stalled, stopped := s.awaitRoom(stop)
	defer s.mu.Unlock()
	if stopped {
		s.srv.mem.add(-reserved)
		return false
	}
	if stalled != nil {
		s.dropSlowLocked(stalled, "slow consumer: its send queue stayed full for the write timeout; closing it with 4002 and buffering the session's frames")
	}
	return s.spendLocked(q, reserved, keep, func() any { return s.emitLocked(build, false) }) != nil
}

// awaitRoom returns, with s.mu held, once the runner may emit: the session's connection
// has room in its send queue, or the session has none (a query of a session without a
// connection never waits: its frames are buffered), or it ended. The check and the emit
// that follows are one critical section. A replaced or closed connection wakes it at
// once, and so does stop (stopped). A connection whose queue stays full for the write
// timeout while its writer writes nothing is returned as stalled: a slow consumer. While
// the writer writes, its own write timeout bounds the wait.
func (s *session) awaitRoom(stop <-chan struct{}) (stalled *conn, stopped bool) {
	var timer *time.Timer
	var on *conn // the connection the timer runs for
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		s.mu.Lock()
		c := s.conn
		if c == nil || s.ended {
			return nil, false
		}
		room := c.roomSignal()
		if room == nil {
			return nil, false
		}
		if c != on { // a new connection gets the whole write timeout
			on = c
			if timer == nil {
				timer = time.NewTimer(s.srv.cfg.WriteTimeout)
			} else {
				timer.Reset(s.srv.cfg.WriteTimeout)
			}
		}
		s.mu.Unlock()
		select {
		case <-room:
		case <-stop:
			s.mu.Lock()
			return nil, true
		case <-timer.C:
			s.mu.Lock()
			if s.conn == c && c.stalled() {
				return c, false
			}
			s.mu.Unlock()
		}
	}
}

// dropSlowLocked closes c, the session's connection, as a slow consumer (4002) and
// buffers its queued frames. s.mu is held.
func (s *session) dropSlowLocked(c *conn, why string) {
	s.log.Warn(why, "send_queue", s.srv.cfg.SendQueue, "write_timeout", s.srv.cfg.WriteTimeout)
	s.srv.release(c)
	unsent, unannounced := c.closeNow(closeSlowConsumer, "slow consumer")
	s.detachLocked(c, unsent, unannounced)
}

// bufferLocked puts f in the offline buffer and counts what that evicts (BUF-3, BUF-8).
// The log says once per offline period that frames are being evicted; the count
// follows when a connection joins or the session ends, so a flood does not flood it.
func (s *session) bufferLocked(f frame) {
	s.countEvictedLocked(s.buf.push(f))
}

// countEvictedLocked counts n frames evicted from the offline buffer (BUF-8). s.mu is
// held.
func (s *session) countEvictedLocked(n int) {
	if n == 0 {
		return
	}
	s.srv.stats.evicted.Add(int64(n))
	if s.buf.evicted == n {
		s.log.Warn("offline buffer full: evicting its oldest frames", "buffer_size", s.srv.cfg.BufferSize, "buffer_bytes", s.srv.cfg.BufferBytes)
	}
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
