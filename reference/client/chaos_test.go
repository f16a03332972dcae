package client_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentws/agentws/reference/agent"
	"github.com/agentws/agentws/reference/client"
	"github.com/agentws/agentws/reference/clustertest"
	"github.com/agentws/agentws/reference/server"
)

var chaosDrops = flag.Int("chaos.drops", 1000, "TestChaosDrops: how many connections to cut at least")

// TestChaosDrops drives clients through -chaos.drops forced drops: a TCP proxy between
// them and the reference server cuts every connection it relays, again and again,
// while each client asks query after query. Every answer must arrive whole, once: the
// chunks a caller ranges over are exactly the fixture's answer, and so is the result.
func TestChaosDrops(t *testing.T) {
	url := startServer(t, func(c *server.Config) {
		c.Agent = agent.Fixture{Delay: time.Millisecond, ChunkRunes: 3}
		c.QueryRate = 0 // four clients of one address ask far more than the default 5 a second
	})
	proxy := clustertest.StartProxy(t, strings.TrimSuffix(strings.TrimPrefix(url, "ws://"), "/ws"))
	var connected, sentQueries atomic.Int64
	onFrame := func(dir client.Direction, raw []byte) {
		switch {
		case dir == client.Received && strings.Contains(string(raw), `"type":"connected"`):
			connected.Add(1)
		case dir == client.Sent && strings.Contains(string(raw), `"type":"query"`):
			sentQueries.Add(1)
		}
	}
	const clients, pipelined = 4, 2
	var cs []*client.Client
	for i := range clients {
		cs = append(cs, dial(t, "ws://"+proxy.Addr+"/ws", client.Options{
			SessionID: fmt.Sprintf("chaos-%d", i),
			Backoff:   client.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond},
			OnFrame:   onFrame,
		}))
	}
	var drops, answers atomic.Int64
	done := make(chan struct{})
	var cutter sync.WaitGroup
	cutter.Go(func() {
		for {
			// The pace of the chaos: a cut every 1 to 8 ms, whatever the clients do.
			select {
			case <-done:
				return
			case <-time.After(time.Duration(1+rand.IntN(8)) * time.Millisecond):
			}
			drops.Add(int64(proxy.Cut()))
		}
	})
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() {
			for n := 0; drops.Load() < int64(*chaosDrops) && !t.Failed(); n++ {
				var qs []*client.Query
				var texts []string
				for j := range pipelined {
					text := fmt.Sprintf("client %d, query %d.%d: %s", i, n, j, strings.Repeat("words ", rand.IntN(12)))
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					qs, texts = append(qs, c.Query(ctx, text)), append(texts, text)
				}
				for j, q := range qs {
					got, err := collect(q)
					want := "Echo: " + texts[j]
					if err != nil || got != want {
						t.Errorf("after %d drops, query %s: chunks %q, %v; want %q", drops.Load(), q.ID(), got, err, want)
						return
					}
					if a, err := q.Result(); err != nil || a.Text != want {
						t.Errorf("query %s: result %+v, %v; want %q", q.ID(), a, err, want)
						return
					}
					answers.Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(done)
	cutter.Wait()
	elapsed := time.Since(start)
	t.Logf("%d answers whole, once, across %d forced drops and %d connections (%d query frames sent for them) in %v",
		answers.Load(), drops.Load(), connected.Load(), sentQueries.Load(), elapsed.Round(time.Millisecond))
	if drops.Load() < int64(*chaosDrops) {
		t.Errorf("%d drops, want at least %d", drops.Load(), *chaosDrops)
	}
}
