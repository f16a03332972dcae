package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentws/agentws/reference/agent"
	"github.com/agentws/agentws/reference/server"
)

// slowQuery takes about a second with the fixture agent: 9 chunks, 100 ms apart.
const slowQuery = "__slow__ a query that streams slowly"

// dropDuringSlowQuery starts the slow query on c, drops c abruptly after query_start,
// and waits until the query has finished offline.
func dropDuringSlowQuery(t *testing.T, s *testServer, c *client, sid string) {
	t.Helper()
	c.send(query(slowQuery))
	c.expect("query_start")
	c.ws.CloseNow()
	eventually(t, "the query finishes offline", func() bool { return !s.SessionBusy(sid) })
}

// DISC-1 to DISC-3: disconnect answers disconnected, closes with 1000, cancels the
// running query and ends the session.
func TestDisconnect(t *testing.T) {
	s := start(t, nil)
	sid := newSession(t)
	c, _ := s.connect(t, "session_id="+sid)
	c.send(query(slowQuery))
	c.expect("query_start")
	c.send(map[string]any{"type": "disconnect"})
	for {
		f := c.next()
		if f.str("type") == "disconnected" {
			if f.str("session_id") != sid {
				t.Errorf("disconnected %v: want session_id %s", f, sid)
			}
			break
		}
		if f.str("type") != "chunk" {
			t.Fatalf("got %v before disconnected", f)
		}
	}
	c.expectClose(websocket.StatusNormalClosure)
	eventually(t, "the query is cancelled", func() bool { return !s.SessionBusy(sid) })
	again, _ := s.connect(t, "session_id="+sid)
	again.send(ping)
	again.expect("pong") // a new session: nothing of the old one arrives
}

// BUF-1 to BUF-4, CONN-2: after an abrupt drop the query keeps running, its frames are
// buffered, and a reconnect gets them right after connected: nothing is lost.
func TestDropAndReconnect(t *testing.T) {
	s := start(t, nil)
	sid := newSession(t)
	c, _ := s.connect(t, "session_id="+sid+"&user_id=u1")
	c.send(query(slowQuery))
	got := []frame{c.expect("query_start"), c.expect("chunk")}
	c.ws.CloseNow()
	eventually(t, "the query finishes offline", func() bool { return !s.SessionBusy(sid) })
	h := s.health(t)
	if h.SessionsWithBuffer != 1 || h.TotalBufferedMessages == 0 || h.ActiveConnections != 0 {
		t.Errorf("health while offline: %+v, want one session with a buffer and no connection (HEALTH-5)", h)
	}
	c2, _ := s.connect(t, "session_id="+sid+"&user_id=u1")
	for {
		f := c2.next()
		got = append(got, f)
		if f.str("type") == "complete" {
			break
		}
	}
	if answer := checkStream(t, got); answer != "Echo: "+slowQuery {
		t.Errorf("answer %q", answer)
	}
	c2.send(ping)
	c2.expect("pong") // each buffered frame came once
	if h := s.health(t); h.TotalBufferedMessages != 0 || h.SessionsWithBuffer != 0 {
		t.Errorf("health after delivery: %+v, want empty buffers", h)
	}
}

// BUF-3: the buffer keeps the newest frames, up to its size.
func TestBufferDropsOldest(t *testing.T) {
	s := start(t, func(c *server.Config) { c.BufferSize = 3 })
	sid := newSession(t)
	c, _ := s.connect(t, "session_id="+sid)
	dropDuringSlowQuery(t, s, c, sid)
	if h := s.health(t); h.TotalBufferedMessages != 3 {
		t.Errorf("buffered %d frames, want 3", h.TotalBufferedMessages)
	}
	c2, _ := s.connect(t, "session_id="+sid)
	a, b, last := c2.expect("chunk"), c2.expect("chunk"), c2.expect("complete")
	n := last.num("total_chunks")
	if a.num("chunk_number") != n-1 || b.num("chunk_number") != n {
		t.Errorf("got chunks %d and %d of %d, want the last two", a.num("chunk_number"), b.num("chunk_number"), n)
	}
}

// BUF-7: the buffer is bounded in bytes too.
func TestBufferByteBound(t *testing.T) {
	s := start(t, func(c *server.Config) { c.BufferBytes = 700 })
	sid := newSession(t)
	c, _ := s.connect(t, "session_id="+sid)
	dropDuringSlowQuery(t, s, c, sid)
	c2, _ := s.connect(t, "session_id="+sid)
	total := 0
	for {
		f := c2.next()
		data, _ := json.Marshal(f)
		total += len(data)
		if f.str("type") == "complete" {
			break
		}
	}
	if total > 700 || total < 300 {
		t.Errorf("delivered %d bytes of buffered frames, want at most 700 and the newest that fit", total)
	}
}

