package server_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentws/agentws/reference/clustertest"
	"github.com/agentws/agentws/reference/redistest"
)

// BenchmarkStores measures what the Redis store costs against the memory store, on a
// reference server process of each, in one run on one machine: streams clients at
// once each send a query whose answer is 100 chunks and read it whole, round after
// round. It reports the frames written a second, the server process's processor time
// per 1,000 frames (and, for the Redis store, Redis's), and the 99th percentile of the
// time from a query to its first chunk.
//
//	go test ./reference/server -run '^$' -bench BenchmarkStores -benchtime 5s
func BenchmarkStores(b *testing.B) {
	r := redistest.Start(b)
	for _, store := range []string{"memory", "redis"} {
		for _, streams := range []int{50, 200} {
			b.Run(fmt.Sprintf("store=%s/streams=%d", store, streams), func(b *testing.B) {
				args := []string{"-query-rate", "0", "-max-conns-per-ip", "0", "-log-level", "error"}
				if store == "redis" {
					args = append(args, "-store", r.URL())
				}
				// A node id of its own for each process: one that took over a previous
				// process's id would first end what that one left (a restart), which
				// is no part of the streams measured.
				n := clustertest.StartNode(b, fmt.Sprintf("bench-%s-%d", store, time.Now().UnixNano()), args...)
				benchStreams(b, n, r, store == "redis", streams)
			})
		}
	}
}

func benchStreams(b *testing.B, n *clustertest.Node, r *redistest.Server, redis bool, streams int) {
	ctx := context.Background()
	conns := make([]*websocket.Conn, streams)
	for i := range conns {
		ws, _, err := websocket.Dial(ctx, fmt.Sprintf("ws://%s/ws?session_id=bench-%d-%d", n.Addr, streams, i), nil)
		if err != nil {
			b.Fatal(err)
		}
		ws.SetReadLimit(-1)
		if _, _, err := ws.Read(ctx); err != nil { // connected
			b.Fatal(err)
		}
		conns[i] = ws
		defer ws.CloseNow()
	}
	query := []byte(`{"type":"query","query":"bench` + strings.Repeat(" word", 99) + `"}`)
	cpu := func() (node, store time.Duration) {
		node, err := n.CPU()
		if err != nil {
			b.Fatal(err)
		}
		if redis {
			store, _ = clustertest.ProcessCPU(r.Pid())
		}
		return node, store
	}
	node0, store0 := cpu()
	start := time.Now()
	var mu sync.Mutex
	var firsts []time.Duration
	frames := 0
	for b.Loop() {
		var wg sync.WaitGroup
		for _, ws := range conns {
			wg.Go(func() {
				sent := time.Now()
				if err := ws.Write(ctx, websocket.MessageText, query); err != nil {
					b.Error(err)
					return
				}
				var first time.Duration
				count := 0
				for {
					_, data, err := ws.Read(ctx)
					if err != nil {
						b.Error(err)
						return
					}
					count++
					if first == 0 && strings.Contains(string(data), `"type":"chunk"`) {
						first = time.Since(sent)
					}
					if strings.Contains(string(data), `"type":"complete"`) || strings.Contains(string(data), `"type":"error"`) {
						break
					}
				}
				mu.Lock()
				firsts = append(firsts, first)
				frames += count
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	elapsed := time.Since(start)
	node1, store1 := cpu()
	slices.Sort(firsts)
	p99 := firsts[min(len(firsts)-1, len(firsts)*99/100)]
	b.ReportMetric(float64(frames)/elapsed.Seconds(), "frames/s")
	b.ReportMetric(float64((node1-node0).Microseconds())/float64(frames), "server-cpu-ms/1000frames")
	if redis {
		b.ReportMetric(float64((store1-store0).Microseconds())/float64(frames), "redis-cpu-ms/1000frames")
	}
	b.ReportMetric(float64(p99.Microseconds())/1000, "first-chunk-p99-ms")
}
