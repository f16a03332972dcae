package conformance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/rogpeppe/go-internal/txtar"

	"github.com/agentws/agentws/spec"
)

// CaseResult is what one case found.
type CaseResult struct {
	Case
	Verdict  Verdict       `json:"verdict"`
	Reason   string        `json:"reason,omitempty"`  // why it was skipped
	Failure  string        `json:"failure,omitempty"` // what was expected and what arrived
	Findings []Finding     `json:"findings,omitempty"`
	Verdicts []RuleVerdict `json:"rule_verdicts"` // of each rule it names or broke
	Duration time.Duration `json:"duration_ns"`
	WireLog  string        `json:"wire_log,omitempty"` // every frame both ways, on failure or warning
	Updated  bool          `json:"updated,omitempty"`  // with Options.Update, its expectations were rewritten
	Replay   string        `json:"-"`                  // the wire log as a transcript
}

// caseT is the testscript.T of one case.
type caseT struct {
	r       *runner
	c       Case
	ctx     context.Context // ends at the case's deadline, or with the run
	res     *CaseResult
	st      *caseState
	log     strings.Builder
	failed  bool
	skipped string
	// atFailure are the MUST findings made before the script stopped: the failure is
	// against their rules.
	atFailure []Finding
}

// run runs the case under its deadline: Options.CaseTimeout plus the waits its
// settings declare. Every command ends when the deadline passes; a case that still
// has not stopped a frame timeout later is reported and left behind.
func (t *caseT) run(f func(testscript.T)) {
	start := time.Now()
	timeout := t.r.opts.caseTimeout(t.c.Settings)
	ctx, cancel := context.WithTimeoutCause(t.r.ctx, timeout, fmt.Errorf("the case deadline of %v was hit (-case-timeout)", timeout))
	defer cancel()
	t.ctx = ctx
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(t)
	}()
	if !t.wait(done) {
		t.res.Verdict, t.res.Duration = Fail, time.Since(start)
		t.res.Failure = fmt.Sprintf("%v, and the case did not stop within %v after it", context.Cause(ctx), t.r.opts.FrameTimeout)
		return
	}
	res := t.res
	res.Duration = time.Since(start)
	if t.st != nil && len(t.st.updates) > 0 && !t.failed {
		if err := rewriteArchive(t.c.file, t.st.updates); err != nil {
			t.failed = true
			t.log.WriteString("update: " + err.Error() + "\n")
		}
		res.Updated = true
	}
	if t.st == nil {
		t.st = &caseState{}
	}
	res.Findings = t.st.allFindings()
	var mustBroken bool
	res.Verdicts, mustBroken = t.ruleVerdicts()
	if t.skipped != "" {
		res.Verdict, res.Reason = Skip, t.skipped
		return
	}
	failures := []string{}
	if t.failed {
		failures = append(failures, strings.TrimSpace(t.log.String()))
	}
	if !t.failed {
		for _, f := range t.st.failures() {
			failures = append(failures, fmt.Sprintf("%s (MUST): %s", f.Rule, f.Message))
		}
	}
	if cause := context.Cause(ctx); len(failures) > 0 && cause != nil && !strings.Contains(failures[0], cause.Error()) {
		failures = append([]string{cause.Error()}, failures...) // what ended the case comes first
	}
	switch {
	case len(failures) == 0:
		res.Verdict = Pass
	case t.c.Level == spec.Should && !t.r.opts.Strict && !mustBroken:
		res.Verdict = Warn
	default:
		res.Verdict = Fail
	}
	res.Failure = strings.Join(failures, "\n")
	if t.r.caseDir != "" {
		res.Failure = strings.ReplaceAll(res.Failure, t.r.caseDir+string(filepath.Separator), "testdata/")
	}
	if res.Verdict != Pass && t.st.wire != nil {
		res.WireLog = t.st.wire.String()
		res.Replay = t.st.wire.Replay(t.c)
		if !slices.Contains(t.c.Settings, "query-rate") && strings.Contains(res.WireLog, `"code":"rate_limited"`) {
			res.Failure += "\n" + rateLimitedNote
		}
	}
}

// rateLimitedNote explains a failure of a case whose queries the server refused for
// its query rate: the run, not the case, went over it.
const rateLimitedNote = "NOTE: the server refused queries of this case with rate_limited (STREAM-11): the whole run, from one address, sends more queries than the server's bound per client allows. Check the server with its query rate raised or off, and its rate case alone (-case stream_rate_limited -query-rate R -query-burst B)."

// wait waits for the case's goroutine to finish: at the latest a frame timeout after
// the case's context ends. It reports false when the goroutine is still running.
func (t *caseT) wait(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	case <-t.ctx.Done():
	}
	timer := time.NewTimer(t.r.opts.FrameTimeout)
	defer timer.Stop()
	select {
	case <-done:
		return true
	case <-timer.C:
		return false
	}
}

func (t *caseT) Skip(args ...any) {
	t.skipped = fmt.Sprint(args...)
	runtime.Goexit()
}

func (t *caseT) Fatal(args ...any) { t.Log(args...); t.FailNow() }

func (t *caseT) FailNow() {
	if t.st != nil {
		t.atFailure = t.st.failures()
	}
	t.failed = true
	runtime.Goexit()
}

func (t *caseT) Parallel() {}

func (t *caseT) Log(args ...any) {
	t.log.WriteString(fmt.Sprintln(args...))
}

func (t *caseT) Run(name string, f func(testscript.T)) {
	t.Fatal("nested cases are not supported: ", name)
}

func (t *caseT) Verbose() bool { return false }

// rewriteArchive replaces files of a case's txtar archive, keeping the rest, through a
// temporary file.
func rewriteArchive(path string, files map[string]string) error {
	ar, err := txtar.ParseFile(path)
	if err != nil {
		return err
	}
	for i, f := range ar.Files {
		if content, ok := files[f.Name]; ok {
			ar.Files[i].Data = []byte(content)
		}
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, txtar.Format(ar), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
