package server

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/agentws/agentws/reference/agent"
	"github.com/agentws/agentws/schemas/msg"
)

// Tests of the runner's wait for room in a send queue (session.awaitRoom), on the
// clock of a testing/synctest bubble, with socketless connections: what they are
// queued stays in c.out, so a full queue stays full until the test changes something.

// floodAgent emits chunks until its query is cancelled or an emit fails, and reports
// when it returned.
type floodAgent struct{ returned chan time.Time }

func (a floodAgent) Stream(ctx context.Context, _ agent.Request, emit func(string) error) error {
	defer func() { a.returned <- time.Now() }()
	for {
		if err := emit("x"); err != nil {
			return err
		}
	}
}

// limited returns a socketless conn whose queue holds limit frames.
func limited(srv *Server, limit int) *conn {
	c := socketless(srv)
	c.limit = limit
	return c
}

// stuckSession returns a session whose connection's queue (of limit frames) is full and
// never drained, and whose query q runs the flood agent, waiting for room.
func stuckSession(t *testing.T, limit int) (*Server, *session, *conn, floodAgent) {
	t.Helper()
	a := floodAgent{returned: make(chan time.Time, 1)}
	srv := testServer(t, func(c *Config) { c.Agent = a })
	sess, err := srv.join("stuck", "")
	if err != nil {
		t.Fatal(err)
	}
	c := limited(srv, limit)
	if _, err := sess.attach(c, resumeRequest{}); err != nil {
		t.Fatal(err)
	}
	sess.submit(msg.Query{Type: msg.QueryTypeQuery, Query: "flood", QueryId: "q"}, nil)
	synctest.Wait()
	return srv, sess, c, a
}

// types returns the message type of each frame.
func types(fs []frame) []string {
	var out []string
	for _, f := range fs {
		var m struct{ Type string }
		json.Unmarshal(f.data, &m)
		out = append(out, m.Type)
	}
	return out
}

// A takeover wakes the waiting runner at once: the new connection gets the rest of the
// stream at the moment it joins, not a write timeout later (TAKE-2).
func TestRoomWaitEndsAtTakeover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, sess, _, a := stuckSession(t, 1) // connected fills it: query_start waits
		joined := time.Now()
		c2 := limited(srv, 3)
		if _, err := sess.attach(c2, resumeRequest{}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if d := time.Since(joined); d != 0 {
			t.Fatalf("the runner woke %v after the takeover, want at once", d)
		}
		c2.mu.Lock()
		got := types(c2.out)
		c2.mu.Unlock()
		if len(got) != 3 || got[0] != "connected" || got[1] != "query_start" || got[2] != "chunk" {
			t.Errorf("the new connection holds %v, want connected, query_start, chunk", got)
		}
		sess.end(errSessionEnded)
		<-a.returned
	})
}

// A cancel wakes a runner waiting to emit a chunk at once: the agent is stopped then
// (CANCEL-1). The end of the stream still waits for room; a connection whose queue
// stays full for the write timeout while nothing writes it is then a slow consumer:
// closed with 4002, its queued query_start and the end buffered.
func TestRoomWaitEndsAtCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, sess, c, a := stuckSession(t, 2) // connected and query_start fill it: chunk 1 waits
		cancelled := time.Now()
		if refusal := sess.cancelQuery("q"); refusal != nil {
			t.Fatalf("cancel refused: %s", refusal.data)
		}
		if at := <-a.returned; at != cancelled {
			t.Errorf("the agent returned %v after the cancel, want at once", at.Sub(cancelled))
		}
		synctest.Wait()
		if !sess.busy() {
			t.Fatal("the query ended before its end was sent")
		}
		time.Sleep(srv.cfg.WriteTimeout)
		synctest.Wait()
		c.mu.Lock()
		code := c.code
		c.mu.Unlock()
		sess.mu.Lock()
		buffered := types(sess.buf.frames)
		sess.mu.Unlock()
		if want := []string{"query_start", "error"}; code != closeSlowConsumer || !slices.Equal(buffered, want) || sess.busy() {
			t.Errorf("after the write timeout: close code %d, buffered %v, busy %v; want 4002 and %v buffered", code, buffered, sess.busy(), want)
		}
	})
}

// A query of a session without a connection never waits: its frames are buffered at
// once (BUF-2, BUF-3).
func TestRoomWaitNeverWithoutConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := testServer(t, func(c *Config) { c.BufferSize = 1000 })
		sess, c := joined(t, srv, "offline")
		srv.dropped(c, closeSlowConsumer, "")
		start := time.Now()
		sess.submit(msg.Query{Type: msg.QueryTypeQuery, Query: "buffered at once"}, nil)
		synctest.Wait()
		if d := time.Since(start); d != 0 || sess.busy() {
			t.Errorf("the query took %v, busy %v: want it done at once", d, sess.busy())
		}
		if n := sess.buffered(); n < 3 {
			t.Errorf("%d frames buffered, want the whole stream", n)
		}
	})
}

// The runner waits for room in bytes as in frames (-send-queue-bytes): a queue with
// room for many frames but few bytes stops the stream once its bytes reach the bound,
// one frame past it at most; taken frames make room again.
func TestRoomWaitInBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := floodAgent{returned: make(chan time.Time, 1)}
		srv := testServer(t, func(c *Config) { c.Agent, c.SendQueueBytes = a, 1<<10 })
		sess, err := srv.join("bytes", "")
		if err != nil {
			t.Fatal(err)
		}
		c := limited(srv, 1<<20)
		c.maxB = srv.cfg.SendQueueBytes
		if _, err := sess.attach(c, resumeRequest{}); err != nil {
			t.Fatal(err)
		}
		sess.submit(msg.Query{Type: msg.QueryTypeQuery, Query: "flood", QueryId: "q"}, nil)
		for round := range 2 {
			synctest.Wait()
			c.mu.Lock()
			n, bytes, last := len(c.out), c.bytes, len(c.out[len(c.out)-1].data)
			c.out, c.bytes = nil, 0 // as if written: the stream goes on
			c.signalRoomLocked()
			c.mu.Unlock()
			if bytes < c.maxB || bytes-last >= c.maxB || n < 2 {
				t.Errorf("round %d: the queue holds %d frames of %d bytes (the last of %d), bound %d: want the stream stopped at the bound, one frame past it at most", round, n, bytes, last, c.maxB)
			}
		}
		synctest.Wait()
		sess.end(errSessionEnded)
		<-a.returned
	})
}
