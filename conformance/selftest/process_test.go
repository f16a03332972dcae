package selftest_test

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentws/agentws/conformance"
	"github.com/agentws/agentws/conformance/internal/reftest"
)

// A setting of the reference server and what the harness is told of it.
type setting struct {
	name  string
	flags []string                   // the server's flags, beside the base ones
	tell  func(*conformance.Options) // the matching harness options
	warns []string                   // SHOULD rules the setting breaks on purpose
}

// The settings matrix (issue 8, item 8): the harness passes against the reference
// server run as a separate process, given by URL as a user gives theirs, on its base
// settings and under each non-default setting, told of it as a user tells it.
var matrix = []setting{
	{name: "base"},
	{name: "queue-depth-1", flags: []string{"-queue-depth", "1"}, tell: func(o *conformance.Options) { o.QueueDepth = 1 }},
	{name: "queue-depth-2", flags: []string{"-queue-depth", "2"}, tell: func(o *conformance.Options) { o.QueueDepth = 2 }},
	{name: "buffer-size-1", flags: []string{"-buffer-size", "1"}, tell: func(o *conformance.Options) { o.BufferSize = 1 }},
	{name: "send-queue-1", flags: []string{"-send-queue", "1"}},
	{name: "keepalive-1s", flags: []string{"-keepalive", "1s"}, tell: func(o *conformance.Options) { o.KeepaliveInterval = time.Second }},
	{name: "session-ttl-2s", flags: []string{"-session-ttl", "2s"}, tell: func(o *conformance.Options) { o.SessionTTL = 2 * time.Second }},
	{name: "max-message-4KiB", flags: []string{"-max-message-bytes", "4096"}, tell: func(o *conformance.Options) { o.MaxMessageBytes = 4096 },
		warns: []string{"ENV-9"}}, // a limit under 64 KiB is allowed, and breaks only ENV-9
	{name: "buffer-bytes-2KB", flags: []string{"-buffer-bytes", "2048"}, tell: func(o *conformance.Options) { o.BufferBytes = 2048 }},
}

// The base settings: keepalive and TTL short and known, so that their cases run.
const baseBufferSize = 40

func baseFlags() []string {
	return []string{"-addr", "127.0.0.1:0", "-log-format", "json",
		"-keepalive", reftest.Keepalive.String(), "-session-ttl", reftest.SessionTTL.String(),
		"-buffer-size", strconv.Itoa(baseBufferSize)}
}

func TestAgainstReferenceProcess(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "agentws-server")
	if out, err := exec.Command("go", "build", "-o", bin, "../../reference/cmd/agentws-server").CombinedOutput(); err != nil {
		t.Fatalf("building the reference server: %v\n%s", err, out)
	}
	for _, s := range matrix {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			url := startProcess(t, bin, append(baseFlags(), s.flags...))
			opts := conformance.DefaultOptions(url)
			opts.KeepaliveInterval, opts.SessionTTL, opts.BufferSize = reftest.Keepalive, reftest.SessionTTL, baseBufferSize
			opts.AdminURL, opts.AdminToken = reftest.AdminURL(url), reftest.AdminToken
			if s.tell != nil {
				s.tell(&opts)
			}
			rep, err := conformance.Run(t.Context(), opts)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Failed() || unexpectedWarnings(rep, s.warns) || rep.Totals.Pass < 50 {
				t.Errorf("%s against the reference process at %s with %v:\n%s", rep.Tally(), url, s.flags, failures(rep))
			}
			t.Logf("%s against the reference process with %v in %v", rep.Tally(), s.flags, rep.Duration)
		})
	}
}

// unexpectedWarnings reports whether a case warned of a rule other than allowed.
func unexpectedWarnings(rep *conformance.Report, allowed []string) bool {
	for _, c := range rep.Cases {
		if c.Verdict != conformance.Warn {
			continue
		}
		for _, r := range c.Rules {
			if !slices.Contains(allowed, r) {
				return true
			}
		}
	}
	return false
}

// startProcess runs the reference server binary with flags and returns its URL, which
// it logs; the process is killed when the test ends.
func startProcess(t *testing.T, bin string, flags []string) string {
	t.Helper()
	cmd := exec.Command(bin, flags...)
	cmd.Env = append(os.Environ(), "AGENTWS_ADMIN_TOKEN="+reftest.AdminToken) // the admin API, beside /ws
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
	urls, ended := make(chan string, 1), make(chan []string, 1)
	go func() {
		var first []string // what a server that does not start says
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if len(first) < 20 {
				first = append(first, sc.Text())
			}
			var line struct{ URL string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.URL != "" {
				select {
				case urls <- line.URL:
				default:
				}
			}
		}
		ended <- first
	}()
	select {
	case url := <-urls:
		return url
	case first := <-ended:
		t.Fatalf("the server with %v exited before it served:\n%s", flags, strings.Join(first, "\n"))
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not log its URL")
	}
	return ""
}
