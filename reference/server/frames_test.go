package server_test

import (
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/agentws/agentws/reference/server"
)

// ENV-4, CODE-1, CODE-2, STREAM-10: every bad frame of valid UTF-8 gets an error naming
// the problem, with its code; no query runs; the connection stays usable. (A frame that
// is not UTF-8 closes the connection: TestInvalidUTF8.)
func TestBadFrames(t *testing.T) {
	s := start(t, nil)
	c, _ := s.connect(t, "session_id="+newSession(t))
	tests := []struct {
		frame, code, mention string
	}{
		{`{"type": "query", "query": "x"`, "invalid_json", "invalid JSON"},
		{`not json at all`, "invalid_json", "invalid JSON"},
		{`[1,2]`, "invalid_message", "got array, want object"},
		{`null`, "invalid_message", "got null, want object"},
		{`"ping"`, "invalid_message", "got string, want object"},
		{`{}`, "missing_field", "/type"},
		{`{"type": 7}`, "unknown_type", "/type"},
		{`{"type": "subscribe"}`, "unknown_type", "/type"},
		{`{"type": "query"}`, "missing_field", "/query"},
		{`{"type": "query", "query": 42}`, "invalid_field", "/query: got number, want string"},
		{`{"type": "query", "query": ""}`, "invalid_field", "/query"},
		{`{"type": "query", "query": "x", "session_id": "bad id"}`, "invalid_field", "/session_id"},
		{`{"type": null}`, "unknown_type", "/type"},
	}
	for _, tt := range tests {
		c.sendRaw(websocket.MessageText, []byte(tt.frame))
		f := c.expect("error")
		if f.str("code") != tt.code || !strings.Contains(f.str("error"), tt.mention) {
			t.Errorf("%s: got %v, want code %s and a text naming %q", tt.frame, f, tt.code, tt.mention)
		}
	}
	c.send(ping)
	c.expect("pong") // no query_start came before: nothing ran
}

// ENV-3: unknown members are ignored.
func TestUnknownMembersIgnored(t *testing.T) {
	s := start(t, nil)
	c, _ := s.connect(t, "session_id="+newSession(t))
	c.send(map[string]any{"type": "query", "query": "hi", "priority": "high", "meta": map[string]any{"a": 1}})
	if got := checkStream(t, c.stream()); got != "Echo: hi" {
		t.Errorf("got %q", got)
	}
	c.send(map[string]any{"type": "ping", "id": 5})
	c.expect("pong")
}

// ENV-6: a binary frame closes the connection with 1003.
func TestBinaryFrame(t *testing.T) {
	s := start(t, nil)
	c, _ := s.connect(t, "session_id="+newSession(t))
	c.sendRaw(websocket.MessageBinary, []byte(`{"type":"ping"}`))
	c.expectClose(websocket.StatusUnsupportedData)
}

// ENV-8: a text frame that is not UTF-8 closes the connection with 1007, and gets no
// error frame (RFC 6455 section 8.1).
func TestInvalidUTF8(t *testing.T) {
	s := start(t, nil)
	c, _ := s.connect(t, "session_id="+newSession(t))
	c.sendRaw(websocket.MessageText, []byte("{\"type\":\"ping\",\"note\":\"\xff\xfe\"}"))
	if f, err := c.read(); websocket.CloseStatus(err) != websocket.StatusInvalidFramePayloadData {
		t.Fatalf("got frame %v, end %v: want close 1007 and no frame before it", f, err)
	}
}

// ENV-7: a message over the limit closes with 1009; one of 64 KiB is accepted.
func TestMessageSizeLimit(t *testing.T) {
	s := start(t, func(c *server.Config) { c.MaxMessageBytes = 64 << 10 })
	c, _ := s.connect(t, "session_id="+newSession(t))
	text := strings.Repeat("a", 64<<10-len(`{"type":"query","query":""}`))
	c.send(query(text))
	if got := checkStream(t, c.stream()); got != "Echo: "+text {
		t.Errorf("a 64 KiB query: got %d characters back", len(got))
	}
	c.send(query(text + "b"))
	c.expectClose(websocket.StatusMessageTooBig)
}

// CANCEL-3: cancelling a query that is neither queued nor running is refused.
func TestCancelUnknown(t *testing.T) {
	s := start(t, nil)
	c, _ := s.connect(t, "session_id="+newSession(t))
	c.send(map[string]any{"type": "cancel", "query_id": "q1"})
	if f := c.expect("error"); f.str("code") != "unknown_query" || f.str("query_id") != "q1" || f["seq"] != nil {
		t.Errorf("got %v, want a connection-scoped unknown_query for q1", f)
	}
}
