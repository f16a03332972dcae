package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentws/agentws/reference/server"
	"github.com/agentws/agentws/schemas/httpapi"
)

// HS-1, CONN-1, CONN-3, CAP-1: connected first, for the requested session, with the
// capabilities; unknown parameters are ignored.
func TestConnectedFirst(t *testing.T) {
	s := start(t, nil)
	sid := newSession(t)
	_, f := s.connect(t, "session_id="+sid+"&user_id=user1&unknown=x")
	if f.str("session_id") != sid || f.str("protocol_version") != "1.1" || f.str("epoch") == "" || f["resumed"] != nil {
		t.Errorf("connected %v: want session_id %s, protocol_version 1.1, an epoch and no resumed", f, sid)
	}
	var caps []string
	for _, c := range f["capabilities"].([]any) {
		caps = append(caps, c.(string))
	}
	if want := []string{"buffering", "error_codes", "query_id", "resume", "cancel", "fixture"}; !slices.Equal(caps, want) {
		t.Errorf("capabilities %v, want %v", caps, want)
	}
	if ts := f.str("timestamp"); !strings.HasSuffix(ts, "Z") || len(ts) != len("2025-10-25T12:34:56.000Z") {
		t.Errorf("timestamp %q: want UTC with milliseconds (ENV-5)", ts)
	}
}

// HS-2, HS-3, HS-5, HS-7, HS-9: refusals before the upgrade, with JSON bodies; an empty
// parameter is malformed, not absent (section 2), save session_id.
func TestHandshakeRefusals(t *testing.T) {
	s := start(t, nil)
	tests := []struct {
		query  string
		status int
		code   httpapi.HTTPErrorCode
	}{
		{"", http.StatusBadRequest, httpapi.HTTPErrorCodeMissingSessionId},
		{"session_id=", http.StatusBadRequest, httpapi.HTTPErrorCodeMissingSessionId},
		{"session_id=a%20b", http.StatusBadRequest, httpapi.HTTPErrorCodeInvalidSessionId},
		{"session_id=" + strings.Repeat("s", 129), http.StatusBadRequest, httpapi.HTTPErrorCodeInvalidSessionId},
		{"session_id=caf%C3%A9", http.StatusBadRequest, httpapi.HTTPErrorCodeInvalidSessionId},
		{"session_id=ok&user_id=", http.StatusBadRequest, httpapi.HTTPErrorCodeInvalidUserId},
		{"session_id=ok&user_id=a/b", http.StatusBadRequest, httpapi.HTTPErrorCodeInvalidUserId},
		{"session_id=ok&last_seq=", http.StatusBadRequest, httpapi.HTTPErrorCodeInvalidParameter},
		{"session_id=ok&last_seq=-1", http.StatusBadRequest, httpapi.HTTPErrorCodeInvalidParameter},
		{"session_id=ok&last_seq=0&epoch=", http.StatusBadRequest, httpapi.HTTPErrorCodeInvalidParameter},
		{"session_id=ok&epoch=" + strings.Repeat("e", 129), http.StatusBadRequest, httpapi.HTTPErrorCodeInvalidParameter},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			status, he := s.refused(t, tt.query, nil)
			if status != tt.status || he.Code != tt.code {
				t.Errorf("got %d %s (%q), want %d %s", status, he.Code, he.Error, tt.status, tt.code)
			}
		})
	}
	t.Run("not an upgrade", func(t *testing.T) {
		resp, err := http.Get(s.URL + "/ws?session_id=x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUpgradeRequired || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("got %s %s, want 426 with a JSON body", resp.Status, resp.Header.Get("Content-Type"))
		}
	})
}

// HS-11: a path the server does not serve gets 404, a method a path does not allow 405,
// each with a JSON body of http-error.json.
func TestUnknownPathAndMethod(t *testing.T) {
	s := start(t, nil)
	tests := []struct {
		method, path string
		status       int
		code         httpapi.HTTPErrorCode
	}{
		{http.MethodGet, "/no-such-path", http.StatusNotFound, httpapi.HTTPErrorCodeNotFound},
		{http.MethodGet, "/ws/no-such-path", http.StatusNotFound, httpapi.HTTPErrorCodeNotFound},
		{http.MethodPost, "/ws/health", http.StatusMethodNotAllowed, httpapi.HTTPErrorCodeMethodNotAllowed},
		{http.MethodDelete, "/livez", http.StatusMethodNotAllowed, httpapi.HTTPErrorCodeMethodNotAllowed},
		{http.MethodPut, "/readyz", http.StatusMethodNotAllowed, httpapi.HTTPErrorCodeMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, s.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var he httpapi.HTTPError
			if err := json.NewDecoder(resp.Body).Decode(&he); err != nil {
				t.Fatalf("%s: the body is not JSON: %v", resp.Status, err)
			}
			if resp.StatusCode != tt.status || he.Code != tt.code || he.Error == "" {
				t.Errorf("got %s %+v, want %d %s", resp.Status, he, tt.status, tt.code)
			}
		})
	}
	resp, err := http.Get(s.URL + "/ws/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /ws/health: %s, want 200", resp.Status)
	}
}

