package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentws/agentws/reference/server"
)

// slowRate is a query rate so low that no query comes back during a test: a second
// query would take 1000 s, so what a test sees is the burst alone.
const slowRate = 0.001

// rateLimited checks that f refuses queryID with rate_limited (STREAM-11) and a wait
// of about the rate's 1000 s.
func rateLimited(t *testing.T, what string, f frame, queryID string) {
	t.Helper()
	if f.str("type") != "error" || f.str("code") != "rate_limited" || f.str("query_id") != queryID {
		t.Fatalf("%s: got %v, want error rate_limited for query %q", what, f, queryID)
	}
	if ms := f.num("retry_after_ms"); ms < 990_000 || ms > 1_000_000 {
		t.Errorf("%s: retry_after_ms %d, want about 1000 s, when the next query is allowed", what, ms)
	}
	if !strings.Contains(f.str("error"), "0.001 a second") {
		t.Errorf("%s: message %q does not name the rate", what, f.str("error"))
	}
}

// STREAM-11: a client gets its burst of queries, then rate_limited for each more, and
// the refused ones do not run; the allowance is the address's, so a new session or a
// reconnection does not restore it; a query whose query_id the session knows is
// replayed, not counted; the refusals are counted by code.
func TestQueryRate(t *testing.T) {
	s := start(t, func(c *server.Config) { c.QueryRate, c.QueryBurst = slowRate, 3 })
	sid := newSession(t)
	c, _ := s.connect(t, "session_id="+sid)
	for i := range 3 {
		c.send(map[string]any{"type": "query", "query": "hello", "query_id": fmt.Sprint("q", i)})
		checkStream(t, c.stream())
	}
	c.send(map[string]any{"type": "query", "query": "one too many", "query_id": "q3"})
	rateLimited(t, "the query after the burst", c.next(), "q3")
	// It did not run: a ping's pong comes next, and the same query_id later is no replay.
	c.send(ping)
	c.expect("pong")

	c.send(map[string]any{"type": "query", "query": "hello", "query_id": "q2"})
	if f := c.next(); f.str("type") != "complete" || f["replayed"] != true {
		t.Errorf("a finished query sent again: got %v, want its complete replayed, not counted", f)
	}

	c.ws.CloseNow()
	again, _ := s.connect(t, "session_id="+sid)
	again.send(map[string]any{"type": "query", "query": "after reconnecting", "query_id": "q4"})
	rateLimited(t, "after reconnecting", again.next(), "q4")

	other, _ := s.connect(t, "session_id="+newSession(t))
	other.send(map[string]any{"type": "query", "query": "from a new session", "query_id": "q5"})
	rateLimited(t, "a new session of the same address", other.next(), "q5")

	_, samples := scrape(t, s.URL+"/metrics")
	if got := samples[`agentws_client_frames_refused_total{code="rate_limited"}`]; got != 3 {
		t.Errorf("refusals counted: %v, want 3", got)
	}
}

// STREAM-11: every well-formed query counts, those refused with busy too; a query over
// the rate is refused with rate_limited, not busy.
func TestQueryRateCountsRefusedQueries(t *testing.T) {
	gate := make(chan struct{})
	s := start(t, func(c *server.Config) {
		c.QueryRate, c.QueryBurst = slowRate, 3
		c.QueueDepth = 1
		c.Agent = gated{gate}
	})
	c, _ := s.connect(t, "session_id="+newSession(t))
	c.send(query("runs"))
	c.expect("query_start")
	c.send(query("waits"))
	c.send(map[string]any{"type": "query", "query": "no room", "query_id": "busy"})
	if f := c.next(); f.str("code") != "busy" {
		t.Fatalf("the third query: got %v, want busy", f)
	}
	c.send(map[string]any{"type": "query", "query": "over the rate", "query_id": "over"})
	rateLimited(t, "the fourth query", c.next(), "over")
	close(gate)
	checkStream(t, append([]frame{{"type": "query_start"}}, c.stream()...))
	checkStream(t, c.stream())
}

