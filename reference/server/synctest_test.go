package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"

	"github.com/agentws/agentws/reference/agent"
	"github.com/agentws/agentws/reference/server"
)

// Timing tests run the real server in a testing/synctest bubble, over in-memory
// connections: net.Pipe is built on channels, so a goroutine waiting on one is durably
// blocked, and the bubble's clock jumps to the next timer (a TTL, a keepalive tick, a
// drain timeout) once every goroutine waits. Real TCP sockets are not durably blocking,
// so the bubble could never advance its clock past a goroutine reading one.

// pipeListener is a net.Listener whose connections are net.Pipe ends.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

// dial connects to the listener; it is the client transport's DialContext.
func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	server, client := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// bubbleServer is a server running in the current synctest bubble.
type bubbleServer struct {
	*server.Server
	http *http.Client
}

// startInBubble runs a server with the defaults changed by edit, in the bubble of t;
// everything it started ends in t's cleanup.
func startInBubble(t *testing.T, edit func(*server.Config)) *bubbleServer {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.AllowedHosts = []string{"pipe"} // the made-up host of ws://pipe/ws (HS-13)
	if edit != nil {
		edit(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
	hs := &http.Server{Handler: srv}
	go hs.Serve(l)
	transport := &http.Transport{DialContext: l.dial}
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
		l.Close()
		transport.CloseIdleConnections()
	})
	return &bubbleServer{Server: srv, http: &http.Client{Transport: transport}}
}

// connect opens a connection to the bubble's server and reads its connected frame.
func (s *bubbleServer) connect(t *testing.T, query string) (*websocket.Conn, frame) {
	t.Helper()
	ws, _, err := websocket.Dial(t.Context(), "ws://pipe/ws?"+query, &websocket.DialOptions{HTTPClient: s.http})
	if err != nil {
		t.Fatalf("dial %s: %v", query, err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	f := readFrame(t, ws)
	if f.str("type") != "connected" {
		t.Fatalf("got %v, want connected", f)
	}
	return ws, f
}

// readFrame reads the next frame, with no deadline of its own: a read that never
// ends is a deadlock the bubble reports.
func readFrame(t *testing.T, ws *websocket.Conn) frame {
	t.Helper()
	_, data, err := ws.Read(t.Context())
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var f frame
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

func writeFrame(t *testing.T, ws *websocket.Conn, v any) {
	t.Helper()
	data, _ := json.Marshal(v)
	if err := ws.Write(t.Context(), websocket.MessageText, data); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// BUF-1, BUF-6: a session lives exactly its TTL after an abrupt drop (the default,
// 5 minutes, on the bubble's clock): held a nanosecond before, gone at the TTL, its
// query cancelled; a later connection starts a new session.
func TestSessionTTLExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ttl := server.DefaultConfig().SessionTTL
		s := startInBubble(t, func(c *server.Config) { c.Agent = blockingAgent{} })
		sid := "ttl"
		ws, _ := s.connect(t, "session_id="+sid+"&user_id=first")
		writeFrame(t, ws, query("runs until cancelled"))
		if f := readFrame(t, ws); f.str("type") != "query_start" {
			t.Fatalf("got %v, want query_start", f)
		}
		ws.CloseNow()
		synctest.Wait() // the server has seen the drop: the TTL runs from now
		time.Sleep(ttl - time.Nanosecond)
		synctest.Wait()
		if !s.SessionExists(sid) || !s.SessionBusy(sid) {
			t.Fatalf("a nanosecond before the TTL: session held %v, query running %v; want both", s.SessionExists(sid), s.SessionBusy(sid))
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if s.SessionExists(sid) || s.SessionBusy(sid) {
			t.Fatalf("at the TTL: session held %v, query running %v; want neither", s.SessionExists(sid), s.SessionBusy(sid))
		}
		again, _ := s.connect(t, "session_id="+sid+"&user_id=second") // a new session may have a new user
		writeFrame(t, again, ping)
		if f := readFrame(t, again); f.str("type") != "pong" {
			t.Fatalf("got %v, want pong: nothing of the old session", f)
		}
	})
}

// blockingAgent streams nothing until its query is cancelled.
type blockingAgent struct{}

func (blockingAgent) Stream(ctx context.Context, _ agent.Request, _ func(string) error) error {
	<-ctx.Done()
	return ctx.Err()
}

// KA-1: an idle connection gets a keepalive after between one and one and a quarter
// intervals of silence (the default, 30 s, on the bubble's clock), never sooner, and
// then one per such period.
func TestKeepaliveTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		interval := server.DefaultConfig().KeepaliveInterval
		s := startInBubble(t, nil)
		ws, _ := s.connect(t, "session_id=idle")
		last := time.Now()
		for range 3 {
			f := readFrame(t, ws)
			silence := time.Since(last)
			if f.str("type") != "keepalive" || silence < interval || silence > interval+interval/4 {
				t.Fatalf("after %v of silence got %v; want a keepalive after %v to %v", silence, f, interval, interval+interval/4)
			}
			last = time.Now()
		}
	})
}

