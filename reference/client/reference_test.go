package client_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/agentws/agentws/reference/client"
)

// A query's chunks and its result are the fixture's answer, "Echo: " + q.
func TestReferenceAnswer(t *testing.T) {
	url := startServer(t, nil)
	c := dial(t, url, client.Options{})
	for _, text := range []string{"hello", "__slow__ a slow one", "a longer question, to have more than one chunk of sixteen"} {
		q := c.Query(testContext(t), text)
		got, err := collect(q)
		if err != nil || got != "Echo: "+text {
			t.Fatalf("chunks of %q: %q, %v; want %q", text, got, err, "Echo: "+text)
		}
		a, err := q.Result()
		if err != nil || a.Text != "Echo: "+text || a.QueryID != q.ID() || a.TotalChunks < 1 {
			t.Fatalf("result of %q: %+v, %v", text, a, err)
		}
	}
	if caps := c.Capabilities(); !slices.Contains(caps, "resume") {
		t.Errorf("capabilities %v, want resume among them", caps)
	}
}

// __fail__ ends with the server's query_failed error, its frame attached.
func TestReferenceFail(t *testing.T) {
	c := dial(t, startServer(t, nil), client.Options{})
	_, err := c.Query(testContext(t), "__fail__").Result()
	var e *client.Error
	if !errors.As(err, &e) || e.Code != "query_failed" || len(e.Frame) == 0 {
		t.Fatalf("got %v, want query_failed with its frame", err)
	}
}

// Cancelling a running query's context ends it at once with cancelled, sends cancel,
// and the server stops the query: its cancelled error arrives (and is ignored).
func TestReferenceCancel(t *testing.T) {
	w, onFrame := newWire()
	c := dial(t, startServer(t, nil), client.Options{OnFrame: onFrame})
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	q := c.Query(ctx, "__slow__ to be cancelled after its first chunk")
	for _, err := range q.Chunks() {
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		break
	}
	if _, err := q.Result(); !errors.Is(err, client.ErrCancelled) {
		t.Fatalf("got %v, want cancelled", err)
	}
	w.untilAll(t,
		wireWant{client.Sent, map[string]any{"type": "cancel", "query_id": q.ID()}},
		wireWant{client.Received, map[string]any{"type": "error", "code": "cancelled", "query_id": q.ID()}})
}

// A second client of the same session takes it over: the first ends with replaced
// (4001) and does not reconnect; the second answers.
func TestReferenceReplaced(t *testing.T) {
	url := startServer(t, nil)
	var connected atomic.Int64
	first := dial(t, url, client.Options{SessionID: "taken", OnFrame: func(dir client.Direction, raw []byte) {
		if dir == client.Received && strings.Contains(string(raw), `"type":"connected"`) {
			connected.Add(1)
		}
	}})
	second := dial(t, url, client.Options{SessionID: "taken"})
	if err := ended(t, first); !errors.Is(err, client.ErrReplaced) {
		t.Fatalf("first client ended with %v, want replaced", err)
	}
	if _, err := first.Query(testContext(t), "hello").Result(); !errors.Is(err, client.ErrReplaced) {
		t.Errorf("query of the replaced client: %v, want replaced", err)
	}
	if a, err := second.Query(testContext(t), "hello").Result(); err != nil || a.Text != "Echo: hello" {
		t.Errorf("second client: %+v, %v", a, err)
	}
	if n := connected.Load(); n != 1 {
		t.Errorf("the first client had %d connections, want 1: no reconnection after 4001", n)
	}
}

// Disconnect ends the session: the server answers disconnected, and a new client of
// the session starts a new history (a new epoch).
func TestReferenceDisconnect(t *testing.T) {
	url := startServer(t, nil)
	c := dial(t, url, client.Options{SessionID: "ended"})
	if _, err := c.Query(testContext(t), "hello").Result(); err != nil {
		t.Fatal(err)
	}
	if err := c.Disconnect(testContext(t)); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(c.Err(), client.ErrSessionEnded) {
		t.Errorf("after Disconnect: %v, want session_ended", c.Err())
	}
	if _, err := c.Query(testContext(t), "more").Result(); !errors.Is(err, client.ErrSessionEnded) {
		t.Errorf("a query after Disconnect: %v, want session_ended", err)
	}
}

// Queries sent at once are answered in order, each whole.
func TestReferencePipelined(t *testing.T) {
	c := dial(t, startServer(t, nil), client.Options{})
	var qs []*client.Query
	for i := range 5 {
		qs = append(qs, c.Query(testContext(t), fmt.Sprintf("__slow__ query %d", i)))
	}
	for i, q := range qs {
		want := fmt.Sprintf("Echo: __slow__ query %d", i)
		if got, err := collect(q); err != nil || got != want {
			t.Errorf("query %d: %q, %v; want %q", i, got, err, want)
		}
	}
}
