package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/agentws/agentws/reference/redistest"
	"github.com/agentws/agentws/reference/server"
	"github.com/agentws/agentws/schemas"
	"github.com/agentws/agentws/schemas/adminapi"
)

const adminToken = "test-admin-token-0123456789"

func withAdmin(c *server.Config) { c.AdminToken = adminToken }

// adminDo sends an admin request with token ("" for none) and checks the answer's body
// against the schema of its status: want for a success, http-error.json otherwise.
func (s *testServer) adminDo(t testing.TB, method, path, token, body string, want schemas.Schema) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	switch {
	case resp.StatusCode == http.StatusNoContent:
		if len(data) > 0 {
			t.Fatalf("%s %s: 204 with a body %s", method, path, data)
		}
	case resp.StatusCode < 300:
		if err := validator.Validate(want, data); err != nil {
			t.Fatalf("%s %s: body %s breaks %s: %v", method, path, data, want.File(), err)
		}
	default:
		if err := validator.Validate(schemas.HTTPError, data); err != nil {
			t.Fatalf("%s %s: %d with body %s: %v", method, path, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode, data
}

// broadcast posts body and returns the answer.
func (s *testServer) broadcast(t testing.TB, body string) adminapi.BroadcastResult {
	t.Helper()
	status, data := s.adminDo(t, "POST", "/admin/broadcast", adminToken, body, schemas.BroadcastResult)
	if status != http.StatusOK {
		t.Fatalf("broadcast %s: %d %s", body, status, data)
	}
	var r adminapi.BroadcastResult
	json.Unmarshal(data, &r)
	return r
}

func (s *testServer) sessionInfo(t *testing.T, sid string) (int, adminapi.SessionInfo) {
	t.Helper()
	status, data := s.adminDo(t, "GET", "/admin/sessions/"+sid, adminToken, "", schemas.SessionInfo)
	var info adminapi.SessionInfo
	json.Unmarshal(data, &info)
	return status, info
}

func (s *testServer) sessionPage(t *testing.T, query string) adminapi.SessionList {
	t.Helper()
	status, data := s.adminDo(t, "GET", "/admin/sessions?"+query, adminToken, "", schemas.SessionList)
	if status != http.StatusOK {
		t.Fatalf("list %s: %d %s", query, status, data)
	}
	var l adminapi.SessionList
	json.Unmarshal(data, &l)
	return l
}

func errorCode(data []byte) string {
	var e struct{ Code, Error string }
	json.Unmarshal(data, &e)
	return e.Code
}

// stores runs fn on the memory store and on a cluster of two nodes sharing a Redis:
// the admin API on the first node, the clients on either.
func stores(t *testing.T, edit func(*server.Config), fn func(t *testing.T, admin *testServer, nodes []*testServer)) {
	t.Run("memory", func(t *testing.T) {
		s := start(t, func(c *server.Config) { withAdmin(c); edit(c) })
		fn(t, s, []*testServer{s, s})
	})
	t.Run("redis", func(t *testing.T) {
		r := redistest.Start(t)
		a := startNode(t, r, "a", func(c *server.Config) { withAdmin(c); edit(c) })
		b := startNode(t, r, "b", func(c *server.Config) { withAdmin(c); edit(c) })
		fn(t, a, []*testServer{a, b})
	})
}

func noEdit(*server.Config) {}

// Without an admin credential the admin API is not served: its paths answer 404, and
// the server does not claim notice (ADMIN-1, CAP-2).
func TestAdminOff(t *testing.T) {
	s := start(t, nil)
	for _, p := range []string{"/admin/sessions", "/admin/broadcast"} {
		status, data := s.adminDo(t, "GET", p, adminToken, "", "")
		if status != http.StatusNotFound || errorCode(data) != "not_found" {
			t.Errorf("GET %s without an admin API: %d %s, want 404 not_found", p, status, data)
		}
	}
	if slices.Contains(s.Capabilities(), "notice") {
		t.Errorf("capabilities %v claim notice without an admin API", s.Capabilities())
	}
	on := start(t, withAdmin)
	if !slices.Contains(on.Capabilities(), "notice") {
		t.Errorf("capabilities %v lack notice with the admin API on", on.Capabilities())
	}
	if _, err := server.New(func() server.Config { c := server.DefaultConfig(); c.AdminToken = "short"; return c }()); err == nil || !strings.Contains(err.Error(), "admin token") {
		t.Errorf("a 5-character admin token: %v, want an error naming the admin token", err)
	}
}

// The admin API refuses a request without the admin credential with 401 before it
// reads the body: a broken body without the token gets 401, not 400. A client's JWT
// is no admin credential; one with the admin scope is (ADMIN-1).
func TestAdminAuth(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	s := start(t, func(c *server.Config) {
		withAdmin(c)
		c.Auth = &server.Auth{Secret: key}
		c.AdminScope = "agentws:admin"
	})
	exp := time.Now().Add(time.Hour).Unix()
	client := token(t, key, jwt.MapClaims{"sub": "alice", "exp": exp})
	admin := token(t, key, jwt.MapClaims{"sub": "ops", "exp": exp, "scope": "read agentws:admin"})
	expired := token(t, key, jwt.MapClaims{"sub": "ops", "exp": time.Now().Add(-time.Hour).Unix(), "scope": "agentws:admin"})
	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{"no token", "", 401},
		{"a wrong token", adminToken + "x", 401},
		{"a client's JWT", client, 401},
		{"an expired admin JWT", expired, 401},
		{"the admin token", adminToken, 400},
		{"an admin JWT", admin, 400},
	} {
		status, data := s.adminDo(t, "POST", "/admin/broadcast", tc.token, `{"message": 12`, "")
		if status != tc.want {
			t.Errorf("%s, broken body: %d %s, want %d", tc.name, status, data, tc.want)
		}
		if tc.want == 401 && errorCode(data) != "unauthorized" {
			t.Errorf("%s: code %q, want unauthorized", tc.name, errorCode(data))
		}
	}
	status, data := s.adminDo(t, "GET", "/admin/sessions", admin, "", schemas.SessionList)
	if status != 200 {
		t.Errorf("list with an admin JWT: %d %s", status, data)
	}
	if status, data := s.adminDo(t, "DELETE", "/admin/broadcast", adminToken, "", ""); status != 405 || errorCode(data) != "method_not_allowed" {
		t.Errorf("DELETE /admin/broadcast: %d %s, want 405 method_not_allowed", status, data)
	}
}

// A body that is not a valid broadcast gets 400 invalid_body naming the member or the
// bound; an empty list targets none (ADMIN-2).
func TestBroadcastBody(t *testing.T) {
	s := start(t, func(c *server.Config) { withAdmin(c); c.AdminBodyBytes = 4096 })
	s.connect(t, "session_id="+newSession(t))
	for _, tc := range []struct{ body, names string }{
		{`{"level": "info"}`, "message"},
		{`{"message": ""}`, "message"},
		{`{"message": "hi", "level": "loud"}`, "level"},
		{`{"message": "hi", "sessions": ["bad id"]}`, "sessions"},
		{`{"message": "hi", "users": "alice"}`, "users"},
		{`{"message": "hi", "mesage": "typo"}`, "mesage"},
		{`{"message": "hi", "data": [1]}`, "data"},
		{`[]`, "object"},
		{`{"message": "` + strings.Repeat("x", 5000) + `"}`, "4096 bytes"},
	} {
		status, data := s.adminDo(t, "POST", "/admin/broadcast", adminToken, tc.body, "")
		if status != 400 || errorCode(data) != "invalid_body" || !strings.Contains(string(data), tc.names) {
			t.Errorf("body %.60s: %d %s, want 400 invalid_body naming %s", tc.body, status, data, tc.names)
		}
	}
	if r := s.broadcast(t, `{"message": "nobody", "sessions": []}`); r.Sessions != 0 {
		t.Errorf("a broadcast to sessions [] reached %d sessions, want 0", r.Sessions)
	}
	if r := s.broadcast(t, `{"message": "everyone"}`); r.Sessions != 1 {
		t.Errorf("a broadcast to all reached %d sessions, want 1", r.Sessions)
	}
}

// nextNotice reads c's frames up to its next notice, checking it against the
// broadcast's id and text; frames before it are returned.
func nextNotice(t *testing.T, c *client, id string) (frame, []frame) {
	t.Helper()
	var before []frame
	for {
		f := c.next()
		if f.str("type") != "notice" {
			before = append(before, f)
			continue
		}
		if _, ok := f["query_id"]; ok {
			t.Fatalf("notice %v carries a query_id (NOTICE-2)", f)
		}
		if f.str("notice_id") != id {
			t.Fatalf("notice %v, want notice_id %s", f, id)
		}
		return f, before
	}
}

// A broadcast reaches the sessions listed and every session of the users listed, less
// the excluded ones, whichever node holds them; the others get nothing of it. The
// test proves "nothing" with a second broadcast to all: the first notice each
// untargeted session sees must be the second's (frames come in seq order).
func TestBroadcastTargets(t *testing.T) {
	stores(t, noEdit, func(t *testing.T, admin *testServer, nodes []*testServer) {
		type sess struct {
			id, user string
			c        *client
			want     bool
		}
		base := newSession(t)
		all := []*sess{
			{id: base + "-a", user: "alice", want: true},
			{id: base + "-b", user: "alice"}, // excluded by session
			{id: base + "-c", user: "bob", want: true},
			{id: base + "-d", user: "carol"}, // excluded by user, though listed
			{id: base + "-e", user: "dave"},  // not targeted
			{id: base + "-f"},                // anonymous, not targeted
		}
		for i, s := range all {
			q := "session_id=" + s.id
			if s.user != "" {
				q += "&user_id=" + s.user
			}
			s.c, _ = nodes[i%2].connect(t, q)
		}
		body := fmt.Sprintf(`{"message": "targeted", "level": "warning", "users": ["alice"], "sessions": ["%s", "%s", "unknown-session"], "exclude_sessions": ["%s"], "exclude_users": ["carol"]}`,
			all[2].id, all[3].id, all[1].id)
		first := admin.broadcast(t, body)
		if first.Sessions != 2 {
			t.Errorf("the targeted broadcast reached %d sessions, want 2", first.Sessions)
		}
		second := admin.broadcast(t, `{"message": "everyone"}`)
		if second.Sessions != len(all) {
			t.Errorf("the broadcast to all reached %d sessions, want %d", second.Sessions, len(all))
		}
		for _, s := range all {
			f := s.c.expect("notice")
			if s.want {
				if f.str("notice_id") != first.NoticeId || f.str("level") != "warning" || f.str("message") != "targeted" || f.str("session_id") != s.id {
					t.Errorf("session %s got %v first, want the targeted notice %s", s.id, f, first.NoticeId)
				}
				f = s.c.expect("notice")
			}
			if f.str("notice_id") != second.NoticeId || f.str("level") != "info" {
				t.Errorf("session %s (targeted %v) got %v, want the notice to all %s", s.id, s.want, f, second.NoticeId)
			}
		}
	})
}

// A notice comes between the chunks of a stream, numbered in the session's order
// (SEQ-1), and changes nothing of the stream (NOTICE-2).
func TestNoticeMidStream(t *testing.T) {
	stores(t, noEdit, func(t *testing.T, admin *testServer, nodes []*testServer) {
		sid := newSession(t)
		c, _ := nodes[1].connect(t, "session_id="+sid)
		c.send(query("__slow__ one two three four five six seven eight"))
		start, chunk := c.expect("query_start"), c.expect("chunk")
		r := admin.broadcast(t, fmt.Sprintf(`{"message": "mid-stream", "sessions": ["%s"], "data": {"at": 1}}`, sid))
		n, before := nextNotice(t, c, r.NoticeId)
		if d, _ := n["data"].(map[string]any); d["at"] != 1.0 {
			t.Errorf("notice data %v, want {\"at\": 1}", n["data"])
		}
		rest := c.stream()
		stream := append(append([]frame{start, chunk}, before...), rest...)
		if got := checkStream(t, stream); got != "Echo: __slow__ one two three four five six seven eight" {
			t.Errorf("answer %q: the notice changed the stream", got)
		}
		inOrder := append(append(append([]frame{start, chunk}, before...), n), rest...)
		checkSeqs(t, inOrder, start.num("seq"))
	})
}

// A session without a connection buffers the notice, and its next connection gets it;
// a resume gets it exactly once, by seq: not again after a resume that had it
// (NOTICE-1, BUF-3, SEQ-3).
func TestNoticeOffline(t *testing.T) {
	stores(t, noEdit, func(t *testing.T, admin *testServer, nodes []*testServer) {
		sid := newSession(t)
		c, connected := nodes[1].connect(t, "session_id="+sid)
		c.ws.CloseNow() // an abrupt drop
		eventually(t, "the session is detached", func() bool {
			_, info := admin.sessionInfo(t, sid)
			return info.State == adminapi.SessionInfoStateDetached
		})
		r := admin.broadcast(t, fmt.Sprintf(`{"message": "while away", "sessions": ["%s"]}`, sid))
		if r.Sessions != 1 {
			t.Fatalf("the broadcast reached %d sessions, want the detached one", r.Sessions)
		}
		if _, info := admin.sessionInfo(t, sid); info.BufferedFrames != 1 {
			t.Errorf("buffered_frames %d, want the notice", info.BufferedFrames)
		}
		back, _ := nodes[0].connect(t, "session_id="+sid)
		n, _ := nextNotice(t, back, r.NoticeId)
		back.send(ping)
		back.expect("pong")
		back.ws.CloseNow()
		// A resume from before the notice gets it once; one from after gets nothing.
		res, again := nodes[1].connect(t, fmt.Sprintf("session_id=%s&last_seq=0&epoch=%s", sid, connected.str("epoch")))
		if again["resumed"] != true {
			t.Fatalf("resume: %v", again)
		}
		if m, _ := nextNotice(t, res, r.NoticeId); m.num("seq") != n.num("seq") {
			t.Errorf("resumed notice seq %d, want %d", m.num("seq"), n.num("seq"))
		}
		res.send(ping)
		res.expect("pong")
		res.ws.CloseNow()
		last, _ := nodes[0].connect(t, fmt.Sprintf("session_id=%s&last_seq=%d&epoch=%s", sid, n.num("seq"), connected.str("epoch")))
		last.send(ping)
		if f := last.next(); f.str("type") != "pong" {
			t.Errorf("a resume after the notice's seq got %v, want nothing but the pong", f)
		}
	})
}

// GET /admin/sessions lists the sessions, connected and detached, in session_id order,
// a page at a time; GET one answers it or 404 (ADMIN-3).
func TestAdminSessions(t *testing.T) {
	stores(t, noEdit, func(t *testing.T, admin *testServer, nodes []*testServer) {
		base := newSession(t)
		var ids []string
		var conns []*client
		for i := range 5 {
			id := fmt.Sprintf("%s-%d", base, i)
			ids = append(ids, id)
			c, _ := nodes[i%2].connect(t, fmt.Sprintf("session_id=%s&user_id=u%d", id, i))
			c.send(ping)
			c.expect("pong")
			conns = append(conns, c)
		}
		conns[3].ws.CloseNow()
		eventually(t, "session 3 is detached", func() bool {
			_, info := admin.sessionInfo(t, ids[3])
			return info.State == adminapi.SessionInfoStateDetached
		})
		// With the Redis store a node adds its connections' activity to the store four
		// times a lease: what another node shows of it may lag by that much.
		eventually(t, "every session shows its connected and pong sent", func() bool {
			for _, info := range admin.sessionPage(t, "").Sessions {
				if info.FramesSent < 2 {
					return false
				}
			}
			return true
		})
		var got []adminapi.SessionInfo
		after := ""
		for pages := 0; ; pages++ {
			q := "limit=2"
			if after != "" {
				q += "&after=" + after
			}
			page := admin.sessionPage(t, q)
			if len(page.Sessions) > 2 || pages > 3 {
				t.Fatalf("page %d: %d sessions with limit 2", pages, len(page.Sessions))
			}
			got = append(got, page.Sessions...)
			if page.Next == "" {
				break
			}
			if page.Next != page.Sessions[len(page.Sessions)-1].SessionId {
				t.Errorf("next %q is not the last session of the page", page.Next)
			}
			after = page.Next
		}
		if len(got) != 5 {
			t.Fatalf("listed %d sessions, want 5: %v", len(got), got)
		}
		for i, info := range got {
			want := adminapi.SessionInfoStateConnected
			if i == 3 {
				want = adminapi.SessionInfoStateDetached
			}
			if info.SessionId != ids[i] || info.UserId != fmt.Sprintf("u%d", i) || info.State != want {
				t.Errorf("session %d: %+v, want %s of u%d, %s", i, info, ids[i], i, want)
			}
			if info.FramesSent < 2 { // connected and the pong
				t.Errorf("session %s: frames_sent %d, want at least its connected and pong", info.SessionId, info.FramesSent)
			}
			since, err1 := time.Parse(time.RFC3339, info.ConnectedAt)
			active, err2 := time.Parse(time.RFC3339, info.LastActivity)
			if err1 != nil || err2 != nil || active.Before(since) {
				t.Errorf("session %s: connected_at %s, last_activity %s", info.SessionId, info.ConnectedAt, info.LastActivity)
			}
			if (info.Node != nil) != (admin != nodes[1] && want == adminapi.SessionInfoStateConnected) {
				t.Errorf("session %s: node %v", info.SessionId, info.Node)
			}
		}
		if status, data := admin.adminDo(t, "GET", "/admin/sessions/"+base+"-none", adminToken, "", ""); status != 404 || errorCode(data) != "session_not_found" {
			t.Errorf("GET an unknown session: %d %s, want 404 session_not_found", status, data)
		}
		for _, q := range []string{"limit=0", "limit=1001", "limit=x", "after=bad%20id"} {
			if status, data := admin.adminDo(t, "GET", "/admin/sessions?"+q, adminToken, "", ""); status != 400 || errorCode(data) != "invalid_parameter" {
				t.Errorf("list ?%s: %d %s, want 400 invalid_parameter", q, status, data)
			}
		}
	})
}

// DELETE ends the session: its connection is closed with 4003, it is gone, and a new
// connection with its id gets a new session (ADMIN-4).
func TestAdminDelete(t *testing.T) {
	stores(t, noEdit, func(t *testing.T, admin *testServer, nodes []*testServer) {
		sid := newSession(t)
		c, first := nodes[1].connect(t, "session_id="+sid)
		c.send(query("__slow__ a b c d e f g h i j k l"))
		c.expect("query_start")
		if status, data := admin.adminDo(t, "DELETE", "/admin/sessions/"+sid, adminToken, "", ""); status != 204 {
			t.Fatalf("DELETE: %d %s", status, data)
		}
		c.expectClose(websocket.StatusCode(4003))
		if status, _ := admin.sessionInfo(t, sid); status != 404 {
			t.Errorf("GET after DELETE: %d, want 404", status)
		}
		if status, data := admin.adminDo(t, "DELETE", "/admin/sessions/"+sid, adminToken, "", ""); status != 404 || errorCode(data) != "session_not_found" {
			t.Errorf("DELETE again: %d %s, want 404 session_not_found", status, data)
		}
		_, again := nodes[0].connect(t, "session_id="+sid)
		if again.str("epoch") == first.str("epoch") {
			t.Errorf("a connection after DELETE has the ended session's epoch %s", first.str("epoch"))
		}
	})
}

// The metrics count broadcasts, the sessions they reached, and the connections the
// operator ended (4003); /metrics names no session id.
func TestAdminMetrics(t *testing.T) {
	s := start(t, withAdmin)
	a, b := newSession(t), newSession(t)
	ca, _ := s.connect(t, "session_id="+a)
	s.connect(t, "session_id="+b)
	s.broadcast(t, `{"message": "one"}`)
	s.broadcast(t, fmt.Sprintf(`{"message": "two", "sessions": ["%s"]}`, a))
	if status, _ := s.adminDo(t, "DELETE", "/admin/sessions/"+a, adminToken, "", ""); status != 204 {
		t.Fatalf("DELETE: %d", status)
	}
	ca.expect("notice")
	ca.expect("notice")
	ca.expectClose(websocket.StatusCode(4003))
	data, m := scrape(t, s.URL+"/metrics")
	for series, want := range map[string]float64{
		"agentws_broadcasts_total":                        2,
		"agentws_broadcast_sessions_total":                3,
		`agentws_connection_closes_total{reason="ended"}`: 1,
	} {
		if m[series] != want {
			t.Errorf("%s = %v, want %v", series, m[series], want)
		}
	}
	if strings.Contains(data, a) || strings.Contains(data, b) {
		t.Error("/metrics names a session id")
	}
}

// A notice larger than a session's buffer can hold (-buffer-bytes) is refused with 400
// invalid_body naming the bound: buffered, it would evict every frame the session's
// buffer and history hold, and itself, so that no session without a connection could
// get it and each would lose what it had (NOTICE-1, BUF-7). One that fits is sent.
func TestBroadcastLargerThanBuffer(t *testing.T) {
	stores(t, func(c *server.Config) { c.BufferBytes = 4096 }, func(t *testing.T, admin *testServer, nodes []*testServer) {
		sid := newSession(t)
		c, _ := nodes[1].connect(t, "session_id="+sid)
		c.ws.CloseNow()
		eventually(t, "the session is detached", func() bool {
			_, info := admin.sessionInfo(t, sid)
			return info.State == adminapi.SessionInfoStateDetached
		})
		kept := admin.broadcast(t, fmt.Sprintf(`{"message": "kept", "sessions": ["%s"]}`, sid))
		big := fmt.Sprintf(`{"message": "big", "data": {"blob": "%s"}}`, strings.Repeat("x", 4096))
		status, data := admin.adminDo(t, "POST", "/admin/broadcast", adminToken, big, schemas.BroadcastResult)
		if status != 400 || errorCode(data) != "invalid_body" || !strings.Contains(string(data), "-buffer-bytes") {
			t.Errorf("a notice larger than the buffer: %d %s, want 400 invalid_body naming -buffer-bytes", status, data)
		}
		if _, info := admin.sessionInfo(t, sid); info.BufferedFrames != 1 {
			t.Errorf("buffered_frames %d after the refused broadcast, want the first notice", info.BufferedFrames)
		}
		fits := admin.broadcast(t, fmt.Sprintf(`{"message": "fits", "data": {"blob": "%s"}}`, strings.Repeat("x", 3000)))
		back, connected := nodes[0].connect(t, "session_id="+sid)
		if connected["evicted"] != nil {
			t.Errorf("connected %v: frames were evicted", connected)
		}
		nextNotice(t, back, kept.NoticeId)
		nextNotice(t, back, fits.NoticeId)
	})
}

// A broadcast's retry after a lost reply stores its notice not twice, though another
// broadcast reached the session between the try and the retry (NOTICE-3).
func TestNoticeRetryAfterAnotherBroadcast(t *testing.T) {
	r := redistest.Start(t)
	a := startNode(t, r, "a", withAdmin)
	sid := newSession(t)
	c, _ := a.connect(t, "session_id="+sid)
	c.ws.CloseNow()
	eventually(t, "the session is detached", func() bool {
		_, info := a.sessionInfo(t, sid)
		return info.State == adminapi.SessionInfoStateDetached
	})
	const retried = "n-0123456789abcdef"
	if n, err := a.StoreNotice(sid, retried); n != 1 || err != nil {
		t.Fatalf("the first try: %d %v", n, err)
	}
	other := a.broadcast(t, fmt.Sprintf(`{"message": "between", "sessions": ["%s"]}`, sid))
	if n, err := a.StoreNotice(sid, retried); n != 1 || err != nil {
		t.Fatalf("the retry: %d %v", n, err)
	}
	back, _ := a.connect(t, "session_id="+sid)
	nextNotice(t, back, retried)
	nextNotice(t, back, other.NoticeId)
	back.send(ping)
	if f := back.next(); f.str("type") != "pong" {
		t.Errorf("after the two notices: %v, want the pong: the retry stored its notice twice", f)
	}
}

// A broadcast reaches every session it targets though its requester goes away before
// the answer: the notices do not depend on the admin client waiting (ADMIN-2).
func TestBroadcastRequesterGone(t *testing.T) {
	stores(t, noEdit, func(t *testing.T, admin *testServer, nodes []*testServer) {
		base := newSession(t)
		var cs []*client
		for i := range 3 {
			c, _ := nodes[i%2].connect(t, fmt.Sprintf("session_id=%s-%d", base, i))
			cs = append(cs, c)
		}
		if n, err := admin.BroadcastGoneRequester(); n != len(cs) || err != nil {
			t.Fatalf("a broadcast whose requester went away reached %d sessions (%v), want %d", n, err, len(cs))
		}
		for _, c := range cs {
			if f := c.expect("notice"); f.str("message") != "gone" {
				t.Errorf("notice %v", f)
			}
		}
	})
}
