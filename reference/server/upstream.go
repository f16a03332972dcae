package server

import (
	"sync/atomic"
	"time"

	"github.com/agentws/agentws/reference/agent"
)

// upstreamState is what the last check of the agent found (Config.UpstreamCheckInterval).
type upstreamState struct {
	err    error  // nil: it passed
	public string // why not, as a client may read it (agent.Public)
}

// upstream holds the latest check; nil before the first or with no check.
type upstream struct{ state atomic.Pointer[upstreamState] }

// checkUpstream checks the agent now and then every interval until the server closes,
// logging each change: /readyz fails while the last check failed.
func (s *Server) checkUpstream(c agent.Checker, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		err := c.Check(s.ctx) // bounded by the agent itself (the connect timeout), not the interval
		if s.ctx.Err() != nil {
			return
		}
		prev := s.upstream.state.Swap(&upstreamState{err: err, public: agent.Public(err)})
		switch {
		case err != nil && (prev == nil || prev.err == nil):
			s.log.Warn("upstream check failed: /readyz fails until it passes", "err", err, "every", interval)
		case err == nil && prev != nil && prev.err != nil:
			s.log.Info("upstream check passed again: /readyz passes")
		}
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// upstreamFailure returns why the last check of the agent failed, or "".
func (s *Server) upstreamFailure() string {
	if st := s.upstream.state.Load(); st != nil && st.err != nil {
		return st.public
	}
	return ""
}
