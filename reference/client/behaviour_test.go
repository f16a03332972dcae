package client_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/agentws/agentws/reference/client"
)

var allCaps = []string{"buffering", "query_id", "error_codes", "resume", "cancel"}

// Against a core 1.0 server (no capability), frames are matched to queries by order and
// an answer arrives; after a drop mid-answer the client reconnects without last_seq,
// and the query ends with no_resume instead of a short answer.
func TestCoreServer(t *testing.T) {
	f := newFake(t,
		func(h *fakeConn) {
			h.accept(nil)
			q := h.recv()
			if _, ok := q["query_id"]; ok {
				t.Errorf("query %v has a query_id the server does not claim (CLIENT-2)", q)
			}
			h.send(frame("query_start", "query", q["query"]))
			h.send(frame("chunk", "chunk_number", 1, "content", "Hel"))
			h.send(frame("chunk", "chunk_number", 2, "content", "lo"))
			h.send(frame("complete", "full_response", "Hello", "total_chunks", 2))
			q = h.recv()
			h.send(frame("query_start", "query", q["query"]))
			h.send(frame("chunk", "chunk_number", 1, "content", "Half"))
			h.drop()
		},
		func(h *fakeConn) {
			h.accept(nil)
			h.wait()
		},
	)
	c := dial(t, f.URL, client.Options{})
	if a, err := c.Query(testContext(t), "one").Result(); err != nil || a.Text != "Hello" || a.TotalChunks != 2 {
		t.Fatalf("first query: %+v, %v; want Hello in 2 chunks", a, err)
	}
	q := c.Query(testContext(t), "two")
	got, err := collect(q)
	if !errors.Is(err, client.ErrNoResume) || got != "Half" {
		t.Fatalf("after a drop: %q, %v; want Half and no_resume", got, err)
	}
	hs := f.handshakes()
	if len(hs) != 2 {
		t.Fatalf("%d handshakes, want 2", len(hs))
	}
	if hs[1].Has("last_seq") || hs[1].Has("epoch") || hs[1].Get("session_id") != c.SessionID() {
		t.Errorf("reconnection %v: want the same session_id, and no last_seq or epoch without resume", hs[1])
	}
	if caps := c.Capabilities(); len(caps) != 0 {
		t.Errorf("capabilities %v, want none", caps)
	}
}

// With resume, a reconnection sends last_seq and epoch; frames already received are
// discarded; the answer is whole.
func TestResumeDedupe(t *testing.T) {
	var qid any
	f := newFake(t,
		func(h *fakeConn) {
			h.accept(map[string]any{"capabilities": allCaps, "epoch": "e1"})
			qid = h.recv()["query_id"]
			h.send(frame("query_start", "query_id", qid, "seq", 1, "query", "q"))
			h.send(frame("chunk", "query_id", qid, "seq", 2, "chunk_number", 1, "content", "a"))
			h.drop()
		},
		func(h *fakeConn) {
			h.accept(map[string]any{"capabilities": allCaps, "epoch": "e1", "resumed": true})
			h.send(frame("chunk", "query_id", qid, "seq", 2, "chunk_number", 1, "content", "a")) // again
			h.send(frame("chunk", "query_id", qid, "seq", 3, "chunk_number", 2, "content", "b"))
			h.send(frame("complete", "query_id", qid, "seq", 4, "full_response", "ab", "total_chunks", 2))
			h.wait()
		},
	)
	c := dial(t, f.URL, client.Options{UserID: "u1"})
	got, err := collect(c.Query(testContext(t), "q"))
	if err != nil || got != "ab" {
		t.Fatalf("got %q, %v; want ab", got, err)
	}
	hs := f.handshakes()
	if r := hs[len(hs)-1]; r.Get("last_seq") != "2" || r.Get("epoch") != "e1" || r.Get("user_id") != "u1" {
		t.Errorf("reconnection %v: want last_seq 2, epoch e1, user_id u1", r)
	}
}

// resumed false, and a new epoch, are gaps: the answer is not presented as whole.
func TestResumeGap(t *testing.T) {
	for _, tc := range []struct {
		name      string
		connected map[string]any
	}{
		{"missed", map[string]any{"capabilities": allCaps, "epoch": "e1", "resumed": false, "missed": 3}},
		{"new epoch", map[string]any{"capabilities": allCaps, "epoch": "e2", "resumed": false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t,
				func(h *fakeConn) {
					h.accept(map[string]any{"capabilities": allCaps, "epoch": "e1"})
					qid := h.recv()["query_id"]
					h.send(frame("query_start", "query_id", qid, "seq", 1, "query", "q"))
					h.send(frame("chunk", "query_id", qid, "seq", 2, "chunk_number", 1, "content", "a"))
					h.drop()
				},
				func(h *fakeConn) {
					h.accept(tc.connected)
					h.wait()
				},
			)
			c := dial(t, f.URL, client.Options{})
			if got, err := collect(c.Query(testContext(t), "q")); !errors.Is(err, client.ErrGap) {
				t.Fatalf("got %q, %v; want a gap", got, err)
			}
		})
	}
}

