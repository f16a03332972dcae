package conformance_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentws/agentws/conformance"
	"github.com/agentws/agentws/conformance/internal/reftest"
	"github.com/agentws/agentws/spec"
)

// defaults are the harness's defaults and the reference server's settings
// (spec.Defaults, table 15.4): the flags' defaults.
var defaults = conformance.DefaultOptions("")

// The flags of `go test ./conformance -args ...`. Each has an environment variable
// twin, AGENTWS_ and its name in capitals (-url: AGENTWS_URL).
var (
	flagURL          = flag.String("url", "", "the server to check, such as ws://localhost:8050/ws; none: the reference server, in-process")
	flagCapabilities = flag.String("capabilities", "", "comma-separated capabilities to test instead of those the server claims")
	flagStrict       = flag.Bool("strict", false, "treat broken SHOULD rules (warnings) as failures")
	flagCase         = flag.String("case", "", "comma-separated prefixes of the cases to run (see -list)")
	flagList         = flag.Bool("list", false, "print the catalogue of cases and exit")
	flagParallel     = flag.Int("parallel", defaults.Parallel, "cases run at once")
	flagTimeout      = flag.Duration("frame-timeout", defaults.FrameTimeout, "the longest wait for one frame, HTTP answer or close")
	flagCaseTimeout  = flag.Duration("case-timeout", conformance.DefaultCaseTimeout, "the longest a case may take, beyond the waits its settings declare")
	flagKeepalive    = flag.Duration("keepalive", 0, "the server's keepalive interval; 0: skip the keepalive cases")
	flagSessionTTL   = flag.Duration("session-ttl", 0, "the server's session TTL; 0: skip the cases that wait for it")
	flagBufferSize   = flag.Int("buffer-size", defaults.BufferSize, "the server's buffer size, in frames")
	flagBufferBytes  = flag.Int("buffer-bytes", defaults.BufferBytes, "the server's buffer byte limit, per session")
	flagMaxMessage   = flag.Int("max-message-bytes", defaults.MaxMessageBytes, "the server's client message size limit")
	flagQueueDepth   = flag.Int("queue-depth", defaults.QueueDepth, "the server's query queue depth")
	flagMaxSessions  = flag.Int("max-sessions", 0, "the server's session limit, for a server of the case's own; 0: skip the case that fills it")
	flagQueryRate    = flag.Float64("query-rate", 0, "the server's query rate per client, a second; 0: skip the case that exceeds it")
	flagQueryBurst   = flag.Int("query-burst", 0, "the server's query burst per client, with -query-rate")
	flagReport       = flag.String("report", "", "write the JSON report to this file")
	flagJUnit        = flag.String("junit", "", "write a JUnit XML report to this file")
	flagSummary      = flag.String("summary", "", "write a Markdown summary, one row per rule, to this file")
	flagWireLogs     = flag.String("wirelogs", "", "write the wire log of each failed or warned case, as a replayable transcript, to this directory")
	flagToken        = flag.String("token", "", "a valid bearer token for a server with the auth capability")
	flagExpiredToken = flag.String("expired-token", "", "an expired bearer token for the same server")
	flagAdminURL     = flag.String("admin-url", "", "the origin of the server's admin API (extension notice), such as http://localhost:8050; none: skip the admin cases")
	flagAdminToken   = flag.String("admin-token", "", "the admin API's bearer token, with -admin-url")
	flagClient       = flag.String("client", "", "check a client instead of a server: the command of its adapter, words separated by spaces (see README.md, \"Check your own client\")")
	flagClientFeat   = flag.String("client-features", "", "comma-separated features the client's adapter supports beyond the contract's minimum: cancel")
	flagUpdate       = flag.Bool("update", false, "re-bless: rewrite the expectfile patterns of testdata from the reference server's frames (and the README's command reference)")
)

func TestMain(m *testing.M) {
	flag.Parse()
	if err := fromEnvironment(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if *flagClient != "" && flag.Lookup("test.run").Value.String() == "" {
		flag.Set("test.run", "^TestClientConformance$")
	}
	if *flagURL != "" && flag.Lookup("test.run").Value.String() == "" {
		// A user's run checks the user's server and nothing else: the harness's unit
		// tests do not run (its own tests against servers live in conformance/selftest).
		flag.Set("test.run", "^TestConformance$")
	}
	if *flagList {
		catalog := conformance.Catalog
		if *flagClient != "" {
			catalog = conformance.ClientCatalog
		}
		cases, err := catalog("")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		conformance.WriteCatalog(os.Stdout, cases)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// fromEnvironment sets each flag not given on the command line from its twin.
func fromEnvironment() error {
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	flag.VisitAll(func(f *flag.Flag) {
		env := "AGENTWS_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := os.Getenv(env); v != "" && !set[f.Name] && !strings.HasPrefix(f.Name, "test.") && err == nil {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s=%q: %v", env, v, e)
			}
		}
	})
	return err
}

