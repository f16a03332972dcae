package server

import (
	"container/list"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/coder/websocket"

	"github.com/agentws/agentws/schemas/httpapi"
)

// Why a handshake cannot join a session (HS-6, HS-10).
var (
	errUserMismatch = errors.New("the session belongs to another user")
	errServerFull   = errors.New("the server holds as many sessions as it allows")
)

// join returns the session sid for user, creating it when the server holds none: the
// check of the session limit and the creation are one critical section, so concurrent
// handshakes never take the server past it (HS-10). At the limit, it ends the session
// that has been without a connection the longest to make room, and tries again; it
// refuses only when no session is without one. A session made here holds its slot
// until the handshake's connection joins it, or gives it back when its upgrade fails
// (withdraw).
func (s *Server) join(sid, user string) (*session, error) {
	for {
		sess, oldest, err := s.joinOrPick(sid, user)
		if oldest == nil {
			return sess, err
		}
		oldest.evict()
	}
}

// joinOrPick is one try of join, under s.mu: the session, or at the limit the oldest
// session without a connection, taken off the offline list for the caller to end
// (the lock order is session, then server: it cannot be ended here), or an error.
func (s *Server) joinOrPick(sid, user string) (sess, oldest *session, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess, ok := s.sessions[sid]; ok {
		if sess.user != user {
			return nil, nil, errUserMismatch
		}
		return sess, nil, nil
	}
	if len(s.sessions) >= s.cfg.MaxSessions {
		if oldest := s.offline.pop(); oldest != nil {
			return nil, oldest, nil
		}
		return nil, nil, fmt.Errorf("%w: %d sessions, each with a connection or a handshake", errServerFull, len(s.sessions))
	}
	sess = newSession(s, sid, user)
	s.sessions[sid] = sess
	return sess, nil, nil
}

// evict ends s to make room for a new session (HS-10), unless a connection joined it
// since it was picked. Its client learns of it as of an expired TTL: a new epoch.
func (s *session) evict() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil && !s.ended {
		s.log.Warn("session limit reached: ending the session without a connection the longest, to admit a new one", "max_sessions", s.srv.cfg.MaxSessions)
		s.endLocked(errSessionEnded)
	}
}

// An offlineSessions is the set of sessions without a connection, in the order they
// lost it: the oldest is the first to make room (HS-10). The server's mu guards it.
type offlineSessions struct {
	order list.List // of *session, oldest first
	at    map[*session]*list.Element
}

func (o *offlineSessions) push(sess *session) {
	if o.at == nil {
		o.at = map[*session]*list.Element{}
	}
	if _, ok := o.at[sess]; !ok {
		o.at[sess] = o.order.PushBack(sess)
	}
}

func (o *offlineSessions) remove(sess *session) {
	if e, ok := o.at[sess]; ok {
		o.order.Remove(e)
		delete(o.at, sess)
	}
}

// pop takes the oldest session off the set; nil when it is empty.
func (o *offlineSessions) pop() *session {
	e := o.order.Front()
	if e == nil {
		return nil
	}
	sess := e.Value.(*session)
	o.remove(sess)
	return sess
}

// wentOffline records that sess, in the table, lost its connection; sess.mu is held
// (the lock order is session, then server).
func (s *Server) wentOffline(sess *session) {
	s.mu.Lock()
	pushed := s.sessions[sess.id] == sess
	if pushed {
		s.offline.push(sess)
	}
	s.mu.Unlock()
	if pushed && s.mem.over() {
		s.wakeReclaim() // without s.mu: starting the reclaimer takes it (track)
	}
}

// cameOnline records that sess has a connection again; sess.mu is held.
func (s *Server) cameOnline(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offline.remove(sess)
}

