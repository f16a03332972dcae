package client_test

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/agentws/agentws/reference/client"
	"github.com/agentws/agentws/schemas/msg"
)

// notices collects what OnNotice is given.
func notices() (chan msg.Notice, func(msg.Notice)) {
	ch := make(chan msg.Notice, 100)
	return ch, func(n msg.Notice) { ch <- n }
}

// drain returns the notices received so far.
func drain(ch chan msg.Notice) []msg.Notice {
	var out []msg.Notice
	for {
		select {
		case n := <-ch:
			out = append(out, n)
		default:
			return out
		}
	}
}

// A notice between the frames of a stream reaches OnNotice, in order, and changes no
// stream (NOTICE-2): the answer is whole, and the chunk after it is not a gap, whether
// frames are matched by query_id and seq or by order.
func TestNoticeMidStream(t *testing.T) {
	for _, tc := range []struct {
		name string
		caps []string
	}{
		{"all capabilities", allCaps},
		{"core server", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, func(h *fakeConn) {
				h.accept(map[string]any{"capabilities": tc.caps, "epoch": "e1"})
				q := h.recv()
				// send numbers the frames and names the query (nil for a notice) when the
				// server claims them.
				seq := 0
				send := func(typ string, qid any, kv ...any) {
					if tc.caps != nil {
						seq++
						kv = append(kv, "seq", seq)
						if qid != nil {
							kv = append(kv, "query_id", qid)
						}
					}
					h.send(frame(typ, kv...))
				}
				qid := q["query_id"]
				send("notice", nil, "notice_id", "n-1", "message", "before the answer", "level", "info")
				send("query_start", qid, "query", q["query"])
				send("chunk", qid, "chunk_number", 1, "content", "Hel")
				send("notice", nil, "notice_id", "n-2", "message", "Maintenance in 5 minutes", "level", "warning", "data", map[string]any{"in_s": 300})
				send("chunk", qid, "chunk_number", 2, "content", "lo")
				send("complete", qid, "full_response", "Hello", "total_chunks", 2)
				h.wait()
			})
			var cl atomic.Pointer[client.Client]
			got := make(chan msg.Notice, 100)
			c := dial(t, f.URL, client.Options{OnNotice: func(n msg.Notice) {
				if c := cl.Load(); c != nil {
					c.Capabilities() // the client's methods may be called from OnNotice
				}
				got <- n
			}})
			cl.Store(c)
			text, err := collect(c.Query(testContext(t), "q"))
			if err != nil || text != "Hello" {
				t.Fatalf("got %q, %v; want Hello, whole", text, err)
			}
			ns := drain(got)
			if len(ns) != 2 || ns[0].NoticeId != "n-1" || ns[1].NoticeId != "n-2" {
				t.Fatalf("notices %+v, want n-1 then n-2", ns)
			}
			n := ns[1]
			if n.Message != "Maintenance in 5 minutes" || n.Level != msg.NoticeLevelWarning || n.SessionId != "s" || n.Data["in_s"] != float64(300) {
				t.Errorf("notice %+v: want its message, level warning, session s and data", n)
			}
			if tc.caps != nil && n.Seq != 4 {
				t.Errorf("notice seq %d, want 4", n.Seq)
			}
		})
	}
}

// A notice's seq counts for last_seq like any session-scoped frame's, and a notice a
// resume sends again is not delivered twice (CLIENT-5).
func TestNoticeResumeDedupe(t *testing.T) {
	var qid any
	f := newFake(t,
		func(h *fakeConn) {
			h.accept(map[string]any{"capabilities": allCaps, "epoch": "e1"})
			qid = h.recv()["query_id"]
			h.send(frame("query_start", "query_id", qid, "seq", 1, "query", "q"))
			h.send(frame("chunk", "query_id", qid, "seq", 2, "chunk_number", 1, "content", "a"))
			h.send(frame("notice", "seq", 3, "notice_id", "n-1", "message", "hello", "level", "info"))
			h.drop()
		},
		func(h *fakeConn) {
			h.accept(map[string]any{"capabilities": allCaps, "epoch": "e1", "resumed": true})
			h.send(frame("notice", "seq", 3, "notice_id", "n-1", "message", "hello", "level", "info")) // again
			h.send(frame("notice", "seq", 4, "notice_id", "n-2", "message", "again", "level", "critical"))
			h.send(frame("chunk", "query_id", qid, "seq", 5, "chunk_number", 2, "content", "b"))
			h.send(frame("complete", "query_id", qid, "seq", 6, "full_response", "ab", "total_chunks", 2))
			h.wait()
		},
	)
	got, onNotice := notices()
	c := dial(t, f.URL, client.Options{OnNotice: onNotice})
	text, err := collect(c.Query(testContext(t), "q"))
	if err != nil || text != "ab" {
		t.Fatalf("got %q, %v; want ab", text, err)
	}
	hs := f.handshakes()
	if len(hs) != 2 || hs[1].Get("last_seq") != "3" || hs[1].Get("epoch") != "e1" {
		t.Errorf("handshakes %v: want a reconnection with last_seq 3 (the notice's) and epoch e1", hs)
	}
	ns := drain(got)
	if len(ns) != 2 || ns[0].NoticeId != "n-1" || ns[1].NoticeId != "n-2" || ns[1].Level != msg.NoticeLevelCritical {
		t.Fatalf("notices %+v, want n-1 once, then n-2", ns)
	}
}

// Close 4003 (the operator ended the session through the admin API) ends the client
// and its queries with ended, and the client does not reconnect (CLIENT-4).
func TestEndedClose(t *testing.T) {
	f := newFake(t, func(h *fakeConn) {
		h.accept(map[string]any{"capabilities": allCaps, "epoch": "e1"})
		qid := h.recv()["query_id"]
		h.send(frame("query_start", "query_id", qid, "seq", 1, "query", "q"))
		h.send(frame("chunk", "query_id", qid, "seq", 2, "chunk_number", 1, "content", "a"))
		h.ws.Close(4003, "session ended")
	})
	c := dial(t, f.URL, client.Options{})
	text, err := collect(c.Query(testContext(t), "q"))
	if !errors.Is(err, client.ErrEnded) || text != "a" {
		t.Fatalf("got %q, %v; want a, then ended", text, err)
	}
	if e := new(client.Error); !errors.As(err, &e) || e.Code != "ended" || errors.Is(err, client.ErrReplaced) || errors.Is(err, client.ErrSessionEnded) {
		t.Errorf("%v: want code ended, neither replaced nor session_ended", err)
	}
	if err := ended(t, c); !errors.Is(err, client.ErrEnded) {
		t.Errorf("client ended with %v, want ended", err)
	}
	// Done is closed once the client has stopped reconnecting for good.
	if n := len(f.handshakes()); n != 1 {
		t.Errorf("%d handshakes, want 1: no reconnection after 4003", n)
	}
	if _, err := c.Query(testContext(t), "again").Result(); !errors.Is(err, client.ErrEnded) {
		t.Errorf("a query after the end: %v, want ended", err)
	}
}
