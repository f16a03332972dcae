package selftest_test

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/agentws/agentws/conformance"
	"github.com/agentws/agentws/spec"
)

// The original design document's clients (testdata/seed), run through their
// adapters (conformance/adapters), never reconnect: the client cases fail them on the
// reconnection rules, by id, and pass them where they keep a rule. README.md records
// these verdicts.
func TestSeedClientsFailReconnection(t *testing.T) {
	for _, tt := range []struct {
		name    string
		adapter func(t *testing.T) []string
		fail    []string // rules that must fail (with -strict)
		pass    []string // rules that must pass
	}{
		{"python", func(t *testing.T) []string {
			if exec.Command("/usr/bin/python3", "-c", "import websockets").Run() != nil {
				seedUnavailable(t, "no /usr/bin/python3 with the websockets module (Debian: python3-websockets)")
			}
			return []string{"/usr/bin/python3", "../adapters/seed_python.py"}
		}, []string{"CLIENT-4", "CLIENT-5", "CLIENT-7"}, []string{"CLIENT-1", "CLIENT-3", "CLIENT-6"}},
		{"javascript", func(t *testing.T) []string {
			out, err := exec.Command("../../tools/node.sh", "--find").Output()
			if err != nil || strings.TrimSpace(string(out)) == "" {
				seedUnavailable(t, "no Node.js 22 (tools/node.sh installs it)")
			}
			return []string{strings.TrimSpace(string(out)), "../adapters/seed_js.mjs"}
		}, []string{"CLIENT-4", "CLIENT-5", "CLIENT-7"}, []string{"CLIENT-1", "CLIENT-3", "CLIENT-6"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts := conformance.DefaultOptions("")
			opts.Client, opts.Strict = tt.adapter(t), true
			rep, err := conformance.Run(t.Context(), opts)
			if err != nil {
				t.Fatal(err)
			}
			verdicts := map[string]conformance.Verdict{}
			for _, r := range rep.Rules {
				verdicts[r.ID] = r.Verdict
				t.Logf("%s %s: %s", r.ID, r.Verdict, r.Note)
			}
			for _, id := range tt.fail {
				if verdicts[id] != conformance.Fail {
					t.Errorf("%s: %s, want fail", id, verdicts[id])
				}
			}
			for _, id := range tt.pass {
				if verdicts[id] != conformance.Pass {
					t.Errorf("%s: %s, want pass", id, verdicts[id])
				}
			}
			t.Logf("%s", rep.Tally())
		})
	}
}

func seedUnavailable(t *testing.T, why string) {
	t.Helper()
	for _, v := range []string{"AGENTWS_REQUIRE_SEED_CLIENTS", "AGENTWS_REQUIRE_NODE"} {
		if os.Getenv(v) != "" {
			t.Fatalf("%s, and %s is set", why, v)
		}
	}
	t.Skipf("%s; run `make test` to check the original design document's clients", why)
}

// Every client rule has a client case, at a level no stronger than the rule's.
func TestClientCatalogCoversEveryClientRule(t *testing.T) {
	rules, err := spec.Rules()
	if err != nil {
		t.Fatal(err)
	}
	cases, err := conformance.ClientCatalog("")
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, c := range cases {
		for _, id := range c.Rules {
			i := slices.IndexFunc(rules, func(r spec.Rule) bool { return r.ID == id })
			switch {
			case i < 0:
				t.Errorf("client case %s names rule %s, which spec/PROTOCOL.md does not define", c.Name, id)
			case !rules[i].Client:
				t.Errorf("client case %s names %s, a rule for servers", c.Name, id)
			case c.Level == spec.Must && rules[i].Level != spec.Must:
				t.Errorf("client case %s is MUST but checks %s, a %s rule", c.Name, id, rules[i].Level)
			}
			covered[id] = true
		}
		for _, n := range c.Needs {
			if !slices.Contains(conformance.ClientFeatures, n) {
				t.Errorf("client case %s needs %q, not a client feature (%v)", c.Name, n, conformance.ClientFeatures)
			}
		}
	}
	for _, r := range rules {
		if r.Client && !covered[r.ID] {
			t.Errorf("client rule %s has no client case in conformance/testdata/client", r.ID)
		}
	}
}
