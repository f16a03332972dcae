package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"

	"github.com/agentws/agentws/reference/agent"
	"github.com/agentws/agentws/reference/server"
	"github.com/agentws/agentws/spec"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestDefaults(t *testing.T) {
	o, err := parse(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	def, d0 := server.DefaultConfig(), spec.Defaults()
	if o.addr != "localhost:8050" || o.cfg.BufferSize != def.BufferSize || o.cfg.SessionTTL != 5*time.Minute || o.cfg.KeepaliveInterval != 30*time.Second ||
		o.cfg.MaxMessageBytes != 1<<20 || o.cfg.QueueDepth != 16 || o.cfg.BufferBytes != 1<<20 || o.cfg.DrainTimeout != 30*time.Second {
		t.Errorf("defaults %+v", o)
	}
	if o.cfg.QueueBytes != d0.QueueBytes || o.cfg.RememberedBytes != d0.RememberedBytes || o.cfg.SendQueueBytes != def.SendQueueBytes {
		t.Errorf("byte bounds %d query queue, %d remembered, %d send queue; want table 15.4's and %d", o.cfg.QueueBytes, o.cfg.RememberedBytes, o.cfg.SendQueueBytes, def.SendQueueBytes)
	}
	if _, ok := o.cfg.Agent.(agent.Fixture); !ok {
		t.Errorf("default agent %T, want the fixture", o.cfg.Agent)
	}
	d := spec.Defaults()
	want := httpLimits{d.ReadHeaderTimeout, d.ReadTimeout, d.HTTPWriteTimeout, d.IdleTimeout, d.MaxHeaderBytes}
	if o.http != want || o.cfg.MaxConnsPerIP != d.MaxConnsPerIP || o.cfg.MaxConnsPerUser != d.MaxConnsPerUser {
		t.Errorf("HTTP limits %+v, bounds %d per address and %d per user; want table 15.4's", o.http, o.cfg.MaxConnsPerIP, o.cfg.MaxConnsPerUser)
	}
}

// Every flag has an environment twin; the command line wins over it.
func TestEnvironmentTwins(t *testing.T) {
	o, err := parse([]string{"-queue-depth", "3"}, env(map[string]string{
		"AGENTWS_ADDR":                "127.0.0.1:9999",
		"AGENTWS_SESSION_TTL":         "90s",
		"AGENTWS_QUEUE_DEPTH":         "7",
		"AGENTWS_ALLOWED_ORIGINS":     "localhost:3000, *.example.com",
		"AGENTWS_FIXTURE_DELAY":       "20ms",
		"AGENTWS_FIXTURE_CHUNK_SIZE":  "8",
		"AGENTWS_MAX_MESSAGE_BYTES":   "65536",
		"AGENTWS_MAX_CONNS_PER_IP":    "9",
		"AGENTWS_MAX_CONNS_PER_USER":  "4",
		"AGENTWS_IDLE_TIMEOUT":        "7s",
		"AGENTWS_READ_TIMEOUT":        "8s",
		"AGENTWS_READ_HEADER_TIMEOUT": "2s",
		"AGENTWS_HTTP_WRITE_TIMEOUT":  "6s",
		"AGENTWS_MAX_HEADER_BYTES":    "4096",
		"AGENTWS_SEND_QUEUE_BYTES":    "70000",
		"AGENTWS_QUEUE_BYTES":         "80000",
		"AGENTWS_REMEMBERED_BYTES":    "90000",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.addr != "127.0.0.1:9999" || o.cfg.SessionTTL != 90*time.Second || o.cfg.QueueDepth != 3 || o.cfg.MaxMessageBytes != 65536 {
		t.Errorf("got %+v", o)
	}
	if o.cfg.SendQueueBytes != 70000 || o.cfg.QueueBytes != 80000 || o.cfg.RememberedBytes != 90000 {
		t.Errorf("byte bounds %d send queue, %d query queue, %d remembered; want 70000, 80000, 90000", o.cfg.SendQueueBytes, o.cfg.QueueBytes, o.cfg.RememberedBytes)
	}
	if o.cfg.MaxConnsPerIP != 9 || o.cfg.MaxConnsPerUser != 4 {
		t.Errorf("connection bounds %d per address, %d per user; want 9 and 4", o.cfg.MaxConnsPerIP, o.cfg.MaxConnsPerUser)
	}
	if want := (httpLimits{2 * time.Second, 8 * time.Second, 6 * time.Second, 7 * time.Second, 4096}); o.http != want {
		t.Errorf("HTTP limits %+v, want %+v", o.http, want)
	}
	if strings.Join(o.cfg.AllowedOrigins, "|") != "localhost:3000|*.example.com" {
		t.Errorf("origins %q", o.cfg.AllowedOrigins)
	}
	if f := o.cfg.Agent.(agent.Fixture); f.Delay != 20*time.Millisecond || f.ChunkRunes != 8 {
		t.Errorf("fixture delay %v, chunk size %d; want 20ms and 8", f.Delay, f.ChunkRunes)
	}
}

func TestBadSettings(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, map[string]string{"AGENTWS_SESSION_TTL": "soon"}, `AGENTWS_SESSION_TTL="soon": parse error`},
		{[]string{"-buffer-size", "lots"}, nil, `invalid value "lots" for flag -buffer-size`},
		{[]string{"-agent", "magic"}, nil, `-agent: unknown agent "magic"`},
		{[]string{"-agent", "openai"}, nil, "-agent openai needs -agent-url and -agent-model"},
		{[]string{"stray"}, nil, `unexpected argument "stray"`},
		{[]string{"-session-ttl", "5"}, nil, `invalid value "5" for flag -session-ttl: parse error (agentws-server -help lists the flags)`},
		{[]string{"-fixture-delay", "-1s"}, nil, "-fixture-delay must be 0 or more, not -1s"},
		{[]string{"-fixture-chunk-size", "0"}, nil, "-fixture-chunk-size must be 1 or more, not 0"},
		{[]string{"-agent", "openai", "-agent-url", "localhost:19010/v1", "-agent-model", "m"}, nil, `-agent-url "localhost:19010/v1" is not an http:// or https:// URL with a host`},
		{[]string{"-agent", "openai", "-agent-url", "http://localhost:1/v1", "-agent-model", "m", "-agent-token-timeout", "-1s"}, nil, "-agent-token-timeout must be positive, not -1s"},
		{[]string{"-agent", "openai", "-agent-url", "http://localhost:1/v1", "-agent-model", "m", "-agent-retries", "-2"}, nil, "-agent-retries must be 0 or more, not -2"},
		{[]string{"-agent", "openai", "-agent-url", "http://localhost:1/v1", "-agent-model", "m", "-agent-check-interval", "-1s"}, nil, "-agent-check-interval must be 0 (no check) or positive, not -1s"},
		{[]string{"-agent-check-interval", "10s"}, nil, "-agent-check-interval checks a model upstream: it needs -agent openai"},
		{[]string{"-trusted-proxies", "127.0.0.1,proxy.example"}, nil, `-trusted-proxies: "proxy.example" is not an IP address or a CIDR prefix such as 10.0.0.0/8`},
	}
	for _, tt := range tests {
		var stderr strings.Builder
		_, err := parse(tt.args, env(tt.env), &stderr)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v %v: got %v, want %q", tt.args, tt.env, err, tt.want)
		}
		if stderr.Len() > 0 { // the error is the caller's to print, once, without the usage
			t.Errorf("%v: parse printed %q", tt.args, stderr.String())
		}
	}
	err := run(context.Background(), []string{"-session-ttl", "-1s", "-addr", "127.0.0.1:0"}, env(nil), io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "session TTL must be positive, not -1s") {
		t.Errorf("a negative TTL: got %v, want it as a duration", err)
	}
	err = run(context.Background(), []string{"-queue-depth", "0", "-addr", "127.0.0.1:0"}, env(nil), io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "query queue depth must be at least 1") {
		t.Errorf("queue depth 0: got %v", err)
	}
	err = run(context.Background(), []string{"-log-level", "loud", "-addr", "127.0.0.1:0"}, env(nil), io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "-log-level") {
		t.Errorf("bad log level: got %v", err)
	}
	err = run(context.Background(), []string{"-addr", "127.0.0.1:0"}, env(map[string]string{"AGENTWS_STORE": "postgres://db"}), io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), `session store "postgres://db" is not a redis://`) {
		t.Errorf("a store that is not Redis: got %v", err)
	}
	// A Redis that does not answer: the server does not start, and says which.
	err = run(context.Background(), []string{"-addr", "127.0.0.1:0", "-store", "redis://127.0.0.1:1/0"}, env(nil), io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "session store redis://127.0.0.1:1/0 cannot be reached") {
		t.Errorf("an unreachable store: got %v", err)
	}
}