// A chunk whose number is not the next one is a gap.
func TestChunkGap(t *testing.T) {
	f := newFake(t, func(h *fakeConn) {
		h.accept(nil)
		h.recv()
		h.send(frame("query_start", "query", "q"))
		h.send(frame("chunk", "chunk_number", 1, "content", "a"))
		h.send(frame("chunk", "chunk_number", 3, "content", "c"))
		h.send(frame("complete", "full_response", "abc", "total_chunks", 3))
		h.wait()
	})
	c := dial(t, f.URL, client.Options{})
	if _, err := c.Query(testContext(t), "q").Result(); !errors.Is(err, client.ErrGap) {
		t.Fatalf("got %v, want a gap", err)
	}
}

// Close codes after which the client does not reconnect end it, and its queries, with
// their codes; the server sees no second handshake.
func TestPermanentCloses(t *testing.T) {
	for _, tc := range []struct {
		status websocket.StatusCode
		want   error
	}{
		{4001, client.ErrReplaced},
		{4003, client.ErrEnded},
		{websocket.StatusPolicyViolation, &client.Error{Code: client.CodePolicyViolation}},
		{websocket.StatusProtocolError, &client.Error{Code: client.CodeProtocolError}},
		{websocket.StatusUnsupportedData, &client.Error{Code: client.CodeUnsupportedData}},
		{websocket.StatusInvalidFramePayloadData, &client.Error{Code: client.CodeInvalidPayload}},
		{websocket.StatusMessageTooBig, &client.Error{Code: client.CodeMessageTooBig}},
	} {
		t.Run(tc.status.String(), func(t *testing.T) {
			f := newFake(t, func(h *fakeConn) {
				h.accept(map[string]any{"capabilities": allCaps, "epoch": "e1"})
				h.recv()
				h.ws.Close(tc.status, "bye")
			})
			c := dial(t, f.URL, client.Options{})
			_, err := c.Query(testContext(t), "q").Result()
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if err := ended(t, c); !errors.Is(err, tc.want) {
				t.Errorf("client ended with %v, want %v", err, tc.want)
			}
			if _, err := c.Query(testContext(t), "again").Result(); !errors.Is(err, tc.want) {
				t.Errorf("a query after the end: %v, want %v", err, tc.want)
			}
		})
	}
}

// A reconnection refused with a 4xx other than 429 ends the client with refused: the
// server would refuse again. 503 and 429 are retried, up to MaxAttempts, then
// unreachable.
func TestRefusedReconnection(t *testing.T) {
	dropAfterQuery := func(h *fakeConn) {
		h.accept(map[string]any{"capabilities": allCaps, "epoch": "e1"})
		h.recv()
		h.drop()
	}
	refuse := func(status int) func(*fakeConn) {
		return func(h *fakeConn) { h.refuse(status, "test") }
	}
	t.Run("403", func(t *testing.T) {
		f := newFake(t, dropAfterQuery, refuse(http.StatusForbidden))
		c := dial(t, f.URL, client.Options{})
		if _, err := c.Query(testContext(t), "q").Result(); !errors.Is(err, client.ErrRefused) {
			t.Fatalf("got %v, want refused", err)
		}
		ended(t, c)
		if n := len(f.handshakes()); n != 2 {
			t.Errorf("%d handshakes, want 2: no attempt after a 403", n)
		}
	})
	t.Run("503 and 429", func(t *testing.T) {
		f := newFake(t, dropAfterQuery, refuse(503), refuse(429), refuse(503))
		c := dial(t, f.URL, client.Options{MaxAttempts: 3})
		if _, err := c.Query(testContext(t), "q").Result(); !errors.Is(err, client.ErrUnreachable) {
			t.Fatalf("got %v, want unreachable", err)
		}
		ended(t, c)
		if n := len(f.handshakes()); n != 4 {
			t.Errorf("%d handshakes, want 4: the first and 3 attempts", n)
		}
	})
}

// The first connection refused: Dial says refused, with the status and the code.
func TestDialRefused(t *testing.T) {
	f := newFake(t, func(h *fakeConn) { h.refuse(http.StatusUnauthorized, "unauthorized") })
	_, err := client.Dial(testContext(t), f.URL, client.Options{SessionID: "s"})
	var e *client.Error
	if !errors.As(err, &e) || e.Code != client.CodeRefused || !containsAll(e.Message, "HTTP 401", "unauthorized") {
		t.Fatalf("got %v, want refused naming HTTP 401 and unauthorized", err)
	}
	if _, err := client.Dial(testContext(t), f.URL, client.Options{}); !errors.Is(err, client.ErrRefused) {
		t.Errorf("no session id: %v, want refused", err)
	}
}

