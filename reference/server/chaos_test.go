package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentws/agentws/reference/server"
)

var chaosFull = flag.Bool("chaos.full", os.Getenv("AGENTWS_CHAOS") == "full",
	"run TestChaos at full size: 1000 queries and at least 1000 forced drops per variant (also AGENTWS_CHAOS=full)")

// A chaosMode is one variant of the chaos test: how clients reconnect and what they do
// to the server besides querying.
type chaosMode struct {
	name      string
	resume    bool     // reconnect with last_seq and epoch; else without, reading a replaced connection to its close
	abrupt    bool     // drop connections abruptly: only with resume, since the core protocol loses what was written into a dying connection (section 9.1)
	takeovers bool     // forced drops: a takeover by a new connection (or an abrupt close); else none
	pace      [2]int   // a forced drop every pace[0] + rand(pace[1]) ms
	stall     float64  // the chance that a step's query is a large fast answer that the client stops reading for longer than the write timeout; in the core variants only without takeovers: a write stalled when its connection is replaced dies with it (section 9.1)
	cancel    float64  // the chance that a query is cancelled, at once or later, and that a second query is pipelined behind it
	dup       float64  // the chance, on each frame, of sending a known query_id again
	lossy     bool     // a small buffer: frames may be lost, each loss announced by evicted (BUF-8)
	nodes     []string // a cluster's nodes (ws:// URLs) to dial at random instead of the test server
	edit      func(*server.Config)
}

var chaosModes = []chaosMode{
	{name: "resume", resume: true, abrupt: true, takeovers: true, pace: [2]int{20, 300}, stall: 0.1},
	{name: "core", takeovers: true, pace: [2]int{20, 300}, cancel: 0.2, dup: 0.05},
	{name: "evicted", pace: [2]int{20, 300}, lossy: true, stall: 1,
		edit: func(c *server.Config) { c.BufferSize = 3 }},
	{name: "takeover storm", takeovers: true, pace: [2]int{2, 10}},
	{name: "cancel storm", takeovers: true, pace: [2]int{20, 150}, cancel: 0.9},
	{name: "duplicate storm", takeovers: true, pace: [2]int{50, 300}, dup: 0.5},
}

// chaosStats counts what happened over all clients of a variant.
type chaosStats struct {
	queries, frames, aborts, takeovers, slowCloses, resumes, gapResumes atomic.Int64
	cancels, cancelled, resent, replays, lost, announced, misannounced  atomic.Int64
	duplicated, unavailable                                             atomic.Int64

	// sent, when not nil, is closed once sentMark queries were sent.
	sent     chan struct{}
	sentMark int64
}

func (s *chaosStats) String() string {
	return fmt.Sprintf("%d queries, %d frames, %d forced drops (%d abrupt, %d takeovers, %d slow-consumer closes), %d resumes (%d with a gap), %d cancels (%d queries cancelled), %d query_ids sent again (%d replays), %d queries ended unavailable, %d frames lost, %d announced as evicted, %d losses not announced exactly, %d duplicated",
		s.queries.Load(), s.frames.Load(), s.drops(), s.aborts.Load(), s.takeovers.Load(), s.slowCloses.Load(),
		s.resumes.Load(), s.gapResumes.Load(), s.cancels.Load(), s.cancelled.Load(), s.resent.Load(), s.replays.Load(),
		s.unavailable.Load(), s.lost.Load(), s.announced.Load(), s.misannounced.Load(), s.duplicated.Load())
}

func (s *chaosStats) drops() int64 { return s.aborts.Load() + s.takeovers.Load() + s.slowCloses.Load() }

// Chaos servers queue one frame per connection. In the variants that stall, they drop
// a client that takes no frame for chaosWriteTimeout as a slow consumer, and a stalled
// client stops reading for chaosStall; the others keep the default write timeout, so
// that a busy machine never drops a client that reads.
const (
	chaosSendQueue    = 1
	chaosWriteTimeout = 250 * time.Millisecond
	chaosStall        = 3 * chaosWriteTimeout
)

