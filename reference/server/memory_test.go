package server_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/agentws/agentws/reference/agent"
	"github.com/agentws/agentws/reference/server"
)

// BUF-7, -max-memory-bytes: many sessions each leave a full buffer and drop. Together
// they would hold several times the budget; the reclaimer takes the oldest frames of
// the sessions offline the longest until the total is within it, and the live heap
// stays within the budget. The oldest session, rejoining without last_seq, is told how
// many frames it lost (BUF-8); one that resumes learns it missed some (SEQ-4).
func TestMemoryBudgetShedsOfflineSessions(t *testing.T) {
	m, sessions, limit := 256<<10, 40, 2<<20
	s := start(t, func(c *server.Config) {
		bounded(m)(c)
		c.MaxMemoryBytes = limit
		c.Agent = agent.Fixture{ChunkRunes: 16 << 10, Delay: 20 * time.Millisecond} // the answer comes after the drop
	})
	before := liveHeap()
	sids := leaveAnswers(t, s, sessions, text(m))
	eventually(t, "the reclaimer brings the total within the budget", func() bool { return s.HeldBytes() <= int64(limit) })
	allowed := limit + sessions*(64<<10) + baselineSlack // the budget, each session's overhead (Config.Budget)
	grown := int(liveHeap()) - int(before)
	t.Logf("%d sessions, each left %d KiB of text offline: %d frames evicted; they hold %d KiB counted; live heap grew by %.1f MiB, allowed %.1f MiB",
		sessions, m>>10, s.EvictedFrames(), s.HeldBytes()>>10, float64(grown)/(1<<20), float64(allowed)/(1<<20))
	if grown > allowed {
		t.Errorf("the live heap grew by %d bytes, over the budget's %d", grown, allowed)
	}
	_, connected := s.connect(t, "session_id="+sids[0])
	if connected.num("evicted") == 0 {
		t.Errorf("the session offline the longest rejoins with %v, want evicted > 0 (BUF-8)", connected)
	}
	_, resumed := s.connect(t, "last_seq=1&session_id="+sids[1])
	if resumed["resumed"] != false || resumed.num("missed") == 0 {
		t.Errorf("the second-oldest session resumes with %v, want resumed false and missed > 0 (SEQ-4)", resumed)
	}
	s.stillServes(t)
}

// leaveAnswers makes n sessions, each of which sends q, reads its start and drops; it
// returns their ids once every answer is finished, in the order they dropped.
func leaveAnswers(t *testing.T, s *testServer, n int, q string) []string {
	t.Helper()
	sids := make([]string, n)
	for i := range sids {
		sids[i] = newSession(t)
		c, _ := s.connect(t, "session_id="+sids[i])
		c.send(query(q))
		c.expect("query_start")
		c.ws.CloseNow()
		eventually(t, "the drop is seen", func() bool { return s.health(t).ActiveConnections == 0 })
	}
	for _, sid := range sids {
		eventually(t, "the query finishes offline", func() bool { return !s.SessionBusy(sid) })
	}
	return sids
}

// BUF-7, STREAM-8: when the sessions that hold the budget all have a connection,
// nothing can be taken back: a new query gets busy, and runs again once a session
// ends and the total is within the budget.
func TestMemoryBudgetRefusesQueriesWhenAllOnline(t *testing.T) {
	q := text(40 << 10)
	s := start(t, func(c *server.Config) { c.MaxMemoryBytes = 200 << 10 })
	a, _ := s.connect(t, "session_id="+newSession(t))
	b, _ := s.connect(t, "session_id="+newSession(t))
	for _, c := range []*client{a, b} {
		c.send(map[string]any{"type": "query", "query": q, "query_id": "big"})
		if got := checkStream(t, c.stream()); got != "Echo: "+q {
			t.Fatalf("got an answer of %d bytes, want the echo", len(got))
		}
	}
	t.Logf("two sessions hold %d KiB, budget %d KiB", s.HeldBytes()>>10, 200)
	if s.HeldBytes() <= 200<<10 {
		t.Fatalf("the sessions hold %d bytes, want over the budget for this test", s.HeldBytes())
	}
	a.send(query("one more"))
	if f := a.next(); f.str("code") != "busy" {
		t.Fatalf("a query over the budget: got %v, want busy", f)
	}
	b.send(map[string]any{"type": "disconnect"})
	eventually(t, "the second session ends", func() bool { return s.SessionCount() == 1 })
	a.send(query("one more"))
	if got := checkStream(t, a.stream()); got != "Echo: one more" {
		t.Errorf("after a session ended: got %q", got)
	}
}

// -max-memory-bytes: the count goes back to 0 when every session has ended, however it
// ended (disconnect, TTL, eviction at the session limit) and whatever it held
// (buffer, history, queued text, remembered results, some of them shed).
func TestMemoryCountReturnsToZero(t *testing.T) {
	s := start(t, func(c *server.Config) {
		c.MaxMemoryBytes = 128 << 10
		c.MaxSessions = 6
		c.SessionTTL = 300 * time.Millisecond
		c.Agent = agent.Fixture{Delay: time.Millisecond}
	})
	for i := range 10 { // 4 of them evicted at the session limit, the others expire
		c, _ := s.connect(t, "session_id="+newSession(t))
		for j := range 3 {
			c.send(map[string]any{"type": "query", "query": text(8 << 10), "query_id": fmt.Sprint("q", j)})
		}
		if i%3 == 0 {
			c.send(map[string]any{"type": "disconnect"})
		}
		c.ws.CloseNow()
	}
	if s.HeldBytes() == 0 {
		t.Fatal("the sessions hold nothing counted, want their queued text at least")
	}
	eventually(t, "every session ends", func() bool { return s.SessionCount() == 0 })
	if n := s.HeldBytes(); n != 0 {
		t.Errorf("no session is left, and %d bytes are counted as held", n)
	}
}
