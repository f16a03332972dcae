package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentws/agentws/reference/redistest"
	"github.com/agentws/agentws/reference/server"
)

// fleet is many connections of sessions fleetBase-0, -1, ..., spread over nodes.
type fleet struct {
	ids   []string
	conns []*websocket.Conn
}

// dialFleet connects n sessions, each read up to its connected frame, spread over
// nodes, dialling a few at a time.
func dialFleet(tb testing.TB, base string, n int, nodes []*testServer) *fleet {
	tb.Helper()
	f := &fleet{ids: make([]string, n), conns: make([]*websocket.Conn, n)}
	errs := make(chan error, n)
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i := range n {
		f.ids[i] = fmt.Sprintf("%s-%04d", base, i)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ws, _, err := websocket.Dial(ctx, nodes[i%len(nodes)].wsURL("session_id="+f.ids[i]), nil)
			if err != nil {
				errs <- fmt.Errorf("dial %s: %w", f.ids[i], err)
				return
			}
			f.conns[i] = ws
			if typ, err := nextType(ws, 10*time.Second); err != nil || typ["type"] != "connected" {
				errs <- fmt.Errorf("%s: %v %v, want connected", f.ids[i], typ, err)
			}
		}()
	}
	wg.Wait()
	tb.Cleanup(func() {
		for _, c := range f.conns {
			if c != nil {
				c.CloseNow()
			}
		}
	})
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
	return f
}

// nextType reads the next frame that is not a keepalive, within d (a guard against a
// hang, not a timing check).
func nextType(ws *websocket.Conn, d time.Duration) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			return nil, err
		}
		var f map[string]any
		if err := json.Unmarshal(data, &f); err != nil {
			return nil, err
		}
		if f["type"] != "keepalive" {
			return f, nil
		}
	}
}

// notices reads, on each connection of idx at once, the next want notices, and
// returns their notice ids per connection.
func (f *fleet) notices(idx []int, want int) ([][]string, error) {
	out := make([][]string, len(idx))
	errs := make(chan error, len(idx))
	var wg sync.WaitGroup
	for k, i := range idx {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for len(out[k]) < want {
				m, err := nextType(f.conns[i], 30*time.Second)
				if err != nil {
					errs <- fmt.Errorf("%s: after %v: %w", f.ids[i], out[k], err)
					return
				}
				if m["type"] != "notice" {
					errs <- fmt.Errorf("%s: got %v, want a notice", f.ids[i], m)
					return
				}
				if m["session_id"] != f.ids[i] {
					errs <- fmt.Errorf("%s: notice %v for another session", f.ids[i], m)
					return
				}
				id, _ := m["notice_id"].(string)
				out[k] = append(out[k], id)
			}
		}()
	}
	wg.Wait()
	close(errs)
	return out, <-errs
}