// config is the configuration of the variant's server.
func (m chaosMode) config(c *server.Config) {
	c.SendQueue = chaosSendQueue
	c.BufferSize, c.BufferBytes = 250, 4<<20 // room for a stall answer, whole, twice
	if m.stall > 0 {
		c.WriteTimeout = chaosWriteTimeout
	}
	if m.edit != nil {
		m.edit(c)
	}
}

// TestChaos runs many clients per variant, each streaming queries one after another,
// while their connections are dropped at random moments: abrupt TCP closes (with
// resume), takeovers by a new connection, and slow-consumer closes (a client that
// stops reading, over sockets with small kernel buffers, until the server's write
// times out). Clients that resume name last_seq; the others reconnect
// without it and read a replaced connection to its close. Every client resends its
// unfinished queries with their query_id after a reconnect. In the end every client
// must hold every frame of every query exactly once, in order; in the lossy variant,
// every frame it lacks must have been announced by evicted.
func TestChaos(t *testing.T) {
	for _, mode := range chaosModes {
		t.Run(mode.name, func(t *testing.T) {
			clients, queries := 4, 6
			if *chaosFull {
				clients, queries = 25, 40
			}
			s := startChaos(t, mode.config)
			stats := &chaosStats{}
			runChaos(t, s, mode, clients, queries, stats, nil)
			checkChaos(t, mode, stats)
			if *chaosFull && (stats.queries.Load() < 1000 || stats.drops() < 1000) {
				t.Errorf("full size needs at least 1000 queries and 1000 forced drops: %s", stats)
			}
		})
	}
}

// TestChaosDrain drains the server while clients stream and take their sessions over
// (SHUT-2, SHUT-3): what a client read before its connection closed with 1001, and
// what its session buffered, make every stream whole, once.
func TestChaosDrain(t *testing.T) {
	mode := chaosMode{name: "drain", takeovers: true, pace: [2]int{20, 200}, cancel: 0.2, dup: 0.1}
	const clients, queries = 6, 40 // more queries than are sent before the drain
	s := startChaos(t, mode.config)
	stats := &chaosStats{sent: make(chan struct{}), sentMark: 5 * clients}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		<-stats.sent
		s.Drain(context.Background())
	}()
	runChaos(t, s, mode, clients, queries, stats, drained)
	checkChaos(t, mode, stats)
	if n := stats.queries.Load(); n >= clients*queries {
		t.Errorf("all %d queries were sent before the drain: it came too late to test anything", n)
	}
}

