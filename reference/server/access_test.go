package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coder/websocket"

	"github.com/agentws/agentws/reference/server"
)

// The access log has one line per handshake on /ws, accepted or refused, whatever
// refused it, with its status and, for a refusal, its code and text.
func TestAccessLog(t *testing.T) {
	var logs *logBuffer
	s := start(t, func(c *server.Config) {
		logs = logged(c)
		c.MaxConnsPerIP = 2
		c.AllowedOrigins = []string{"app.example.com"}
	})
	sid := newSession(t)
	c, _ := s.connect(t, "session_id="+sid+"&user_id=alice")
	s.refused(t, "session_id=bad%20id", nil)
	s.refused(t, "session_id="+newSession(t), http.Header{"Origin": {"https://evil.example"}})
	s.connect(t, "session_id="+newSession(t))
	s.refused(t, "session_id="+newSession(t), nil) // a third connection of the address
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/ws?session_id=x", nil)
	req.Host = "rebound.example"
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	if resp, err := http.Get(s.URL + "/ws?session_id=plain"); err != nil { // not an upgrade
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	if resp, err := http.Get(s.URL + "/ws/health"); err != nil { // not a handshake: not logged
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	c.ws.Close(websocket.StatusNormalClosure, "")

	type line struct {
		status  float64
		code    string
		session string
	}
	want := []line{
		{101, "", sid},
		{400, "invalid_session_id", "bad id"},
		{403, "origin_not_allowed", ""},
		{101, "", ""},
		{429, "too_many_connections", ""},
		{403, "host_not_allowed", "x"},
		{426, "not_websocket", "plain"},
	}
	got := logs.records("handshake")
	if len(got) != len(want) {
		t.Fatalf("%d handshake lines, want %d: %v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g["status"] != w.status || (g["code"] != nil) != (w.code != "") || (w.code != "" && g["code"] != w.code) {
			t.Errorf("line %d: %v, want status %v code %q", i, g, w.status, w.code)
		}
		if w.session != "" && g["session_id"] != w.session {
			t.Errorf("line %d: session_id %v, want %q", i, g["session_id"], w.session)
		}
		if w.code != "" && g["error"] == "" {
			t.Errorf("line %d: a refusal without its text: %v", i, g)
		}
		if g["remote"] == nil || g["took"] == nil {
			t.Errorf("line %d: no remote or took: %v", i, g)
		}
	}
	if got[0]["user_id"] != "alice" {
		t.Errorf("the first handshake's user_id: %v", got[0]["user_id"])
	}
	if got[2]["origin"] != "https://evil.example" {
		t.Errorf("the refused origin is not logged: %v", got[2])
	}
}

// A refused client frame is logged with its code, its query_id and the text the
// client got; a client that keeps sending refused frames gets ten lines at once and
// then one a second, each counting those left out.
func TestRefusalLog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs *logBuffer
		s := startInBubble(t, func(c *server.Config) {
			logs = logged(c)
			c.QueryRate, c.QueryBurst = 0.001, 1
		})
		ws, _ := s.connect(t, "session_id=refusals")
		writeFrame(t, ws, map[string]any{"type": "query", "query": "hello"})
		for readFrame(t, ws).str("type") != "complete" {
		}
		for i := range 30 {
			writeFrame(t, ws, map[string]any{"type": "query", "query": "over", "query_id": fmt.Sprint("q", i)})
			if f := readFrame(t, ws); f.str("code") != "rate_limited" && f.str("code") != "invalid_message" {
				t.Fatalf("got %v, want a refusal", f)
			}
		}
		synctest.Wait()
		if got := logs.records("client frame refused"); len(got) != 10 {
			t.Fatalf("%d lines for 30 refusals at once, want 10", len(got))
		}
		time.Sleep(time.Second)
		writeFrame(t, ws, map[string]any{"type": "query", "query": "over", "query_id": "late"})
		readFrame(t, ws)
		synctest.Wait()
		got := logs.records("client frame refused")
		if len(got) != 11 {
			t.Fatalf("%d lines after a second, want 11", len(got))
		}
		last := got[10]
		if last["code"] != "rate_limited" || last["query_id"] != "late" || last["unlogged_refusals"] != float64(20) || last["error"] == "" {
			t.Errorf("the line after a second: %v, want rate_limited for late, 20 unlogged", last)
		}
		ws.Close(websocket.StatusNormalClosure, "")
	})
}

// What a client chooses (a header, a value a refusal quotes) is cut short in log lines
// and refusals: a line stays small whatever the client sent.
func TestLogLinesStaySmall(t *testing.T) {
	var logs *logBuffer
	s := start(t, func(c *server.Config) { logs = logged(c) })
	huge := strings.Repeat("!", 100_000)
	s.refused(t, "session_id="+newSession(t), http.Header{"Origin": {"http://" + strings.Repeat("a", 30_000) + ".example"}, "User-Agent": {huge}})
	c, _ := s.connect(t, "session_id="+newSession(t))
	c.send(map[string]any{"type": "query", "query": "hi", "query_id": huge})
	if f := c.expect("error"); len(f.str("error")) > 600 {
		t.Errorf("the refusal's text is %d bytes long, want it cut to about 512", len(f.str("error")))
	}
	eventually(t, "the refusal is logged", func() bool { return len(logs.records("client frame refused")) == 1 })
	logs.mu.Lock()
	defer logs.mu.Unlock()
	for _, line := range strings.Split(logs.buf.String(), "\n") {
		if len(line) > 2000 {
			t.Errorf("a log line of %d bytes: %.200s…", len(line), line)
		}
	}
}
