package conformance_test

import (
	"testing"

	"github.com/agentws/agentws/conformance"
	"github.com/agentws/agentws/conformance/internal/reftest"
	"github.com/agentws/agentws/reference/clustertest"
	"github.com/agentws/agentws/reference/redistest"
)

// TestConformanceCluster runs the catalogue against two reference server processes
// that share one Redis, behind a round-robin TCP proxy: each connection of a case
// lands on the other node from the one before, so that every takeover, resume, repeated
// query_id and cancel crosses nodes. It must pass as the single server does.
func TestConformanceCluster(t *testing.T) {
	r := redistest.Start(t)
	a := reftest.StartNode(t, r.URL(), "node-a")
	b := reftest.StartNode(t, r.URL(), "node-b")
	p := clustertest.StartProxy(t, a.Addr, b.Addr)
	opts := reftest.Options("ws://" + p.Addr + "/ws")
	rep, err := conformance.Run(t.Context(), opts)
	if rep == nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Error(err)
	}
	judge(t, rep, true)
}