// Token goes as a bearer token; Header is sent with every handshake.
func TestTokenAndHeader(t *testing.T) {
	f := newFake(t, func(h *fakeConn) {
		if got := h.r.Header.Get("Authorization"); got != "Bearer tok" {
			t.Errorf("Authorization %q, want Bearer tok", got)
		}
		if got := h.r.Header.Get("X-Test"); got != "1" {
			t.Errorf("X-Test %q, want 1", got)
		}
		h.accept(nil)
		h.wait()
	})
	dial(t, f.URL, client.Options{Token: "tok", Header: http.Header{"X-Test": {"1"}}})
}

// A frame larger than ReadLimit ends the client with message_too_big, not a
// reconnection that would get it again.
func TestReadLimit(t *testing.T) {
	f := newFake(t, func(h *fakeConn) {
		h.accept(map[string]any{"capabilities": allCaps, "epoch": "e1"})
		qid := h.recv()["query_id"]
		h.send(frame("query_start", "query_id", qid, "seq", 1, "query", string(make([]byte, 4096))))
		h.wait()
	})
	c := dial(t, f.URL, client.Options{ReadLimit: 1024})
	if _, err := c.Query(testContext(t), "q").Result(); !errors.Is(err, &client.Error{Code: client.CodeMessageTooBig}) {
		t.Fatalf("got %v, want message_too_big", err)
	}
}

// Members and types the client does not know are ignored (CLIENT-1), keepalive too
// (CLIENT-3).
func TestIgnoresUnknown(t *testing.T) {
	f := newFake(t, func(h *fakeConn) {
		h.accept(map[string]any{"capabilities": append(allCaps, "telepathy"), "epoch": "e1", "future": map[string]any{"x": 1}})
		qid := h.recv()["query_id"]
		h.send(frame("keepalive"))
		h.send(frame("hologram", "seq", 1, "beam", true))
		h.send(frame("query_start", "query_id", qid, "seq", 2, "query", "q", "mood", "good"))
		h.send(frame("keepalive"))
		h.send(frame("chunk", "query_id", qid, "seq", 3, "chunk_number", 1, "content", "ok", "color", "red"))
		h.send(frame("complete", "query_id", qid, "seq", 4, "full_response", "ok", "total_chunks", 1, "extra", []int{1}))
		h.wait()
	})
	c := dial(t, f.URL, client.Options{})
	if a, err := c.Query(testContext(t), "q").Result(); err != nil || a.Text != "ok" {
		t.Fatalf("got %+v, %v; want ok", a, err)
	}
}

// Cancelling a query before it is sent sends nothing; with a server that does not
// claim cancel, a sent query's cancel sends nothing either, and ends it unsupported.
func TestCancelUnclaimed(t *testing.T) {
	f := newFake(t, func(h *fakeConn) {
		h.accept(nil)
		h.recv()
		h.send(frame("query_start", "query", "q"))
		h.send(frame("chunk", "chunk_number", 1, "content", "a"))
		if _, data, err := h.ws.Read(h.ctx); err == nil {
			t.Errorf("client sent %s to a server without cancel (CLIENT-2)", data)
		}
	})
	c := dial(t, f.URL, client.Options{})
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	q := c.Query(ctx, "q")
	for range q.Chunks() {
		cancel()
		break
	}
	if _, err := q.Result(); !errors.Is(err, client.ErrUnsupported) {
		t.Fatalf("got %v, want unsupported", err)
	}
	c.Close()
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// A cancel asked for just before Close is written before the close frame: Close
// does not drop the frames still queued.
func TestCancelThenClose(t *testing.T) {
	got := make(chan map[string]any, 1)
	f := newFake(t, func(h *fakeConn) {
		h.accept(map[string]any{"capabilities": []string{"query_id", "cancel"}})
		q := h.recv()
		h.send(frame("query_start", "query", "q", "query_id", q["query_id"]))
		h.send(frame("chunk", "chunk_number", 1, "content", "a", "query_id", q["query_id"]))
		got <- h.recv()
		h.wait()
	})
	c := dial(t, f.URL, client.Options{})
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	q := c.Query(ctx, "q")
	for range q.Chunks() {
		cancel()
		break
	}
	if _, err := q.Result(); !errors.Is(err, client.ErrCancelled) {
		t.Fatalf("got %v, want cancelled", err)
	}
	c.Close()
	if m := <-got; m["type"] != "cancel" {
		t.Fatalf("the server got %v after the chunk, want cancel", m)
	}
}
