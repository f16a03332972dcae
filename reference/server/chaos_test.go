package server_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentws/agentws/reference/server"
)

var chaosFull = flag.Bool("chaos.full", os.Getenv("AGENTWS_CHAOS") == "full",
	"run TestChaos at full size: 1000 queries and at least 1000 forced drops (also AGENTWS_CHAOS=full)")

// chaosStats counts what happened over all clients.
type chaosStats struct {
	queries, frames, aborts, takeovers, slowCloses, resumes, gapResumes, lost, duplicated atomic.Int64
}

func (s *chaosStats) String() string {
	return fmt.Sprintf("%d queries, %d frames, %d forced drops (%d abrupt, %d takeovers, %d slow-consumer closes), %d resumes, %d resumes with a gap, %d frames lost, %d duplicated",
		s.queries.Load(), s.frames.Load(), s.drops(), s.aborts.Load(), s.takeovers.Load(),
		s.slowCloses.Load(), s.resumes.Load(), s.gapResumes.Load(), s.lost.Load(), s.duplicated.Load())
}

func (s *chaosStats) drops() int64 { return s.aborts.Load() + s.takeovers.Load() + s.slowCloses.Load() }

// TestChaos runs many clients, each streaming queries one after another, while their
// connections are dropped at random moments: abrupt TCP closes, takeovers by a new
// connection, and slow-consumer closes (a small send queue against fast answers). Each
// client resumes with last_seq and resends an unfinished query with its query_id. In
// the end every client must hold every frame of every query exactly once, in order.
func TestChaos(t *testing.T) {
	clients, queries := 4, 6
	if *chaosFull {
		clients, queries = 25, 40
	}
	s := start(t, func(c *server.Config) { c.SendQueue = 8 })
	stats := &chaosStats{}
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Go(func() {
			cl := &chaosClient{s: s, sid: fmt.Sprintf("%s-%d", newSession(t), i), stats: stats,
				rng: rand.New(rand.NewPCG(uint64(i), 42)), frames: map[string][]frame{}}
			if err := cl.run(queries); err != nil {
				errs <- fmt.Errorf("client %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Log(stats)
	if stats.lost.Load() != 0 || stats.duplicated.Load() != 0 || stats.gapResumes.Load() != 0 {
		t.Errorf("frames lost or duplicated: %s", stats)
	}
	if *chaosFull && (stats.queries.Load() < 1000 || stats.drops() < 1000) {
		t.Errorf("full size needs at least 1000 queries and 1000 forced drops: %s", stats)
	}
}

type chaosClient struct {
	s     *testServer
	sid   string
	stats *chaosStats
	rng   *rand.Rand

	ws      *websocket.Conn
	gen     int
	events  chan chaosEvent
	epoch   string
	lastSeq int
	frames  map[string][]frame // by query_id, in seq order, replays aside
}

type chaosEvent struct {
	gen   int
	frame frame
	err   error
}

// connect opens a connection, resuming after lastSeq; the old one, if any, is
// abandoned (a takeover) and its frames ignored from now on.
func (c *chaosClient) connect(ctx context.Context) error {
	q := "session_id=" + c.sid
	if c.epoch != "" {
		q += fmt.Sprintf("&last_seq=%d&epoch=%s", c.lastSeq, c.epoch)
	}
	ws, _, err := websocket.Dial(ctx, c.s.wsURL(q), nil)
	if err != nil {
		return err
	}
	ws.SetReadLimit(-1)
	if c.ws != nil {
		go c.ws.CloseNow() // abandoned; the server has closed it with 4001 already, or will
	}
	c.ws, c.gen = ws, c.gen+1
	gen, events := c.gen, c.events
	go func() {
		for {
			_, data, err := ws.Read(context.Background())
			if err != nil {
				events <- chaosEvent{gen: gen, err: err}
				return
			}
			var f frame
			json.Unmarshal(data, &f)
			events <- chaosEvent{gen: gen, frame: f}
		}
	}()
	return nil
}

// handle takes one frame: connected, or a numbered frame of the session.
func (c *chaosClient) handle(f frame) error {
	switch f.str("type") {
	case "keepalive", "pong":
		return nil
	case "connected":
		if c.epoch != "" {
			c.stats.resumes.Add(1)
			if f["resumed"] != true {
				c.stats.gapResumes.Add(1)
			}
		}
		c.epoch = f.str("epoch")
		return nil
	case "error":
		if f["seq"] == nil {
			return fmt.Errorf("a refusal: %v", f)
		}
	}
	seq := f.num("seq")
	switch {
	case seq <= c.lastSeq:
		c.stats.duplicated.Add(1)
		return nil
	case seq > c.lastSeq+1:
		c.stats.lost.Add(int64(seq - c.lastSeq - 1))
	}
	c.lastSeq = seq
	c.stats.frames.Add(1)
	if f["replayed"] != true {
		id := f.str("query_id")
		c.frames[id] = append(c.frames[id], f)
	}
	return nil
}

// finished reports whether query id has its terminal frame.
func (c *chaosClient) finished(id string) bool {
	fs := c.frames[id]
	return len(fs) > 0 && (fs[len(fs)-1].str("type") == "complete" || fs[len(fs)-1].str("type") == "error")
}

func (c *chaosClient) run(queries int) error {
	ctx := context.Background()
	c.events = make(chan chaosEvent, 4096)
	if err := c.connect(ctx); err != nil {
		return err
	}
	defer func() { c.ws.CloseNow() }()
	texts := map[string]string{}
	// The drops come at random moments, whatever is streaming then.
	chaos := time.NewTimer(time.Duration(20+c.rng.IntN(200)) * time.Millisecond)
	defer chaos.Stop()
	for i := range queries {
		id := fmt.Sprintf("q%d", i)
		text := fmt.Sprintf("__slow__ %s of %s", id, c.sid)
		if i%2 == 1 { // a fast answer of some 40 chunks: a burst for the small send queue
			text = fmt.Sprintf("%s %s", id, strings.Repeat("burst ", 100))
		}
		texts[id] = text
		c.stats.queries.Add(1)
		send := func() error {
			data, _ := json.Marshal(map[string]any{"type": "query", "query": text, "query_id": id})
			return c.ws.Write(ctx, websocket.MessageText, data)
		}
		send()
		deadline := time.NewTimer(60 * time.Second)
		for !c.finished(id) {
			select {
			case e := <-c.events:
				if e.gen != c.gen {
					continue // an abandoned connection's
				}
				if e.err == nil {
					if err := c.handle(e.frame); err != nil {
						return err
					}
					continue
				}
				if websocket.CloseStatus(e.err) == 4002 {
					c.stats.slowCloses.Add(1)
				}
				if err := c.connect(ctx); err != nil {
					return err
				}
				send() // the server runs it only if it never got it
			case <-chaos.C:
				if c.rng.IntN(2) == 0 {
					c.stats.aborts.Add(1)
					c.ws.CloseNow()
				} else {
					c.stats.takeovers.Add(1)
				}
				if err := c.connect(ctx); err != nil {
					return err
				}
				send()
				chaos.Reset(time.Duration(20+c.rng.IntN(300)) * time.Millisecond)
			case <-deadline.C:
				return fmt.Errorf("query %s did not finish within a minute; last seq %d", id, c.lastSeq)
			}
		}
		deadline.Stop()
	}
	for id, text := range texts {
		if err := checkChaosStream(c.frames[id], "Echo: "+text); err != nil {
			return fmt.Errorf("query %s: %w", id, err)
		}
	}
	return nil
}

// checkChaosStream checks one query's frames: query_start, chunks 1..N, complete.
func checkChaosStream(fs []frame, answer string) error {
	if len(fs) < 2 || fs[0].str("type") != "query_start" {
		return fmt.Errorf("%d frames, the first %v: want query_start first", len(fs), fs)
	}
	var text strings.Builder
	for i, f := range fs[1 : len(fs)-1] {
		if f.str("type") != "chunk" || f.num("chunk_number") != i+1 {
			return fmt.Errorf("frame %d is %v, want chunk %d", i+1, f, i+1)
		}
		text.WriteString(f.str("content"))
	}
	last := fs[len(fs)-1]
	if last.str("type") != "complete" || last.num("total_chunks") != len(fs)-2 || last.str("full_response") != answer || text.String() != answer {
		return fmt.Errorf("ends with %v after %d chunks: want complete with %q", last, len(fs)-2, answer)
	}
	return nil
}
