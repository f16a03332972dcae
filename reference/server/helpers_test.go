package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentws/agentws/reference/server"
	"github.com/agentws/agentws/schemas"
	"github.com/agentws/agentws/schemas/httpapi"
)

// TestMain fails the run when a goroutine of the server outlives the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := leakedGoroutines(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines leaked by the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

func leakedGoroutines(within time.Duration) string {
	deadline := time.Now().Add(within)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "agentws/reference/") && !strings.Contains(g, "leakedGoroutines") && !strings.Contains(g, "TestMain") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond) // polling the goroutine list
	}
}

var validator = func() *schemas.Validator {
	v, err := schemas.NewValidator(schemas.Options{})
	if err != nil {
		panic(err)
	}
	return v
}()

type testServer struct {
	*server.Server
	URL string // http://host:port
	ts  *httptest.Server
}

// start runs a server with the defaults changed by edit.
func start(t testing.TB, edit func(*server.Config)) *testServer {
	t.Helper()
	cfg := server.DefaultConfig()
	if edit != nil {
		edit(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
	})
	return &testServer{Server: srv, URL: ts.URL, ts: ts}
}

var sessionCounter atomic.Int64

// newSession returns a session id unique to this test run.
func newSession(t *testing.T) string {
	return fmt.Sprintf("%s-%d", strings.ReplaceAll(t.Name(), "/", "."), sessionCounter.Add(1))
}

func (s *testServer) wsURL(query string) string {
	return "ws" + strings.TrimPrefix(s.URL, "http") + "/ws?" + query
}

// client is a test connection that validates every frame it receives (ENV-2).
type client struct {
	t         *testing.T
	ws        *websocket.Conn
	keepalive bool // return keepalive frames instead of skipping them
}

type frame map[string]any

func (f frame) str(k string) string { s, _ := f[k].(string); return s }
func (f frame) num(k string) int    { n, _ := f[k].(float64); return int(n) }

func (s *testServer) dial(t *testing.T, query string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, s.wsURL(query), nil)
	if err != nil {
		t.Fatalf("dial %s: %v (response %v)", query, err, resp)
	}
	ws.SetReadLimit(-1)
	c := &client{t: t, ws: ws}
	t.Cleanup(func() { ws.CloseNow() })
	return c
}

// connect dials and reads the connected frame.
func (s *testServer) connect(t *testing.T, query string) (*client, frame) {
	t.Helper()
	c := s.dial(t, query)
	return c, c.expect("connected")
}

// refused dials and expects an HTTP refusal with a JSON error body.
func (s *testServer) refused(t *testing.T, query string, header http.Header) (int, httpapi.HTTPError) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, s.wsURL(query), &websocket.DialOptions{HTTPHeader: header})
	if err == nil {
		ws.CloseNow()
		t.Fatalf("dial %s: connected, want a refusal", query)
	}
	if resp == nil {
		t.Fatalf("dial %s: %v, and no HTTP response", query, err)
	}
	body, _ := io.ReadAll(resp.Body)
	if err := validator.Validate(schemas.HTTPError, body); err != nil {
		t.Fatalf("refusal body %s: %v", body, err)
	}
	var he httpapi.HTTPError
	if err := json.Unmarshal(body, &he); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, he
}

func (c *client) send(v any) {
	c.t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(websocket.MessageText, data)
}

func (c *client) sendRaw(typ websocket.MessageType, data []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, typ, data); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read returns the next frame, or the error that ended the connection.
func (c *client) read() (frame, error) {
	c.t.Helper()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		typ, data, err := c.ws.Read(ctx)
		cancel()
		if err != nil {
			return nil, err
		}
		if typ != websocket.MessageText {
			c.t.Fatalf("server sent a binary frame (ENV-1)")
		}
		if err := validator.ValidateMessage(schemas.Server, data); err != nil {
			c.t.Fatalf("server frame %s breaks its schema (ENV-2): %v", data, err)
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			c.t.Fatal(err)
		}
		if f.str("type") == "keepalive" && !c.keepalive {
			continue
		}
		return f, nil
	}
}

func (c *client) next() frame {
	c.t.Helper()
	f, err := c.read()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return f
}

func (c *client) expect(typ string) frame {
	c.t.Helper()
	f := c.next()
	if f.str("type") != typ {
		c.t.Fatalf("got %v, want a %s frame", f, typ)
	}
	return f
}

// expectClose reads until the connection ends and checks its close code.
func (c *client) expectClose(code websocket.StatusCode) {
	c.t.Helper()
	for {
		f, err := c.read()
		if err != nil {
			if got := websocket.CloseStatus(err); got != code {
				c.t.Fatalf("connection ended with %v (close status %d), want close %d", err, got, code)
			}
			return
		}
		c.t.Logf("frame before the close: %s %d", f.str("type"), f.num("chunk_number"))
	}
}

// stream reads one query's frames until its complete or error.
func (c *client) stream() []frame {
	c.t.Helper()
	var out []frame
	for {
		f := c.next()
		out = append(out, f)
		if t := f.str("type"); t == "complete" || t == "error" {
			return out
		}
	}
}

// checkStream checks the stream rules (STREAM-1 to STREAM-5) and returns the answer.
func checkStream(t *testing.T, frames []frame) string {
	t.Helper()
	if len(frames) < 2 || frames[0].str("type") != "query_start" {
		t.Fatalf("stream %v: want query_start first", frames)
	}
	var full strings.Builder
	for i, f := range frames[1 : len(frames)-1] {
		if f.str("type") != "chunk" || f.num("chunk_number") != i+1 {
			t.Fatalf("frame %d of the stream is %v, want chunk %d", i+1, f, i+1)
		}
		full.WriteString(f.str("content"))
	}
	last := frames[len(frames)-1]
	if last.str("type") != "complete" {
		t.Fatalf("stream ended with %v, want complete", last)
	}
	if last.num("total_chunks") != len(frames)-2 || last.str("full_response") != full.String() {
		t.Fatalf("complete %v does not match its %d chunks %q", last, len(frames)-2, full.String())
	}
	return full.String()
}

func query(q string) map[string]any { return map[string]any{"type": "query", "query": q} }

var ping = map[string]any{"type": "ping"}

// health fetches GET /ws/health and checks it against its schema.
func (s *testServer) health(t *testing.T) httpapi.Health {
	t.Helper()
	resp, err := http.Get(s.URL + "/ws/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("health: %s %s", resp.Status, body)
	}
	if err := validator.Validate(schemas.Health, body); err != nil {
		t.Fatalf("health body %s: %v", body, err)
	}
	var h httpapi.Health
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// eventually polls cond until it holds, failing the test after 5 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling
	}
}