// runChaos runs clients against s. With drained, a client stops when the server refuses
// it for draining; once drained is closed, its session's buffer is read as a last
// connection would.
func runChaos(t *testing.T, s *testServer, mode chaosMode, clients, queries int, stats *chaosStats, drained chan struct{}) {
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cl := &chaosClient{s: s, nodes: mode.nodes, mode: mode, ctx: ctx, sid: fmt.Sprintf("%s-%d", newSession(t), i), stats: stats,
				rng: rand.New(rand.NewPCG(uint64(i), 42)), frames: map[string][]frame{}, ends: map[string]frame{},
				texts: map[string]string{}}
			err := cl.run(queries)
			if errors.Is(err, errDraining) && drained != nil {
				<-drained
				err = cl.readBuffer()
			}
			if err == nil {
				err = cl.check()
			}
			if err != nil {
				t.Errorf("client %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if drained != nil {
		<-drained
	}
}

func checkChaos(t *testing.T, mode chaosMode, stats *chaosStats) {
	t.Helper()
	t.Logf("%s: %s", mode.name, stats)
	if stats.duplicated.Load() != 0 || stats.gapResumes.Load() != 0 || stats.misannounced.Load() != 0 {
		t.Errorf("frames duplicated or lost unannounced: %s", stats)
	}
	if !mode.lossy && (stats.lost.Load() != 0 || stats.announced.Load() != 0) {
		t.Errorf("frames lost: %s", stats)
	}
	if mode.lossy && stats.announced.Load() == 0 {
		t.Errorf("the lossy variant evicted nothing, so it tested nothing: %s", stats)
	}
}

var errDraining = errors.New("the server is draining")

type chaosClient struct {
	s     *testServer
	nodes []string // with a cluster: the nodes' ws:// URLs, each dial to one at random
	mode  chaosMode
	ctx   context.Context
	sid   string
	stats *chaosStats
	rng   *rand.Rand

	cur     *chaosConn
	epoch   string
	lastSeq int
	evicted int  // announced by the last connected, not yet seen as a gap
	joined  bool // the next numbered frame is the first after connected
	quiet   bool // after a stall, send nothing on the connection until it ends or the step does

	texts   map[string]string  // by query_id, every query sent
	pending []string           // query_ids sent and not finished, in order
	frames  map[string][]frame // by query_id, in seq order, replays aside
	ends    map[string]frame   // by query_id, the terminal frame
}

type chaosConn struct {
	ws      *websocket.Conn
	events  chan chaosEvent
	stalled atomic.Bool // the client stopped reading it once
	paused  chan time.Duration
}

type chaosEvent struct {
	frame frame
	err   error
}

// dial opens a connection, with last_seq when the client resumes. A refusal for
// draining is errDraining.
func (c *chaosClient) dial() (*chaosConn, error) {
	q := "session_id=" + c.sid
	if c.mode.resume && c.epoch != "" {
		q += fmt.Sprintf("&last_seq=%d&epoch=%s", c.lastSeq, c.epoch)
	}
	if len(c.nodes) > 0 {
		return c.dialNode(q)
	}
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, c.s.wsURL(q), &websocket.DialOptions{HTTPClient: smallBuffersClient})
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusServiceUnavailable {
			return nil, errDraining
		}
		return nil, err
	}
	return c.open(ws), nil
}

// dialNode dials the nodes of a cluster in a random order until one takes the
// connection: a node that drains refuses it, one that was killed does not answer.
func (c *chaosClient) dialNode(q string) (*chaosConn, error) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		var errs []error
		for _, i := range c.rng.Perm(len(c.nodes)) {
			ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
			ws, _, err := websocket.Dial(ctx, c.nodes[i]+"?"+q, &websocket.DialOptions{HTTPClient: smallBuffersClient})
			cancel()
			if err == nil {
				return c.open(ws), nil
			}
			errs = append(errs, err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no node took a connection for 20 s: %w", errors.Join(errs...))
		}
		select {
		case <-time.After(50 * time.Millisecond): // a backoff before trying the nodes again
		case <-c.ctx.Done():
			return nil, c.ctx.Err()
		}
	}
}

// open starts reading a new connection.
func (c *chaosClient) open(ws *websocket.Conn) *chaosConn {
	ws.SetReadLimit(-1)
	cc := &chaosConn{ws: ws, events: make(chan chaosEvent, 4096), paused: make(chan time.Duration, 1)}
	go cc.read(c.ctx)
	return cc
}

