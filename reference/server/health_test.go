package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/coder/websocket"

	"github.com/agentws/agentws/schemas/httpapi"
)

// HEALTH-1 to HEALTH-4: the five fields, with exact counts.
func TestHealthCounts(t *testing.T) {
	s := start(t, nil)
	h := s.health(t)
	want := httpapi.Health{Status: httpapi.HealthStatusHealthy}
	if h != want {
		t.Errorf("fresh server: %+v, want %+v", h, want)
	}
	a, _ := s.connect(t, "session_id="+newSession(t))
	b, _ := s.connect(t, "session_id="+newSession(t))
	a.send(query("count me"))
	frames := len(a.stream())
	b.send(ping)
	b.expect("pong")
	// connected twice, the stream, and the pong. A frame counts once written, which the
	// client may see first: poll until the count arrives, then make sure it stays.
	sent := 2 + frames + 1
	eventually(t, fmt.Sprintf("%d frames are counted", sent), func() bool { return s.health(t).TotalMessagesSent >= sent })
	if h = s.health(t); h.TotalMessagesSent != sent || h.ActiveConnections != 2 {
		t.Errorf("health %+v, want %d frames sent and 2 connections", h, sent)
	}
	// HEALTH-3: the counter never falls, even when the sessions go.
	for _, c := range []*client{a, b} {
		c.send(map[string]any{"type": "disconnect"})
		c.expect("disconnected")
		c.expectClose(websocket.StatusNormalClosure)
	}
	eventually(t, "no active connection", func() bool { return s.health(t).ActiveConnections == 0 })
	if h2 := s.health(t); h2.TotalMessagesSent != sent+2 {
		t.Errorf("after two disconnects: %d frames sent, want %d", h2.TotalMessagesSent, sent+2)
	}
}

// HEALTH-6: health answers while queries stream.
func TestHealthDuringStreams(t *testing.T) {
	s := start(t, nil)
	var clients []*client
	for range 3 {
		c, _ := s.connect(t, "session_id="+newSession(t))
		c.send(query(slowQuery))
		c.expect("query_start")
		clients = append(clients, c)
	}
	if h := s.health(t); h.ActiveConnections != 3 {
		t.Errorf("health during streams: %+v", h)
	}
	for _, c := range clients {
		checkStream(t, append([]frame{{"type": "query_start", "query": slowQuery}}, c.streamRest()...))
	}
}

// streamRest reads the rest of a stream whose query_start was read.
func (c *client) streamRest() []frame {
	var out []frame
	for {
		f := c.next()
		out = append(out, f)
		if f.str("type") == "complete" || f.str("type") == "error" {
			return out
		}
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// SHUT-1 to SHUT-3: a drain refuses new connections, reports draining, closes clients
// with 1001, and lets the running query finish into the buffer.
func TestDrain(t *testing.T) {
	s := start(t, nil)
	if code, body := get(t, s.URL+"/readyz"); code != http.StatusOK || body != "ready" {
		t.Errorf("readyz: %d %q", code, body)
	}
	sid := newSession(t)
	c, _ := s.connect(t, "session_id="+sid)
	c.send(query(slowQuery))
	c.expect("query_start")
	drained := make(chan struct{})
	go func() {
		s.Drain(context.Background())
		close(drained)
	}()
	c.expectClose(websocket.StatusGoingAway)
	if h := s.health(t); h.Status != httpapi.HealthStatusDraining {
		t.Errorf("status %s, want draining", h.Status)
	}
	if code, body := get(t, s.URL+"/readyz"); code != http.StatusServiceUnavailable || body != "draining" {
		t.Errorf("readyz while draining: %d %q", code, body)
	}
	if code, he := s.refused(t, "session_id="+newSession(t), nil); code != http.StatusServiceUnavailable || he.Code != httpapi.HTTPErrorCodeDraining {
		t.Errorf("a new connection while draining: %d %s", code, he.Code)
	}
	if code, body := get(t, s.URL+"/livez"); code != http.StatusOK || body != "ok" {
		t.Errorf("livez while draining: %d %q", code, body)
	}
	<-drained
	if h := s.health(t); h.SessionsWithBuffer != 1 {
		t.Errorf("after the drain: %+v, want the finished query's frames in one buffer", h)
	}
}
