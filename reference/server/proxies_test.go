package server_test

import (
	"context"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentws/agentws/reference/server"
	"github.com/agentws/agentws/schemas/httpapi"
)

// dialFrom opens a connection whose request carries X-Forwarded-For xff, and reads
// connected; it returns the status of a refusal instead, or 101.
func dialFrom(t *testing.T, s *testServer, xff string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, s.wsURL("session_id="+newSession(t)), &websocket.DialOptions{HTTPHeader: http.Header{"X-Forwarded-For": {xff}}})
	if err != nil {
		if resp == nil {
			t.Fatalf("dial with X-Forwarded-For %q: %v", xff, err)
		}
		return resp.StatusCode
	}
	t.Cleanup(func() { ws.CloseNow() })
	if _, data, err := ws.Read(ctx); err != nil {
		t.Fatalf("read connected: %v (%s)", err, data)
	}
	return http.StatusSwitchingProtocols
}

// Behind a trusted proxy, a client is the last address of X-Forwarded-For that is not
// a trusted proxy: it has its own connection bound, which the addresses a client writes
// into the header itself cannot dodge; from an untrusted peer the header is ignored.
func TestTrustedProxies(t *testing.T) {
	untrusted := start(t, func(c *server.Config) { c.MaxConnsPerIP = 1 })
	if got := dialFrom(t, untrusted, "203.0.113.1"); got != 101 {
		t.Fatalf("the first connection: %d", got)
	}
	if got := dialFrom(t, untrusted, "203.0.113.2"); got != http.StatusTooManyRequests {
		t.Errorf("an untrusted peer naming another address: %d, want 429 (the header ignored)", got)
	}

	var logs *logBuffer
	s := start(t, func(c *server.Config) {
		c.MaxConnsPerIP = 1
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}
		logs = logged(c)
	})
	for _, tt := range []struct {
		xff  string
		want int
	}{
		{"203.0.113.1", 101},
		{"203.0.113.2", 101},                                      // another client behind the same proxy
		{"203.0.113.1", http.StatusTooManyRequests},               // the first again: its own bound
		{"198.51.100.7, 203.0.113.1", http.StatusTooManyRequests}, // what it wrote itself does not count
		{"203.0.113.3, 10.1.2.3", 101},                            // through a second trusted proxy
		{"203.0.113.3", http.StatusTooManyRequests},
		{"", 101}, // a proxy that names no client: the proxy itself
	} {
		if got := dialFrom(t, s, tt.xff); got != tt.want {
			t.Errorf("X-Forwarded-For %q: %d, want %d", tt.xff, got, tt.want)
		}
	}
	var clients []any
	for _, r := range logs.records("handshake") {
		clients = append(clients, r["client"])
	}
	want := []any{"203.0.113.1", "203.0.113.2", "203.0.113.1", "203.0.113.1", "203.0.113.3", "203.0.113.3", nil}
	if len(clients) != len(want) {
		t.Fatalf("handshake clients %v, want %v", clients, want)
	}
	for i := range want {
		if clients[i] != want[i] {
			t.Errorf("handshake %d: client %v, want %v", i, clients[i], want[i])
		}
	}
	if r := logs.records("handshake"); r[2]["code"] != string(httpapi.HTTPErrorCodeTooManyConnections) {
		t.Errorf("the refused handshake: %v", r[2])
	}
}
