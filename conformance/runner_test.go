package conformance

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The cases that must be alone run one by one, after the cases that share the server
// and before those that spend the query allowance.
func TestSchedule(t *testing.T) {
	cases := []Case{
		{Name: "a"}, {Name: "all", Settings: []string{"admin", "alone"}}, {Name: "rate", Settings: []string{"query-rate"}},
		{Name: "b", Settings: []string{"admin"}}, {Name: "all2", Settings: []string{"alone"}},
	}
	files := []string{"a.txtar", "all.txtar", "rate.txtar", "b.txtar", "all2.txtar"}
	want := [][]string{{"a.txtar", "b.txtar"}, {"all.txtar"}, {"all2.txtar"}, {"rate.txtar"}}
	if diff := cmp.Diff(want, schedule(cases, files)); diff != "" {
		t.Errorf("schedule (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([][]string{{"all.txtar"}}, schedule(cases[1:2], files[1:2])); diff != "" {
		t.Errorf("schedule of one alone case (-want +got):\n%s", diff)
	}
}
