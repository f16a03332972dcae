package main

import (
	"bytes"
	"encoding/json"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/agentws/agentws/reference/server"
)

// load runs the command with args and -json, and returns its exit status and report.
func load(t *testing.T, args ...string) (int, *report) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	status := run(append([]string{"-json"}, args...), &stdout, &stderr)
	rep := &report{}
	if err := json.Unmarshal(stdout.Bytes(), rep); err != nil {
		t.Fatalf("agentws-load %q (status %d): the output is not a JSON report: %v\nstdout:\n%s\nstderr:\n%s", args, status, err, &stdout, &stderr)
	}
	if rep.Status != status {
		t.Errorf("the report's status is %d, the exit status %d", rep.Status, status)
	}
	wantFields(t, stdout.Bytes())
	return status, rep
}

// wantFields checks the JSON report's field names: lists are lists even when empty,
// and each latency has its percentiles.
func wantFields(t *testing.T, data []byte) {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"errors", "check_failures", "warnings", "capabilities"} {
		if _, ok := doc[name].([]any); !ok {
			t.Errorf("%s is %v, want a list", name, doc[name])
		}
	}
	lats, _ := doc["latency_us"].(map[string]any)
	for name, l := range lats {
		p, _ := l.(map[string]any)
		for _, key := range []string{"count", "min", "mean", "p50", "p90", "p99", "p99_9", "max"} {
			if _, ok := p[key].(float64); !ok {
				t.Errorf("latency_us.%s.%s is %v, want a number", name, key, p[key])
			}
		}
	}
}

// framesOf returns how many frames the reference server sends for the queries of
// connections 0..conns-1, each sending q queries of size characters: connected, each
// stream (query_start, its chunks, complete), disconnected.
func framesOf(t *testing.T, conns, q, size int) (frames, chunks int64) {
	for i := range conns {
		frames += 2
		for k := range q {
			n := int64(len(fixtureChunks(t, queryText(i, k, size))))
			frames += n + 2
			chunks += n
		}
	}
	return frames, chunks
}

func wantPassed(t *testing.T, status int, rep *report) {
	t.Helper()
	if status != exitPassed || !rep.Passed || rep.ErrorsTotal != 0 || rep.ChecksFailed != 0 {
		t.Fatalf("status %d, passed %v, errors %+v, check failures %+v; want a run that passes", status, rep.Passed, rep.Errors, rep.CheckFailures)
	}
}

func wantCount(t *testing.T, what string, got, want int64) {
	t.Helper()
	if got != want {
		t.Errorf("%s: %d, want %d", what, got, want)
	}
}

// The closed loop against the reference server: every query answered, every frame
// counted, every stream checked, and with -pid the server's CPU and memory.
func TestClosedLoop(t *testing.T) {
	url := startReference(t, nil)
	status, rep := load(t, "-url", url, "-c", "3", "-q", "5", "-query-size", "100", "-pid", strconv.Itoa(os.Getpid()))
	wantPassed(t, status, rep)
	frames, chunks := framesOf(t, 3, 5, 100)
	wantCount(t, "connections opened", rep.ConnectionsOpened, 3)
	wantCount(t, "queries sent", rep.QueriesSent, 15)
	wantCount(t, "queries completed", rep.QueriesCompleted, 15)
	wantCount(t, "streams checked", rep.StreamsChecked, 15)
	wantCount(t, "frames received", rep.FramesReceived, frames)
	wantCount(t, "frames sent", rep.FramesSent, 15+3) // the queries, and a disconnect each
	wantCount(t, "connect latencies", rep.LatencyUS[latConnect].Count, 3)
	wantCount(t, "first-chunk latencies", rep.LatencyUS[latFirstChunk].Count, 15)
	wantCount(t, "chunk gaps", rep.LatencyUS[latChunkGap].Count, chunks-15)
	wantCount(t, "query latencies", rep.LatencyUS[latQuery].Count, 15)
	if _, ok := rep.LatencyUS[latSendLag]; ok {
		t.Error("a closed loop reports a send lag")
	}
	q := rep.LatencyUS[latQuery]
	if !(q.Min <= q.P50 && q.P50 <= q.P90 && q.P90 <= q.P99 && q.P99 <= q.P999 && q.P999 <= q.Max) || q.Max == 0 {
		t.Errorf("query percentiles %+v are not in order", q)
	}
	if !slices.Contains(rep.Capabilities, "fixture") {
		t.Errorf("capabilities %q, want the reference server's, fixture among them", rep.Capabilities)
	}
	s := rep.Server
	if s == nil || s.Error != "" || s.RSSBeforeBytes <= 0 || s.RSSAfterBytes <= 0 || s.RSSPeakBytes < s.RSSAfterBytes {
		t.Fatalf("server report %+v, want the RSS of this process before, after and at its peak", s)
	}
	if rep.Client.GOMAXPROCS < 1 || rep.Client.NoFileLimit == 0 {
		t.Errorf("client report %+v, want GOMAXPROCS and the open-file limit", rep.Client)
	}
}

