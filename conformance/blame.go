package conformance

// Exact blame: every failure of a case is against the rules it broke, and a case's
// other rules are not failed by it. See README.md, "Writing a case".

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/rogpeppe/go-internal/txtar"

	"github.com/agentws/agentws/spec"
)

// A RuleVerdict is what a case found of one rule: of each rule it names, and of each
// rule a failure or a finding of it is against.
type RuleVerdict struct {
	Rule    string  `json:"rule"`
	Verdict Verdict `json:"verdict"`
	Note    string  `json:"note,omitempty"` // the failure or finding, or why the rule was not judged
}

// failAgainst fails the running command with a failure against rule: the check that
// failed is the rule's own, whatever rules the case names.
func (st *caseState) failAgainst(ts *testscript.TestScript, rule, format string, args ...any) {
	st.mu.Lock()
	st.against = []string{rule}
	st.mu.Unlock()
	ts.Fatalf("%s (%s): %s", rule, st.levelOf(rule), fmt.Sprintf(format, args...))
}

// failNoFirstFrame fails a command whose wait for a frame on c ran out (err) before
// c got any frame at all: the server did not send connected first (CONN-1), whatever
// the case checks. A first frame that is not connected is a CONN-1 finding already; a
// connection that ends before any frame is a refusal, which is the case's to judge.
func (st *caseState) failNoFirstFrame(ts *testscript.TestScript, c *conn, err error) {
	if err == nil || st.ctx.Err() != nil || c.framed.Load() {
		return
	}
	st.failAgainst(ts, "CONN-1", "%v, and not a frame since %s opened: want connected first", err, c.name)
}

// stopOnFindings fails the command that just completed with the first MUST rule the
// frame checks found meanwhile; the failure is against the findings' rules.
func (st *caseState) stopOnFindings(ts *testscript.TestScript) {
	f := st.failures()
	if len(f) == 0 {
		return
	}
	st.mu.Lock()
	st.completed = true
	st.mu.Unlock()
	ts.Fatalf("%s (MUST): %s", f[0].Rule, f[0].Message)
}

func (st *caseState) failedAgainst() []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.against
}

func (st *caseState) completedCommand() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.completed
}

func (st *caseState) levelOf(rule string) spec.Level {
	if r, ok := st.rules[rule]; ok {
		return r.Level
	}
	return spec.Must
}

// failedAt is where a script stopped: the script's lines and the failing line.
type failedAt struct {
	script []string // the case's script, line 1 at index 0
	line   int
	msg    string
}

var failLine = regexp.MustCompile(`(?m)^FAIL: (.+?\.txtar):([0-9]+): (.*)$`)

// scriptFailure finds the failing line in a testscript log and reads the script.
func scriptFailure(log string) (failedAt, bool) {
	all := failLine.FindAllStringSubmatch(log, -1)
	if len(all) == 0 {
		return failedAt{}, false
	}
	m := all[len(all)-1]
	n, _ := strconv.Atoi(m[2])
	data, err := os.ReadFile(m[1])
	if err != nil {
		return failedAt{line: n, msg: m[3]}, true
	}
	return failedAt{script: strings.Split(string(txtar.Parse(data).Comment), "\n"), line: n, msg: m[3]}, true
}

// phaseRules returns the rules named by the phase of the failing line.
func (f failedAt) phaseRules() []string { return PhaseRules(f.script, f.line) }

// PhaseRules returns the rules named by the phase of line n (from 1) of a case's script
// (its lines, without the archive's files): the "# rules:" line of the block of
// consecutive # lines that opens the phase (the case's header for the first phase), or
// nil when it names none. A failure of that line that names no rule itself is against
// them (README.md, "Which rule a failure is against").
func PhaseRules(script []string, n int) []string {
	i := min(n-2, len(script)-1) // the line above, 0-based
	for i >= 0 && i < len(script) && !strings.HasPrefix(script[i], "#") {
		i--
	}
	for ; i >= 0 && strings.HasPrefix(script[i], "#"); i-- {
		if _, list, ok := strings.Cut(script[i], "# rules:"); ok {
			return strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' })
		}
	}
	return nil
}

