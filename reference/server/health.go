package server

import (
	"context"

	"github.com/agentws/agentws/schemas/httpapi"
)

// healthAPI implements the generated strict server of spec/openapi.yaml.
type healthAPI struct{ s *Server }

var _ httpapi.StrictServerInterface = healthAPI{}

// Stats are the five figures of GET /ws/health.
func (s *Server) Stats() httpapi.Health {
	status := httpapi.HealthStatusHealthy
	switch {
	case s.draining.Load():
		status = httpapi.HealthStatusDraining
	case s.redis != nil && !s.redis.up.Load(): // it cannot serve queries until Redis answers
		status = httpapi.HealthStatusUninitialized
	}
	h := httpapi.Health{
		Status:            status,
		ActiveConnections: int(s.stats.active.Load()),
		TotalMessagesSent: int(s.stats.sent.Load()),
	}
	if s.redis != nil {
		s.redis.clusterStats(&h)
		return h
	}
	s.mu.Lock()
	sessions := make([]*session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()
	for _, sess := range sessions {
		if n := sess.buffered(); n > 0 {
			h.TotalBufferedMessages += n
			h.SessionsWithBuffer++
		}
	}
	return h
}

func (a healthAPI) GetHealth(context.Context, httpapi.GetHealthRequestObject) (httpapi.GetHealthResponseObject, error) {
	return httpapi.GetHealth200JSONResponse(a.s.Stats()), nil
}

func (a healthAPI) GetLivez(context.Context, httpapi.GetLivezRequestObject) (httpapi.GetLivezResponseObject, error) {
	return httpapi.GetLivez200TextResponse("ok"), nil
}

func (a healthAPI) GetReadyz(context.Context, httpapi.GetReadyzRequestObject) (httpapi.GetReadyzResponseObject, error) {
	if a.s.draining.Load() {
		return httpapi.GetReadyz503TextResponse("draining"), nil
	}
	if st := a.s.redis; st != nil && !st.up.Load() {
		return httpapi.GetReadyz503TextResponse("session store unavailable: " + st.where), nil
	}
	if why := a.s.upstreamFailure(); why != "" {
		return httpapi.GetReadyz503TextResponse("upstream unavailable: " + why), nil
	}
	return httpapi.GetReadyz200TextResponse("ready"), nil
}