// -duration sends until its end, in closed loop: every query sent is answered.
func TestClosedLoopDuration(t *testing.T) {
	url := startReference(t, nil)
	status, rep := load(t, "-url", url, "-c", "2", "-duration", "200ms")
	wantPassed(t, status, rep)
	if rep.QueriesSent == 0 || rep.QueriesCompleted != rep.QueriesSent {
		t.Errorf("%d queries sent, %d completed; want some, all answered", rep.QueriesSent, rep.QueriesCompleted)
	}
	if rep.QueriesPerConnection != 0 || rep.DurationUS != 200000 {
		t.Errorf("queries_per_connection %d, duration_us %d; want 0 and 200000", rep.QueriesPerConnection, rep.DurationUS)
	}
}

// The open loop sends on its schedule and records each send's lag.
func TestOpenLoop(t *testing.T) {
	url := startReference(t, nil)
	status, rep := load(t, "-url", url, "-c", "2", "-q", "5", "-rate", "400", "-ramp", "10ms")
	wantPassed(t, status, rep)
	if rep.Mode != modeOpen || rep.Rate != 400 {
		t.Errorf("mode %q at %v, want open at 400", rep.Mode, rep.Rate)
	}
	wantCount(t, "queries completed", rep.QueriesCompleted, 10)
	wantCount(t, "send lags", rep.LatencyUS[latSendLag].Count, 10)
	wantCount(t, "query latencies", rep.LatencyUS[latQuery].Count, 10)
}

// -idle holds the connections, sends nothing but disconnect, and measures the server's
// memory while they are held.
func TestIdle(t *testing.T) {
	url := startReference(t, nil)
	status, rep := load(t, "-url", url, "-c", "5", "-idle", "-duration", "50ms", "-pid", strconv.Itoa(os.Getpid()))
	wantHeld(t, status, rep, 5)
	wantCount(t, "frames received", rep.FramesReceived, 10) // connected and disconnected
	wantCount(t, "frames sent", rep.FramesSent, 5)
	wantCount(t, "queries sent", rep.QueriesSent, 0)
}

// wantHeld checks a passed -idle run with -pid: every connection opened, and the
// server's RSS while they were held.
func wantHeld(t *testing.T, status int, rep *report, conns int64) {
	t.Helper()
	wantPassed(t, status, rep)
	wantCount(t, "connections opened", rep.ConnectionsOpened, conns)
	wantCount(t, "connect latencies", rep.LatencyUS[latConnect].Count, conns)
	if s := rep.Server; s == nil || s.RSSHeldBytes <= 0 {
		t.Fatalf("server report %+v, want the RSS with the connections held", s)
	}
}

// -echo against agentws-echo's handler: every frame comes back, and one server frame
// per frame sent.
func TestEcho(t *testing.T) {
	url := startEcho(t)
	status, rep := load(t, "-echo", "-url", url, "-c", "2", "-q", "10", "-query-size", "1000")
	wantPassed(t, status, rep)
	wantCount(t, "frames received", rep.FramesReceived, 20)
	wantCount(t, "bytes received", rep.BytesReceived, 20*1000)
	wantCount(t, "echo latencies", rep.LatencyUS[latQuery].Count, 20)
	if _, ok := rep.LatencyUS[latFirstChunk]; ok {
		t.Error("an echo run reports first-chunk latencies")
	}
}

// -idle -echo holds connections to an echo server, expecting no connected, and
// closes them; the CPU per connection is that of opening them.
func TestIdleEcho(t *testing.T) {
	url := startEcho(t)
	status, rep := load(t, "-echo", "-idle", "-url", url, "-c", "4", "-duration", "10ms", "-pid", strconv.Itoa(os.Getpid()))
	wantHeld(t, status, rep, 4)
	wantCount(t, "frames received", rep.FramesReceived, 0)
	wantCount(t, "frames sent", rep.FramesSent, 0)
}