// more reports whether a command follows the failing line.
func (f failedAt) more() bool {
	for _, line := range f.script[min(f.line, len(f.script)):] {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			return true
		}
	}
	return false
}

// blame says which rules a failed script is against, at which level, and whether that
// is exact: the rule the failing command named; else the rules of the MUST findings
// made before it stopped (the script stopped on them, or on what followed from them);
// else the rules its phase names; else every rule of the case, which is not exact
// when there are several.
func (t *caseT) blame(at failedAt) (rules []string, level spec.Level, exact bool) {
	switch against, phase := t.st.failedAgainst(), at.phaseRules(); {
	case against != nil:
		return against, t.st.levelOf(against[0]), true
	case len(t.atFailure) > 0:
		for _, f := range t.atFailure {
			if !slices.Contains(rules, f.Rule) {
				rules = append(rules, f.Rule)
			}
		}
		return rules, spec.Must, true
	case phase != nil:
		return phase, t.c.Level, true
	}
	return t.c.Rules, t.c.Level, len(t.c.Rules) == 1
}

// verdicts collects rule verdicts, keeping the worst of each rule.
type verdicts struct {
	order []string
	by    map[string]RuleVerdict
}

func (vs *verdicts) worse(rule string, v Verdict, note string) {
	if vs.by == nil {
		vs.by = map[string]RuleVerdict{}
	}
	old, ok := vs.by[rule]
	if !ok {
		vs.order = append(vs.order, rule)
	}
	if !ok || rank[v] > rank[old.Verdict] {
		vs.by[rule] = RuleVerdict{Rule: rule, Verdict: v, Note: truncate(note, 300)}
	}
}

func (vs *verdicts) list() []RuleVerdict {
	out := make([]RuleVerdict, 0, len(vs.order))
	for _, r := range vs.order {
		out = append(out, vs.by[r])
	}
	return out
}

// levelVerdict is the verdict of a broken rule of level l.
func levelVerdict(l spec.Level, strict bool) Verdict {
	if l == spec.Must || strict {
		return Fail
	}
	return Warn
}

// ruleVerdicts judges each rule the case names or broke: the findings are against
// their rules; a script failure is against the rules blame gives; a named rule nothing
// was against passes when the script ran to its end, and is not judged (skip) when
// the script stopped before.
func (t *caseT) ruleVerdicts() (vs []RuleVerdict, mustBroken bool) {
	var out verdicts
	strict := t.r.opts.Strict
	if t.skipped != "" {
		for _, r := range t.c.Rules {
			out.worse(r, Skip, t.skipped)
		}
		return out.list(), false
	}
	for _, f := range t.res.Findings {
		out.worse(f.Rule, levelVerdict(f.Level, strict), f.Message)
		mustBroken = mustBroken || f.Level == spec.Must
	}
	notJudged := ""
	if t.failed {
		at, ok := scriptFailure(t.log.String())
		rules, level, exact := t.blame(at)
		note := at.msg
		if !ok {
			note = firstLine(t.log.String())
		}
		if !exact {
			note = fmt.Sprintf("blame not exact: the phase of line %d names no rule, so this failure is against every rule of the case: %s", at.line, note)
		}
		for _, r := range rules {
			out.worse(r, levelVerdict(level, strict), note)
		}
		mustBroken = mustBroken || level == spec.Must
		if !ok || at.script == nil || !t.st.completedCommand() || at.more() {
			notJudged = fmt.Sprintf("not judged: the case stopped at line %d, on %s", at.line, strings.Join(rules, ", "))
		}
	}
	for _, r := range t.c.Rules {
		if _, ok := out.by[r]; ok {
			continue
		}
		if notJudged != "" {
			out.worse(r, Skip, notJudged)
		} else {
			out.worse(r, Pass, "")
		}
	}
	return out.list(), mustBroken
}
