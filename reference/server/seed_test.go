package server_test

import (
	"strings"
	"testing"
)

// The original design document's Python example client, replayed: it connects with only a
// session_id, reads connected, sends a query with its session_id, then prints each
// frame's type and content until complete.
func TestSeedPythonClient(t *testing.T) {
	s := start(t, nil)
	c := s.dial(t, "session_id=test-session")
	if f := c.next(); f.str("type") != "connected" {
		t.Fatalf("first frame %v, want connected", f)
	}
	c.send(map[string]any{"type": "query", "query": "What is the capital of France?", "session_id": "test-session"})
	var printed []string
	for {
		f := c.next()
		printed = append(printed, f.str("type")+": "+f.str("content"))
		if f.str("type") == "complete" {
			break
		}
	}
	if printed[0] != "query_start: " || !strings.HasPrefix(printed[1], "chunk: Echo: ") {
		t.Errorf("the client printed %q", printed)
	}
}

// The original design document's JavaScript example client, replayed: it connects with a
// session_id and a user_id, sends a query on open (before reading connected), and
// switches on connected, chunk, complete and error.
func TestSeedJavaScriptClient(t *testing.T) {
	s := start(t, nil)
	c := s.dial(t, "session_id=my-session&user_id=user1")
	c.send(map[string]any{"type": "query", "query": "Help me analyze this document", "session_id": "my-session"})
	var seen []string
	var full strings.Builder
	for {
		f := c.next()
		switch f.str("type") {
		case "connected", "complete", "error":
			seen = append(seen, f.str("type"))
		case "chunk":
			full.WriteString(f.str("content"))
		}
		if f.str("type") == "complete" {
			if f.str("full_response") != full.String() {
				t.Errorf("full_response %q, chunks %q", f.str("full_response"), full.String())
			}
			break
		}
	}
	if strings.Join(seen, ",") != "connected,complete" {
		t.Errorf("the client saw %v", seen)
	}
	if full.String() != "Echo: Help me analyze this document" {
		t.Errorf("answer %q", full.String())
	}
}