func TestEchoOpenLoop(t *testing.T) {
	url := startEcho(t)
	status, rep := load(t, "-echo", "-url", url, "-c", "2", "-q", "5", "-rate", "1000")
	wantPassed(t, status, rep)
	wantCount(t, "send lags", rep.LatencyUS[latSendLag].Count, 10)
}

func TestEchoWrong(t *testing.T) {
	url := startWrongEcho(t)
	status, rep := load(t, "-echo", "-url", url, "-c", "1", "-q", "3")
	if status != exitFailed {
		t.Fatalf("status %d, want %d", status, exitFailed)
	}
	wantProblem(t, rep.CheckFailures, checkEcho, "", 3)
}

// wantProblem checks that ps holds kind (with detail, when given) count times.
func wantProblem(t *testing.T, ps []problem, kind, detail string, count int64) {
	t.Helper()
	for _, p := range ps {
		if p.Kind == kind && (detail == "" || p.Detail == detail) {
			if p.Count != count {
				t.Errorf("%s %s ×%d, want ×%d (first: %s)", kind, detail, p.Count, count, p.Example)
			}
			if p.Example == "" {
				t.Errorf("%s %s has no example", kind, detail)
			}
			return
		}
	}
	t.Errorf("no %s %s among %+v", kind, detail, ps)
}

// Against a server that breaks the protocol the run fails, exit status 1, and names
// what broke.
func TestFaultyServer(t *testing.T) {
	for _, tc := range []struct {
		fault  fault
		args   []string
		check  string // a check that fails
		err    string // or an error kind
		detail string
	}{
		{fault: faultSkip, check: checkChunkNumber},
		{fault: faultContent, check: checkContent},
		{fault: faultInvalid, check: checkInvalidFrame},
		{fault: faultQueryID, check: checkQueryID},
		{fault: faultTotal, check: checkComplete},
		{fault: faultError, err: errErrorFrame, detail: "query_failed"},
		{fault: faultClose, err: errClose, detail: "1011"},
		{fault: faultStall, args: []string{"-timeout", "100ms"}, err: errTimeout, detail: "the stream of query q0"},
	} {
		t.Run(string(tc.fault), func(t *testing.T) {
			url := startFaulty(t, tc.fault)
			status, rep := load(t, append([]string{"-url", url, "-c", "1", "-q", "3"}, tc.args...)...)
			if status != exitFailed || rep.Passed {
				t.Fatalf("status %d, passed %v, want %d and false", status, rep.Passed, exitFailed)
			}
			if tc.check != "" {
				wantProblem(t, rep.CheckFailures, tc.check, "", 1)
				wantCount(t, "queries completed", rep.QueriesCompleted, 3) // the connection goes on
			} else {
				wantProblem(t, rep.Errors, tc.err, tc.detail, 1)
			}
		})
	}
}

// -max-errors tolerates errors, never failed checks.
func TestMaxErrors(t *testing.T) {
	url := startFaulty(t, faultError)
	if status, rep := load(t, "-url", url, "-c", "2", "-q", "2", "-max-errors", "2"); status != exitPassed {
		t.Errorf("2 error frames with -max-errors 2: status %d (errors %+v), want %d", status, rep.Errors, exitPassed)
	}
	url = startFaulty(t, faultSkip)
	if status, _ := load(t, "-url", url, "-c", "1", "-q", "1", "-max-errors", "100"); status != exitFailed {
		t.Errorf("a skipped chunk with -max-errors 100: status %d, want %d", status, exitFailed)
	}
}

// A refused handshake is a dial error that names the HTTP status and code.
func TestDialFailed(t *testing.T) {
	url := startReference(t, func(c *server.Config) { c.MaxConnsPerIP = 1 })
	status, rep := load(t, "-url", url, "-c", "3", "-idle", "-duration", "10ms")
	if status != exitFailed {
		t.Fatalf("status %d, want %d", status, exitFailed)
	}
	wantProblem(t, rep.Errors, errDial, "HTTP 429 too_many_connections", 2)
	wantCount(t, "connections opened", rep.ConnectionsOpened, 1)

	status, rep = load(t, "-url", "ws://127.0.0.1:1/ws", "-c", "1")
	if status != exitFailed {
		t.Fatalf("a closed port: status %d, want %d", status, exitFailed)
	}
	wantProblem(t, rep.Errors, errDial, "connection refused", 1)
}