// HS-4: every id of the syntax is accepted, and ids are compared byte for byte.
func TestSessionIDSyntax(t *testing.T) {
	s := start(t, nil)
	for _, sid := range []string{"a", "A.b_c:d~e-f", strings.Repeat("9", 128)} {
		s.connect(t, "session_id="+sid)
	}
	a, _ := s.connect(t, "session_id=Case")
	s.connect(t, "session_id=case") // another session: no takeover of Case
	a.send(ping)
	a.expect("pong")
}

// HS-8: a browser origin other than the server's own is refused unless allowed.
func TestOrigins(t *testing.T) {
	s := start(t, func(c *server.Config) { c.AllowedOrigins = []string{"localhost:3000", "*.example.com"} })
	for _, o := range []string{"http://evil.test", "http://localhost:3001", "not a url"} {
		status, he := s.refused(t, "session_id="+newSession(t), http.Header{"Origin": {o}})
		if status != http.StatusForbidden || he.Code != httpapi.HTTPErrorCodeOriginNotAllowed {
			t.Errorf("origin %s: got %d %s, want 403 origin_not_allowed", o, status, he.Code)
		}
	}
	for _, o := range []string{"http://localhost:3000", "https://app.example.com", s.URL} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ws, _, err := websocket.Dial(ctx, s.wsURL("session_id="+newSession(t)), &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {o}}})
		cancel()
		if err != nil {
			t.Errorf("origin %s: %v, want it allowed", o, err)
			continue
		}
		ws.CloseNow()
	}
}

// HS-8: Origin null (a page opened from a file, a sandboxed frame) is refused, also
// when every origin is allowed (*), and allowed by name; the log's hint says so, and
// what allowing it lets in.
func TestNullOrigin(t *testing.T) {
	null := http.Header{"Origin": {"null"}}
	for _, allowed := range [][]string{nil, {"*"}, {"*.example.com"}} {
		var logs *logBuffer
		s := start(t, func(c *server.Config) { c.AllowedOrigins = allowed; logs = logged(c) })
		if status, he := s.refused(t, "session_id="+newSession(t), null); status != http.StatusForbidden || he.Code != httpapi.HTTPErrorCodeOriginNotAllowed {
			t.Errorf("allowed %q: Origin null got %d %s, want 403 origin_not_allowed", allowed, status, he.Code)
		}
		r := logs.records("origin refused")
		if len(r) != 1 || !strings.HasPrefix(r[0]["allow_with"].(string), "-allowed-origins=null, which lets in any page") {
			t.Errorf("allowed %q: origin log %v, want a hint of -allowed-origins=null and its risk", allowed, r)
		}
	}
	s := start(t, func(c *server.Config) { c.AllowedOrigins = []string{"app.example.com", "null"} })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, s.wsURL("session_id="+newSession(t)), &websocket.DialOptions{HTTPHeader: null})
	if err != nil {
		t.Fatalf("Origin null with null allowed: %v", err)
	}
	ws.CloseNow()
}

// HS-6: a session belongs to its first user; another user (or none) is refused, and
// the refusal leaves the session and its connection alone.
func TestUserBinding(t *testing.T) {
	s := start(t, nil)
	sid := newSession(t)
	owner, _ := s.connect(t, "session_id="+sid+"&user_id=alice")
	for _, q := range []string{"&user_id=mallory", "", "&user_id=Alice"} {
		status, he := s.refused(t, "session_id="+sid+q, nil)
		if status != http.StatusForbidden || he.Code != httpapi.HTTPErrorCodeUserMismatch {
			t.Errorf("%q: got %d %s, want 403 user_mismatch", q, status, he.Code)
		}
	}
	owner.send(query("still mine"))
	if got := checkStream(t, owner.stream()); got != "Echo: still mine" {
		t.Errorf("got %q", got)
	}
	anon := newSession(t)
	s.connect(t, "session_id="+anon)
	if status, _ := s.refused(t, "session_id="+anon+"&user_id=alice", nil); status != http.StatusForbidden {
		t.Errorf("a user joining an anonymous session: got %d, want 403", status)
	}
}

// HS-10: the server holds at most its limit of sessions; known sessions still get in.
func TestSessionLimit(t *testing.T) {
	s := start(t, func(c *server.Config) { c.MaxSessions = 2 })
	a := newSession(t)
	s.connect(t, "session_id="+a)
	s.connect(t, "session_id="+newSession(t))
	status, he := s.refused(t, "session_id="+newSession(t), nil)
	if status != http.StatusServiceUnavailable || he.Code != httpapi.HTTPErrorCodeServerFull {
		t.Errorf("a third session: got %d %s, want 503 server_full", status, he.Code)
	}
	c, _ := s.connect(t, "session_id="+a) // takes over an existing session
	c.send(ping)
	c.expect("pong")
}
