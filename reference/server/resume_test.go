package server_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/agentws/agentws/reference/server"
	"github.com/agentws/agentws/schemas/httpapi"
)

// SEQ-1: session-scoped frames are numbered 1, 2, ... across queries; others are not.
func TestSeqNumbering(t *testing.T) {
	s := start(t, nil)
	c, _ := s.connect(t, "session_id="+newSession(t))
	want := 1
	for _, q := range []string{"one", "two"} {
		c.send(query(q))
		for _, f := range c.stream() {
			if f.num("seq") != want {
				t.Fatalf("frame %v: seq %d, want %d", f, f.num("seq"), want)
			}
			want++
		}
		c.send(ping)
		if f := c.expect("pong"); f["seq"] != nil {
			t.Errorf("pong %v carries a seq", f)
		}
	}
}

// SEQ-3: a reconnect with last_seq gets exactly the frames after it, once each.
func TestResumeExact(t *testing.T) {
	s := start(t, nil)
	sid := newSession(t)
	c, hello := s.connect(t, "session_id="+sid)
	c.send(query(slowQuery))
	got := []frame{c.expect("query_start"), c.expect("chunk")}
	last := got[1].num("seq")
	c.ws.CloseNow()
	c2, hello2 := s.connect(t, fmt.Sprintf("session_id=%s&last_seq=%d&epoch=%s", sid, last, hello.str("epoch")))
	if hello2["resumed"] != true || hello2.str("epoch") != hello.str("epoch") || hello2["missed"] != nil {
		t.Fatalf("connected %v: want resumed true in the same epoch", hello2)
	}
	for {
		f := c2.next()
		if f.num("seq") != last+1 {
			t.Fatalf("got seq %d after %d: %v", f.num("seq"), last, f)
		}
		last++
		got = append(got, f)
		if f.str("type") == "complete" {
			break
		}
	}
	if answer := checkStream(t, got); answer != "Echo: "+slowQuery {
		t.Errorf("answer %q", answer)
	}
}

// SEQ-4: frames evicted from the history are reported missed, not pretended.
func TestResumeAfterEviction(t *testing.T) {
	s := start(t, func(c *server.Config) { c.BufferSize = 5 })
	sid := newSession(t)
	c, hello := s.connect(t, "session_id="+sid)
	c.send(query(slowQuery))
	c.expect("query_start")
	c.ws.CloseNow()
	eventually(t, "the query finishes offline", func() bool { return !s.SessionBusy(sid) })
	c2, hello2 := s.connect(t, fmt.Sprintf("session_id=%s&last_seq=1&epoch=%s", sid, hello.str("epoch")))
	total := 2 + (len("Echo: "+slowQuery)+7)/8 // query_start, chunks of 8 characters, complete
	if hello2["resumed"] != false || hello2.num("missed") != total-1-5 {
		t.Fatalf("connected %v: want resumed false and %d missed", hello2, total-1-5)
	}
	for seq := total - 4; seq <= total; seq++ {
		if f := c2.next(); f.num("seq") != seq {
			t.Fatalf("got %v, want seq %d", f, seq)
		}
	}
}

// SEQ-5: a reconnect naming another epoch, or a seq never reached, is not resumed.
func TestResumeStale(t *testing.T) {
	s := start(t, nil)
	sid := newSession(t)
	c, hello := s.connect(t, "session_id="+sid)
	c.send(query("hi"))
	n := len(c.stream())
	c.ws.CloseNow()
	for _, q := range []string{"&last_seq=2&epoch=other", fmt.Sprintf("&last_seq=99&epoch=%s", hello.str("epoch"))} {
		c2, hello2 := s.connect(t, "session_id="+sid+q)
		if hello2["resumed"] != false || hello2["missed"] != nil {
			t.Errorf("%s: connected %v, want resumed false and no missed", q, hello2)
		}
		for seq := 1; seq <= n; seq++ { // the whole kept history, from its first seq
			if f := c2.next(); f.num("seq") != seq {
				t.Fatalf("%s: got %v, want seq %d", q, f, seq)
			}
		}
		c2.ws.CloseNow()
	}
	if status, he := s.refused(t, "session_id="+sid+"&last_seq=-1", nil); status != http.StatusBadRequest || he.Code != httpapi.HTTPErrorCodeInvalidParameter {
		t.Errorf("last_seq=-1: %d %s, want 400 invalid_parameter", status, he.Code)
	}
}

// QID-1 to QID-4: ids are echoed or assigned; a duplicate never runs twice.
func TestQueryIDs(t *testing.T) {
	s := start(t, nil)
	c, _ := s.connect(t, "session_id="+newSession(t))
	c.send(map[string]any{"type": "query", "query": slowQuery, "query_id": "a"})
	c.expect("query_start")
	c.send(map[string]any{"type": "query", "query": slowQuery, "query_id": "a"}) // running: ignored
	c.send(query("no id"))
	var ids []string
	for completes := 0; completes < 2; {
		f := c.next()
		if f.str("type") == "query_start" || f.str("type") == "complete" {
			ids = append(ids, f.str("type")+":"+f.str("query_id"))
		}
		if f.str("type") == "complete" {
			completes++
		}
	}
	if want := "[complete:a query_start:auto-1 complete:auto-1]"; fmt.Sprint(ids) != want {
		t.Errorf("frames %v, want %s", ids, want)
	}
	c.send(map[string]any{"type": "query", "query": "ignored", "query_id": "a"}) // finished: replayed
	if f := c.expect("complete"); f["replayed"] != true || f.str("full_response") != "Echo: "+slowQuery {
		t.Errorf("got %v, want the first complete replayed", f)
	}
	c.send(ping)
	c.expect("pong")
}

// CANCEL-1, CANCEL-2: cancel stops the running query and removes a queued one.
func TestCancel(t *testing.T) {
	s := start(t, nil)
	sid := newSession(t)
	c, _ := s.connect(t, "session_id="+sid)
	c.send(map[string]any{"type": "query", "query": slowQuery, "query_id": "run"})
	c.send(map[string]any{"type": "query", "query": "queued", "query_id": "wait"})
	c.expect("query_start")
	c.send(map[string]any{"type": "cancel", "query_id": "wait"})
	c.send(map[string]any{"type": "cancel", "query_id": "run"})
	var ends []string
	for len(ends) < 2 {
		f := c.next()
		if f.str("type") == "complete" {
			t.Fatalf("a cancelled query completed: %v", f)
		}
		if f.str("type") == "error" {
			ends = append(ends, f.str("query_id")+":"+f.str("code"))
		}
	}
	if fmt.Sprint(ends) != "[wait:cancelled run:cancelled]" {
		t.Errorf("ends %v", ends)
	}
	eventually(t, "nothing runs", func() bool { return !s.SessionBusy(sid) })
	c.send(ping)
	c.expect("pong")
}
