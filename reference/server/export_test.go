package server

import (
	"context"

	"github.com/agentws/agentws/schemas/msg"
)

// Test hooks: what the end-to-end tests poll instead of sleeping.

// SessionBusy reports whether the session has a query running or queued.
func (s *Server) SessionBusy(id string) bool {
	sess := s.lookup(id)
	return sess != nil && sess.busy()
}

// SessionExists reports whether the server holds the session.
func (s *Server) SessionExists(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.sessions[id]
	return ok
}

// SessionCount returns how many sessions the server holds.
func (s *Server) SessionCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// BufferedFrames returns the frames waiting in the session's offline buffer, oldest
// first.
func (s *Server) BufferedFrames(id string) [][]byte {
	sess := s.lookup(id)
	if sess == nil {
		return nil
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	var out [][]byte
	for _, f := range sess.buf.frames {
		out = append(out, f.data)
	}
	return out
}

// EvictedFrames returns how many frames the offline buffers evicted, ever.
func (s *Server) EvictedFrames() int64 { return s.stats.evicted.Load() }

// HeldBytes returns the bytes all sessions hold, as -max-memory-bytes counts them.
func (s *Server) HeldBytes() int64 { return s.mem.held.Load() }

// DropConnection ends the session's connection abruptly, as a network failure would:
// no close frame. It reports whether the session had one.
func (s *Server) DropConnection(id string) bool {
	sess := s.lookup(id)
	if sess == nil {
		return false
	}
	sess.mu.Lock()
	c := sess.conn
	sess.mu.Unlock()
	if c == nil || c.lastSent.Load() == 0 { // the atomic store after c.ws was set, in start
		return false
	}
	c.ws.CloseNow()
	return true
}

// StoreNotice runs, with the Redis store, one try of a broadcast of the notice id to
// the session sid: what a broadcast's retry after a lost reply runs again.
func (s *Server) StoreNotice(sid, id string) (int, error) {
	n := msg.Notice{Type: msg.NoticeTypeNotice, NoticeId: id, Message: "retried", Level: msg.NoticeLevelInfo}
	return s.redis.broadcast(context.Background(), n, broadcastTarget{sessions: map[string]bool{sid: true}})
}

// BroadcastGoneRequester broadcasts a notice to every session as a request does whose
// requester went away at once (its context is cancelled), and returns how many
// sessions it reached.
func (s *Server) BroadcastGoneRequester() (int, error) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n := msg.Notice{Type: msg.NoticeTypeNotice, NoticeId: "n-" + randomHex(8), Message: "gone", Level: msg.NoticeLevelInfo}
	return s.adminBroadcast(ctx, n, broadcastTarget{all: true})
}