// openSession joins the session a asks for, then upgrades the request and starts the
// connection's writer; it returns the connection and its session, or nil when it
// refused the request (every
// refusal is an HTTP error before the upgrade) or the upgrade failed. The connection
// joins its session before the upgrade answers: a client that got its 101 has taken
// the session over, so the connection it opens next is newer in the server's eyes too
// (TAKE-1).
func (s *Server) openSession(w http.ResponseWriter, r *http.Request, a *handshake) (*conn, liveSession) {
	if s.redis != nil {
		return s.openRedis(w, r, a)
	}
	log, sid, user := a.log, a.sid, a.user
	sess, err := s.join(sid, user)
	if err != nil {
		s.refuseJoin(w, log, err)
		return nil, nil
	}
	c := newConn(s, log)
	c.rate = a.rate
	sess, old, err := s.attach(c, sess, user, a.resume)
	if err != nil {
		s.refuseJoin(w, log, err)
		return nil, nil
	}
	if old != nil {
		log.Info("session taken over by a new connection")
	}
	// serveWS checked the Origin (originAllowed, HS-8), which allows null by name as the
	// library's own check cannot; the library's check would only repeat it.
	cw := &corkWriter{ResponseWriter: w}
	ws, err := websocket.Accept(cw, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		log.Warn("upgrade failed", "err", err)
		s.release(c)
		sess.withdraw(c)
		return nil, nil
	}
	// The server's read and write deadlines (-read-timeout, -http-write-timeout) do not
	// reach the connection: net/http clears them when Accept hijacks it.
	ws.SetReadLimit(s.cfg.MaxMessageBytes)
	log.Info("connected", "user_id", user)
	c.start(ws, cw.conn)
	return c, sess
}

// refuseJoin answers a handshake that cannot join a session, before the upgrade.
func (s *Server) refuseJoin(w http.ResponseWriter, log *slog.Logger, err error) {
	switch {
	case errors.Is(err, errUserMismatch):
		log.Warn("user mismatch")
		s.refuse(w, http.StatusForbidden, httpapi.HTTPErrorCodeUserMismatch, "%v", err)
	case errors.Is(err, errShutdown):
		s.refuse(w, http.StatusServiceUnavailable, httpapi.HTTPErrorCodeDraining, "the server is shutting down and accepts no new connections")
	default:
		log.Warn("session limit reached: refusing a new session", "err", err)
		s.refuse(w, http.StatusServiceUnavailable, httpapi.HTTPErrorCodeServerFull, "%v; try again later", err)
	}
}

// attach joins c to sess. When sess ended since the handshake joined it (a disconnect,
// its TTL), c joins the session that follows it, as a connection arriving just after
// would; the session limit and the user check hold for that one too.
func (s *Server) attach(c *conn, sess *session, user string, resume resumeRequest) (*session, *conn, error) {
	for {
		old, err := sess.attach(c, resume)
		if !errors.Is(err, errSessionEnded) {
			return sess, old, err
		}
		if sess, err = s.join(sess.id, user); err != nil {
			return nil, nil, err
		}
	}
}

// forget removes an ended session from the table. The session's mu is held: the lock
// order is session, then server.
func (s *Server) forget(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[sess.id] == sess {
		delete(s.sessions, sess.id)
	}
	s.offline.remove(sess)
}

// release stops counting c as an active connection; it is gone or going.
func (s *Server) release(c *conn) {
	c.mu.Lock()
	counted := c.counted
	c.counted = false
	c.mu.Unlock()
	if counted {
		s.stats.active.Add(-1)
		if s.redis != nil {
			s.redis.countChanged()
		}
	}
}

// dropped ends c other than by disconnect: it stops counting it, closes it with code
// (unless it is closing already), and when c is its session's connection, hands its
// unwritten session frames (failed, a frame whose write failed, first, with its hold)
// to the session, which lives on (BUF-1). The take of those frames and the detach are
// one critical section under the session's lock (the lock order is session, then
// connection).
func (s *Server) dropped(c *conn, code websocket.StatusCode, reason string, failed ...frame) {
	s.release(c)
	c.mu.Lock()
	sess := c.sess
	c.mu.Unlock()
	var frames []frame
	for _, f := range failed {
		if f.session && sess != nil {
			frames = append(frames, f)
		} else {
			f.held.drop()
		}
	}
	if sess == nil {
		unsent, _ := c.closeNow(code, reason)
		dropAll(unsent)
		return
	}
	sess.detach(c, code, reason, frames)
}
