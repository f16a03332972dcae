package conformance

// The commands for HTTP, arithmetic and time.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/agentws/agentws/schemas"
)

func cmdPause(ts *testscript.TestScript, st *caseState, args []string) {
	args = parse(ts, "pause", args, 1, 1, nil)
	d, err := time.ParseDuration(expand(ts, args[0]))
	if err != nil || d < 0 {
		ts.Fatalf("pause: %q is not a duration of 0 or more", args[0])
	}
	timer := time.NewTimer(d) // a time the protocol defines, not something to poll
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-st.ctx.Done():
		ts.Fatalf("pause: %v", context.Cause(st.ctx))
	}
}

func cmdHTTP(ts *testscript.TestScript, st *caseState, args []string) {
	status, within := http.StatusOK, st.opts.FrameTimeout
	var lacks []string
	args = parse(ts, "http", args, 2, 3, func(fs *flag.FlagSet) {
		fs.IntVar(&status, "status", status, "")
		fs.DurationVar(&within, "within", within, "")
		lacksFlag(fs, &lacks)
	})
	fail := ts.Fatalf
	if args[0] == http.MethodGet && strings.HasSuffix(args[1], "/health") && status == http.StatusOK {
		// GET /ws/health must answer 200 (HEALTH-1), whatever the case checks of it.
		fail = func(format string, args ...any) {
			if st.ctx.Err() == nil {
				st.failAgainst(ts, "HEALTH-1", format, args...)
			}
			ts.Fatalf(format, args...)
		}
	}
	ctx, cancel := context.WithTimeout(st.ctx, within)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, args[0], st.opts.httpBase()+expand(ts, args[1]), nil)
	if err != nil {
		usage(ts, "http")
	}
	sent := time.Now()
	req.Header = st.authenticate("", req.Header)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fail("http %s %s: %v (the answer must come within %v)", args[0], args[1], err, within)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		fail("http %s %s: the body did not come within %v: %v", args[0], args[1], within, err)
	}
	st.wire.note("http", fmt.Sprintf("%s %s: %s %s", args[0], args[1], resp.Status, truncate(string(body), 500)))
	if resp.StatusCode != status {
		fail("http %s %s: %s, want %d: %s", args[0], args[1], resp.Status, status, truncate(string(body), 300))
	}
	if strings.HasSuffix(args[1], "/health") && resp.StatusCode == http.StatusOK {
		st.inv.observeHealth(sent, time.Now(), body, st.name)
		if err := st.v.Validate(schemas.Health, body); err != nil {
			st.finding("HEALTH-1", "GET %s: the body breaks health.json: %v: %s", args[1], err, truncate(string(body), 300))
		}
	}
	checkLacks(ts, fmt.Sprintf("http %s %s: the body", args[0], args[1]), body, lacks)
	if len(args) < 3 {
		return
	}
	var got any
	if err := json.Unmarshal(body, &got); err != nil {
		ts.Fatalf("http %s %s: the body is not JSON: %s", args[0], args[1], truncate(string(body), 300))
	}
	captured := map[string]string{}
	if d := match(pattern(ts, args[2]), got, "", captured); d != "" {
		ts.Fatalf("http %s %s: %s\nbody: %s", args[0], args[1], d, truncate(string(body), 500))
	}
	for k, v := range captured {
		ts.Setenv(k, v)
	}
}

func cmdCompare(ts *testscript.TestScript, st *caseState, args []string) {
	args = parse(ts, "compare", args, 3, 3, nil)
	a, errA := sum(expand(ts, args[0]))
	b, errB := sum(expand(ts, args[2]))
	if errA != nil || errB != nil {
		ts.Fatalf("compare: %q and %q must be integers or sums of integers", expand(ts, args[0]), expand(ts, args[2]))
	}
	ok := false
	switch args[1] {
	case "==":
		ok = a == b
	case "!=":
		ok = a != b
	case "<":
		ok = a < b
	case "<=":
		ok = a <= b
	case ">":
		ok = a > b
	case ">=":
		ok = a >= b
	default:
		usage(ts, "compare")
	}
	if !ok {
		ts.Fatalf("compare: %d %s %d is false (%s %s %s)", a, args[1], b, args[0], args[1], args[2])
	}
}

// sum parses an integer or a sum of integers such as "41+1".
func sum(s string) (int, error) {
	total := 0
	for _, term := range strings.Split(s, "+") {
		n, err := strconv.Atoi(strings.TrimSpace(term))
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

func cmdShutdown(ts *testscript.TestScript, st *caseState, args []string) {
	parse(ts, "shutdown", args, 0, 0, nil)
	if st.opts.Shutdown == nil {
		ts.Fatalf("shutdown: the run has no shutdown hook")
	}
	st.wire.note("server", "shutdown")
	go st.opts.Shutdown()
}