// read reads the connection's frames into events; a pause stops it reading for a
// while.
func (cc *chaosConn) read(ctx context.Context) {
	for {
		select {
		case d := <-cc.paused:
			time.Sleep(d) // the stall is the behaviour under test: a client that does not read
		default:
		}
		_, data, err := cc.ws.Read(ctx)
		e := chaosEvent{err: err}
		if err == nil {
			json.Unmarshal(data, &e.frame)
		}
		select {
		case cc.events <- e:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// reconnect opens a new connection. Without resume, it first reads the replaced one to
// its end (the server closes it with 4001), whose frames come before the new one's.
func (c *chaosClient) reconnect() error {
	next, err := c.dial()
	if errors.Is(err, errDraining) && c.cur != nil {
		if err := c.readToEnd(c.cur); err != nil {
			return err
		}
		return errDraining
	}
	if err != nil {
		return err
	}
	old := c.cur
	c.cur = next
	if old != nil {
		if c.mode.resume {
			go old.ws.CloseNow() // abandoned: its frames come again after last_seq
		} else if err := c.readToEnd(old); err != nil {
			return err
		}
	}
	c.joined, c.quiet = false, false
	for _, id := range c.pending { // the server runs them only if it never got them
		c.send(id)
	}
	return nil
}

// readToEnd handles a connection's frames until it ends.
func (c *chaosClient) readToEnd(cc *chaosConn) error {
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case e := <-cc.events:
			if e.err != nil {
				c.countEnd(cc, e.err)
				return nil
			}
			if err := c.handle(e.frame); err != nil {
				return err
			}
		case <-deadline.C:
			return errors.New("a replaced connection was not closed within 30 s")
		}
	}
}

func (c *chaosClient) send(id string) {
	data, _ := json.Marshal(map[string]any{"type": "query", "query": c.texts[id], "query_id": id})
	c.cur.ws.Write(c.ctx, websocket.MessageText, data)
}

func (c *chaosClient) sendCancel(id string) {
	c.stats.cancels.Add(1)
	data, _ := json.Marshal(map[string]any{"type": "cancel", "query_id": id})
	c.cur.ws.Write(c.ctx, websocket.MessageText, data)
}

// handle takes one frame: connected, a refusal, or a numbered frame of the session.
func (c *chaosClient) handle(f frame) error {
	switch f.str("type") {
	case "keepalive", "pong":
		return nil
	case "connected":
		if c.mode.resume && c.epoch != "" {
			c.stats.resumes.Add(1)
			if f["resumed"] != true {
				c.stats.gapResumes.Add(1)
			}
		}
		c.epoch = f.str("epoch")
		c.evicted += f.num("evicted") // with those of a connection that delivered no frame
		c.joined = true
		c.stats.announced.Add(int64(c.evicted))
		return nil
	case "error":
		if f["seq"] == nil {
			if f.str("code") == "unknown_query" || f.str("code") == "unavailable" {
				return nil // a cancel after the end; a query refused by the drain
			}
			return fmt.Errorf("a refusal: %v", f)
		}
	}
	c.account(f.num("seq"))
	return c.record(f)
}

// account checks a numbered frame's seq against the last: a gap is a loss, and right
// after connected it must be exactly the announced evictions (BUF-8).
func (c *chaosClient) account(seq int) {
	if seq <= c.lastSeq {
		c.stats.duplicated.Add(1)
		return
	}
	gap := seq - c.lastSeq - 1
	c.stats.lost.Add(int64(gap))
	if (c.joined && gap != c.evicted) || (!c.joined && gap != 0) {
		c.stats.misannounced.Add(1)
	}
	c.lastSeq, c.joined, c.evicted = seq, false, 0
	c.stats.frames.Add(1)
}

// record files a numbered frame under its query.
func (c *chaosClient) record(f frame) error {
	id := f.str("query_id")
	end, ended := c.ends[id]
	if f["replayed"] == true {
		c.stats.replays.Add(1)
		if !ended && !c.mode.lossy {
			return fmt.Errorf("query %s: a replay %v before its end", id, f)
		}
		if ended && (end.str("type") != f.str("type") || end.str("full_response") != f.str("full_response") || end.str("code") != f.str("code")) {
			return fmt.Errorf("query %s: replay %v differs from its end %v", id, f, end)
		}
		c.finish(id, f)
		return nil
	}
	if ended {
		return fmt.Errorf("query %s: %v after its end %v (STREAM-1)", id, f, end)
	}
	c.frames[id] = append(c.frames[id], f)
	if t := f.str("type"); t == "complete" || t == "error" {
		switch f.str("code") {
		case "cancelled":
			c.stats.cancelled.Add(1)
		case "unavailable":
			c.stats.unavailable.Add(1)
		}
		c.finish(id, f)
	}
	return nil
}

func (c *chaosClient) finish(id string, end frame) {
	if _, ok := c.ends[id]; !ok {
		c.ends[id] = end
	}
	c.pending = slices.DeleteFunc(c.pending, func(p string) bool { return p == id })
}

// submit sends a new query.
func (c *chaosClient) submit(id, text string) {
	c.texts[id] = text
	c.pending = append(c.pending, id)
	if c.stats.queries.Add(1) == c.stats.sentMark && c.stats.sent != nil {
		close(c.stats.sent)
	}
	c.send(id)
}

// resendSome sends a known query_id again: one that runs or waits (QID-3), or one that
// finished (QID-4).
func (c *chaosClient) resendSome() {
	ids := make([]string, 0, len(c.texts))
	for id := range c.texts {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	c.stats.resent.Add(1)
	c.send(ids[c.rng.IntN(len(ids))])
}

func (c *chaosClient) after(spread [2]int) time.Duration {
	return time.Duration(spread[0]+c.rng.IntN(spread[1])) * time.Millisecond
}

// run sends queries one step at a time: a query, sometimes a second pipelined behind
// it, and waits until both end, while the chaos goes on. It returns errDraining when
// the server drained.
func (c *chaosClient) run(queries int) error {
	defer func() {
		if c.cur != nil {
			c.cur.ws.CloseNow()
		}
	}()
	if err := c.reconnect(); err != nil {
		return err
	}
	chaos := time.NewTimer(c.after(c.mode.pace))
	defer chaos.Stop()
	for i := range queries {
		id := fmt.Sprintf("q%d", i)
		text := fmt.Sprintf("__slow__ %s of %s", id, c.sid)
		stall := c.rng.Float64() < c.mode.stall
		switch {
		case stall: // a fast answer of some 200 KB of frames, more than the socket buffers hold, that the client does not read
			text = fmt.Sprintf("%s %s", id, strings.Repeat("stall ", 16000))
		case i%2 == 1: // a fast answer of 100 chunks: a burst for the one-frame send queue
			text = fmt.Sprintf("%s %s", id, strings.Repeat("burst ", 100))
		}
		c.submit(id, text)
		if stall {
			c.stallReading()
			chaos.Reset(c.after(c.mode.pace)) // the drop is the chaos of this step
		}
		cancelAt := time.NewTimer(time.Hour)
		if !c.quiet && c.rng.Float64() < c.mode.cancel {
			c.submit(id+"b", "pipelined "+id)
			if c.rng.IntN(2) == 0 {
				c.sendCancel(id + "b") // queued, most likely (CANCEL-2)
			}
			cancelAt.Reset(time.Duration(c.rng.IntN(300)) * time.Millisecond)
		}
		if err := c.await(chaos, cancelAt); err != nil {
			return err
		}
		c.quiet = false
		cancelAt.Stop()
	}
	return nil
}

// await handles events until no query is pending.
func (c *chaosClient) await(chaos, cancelAt *time.Timer) error {
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	for len(c.pending) > 0 {
		select {
		case e := <-c.cur.events:
			if e.err == nil {
				if err := c.handle(e.frame); err != nil {
					return err
				}
				if !c.quiet && c.rng.Float64() < c.mode.dup {
					c.resendSome()
				}
				continue
			}
			c.countEnd(c.cur, e.err)
			c.cur = nil // it ended: nothing more to read from it
			if err := c.reconnect(); err != nil {
				return err
			}
		case <-cancelAt.C:
			if c.quiet {
				continue
			}
			c.sendCancel(c.pending[c.rng.IntN(len(c.pending))])
		case <-chaos.C:
			if !c.mode.takeovers {
				continue
			}
			if c.mode.abrupt && c.rng.IntN(2) == 0 {
				c.stats.aborts.Add(1)
				c.cur.ws.CloseNow()
			} else {
				c.stats.takeovers.Add(1)
			}
			if err := c.reconnect(); err != nil {
				return err
			}
			chaos.Reset(c.after(c.mode.pace))
		case <-deadline.C:
			return fmt.Errorf("queries %v did not finish within a minute; last seq %d", c.pending, c.lastSeq)
		}
	}
	return nil
}

// countEnd counts the end of a connection that the client stalled other than by a
// takeover or the drain: the server dropped it as a slow consumer (4002), a close frame
// that cannot reach a client that does not read.
func (c *chaosClient) countEnd(cc *chaosConn, err error) {
	if code := websocket.CloseStatus(err); cc.stalled.Load() && code != 4001 && code != websocket.StatusGoingAway {
		c.stats.slowCloses.Add(1)
	}
}

// stallReading stops reading the connection for longer than the server's write
// timeout, sending nothing meanwhile: when a stream is under way, the server's writer
// stalls on the small socket buffers and drops the client as a slow consumer, and the
// client then reads what was written before the drop and the connection's end. It
// sends nothing more on the connection (quiet): a frame sent to a socket the server
// closed is answered with a TCP reset, which discards what the client had not read
// yet, as a dying connection may in the core protocol (section 9.1).
func (c *chaosClient) stallReading() {
	c.quiet = true
	c.cur.stalled.Store(true)
	c.cur.paused <- chaosStall
	time.Sleep(chaosStall) // not reading, not sending: a client that stalled
}

// readBuffer reads what the session buffered after the drain closed the client's
// connection, as the next connection would get it.
func (c *chaosClient) readBuffer() error {
	c.joined = true
	for _, data := range c.s.BufferedFrames(c.sid) {
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			return err
		}
		if err := c.handle(f); err != nil {
			return err
		}
	}
	return nil
}

// check checks every stream (STREAM-1 to STREAM-5): whole and in order, or cut short by
// its cancel; a query that has no frame at all never reached the server (its
// connection was replaced or drained first). The lossy variant checks seqs only.
func (c *chaosClient) check() error {
	if c.mode.lossy {
		return nil
	}
	for id, text := range c.texts {
		fs := c.frames[id]
		if len(fs) == 0 && len(c.pending) > 0 {
			continue // sent, then the drain came
		}
		if err := checkChaosStream(fs, "Echo: "+text); err != nil {
			return fmt.Errorf("query %s: %w", id, err)
		}
	}
	return nil
}

// checkChaosStream checks one query's frames: query_start, chunks 1..N, then complete;
// or, for a cancelled query, an error with code cancelled after chunks 1..k, with or
// without query_start (CANCEL-1, CANCEL-2).
func checkChaosStream(fs []frame, answer string) error {
	if len(fs) == 0 {
		return errors.New("no frame")
	}
	last := fs[len(fs)-1]
	if last.str("type") == "error" && last.str("code") == "cancelled" && len(fs) == 1 {
		return nil // cancelled while queued
	}
	if last.str("type") == "error" && last.str("code") == "unavailable" && len(fs) == 1 {
		return nil // ended before its query_start as the node to run it stopped
	}
	if len(fs) < 2 || fs[0].str("type") != "query_start" {
		return fmt.Errorf("%d frames, the first %v: want query_start first", len(fs), fs[0])
	}
	var text strings.Builder
	for i, f := range fs[1 : len(fs)-1] {
		if f.str("type") != "chunk" || f.num("chunk_number") != i+1 {
			return fmt.Errorf("frame %d is %v, want chunk %d", i+1, f, i+1)
		}
		text.WriteString(f.str("content"))
	}
	if last.str("type") == "error" && (last.str("code") == "cancelled" || last.str("code") == "unavailable") {
		return nil // cancelled, or ended as its node stopped (a drain's timeout, a kill)
	}
	if last.str("type") != "complete" || last.num("total_chunks") != len(fs)-2 || last.str("full_response") != answer || text.String() != answer {
		return fmt.Errorf("ends with %v after %d chunks: want complete with %q", last, len(fs)-2, answer)
	}
	return nil
}

// smallBuffer is the kernel socket buffer of both ends of a chaos connection, in
// bytes: together they hold some 60 KB on loopback (the defaults hold megabytes), so a
// client that stops reading a stall answer stalls the server's writer.
const smallBuffer = 16 << 10

// startChaos runs a server like start, whose connections write through small socket
// buffers.
func startChaos(t *testing.T, edit func(*server.Config)) *testServer {
	t.Helper()
	return smallSockets(t, smallBuffer, edit)
}

// smallBuffersClient dials connections with a small receive buffer.
var smallBuffersClient = smallReadClient(smallBuffer)
