package conformance

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agentws/agentws/spec"
)

// ReportVersion is the version of the JSON report's format.
const ReportVersion = 1

// Report is the outcome of a run.
type Report struct {
	Version         int    `json:"version"`
	SpecVersion     string `json:"spec_version"`
	Server          string `json:"server"`
	ProtocolVersion string `json:"protocol_version"` // what the server's connected says
	// Client: a run of the client cases; then Server names the client's adapter,
	// Capabilities are its features and Rules the client rules.
	Client       bool          `json:"client,omitempty"`
	Capabilities []string      `json:"capabilities"`
	Probe        string        `json:"probe,omitempty"` // why the capabilities could not be learnt
	Error        string        `json:"error,omitempty"` // why the run could not start: then no case ran
	Strict       bool          `json:"strict"`
	Started      time.Time     `json:"started"`
	Duration     time.Duration `json:"duration_ns"`
	Totals       Totals        `json:"totals"`
	Cases        []*CaseResult `json:"cases"`
	// Findings are what the run-wide checks found, over every observation of every
	// case: rules that must hold at every moment (HEALTH-3, SEQ-1).
	Findings []Finding    `json:"findings"`
	Rules    []RuleResult `json:"rules"`
}

// Totals counts cases by verdict.
type Totals struct {
	Pass int `json:"pass"`
	Fail int `json:"fail"`
	Warn int `json:"warn"`
	Skip int `json:"skip"`
}

// RuleResult is the verdict of one rule of spec/PROTOCOL.md: the worst of what the
// cases found of it (their rule verdicts) and of the run-wide findings against it.
type RuleResult struct {
	ID         string     `json:"id"`
	Level      spec.Level `json:"level"`
	Capability string     `json:"capability,omitempty"`
	Verdict    Verdict    `json:"verdict"`
	Cases      []string   `json:"cases"`
	Note       string     `json:"note,omitempty"` // the first failure, warning or skip reason
}

func newReport(opts *Options, version string, caps []string, rules []spec.Rule, results []*CaseResult, findings []Finding, started time.Time) *Report {
	label := opts.URL
	if len(opts.Client) > 0 {
		label = opts.clientLabel()
	}
	r := &Report{
		Version: ReportVersion, SpecVersion: spec.Version(), Server: label, ProtocolVersion: version, Client: len(opts.Client) > 0,
		Capabilities: caps, Strict: opts.Strict, Started: started.UTC(), Duration: time.Since(started), Cases: results,
		Findings: findings,
	}
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
	if r.Capabilities == nil {
		r.Capabilities = []string{}
	}
	for _, c := range results {
		switch c.Verdict {
		case Pass:
			r.Totals.Pass++
		case Fail:
			r.Totals.Fail++
		case Warn:
			r.Totals.Warn++
		case Skip:
			r.Totals.Skip++
		}
	}
	for _, rule := range rules {
		if rule.Client == r.Client {
			r.Rules = append(r.Rules, ruleResult(rule, results, r.Findings, opts.Strict))
		}
	}
	return r
}

var rank = map[Verdict]int{"": 0, Skip: 1, Pass: 2, Warn: 3, Fail: 4}

func ruleResult(rule spec.Rule, results []*CaseResult, findings []Finding, strict bool) RuleResult {
	rr := RuleResult{ID: rule.ID, Level: rule.Level, Capability: rule.Capability, Cases: []string{}}
	worse := func(v Verdict, note string) {
		if rank[v] <= rank[rr.Verdict] {
			return
		}
		rr.Verdict, rr.Note = v, note
		if v == Pass {
			rr.Note = ""
		}
	}
	for _, c := range results {
		if slices.Contains(c.Rules, rule.ID) {
			rr.Cases = append(rr.Cases, c.Name)
		}
		for _, v := range c.Verdicts {
			if v.Rule == rule.ID {
				worse(v.Verdict, fmt.Sprintf("%s: %s", c.Name, firstLine(v.Note)))
			}
		}
	}
	for _, f := range findings {
		if f.Rule == rule.ID {
			worse(levelVerdict(f.Level, strict), "the run: "+f.Message)
		}
	}
	if rr.Verdict == "" {
		rr.Verdict, rr.Note = Skip, "no case ran"
	}
	return rr
}

func firstLine(s string) string {
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, ">") {
			return truncate(line, 300)
		}
	}
	return truncate(strings.TrimSpace(s), 300)
}

// RunError returns the report of a run that could not start (an unreachable server, a
// bad option): no case ran, and the reports say why, so that a CI step that reads them
// finds them.
func RunError(opts Options, err error) *Report {
	rules, _ := spec.Rules()
	r := newReport(&opts, "", nil, rules, nil, nil, time.Now())
	r.Error = err.Error()
	return r
}

// Failed reports whether a case or a run-wide check failed, or the run could not
// start; warnings and skips do not fail a run.
func (r *Report) Failed() bool {
	if r.Error != "" {
		return true
	}
	for _, f := range r.Findings {
		if levelVerdict(f.Level, r.Strict) == Fail {
			return true
		}
	}
	return r.Totals.Fail > 0
}

