package server_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// mutate returns a random corruption of a valid client message, still UTF-8.
func mutate(r *rand.Rand) []byte {
	seeds := []string{
		`{"type":"query","query":"hello","session_id":"x"}`,
		`{"type":"ping"}`,
		`{"type":"cancel","query_id":"q1"}`,
		`{"type":"query","query":"hi","include_context":true,"system_prompt":"be brief"}`,
	}
	b := []byte(seeds[r.IntN(len(seeds))])
	for range 1 + r.IntN(4) {
		switch i := r.IntN(len(b)); r.IntN(4) {
		case 0:
			b[i] = byte(r.IntN(128)) // ASCII: a frame that is not UTF-8 closes the connection (ENV-8)
		case 1:
			b = append(b[:i], b[i+1:]...)
		case 2:
			const junk = "{}[]\":,\\0"
			b = append(b[:i], append([]byte{junk[r.IntN(len(junk))]}, b[i:]...)...)
		case 3:
			b = b[:i]
		}
		if len(b) == 0 {
			b = []byte{'{'}
		}
	}
	return b
}

// Hostile input: random corruptions of valid messages. Every frame the server sends is
// valid against its schema (the client checks), the connection stays usable, and the
// server keeps serving others.
func attackHostileFrames(t *testing.T) {
	s := start(t, nil)
	c, _ := s.connect(t, "session_id="+newSession(t))
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		c.sendRaw(websocket.MessageText, mutate(r))
		c.send(map[string]any{"type": "ping", "n": i})
		for {
			f := c.next()
			if f.str("type") == "pong" {
				break
			}
			if f.str("type") == "error" && f.str("code") == "" {
				t.Fatalf("error without a code: %v", f)
			}
		}
	}
	s.stillServes(t)
}

// A session's frames never reach another user, not even while its owner is away.
func TestNoSessionLeakToAnotherUser(t *testing.T) {
	s := start(t, nil)
	sid := newSession(t)
	owner, _ := s.connect(t, "session_id="+sid+"&user_id=alice")
	owner.send(query(slowQuery))
	owner.expect("query_start")
	owner.ws.CloseNow()
	eventually(t, "the drop is noticed", func() bool { return s.health(t).ActiveConnections == 0 })
	for _, q := range []string{"&user_id=mallory", "", "&user_id=alice%20"} {
		if status, _ := s.refused(t, "session_id="+sid+q, nil); status/100 != 4 {
			t.Errorf("%q: got %d, want a refusal", q, status)
		}
	}
	back, _ := s.connect(t, "session_id="+sid+"&user_id=alice")
	for {
		if f := back.next(); f.str("type") == "complete" {
			if !strings.HasPrefix(f.str("full_response"), "Echo: __slow__") {
				t.Errorf("got %v", f)
			}
			break
		}
	}
}
