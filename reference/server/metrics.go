package server

import (
	"fmt"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/agentws/agentws/schemas/httpapi"
	"github.com/agentws/agentws/schemas/msg"
)

// metrics are the server's Prometheus metrics, served at /metrics. Every label takes
// values from a closed set (frame types, error codes, refusal codes, outcomes): no
// session id, user or address is ever a label.
type metrics struct {
	registry   *prometheus.Registry
	queries    *prometheus.CounterVec        // outcome: complete or the error code that ended it
	refused    *prometheus.CounterVec        // code: the error code of a refused client frame
	frames     *prometheus.CounterVec        // type: the frame's type
	sentBy     map[string]prometheus.Counter // frames' counter of each type frameType names
	firstChunk prometheus.Histogram          // seconds from a query's start to its first chunk
	duration   prometheus.Histogram          // seconds from a query's start to its end
	refusals   *prometheus.CounterVec        // reason: the HTTP error code of a refused request
	closes     *prometheus.CounterVec        // reason: slow_consumer, replaced
	authFails  prometheus.Counter
	upstream   *prometheus.HistogramVec // outcome: of a request to the model upstream
	broadcasts prometheus.Counter       // notices broadcast through the admin API
	noticed    prometheus.Counter       // the sessions they reached
}

// latencyBuckets span a first token in milliseconds to an answer of minutes.
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

func newMetrics(s *Server) *metrics {
	m := &metrics{registry: prometheus.NewRegistry()}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "agentws", Name: name, Help: help}, labels)
		m.registry.MustRegister(c)
		return c
	}
	m.queries = counter("queries_total", "Queries ended, by outcome: complete, or the code of the error that ended them.", "outcome")
	m.refused = counter("client_frames_refused_total", "Client frames refused with a connection-scoped error (queries that did not run, malformed frames, unknown cancels), by error code.", "code")
	m.frames = counter("frames_sent_total", "Frames written to clients, by type.", "type")
	m.sentBy = map[string]prometheus.Counter{}
	for _, typ := range frameTypes {
		m.sentBy[typ] = m.frames.WithLabelValues(typ)
	}
	m.refusals = counter("handshake_refusals_total", "Requests to /ws refused before the upgrade, by the code of their HTTP error.", "reason")
	m.closes = counter("connection_closes_total", "Connections the server closed, by reason: slow_consumer (4002), replaced (4001), ended (4003, through the admin API).", "reason")
	m.broadcasts = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "agentws", Name: "broadcasts_total", Help: "Notices broadcast through the admin API (POST /admin/broadcast)."})
	m.noticed = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "agentws", Name: "broadcast_sessions_total", Help: "Sessions the broadcast notices reached, each counted once per notice (with the Redis store, those of every node, counted by the node that broadcast)."})
	m.registry.MustRegister(m.broadcasts, m.noticed)
	m.authFails = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "agentws", Name: "auth_failures_total", Help: "Handshakes refused for want of a valid token (401)."})
	m.upstream = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "agentws", Name: "upstream_request_seconds", Help: "Requests to the model upstream, by outcome (ok, refused, unreachable, timeout, failed, cancelled), and how long each took.", Buckets: latencyBuckets}, []string{"outcome"})
	m.registry.MustRegister(m.upstream)
	m.firstChunk = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "agentws", Name: "first_chunk_seconds", Help: "Time from a query's start to its first chunk.", Buckets: latencyBuckets})
	m.duration = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "agentws", Name: "query_duration_seconds", Help: "Time from a query's start to its terminal frame.", Buckets: latencyBuckets})
	gauge := func(name, help string, f func() float64) {
		m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "agentws", Name: name, Help: help}, f))
	}
	gauge("connections", "Live connections that got connected.", func() float64 { return float64(s.stats.active.Load()) })
	gauge("sessions", "Sessions held, with or without a connection; with the Redis store, those whose connection this node holds.", func() float64 { return float64(s.sessionCount()) })
	gauge("memory_held_bytes", "Bytes held for clients, as -max-memory-bytes counts them.", func() float64 { return float64(s.mem.held.Load()) })
	gauge("memory_budget_bytes", "The memory budget, -max-memory-bytes.", func() float64 { return float64(s.mem.max) })
	m.registry.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "agentws", Name: "buffer_evicted_frames_total", Help: "Frames evicted from offline buffers (BUF-8)."},
			func() float64 { return float64(s.stats.evicted.Load()) }),
		m.authFails, m.firstChunk, m.duration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// upstreamUp registers upstream_up, with the upstream check on.