// Tally summarises the verdicts: "52 passed, 1 failed, 2 warned, 12 skipped".
func (r *Report) Tally() string {
	return fmt.Sprintf("%d passed, %d failed, %d warned, %d skipped", r.Totals.Pass, r.Totals.Fail, r.Totals.Warn, r.Totals.Skip)
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteMarkdown writes a summary a person can read: one row per rule.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# agentws conformance: %s\n\n", r.Server)
	fmt.Fprintf(&b, "Spec %s; the server speaks %s and claims %s. %s in %s", r.SpecVersion, r.ProtocolVersion,
		orNone(r.Capabilities), r.Tally(), r.Duration.Round(time.Millisecond))
	if r.Strict {
		b.WriteString(" (strict: warnings count as failures)")
	}
	if r.Probe != "" {
		b.WriteString(".\n\nNote: " + r.Probe)
	}
	if r.Error != "" {
		b.WriteString(".\n\n**The run could not start**: " + r.Error)
	}
	b.WriteString(".\n\n")
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "Run-wide: %s (%s): %s\n\n", f.Rule, f.Level, f.Message)
	}
	b.WriteString("| rule | level | verdict | cases | note |\n|---|---|---|---|---|\n")
	for _, rr := range r.Rules {
		level := string(rr.Level)
		if rr.Capability != "" {
			level += " (" + rr.Capability + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", rr.ID, level, icon(rr.Verdict), strings.Join(rr.Cases, ", "), cell(rr.Note))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func orNone(caps []string) string {
	if len(caps) == 0 {
		return "no capabilities"
	}
	return strings.Join(caps, ", ")
}

func icon(v Verdict) string {
	return map[Verdict]string{Pass: "pass", Fail: "**FAIL**", Warn: "warn", Skip: "skip"}[v]
}

func cell(s string) string {
	return strings.NewReplacer("|", "\\|", "\n", " ").Replace(truncate(s, 200))
}

// JUnit XML, as CI systems read it.
type junitSuite struct {
	XMLName  xml.Name    `xml:"testsuite"`
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     float64     `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      float64       `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the cases as a JUnit testsuite; a warning is a passed case whose
// output says WARN.
func (r *Report) WriteJUnit(w io.Writer) error {
	s := junitSuite{Name: "agentws conformance " + r.Server, Tests: len(r.Cases), Failures: r.Totals.Fail, Skipped: r.Totals.Skip, Time: r.Duration.Seconds()}
	if r.Error != "" {
		s.Tests, s.Failures = s.Tests+1, s.Failures+1
		s.Cases = append(s.Cases, junitCase{Name: "run", Failure: &junitMessage{Message: "the run could not start", Text: r.Error}})
	}
	for _, c := range r.Cases {
		jc := junitCase{Name: c.Name, Classname: strings.Join(c.Rules, " "), Time: c.Duration.Seconds()}
		switch c.Verdict {
		case Fail:
			jc.Failure = &junitMessage{Message: firstLine(c.Failure), Text: c.Failure + "\n\nwire log:\n" + c.WireLog}
		case Skip:
			jc.Skipped = &junitMessage{Message: c.Reason}
		case Warn:
			jc.SystemOut = "WARN (" + string(c.Level) + "): " + c.Failure
		}
		s.Cases = append(s.Cases, jc)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(s); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// WriteWireLogs writes the wire log of every failed or warned case to dir, as a
// transcript named after the case that replays the exchange.
func (r *Report) WriteWireLogs(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, c := range r.Cases {
		if c.Replay == "" {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, c.Name+".txtar"), []byte(c.Replay), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// WriteFiles writes whichever of the JSON report, the JUnit XML, the Markdown summary
// and the wire logs is given a name.
func (r *Report) WriteFiles(jsonFile, junitFile, markdownFile, wireDir string) error {
	for _, out := range []struct {
		name  string
		write func(io.Writer) error
	}{{jsonFile, r.WriteJSON}, {junitFile, r.WriteJUnit}, {markdownFile, r.WriteMarkdown}} {
		if out.name == "" {
			continue
		}
		if err := writeFile(out.name, out.write); err != nil {
			return err
		}
	}
	if wireDir != "" {
		return r.WriteWireLogs(wireDir)
	}
	return nil
}

// writeFile writes through a temporary file, so that a failed write leaves no half file.
func writeFile(name string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), ".report-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}

// WriteCatalog lists the cases: name, level, rules, needs and summary.
func WriteCatalog(w io.Writer, cases []Case) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "CASE\tLEVEL\tRULES\tNEEDS\tSUMMARY")
	for _, c := range cases {
		needs := strings.Join(append(slices.Clone(c.Needs), c.Settings...), ",")
		if needs == "" {
			needs = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Name, c.Level, strings.Join(c.Rules, ","), needs, c.Summary)
	}
	return tw.Flush()
}

// Replace puts results in the place of the cases of the same name, adds the run-wide
// findings of the runs that gave them, and recomputes the totals and the rules: a case
// run again on a server of its own replaces its skip.
func (r *Report) Replace(results []*CaseResult, findings ...Finding) error {
	for _, res := range results {
		for i, c := range r.Cases {
			if c.Name == res.Name {
				r.Cases[i] = res
			}
		}
	}
	rules, err := spec.Rules()
	if err != nil {
		return err
	}
	fresh := newReport(&Options{URL: r.Server, Strict: r.Strict}, r.ProtocolVersion, r.Capabilities, rules, r.Cases, append(r.Findings, findings...), r.Started)
	fresh.Duration, fresh.Probe = r.Duration, r.Probe
	*r = *fresh
	return nil
}
