package server

import (
	"github.com/coder/websocket"

	"github.com/agentws/agentws/schemas/msg"
)

// A liveSession is what a connection's reader and writer see of the session they
// joined: one held in this process's memory (session), or one of the Redis store
// (redisSession), which many nodes share.
type liveSession interface {
	sessionID() string
	// submit accepts or refuses a query; it returns the refusal to send, or nil.
	submit(q msg.Query, rate *queryRate) *frame
	// cancelQuery cancels a queued or running query; it returns the refusal to send
	// for an unknown one, or nil.
	cancelQuery(id string) *frame
	// end ends the session (DISC-3).
	end(cause error)
	// detach closes c, the session's connection, with code, other than by disconnect:
	// the session lives on and buffers its frames (BUF-1). failed are frames whose
	// write failed, with their holds.
	detach(c *conn, code websocket.StatusCode, reason string, failed []frame)
	// withdraw undoes the join of c, whose upgrade failed.
	withdraw(c *conn)
}

func (s *session) sessionID() string { return s.id }

// liveConns returns the connections of this process that joined a session.
func (s *Server) liveConns() []*conn {
	var out []*conn
	for _, sess := range s.snapshot() {
		sess.mu.Lock()
		if sess.conn != nil {
			out = append(out, sess.conn)
		}
		sess.mu.Unlock()
	}
	if s.redis != nil {
		out = append(out, s.redis.conns()...)
	}
	return out
}