func TestOpenAIKeyFromEnvironment(t *testing.T) {
	o, err := parse([]string{"-agent", "openai", "-agent-url", "http://localhost:11434/v1", "-agent-model", "m"},
		env(map[string]string{"OPENAI_API_KEY": "k1"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if a := o.cfg.Agent.(*agent.OpenAI); a.APIKey != "k1" || a.Model != "m" || a.TokenTimeout != agent.DefaultTokenTimeout || a.Retries != agent.DefaultRetries {
		t.Errorf("agent %+v", a)
	}
}

// The command serves the protocol, logs its URL, and drains when told to stop.
func TestRunServesAndDrains(t *testing.T) {
	ctx, stop := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	var logs bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-log-format", "json"}, env(nil), &logs, ready)
	}()
	addr := <-ready
	resp, err := http.Get("http://" + addr + "/ws/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("health: %s", resp.Status)
	}
	dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(dctx, "ws://"+addr+"/ws?session_id=cmd-test", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, data, err := ws.Read(dctx); err != nil || !strings.Contains(string(data), `"type":"connected"`) {
		t.Fatalf("first frame %s, %v", data, err)
	}
	stop()
	_, _, err = ws.Read(dctx)
	if websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("the client ended with %v, want close 1001", err)
	}
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
	if !strings.Contains(logs.String(), `"url":"ws://`+addr+`/ws"`) || !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Errorf("logs:\n%s", logs.String())
	}
}

// Authentication is on with AUTH_SECRET in the environment (never a flag), or with a
// public key file; a file without a key is an error naming the flag.
func TestAuthSettings(t *testing.T) {
	o, err := parse([]string{"-auth-issuer", "me"}, env(map[string]string{"AGENTWS_AUTH_SECRET": "s3cret"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.cfg.Auth == nil || string(o.cfg.Auth.Secret) != "s3cret" || o.cfg.Auth.Issuer != "me" {
		t.Errorf("auth %+v", o.cfg.Auth)
	}
	if o, _ := parse(nil, env(nil), io.Discard); o.cfg.Auth != nil {
		t.Error("authentication is on without a secret or a key")
	}
	bad := filepath.Join(t.TempDir(), "key.pem")
	os.WriteFile(bad, []byte("not a key"), 0o600)
	if _, err := parse([]string{"-auth-public-key", bad}, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "-auth-public-key") {
		t.Errorf("a file without a key: %v", err)
	}
}

// startRun runs the command with args and returns its address; it stops at cleanup.
func startRun(t *testing.T, args ...string) (addr string, logs *syncBuffer) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	logs = &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, env(nil), logs, ready) }()
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("run %v: %v", args, err)
	}
	t.Cleanup(func() {
		stop()
		<-done
	})
	return addr, logs
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// closedWithin reports whether the server closes nc within d (reading and discarding
// what it sends).
func closedWithin(nc net.Conn, d time.Duration) bool {
	nc.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, nc)
	return err == nil // EOF: the server closed it; a timeout is an error
}

