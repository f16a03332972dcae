package server_test

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"

	"github.com/agentws/agentws/reference/agent"
	"github.com/agentws/agentws/reference/server"
	"github.com/agentws/agentws/tools/agentws-echo/echo"
)

// countingListener counts the writes to each connection it accepts, in the order it
// accepted them.
type countingListener struct {
	net.Listener
	mu     sync.Mutex
	writes []*atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	n := new(atomic.Int64)
	l.mu.Lock()
	l.writes = append(l.writes, n)
	l.mu.Unlock()
	return &countingConn{Conn: c, writes: n}, nil
}

// count returns the writes to the i-th connection accepted.
func (l *countingListener) count(t *testing.T, i int) int64 {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if i >= len(l.writes) {
		t.Fatalf("%d connections accepted, want %d", len(l.writes), i+1)
	}
	return l.writes[i].Load()
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// Frames that wait together in a connection's queue leave together: a resume that
// replays 30 buffered frames writes them, connected and the 101 of the upgrade with
// one system call, not 32.
func TestQueuedFramesShareAWrite(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.Agent = agent.Fixture{ChunkRunes: 16}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv)
	l := &countingListener{Listener: ts.Listener}
	ts.Listener = l
	ts.Start()
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
	})
	s := &testServer{Server: srv, URL: ts.URL, ts: ts}

	sid := newSession(t)
	c, hello := s.connect(t, "session_id="+sid)
	long := strings.Repeat("w", 28*16-len("Echo: ")) // 28 chunks
	c.send(query(long))
	first := c.expect("query_start")
	c.ws.CloseNow()
	eventually(t, "the query finishes offline", func() bool { return !s.SessionBusy(sid) })

	c2 := s.dial(t, fmt.Sprintf("session_id=%s&last_seq=%d&epoch=%s", sid, first.num("seq")-1, hello.str("epoch")))
	c2.expect("connected")
	frames := checkStreamFrames(t, c2)
	if len(frames) != 30 {
		t.Fatalf("the replay has %d frames, want query_start, 28 chunks and complete", len(frames))
	}
	// The handshake's answer (the 101), connected and the replay, all queued before the
	// writer started, leave in one write.
	writes := l.count(t, 1) // the second connection: c2's
	if writes != 1 {
		t.Errorf("the server wrote the connection %d times for the 101, connected and 30 replayed frames, want once", writes)
	}
	t.Logf("%d writes for the handshake, connected and 30 frames", writes)
}

// checkStreamFrames reads one stream and checks it (STREAM-1 to STREAM-5).
func checkStreamFrames(t *testing.T, c *client) []frame {
	t.Helper()
	frames := c.stream()
	checkStream(t, frames)
	return frames
}

// An idle connection has no writer goroutine: the server holds one goroutine for each
// open connection, its reader, once their first frames are written.
func TestIdleConnectionsHoldOneGoroutine(t *testing.T) {
	s := start(t, nil)
	const n = 100
	base := runtime.NumGoroutine()
	for range n {
		c, _ := s.connect(t, "session_id="+newSession(t))
		// One round trip: handling a message grows the stack past the echo's.
		c.send(ping)
		c.expect("pong")
	}
	// Each connection's reader, and a few of the server's own (the reclaimer, timers):
	// with a writer for each, this would be 2n and more.
	eventually(t, fmt.Sprintf("at most %d more goroutines for %d idle connections", n+10, n), func() bool {
		return runtime.NumGoroutine()-base <= n+10
	})
}

// An idle connection's goroutine has the stack of a bare echo server's: its reader
// waits in a frame no deeper than the echo handler's, so that the stack it grew during
// the handshake shrinks back at the next GC.
func TestIdleConnectionStackIsAnEchos(t *testing.T) {
	echoServer := httptest.NewServer(echo.Handler(echo.DefaultReadLimit))
	defer echoServer.Close()
	s := start(t, func(c *server.Config) { c.MaxConnsPerIP = 0 })
	const n = 200
	perConnection := func(dial func(i int)) float64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range n {
			dial(i)
		}
		runtime.GC() // shrinks the stacks that grew
		runtime.GC()
		runtime.ReadMemStats(&after)
		return float64(int64(after.StackInuse)-int64(before.StackInuse)) / n
	}
	echoStack := perConnection(func(int) {
		ws, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(echoServer.URL, "http"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.CloseNow() })
		// One round trip: the handler has accepted, and waits in Read.
		if err := ws.Write(context.Background(), websocket.MessageText, []byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := ws.Read(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	refStack := perConnection(func(int) {
		c, _ := s.connect(t, "session_id="+newSession(t))
		// One round trip: handling a message grows the stack past the echo's.
		c.send(ping)
		c.expect("pong")
	})
	t.Logf("stack per idle connection: %.0f bytes, a bare echo server's %.0f", refStack, echoStack)
	// Stacks come in powers of two: a reader that waits in a deeper frame keeps 16 KiB,
	// twice the echo's 8 KiB; half of that margin absorbs the other goroutines of the
	// process, whose stacks come and go meanwhile.
	if refStack > echoStack+4096 {
		t.Errorf("an idle connection holds %.0f bytes of stack, a bare echo server's %.0f", refStack, echoStack)
	}
}
