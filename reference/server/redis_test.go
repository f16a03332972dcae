package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentws/agentws/reference/redistest"
	"github.com/agentws/agentws/reference/server"
)

// startNode runs an in-process server on the Redis store of r, named id: a node of a
// cluster (spec section 9.3).
func startNode(t *testing.T, r *redistest.Server, id string, edit func(*server.Config)) *testServer {
	t.Helper()
	return start(t, func(c *server.Config) {
		c.Store, c.NodeID, c.NodeLease = r.URL(), id, 400*time.Millisecond
		if edit != nil {
			edit(c)
		}
	})
}

// slowWords is a fixture query of words chunks, each a FIX-3 delay apart.
func slowWords(words int) string {
	return "__slow__" + strings.Repeat(" word", words)
}

// checkSeqs checks that frames are numbered from first on, without a gap or a repeat.
func checkSeqs(t *testing.T, frames []frame, first int) {
	t.Helper()
	for i, f := range frames {
		if got := f.num("seq"); got != first+i {
			t.Fatalf("frame %d (%s) has seq %d, want %d: a frame lost or repeated", i, f.str("type"), got, first+i)
		}
	}
}

// A takeover by a connection on another node closes the older connection with 4001,
// and the newer one gets the rest of the stream: every frame once, whichever node
// wrote it (TAKE-1, TAKE-2, BUF-4); the epoch is the session's on both nodes (SEQ-5).
func TestRedisTakeoverAcrossNodes(t *testing.T) {
	r := redistest.Start(t)
	a, b := startNode(t, r, "a", nil), startNode(t, r, "b", nil)
	sid := newSession(t)
	ca, first := a.connect(t, "session_id="+sid)
	ca.send(query(slowWords(12)))
	got := []frame{ca.expect("query_start"), ca.expect("chunk"), ca.expect("chunk")}
	cb, second := b.connect(t, "session_id="+sid)
	if first.str("epoch") != second.str("epoch") {
		t.Errorf("epoch %q on node b, %q on node a: a change of node is no new history", second.str("epoch"), first.str("epoch"))
	}
	for {
		f, err := ca.read()
		if err != nil {
			if code := websocket.CloseStatus(err); code != 4001 {
				t.Fatalf("the replaced connection ended with %v (close %d), want 4001", err, code)
			}
			break
		}
		got = append(got, f)
	}
	got = append(got, cb.stream()...)
	checkSeqs(t, got, 1)
	checkStream(t, got)
}

// cancel and a repeated query_id work on a node other than the one that ran the query
// (CANCEL-1, QID-4); a resume there gets what the first node produced (SEQ-3).
func TestRedisCancelAndQueryIDAcrossNodes(t *testing.T) {
	r := redistest.Start(t)
	a, b := startNode(t, r, "a", nil), startNode(t, r, "b", nil)
	sid := newSession(t)
	ca, conn := a.connect(t, "session_id="+sid)
	ca.send(map[string]any{"type": "query", "query": "hello there", "query_id": "done"})
	done := ca.stream()
	ca.send(map[string]any{"type": "query", "query": slowWords(50), "query_id": "long"})
	start := ca.expect("query_start")
	ca.ws.CloseNow()

	cb, resumed := b.connect(t, fmt.Sprintf("session_id=%s&last_seq=%d&epoch=%s", sid, start.num("seq"), conn.str("epoch")))
	if resumed["resumed"] != true {
		t.Fatalf("connected %v on node b, want resumed", resumed)
	}
	cb.send(map[string]any{"type": "cancel", "query_id": "long"})
	var end frame
	for end == nil {
		f := cb.next()
		switch f.str("type") {
		case "chunk":
		case "error":
			end = f
		default:
			t.Fatalf("got %v, want chunks then the error that ends the cancelled query", f)
		}
	}
	if end.str("code") != "cancelled" || end.str("query_id") != "long" {
		t.Fatalf("the cancelled query ended with %v, want code cancelled", end)
	}
	cb.send(map[string]any{"type": "query", "query": "hello there", "query_id": "done"})
	replay := cb.expect("complete")
	if replay["replayed"] != true || replay.str("full_response") != done[len(done)-1].str("full_response") {
		t.Fatalf("the query_id sent again on node b got %v, want the replayed complete of node a", replay)
	}
}

