package server_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentws/agentws/reference/server"
	"github.com/agentws/agentws/schemas"
	"github.com/agentws/agentws/schemas/httpapi"
)

// stillServes checks, after an attack, that health answers and a new client gets a
// full answer.
func (s *testServer) stillServes(t *testing.T) {
	t.Helper()
	s.health(t)
	c, _ := s.connect(t, "session_id="+newSession(t))
	c.send(query("still there?"))
	if got := checkStream(t, c.stream()); got != "Echo: still there?" {
		t.Errorf("after the attack: got %q", got)
	}
}

// httpRefusal sends req and returns its status and its JSON body, checked against
// http-error.json.
func httpRefusal(t *testing.T, req *http.Request) (*http.Response, httpapi.HTTPError) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if err := validator.Validate(schemas.HTTPError, body); err != nil {
		t.Fatalf("%s: body %q: %v", resp.Status, body, err)
	}
	var he httpapi.HTTPError
	if err := json.Unmarshal(body, &he); err != nil {
		t.Fatal(err)
	}
	return resp, he
}

const validKey = "dGhlIHNhbXBsZSBub25jZQ=="

// HS-12: an upgrade that breaks RFC 6455 section 4.2.1 is refused before the upgrade
// with a JSON body and the status the RFC asks for; it holds no session.
func attackMalformedUpgrades(t *testing.T) {
	s := start(t, nil)
	tests := []struct {
		name    string
		method  string
		headers map[string][]string
		status  int
		code    httpapi.HTTPErrorCode
		header  [2]string // a header the answer must carry
	}{
		{"POST", http.MethodPost, nil, 405, httpapi.HTTPErrorCodeMethodNotAllowed, [2]string{"Allow", "GET"}},
		{"version 8", http.MethodGet, map[string][]string{"Sec-WebSocket-Version": {"8"}}, 426, httpapi.HTTPErrorCodeUnsupportedVersion, [2]string{"Sec-WebSocket-Version", "13"}},
		{"no version", http.MethodGet, map[string][]string{"Sec-WebSocket-Version": nil}, 426, httpapi.HTTPErrorCodeUnsupportedVersion, [2]string{"Sec-WebSocket-Version", "13"}},
		{"no key", http.MethodGet, map[string][]string{"Sec-WebSocket-Key": nil}, 400, httpapi.HTTPErrorCodeInvalidHandshake, [2]string{}},
		{"short key", http.MethodGet, map[string][]string{"Sec-WebSocket-Key": {"c2hvcnQ="}}, 400, httpapi.HTTPErrorCodeInvalidHandshake, [2]string{}},
		{"two keys", http.MethodGet, map[string][]string{"Sec-WebSocket-Key": {validKey, validKey}}, 400, httpapi.HTTPErrorCodeInvalidHandshake, [2]string{}},
		{"no upgrade", http.MethodGet, map[string][]string{"Upgrade": nil}, 426, httpapi.HTTPErrorCodeNotWebsocket, [2]string{"Upgrade", "websocket"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, s.URL+"/ws?session_id="+newSession(t), nil)
			req.Header = http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}, "Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {validKey}}
			for k, v := range tt.headers {
				if v == nil {
					req.Header.Del(k)
				} else {
					req.Header[http.CanonicalHeaderKey(k)] = v
				}
			}
			resp, he := httpRefusal(t, req)
			if resp.StatusCode != tt.status || he.Code != tt.code {
				t.Errorf("got %s %s (%q), want %d %s", resp.Status, he.Code, he.Error, tt.status, tt.code)
			}
			if k := tt.header[0]; k != "" && resp.Header.Get(k) != tt.header[1] {
				t.Errorf("header %s: %q, want %q", k, resp.Header.Get(k), tt.header[1])
			}
		})
	}
	if n := s.SessionCount(); n != 0 {
		t.Errorf("%d sessions held after refused upgrades, want 0", n)
	}
	s.stillServes(t)
}

// rawConn is a WebSocket connection spoken byte by byte, to send what a library will not.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func (s *testServer) rawDial(t *testing.T, query string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(nc, "GET /ws?%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
		query, strings.TrimPrefix(s.URL, "http://"), validKey)
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	return &rawConn{t: t, nc: nc, br: br}
}

// readFrame reads one server frame (unmasked, RFC 6455 section 5.2).
func (c *rawConn) readFrame() (opcode byte, payload []byte) {
	c.t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		c.t.Fatalf("frame header: %v", err)
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		io.ReadFull(c.br, b[:])
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		io.ReadFull(c.br, b[:])
		n = binary.BigEndian.Uint64(b[:])
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(c.br, payload); err != nil {
		c.t.Fatalf("frame payload: %v", err)
	}
	return h[0] & 0x0f, payload
}

