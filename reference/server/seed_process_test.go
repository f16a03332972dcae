package server_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// requireSeedClients is set by `make test`, which installs what the original design document's
// clients need: there they must run, not skip.
const requireSeedClients = "AGENTWS_REQUIRE_SEED_CLIENTS"

// unavailable skips the test, or fails it where the clients are required.
func unavailable(t *testing.T, why string) {
	t.Helper()
	if os.Getenv(requireSeedClients) != "" {
		t.Fatalf("%s, and %s is set (make test installs it with tools/seed-clients.sh)", why, requireSeedClients)
	}
	t.Skipf("%s; run `make test`, or tools/seed-clients.sh, to run the original design document's client", why)
}

func runClient(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// The original design document's Python client, run as it is, prints the chunks and the complete
// message and exits.
func TestSeedPythonClientRuns(t *testing.T) {
	python := ""
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(p, "-c", "import websockets").Run() == nil {
			python = p
			break
		}
	}
	if python == "" {
		unavailable(t, "no python3 with the websockets module (Debian: python3-websockets)")
	}
	s := start(t, nil)
	out := runClient(t, python, "../../testdata/seed/python_client.py", s.wsURL("session_id=test-session"))
	first, _, _ := strings.Cut(out, "\n")
	if !strings.HasPrefix(first, "< {") || !strings.Contains(first, `"type":"connected"`) {
		t.Errorf("first line %q: want the connected frame", first)
	}
	for _, want := range []string{"> {'type': 'query'", "< query_start: \n", "< chunk: Echo: What", "< complete: \n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// The original design document's JavaScript client, run as it is in Node.js, logs the chunks and
// the complete response.
func TestSeedJavaScriptClientRuns(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		unavailable(t, "no node")
	}
	args := []string{"../../testdata/seed/js_client.js"}
	if out, _ := exec.Command(node, "-e", "process.stdout.write(typeof WebSocket)").Output(); string(out) != "function" {
		args = append([]string{"--experimental-websocket"}, args...)
	}
	s := start(t, nil)
	out := runClient(t, node, append(args, s.wsURL("session_id=my-session&user_id=user1"))...)
	for _, want := range []string{"Connected\n", "Connection established\n", "Chunk: Echo: Help", "Complete response: Echo: Help me analyze this document\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