// KA-1: a connection that is sent a frame more often than the interval gets no
// keepalive: a query streaming a chunk every 100 ms, over 3 intervals.
func TestKeepaliveSkipsBusyConnections(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		interval := time.Second
		s := startInBubble(t, func(c *server.Config) { c.KeepaliveInterval = interval })
		ws, _ := s.connect(t, "session_id=busy")
		writeFrame(t, ws, query("__slow__ "+strings.Repeat("x", 300)))
		start := time.Now()
		for {
			f := readFrame(t, ws)
			if f.str("type") == "keepalive" {
				t.Fatalf("a keepalive %v into a stream that sends a frame every 100 ms", time.Since(start))
			}
			if f.str("type") == "complete" {
				break
			}
		}
		if d := time.Since(start); d < 3*interval {
			t.Fatalf("the stream lasted %v, want at least %v to test anything", d, 3*interval)
		}
	})
}

// SHUT-3: the drain lets a running query run for exactly the drain timeout (the
// default, 30 s, on the bubble's clock), then stops it with an error.
func TestDrainTimeoutExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		timeout := server.DefaultConfig().DrainTimeout
		s := startInBubble(t, func(c *server.Config) { c.Agent = blockingAgent{} })
		ws, _ := s.connect(t, "session_id=drain")
		writeFrame(t, ws, query("runs until stopped"))
		readFrame(t, ws) // query_start
		go func() {      // read, as a client does, so the close handshake completes
			for {
				if _, _, err := ws.Read(context.Background()); err != nil {
					return
				}
			}
		}()
		start := time.Now()
		s.Drain(context.Background())
		if d := time.Since(start); d != timeout {
			t.Errorf("the drain took %v, want exactly the drain timeout %v", d, timeout)
		}
		if s.SessionBusy("drain") {
			t.Error("the query still runs after the drain")
		}
		if h := s.Stats(); h.TotalBufferedMessages != 1 {
			t.Errorf("%+v: want the query's error buffered", h)
		}
	})
}

// Clients that never come back leave nothing behind: at the TTL their sessions,
// buffers and queries are gone (and TestMain checks that no goroutine is left).
func TestAbandonedSessionsAreFreed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ttl := server.DefaultConfig().SessionTTL
		s := startInBubble(t, nil)
		for i := range 30 {
			ws, _ := s.connect(t, fmt.Sprintf("session_id=abandoned-%d", i))
			writeFrame(t, ws, query(slowQuery))
			writeFrame(t, ws, query("queued behind it"))
			readFrame(t, ws) // query_start
			ws.CloseNow()
		}
		synctest.Wait()
		if n := s.SessionCount(); n != 30 {
			t.Errorf("%d sessions held while within their TTL, want 30", n)
		}
		time.Sleep(ttl)
		synctest.Wait()
		if n, h := s.SessionCount(), s.Stats(); n != 0 || h.TotalBufferedMessages != 0 || h.SessionsWithBuffer != 0 || h.ActiveConnections != 0 {
			t.Errorf("after the TTL: %d sessions, health %+v; want nothing held", n, h)
		}
	})
}

// STREAM-8: the queue is bounded; an overflow is refused with busy and not run. The
// fixture's slow query keeps the first one running, on the bubble's clock, while the
// others arrive.
func TestQueueBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := startInBubble(t, func(c *server.Config) { c.QueueDepth = 1 })
		ws, _ := s.connect(t, "session_id=queue")
		writeFrame(t, ws, query("__slow__ running"))
		readFrame(t, ws) // query_start
		writeFrame(t, ws, query("waiting"))
		writeFrame(t, ws, query("refused"))
		var got []string
		for len(got) < 4 {
			f := readFrame(t, ws)
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
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("frames (-want +got):\n%s", diff)
		}
		writeFrame(t, ws, ping)
		if f := readFrame(t, ws); f.str("type") != "pong" {
			t.Errorf("got %v after the queue drained, want pong: the refused query ran", f)
		}
	})
}

// A client that reads nothing is a slow consumer once it has taken no frame for the
// write timeout (the default, 10 s, on the bubble's clock), even with a send queue of
// one frame: connected a nanosecond before, dropped with 4002 at it. The frame whose
// write timed out and every frame after it wait in the session's buffer, in order.
func TestSlowConsumerExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		timeout := server.DefaultConfig().WriteTimeout
		var logs *logBuffer
		s := startInBubble(t, func(c *server.Config) { logs = logged(c); c.SendQueue = 1 })
		ws, _ := s.connect(t, "session_id=stalled")
		writeFrame(t, ws, query("an answer that the client never reads"))
		synctest.Wait() // the writer blocks on query_start, the runner waits for room
		time.Sleep(timeout - time.Nanosecond)
		synctest.Wait()
		if h := s.Stats(); h.ActiveConnections != 1 || len(logs.records(slowConsumerLog)) != 0 {
			t.Fatalf("a nanosecond before the write timeout: health %+v, log %v; want the client connected", h, logs.records(slowConsumerLog))
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if h := s.Stats(); h.ActiveConnections != 0 || len(logs.records(slowConsumerLog)) != 1 {
			t.Fatalf("at the write timeout: health %+v; want the client dropped as a slow consumer", h)
		}
		var got []string
		for i, data := range s.BufferedFrames("stalled") {
			var f frame
			json.Unmarshal(data, &f)
			if f.num("seq") != i+1 {
				t.Errorf("buffered frame %d has seq %d, want %d", i, f.num("seq"), i+1)
			}
			got = append(got, f.str("type"))
		}
		if len(got) < 3 || got[0] != "query_start" || got[len(got)-1] != "complete" {
			t.Errorf("buffered %v: want the whole stream, query_start first", got)
		}
	})
}
