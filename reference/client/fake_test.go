package client_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"
)

// A fake is a scripted server: each handshake is given to the next of its handlers,
// in order; a handshake beyond them fails the test. It records the handshakes' query
// parameters and headers.
type fake struct {
	t        testing.TB
	URL      string
	mu       sync.Mutex
	handlers []func(h *fakeConn)
	seen     []*http.Request
}

// A fakeConn is one handshake of a fake: Accept makes it a connection.
type fakeConn struct {
	t   testing.TB
	w   http.ResponseWriter
	r   *http.Request
	ws  *websocket.Conn
	ctx context.Context
}

func newFake(t testing.TB, handlers ...func(h *fakeConn)) *fake {
	f := &fake{t: t, handlers: handlers}
	ts := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(ts.Close)
	f.URL = "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws"
	return f
}

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	n := len(f.seen)
	f.seen = append(f.seen, r)
	var h func(*fakeConn)
	if n < len(f.handlers) {
		h = f.handlers[n]
	}
	f.mu.Unlock()
	if h == nil {
		f.t.Errorf("handshake %d: not expected (%s)", n+1, r.URL.RawQuery)
		http.Error(w, "not expected", http.StatusServiceUnavailable)
		return
	}
	h(&fakeConn{t: f.t, w: w, r: r, ctx: r.Context()})
}

// handshakes returns the query parameters of the handshakes so far.
func (f *fake) handshakes() []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []url.Values
	for _, r := range f.seen {
		out = append(out, r.URL.Query())
	}
	return out
}

// accept upgrades the handshake and sends connected with caps (none: a core server).
func (h *fakeConn) accept(connected map[string]any) {
	ws, err := websocket.Accept(h.w, h.r, nil)
	if err != nil {
		h.t.Errorf("accept: %v", err)
		return
	}
	h.ws = ws
	f := map[string]any{"type": "connected", "session_id": h.r.URL.Query().Get("session_id"), "message": "hi", "timestamp": "2026-01-01T00:00:00Z"}
	for k, v := range connected {
		f[k] = v
	}
	h.send(f)
}

func (h *fakeConn) refuse(status int, code string) {
	h.w.Header().Set("Content-Type", "application/json")
	h.w.WriteHeader(status)
	json.NewEncoder(h.w).Encode(map[string]string{"error": "refused by the test", "code": code})
}

func (h *fakeConn) send(f map[string]any) {
	if _, ok := f["timestamp"]; !ok {
		f["timestamp"] = "2026-01-01T00:00:00Z"
	}
	data, _ := json.Marshal(f)
	if err := h.ws.Write(h.ctx, websocket.MessageText, data); err != nil {
		h.t.Errorf("send %s: %v", data, err)
	}
}

// recv reads the next client frame.
func (h *fakeConn) recv() map[string]any {
	_, data, err := h.ws.Read(h.ctx)
	if err != nil {
		h.t.Errorf("recv: %v", err)
		return nil
	}
	var f map[string]any
	json.Unmarshal(data, &f)
	return f
}

// drop ends the connection without a close frame, as a network failure would.
func (h *fakeConn) drop() { h.ws.CloseNow() }

// wait blocks until the client closes the connection, or the test ends it.
func (h *fakeConn) wait() {
	for {
		if _, _, err := h.ws.Read(h.ctx); err != nil {
			return
		}
	}
}

// frame builds a server frame of type typ with members kv (name, value, ...).
func frame(typ string, kv ...any) map[string]any {
	f := map[string]any{"type": typ, "session_id": "s"}
	for i := 0; i+1 < len(kv); i += 2 {
		f[kv[i].(string)] = kv[i+1]
	}
	return f
}