// The proof of section 12.7 at scale: a broadcast to 1,000 sessions reaches each
// exactly once, with the memory store and across two nodes sharing a Redis; excluded
// sessions get nothing; a session without a connection gets it when it reconnects; a
// session deleted through the API is closed and gone; the API refuses without the
// token. How long the broadcast takes is measured by BenchmarkBroadcast.
func TestBroadcastThousand(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 connections: not in -short")
	}
	const n, excluded, offline = 1000, 10, 10
	edit := func(c *server.Config) { c.MaxConnsPerIP, c.MaxConnsPerUser = 0, 0 }
	stores(t, edit, func(t *testing.T, admin *testServer, nodes []*testServer) {
		f := dialFleet(t, newSession(t), n, nodes)
		// The first sessions are excluded, the next ones go offline, the rest stay.
		var exclude []string
		for i := range excluded {
			exclude = append(exclude, f.ids[i])
		}
		var away, stay []int
		for i := excluded; i < n; i++ {
			if i < excluded+offline {
				away = append(away, i)
			} else {
				stay = append(stay, i)
			}
		}
		for _, i := range away {
			f.conns[i].CloseNow()
		}
		eventually(t, "the offline sessions are detached", func() bool {
			for _, i := range away {
				if _, info := admin.sessionInfo(t, f.ids[i]); info.State != "detached" {
					return false
				}
			}
			return true
		})
		if status, data := admin.adminDo(t, "POST", "/admin/broadcast", "", `{"message": "no token"}`, ""); status != 401 {
			t.Fatalf("a broadcast without the token: %d %s, want 401", status, data)
		}
		body, _ := json.Marshal(map[string]any{"message": "Maintenance in 5 minutes", "level": "warning", "exclude_sessions": exclude})
		began := time.Now()
		first := admin.broadcast(t, string(body))
		if first.Sessions != n-excluded {
			t.Errorf("the broadcast reached %d sessions, want %d (all less the excluded)", first.Sessions, n-excluded)
		}
		got, err := f.notices(stay, 1)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d connected sessions had the notice %v after the request was sent (a figure, not a check: see BenchmarkBroadcast)", len(stay), time.Since(began))
		// A second broadcast to all: each connected session's next notice must be it,
		// not a repeat of the first; an excluded session's first notice is it.
		second := admin.broadcast(t, `{"message": "marker"}`)
		if second.Sessions != n {
			t.Errorf("the broadcast to all reached %d sessions, want %d", second.Sessions, n)
		}
		more, err := f.notices(stay, 1)
		if err != nil {
			t.Fatal(err)
		}
		for k, i := range stay {
			if got[k][0] != first.NoticeId || more[k][0] != second.NoticeId {
				t.Errorf("%s got %v then %v, want %s once then %s", f.ids[i], got[k], more[k], first.NoticeId, second.NoticeId)
			}
		}
		ex := make([]int, excluded)
		for i := range ex {
			ex[i] = i
		}
		exGot, err := f.notices(ex, 1)
		if err != nil {
			t.Fatal(err)
		}
		for k, i := range ex {
			if exGot[k][0] != second.NoticeId {
				t.Errorf("excluded %s got %v first, want nothing of %s", f.ids[i], exGot[k], first.NoticeId)
			}
		}
		// The offline sessions get both, once each, in order, when they reconnect.
		for _, i := range away {
			c, _ := nodes[(i+1)%len(nodes)].connect(t, "session_id="+f.ids[i])
			f.conns[i] = c.ws
		}
		back, err := f.notices(away, 2)
		if err != nil {
			t.Fatal(err)
		}
		for k, i := range away {
			if back[k][0] != first.NoticeId || back[k][1] != second.NoticeId {
				t.Errorf("offline %s got %v on reconnect, want [%s %s]", f.ids[i], back[k], first.NoticeId, second.NoticeId)
			}
		}
		// A deleted session is closed with 4003 and gone.
		victim := stay[len(stay)-1]
		if status, data := admin.adminDo(t, "DELETE", "/admin/sessions/"+f.ids[victim], adminToken, "", ""); status != 204 {
			t.Fatalf("DELETE: %d %s", status, data)
		}
		if _, err := nextType(f.conns[victim], 10*time.Second); websocket.CloseStatus(err) != 4003 {
			t.Errorf("the deleted session's connection ended with %v, want close 4003", err)
		}
		if status, _ := admin.sessionInfo(t, f.ids[victim]); status != 404 {
			t.Errorf("GET the deleted session: %d, want 404", status)
		}
		// 999 sessions are left: two pages of 500.
		if l := admin.sessionPage(t, "limit=500"); len(l.Sessions) != 500 || l.Next != l.Sessions[499].SessionId {
			t.Errorf("the first page has %d sessions and next %q, want 500 and the last one's id", len(l.Sessions), l.Next)
		} else if rest := admin.sessionPage(t, "limit=1000&after="+l.Next); len(rest.Sessions) != 499 || rest.Next != "" {
			t.Errorf("the second page has %d sessions and next %q, want the other 499 and none", len(rest.Sessions), rest.Next)
		}
	})
}

// BenchmarkBroadcast measures a broadcast to 1,000 connected sessions: from the
// request to the last session's notice.
func BenchmarkBroadcast(b *testing.B) {
	const n = 1000
	edit := func(c *server.Config) { withAdmin(c); c.MaxConnsPerIP, c.MaxConnsPerUser = 0, 0 }
	run := func(b *testing.B, admin *testServer, nodes []*testServer) {
		f := dialFleet(b, fmt.Sprintf("bench-%d", sessionCounter.Add(1)), n, nodes)
		all := make([]int, n)
		for i := range all {
			all[i] = i
		}
		b.ResetTimer()
		for range b.N {
			done := make(chan error, 1)
			go func() { _, err := f.notices(all, 1); done <- err }()
			admin.broadcast(b, `{"message": "bench"}`)
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/broadcast")
	}
	b.Run("memory", func(b *testing.B) {
		s := start(b, edit)
		run(b, s, []*testServer{s})
	})
	b.Run("redis", func(b *testing.B) {
		r := redistest.Start(b)
		nodes := []*testServer{}
		for _, id := range []string{"a", "b"} {
			nodes = append(nodes, start(b, func(c *server.Config) { edit(c); c.Store, c.NodeID = r.URL(), id }))
		}
		run(b, nodes[0], nodes)
	})
}
