package conformance

// Run-wide invariants: what must hold at every moment is checked over every
// observation of the run, not only inside one case.

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/agentws/agentws/spec"
)

// invariants holds the observations of a whole run: every /ws/health body a case or
// the health sampler fetched (HEALTH-3: total_messages_sent never falls), and every
// frame with a seq (SEQ-1: in one epoch of a session, one seq names one frame).
type invariants struct {
	rules   map[string]spec.Rule
	started time.Time

	mu       sync.Mutex
	health   []healthSample
	seqs     map[string]map[int]seqFrame // by session and epoch, then seq
	findings []Finding
}

// A healthSample is one total_messages_sent, computed by the server at some moment
// between sent and got.
type healthSample struct {
	sent, got time.Time
	total     int64
	by        string // the case, or the sampler
}

type seqFrame struct {
	sum  [sha256.Size]byte // of the frame's canonical JSON
	text string            // the frame, truncated, for the report
}

func newInvariants(rules map[string]spec.Rule, started time.Time) *invariants {
	return &invariants{rules: rules, started: started, seqs: map[string]map[int]seqFrame{}}
}

// finding records a broken run-wide rule, once per message; the caller holds mu.
func (inv *invariants) finding(rule, format string, args ...any) {
	level := spec.Must
	if r, ok := inv.rules[rule]; ok {
		level = r.Level
	}
	msg := fmt.Sprintf(format, args...)
	for _, f := range inv.findings {
		if f.Rule == rule {
			return // the first violation of each rule tells it; the rest repeat it
		}
	}
	inv.findings = append(inv.findings, Finding{Rule: rule, Level: level, Message: msg})
}

// Findings returns what the run-wide checks found.
func (inv *invariants) Findings() []Finding {
	if inv == nil {
		return nil
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return append([]Finding(nil), inv.findings...)
}

// observeHealth records a /ws/health body fetched between sent and got. A counter
// that never falls cannot be smaller in a body whose request was sent after another
// body arrived.
func (inv *invariants) observeHealth(sent, got time.Time, body []byte, by string) {
	var h struct {
		Total *int64 `json:"total_messages_sent"`
	}
	if inv == nil || json.Unmarshal(body, &h) != nil || h.Total == nil {
		return
	}
	s := healthSample{sent: sent, got: got, total: *h.Total, by: by}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	for _, p := range inv.health {
		earlier, later := p, s
		if !p.got.Before(s.sent) {
			if !s.got.Before(p.sent) {
				continue // the two requests overlap: either may have been computed first
			}
			earlier, later = s, p
		}
		if later.total < earlier.total {
			inv.finding("HEALTH-3", "total_messages_sent fell from %d (GET /ws/health answered at %s, by %s) to %d (sent at %s, by %s)",
				earlier.total, inv.at(earlier.got), earlier.by, later.total, inv.at(later.sent), later.by)
		}
	}
	inv.health = append(inv.health, s)
}

func (inv *invariants) at(t time.Time) string {
	return t.Sub(inv.started).Round(time.Millisecond).String()
}

// observeSeq records a frame received on a connection to session sid whose
// connected named epoch. A seq seen again in the same epoch of the session must name
// the same frame (a resume sends kept frames unchanged).
func (inv *invariants) observeSeq(sid, epoch string, e event) {
	seq, ok := num(e.frame["seq"])
	if inv == nil || epoch == "" || !ok {
		return // no epoch: the history a seq belongs to is unknown
	}
	canonical, _ := json.Marshal(e.frame) // maps marshal with sorted keys
	f := seqFrame{sum: sha256.Sum256(canonical), text: truncate(string(e.data), 200)}
	key := sid + "\x00" + epoch
	inv.mu.Lock()
	defer inv.mu.Unlock()
	seen := inv.seqs[key]
	if seen == nil {
		seen = map[int]seqFrame{}
		inv.seqs[key] = seen
	}
	old, ok := seen[seq]
	switch {
	case !ok:
		seen[seq] = f
	case old.sum != f.sum:
		inv.finding("SEQ-1", "session %s, epoch %s: seq %d names two frames: %s and %s", sid, epoch, seq, old.text, f.text)
	}
}

// sampleHealth fetches /ws/health every interval until ctx ends, and once more then.
// A server that does not answer the first fetch with a body that has
// total_messages_sent is not sampled (the health cases report that).
func (inv *invariants) sampleHealth(ctx context.Context, opts *Options, interval time.Duration) {
	client := &http.Client{Timeout: opts.FrameTimeout}
	url := opts.httpBase() + opts.wsPath() + "/health"
	fetch := func() bool {
		sent := time.Now()
		resp, err := client.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		if err != nil || resp.StatusCode != http.StatusOK {
			return false
		}
		inv.observeHealth(sent, time.Now(), body, "the health sampler")
		return true
	}
	if !fetch() {
		return
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fetch()
			return
		case <-tick.C:
			fetch()
		}
	}
}
