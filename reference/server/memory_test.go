package server_test

import (
	"context"
	"fmt"
	"strings"
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
	var cfg server.Config
	s := start(t, func(c *server.Config) {
		bounded(m)(c)
		c.MaxMemoryBytes = limit
		c.Agent = agent.Fixture{ChunkRunes: 64 << 10, Delay: 20 * time.Millisecond} // the answer comes after the drop
		cfg = *c
	})
	before := liveHeap()
	sids := leaveAnswers(t, s, sessions, text(m))
	eventually(t, "the reclaimer brings the total within the budget", func() bool { return s.HeldBytes() <= int64(limit) })
	allowed := cfg.Budget().For(sessions) + baselineSlack
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

// leaveAnswers makes n sessions, one after the other, each of which sends q, reads its
// start, drops, and finishes its answer offline; it returns their ids, in the order
// they dropped. (A running query's text and answer are not shed: sessions whose
// answers all ran at once would get busy.)
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
		eventually(t, "the query finishes offline", func() bool { return !s.SessionBusy(sids[i]) })
	}
	return sids
}

// BUF-7, STREAM-8: a session with a connection holds the budget in what cannot be
// shed (the text of its running and waiting queries, their reserved query_start): the
// queries past it get busy and do not run, the count never goes over the budget, and
// once the running query finishes every accepted one runs, and new queries again.
func TestMemoryBudgetRefusesQueriesWhenUnshedable(t *testing.T) {
	m := 64 << 10
	gate := make(chan struct{})
	s := start(t, tightBudget(m, gated{gate}, nil))
	c, _ := s.connect(t, "session_id="+newSession(t))
	c.send(map[string]any{"type": "query", "query": "first", "query_id": "running"})
	c.expect("query_start")
	const sent = 60
	for i := range sent { // each under 4 KiB: read without a reservation, refused with its query_id
		c.send(map[string]any{"type": "query", "query": text(4 << 10), "query_id": fmt.Sprint("w", i)})
		if held := s.HeldBytes(); held > int64(8*m) {
			t.Errorf("after %d queries the server counts %d bytes held, over the budget of %d", i+1, held, 8*m)
		}
	}
	c.send(map[string]any{"type": "ping"})
	refused := map[string]bool{}
	for f := c.next(); f.str("type") != "pong"; f = c.next() {
		if f.str("code") != "busy" || !strings.Contains(f.str("error"), "-max-memory-bytes") {
			t.Fatalf("got %v, want busy for the memory budget", f)
		}
		refused[f.str("query_id")] = true
	}
	t.Logf("%d of %d waiting queries of 4 KiB refused against a budget of %d KiB; %d KiB held", len(refused), sent, 8*m>>10, s.HeldBytes()>>10)
	if len(refused) == 0 || len(refused) == sent {
		t.Fatalf("%d of %d queries refused, want some but not all", len(refused), sent)
	}
	// With no room left, a large message is read to its end and dropped, not decoded.
	c.send(map[string]any{"type": "query", "query": text(m), "query_id": "large"})
	if f := c.next(); f.str("code") != "busy" || !strings.HasPrefix(f.str("error"), "Message not read") || f["query_id"] != nil {
		t.Fatalf("a large message over the budget: got %.300v, want busy, Message not read, no query_id", f)
	}
	close(gate)
	c.stream() // the running query's end
	for i := range sent {
		if id := fmt.Sprint("w", i); !refused[id] {
			frames := c.stream()
			checkStream(t, frames)
			if got := frames[0].str("query_id"); got != id {
				t.Fatalf("stream of %q, want %q", got, id)
			}
		}
	}
	c.send(query("one more"))
	if got := checkStream(t, c.stream()); got != "Echo: one more" {
		t.Errorf("once the queries finished: got %q", got)
	}
}

// tightBudget is the configuration of a budget of 8 messages of m bytes, the least
// it may be, whose queues are bounded by the budget alone, with agent a and edit.
func tightBudget(m int, a agent.Agent, edit func(*server.Config)) func(*server.Config) {
	return func(c *server.Config) {
		c.MaxMessageBytes, c.QueueBytes, c.QueueDepth = int64(m), 64*m, 64
		c.MaxMemoryBytes = 8 * m
		c.Agent = a
		if edit != nil {
			edit(c)
		}
	}
}

