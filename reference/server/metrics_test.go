package server_test

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// /metrics, scraped: queries by outcome, frames by type, latencies, refusals by
// reason, takeovers and refused client frames are counted, and no label carries a
// session id.
func TestMetrics(t *testing.T) {
	s := start(t, nil)
	sid := newSession(t)
	c, _ := s.connect(t, "session_id="+sid)
	c.send(query("hello"))
	checkStream(t, c.stream())
	c.send(map[string]any{"type": "ping"})
	c.expect("pong")
	if err := c.ws.Write(t.Context(), 1, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	c.expect("error")
	c.send(map[string]any{"type": "query", "query": "__slow__ long enough to cancel", "query_id": "slow"})
	c.expect("query_start")
	c.send(map[string]any{"type": "cancel", "query_id": "slow"})
	if f := c.stream(); f[len(f)-1].str("code") != "cancelled" {
		t.Fatalf("the cancelled query ended with %v", f[len(f)-1])
	}
	s.refused(t, "session_id=bad%20id", nil)
	s.connect(t, "session_id="+sid) // takes the session over
	eventually(t, "the replaced connection is gone", func() bool { return s.health(t).ActiveConnections == 1 })

	body, got := scrape(t, s.URL+"/metrics")
	for series, want := range map[string]float64{
		`agentws_queries_total{outcome="complete"}`:                     1,
		`agentws_queries_total{outcome="cancelled"}`:                    1,
		`agentws_frames_sent_total{type="pong"}`:                        1,
		`agentws_frames_sent_total{type="query_start"}`:                 2,
		`agentws_frames_sent_total{type="complete"}`:                    1,
		`agentws_first_chunk_seconds_count`:                             1,
		`agentws_query_duration_seconds_count`:                          2,
		`agentws_handshake_refusals_total{reason="invalid_session_id"}`: 1,
		`agentws_connection_closes_total{reason="replaced"}`:            1,
		`agentws_client_frames_refused_total{code="invalid_json"}`:      1,
		`agentws_connections`:                                           1,
		`agentws_sessions`:                                              1,
		`agentws_memory_budget_bytes`:                                   1 << 30,
	} {
		if got[series] != want {
			t.Errorf("%s = %v, want %v", series, got[series], want)
		}
	}
	if got[`agentws_frames_sent_total{type="connected"}`] < 2 || got[`agentws_frames_sent_total{type="chunk"}`] < 1 {
		t.Errorf("frames sent: %v connected, %v chunks; want 2 and at least 1", got[`agentws_frames_sent_total{type="connected"}`], got[`agentws_frames_sent_total{type="chunk"}`])
	}
	if strings.Contains(body, sid) {
		t.Error("/metrics names a session id")
	}
}

// scrape gets a Prometheus text exposition and returns it, and its samples by series.
func scrape(t *testing.T, url string) (string, map[string]float64) {
	t.Helper()
	code, data := get(t, url)
	if code != http.StatusOK || !strings.HasPrefix(data, "# HELP ") {
		t.Fatalf("GET /metrics: %d %.100q, want 200 and the Prometheus text format", code, data)
	}
	samples := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	return data, samples
}