// RFC 6455 section 5.1: a client frame that is not masked fails the connection with
// 1002 (table 15.1), not with 1001 as if the server went away.
func attackUnmaskedFrame(t *testing.T) {
	s := start(t, nil)
	c := s.rawDial(t, "session_id="+newSession(t))
	if op, p := c.readFrame(); op != 1 || !strings.Contains(string(p), `"connected"`) {
		t.Fatalf("first frame: opcode %d %s, want connected", op, p)
	}
	ping := []byte(`{"type":"ping"}`)
	c.nc.Write(append([]byte{0x81, byte(len(ping))}, ping...)) // FIN, text, no mask bit
	for {
		op, p := c.readFrame()
		if op != 8 {
			continue
		}
		if len(p) < 2 {
			t.Fatalf("close frame without a code: %q", p)
		}
		if code := binary.BigEndian.Uint16(p); code != uint16(websocket.StatusProtocolError) {
			t.Errorf("closed with %d %q, want 1002", code, p[2:])
		}
		break
	}
	s.stillServes(t)
}

// HS-13: a request whose Host the server does not answer to is refused on every path,
// even when its Origin names the same host (DNS rebinding); IP addresses, localhost
// and the allowed patterns are answered.
func attackHostRebinding(t *testing.T) {
	s := start(t, func(c *server.Config) { c.AllowedHosts = []string{"agent.example.com", "*.corp.example"} })
	port := s.URL[strings.LastIndex(s.URL, ":")+1:]
	for _, host := range []string{"attacker.example", "attacker.example:" + port, "agent.example.com.attacker.example", "corp.example"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ws, resp, err := websocket.Dial(ctx, s.wsURL("session_id="+newSession(t)), &websocket.DialOptions{
			Host: host, HTTPHeader: http.Header{"Origin": {"http://" + host}},
		})
		cancel()
		if err == nil {
			ws.CloseNow()
			t.Errorf("Host %s: upgraded, want 403 host_not_allowed", host)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `"host_not_allowed"`) {
			t.Errorf("Host %s: got %s %s, want 403 host_not_allowed", host, resp.Status, body)
		}
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/ws/health", nil)
		req.Host = host
		if resp, he := httpRefusal(t, req); resp.StatusCode != http.StatusForbidden || he.Code != httpapi.HTTPErrorCodeHostNotAllowed {
			t.Errorf("GET /ws/health with Host %s: got %s %s, want 403 host_not_allowed", host, resp.Status, he.Code)
		}
	}
	for _, host := range []string{"localhost:" + port, "LOCALHOST.", "app.localhost", "127.0.0.1:" + port, "[::1]:" + port, "agent.example.com:" + port, "x.corp.example"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ws, _, err := websocket.Dial(ctx, s.wsURL("session_id="+newSession(t)), &websocket.DialOptions{Host: host})
		cancel()
		if err != nil {
			t.Errorf("Host %s: %v, want it answered", host, err)
			continue
		}
		ws.CloseNow()
	}
	any := start(t, func(c *server.Config) { c.AllowedHosts = []string{"*"} })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, any.wsURL("session_id="+newSession(t)), &websocket.DialOptions{Host: "anything.example"})
	if err != nil {
		t.Fatalf("-allowed-hosts *: %v", err)
	}
	ws.CloseNow()
	s.stillServes(t)
}

// dialStatus opens a connection; it returns the client, or the HTTP status and error
// code of its refusal.
func (s *testServer) dialStatus(t *testing.T, query string) (*websocket.Conn, int, httpapi.HTTPErrorCode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, s.wsURL(query), nil)
	if err == nil {
		t.Cleanup(func() { ws.CloseNow() })
		return ws, http.StatusSwitchingProtocols, ""
	}
	if resp == nil {
		t.Fatalf("dial %s: %v", query, err)
	}
	var he httpapi.HTTPError
	json.NewDecoder(resp.Body).Decode(&he)
	return nil, resp.StatusCode, he.Code
}

