package selftest_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/agentws/agentws/conformance"
)

// A phase's "# rules:" line names rules of its case's own "# rules:" line: a failure
// of the phase is against them (README.md, "Which rule a failure is against").
func TestPhaseRulesAreTheCaseRules(t *testing.T) {
	cases, err := conformance.Catalog("")
	if err != nil {
		t.Fatal(err)
	}
	phases := 0
	for _, c := range cases {
		data, err := os.ReadFile(filepath.Join("..", "testdata", c.Name+".txtar"))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(txtar.Parse(data).Comment), "\n") {
			_, list, ok := strings.Cut(line, "# rules:")
			if !ok || i < 3 {
				continue // the header's own
			}
			phases++
			for _, r := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' }) {
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
