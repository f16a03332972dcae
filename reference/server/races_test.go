package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentws/agentws/reference/server"
)

// HS-10: concurrent handshakes never take the server past -max-sessions; the refused
// ones get 503 server_full before the upgrade. The old server checked the limit in one
// critical section and created the session in another: 300 handshakes at once with a
// limit of 20 admitted 41.
func attackConcurrentHandshakes(t *testing.T) {
	const limit, handshakes = 20, 300
	// All the handshakes come from one address: its connection cap (HS-14) is lifted,
	// so that only the session limit refuses.
	s := start(t, func(c *server.Config) { c.MaxSessions, c.MaxConnsPerIP = limit, 0 })
	var admitted, full atomic.Int64
	var mu sync.Mutex
	var live []*websocket.Conn
	var wg sync.WaitGroup
	ready := make(chan struct{})
	for i := range handshakes {
		wg.Go(func() {
			<-ready
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ws, resp, err := websocket.Dial(ctx, s.wsURL("session_id="+newSession(t)), nil)
			switch {
			case err == nil:
				admitted.Add(1)
				mu.Lock()
				live = append(live, ws)
				mu.Unlock()
			case resp != nil && resp.StatusCode == http.StatusServiceUnavailable:
				full.Add(1)
			default:
				t.Errorf("handshake %d: %v", i, err)
			}
		})
	}
	close(ready)
	wg.Wait()
	t.Logf("%d handshakes at once, limit %d: %d admitted, %d refused server_full", handshakes, limit, admitted.Load(), full.Load())
	if admitted.Load() != limit || s.SessionCount() != limit {
		t.Errorf("%d admitted, %d sessions held; want exactly the limit, %d", admitted.Load(), s.SessionCount(), limit)
	}
	for _, ws := range live {
		ws.CloseNow()
	}
	eventually(t, "every drop is seen", func() bool { return s.health(t).ActiveConnections == 0 })
	s.stillServes(t)
}

// HS-10: a handshake whose upgrade fails gives back the slot it held.
func TestFailedUpgradeFreesItsSlot(t *testing.T) {
	s := start(t, func(c *server.Config) { c.MaxSessions = 1 })
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/ws?session_id="+newSession(t), nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket") // no Sec-WebSocket-Key: the upgrade fails
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		t.Fatal("upgraded without Sec-WebSocket-Key")
	}
	if n := s.SessionCount(); n != 0 {
		t.Errorf("%d sessions held after a failed upgrade, want 0", n)
	}
	c, _ := s.connect(t, "session_id="+newSession(t))
	c.send(ping)
	c.expect("pong")
}

// STREAM-7, STREAM-8: with -queue-depth N, a query and N more sent back to back on an
// idle session all run, in order. The old server counted a query accepted but not yet
// started as waiting: with a depth of 1, 3 pairs in 20 got busy.
func TestQueueDepthBackToBack(t *testing.T) {
	for _, depth := range []int{1, 2} {
		t.Run(fmt.Sprintf("depth %d", depth), func(t *testing.T) {
			s := start(t, func(c *server.Config) { c.QueueDepth = depth })
			c, _ := s.connect(t, "session_id="+newSession(t))
			for round := range 20 {
				for n := range depth + 1 {
					c.send(query(fmt.Sprintf("round %d query %d", round, n)))
				}
				for n := range depth + 1 {
					want := fmt.Sprintf("Echo: round %d query %d", round, n)
					if got := checkStreamOf(t, c); got != want {
						t.Fatalf("round %d: got %q, want %q", round, got, want)
					}
				}
			}
		})
	}
}

// checkStreamOf reads one stream and returns its answer; a busy refusal fails the test.
func checkStreamOf(t *testing.T, c *client) string {
	t.Helper()
	fs := c.stream()
	if last := fs[len(fs)-1]; last.str("type") == "error" {
		t.Fatalf("a query sent back to back was refused: %v", last)
	}
	return checkStream(t, fs)
}

// TAKE-1: the connection whose handshake completes later is the newer one. A client
// that got its 101 and dials again at once keeps the second connection; the first is
// closed with 4001. The old server joined the session after the 101, so the second
// handler could join first and be replaced by the first.
func TestTakeoverFollowsHandshakeOrder(t *testing.T) {
	s := start(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 200 {
		url := s.wsURL(fmt.Sprintf("session_id=%s-%d", t.Name(), i))
		first, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		second, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, data, err := second.Read(ctx)
		if err != nil {
			t.Fatalf("run %d: the newer connection ended with %v, want connected and to keep the session", i, err)
		}
		if !strings.Contains(string(data), `"connected"`) {
			t.Fatalf("run %d: the newer connection got %s first, want connected", i, data)
		}
		for {
			if _, _, err := first.Read(ctx); err != nil {
				if websocket.CloseStatus(err) != 4001 {
					t.Fatalf("run %d: the older connection ended with %v, want close 4001", i, err)
				}
				break
			}
		}
		second.CloseNow()
	}
}
