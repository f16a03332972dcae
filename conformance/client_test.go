package conformance_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentws/agentws/conformance"
)

// requireNode is set by `make test`, which installs Node.js 22 (tools/node.sh): there
// the JavaScript client's cases must run, not skip.
const requireNode = "AGENTWS_REQUIRE_NODE"

// clientOptions builds the options of a run of the client cases against adapter.
func clientOptions(adapter []string, features []string) conformance.Options {
	opts := conformance.DefaultOptions("")
	opts.Client, opts.ClientFeatures = adapter, features
	if *flagCase != "" {
		for _, p := range strings.Split(*flagCase, ",") {
			if p = strings.TrimSpace(p); p != "" {
				opts.Cases = append(opts.Cases, p)
			}
		}
	}
	opts.Strict, opts.Parallel, opts.FrameTimeout, opts.CaseTimeout = *flagStrict, *flagParallel, *flagTimeout, *flagCaseTimeout
	return opts
}

// TestClientConformance runs the client cases against -client, or, without it,
// against the project's reference clients, which must pass every case.
func TestClientConformance(t *testing.T) {
	if *flagURL != "" {
		t.Skip("-url checks a server; give -client to check a client")
	}
	if *flagClient != "" {
		var features []string
		if *flagClientFeat != "" {
			features = strings.Split(*flagClientFeat, ",")
		}
		runClientCases(t, fromRootWords(strings.Fields(*flagClient)), features, false)
		return
	}
	t.Run("go", func(t *testing.T) {
		runClientCases(t, []string{buildAsk(t)}, []string{"cancel"}, true)
	})
	t.Run("javascript", func(t *testing.T) {
		runClientCases(t, []string{node22(t), "../reference/web/ask.mjs"}, []string{"cancel"}, true)
	})
}

func runClientCases(t *testing.T, adapter, features []string, reference bool) {
	opts := clientOptions(adapter, features)
	ctx := t.Context()
	if deadline, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-time.Until(deadline)/20))
		defer cancel()
	}
	rep, err := conformance.Run(ctx, opts)
	if rep == nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Error(err)
	}
	judge(t, rep, reference)
	if *flagClient != "" {
		if err := rep.WriteFiles(fromRoot(*flagReport), fromRoot(*flagJUnit), fromRoot(*flagSummary), fromRoot(*flagWireLogs)); err != nil {
			t.Error(err)
		}
	}
}

// node22 returns the path of a Node.js of version 22 or later: the one tools/node.sh
// installed, or node on the PATH when it is recent enough. Without one it skips, or
// fails where Node is required.
func node22(t *testing.T) string {
	t.Helper()
	if out, err := exec.Command("../tools/node.sh", "--find").Output(); err == nil {
		if p := strings.TrimSpace(string(out)); p != "" {
			return p
		}
	}
	if p, err := exec.LookPath("node"); err == nil {
		if out, err := exec.Command(p, "-e", "process.stdout.write(String(typeof WebSocket))").Output(); err == nil && string(out) == "function" {
			return p
		}
	}
	if os.Getenv(requireNode) != "" {
		t.Fatalf("no Node.js 22 (tools/node.sh installs one), and %s is set", requireNode)
	}
	t.Skip("no Node.js 22 with a global WebSocket; run `make node` (tools/node.sh) to check the JavaScript client")
	return ""
}

// buildAsk builds tools/ask, the Go client's adapter, into the test's directory.
func buildAsk(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ask")
	out, err := exec.Command("go", "build", "-o", bin, "../tools/ask").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ../tools/ask: %v\n%s", err, out)
	}
	return bin
}

// fromRootWords resolves the words of a command that name files from the repository
// root, as the report paths are: go test runs in conformance/.
func fromRootWords(words []string) []string {
	out := make([]string, len(words))
	for i, w := range words {
		out[i] = w
		if !filepath.IsAbs(w) && strings.ContainsRune(w, '/') {
			if _, err := os.Stat(filepath.Join("..", w)); err == nil {
				out[i] = filepath.Join("..", w)
			}
		}
	}
	return out
}
