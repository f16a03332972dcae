package main

import (
	"slices"
	"syscall"
	"testing"
	"time"
)

func warningKinds(ws []warning) []string {
	var kinds []string
	for _, w := range ws {
		kinds = append(kinds, w.Kind)
	}
	return kinds
}

// The report says when the client, not the server, limited the run: its CPU near its
// cores (client_cpu), or its sends behind schedule in open loop (schedule_lag); and
// when the open-file limit cannot hold the connections (nofile).
func TestBottleneckWarnings(t *testing.T) {
	cfg := &config{conns: 10, cpuShare: 0.8, maxLag: 10 * time.Millisecond}
	for _, tc := range []struct {
		name       string
		cores      float64
		lagP99     time.Duration
		nofile     uint64
		want       []string
		bottleneck bool
	}{
		{"quiet", 0.5, time.Millisecond, 1 << 16, nil, false},
		{"client CPU", 1.7, time.Millisecond, 1 << 16, []string{"client_cpu"}, true},
		{"send lag", 0.5, 20 * time.Millisecond, 1 << 16, []string{"schedule_lag"}, true},
		{"both", 1.9, 20 * time.Millisecond, 1 << 16, []string{"client_cpu", "schedule_lag"}, true},
		{"file limit", 0.5, time.Millisecond, 20, []string{"nofile"}, false},
	} {
		r := &runner{cfg: cfg, nofile: nofile{now: tc.nofile}}
		rep := &report{
			Client:    clientReport{CPUCores: tc.cores, GOMAXPROCS: 2},
			LatencyUS: map[string]Percentiles{latSendLag: {P99: tc.lagP99.Microseconds(), Max: tc.lagP99.Microseconds()}},
		}
		got := warningKinds(r.warnings(rep, &measure{}))
		if !slices.Equal(got, tc.want) || rep.Client.Bottleneck != tc.bottleneck {
			t.Errorf("%s: warnings %q, bottleneck %v; want %q, %v", tc.name, got, rep.Client.Bottleneck, tc.want, tc.bottleneck)
		}
	}
}

// The client raises its soft open-file limit to the hard one.
func TestRaiseNoFile(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	lowered := lim
	lowered.Cur = min(lim.Max, 256)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lowered); err != nil {
		t.Fatal(err)
	}
	defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	now, before, err := raiseNoFile()
	if err != nil {
		t.Fatal(err)
	}
	if before != lowered.Cur || now != lim.Max {
		t.Errorf("raiseNoFile: %d, from %d; want the hard limit %d, from %d", now, before, lim.Max, lowered.Cur)
	}
}
