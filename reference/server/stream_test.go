package server_test

import (
	"context"
	"strings"
	"testing"
	"time"
)

// STREAM-1 to STREAM-5, FIX-1: a query streams its answer.
func TestQueryStream(t *testing.T) {
	s := start(t, nil)
	sid := newSession(t)
	c, _ := s.connect(t, "session_id="+sid)
	q := "What is the capital of France? " + strings.Repeat("Tell me more. ", 5)
	c.send(map[string]any{"type": "query", "query": q, "session_id": sid})
	frames := c.stream()
	if got := checkStream(t, frames); got != "Echo: "+q {
		t.Errorf("answer %q, want %q", got, "Echo: "+q)
	}
	if len(frames) < 4 {
		t.Errorf("got %d frames, want several chunks", len(frames))
	}
	for _, f := range frames {
		if f.str("session_id") != sid {
			t.Errorf("%v: want session_id %s (STREAM-2)", f, sid)
		}
	}
	if frames[0].str("query") != q {
		t.Errorf("query_start %v does not echo the query", frames[0])
	}
}

// STREAM-6, FIX-2: an agent failure ends the stream with an error, no complete.
func TestQueryFailure(t *testing.T) {
	s := start(t, nil)
	c, _ := s.connect(t, "session_id="+newSession(t))
	c.send(query("__fail__"))
	c.expect("query_start")
	f := c.expect("error")
	if f.str("code") != "query_failed" || !strings.HasPrefix(f.str("error"), "Query execution failed: ") {
		t.Errorf("got %v", f)
	}
	c.send(ping)
	c.expect("pong")
}

// STREAM-7: queries run one at a time in arrival order.
func TestQueriesRunInOrder(t *testing.T) {
	s := start(t, nil)
	c, _ := s.connect(t, "session_id="+newSession(t))
	qs := []string{"__slow__ first", "second", "third " + strings.Repeat("x", 50)}
	for _, q := range qs {
		c.send(query(q))
	}
	for _, q := range qs {
		if got := checkStream(t, c.stream()); got != "Echo: "+q {
			t.Fatalf("got %q, want the answer to %q next", got, q)
		}
	}
}

// STREAM-9: a query naming another session is refused.
func TestQuerySessionMismatch(t *testing.T) {
	s := start(t, nil)
	c, _ := s.connect(t, "session_id="+newSession(t))
	c.send(map[string]any{"type": "query", "query": "x", "session_id": "someone-else"})
	if f := c.expect("error"); f.str("code") != "session_mismatch" {
		t.Errorf("got %v", f)
	}
	c.send(ping)
	c.expect("pong")
}

// PING-1, PING-2: ping is answered while a query streams, before the stream ends; and
// KA-2: so are WebSocket pings.
func TestPingDuringStream(t *testing.T) {
	s := start(t, nil)
	c, _ := s.connect(t, "session_id="+newSession(t))
	c.send(query("__slow__ a long answer that takes a while"))
	c.expect("query_start")
	c.send(ping)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pinged := make(chan error, 1)
	go func() { pinged <- c.ws.Ping(ctx) }() // answered while this goroutine reads
	gotPong := false
	for {
		f := c.next()
		if f.str("type") == "pong" {
			gotPong = true
		}
		if f.str("type") == "complete" {
			break
		}
	}
	if !gotPong {
		t.Error("the stream completed before the pong: ping waited for the stream")
	}
	if err := <-pinged; err != nil {
		t.Errorf("WebSocket ping during a stream: %v", err)
	}
}