// HS-14: one address holds at most -max-conns-per-ip connections, handshakes included,
// even when they all arrive at once; a connection's place comes back when it ends.
func TestConnsPerIP(t *testing.T) {
	const limit, handshakes = 5, 60
	s := start(t, func(c *server.Config) { c.MaxConnsPerIP = limit })
	var admitted, refused atomic.Int64
	var mu sync.Mutex
	var conns []*websocket.Conn
	var wg sync.WaitGroup
	ready := make(chan struct{})
	for range handshakes {
		wg.Go(func() {
			<-ready
			ws, status, code := s.dialStatus(t, "session_id="+newSession(t))
			switch {
			case ws != nil:
				admitted.Add(1)
				mu.Lock()
				conns = append(conns, ws)
				mu.Unlock()
			case status == http.StatusTooManyRequests && code == httpapi.HTTPErrorCodeTooManyConnections:
				refused.Add(1)
			default:
				t.Errorf("got %d %s, want 101 or 429 too_many_connections", status, code)
			}
		})
	}
	close(ready)
	wg.Wait()
	t.Logf("%d handshakes at once from one address, bound %d: %d admitted, %d refused", handshakes, limit, admitted.Load(), refused.Load())
	if admitted.Load() != limit {
		t.Fatalf("%d admitted, want exactly %d", admitted.Load(), limit)
	}
	conns[0].Close(websocket.StatusNormalClosure, "")
	eventually(t, "the ended connection gives its place back", func() bool {
		ws, _, _ := s.dialStatus(t, "session_id="+newSession(t))
		if ws != nil {
			ws.CloseNow()
		}
		return ws != nil
	})
	for _, c := range conns[1:] {
		c.CloseNow()
	}
	eventually(t, "every place is back", func() bool { return s.health(t).ActiveConnections == 0 })
	s.stillServes(t)
}

// HS-14: one user holds at most -max-conns-per-user connections; other users and
// anonymous clients are not affected.
func TestConnsPerUser(t *testing.T) {
	s := start(t, func(c *server.Config) { c.MaxConnsPerUser = 2 })
	s.connect(t, "session_id="+newSession(t)+"&user_id=alice")
	s.connect(t, "session_id="+newSession(t)+"&user_id=alice")
	if _, status, code := s.dialStatus(t, "session_id="+newSession(t)+"&user_id=alice"); status != http.StatusTooManyRequests || code != httpapi.HTTPErrorCodeTooManyConnections {
		t.Errorf("alice's third connection: got %d %s, want 429 too_many_connections", status, code)
	}
	s.connect(t, "session_id="+newSession(t)+"&user_id=bob")
	s.stillServes(t)
}

// DISC-3, HS-10: a client that leaves with disconnect holds no place: with a bound of
// 2 sessions, 20 clients in turn each get in.
func TestDisconnectHoldsNoPlace(t *testing.T) {
	s := start(t, func(c *server.Config) { c.MaxSessions = 2 })
	for range 20 {
		c, _ := s.connect(t, "session_id="+newSession(t))
		c.send(map[string]any{"type": "disconnect"})
		c.expect("disconnected")
		if n := s.SessionCount(); n != 0 {
			t.Fatalf("%d sessions held after disconnected, want 0", n)
		}
	}
	s.stillServes(t)
}

// HS-10: sessions opened and abandoned (no disconnect) in a burst do not lock new users
// out for their TTL: at the bound, the session without a connection the longest makes
// room. Its client, coming back, finds a new epoch (SEQ-5).
func attackSessionTableLockout(t *testing.T) {
	const limit, burst = 20, 300
	s := start(t, func(c *server.Config) { c.MaxSessions = limit })
	first := newSession(t)
	c, connected := s.connect(t, "session_id="+first)
	c.ws.CloseNow()
	eventually(t, "the first drop is seen", func() bool { return s.health(t).ActiveConnections == 0 })
	var refused int
	for range burst {
		ws, status, _ := s.dialStatus(t, "session_id="+newSession(t))
		if ws == nil {
			refused++ // the server has not seen enough drops yet
			if status != http.StatusServiceUnavailable {
				t.Fatalf("got %d, want 101 or 503", status)
			}
			continue
		}
		ws.CloseNow()
	}
	t.Logf("%d sessions opened and abandoned, bound %d: %d refused server_full while drops were not seen yet", burst, limit, refused)
	eventually(t, "every drop is seen", func() bool { return s.health(t).ActiveConnections == 0 })
	if n := s.SessionCount(); n > limit {
		t.Errorf("%d sessions held, bound %d", n, limit)
	}
	s.stillServes(t)
	back, again := s.connect(t, "session_id="+first+"&last_seq=0&epoch="+connected.str("epoch"))
	if again.str("epoch") == connected.str("epoch") || again["resumed"] != false {
		t.Errorf("the evicted session's client came back to %v, want a new epoch and resumed false", again)
	}
	back.send(ping)
	back.expect("pong")
}

// HS-10: sessions that all have a connection are not evicted: a new one is refused.
func TestLiveSessionsAreNotEvicted(t *testing.T) {
	s := start(t, func(c *server.Config) { c.MaxSessions = 3 })
	var live []*client
	for range 3 {
		c, _ := s.connect(t, "session_id="+newSession(t))
		live = append(live, c)
	}
	if _, status, code := s.dialStatus(t, "session_id="+newSession(t)); status != http.StatusServiceUnavailable || code != httpapi.HTTPErrorCodeServerFull {
		t.Errorf("a fourth session: got %d %s, want 503 server_full", status, code)
	}
	for _, c := range live {
		c.send(ping)
		c.expect("pong")
	}
}
