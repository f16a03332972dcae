package server_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentws/agentws/reference/agent"
	"github.com/agentws/agentws/reference/server"
)

// With the upstream check on, /readyz fails while the model upstream fails its check,
// saying why in words that leak nothing, and passes again once it passes; the log has
// the detail once per change, and upstream_up follows.
func TestUpstreamCheck(t *testing.T) {
	var down atomic.Bool
	var checks atomic.Int32
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/models" {
			http.NotFound(w, r)
			return
		}
		checks.Add(1)
		if down.Load() {
			http.Error(w, `{"error":{"message":"Incorrect API key provided: sk-abc"}}`, http.StatusUnauthorized)
			return
		}
		w.Write([]byte(`{"object":"list","data":[]}`))
	}))
	defer upstream.Close()
	var logs *logBuffer
	s := start(t, func(c *server.Config) {
		logs = logged(c)
		c.Agent = &agent.OpenAI{URL: upstream.URL + "/v1", Model: "m"}
		c.UpstreamCheckInterval = 10 * time.Millisecond
	})
	eventually(t, "the first check", func() bool { return checks.Load() > 0 })
	if status, body := get(t, s.URL+"/readyz"); status != http.StatusOK {
		t.Fatalf("with the upstream up: %d %q", status, body)
	}
	down.Store(true)
	eventually(t, "readiness fails", func() bool { status, _ := get(t, s.URL+"/readyz"); return status == http.StatusServiceUnavailable })
	if _, body := get(t, s.URL+"/readyz"); body != "upstream unavailable: the model upstream refused the request (HTTP 401)" {
		t.Errorf("the body says %q", body)
	}
	if _, m := scrape(t, s.URL+"/metrics"); m["agentws_upstream_up"] != 0 {
		t.Errorf("upstream_up %v while the upstream fails, want 0", m["agentws_upstream_up"])
	}
	n := checks.Load()
	eventually(t, "more checks", func() bool { return checks.Load() >= n+3 })
	if r := logs.records("upstream check failed: /readyz fails until it passes"); len(r) != 1 || !strings.Contains(r[0]["err"].(string), "Incorrect API key") {
		t.Errorf("failure logs %v: want one, with the upstream's text", r)
	}
	down.Store(false)
	eventually(t, "readiness again", func() bool { status, _ := get(t, s.URL+"/readyz"); return status == http.StatusOK })
	if _, m := scrape(t, s.URL+"/metrics"); m["agentws_upstream_up"] != 1 {
		t.Errorf("upstream_up %v with the upstream back, want 1", m["agentws_upstream_up"])
	}
	if r := logs.records("upstream check passed again: /readyz passes"); len(r) != 1 {
		t.Errorf("recovery logs %v: want one", r)
	}
}

// Without the check, /readyz does not ask the upstream, and upstream_up is absent.
func TestNoUpstreamCheck(t *testing.T) {
	var asked atomic.Int32
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer upstream.Close()
	s := start(t, func(c *server.Config) { c.Agent = &agent.OpenAI{URL: upstream.URL, Model: "m"} })
	if status, body := get(t, s.URL+"/readyz"); status != http.StatusOK || asked.Load() != 0 {
		t.Errorf("readyz %d %q after %d requests upstream; want 200 and none", status, body, asked.Load())
	}
	if _, m := scrape(t, s.URL+"/metrics"); func() bool { _, ok := m["agentws_upstream_up"]; return ok }() {
		t.Error("upstream_up is served with no check")
	}
}