// options builds the run's options; with no URL it starts the reference server.
func options(t *testing.T) conformance.Options {
	url := *flagURL
	opts := conformance.DefaultOptions(url)
	if url == "" {
		opts.URL, _ = reftest.Start(t, nil)
		opts.KeepaliveInterval, opts.SessionTTL = reftest.Keepalive, reftest.SessionTTL
		*flagBufferSize = reftest.BufferSize
		opts.AdminURL, opts.AdminToken = reftest.AdminURL(opts.URL), reftest.AdminToken
	} else {
		opts.KeepaliveInterval, opts.SessionTTL = *flagKeepalive, *flagSessionTTL
	}
	if *flagCapabilities != "" {
		opts.Capabilities = strings.Split(*flagCapabilities, ",")
	}
	if *flagCase != "" {
		for _, p := range strings.Split(*flagCase, ",") {
			if p = strings.TrimSpace(p); p != "" {
				opts.Cases = append(opts.Cases, p)
			}
		}
	}
	opts.Strict, opts.Parallel, opts.FrameTimeout, opts.CaseTimeout = *flagStrict, *flagParallel, *flagTimeout, *flagCaseTimeout
	if *flagUpdate {
		if *flagURL != "" {
			t.Fatal("-update re-blesses from the reference server: give no -url")
		}
		opts.Update, opts.Dir = true, "testdata"
	}
	opts.BufferSize, opts.BufferBytes = *flagBufferSize, *flagBufferBytes
	opts.MaxMessageBytes, opts.QueueDepth = *flagMaxMessage, *flagQueueDepth
	opts.Token, opts.ExpiredToken = *flagToken, *flagExpiredToken
	if url != "" {
		opts.AdminURL, opts.AdminToken = *flagAdminURL, *flagAdminToken
	}
	opts.MaxSessions, opts.QueryRate, opts.QueryBurst = *flagMaxSessions, *flagQueryRate, *flagQueryBurst
	return opts
}

// TestConformance runs the catalogue against the server and reports each case as a
// subtest: a failure fails it, a warning is logged, a skip says why.
func TestConformance(t *testing.T) {
	opts := options(t)
	ctx := t.Context()
	if deadline, ok := t.Deadline(); ok {
		// End the run a little before go test's -timeout does, so that it reports.
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-time.Until(deadline)/20))
		defer cancel()
	}
	rep, err := conformance.Run(ctx, opts)
	if rep == nil {
		// The reports still say why, for the CI step that reads them.
		if werr := conformance.RunError(opts, err).WriteFiles(fromRoot(*flagReport), fromRoot(*flagJUnit), fromRoot(*flagSummary), ""); werr != nil {
			t.Error(werr)
		}
		t.Fatal(err)
	}
	if err != nil {
		t.Error(err)
	}
	if *flagURL == "" {
		results, findings := reftest.OwnServerCases(t, opts)
		if err := rep.Replace(results, findings...); err != nil {
			t.Fatal(err)
		}
	}
	judge(t, rep, *flagURL == "")
	if err := rep.WriteFiles(fromRoot(*flagReport), fromRoot(*flagJUnit), fromRoot(*flagSummary), fromRoot(*flagWireLogs)); err != nil {
		t.Error(err)
	}
}

// judge reports each case of rep as a subtest: a failure fails it, a warning is
// logged (and fails it when reference, a run against the reference server, which must
// pass completely), a skip says why.
func judge(t *testing.T, rep *conformance.Report, reference bool) {
	t.Helper()
	if rep.Probe != "" {
		t.Logf("NOTE: %s; is %s a server of this protocol?", rep.Probe, rep.Server)
	}
	for _, c := range rep.Cases {
		t.Run(c.Name, func(t *testing.T) {
			switch c.Verdict {
			case conformance.Fail:
				t.Errorf("%s (%s): %s\n%s\nwire log:\n%s", strings.Join(c.Rules, ", "), c.Level, c.Summary, c.Failure, c.WireLog)
			case conformance.Warn:
				// testscript words the failed line FAIL:; of a broken SHOULD it is a warning.
				// The reference server must keep its SHOULDs too: then the warning fails.
				report := t.Logf
				if reference {
					report = t.Errorf
				}
				report("WARN %s (%s): %s\n%s\nwire log:\n%s", strings.Join(c.Rules, ", "), c.Level, c.Summary, strings.ReplaceAll(c.Failure, "FAIL: ", "WARN: "), c.WireLog)
			case conformance.Skip:
				t.Skip(c.Reason)
			}
			if c.Updated {
				t.Logf("updated testdata/%s.txtar from the reference server", c.Name)
			}
		})
	}
	for _, f := range rep.Findings {
		if f.Level == spec.Must || *flagStrict {
			t.Errorf("run-wide: %s (%s): %s", f.Rule, f.Level, f.Message)
		} else {
			t.Logf("WARN run-wide: %s (%s): %s", f.Rule, f.Level, f.Message)
		}
	}
	t.Logf("%s against %s: %s", rep.Tally(), rep.Server, rep.Duration)
	if reference && rep.Totals.Warn > 0 {
		t.Errorf("the reference server must pass completely, and it warns %d times", rep.Totals.Warn)
	}
}

// fromRoot resolves a relative report path against the repository root: go test runs
// in the package's directory, but a user names files from where they ran the command,
// most often the root (make conformance writes there too).
func fromRoot(name string) string {
	if name == "" || filepath.IsAbs(name) {
		return name
	}
	return filepath.Join("..", name)
}