// STREAM-11 with authentication: the allowance is the user's, whatever the address;
// two users of one address each have their own.
func TestQueryRatePerUser(t *testing.T) {
	s := start(t, func(c *server.Config) {
		c.QueryRate, c.QueryBurst = slowRate, 1
		c.Auth = &server.Auth{Secret: secret, Issuer: "agentws-tests", Audience: "agentws"}
	})
	alice := token(t, secret, valid("alice"))
	bob := token(t, secret, valid("bob"))
	a, _ := s.connect(t, "session_id="+newSession(t)+"&access_token="+alice)
	a.send(query("alice's first"))
	checkStream(t, a.stream())
	a.send(map[string]any{"type": "query", "query": "alice's second", "query_id": "a2"})
	rateLimited(t, "alice's second query", a.next(), "a2")

	b, _ := s.connect(t, "session_id="+newSession(t)+"&access_token="+bob)
	b.send(query("bob's first"))
	checkStream(t, b.stream())

	a2, _ := s.connect(t, "session_id="+newSession(t)+"&access_token="+alice)
	a2.send(map[string]any{"type": "query", "query": "alice, another session", "query_id": "a3"})
	rateLimited(t, "alice's other session", a2.next(), "a3")
}

// -query-rate 0 bounds nothing: a client may send far more than a burst.
func TestQueryRateOff(t *testing.T) {
	s := start(t, func(c *server.Config) { c.QueryRate, c.QueryBurst = 0, 0 })
	c, _ := s.connect(t, "session_id="+newSession(t))
	for range 300 {
		c.send(query("hello"))
		checkStream(t, c.stream())
	}
}

// The rate's settings are checked when the server is made.
func TestQueryRateSettings(t *testing.T) {
	for _, tt := range []struct {
		rate  float64
		burst int
		want  string
	}{
		{-1, 10, "query rate must be 0 (none) or a positive number of queries a second, not -1"},
		{5, 0, "query burst must be at least 1 when the query rate is bounded, not 0"},
	} {
		cfg := server.DefaultConfig()
		cfg.QueryRate, cfg.QueryBurst = tt.rate, tt.burst
		if _, err := server.New(cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("rate %v, burst %d: got %v, want %q", tt.rate, tt.burst, err, tt.want)
		}
	}
}

// A client that sends many frames at once and reads every answer is not a slow
// consumer, however far the server's writer falls behind its reader: each over the
// rate gets its rate_limited, each ping its pong, and the connection stays open (4002
// is for a client that does not read).
func TestPipelinedFramesAreAllAnswered(t *testing.T) {
	s := start(t, func(c *server.Config) { c.QueryRate, c.QueryBurst = slowRate, 1 })
	c, _ := s.connect(t, "session_id="+newSession(t))
	c.send(query("the one query of the burst"))
	checkStream(t, c.stream())
	const n = 2000
	sent := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for i := range n {
			frame := `{"type":"ping"}`
			if i%2 == 0 {
				frame = fmt.Sprintf(`{"type":"query","query":"over the rate","query_id":"q%d"}`, i)
			}
			if err := c.ws.Write(ctx, websocket.MessageText, []byte(frame)); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	limited, pongs := 0, 0
	for limited+pongs < n {
		f, err := c.read()
		if err != nil {
			t.Fatalf("after %d rate_limited and %d pongs of %d: %v (close status %d)", limited, pongs, n/2, err, websocket.CloseStatus(err))
		}
		switch {
		case f.str("code") == "rate_limited":
			limited++
		case f.str("type") == "pong":
			pongs++
		default:
			t.Fatalf("got %v, want rate_limited or pong", f)
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if limited != n/2 || pongs != n/2 {
		t.Errorf("%d rate_limited and %d pongs, want %d of each", limited, pongs, n/2)
	}
}

// At a vanishing rate the wait is infinite: retry_after_ms says a day, the bound, not
// an overflow.
func TestQueryRateRetryAfterBound(t *testing.T) {
	s := start(t, func(c *server.Config) { c.QueryRate, c.QueryBurst = 1e-12, 1 })
	c, _ := s.connect(t, "session_id="+newSession(t))
	c.send(query("the burst"))
	checkStream(t, c.stream())
	c.send(query("one more"))
	if f := c.expect("error"); f.str("code") != "rate_limited" || f.num("retry_after_ms") != 86_400_000 {
		t.Errorf("got %v, want rate_limited with retry_after_ms 86400000 (a day)", f)
	}
}
