package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentws/agentws/reference/agent"
	"github.com/agentws/agentws/reference/server"
)

// logBuffer collects a server's JSON log lines; it is safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// records returns the log records whose msg is msg.
func (l *logBuffer) records(msg string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(l.buf.String(), "\n") {
		var r map[string]any
		if json.Unmarshal([]byte(line), &r) == nil && r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

func logged(cfg *server.Config) *logBuffer {
	l := &logBuffer{}
	cfg.Logger = slog.New(slog.NewJSONHandler(l, nil))
	return l
}

// Logs carry the session and query ids, and a refused origin names the flag that
// would allow it.
func TestLogs(t *testing.T) {
	var logs *logBuffer
	s := start(t, func(c *server.Config) { logs = logged(c) })
	sid := newSession(t)
	c, _ := s.connect(t, "session_id="+sid)
	c.send(map[string]any{"type": "query", "query": "hi", "query_id": "q-7"})
	c.stream()
	eventually(t, "the query is logged", func() bool { return len(logs.records("query complete")) == 1 })
	if r := logs.records("query complete")[0]; r["session_id"] != sid || r["query_id"] != "q-7" {
		t.Errorf("query log %v: want session_id %s and query_id q-7", r, sid)
	}
	s.refused(t, "session_id="+newSession(t), http.Header{"Origin": {"http://app.example:3000"}})
	refused := logs.records("origin refused")
	if len(refused) != 1 || refused[0]["allow_with"] != "-allowed-origins=app.example:3000" {
		t.Errorf("origin logs %v: want one naming -allowed-origins=app.example:3000", refused)
	}
}

// Cancelling a query of the OpenAI-compatible agent aborts its upstream request
// (CANCEL-1): the model stops, not only the stream.
func TestCancelAbortsUpstream(t *testing.T) {
	aborted := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":\"thinking\"}}]}\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			close(aborted)
		case <-time.After(10 * time.Second):
		}
	}))
	defer upstream.Close()
	s := start(t, func(c *server.Config) { c.Agent = &agent.OpenAI{URL: upstream.URL, Model: "m"} })
	c, _ := s.connect(t, "session_id="+newSession(t))
	c.send(map[string]any{"type": "query", "query": "think long", "query_id": "q-1"})
	c.expect("query_start")
	c.expect("chunk")
	c.send(map[string]any{"type": "cancel", "query_id": "q-1"})
	if f := c.expect("error"); f.str("code") != "cancelled" {
		t.Errorf("got %v, want the query's error with code cancelled", f)
	}
	select {
	case <-aborted:
	case <-time.After(5 * time.Second):
		t.Error("the upstream request was not aborted")
	}
}

// BUF-8: a reconnect without last_seq after the buffer overflowed is told exactly how
// many frames were evicted; the log says so once when the evictions start and once
// with the count, however many there were, and the server counts them.
func TestEvictionsVisible(t *testing.T) {
	var logs *logBuffer
	s := start(t, func(c *server.Config) { c.BufferSize = 3; logs = logged(c) })
	sid := newSession(t)
	c, _ := s.connect(t, "session_id="+sid)
	c.send(query(slowQuery))
	start := c.expect("query_start")
	c.ws.CloseNow()
	eventually(t, "the query finishes offline", func() bool { return !s.SessionBusy(sid) })
	c2, connected := s.connect(t, "session_id="+sid)
	first := c2.next()
	missing := first.num("seq") - start.num("seq") - 1 // evicted, or written into the dying connection
	evicted := connected.num("evicted")
	if evicted < 1 || evicted > missing {
		t.Fatalf("connected %v announces %d evictions; want from 1 to the %d frames missing before seq %d", connected, evicted, missing, first.num("seq"))
	}
	if got := s.EvictedFrames(); got != int64(evicted) {
		t.Errorf("the server counts %d evicted frames, want the %d announced", got, evicted)
	}
	if n := len(logs.records("offline buffer full: evicting its oldest frames")); n != 1 {
		t.Errorf("%d warnings of evictions, want 1 for the offline period", n)
	}
	summary := logs.records("a connection joins after the offline buffer evicted frames; connected tells it how many")
	if len(summary) != 1 || summary[0]["evicted"] != float64(evicted) {
		t.Errorf("summaries %v, want one with evicted %d", summary, evicted)
	}
	// c2 reads the rest of the buffer, so that c3, joining without last_seq, is owed
	// none of it and its first frame answers its ping.
	for f := first; f.str("type") != "complete"; f = c2.next() {
	}
	c3, again := s.connect(t, "session_id="+sid)
	if _, ok := again["evicted"]; ok {
		t.Errorf("connected %v after the evictions were announced: want no evicted", again)
	}
	c3.send(ping)
	c3.expect("pong")
}

// STREAM-6: an upstream's failure reaches the client as a public text, without the
// upstream's address or its own error text; the log has both.
func TestUpstreamFailureLeaksNothing(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":{"message":"Incorrect API key provided: sk-abc"}}`, http.StatusUnauthorized)
	}))
	defer upstream.Close()
	var logs *logBuffer
	up := &agent.OpenAI{URL: upstream.URL, Model: "m"}
	s := start(t, func(c *server.Config) {
		logs = logged(c)
		c.Agent = up
	})
	up.Observe = s.ObserveUpstream
	c, _ := s.connect(t, "session_id="+newSession(t))
	c.send(query("hi"))
	frames := c.stream()
	f := frames[len(frames)-1]
	if want := "Query execution failed: the model upstream refused the request (HTTP 401)"; f.str("code") != "query_failed" || f.str("error") != want {
		t.Errorf("got %v, want query_failed %q", f, want)
	}
	eventually(t, "the failure is logged", func() bool { return len(logs.records("query failed")) == 1 })
	if detail := fmt.Sprint(logs.records("query failed")[0]["err"]); !strings.Contains(detail, "Incorrect API key") || !strings.Contains(detail, upstream.URL) {
		t.Errorf("the log has %q, want the upstream's text and address", detail)
	}
	if _, m := scrape(t, s.URL+"/metrics"); m[`agentws_upstream_request_seconds_count{outcome="refused"}`] != 1 || m[`agentws_queries_total{outcome="query_failed"}`] != 1 {
		t.Errorf("metrics: %v upstream requests refused, %v queries failed; want 1 and 1", m[`agentws_upstream_request_seconds_count{outcome="refused"}`], m[`agentws_queries_total{outcome="query_failed"}`])
	}
}
