package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentws/agentws/reference/server"
)

// requireNode is set by `make test`, which installs Node 22 (tools/node.sh): there
// the Node tests must run, not skip.
const requireNode = "AGENTWS_REQUIRE_NODE"

// nodeBinary returns the path of a Node 22 or later: $AGENTWS_NODE, or the one
// tools/node.sh installed. Without one it skips the test (fails it where Node is
// required).
func nodeBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("AGENTWS_NODE"); p != "" {
		return p
	}
	if out, err := exec.Command("../../tools/node.sh", "--find").Output(); err == nil {
		return strings.TrimSpace(string(out))
	}
	if os.Getenv(requireNode) != "" {
		t.Fatalf("no Node 22, and %s is set: make test installs it with tools/node.sh (make node)", requireNode)
	}
	t.Skip("no Node 22: run `make node` (tools/node.sh), or set AGENTWS_NODE, to run the Node tests of reference/web")
	return ""
}

// restartable is a reference server whose process can be "restarted": a new server,
// with none of the old one's sessions, takes the same address (a new epoch for every
// session, SEQ-5).
type restartable struct {
	t   *testing.T
	cur atomic.Pointer[server.Server]
}

func newRestartable(t *testing.T) *restartable {
	r := &restartable{t: t}
	r.cur.Store(r.newServer())
	t.Cleanup(func() { r.cur.Load().Close() })
	return r
}

func (r *restartable) newServer() *server.Server {
	srv, err := server.New(server.DefaultConfig())
	if err != nil {
		r.t.Fatal(err)
	}
	return srv
}

func (r *restartable) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.cur.Load().ServeHTTP(w, req)
}

// restart puts a new server in place, then drains the old one: its connections close
// with 1001 before its queries are stopped, so that no frame of theirs is sent.
func (r *restartable) restart() {
	old := r.cur.Swap(r.newServer())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	old.Drain(ctx)
}

// TestNode runs the Node tests of the JavaScript client and its adapter
// (reference/web/test/*.test.mjs, with node --test) against the reference server and
// against scripted servers that misbehave as the tests need. They find them in the
// environment: AGENTWS_TEST_WS, the reference server's endpoint, and AGENTWS_TEST_AUX,
// the base URL of the control endpoints (POST /control/drop?session_id=S,
// POST /control/restart) and of the scripted servers (/scripted/NAME/ws, and
// GET /scripted/handshakes?session_id=S, how many handshakes the session made). The
// files run one at a time: a restart ends every session of the reference server.
func TestNode(t *testing.T) {
	node := nodeBinary(t)
	files, err := filepath.Glob("../web/test/*.test.mjs")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Node tests in ../web/test (%v)", err)
	}
	for i, f := range files {
		files[i] = filepath.Base(f)
	}
	ref := newRestartable(t)
	refTS := httptest.NewServer(ref)
	t.Cleanup(refTS.Close)

	sc := newScriptHost(t)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /control/drop", func(w http.ResponseWriter, r *http.Request) {
		if !ref.cur.Load().DropConnection(r.URL.Query().Get("session_id")) {
			http.Error(w, "the session has no connection", http.StatusConflict)
		}
	})
	mux.HandleFunc("POST /control/restart", func(w http.ResponseWriter, r *http.Request) { ref.restart() })
	mux.HandleFunc("GET /scripted/handshakes", sc.handshakesOf)
	mux.HandleFunc("GET /scripted/{name}/ws", sc.serve)
	aux := httptest.NewServer(mux)
	t.Cleanup(func() {
		sc.stop()
		aux.Close()
	})

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{"--test", "--test-concurrency=1", "--test-reporter=spec", "--test-timeout=60000"}, files...)...)
	cmd.Dir = "../web/test"
	cmd.Env = append(os.Environ(),
		"AGENTWS_TEST_WS=ws"+strings.TrimPrefix(refTS.URL, "http")+"/ws",
		"AGENTWS_TEST_AUX="+aux.URL,
		"NODE_PATH=", "FORCE_COLOR=0", "NO_COLOR=1",
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test %s: %v\n%s", strings.Join(files, " "), err, out)
	}
	t.Logf("node --test:\n%s", out)
}

// scriptHost hosts the scripted servers of scriptedServers, counting each session's
// handshakes.
type scriptHost struct {
	t          *testing.T
	ctx        context.Context
	cancel     context.CancelFunc
	running    sync.WaitGroup
	mu         sync.Mutex
	handshakes map[string]int
}

func newScriptHost(t *testing.T) *scriptHost {
	ctx, cancel := context.WithCancel(context.Background())
	return &scriptHost{t: t, ctx: ctx, cancel: cancel, handshakes: map[string]int{}}
}

// stop ends every scripted connection and waits for their handlers.
func (s *scriptHost) stop() {
	s.cancel()
	s.running.Wait()
}

func (s *scriptHost) serve(w http.ResponseWriter, r *http.Request) {
	script, ok := scriptedServers[r.PathValue("name")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	s.running.Add(1)
	defer s.running.Done()
	sid := r.URL.Query().Get("session_id")
	s.mu.Lock()
	s.handshakes[sid]++
	n := s.handshakes[sid]
	s.mu.Unlock()
	script(&scriptCall{ctx: s.ctx, t: s.t, w: w, r: r, sid: sid, n: n})
}

func (s *scriptHost) handshakesOf(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	n := s.handshakes[r.URL.Query().Get("session_id")]
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(strconv.Itoa(n)))
}
