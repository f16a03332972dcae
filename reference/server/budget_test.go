package server_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/agentws/agentws/reference/server"
)

// The README's figures of the memory budget at the defaults are Config.Budget's.
func TestBudgetInREADME(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.DefaultConfig()
	b := cfg.Budget()
	t.Logf("budget at the defaults: %+v", b)
	want := fmt.Sprintf("At the defaults that is %d KiB per connection and %d KiB per session beyond the %d GiB that -max-memory-bytes counts, so %.1f GiB in all for %d sessions",
		b.Connection>>10, b.Session>>10, cfg.MaxMemoryBytes>>30, float64(b.Total)/(1<<30), cfg.MaxSessions)
	if got := strings.Join(strings.Fields(string(data)), " "); !strings.Contains(got, want) {
		t.Errorf("README, Memory, does not say %q", want)
	}
	if b.Total != cfg.MaxMemoryBytes+cfg.MaxSessions*(b.Session+b.Connection) || b.Frame != 2*int(cfg.MaxMessageBytes)+1<<10 {
		t.Errorf("budget %+v: the total is not -max-memory-bytes + -max-sessions × (session + connection), or the frame not 2M + 1 KiB", b)
	}
	if b.For(cfg.MaxSessions) != b.Total || b.For(1) != b.PerSession+b.Session+b.Connection {
		t.Errorf("budget %+v: For(n) is not min(counted, n × per session) + n × the constants", b)
	}
}
