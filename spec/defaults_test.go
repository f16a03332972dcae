package spec_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentws/agentws/spec"
)

// defaultsTable returns the rows of table 15.4: setting -> default, as written.
func defaultsTable(t *testing.T) map[string]string {
	t.Helper()
	data, err := spec.FS.ReadFile("PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(data), "\n### 15.4 Defaults of the reference server\n")
	if !ok {
		t.Fatal("PROTOCOL.md has no heading 15.4 Defaults of the reference server")
	}
	rows := map[string]string{}
	for _, line := range strings.Split(after, "\n") {
		if strings.HasPrefix(line, "#") {
			break
		}
		cells := strings.Split(line, "|")
		if len(cells) < 4 || strings.HasPrefix(strings.TrimSpace(cells[1]), "---") || strings.TrimSpace(cells[1]) == "setting" {
			continue
		}
		rows[strings.TrimSpace(cells[1])] = strings.TrimSpace(cells[2])
	}
	return rows
}

// spelled writes a default as table 15.4 does.
func spelled(d spec.Settings) map[string]string {
	bytes := func(n int) string {
		if n%(1<<30) == 0 {
			return fmt.Sprintf("%d GiB", n>>30)
		}
		if n%(1<<20) == 0 {
			return fmt.Sprintf("%d MiB", n>>20)
		}
		if n%(1<<10) == 0 {
			return fmt.Sprintf("%d KiB", n>>10)
		}
		return fmt.Sprintf("%d bytes", n)
	}
	duration := func(d time.Duration) string {
		if d%time.Minute == 0 {
			return fmt.Sprintf("%d minutes", d/time.Minute)
		}
		return fmt.Sprintf("%d seconds", d/time.Second)
	}
	return map[string]string{
		"listen address":                    "`" + d.ListenAddress + "`",
		"buffer size":                       fmt.Sprintf("%d frames per session", d.BufferSize),
		"buffer byte limit":                 bytes(d.BufferBytes) + " per session",
		"session TTL after an abrupt drop":  duration(d.SessionTTL),
		"keepalive interval":                duration(d.KeepaliveInterval),
		"client message size limit":         bytes(d.MaxMessageBytes),
		"query queue depth":                 fmt.Sprint(d.QueueDepth),
		"query queue byte limit":            bytes(d.QueueBytes) + " per session",
		"drain timeout":                     duration(d.DrainTimeout),
		"remembered finished query ids":     fmt.Sprintf("%d per session", d.RememberedQueryIDs),
		"remembered terminal frame bytes":   bytes(d.RememberedBytes) + " per session",
		"sessions held at once":             fmt.Sprint(d.MaxSessions),
		"memory byte limit for all clients": bytes(d.MaxMemoryBytes),
		"connections per client address":    fmt.Sprint(d.MaxConnsPerIP),
		"connections per user":              fmt.Sprint(d.MaxConnsPerUser),
		"query rate per client":             fmt.Sprintf("%g per second", d.QueryRate),
		"query burst per client":            fmt.Sprint(d.QueryBurst),
		"HTTP request header timeout":       duration(d.ReadHeaderTimeout),
		"HTTP request timeout":              duration(d.ReadTimeout),
		"HTTP response write timeout":       duration(d.HTTPWriteTimeout),
		"HTTP idle keep-alive timeout":      duration(d.IdleTimeout),
		"HTTP request header size limit":    bytes(d.MaxHeaderBytes),
	}
}

// spec.Defaults is table 15.4, row by row: a row without a field, or a field whose
// value the table does not state, fails.
func TestDefaultsAreTheTable(t *testing.T) {
	table := defaultsTable(t)
	if len(table) < 10 {
		t.Fatalf("table 15.4 has %d rows, want at least 10: %v", len(table), table)
	}
	if diff := cmp.Diff(table, spelled(spec.Defaults())); diff != "" {
		t.Errorf("table 15.4 and spec.Defaults differ (-table +Defaults); a new row needs a field of spec.Settings:\n%s", diff)
	}
}
