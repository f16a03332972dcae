package server

import "time"

// broadcast queues a connection-scoped frame on the live connection of every session
// whose id exclude does not hold, and returns how many connections got it.
func (s *Server) broadcast(f frame, exclude func(sess *session, c *conn) bool) int {
	n := 0
	for _, sess := range s.snapshot() {
		sess.mu.Lock()
		c := sess.conn
		sess.mu.Unlock()
		if c != nil && !exclude(sess, c) && c.reply(f) {
			n++
		}
	}
	return n
}

// keepalive sends keepalive frames (KA-1) until the server stops: on each tick, a
// broadcast to every connection, excluding those that were sent a frame within the
// keepalive interval. A connection is so sent a keepalive after between one and one
// and a quarter intervals of silence, never more often.
func (s *Server) keepalive() {
	interval := s.cfg.KeepaliveInterval
	tick := time.NewTicker(max(interval/4, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case now := <-tick.C:
			idleSince := now.Add(-interval)
			s.broadcast(keepaliveFrame(), func(_ *session, c *conn) bool { return !c.idleSince(idleSince) })
		}
	}
}
