package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentws/agentws/reference/agent"
	"github.com/agentws/agentws/reference/server"
	"github.com/agentws/agentws/tools/agentws-echo/echo"
)

// startReference runs the reference server in-process, without the bounds a load
// from one address would hit (the query rate, the connections per address), edited
// by edit, and returns its URL.
func startReference(t *testing.T, edit func(*server.Config)) string {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.Console = false
	cfg.QueryRate = 0
	cfg.MaxConnsPerIP = 0
	if edit != nil {
		edit(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close) // after the httptest server's: cleanups run last first
	return serve(t, srv)
}

func startEcho(t *testing.T) string { return serve(t, echo.Handler(echo.DefaultReadLimit)) }

// serve serves h behind httptest and returns the ws:// URL of its /ws.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws"
}

// fixtureChunks returns the chunks of the reference fixture agent's answer to q.
func fixtureChunks(t *testing.T, q string) []string {
	t.Helper()
	var chunks []string
	err := agent.Fixture{}.Stream(context.Background(), agent.Request{Query: q}, func(s string) error {
		chunks = append(chunks, s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return chunks
}

// A fault is how the misbehaving server breaks the protocol, once, in its first
// query's stream; the other queries it answers as the fixture agent would.
type fault string

const (
	faultNone    fault = ""
	faultSkip    fault = "skip"    // chunk 2 is not sent
	faultContent fault = "content" // a chunk's content is not the fixture's
	faultInvalid fault = "invalid" // a chunk without chunk_number
	faultStall   fault = "stall"   // query_start, then nothing
	faultError   fault = "error"   // query_start, then an error frame
	faultClose   fault = "close"   // query_start, then close 1011
	faultQueryID fault = "queryid" // the complete carries another query_id
	faultTotal   fault = "total"   // the complete's total_chunks is one more
)

// startFaulty runs a small agentws server that breaks the protocol as f says.
func startFaulty(t *testing.T, f fault) string {
	t.Helper()
	return serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		(&faulty{t: t, c: c, fault: f, session: r.URL.Query().Get("session_id")}).serve(r.Context())
	}))
}

type faulty struct {
	t       *testing.T
	c       *websocket.Conn
	fault   fault
	session string
	queries int
}

func (s *faulty) send(ctx context.Context, m map[string]any) error {
	m["session_id"] = s.session
	m["timestamp"] = time.Now().UTC().Format(time.RFC3339Nano)
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return s.c.Write(ctx, websocket.MessageText, data)
}

func (s *faulty) serve(ctx context.Context) {
	if s.send(ctx, map[string]any{"type": "connected", "message": "hi", "protocol_version": "1.1",
		"capabilities": []string{"query_id", "fixture"}}) != nil {
		return
	}
	for {
		_, data, err := s.c.Read(ctx)
		if err != nil {
			return
		}
		var m struct {
			Type    string `json:"type"`
			Query   string `json:"query"`
			QueryID string `json:"query_id"`
		}
		if err := json.Unmarshal(data, &m); err != nil {
			s.t.Errorf("the load generator sent %q: %v", data, err)
			return
		}
		if m.Type == "disconnect" {
			s.send(ctx, map[string]any{"type": "disconnected"})
			s.c.Close(websocket.StatusNormalClosure, "")
			return
		}
		s.queries++
		f := faultNone
		if s.queries == 1 {
			f = s.fault
		}
		if !s.answer(ctx, m.Query, m.QueryID, f) {
			return
		}
	}
}

// answer streams the answer to one query, broken by f, and reports whether to go on.
func (s *faulty) answer(ctx context.Context, q, id string, f fault) bool {
	if s.send(ctx, map[string]any{"type": "query_start", "query": q, "query_id": id}) != nil {
		return false
	}
	switch f {
	case faultStall: // until the client gives up and closes
		s.c.Read(ctx)
		return false
	case faultError:
		return s.send(ctx, map[string]any{"type": "error", "error": "Query execution failed: no", "code": "query_failed", "query_id": id}) == nil
	case faultClose:
		s.c.Close(websocket.StatusInternalError, "broken")
		return false
	}
	chunks := fixtureChunks(s.t, q)
	n := 0
	for i, content := range chunks {
		m := map[string]any{"type": "chunk", "content": content, "chunk_number": i + 1, "query_id": id}
		switch {
		case f == faultSkip && i == 1:
			continue
		case f == faultContent && i == 0:
			m["content"] = "Ekko: "
		case f == faultInvalid && i == 0:
			delete(m, "chunk_number")
		}
		if s.send(ctx, m) != nil {
			return false
		}
		n++
	}
	full := strings.Join(chunks, "")
	complete := map[string]any{"type": "complete", "full_response": full, "total_chunks": len(chunks), "query_id": id}
	switch f {
	case faultSkip, faultContent, faultInvalid:
		complete["full_response"], complete["total_chunks"] = s.sentContent(chunks, f), n
	case faultQueryID:
		complete["query_id"] = id + "x"
	case faultTotal:
		complete["total_chunks"] = len(chunks) + 1
	}
	return s.send(ctx, complete) == nil
}

// sentContent is the content of the chunks sent under f, which complete confirms:
// the server is consistent with itself, only wrong.
func (s *faulty) sentContent(chunks []string, f fault) string {
	var b strings.Builder
	for i, c := range chunks {
		switch {
		case f == faultSkip && i == 1:
		case f == faultContent && i == 0:
			b.WriteString("Ekko: ")
		default:
			b.WriteString(c)
		}
	}
	return b.String()
}

// startWrongEcho runs an echo server that sends every message back reversed.
func startWrongEcho(t *testing.T) string {
	t.Helper()
	return serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, data, err := c.Read(r.Context())
			if err != nil {
				return
			}
			for i, j := 0, len(data)-1; i < j; i, j = i+1, j-1 {
				data[i], data[j] = data[j], data[i]
			}
			if c.Write(r.Context(), typ, data) != nil {
				return
			}
		}
	}))
}
