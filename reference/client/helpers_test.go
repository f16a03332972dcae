package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentws/agentws/reference/client"
	"github.com/agentws/agentws/reference/server"
)

// TestMain fails the run when a goroutine of the client (or of the in-process
// reference server) outlives the tests.
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
		time.Sleep(10 * time.Millisecond) // polling the goroutine list
	}
}

// startServer runs the reference server in-process with the defaults changed by edit,
// and returns its WebSocket endpoint.
func startServer(t testing.TB, edit func(*server.Config)) string {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.Console = false
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
	return "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws"
}

var sessions atomic.Int64

func newSession(t testing.TB) string {
	return fmt.Sprintf("%s-%d", strings.NewReplacer("/", ".", "#", ".").Replace(t.Name()), sessions.Add(1))
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dial connects a client with fast backoff, closed at the end of the test.
func dial(t testing.TB, url string, opts client.Options) *client.Client {
	t.Helper()
	if opts.SessionID == "" && !strings.Contains(url, "session_id=") {
		opts.SessionID = newSession(t)
	}
	if opts.Backoff.Initial == 0 {
		opts.Backoff = client.Backoff{Initial: 5 * time.Millisecond, Max: 50 * time.Millisecond}
	}
	c, err := client.Dial(testContext(t), url, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// collect ranges over the query's chunks and returns them joined, with the error.
func collect(q *client.Query) (string, error) {
	var b strings.Builder
	for chunk, err := range q.Chunks() {
		if err != nil {
			return b.String(), err
		}
		b.WriteString(chunk)
	}
	return b.String(), nil
}

// A wire is what OnFrame saw, frame by frame.
type wire chan wireFrame

type wireFrame struct {
	dir   client.Direction
	frame map[string]any
}

func newWire() (wire, func(client.Direction, []byte)) {
	w := make(wire, 10000)
	return w, func(dir client.Direction, raw []byte) {
		var f map[string]any
		json.Unmarshal(raw, &f)
		w <- wireFrame{dir, f}
	}
}

// A wireWant is a frame of a direction with the given members.
type wireWant struct {
	dir     client.Direction
	members map[string]any
}

// untilAll reads frames until it has seen one for each of wants, in any order: a
// frame is reported sent once its write returned, which may be after the answer to it
// was received and reported.
func (w wire) untilAll(t testing.TB, wants ...wireWant) {
	t.Helper()
	ctx := testContext(t)
	for len(wants) > 0 {
		select {
		case f := <-w:
			for i, want := range wants {
				if f.dir == want.dir && hasMembers(f.frame, want.members) {
					wants = append(wants[:i], wants[i+1:]...)
					break
				}
			}
		case <-ctx.Done():
			t.Fatalf("no frames seen for %v", wants)
		}
	}
}

func hasMembers(f, want map[string]any) bool {
	for k, v := range want {
		if f[k] != v {
			return false
		}
	}
	return true
}

// ended waits for the client to end, failing the test when its deadline passes first.
func ended(t testing.TB, c *client.Client) error {
	t.Helper()
	select {
	case <-c.Done():
		return c.Err()
	case <-testContext(t).Done():
		t.Fatalf("the client did not end; its capabilities: %v", c.Capabilities())
		return nil
	}
}