// A node that drains closes its connections with 1001 and its running query goes on
// into the session, which its client, resumed on another node, gets whole (SHUT-2,
// SHUT-3, section 9.3).
func TestRedisDrainHandsOver(t *testing.T) {
	r := redistest.Start(t)
	a, b := startNode(t, r, "a", nil), startNode(t, r, "b", nil)
	sid := newSession(t)
	ca, conn := a.connect(t, "session_id="+sid)
	ca.send(query(slowWords(15)))
	got := []frame{ca.expect("query_start"), ca.expect("chunk")}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		a.Drain(context.Background())
	}()
	for {
		f, err := ca.read()
		if err != nil {
			if code := websocket.CloseStatus(err); code != websocket.StatusGoingAway {
				t.Fatalf("the drained node's connection ended with %v, want 1001", err)
			}
			break
		}
		got = append(got, f)
	}
	last := got[len(got)-1].num("seq")
	cb, resumed := b.connect(t, fmt.Sprintf("session_id=%s&last_seq=%d&epoch=%s", sid, last, conn.str("epoch")))
	if resumed["resumed"] != true {
		t.Fatalf("connected %v on node b, want resumed", resumed)
	}
	got = append(got, cb.stream()...)
	checkSeqs(t, got, 1)
	checkStream(t, got)
	<-drained
}

// A Redis that goes away makes the node unready; it refuses new connections with 503
// store_unavailable and queries with unavailable, and serves again once Redis is back.
// A Redis that restarts empty has lost the sessions: a connection that resumes gets a
// new epoch, not resumed (SEQ-5), and one that was open is closed with 1001.
func TestRedisLostAndBack(t *testing.T) {
	r := redistest.Start(t)
	a := startNode(t, r, "a", nil)
	sid := newSession(t)
	ca, conn := a.connect(t, "session_id="+sid)
	ca.send(query("before"))
	ca.stream()
	r.Stop()
	eventually(t, "/readyz fails", func() bool { return readyz(t, a) == http.StatusServiceUnavailable })
	if _, m := scrape(t, a.URL+"/metrics"); m["agentws_store_up"] != 0 {
		t.Errorf("store_up %v while Redis is away, want 0", m["agentws_store_up"])
	}
	if h := a.health(t); h.Status != "uninitialized" {
		t.Errorf("health status %q while Redis is away, want uninitialized (HEALTH-2)", h.Status)
	}
	if status, he := a.refused(t, "session_id="+newSession(t), nil); status != http.StatusServiceUnavailable || he.Code != "store_unavailable" {
		t.Errorf("a new connection got %d %v, want 503 store_unavailable", status, he)
	}
	ca.send(query("while Redis is away"))
	if f := ca.expect("error"); f.str("code") != "unavailable" || f["seq"] != nil {
		t.Errorf("a query while Redis is away got %v, want a connection-scoped error with code unavailable", f)
	}
	r.Launch()
	eventually(t, "/readyz passes again", func() bool { return readyz(t, a) == http.StatusOK })
	if _, m := scrape(t, a.URL+"/metrics"); m["agentws_store_up"] != 1 {
		t.Errorf("store_up %v with Redis back, want 1", m["agentws_store_up"])
	}
	ca.expectClose(websocket.StatusGoingAway)
	cb, again := a.connect(t, fmt.Sprintf("session_id=%s&last_seq=3&epoch=%s", sid, conn.str("epoch")))
	if again["resumed"] != false || again.str("epoch") == conn.str("epoch") {
		t.Errorf("connected %v after Redis restarted empty, want a new epoch and resumed false", again)
	}
	cb.send(query("after"))
	checkStream(t, cb.stream())
}

// A server whose Redis does not answer does not start: the error names the store.
func TestRedisDownAtStart(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.Store = "redis://127.0.0.1:1/0"
	_, err := server.New(cfg)
	if err == nil || !strings.Contains(err.Error(), "redis://127.0.0.1:1/0") {
		t.Fatalf("New with an unreachable store: %v, want an error that names it", err)
	}
}