// An idle keep-alive connection is closed after -idle-timeout: 1,050 of them, each
// after one GET /livez, used to hold every file descriptor.
func TestIdleKeepAliveConnectionsAreClosed(t *testing.T) {
	addr, _ := startRun(t, "-addr", "127.0.0.1:0", "-idle-timeout", "200ms")
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	fmt.Fprintf(nc, "GET /livez HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("GET /livez: %v %v, want 200 kept alive", resp, err)
	}
	resp.Body.Close()
	if !closedWithin(nc, 10*time.Second) {
		t.Error("the idle keep-alive connection is still open 10 s after a 200 ms idle timeout")
	}
}

// A client that sends its headers slowly (slowloris) is cut at -read-header-timeout; a
// request with headers over -max-header-bytes gets 431.
func TestSlowAndLargeHeaders(t *testing.T) {
	addr, _ := startRun(t, "-addr", "127.0.0.1:0", "-read-header-timeout", "200ms", "-max-header-bytes", "2048")
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	fmt.Fprintf(nc, "GET /livez HTTP/1.1\r\nHost: %s\r\nX-Slow: ", addr)
	if !closedWithin(nc, 10*time.Second) {
		t.Error("a request whose headers never end is still open 10 s after a 200 ms header timeout")
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/livez", nil)
	req.Header.Set("X-Big", strings.Repeat("x", 8<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("8 KiB of headers: %s, want 431", resp.Status)
	}
}

// The HTTP server's read, write and idle timeouts bound plain HTTP only: a WebSocket
// connection outlives them all (net/http clears the deadlines when the connection is
// hijacked), reading and writing long after they passed.
func TestWebSocketOutlivesHTTPTimeouts(t *testing.T) {
	const timeout = 200 * time.Millisecond
	addr, _ := startRun(t, "-addr", "127.0.0.1:0", "-read-header-timeout", timeout.String(), "-read-timeout", timeout.String(),
		"-http-write-timeout", timeout.String(), "-idle-timeout", timeout.String(), "-fixture-delay", "300ms")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws?session_id=outlives", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if _, data, err := ws.Read(ctx); err != nil || !strings.Contains(string(data), `"connected"`) {
		t.Fatalf("first frame %s, %v", data, err)
	}
	time.Sleep(5 * timeout) // idle past every deadline the HTTP server could have set
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"type":"query","query":"one two three four five six"}`)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("the connection ended %v after the query: %v", time.Since(start), err)
		}
		if strings.Contains(string(data), `"complete"`) {
			break
		}
	}
	if d := time.Since(start); d < 2*timeout {
		t.Fatalf("the stream took %v; it must outlast the %v timeouts to show anything", d, timeout)
	}
}

// Listening beyond loopback with authentication off is said loudly at start; on
// loopback, or with authentication, it is not.
func TestOpenServerWarning(t *testing.T) {
	const warning = "OPEN TO THE NETWORK WITH AUTHENTICATION OFF"
	_, logs := startRun(t, "-addr", "0.0.0.0:0")
	if !strings.Contains(logs.String(), warning) {
		t.Errorf("listening on 0.0.0.0 without authentication, the logs do not warn:\n%s", logs)
	}
	_, logs = startRun(t, "-addr", "127.0.0.1:0")
	if strings.Contains(logs.String(), warning) {
		t.Errorf("listening on loopback, the logs warn:\n%s", logs)
	}
}

// -allowed-hosts adds host patterns to the listen address's host name; the default
// listen address is loopback's.
func TestAllowedHosts(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		want []string
	}{
		{nil, nil, []string{"localhost"}},
		{[]string{"-addr", ":8050"}, nil, nil},
		{[]string{"-addr", "10.0.0.1:8050"}, nil, nil},
		{[]string{"-addr", "agent.example.com:8050", "-allowed-hosts", "*.example.com, other.test"}, nil, []string{"*.example.com", "other.test", "agent.example.com"}},
		{[]string{"-addr", ":8050"}, map[string]string{"AGENTWS_ALLOWED_HOSTS": "*"}, []string{"*"}},
	}
	for _, tt := range tests {
		o, err := parse(tt.args, env(tt.env), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, o.cfg.AllowedHosts); diff != "" {
			t.Errorf("%v %v: allowed hosts (-want +got):\n%s", tt.args, tt.env, diff)
		}
	}
}

// -version prints the build's version; it starts nothing.
func TestVersion(t *testing.T) {
	var out strings.Builder
	stdout = &out
	defer func() { stdout = os.Stdout }()
	if err := run(context.Background(), []string{"-version"}, env(nil), io.Discard, nil); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasPrefix(got, "agentws-server ") || !strings.Contains(got, "go1.") {
		t.Errorf("-version printed %q, want agentws-server, its version and the Go version", got)
	}
}

// Durations in JSON logs read as durations, not nanoseconds.
func TestLogDurations(t *testing.T) {
	var buf strings.Builder
	log, err := newLogger("json", "info", &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("x", "timeout", 30*time.Second)
	if !strings.Contains(buf.String(), `"timeout":"30s"`) {
		t.Errorf("logged %s, want timeout 30s", buf.String())
	}
}

// The admin API is off by default, on with its token from a file or AGENTWS_ADMIN_TOKEN
// (never a plain flag), and with -admin-addr served on its own address and not beside
// /ws. Bad admin settings are errors that name the flag.
func TestAdminSettings(t *testing.T) {
	if o, _ := parse(nil, env(nil), io.Discard); o.cfg.AdminToken != "" || o.cfg.AdminOwnAddress {
		t.Errorf("admin API on by default: %+v", o.cfg)
	}
	file := filepath.Join(t.TempDir(), "admin-token")
	os.WriteFile(file, []byte("from-the-file-0123456789\n"), 0o600)
	o, err := parse([]string{"-admin-token-file", file}, env(nil), io.Discard)
	if err != nil || o.cfg.AdminToken != "from-the-file-0123456789" {
		t.Errorf("-admin-token-file: token %q, %v", o.cfg.AdminToken, err)
	}
	o, err = parse(nil, env(map[string]string{"AGENTWS_ADMIN_TOKEN": "from-the-env-0123456789"}), io.Discard)
	if err != nil || o.cfg.AdminToken != "from-the-env-0123456789" {
		t.Errorf("AGENTWS_ADMIN_TOKEN: token %q, %v", o.cfg.AdminToken, err)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"-admin-token-file", file}, map[string]string{"AGENTWS_ADMIN_TOKEN": "from-the-env-0123456789"}, "give one"},
		{[]string{"-admin-token-file", filepath.Join(t.TempDir(), "missing")}, nil, "-admin-token-file: open"},
		{[]string{"-admin-token-file", empty}, nil, "is empty"},
		{nil, map[string]string{"AGENTWS_ADMIN_TOKEN": "short"}, "at least 16"},
		{[]string{"-admin-addr", "localhost:0"}, nil, "-admin-addr serves the admin API, which is off"},
		{[]string{"-admin-scope", "agentws:admin"}, nil, "an admin scope names a scope"},
		{[]string{"-admin-max-body-bytes", "0"}, map[string]string{"AGENTWS_ADMIN_TOKEN": "from-the-env-0123456789"}, "admin body byte limit must be positive"},
	} {
		o, err := parse(tc.args, env(tc.env), io.Discard)
		if err == nil { // a bound the server checks
			var srv *server.Server
			if srv, err = server.New(o.cfg); err == nil {
				srv.Close()
			}
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: %v, want %q", tc.args, tc.env, err, tc.want)
		}
	}

	adminAt := make(chan string, 1)
	adminListening = func(addr string) { adminAt <- addr }
	t.Cleanup(func() { adminListening = nil })
	addr, _ := startRun(t, "-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0", "-admin-token-file", file)
	admin := <-adminAt
	get := func(base string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+base+"/admin/sessions", nil)
		req.Header.Set("Authorization", "Bearer from-the-file-0123456789")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if status, body := get(admin); status != 200 || !strings.Contains(body, `"sessions"`) {
		t.Errorf("GET /admin/sessions on -admin-addr: %d %s", status, body)
	}
	if status, body := get(addr); status != 404 || !strings.Contains(body, `"not_found"`) {
		t.Errorf("GET /admin/sessions beside /ws with -admin-addr: %d %s, want 404 not_found", status, body)
	}
}