// The text report has the latencies and the verdict.
func TestTextReport(t *testing.T) {
	url := startReference(t, nil)
	var stdout, stderr bytes.Buffer
	if status := run([]string{"-url", url, "-c", "2", "-q", "2"}, &stdout, &stderr); status != exitPassed {
		t.Fatalf("status %d\n%s%s", status, &stdout, &stderr)
	}
	for _, want := range []string{"closed loop, 2 connections", "first chunk", "chunk gap", "p99.9", "checks: passed (4 streams)", "errors: none", "PASS"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the report has no %q:\n%s", want, &stdout)
		}
	}
	stdout.Reset()
	if status := run([]string{"-url", startFaulty(t, faultSkip), "-c", "1", "-q", "1"}, &stdout, &stderr); status != exitFailed {
		t.Fatalf("status %d, want %d\n%s", status, exitFailed, &stdout)
	}
	for _, want := range []string{"checks: 2 FAILED", "chunk_number ×1, first: connection 0, query q0: chunk_number 3 after 1, want 2 (STREAM-3)", "FAIL"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the report has no %q:\n%s", want, &stdout)
		}
	}
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-c", "0"}, "-c is 0"},
		{[]string{"-q", "0"}, "-q is 0"},
		{[]string{"-q", "5", "-duration", "1s"}, "-q and -duration exclude each other"},
		{[]string{"-rate", "-1"}, "-rate is -1"},
		{[]string{"-idle", "-rate", "5"}, "-idle sends nothing"},
		{[]string{"-query-size", "0"}, "-query-size is 0"},
		{[]string{"-timeout", "0s"}, "-timeout is 0s"},
		{[]string{"-max-errors", "-1"}, "-max-errors is -1"},
		{[]string{"-cpu-share", "2"}, "-cpu-share is 2"},
		{[]string{"-url", "http//nohost"}, "-url"},
		{[]string{"-url", "ftp://h/ws"}, `-url "ftp://h/ws"`},
		{[]string{"-pid", "999999999"}, "-pid 999999999"},
		{[]string{"-session-prefix", "a b"}, "-session-prefix"},
		{[]string{"-duration", "soon"}, `invalid value "soon" for flag -duration`},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		var stdout, stderr bytes.Buffer
		if got := run(tc.args, &stdout, &stderr); got != exitUsage {
			t.Errorf("%q: status %d, want %d", tc.args, got, exitUsage)
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: stderr %q, want it to name %q", tc.args, stderr.String(), tc.want)
		}
		if stdout.Len() > 0 {
			t.Errorf("%q: a usage error wrote to stdout: %q", tc.args, &stdout)
		}
	}
}

func TestQueryText(t *testing.T) {
	for _, n := range []int{1, 5, 64, 1000} {
		q := queryText(12, 345, n)
		if len(q) != n || !strings.HasPrefix("load 12.345 ", q[:min(n, 12)]) {
			t.Errorf("queryText(12, 345, %d) = %q", n, q)
		}
	}
	if queryText(1, 2, 64) == queryText(1, 3, 64) {
		t.Error("two queries of a connection are the same")
	}
}

func TestParseProc(t *testing.T) {
	cpu, err := parseStat([]byte("42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 150 25 0 0 20 0 8 0 100 1000 200\n"))
	if err != nil || cpu != 175*clockTick {
		t.Errorf("parseStat: %v, %v; want %v", cpu, err, 175*clockTick)
	}
	rss, err := parseRSS([]byte("Name:\tx\nVmHWM:\t  9 kB\nVmRSS:\t  1234 kB\nThreads: 8\n"))
	if err != nil || rss != 1234<<10 {
		t.Errorf("parseRSS: %d, %v; want %d", rss, err, 1234<<10)
	}
	if _, err := parseRSS([]byte("Name:\tkthreadd\n")); err == nil {
		t.Error("parseRSS without VmRSS: no error")
	}
	if _, err := readProc(os.Getpid()); err != nil {
		t.Errorf("readProc(self): %v", err)
	}
}

// The machine's CPUs are all those online (a Linux CPU list), whatever this process may
// run on.
func TestMachineCPUs(t *testing.T) {
	for list, want := range map[string]int{"0": 1, "0-1\n": 2, "0-3,6": 5, "0,2,4-7": 6, "": 0, "x": 0, "3-1": 0} {
		if got, ok := countCPUs(list); got != want || ok != (want > 0) {
			t.Errorf("countCPUs(%q) = %d, %v; want %d", list, got, ok, want)
		}
	}
	if n := machineCPUs(); n < runtime.NumCPU() {
		t.Errorf("machineCPUs() = %d, fewer than the %d this process may use", n, runtime.NumCPU())
	}
}