func readyz(t *testing.T, s *testServer) int {
	t.Helper()
	resp, err := http.Get(s.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A client that reads, however slowly, paces the stream across nodes as the memory
// store's full send queue does (table 15.1, 4002): it gets every frame of an answer
// far longer than the history holds, and is never closed as a slow consumer.
func TestRedisPacesSlowReader(t *testing.T) {
	r := redistest.Start(t)
	// The answer waits for the gate, which opens once node b has the reader: while
	// the session has no connection, its frames go to the history of 10, and a fast
	// stream would overflow it there, before any reader could pace it.
	gate := make(chan struct{})
	small := func(c *server.Config) { c.BufferSize, c.SendQueue, c.Agent = 10, 1, gated{gate} }
	a, b := startNode(t, r, "a", small), startNode(t, r, "b", small)
	sid := newSession(t)
	ca, conn := a.connect(t, "session_id="+sid)
	ca.send(query("slow reader" + strings.Repeat(" word", 98))) // node a runs it
	got := []frame{ca.expect("query_start")}
	ca.ws.CloseNow()
	cb, resumed := b.connect(t, fmt.Sprintf("session_id=%s&last_seq=1&epoch=%s", sid, conn.str("epoch"))) // node b has the reader
	if resumed["resumed"] != true {
		t.Fatalf("connected %v on node b, want resumed", resumed)
	}
	close(gate)
	for {
		f := cb.next()
		got = append(got, f)
		if t := f.str("type"); t == "complete" || t == "error" {
			break
		}
		time.Sleep(2 * time.Millisecond) // a client that reads slowly: the behaviour under test
	}
	checkSeqs(t, got, 1)
	if n := len(checkStream(t, got)); n == 0 {
		t.Fatal("empty answer")
	}
}

// A node that drains hands the queued queries of a session without a connection to
// another node, which runs them at once (BUF-2), not only once the client is back.
func TestRedisDrainHandsQueueOver(t *testing.T) {
	r := redistest.Start(t)
	a, b := startNode(t, r, "a", nil), startNode(t, r, "b", nil)
	sid := newSession(t)
	ca, conn := a.connect(t, "session_id="+sid)
	ca.send(map[string]any{"type": "query", "query": slowWords(5), "query_id": "first"})
	ca.send(map[string]any{"type": "query", "query": "second in line", "query_id": "second"})
	start := ca.expect("query_start")
	ca.ws.CloseNow()
	eventually(t, "the session is offline", func() bool {
		owner, err := r.Do("HGET", "agentws:s:"+sid, "owner")
		return err == nil && owner == "$-1"
	})
	a.Drain(context.Background())
	eventually(t, "node b ran the queued query", func() bool {
		queued, err1 := r.Do("LLEN", "agentws:q:"+sid)
		running, err2 := r.Do("HGET", "agentws:s:"+sid, "running")
		return err1 == nil && err2 == nil && queued == ":0" && running == "$-1"
	})
	cb, resumed := b.connect(t, fmt.Sprintf("session_id=%s&last_seq=%d&epoch=%s", sid, start.num("seq"), conn.str("epoch")))
	if resumed["resumed"] != true {
		t.Fatalf("connected %v on node b, want resumed", resumed)
	}
	first := append([]frame{start}, cb.stream()...)
	checkStream(t, first)
	second := cb.stream()
	checkStream(t, second)
	if second[0].str("query_id") != "second" {
		t.Fatalf("the second stream is of %q, want the queued query", second[0].str("query_id"))
	}
}

// Connections that take a session over at the same moment, on both nodes, while its
// query streams, each without last_seq: however the takeovers interleave (one may be
// replaced while still in its handshake), every frame reaches the client once, over
// all its connections (BUF-4, SEQ-6, TAKE-2).
func TestRedisRacingTakeovers(t *testing.T) {
	r := redistest.Start(t)
	nodes := []*testServer{startNode(t, r, "a", nil), startNode(t, r, "b", nil)}
	sid := newSession(t)
	first, _ := nodes[0].connect(t, "session_id="+sid)
	first.send(query(slowWords(30)))
	var mu sync.Mutex
	seen := map[int]int{}
	var wg sync.WaitGroup
	read := func(c *client) {
		defer wg.Done()
		for {
			f, err := c.read()
			if err != nil {
				return
			}
			if f["seq"] != nil {
				mu.Lock()
				seen[f.num("seq")]++
				mu.Unlock()
			}
		}
	}
	wg.Add(1)
	go read(first)
	for round := range 8 {
		var dialed sync.WaitGroup
		for i := range 2 {
			dialed.Add(1)
			go func() {
				defer dialed.Done()
				c := nodes[(round+i)%2].dial(t, "session_id="+sid)
				wg.Add(1)
				go read(c)
			}()
		}
		dialed.Wait()
		time.Sleep(150 * time.Millisecond) // the next round comes while the query streams: the race under test
	}
	last := nodes[0].dial(t, "session_id="+sid)
	for {
		f := last.next()
		if f["seq"] != nil {
			mu.Lock()
			seen[f.num("seq")]++
			mu.Unlock()
		}
		if f.str("type") == "complete" {
			break
		}
	}
	last.ws.CloseNow()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for seq, n := range seen {
		if n > 1 {
			t.Errorf("frame %d reached the client %d times", seq, n)
		}
	}
}

// A Redis that stalls (neither answering nor closing) for several leases makes the
// nodes unready, and no node takes another's queries for lapsed: they could not renew
// either. The stream goes on once Redis answers, and ends with its complete.
func TestRedisStall(t *testing.T) {
	r := redistest.Start(t)
	a, b := startNode(t, r, "a", nil), startNode(t, r, "b", nil)
	sid := newSession(t)
	ca, _ := a.connect(t, "session_id="+sid)
	ca.send(query(slowWords(20)))
	got := []frame{ca.expect("query_start"), ca.expect("chunk")}
	r.Pause()
	eventually(t, "/readyz fails on both nodes", func() bool {
		return readyz(t, a) == http.StatusServiceUnavailable && readyz(t, b) == http.StatusServiceUnavailable
	})
	time.Sleep(3 * 400 * time.Millisecond) // three leases of stall: the behaviour under test
	r.Continue()
	for {
		f := ca.next()
		got = append(got, f)
		if t := f.str("type"); t == "complete" || t == "error" {
			break
		}
	}
	checkSeqs(t, got, 1)
	checkStream(t, got)
}
