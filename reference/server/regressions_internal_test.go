package server

import (
	"runtime"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentws/agentws/schemas/msg"
)

// A query admitted (its bytes reserved) and then refused because no runner can start
// (the server is stopping) gives its reservation back.
func TestRefusedQueryReleasesItsReservation(t *testing.T) {
	srv := testServer(t, nil)
	sess, c := joined(t, srv, "s1")
	before := srv.mem.held.Load()
	srv.stop()
	refusal := sess.submit(msg.Query{Type: msg.QueryTypeQuery, Query: "hello"}, nil)
	if refusal == nil {
		t.Fatal("want a refusal")
	}
	after := srv.mem.held.Load()
	// End everything: the count should go back to what the queue held.
	sess.end(errSessionEnded)
	unsent, _ := c.closeNow(websocket.StatusGoingAway, "")
	dropAll(unsent)
	t.Logf("held before submit %d, after refused submit %d, after end+close %d", before, after, srv.mem.held.Load())
	if srv.mem.held.Load() != 0 {
		t.Errorf("held %d bytes after everything ended, want 0", srv.mem.held.Load())
	}
}

// A session that goes offline while the count is over the budget, with no reclaimer
// running, starts one without deadlocking: wentOffline once did it holding the
// server's mu, which starting it (track) takes.
func TestGoingOfflineOverBudgetStartsTheReclaimer(t *testing.T) {
	srv := testServer(t, func(c *Config) {
		c.MaxMessageBytes = minMessageBytes
		c.MaxMemoryBytes = int(8 * minMessageBytes)
	})
	sess, c := joined(t, srv, "s1")
	// A client that does not read: answers (unreserved frames) stay in its queue.
	for i := 0; srv.mem.held.Load() <= srv.mem.max+2000 && i < 1000; i++ {
		// a query's end frame, counted without a reservation (endQuery)
		sess.mu.Lock()
		sess.emitLocked(errorBuilder(sess.id, "q", msg.ErrorCodeQueryFailed, "x"), false)
		sess.mu.Unlock()
	}
	for deadline := time.Now().Add(2 * time.Second); srv.reclaim.running.Load(); {
		if time.Now().After(deadline) {
			t.Fatal("the reclaimer still runs after 2 s")
		}
		runtime.Gosched() // polling: the reclaimer's pass finds nothing to shed
	}
	t.Logf("held %d, max %d, over %v, reclaimer running %v", srv.mem.held.Load(), srv.mem.max, srv.mem.over(), srv.reclaim.running.Load())
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.dropped(c, websocket.StatusGoingAway, "") // as readEnded does
	}()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("dropped did not return in 3s: deadlocked in wentOffline -> wakeReclaim -> track (s.mu held twice)")
	}
}
