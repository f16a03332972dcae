package server

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"

	"github.com/agentws/agentws/reference/agent"
	"github.com/agentws/agentws/schemas/msg"
)

// Regression tests for races between a connection and its session, driven from
// inside the package: a conn here has no socket and no writer, so what it was queued
// stays in c.out until a test looks.

func testServer(t *testing.T, edit func(*Config)) *Server {
	t.Helper()
	cfg := DefaultConfig()
	if edit != nil {
		edit(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// socketless returns a conn without a socket, whose queue is never written.
func socketless(srv *Server) *conn {
	return &conn{srv: srv, log: srv.log, limit: 1 << 20, maxB: 1 << 40, done: make(chan struct{})}
}

// joined returns session sid with a socketless conn attached.
func joined(t *testing.T, srv *Server, sid string) (*session, *conn) {
	t.Helper()
	sess, err := srv.join(sid, "")
	if err != nil {
		t.Fatal(err)
	}
	c := socketless(srv)
	if _, err := sess.attach(c, resumeRequest{}); err != nil {
		t.Fatal(err)
	}
	return sess, c
}

func emitChunk(sess *session, n int) {
	sess.emit(func(seq int) any {
		return msg.Chunk{Type: msg.ChunkTypeChunk, Content: "x", ChunkNumber: n, SessionId: sess.id, QueryId: "q", Seq: seq, Timestamp: timestamp()}
	})
}

// seqs returns the seq of each frame.
func seqs(fs []frame) []int {
	var out []int
	for _, f := range fs {
		out = append(out, f.seq)
	}
	return out
}

// A connection dropped while its session emits: every frame is queued on it before the
// drop or buffered after it, none lost (BUF-3, BUF-4). The old dropped took the queued
// frames, then detached under the session's lock, which ignored them when a frame
// emitted in between had already detached the closing connection as a slow consumer.
func TestDropWhileEmitting(t *testing.T) {
	srv := testServer(t, func(c *Config) { c.BufferSize = 1 << 20; c.BufferBytes = 1 << 30 })
	const frames = 200
	for i := range 300 {
		sess, c := joined(t, srv, fmt.Sprintf("drop-%d", i))
		var wg sync.WaitGroup
		wg.Go(func() {
			for n := range frames {
				emitChunk(sess, n+1)
			}
		})
		wg.Go(func() {
			for range i % 50 { // the drop lands at a different moment each time
				emitChunk(sess, 0)
			}
			srv.dropped(c, websocket.StatusGoingAway, "")
		})
		wg.Wait()
		sess.mu.Lock()
		var got []frame
		for _, f := range c.out {
			if f.session {
				got = append(got, f)
			}
		}
		got = append(got, sess.buf.frames...)
		seq := sess.seq
		sess.mu.Unlock()
		if got := seqs(got); !slices.Equal(got, seqRange(1, seq)) {
			t.Fatalf("run %d: the queue and the buffer hold %d frames from seq %v, want all %d from seq 1: frames lost at the drop", i, len(got), got[:min(1, len(got))], seq)
		}
		sess.end(errSessionEnded)
	}
}

func seqRange(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// blockAgent streams nothing until its query is cancelled.
type blockAgent struct{}

func (blockAgent) Stream(ctx context.Context, _ agent.Request, _ func(string) error) error {
	<-ctx.Done()
	return ctx.Err()
}

// A queued query cancelled while the same query_id is sent again: it ends cancelled,
// and the one sent again is its replay, never a new run (QID-3, QID-4, CANCEL-2). The
// old cancelQuery unlocked between taking the query out of the queue and remembering its
// end: a query_id sent in that gap was queued anew.
func TestCancelRacesResend(t *testing.T) {
	srv := testServer(t, func(c *Config) { c.Agent = blockAgent{} })
	for i := range 500 {
		sess, _ := joined(t, srv, fmt.Sprintf("cancel-%d", i))
		sess.submit(msg.Query{Type: msg.QueryTypeQuery, Query: "running", QueryId: "q1"}, nil)
		sess.submit(msg.Query{Type: msg.QueryTypeQuery, Query: "queued", QueryId: "q2"}, nil)
		var wg sync.WaitGroup
		var done atomic.Bool
		wg.Go(func() {
			sess.cancelQuery("q2")
			done.Store(true)
		})
		wg.Go(func() { // sent again and again until the cancel is over
			for !done.Load() {
				sess.submit(msg.Query{Type: msg.QueryTypeQuery, Query: "queued", QueryId: "q2"}, nil)
			}
		})
		wg.Wait()
		sess.mu.Lock()
		_, finished := sess.finished.last["q2"]
		queued := sess.known("q2") != nil
		sess.mu.Unlock()
		if !finished || queued {
			t.Fatalf("run %d: q2 remembered as finished %v, queued again %v: want finished and not queued", i, finished, queued)
		}
		sess.end(errSessionEnded)
	}
}

// A connection whose handler was counted before the drain, attaching after the drain
// closed the connections, is refused: otherwise nothing closes it and the drain waits
// for its client (SHUT-2). The session made for it gives its slot back.
func TestAttachAfterDrainCloses(t *testing.T) {
	srv := testServer(t, nil)
	sess, err := srv.join("late", "")
	if err != nil {
		t.Fatal(err)
	}
	if !srv.track(&srv.conns) {
		t.Fatal("the handler was not counted before the drain")
	}
	srv.stop()
	srv.closeConnections()
	_, err = sess.attach(socketless(srv), resumeRequest{})
	srv.conns.Done()
	if err != errShutdown {
		t.Fatalf("attach after the drain closed the connections: %v, want %v", err, errShutdown)
	}
	if _, held := srv.sessions["late"]; held {
		t.Error("the session made for the refused connection is still held")
	}
}

// With -queue-depth N, N queries wait behind the running one however fast they come:
// the query that is accepted while none runs is the running one at once (STREAM-8).
// The old submit queued it until the runner goroutine took it, so it counted as
// waiting and the Nth query behind it was refused with busy.
func TestQueueCountsOnlyWaiting(t *testing.T) {
	for _, depth := range []int{1, 2, 3} {
		srv := testServer(t, func(c *Config) { c.Agent = blockAgent{}; c.QueueDepth = depth })
		for i := range 50 {
			sess, _ := joined(t, srv, fmt.Sprintf("queue-%d-%d", depth, i))
			for n := range depth + 1 {
				if refusal := sess.submit(msg.Query{Type: msg.QueryTypeQuery, Query: fmt.Sprint(n)}, nil); refusal != nil {
					t.Fatalf("depth %d, query %d of %d sent at once: refused with %s", depth, n+1, depth+1, refusal.data)
				}
			}
			if refusal := sess.submit(msg.Query{Type: msg.QueryTypeQuery, Query: "one too many"}, nil); refusal == nil {
				t.Fatalf("depth %d: query %d accepted, want busy", depth, depth+2)
			}
			sess.end(errSessionEnded)
		}
	}
}

// BUF-8: evictions announced by a connected frame that was never written are announced
// by the next connection's: after a takeover, and after a drop.
func TestEvictedCarriedOver(t *testing.T) {
	for _, how := range []string{"takeover", "drop"} {
		t.Run(how, func(t *testing.T) {
			srv := testServer(t, func(c *Config) { c.BufferSize = 1 })
			sess, c := joined(t, srv, "evicted-"+how)
			srv.dropped(c, websocket.StatusGoingAway, "")
			for n := range 3 {
				emitChunk(sess, n+1)
			}
			c1 := socketless(srv) // its connected, announcing 2, is never written
			if _, err := sess.attach(c1, resumeRequest{}); err != nil {
				t.Fatal(err)
			}
			if how == "drop" {
				srv.dropped(c1, websocket.StatusGoingAway, "")
			}
			c2 := socketless(srv)
			if _, err := sess.attach(c2, resumeRequest{}); err != nil {
				t.Fatal(err)
			}
			var got msg.Connected
			if err := json.Unmarshal(c2.out[0].data, &got); err != nil {
				t.Fatal(err)
			}
			if got.Evicted != 2 {
				t.Errorf("the next connected announces %d evictions, want 2: %s", got.Evicted, c2.out[0].data)
			}
			if seqs := seqs(c2.out[1:]); !slices.Equal(seqs, []int{3}) {
				t.Errorf("the next connection gets seqs %v, want [3]", seqs)
			}
		})
	}
}
