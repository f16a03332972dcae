package client_test

import (
	"context"
	"errors"
	"slices"
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
	w.until(t, client.Sent, map[string]any{"type": "cancel", "query_id": q.ID()})
	w.until(t, client.Received, map[string]any{"type": "error", "code": "cancelled", "query_id": q.ID()})
}
