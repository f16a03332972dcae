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
	want := fmt.Sprintf("At the defaults that is %d MiB per connection and %d MiB per session, so %d GiB for %d sessions",
		b.Connection>>20, b.Session>>20, b.Total>>30, cfg.MaxSessions)
	if got := strings.Join(strings.Fields(string(data)), " "); !strings.Contains(got, want) {
		t.Errorf("README, Memory, does not say %q", want)
	}
	if per := b.Session + b.Connection; b.Total > cfg.MaxSessions*per || b.Frame != 2*int(cfg.MaxMessageBytes)+1<<10 {
		t.Errorf("budget %+v: the total is over -max-sessions × (session + connection), or the frame not 2M + 1 KiB", b)
	}
	if b.Held > cfg.MaxMemoryBytes+cfg.MaxSessions*(cfg.BufferBytes+cfg.RememberedBytes) || b.Offline > cfg.MaxMemoryBytes+cfg.MaxSessions*b.Frame {
		t.Errorf("budget %+v: what sessions hold is over -max-memory-bytes and its slack", b)
	}
}