// BUF-5: connection-scoped frames are never buffered.
func TestPongNotBuffered(t *testing.T) {
	s := start(t, nil)
	sid := newSession(t)
	c, _ := s.connect(t, "session_id="+sid)
	c.send(query(slowQuery))
	c.expect("query_start")
	c.ws.CloseNow()
	eventually(t, "the server notices the drop", func() bool { return s.health(t).ActiveConnections == 0 })
	c2, _ := s.connect(t, "session_id="+sid)
	c2.send(ping)
	pongs := 0
	for {
		f := c2.next()
		if f.str("type") == "pong" {
			pongs++
		}
		if f.str("type") == "complete" {
			break
		}
	}
	if pongs != 1 {
		t.Errorf("got %d pongs, want the one answer to the new ping", pongs)
	}
}

// TAKE-1 to TAKE-3: a second connection takes the session over; the first is closed
// with 4001; the stream continues on the second; nothing is lost or doubled.
func TestTakeover(t *testing.T) {
	s := start(t, nil)
	sid := newSession(t)
	a, _ := s.connect(t, "session_id="+sid)
	a.send(query(slowQuery))
	var got []frame
	got = append(got, a.expect("query_start"), a.expect("chunk"))
	b, _ := s.connect(t, "session_id="+sid)
	for {
		f, err := a.read()
		if err != nil {
			if websocket.CloseStatus(err) != 4001 {
				t.Fatalf("the replaced connection ended with %v, want close 4001", err)
			}
			break
		}
		got = append(got, f)
	}
	for {
		f := b.next()
		got = append(got, f)
		if f.str("type") == "complete" {
			break
		}
	}
	checkStream(t, got)
	b.send(ping)
	b.expect("pong")
	eventually(t, "one active connection", func() bool { return s.health(t).ActiveConnections == 1 })
}

// bigAgent streams n chunks of size bytes at once, for the slow-consumer test.
type bigAgent struct{ n, size int }

func (a bigAgent) Stream(ctx context.Context, _ agent.Request, emit func(string) error) error {
	chunk := strings.Repeat("x", a.size)
	for range a.n {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := emit(chunk); err != nil {
			return err
		}
	}
	return nil
}

// slowConsumerLog is what the server logs when it drops a client that took no frame
// for the write timeout.
const slowConsumerLog = "slow consumer: it took no frame for the write timeout; dropping it (4002) and buffering the session's frames"

// A client that stops reading is a slow consumer once a write to it takes longer than
// the write timeout: it is dropped (4002, a close frame it cannot read), the query
// runs on into the buffer, and the session lives on with every frame not written.
func TestSlowConsumer(t *testing.T) {
	var logs *logBuffer
	s := start(t, func(c *server.Config) {
		logs = logged(c)
		c.Agent = bigAgent{n: 400, size: 16 << 10} // more than the socket buffers hold
		c.SendQueue = 4
		c.WriteTimeout = time.Second // the next connection reads the 6 MiB complete within it
		c.BufferBytes = 64 << 20     // complete repeats the whole answer
	})
	sid := newSession(t)
	c, _ := s.connect(t, "session_id="+sid)
	c.send(query("flood me"))
	eventually(t, "the server gives up on the client", func() bool { return s.health(t).ActiveConnections == 0 })
	if n := len(logs.records(slowConsumerLog)); n != 1 {
		t.Errorf("%d slow-consumer records in the log, want 1", n)
	}
	eventually(t, "the query finishes into the buffer", func() bool { return !s.SessionBusy(sid) })
	c2, _ := s.connect(t, "session_id="+sid)
	for {
		if f := c2.next(); f.str("type") == "complete" {
			if f.num("total_chunks") != 400 {
				t.Errorf("complete %v, want 400 chunks", f)
			}
			break
		}
	}
}

// A send queue of one frame is backpressure, not a trip wire: a client that reads gets
// whole answers of many chunks, streamed back to back, and is never closed, whatever
// the queue holds when the next frame comes (the agent waits for room).
func TestSendQueueOfOne(t *testing.T) {
	s := start(t, func(c *server.Config) { c.SendQueue = 1 })
	sid := newSession(t)
	c, _ := s.connect(t, "session_id="+sid)
	long := strings.Repeat("0123456789", 160) // some 95 chunks
	for i := range 3 {                        // sent at once: the second and third wait in the queue
		c.send(query(fmt.Sprintf("%d %s", i, long)))
	}
	for i := range 3 {
		frames := c.stream()
		if got, want := checkStream(t, frames), fmt.Sprintf("Echo: %d %s", i, long); got != want {
			t.Fatalf("answer %d is %d characters, want %d", i, len(got), len(want))
		}
		if len(frames) < 90 {
			t.Errorf("answer %d came in %d frames, want at least 90", i, len(frames))
		}
	}
	c.send(ping)
	c.expect("pong")
	if h := s.health(t); h.ActiveConnections != 1 || h.SessionsWithBuffer != 0 {
		t.Errorf("health %+v: want the connection open and nothing buffered", h)
	}
}
