package server

import (
	"context"
	"time"

	"github.com/coder/websocket"
)

// Drain shuts the server down gently (SHUT-1 to SHUT-3): it refuses new connections,
// reports draining, closes every connection with 1001, lets running queries finish into
// their sessions' buffers for the drain timeout (or until ctx is done), then stops what
// is left. It returns once every connection and query has ended.
func (s *Server) Drain(ctx context.Context) {
	if !s.stop() {
		return
	}
	s.log.Info("draining", "timeout", s.cfg.DrainTimeout)
	s.closeConnections()
	done := make(chan struct{})
	go func() {
		s.runners.Wait()
		close(done)
	}()
	timer := time.NewTimer(s.cfg.DrainTimeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		s.log.Warn("drain timeout: stopping the queries still running")
	case <-ctx.Done():
	}
	s.Close()
}

// Close stops everything at once: running queries are cancelled (their sessions get an
// error with code unavailable), connections are closed. It waits for them to end.
func (s *Server) Close() {
	s.stop()
	s.cancel(errShutdown)
	s.closeConnections()
	s.runners.Wait()
	s.conns.Wait()
	s.background.Wait()
	if s.redis != nil {
		s.redis.close()
	}
	for _, sess := range s.snapshot() {
		sess.mu.Lock()
		if sess.expiry != nil {
			sess.expiry.Stop()
		}
		sess.mu.Unlock()
	}
}

// closeConnections closes every live connection with 1001; their sessions live on, and
// buffer what their queries still produce (SHUT-2).
func (s *Server) closeConnections() {
	for _, c := range s.liveConns() {
		s.dropped(c, websocket.StatusGoingAway, "server shutting down")
	}
}

func (s *Server) snapshot() []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		out = append(out, sess)
	}
	return out
}
