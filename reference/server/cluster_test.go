package server_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentws/agentws/reference/clustertest"
	"github.com/agentws/agentws/reference/redistest"
	"github.com/agentws/agentws/reference/server"
)

// TestChaosCluster runs the chaos test on three reference server processes sharing
// one Redis (spec section 9.3): clients dial a node at random at each reconnect, so
// that most takeovers and resumes cross nodes, while their connections are dropped,
// taken over and their queries cancelled and sent again; a node drains after 300
// queries, another is killed after 600. Every query must end whole, once, with
// complete, or cancelled, or unavailable (its node stopped), and no frame may be lost
// or repeated.
func TestChaosCluster(t *testing.T) {
	r := redistest.Start(t)
	args := []string{"-store", r.URL(), "-node-lease", "1s", "-drain-timeout", "3s",
		"-send-queue", "1", "-buffer-size", "250", "-buffer-bytes", strconv.Itoa(4 << 20),
		"-query-rate", "0", "-max-conns-per-ip", "0", "-log-level", "error"}
	var nodes []*clustertest.Node
	var urls []string
	for _, id := range []string{"chaos-a", "chaos-b", "chaos-c"} {
		n := clustertest.StartNode(t, id, args...)
		nodes = append(nodes, n)
		urls = append(urls, "ws://"+n.Addr+"/ws")
	}
	mode := chaosMode{name: "cluster", resume: true, abrupt: true, takeovers: true, pace: [2]int{20, 300},
		cancel: 0.2, dup: 0.05, nodes: urls}
	const clients, queries = 25, 40
	stats := &chaosStats{sent: make(chan struct{}), sentMark: 300}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-stats.sent
		if err := nodes[1].Drain(); err != nil {
			t.Errorf("node %s drained with %v", nodes[1].ID, err)
		}
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for stats.queries.Load() < 600 { // polling the count the clients raise
			<-tick.C
		}
		nodes[2].Kill()
	}()
	runChaos(t, nil, mode, clients, queries, stats, nil)
	<-stopped
	checkChaos(t, mode, stats)
	if n := stats.queries.Load(); n < 1000 {
		t.Errorf("%d queries, want at least 1000", n)
	}
	if stats.takeovers.Load()+stats.aborts.Load() < 100 {
		t.Errorf("too few forced drops to test anything: %s", stats)
	}
}

// TestChaosClusterCore is the core variant of the chaos test on three nodes: clients
// reconnect without last_seq, to a node at random, and read a replaced connection to
// its close; every takeover hands the stream over between nodes (the older node says
// what it gave, the newer one sends what follows), with cancels and repeated
// query_ids. Nothing may be lost or repeated.
func TestChaosClusterCore(t *testing.T) {
	r := redistest.Start(t)
	var urls []string
	for _, id := range []string{"core-a", "core-b", "core-c"} {
		n := clustertest.StartNode(t, id, "-store", r.URL(), "-send-queue", "1", "-buffer-size", "250",
			"-buffer-bytes", strconv.Itoa(4<<20), "-query-rate", "0", "-max-conns-per-ip", "0", "-log-level", "error")
		urls = append(urls, "ws://"+n.Addr+"/ws")
	}
	mode := chaosMode{name: "cluster core", takeovers: true, pace: [2]int{20, 300}, cancel: 0.2, dup: 0.05, nodes: urls}
	stats := &chaosStats{}
	runChaos(t, nil, mode, 10, 20, stats, nil)
	checkChaos(t, mode, stats)
	if stats.takeovers.Load() < 50 {
		t.Errorf("too few takeovers to test anything: %s", stats)
	}
}

// A node killed mid-stream (SIGKILL: no drain) leaves its query to the others: once its
// lease lapses, a surviving node ends it with an error of code unavailable, which the
// client, resumed on that node, gets after every frame the killed node stored (section
// 9.3). The time from the kill to that error is logged: the bound is one and a quarter
// leases after the node's last renewal.
func TestClusterKilledNodeQueryEnds(t *testing.T) {
	r := redistest.Start(t)
	const lease = 500 * time.Millisecond
	a := clustertest.StartNode(t, "killed", "-store", r.URL(), "-node-lease", lease.String(), "-log-level", "error")
	b := startNode(t, r, "survivor", func(c *server.Config) { c.NodeLease = lease })
	sid, ws, conn, got := slowQueryOn(t, a)
	a.Kill()
	killed := time.Now()
	ws.CloseNow()
	cb, resumed := b.connect(t, fmt.Sprintf("session_id=%s&last_seq=%d&epoch=%s", sid, got[1].num("seq"), conn.str("epoch")))
	if resumed["resumed"] != true {
		t.Fatalf("connected %v on the survivor, want resumed", resumed)
	}
	rest := cb.stream()
	got = append(got, rest...)
	checkSeqs(t, got, 1)
	end := got[len(got)-1]
	if end.str("type") != "error" || end.str("code") != "unavailable" {
		t.Fatalf("the killed node's query ended with %v, want an error with code unavailable", end)
	}
	t.Logf("the killed node's query ended %v after the kill (lease %v)", time.Since(killed).Round(time.Millisecond), lease)
	cb.send(query("the survivor answers"))
	checkStream(t, cb.stream())
}

// A node restarted under the same node id, before its lease lapses, ends the queries
// its earlier process ran (unavailable), as another node ends a lapsed node's: the
// client resumed on it gets the error after the frames stored, and its next query
// is answered, not queued behind the dead one for good.
func TestClusterRestartedNodeEndsItsOldQueries(t *testing.T) {
	r := redistest.Start(t)
	// A lease of 2 s: the restart comes well within it, and the reconciles that end
	// the query, each a quarter lease, well within a read's 5 s.
	a := clustertest.StartNode(t, "restarted", "-store", r.URL(), "-node-lease", "2s", "-log-level", "error")
	sid, ws, conn, got := slowQueryOn(t, a)
	a.Kill()
	ws.CloseNow()
	a.Start() // the same node id, its lease still valid
	ws, _, err := websocket.Dial(context.Background(), fmt.Sprintf("ws://%s/ws?session_id=%s&last_seq=%d&epoch=%s", a.Addr, sid, got[1].num("seq"), conn.str("epoch")), nil)
	if err != nil {
		t.Fatal(err)
	}
	cb := &client{t: t, ws: ws}
	if resumed := cb.expect("connected"); resumed["resumed"] != true {
		t.Fatalf("connected %v after the restart, want resumed", resumed)
	}
	got = append(got, cb.stream()...)
	checkSeqs(t, got, 1)
	if end := got[len(got)-1]; end.str("type") != "error" || end.str("code") != "unavailable" {
		t.Fatalf("the earlier process's query ended with %v, want an error with code unavailable", end)
	}
	cb.send(query("the restarted node answers"))
	checkStream(t, cb.stream())
}

// slowQueryOn opens a new session on node n and sends it a slow query of 100 chunks:
// it returns the session, its connection, connected, and the query_start and first
// chunk read.
func slowQueryOn(t *testing.T, n *clustertest.Node) (string, *websocket.Conn, frame, []frame) {
	t.Helper()
	sid := newSession(t)
	ws, _, err := websocket.Dial(context.Background(), "ws://"+n.Addr+"/ws?session_id="+sid, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, ws: ws}
	conn := c.expect("connected")
	c.send(query(slowWords(100)))
	return sid, ws, conn, []frame{c.expect("query_start"), c.expect("chunk")}
}
