package selftest

import (
	"strings"
	"testing"

	"github.com/agentws/agentws/conformance"
	"github.com/agentws/agentws/conformance/internal/reftest"
	"github.com/agentws/agentws/reference/server"
)

// STREAM-11 against a server that bounds queries per client: the rate case runs after
// the others, which its spending would otherwise starve, and passes; a case that the
// bound refused fails with a note that says why; against a server with no bound the
// rate case warns; without the settings it is skipped, saying which to give.
func TestQueryRateCase(t *testing.T) {
	run := func(rate float64, burst int, tell bool, cases ...string) *conformance.Report {
		t.Helper()
		url, _ := reftest.Start(t, func(c *server.Config) { c.QueryRate, c.QueryBurst = rate, burst })
		opts := reftest.Options(url)
		opts.Cases = cases
		if tell {
			opts.QueryRate, opts.QueryBurst = rate, burst
		}
		rep, err := conformance.Run(t.Context(), opts)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	verdicts := func(rep *conformance.Report) map[string]*conformance.CaseResult {
		m := map[string]*conformance.CaseResult{}
		for _, c := range rep.Cases {
			m[c.Name] = c
		}
		return m
	}

	// Cases that send 39 queries run before the rate case spends the rest of the burst
	// of 40, though they would run beside it.
	rep := run(2, 40, true, "stream_rate_limited", "stream_in_order", "stream_queue_bound", "stream_totals", "stream_numbering", "stream_start")
	for name, c := range verdicts(rep) {
		if c.Verdict != conformance.Pass {
			t.Errorf("%s: %s: %s", name, c.Verdict, c.Failure)
		}
	}

	// A burst of 2 for the same cases, run without the rate case: the bound refuses
	// some of their queries, and the failures say so.
	rep = run(0.01, 2, false, "stream_totals", "stream_numbering", "stream_start", "stream_in_order")
	noted := 0
	for _, c := range rep.Cases {
		if strings.Contains(c.Failure, "refused queries of this case with rate_limited") {
			noted++
		}
	}
	if noted == 0 {
		t.Errorf("%s: no failure notes the rate limit", rep.Tally())
	}

	// No bound, though the harness is told of one: the case warns on STREAM-11.
	url, _ := reftest.Start(t, func(c *server.Config) { c.QueryRate = 0 })
	opts := reftest.Options(url)
	opts.Cases, opts.QueryRate, opts.QueryBurst = []string{"stream_rate_limited"}, 2, 20
	rep, err := conformance.Run(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if c := verdicts(rep)["stream_rate_limited"]; c.Verdict != conformance.Warn || !strings.Contains(c.Failure, "rate_limited") {
		t.Errorf("a server with no query rate: %s %q, want a warning that no rate_limited came", c.Verdict, c.Failure)
	}

	// Not told the rate: skipped, naming the flags.
	rep = run(2, 20, false, "stream_rate_limited")
	if c := verdicts(rep)["stream_rate_limited"]; c.Verdict != conformance.Skip || !strings.Contains(c.Reason, "-query-rate and -query-burst") {
		t.Errorf("without the rate: %s %q, want skipped naming -query-rate and -query-burst", c.Verdict, c.Reason)
	}
}
