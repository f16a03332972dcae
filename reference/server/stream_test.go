package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/agentws/agentws/reference/server"
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

// STREAM-8: the queue is bounded; an overflow is refused with busy and not run.
func TestQueueBound(t *testing.T) {
	s := start(t, func(c *server.Config) { c.QueueDepth = 1 })
	sid := newSession(t)
	c, _ := s.connect(t, "session_id="+sid)
	c.send(query("__slow__ running"))
	c.expect("query_start")
	c.send(query("waiting"))
	c.send(query("refused"))
	var got []string
	for len(got) < 4 {
		f := c.next()
		switch f.str("type") {
		case "error":
			got = append(got, "error:"+f.str("code"))
		case "complete":
			got = append(got, "complete:"+f.str("full_response"))
		case "query_start":
			got = append(got, "start:"+f.str("query"))
		}
	}
	want := []string{"error:busy", "complete:Echo: __slow__ running", "start:waiting", "complete:Echo: waiting"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	c.send(ping)
	c.expect("pong") // the refused query never started
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

// KA-1: an idle connection gets keepalive frames; one that is sent frames more often
// than the interval (a stream, 100 ms apart) is left out of the broadcast.
func TestKeepalive(t *testing.T) {
	s := start(t, func(c *server.Config) { c.KeepaliveInterval = 300 * time.Millisecond })
	idle, _ := s.connect(t, "session_id="+newSession(t))
	busy, _ := s.connect(t, "session_id="+newSession(t))
	idle.keepalive, busy.keepalive = true, true
	busy.send(query("__slow__ a stream that never idles long"))
	for {
		f := busy.next()
		if f.str("type") == "keepalive" {
			t.Fatal("a keepalive during a stream that sends a frame every 100 ms")
		}
		if f.str("type") == "complete" {
			break
		}
	}
	idle.expect("keepalive")
	idle.expect("keepalive")
}
