package selftest_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/agentws/agentws/conformance"
)

// script returns the lines of a built-in case's script, without its archive's files.
func script(t *testing.T, name string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", name+".txtar"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(string(txtar.Parse(data).Comment), "\n")
}

// A phase's "# rules:" line names one rule of its case's own "# rules:" line: a failure
// of the phase is against it (README.md, "Which rule a failure is against").
func TestPhaseRulesAreTheCaseRules(t *testing.T) {
	cases, err := conformance.Catalog("")
	if err != nil {
		t.Fatal(err)
	}
	phases := 0
	for _, c := range cases {
		for i, line := range script(t, c.Name) {
			_, list, ok := strings.Cut(line, "# rules:")
			if !ok || i < 3 {
				continue // the header's own
			}
			phases++
			rules := strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' })
			if len(rules) != 1 {
				t.Errorf("%s.txtar:%d: the phase names %v; a phase names one rule, so that its failures are against that rule alone", c.Name, i+1, rules)
			}
			for _, r := range rules {
				if !slices.Contains(c.Rules, r) {
					t.Errorf("%s.txtar:%d: the phase names %s, which the case's rules %v do not", c.Name, i+1, r, c.Rules)
				}
			}
		}
	}
	if phases == 0 {
		t.Error("no case names the rules of a phase")
	}
}

// A condition that skips the case: it cannot fail.
var skipLine = regexp.MustCompile(`^(\[[^\]]*\]\s*)*skip\b`)

// Blame is exact in every built-in case: in a case that names several rules, every
// line that can fail is in a phase that names one rule, so that no failure can fall
// back on every rule of the case ("blame not exact"). A case of one rule is exact
// whatever its phases say.
func TestBlameIsExact(t *testing.T) {
	cases, err := conformance.Catalog("")
	if err != nil {
		t.Fatal(err)
	}
	multi := 0
	for _, c := range cases {
		if len(c.Rules) < 2 {
			continue
		}
		multi++
		lines := script(t, c.Name)
		for i, line := range lines {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") || skipLine.MatchString(line) {
				continue
			}
			if rules := conformance.PhaseRules(lines, i+1); len(rules) != 1 {
				t.Errorf("%s.txtar:%d: %q is in a phase of rules %v; in a case of several rules (%v), give it a phase that names one", c.Name, i+1, line, rules, c.Rules)
			}
		}
	}
	if multi == 0 {
		t.Error("no case names several rules: the test checks nothing")
	}
}
