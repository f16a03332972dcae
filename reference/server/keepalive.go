package server

import "time"

// broadcast queues a connection-scoped frame on every live connection but those
// exclude reports; it never waits for a client. The frame is charged once for all.
func (s *Server) broadcast(f frame, exclude func(c *conn) bool) {
	s.mem.charge(&f)
	defer f.held.drop()
	for _, c := range s.liveConns() {
		if !exclude(c) {
			c.reply(f)
		}
	}
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
			s.broadcast(keepaliveFrame(), func(c *conn) bool { return !c.idleSince(idleSince) })
		}
	}
}