// gated is the fixture agent, which answers each query once the gate is closed.
type gated struct{ gate chan struct{} }

func (g gated) Stream(ctx context.Context, req agent.Request, emit func(string) error) error {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	return agent.Fixture{}.Stream(ctx, req, emit)
}

// -max-memory-bytes: the count goes back to 0 when every session has ended, however it
// ended (disconnect, TTL, eviction at the session limit) and whatever it held
// (buffer, history, queued text, remembered results, some of them shed).
func TestMemoryCountReturnsToZero(t *testing.T) {
	s := start(t, func(c *server.Config) {
		c.MaxMessageBytes, c.MaxMemoryBytes = 16<<10, 128<<10
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

// BUF-7: a running query waits for room in the budget before each frame; when none
// comes within the write timeout it ends with unavailable, without the chunk. Once
// the session holding the budget ends, queries run again.
func TestMemoryBudgetStopsAStarvedQuery(t *testing.T) {
	m := 64 << 10
	release := make(chan struct{})
	s := start(t, tightBudget(m, scripted{release}, func(c *server.Config) { c.WriteTimeout = 200 * time.Millisecond }))
	a, _ := s.connect(t, "session_id="+newSession(t))
	a.send(map[string]any{"type": "query", "query": "big", "query_id": "starved"})
	a.expect("query_start")
	b, _ := s.connect(t, "session_id="+newSession(t))
	b.send(query("hold"))
	b.expect("query_start")
	for i := 0; ; i++ {
		b.send(map[string]any{"type": "query", "query": text(8 << 10), "query_id": fmt.Sprint("w", i)})
		b.send(map[string]any{"type": "ping"})
		if f := b.next(); f.str("code") == "busy" {
			b.expect("pong")
			break
		}
		if i == 100 {
			t.Fatal("100 waiting queries and no busy")
		}
	}
	close(release)
	f := a.next()
	if f.str("type") != "error" || f.str("code") != "unavailable" || f.str("query_id") != "starved" || !strings.Contains(f.str("error"), "-max-memory-bytes") {
		t.Fatalf("a query whose chunk finds no room: got %.300v, want error unavailable naming -max-memory-bytes", f)
	}
	b.send(map[string]any{"type": "disconnect"})
	eventually(t, "the session holding the budget ends", func() bool { return s.SessionCount() == 1 })
	a.send(query("again"))
	if got := checkStream(t, a.stream()); got != "Echo: again" {
		t.Errorf("after the session ended: got %q", got)
	}
}

// scripted answers "big" with one chunk of 60 KiB once release is closed, holds "hold"
// until it is cancelled, and is the fixture agent for anything else.
type scripted struct{ release chan struct{} }

func (a scripted) Stream(ctx context.Context, req agent.Request, emit func(string) error) error {
	switch req.Query {
	case "big":
		select {
		case <-a.release:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		return emit(strings.Repeat("y", 60<<10))
	case "hold":
		<-ctx.Done()
		return context.Cause(ctx)
	}
	return agent.Fixture{}.Stream(ctx, req, emit)
}

// DISC-1 and the memory count: a disconnect right behind pings gets its disconnected
// frame, and nothing stays counted. The writer once took its last pong, found the
// queue empty, saw the close only then, and closed without writing what the disconnect
// had queued meanwhile.
func TestDisconnectBehindPingsLeavesNothing(t *testing.T) {
	s := start(t, nil)
	const conns = 200
	missing := 0
	for range conns {
		c, _ := s.connect(t, "session_id="+newSession(t))
		for range 3 {
			c.send(map[string]any{"type": "ping"})
		}
		c.send(map[string]any{"type": "disconnect"})
		got := false
		for {
			f, err := c.read()
			if err != nil {
				break
			}
			got = got || f.str("type") == "disconnected"
		}
		if !got {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d connections closed without their disconnected frame (DISC-1)", missing, conns)
	}
	eventually(t, "every session ends", func() bool { return s.SessionCount() == 0 && s.health(t).ActiveConnections == 0 })
	eventually(t, "nothing is counted as held", func() bool { return s.HeldBytes() == 0 })
}