func (m *metrics) upstreamUp(s *Server) {
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "agentws", Name: "upstream_up", Help: "1 when the last check of the model upstream passed (or none ran yet), 0 when it failed; /readyz fails with it."},
		func() float64 {
			if s.upstreamFailure() != "" {
				return 0
			}
			return 1
		}))
}

// storeUp registers store_up, with the Redis store.
func (m *metrics) storeUp(st *redisStore) {
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "agentws", Name: "store_up", Help: "1 while the Redis session store answers, 0 while it does not; /readyz fails with it."},
		func() float64 {
			if st.up.Load() {
				return 1
			}
			return 0
		}))
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// ObserveUpstream counts a request to the model upstream by its outcome, with how long
// it took, in upstream_request_seconds: an agent.OpenAI's Observe.
func (s *Server) ObserveUpstream(outcome string, took time.Duration) {
	s.metrics.upstream.WithLabelValues(outcome).Observe(took.Seconds())
}

// closed counts a connection the server closed with code, when the code is one of
// those connection_closes_total names.
func (m *metrics) closed(code websocket.StatusCode) {
	switch code {
	case closeSlowConsumer:
		m.closes.WithLabelValues("slow_consumer").Inc()
	case closeSessionReplaced:
		m.closes.WithLabelValues("replaced").Inc()
	case closeSessionEnded:
		m.closes.WithLabelValues("ended").Inc()
	}
}

// queryEnded counts a query's end by its terminal message (nil: its session ended
// first), and its duration when it had begun to run.
func (m *metrics) queryEnded(terminal any, started time.Time) {
	outcome := "session_ended"
	switch t := terminal.(type) {
	case msg.Complete:
		outcome = "complete"
	case msg.Error:
		outcome = string(t.Code)
	}
	m.queries.WithLabelValues(outcome).Inc()
	if !started.IsZero() {
		m.duration.Observe(time.Since(started).Seconds())
	}
}

// refuse answers a refused request with the JSON body of http-error.json, counted by
// its code.
func (s *Server) refuse(w http.ResponseWriter, status int, code httpapi.HTTPErrorCode, format string, args ...any) {
	s.metrics.refusals.WithLabelValues(string(code)).Inc()
	if code == httpapi.HTTPErrorCodeUnauthorized {
		s.metrics.authFails.Inc()
	}
	text := fmt.Sprintf(format, args...)
	if a, ok := w.(*accessLog); ok {
		a.refused(code, text)
	}
	httpError(w, status, code, "%s", text)
}

// sessionCount returns the number of sessions held.
func (s *Server) sessionCount() int {
	if s.redis != nil { // those whose connection this node holds
		s.redis.mu.Lock()
		defer s.redis.mu.Unlock()
		return len(s.redis.bySID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// sent counts a frame of type typ written (one of frameTypes).
func (m *metrics) sent(typ string) {
	if c, ok := m.sentBy[typ]; ok {
		c.Inc()
		return
	}
	m.frames.WithLabelValues(typ).Inc()
}

// frameTypes are the types frameType names.
var frameTypes = []string{"connected", "query_start", "chunk", "complete", "error", "pong", "keepalive", "disconnected", "notice", "other"}

// frameType names the type of a server message, for frames_sent_total.
func frameType(v any) string {
	switch m := v.(type) {
	case msg.Connected:
		return string(m.Type)
	case msg.QueryStart:
		return string(m.Type)
	case msg.Chunk:
		return string(m.Type)
	case msg.Complete:
		return string(m.Type)
	case msg.Error:
		return string(m.Type)
	case msg.Pong:
		return string(m.Type)
	case msg.Keepalive:
		return string(m.Type)
	case msg.Disconnected:
		return string(m.Type)
	case msg.Notice:
		return string(m.Type)
	}
	return "other"
}
