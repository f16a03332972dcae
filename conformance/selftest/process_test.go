package selftest_test

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentws/agentws/conformance"
	"github.com/agentws/agentws/conformance/internal/reftest"
)

// The harness passes against the reference server run as a separate process and given
// by URL, as a user runs it against their own server.
func TestAgainstReferenceProcess(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "agentws-server")
	if out, err := exec.Command("go", "build", "-o", bin, "../../reference/cmd/agentws-server").CombinedOutput(); err != nil {
		t.Fatalf("building the reference server: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-log-format", "json",
		"-keepalive", reftest.Keepalive.String(), "-session-ttl", reftest.SessionTTL.String(), "-buffer-size", "40")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct{ Msg, URL string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.URL != "" {
				urls <- line.URL
			}
		}
	}()
	var url string
	select {
	case url = <-urls:
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not log its URL")
	}
	opts := conformance.DefaultOptions(url)
	opts.KeepaliveInterval, opts.SessionTTL, opts.BufferSize = reftest.Keepalive, reftest.SessionTTL, 40
	rep, err := conformance.Run(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed() || rep.Totals.Warn > 0 || rep.Totals.Pass < 50 {
		t.Errorf("%s against the reference process at %s:\n%s", rep.Tally(), url, failures(rep))
	}
	t.Logf("%s against the reference process at %s in %v", rep.Tally(), url, rep.Duration)
}
