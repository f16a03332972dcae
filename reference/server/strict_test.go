package server_test

import (
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// ENV-2, ENV-3, ENV-4 (issue 12): a member whose name differs from a schema member only
// in case, or by the Unicode folding encoding/json applies, is an unknown member. The
// query that runs is the one the validator checked, and its frames carry the query_id
// the server chose for it, never one the client sent under another name (client.read
// validates every frame: ENV-2).
func attackCaseVariantMembers(t *testing.T) {
	long := strings.Repeat("i", 100_000)
	for _, tc := range []struct{ name, frame, query, twinID string }{
		{"upper-case twin of query", `{"type":"query","query":"validated","QUERY":""}`, "validated", ""},
		{"twin before the member", `{"type":"query","Query":"","query":"validated"}`, "validated", ""},
		{"query_id twin outside the id syntax", `{"type":"query","query":"x","Query_Id":"bad id\n"}`, "x", "bad id\n"},
		{"query_id twin of 100 KB", `{"type":"query","query":"x","QUERY_ID":"` + long + `"}`, "x", long},
		{"query_id twin in the id syntax", `{"type":"query","query":"x","Query_ID":"mine"}`, "x", "mine"},
		{"session_id twin spelt with a long s", `{"type":"query","query":"x","ſession_id":"another-session"}`, "x", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, nil)
			c, _ := s.connect(t, "session_id="+newSession(t))
			c.sendRaw(websocket.MessageText, []byte(tc.frame))
			frames := c.stream()
			if got, want := checkStream(t, frames), "Echo: "+tc.query; got != want {
				t.Errorf("answer %q, want %q: the query that ran is not the validated one", got, want)
			}
			if q := frames[0].str("query"); q != tc.query {
				t.Errorf("query_start echoes %q, want %q", q, tc.query)
			}
			id := frames[0].str("query_id")
			for _, f := range frames {
				if got := f.str("query_id"); got != id || got == tc.twinID {
					t.Errorf("%s frame carries query_id %.40q, want the server's own %q", f.str("type"), got, id)
				}
			}
			s.stillServes(t)
		})
	}
}

// A cancel acts on its query_id, not on a twin in another case: the query the twin
// names keeps running and completes.
func attackCaseVariantCancel(t *testing.T) {
	s := start(t, nil)
	c, _ := s.connect(t, "session_id="+newSession(t))
	c.send(map[string]any{"type": "query", "query": "__slow__ keep running", "query_id": "q1"})
	c.expect("query_start")
	c.sendRaw(websocket.MessageText, []byte(`{"type":"cancel","query_id":"nope","QUERY_ID":"q1"}`))
	var chunks []frame
	for {
		f := c.next()
		if f.str("type") == "error" && f.str("code") == "unknown_query" {
			continue
		}
		chunks = append(chunks, f)
		if typ := f.str("type"); typ == "complete" || typ == "error" {
			break
		}
	}
	if last := chunks[len(chunks)-1]; last.str("type") != "complete" || last.str("query_id") != "q1" {
		t.Errorf("query q1 ended with %v, want complete: the cancel named another query", last)
	}
	s.stillServes(t)
}

// ENV-1, ENV-4: an object with two members of the same name is refused with
// invalid_json, at any depth, and the connection stays usable.
func TestDuplicateMembersRefused(t *testing.T) {
	s := start(t, nil)
	c, _ := s.connect(t, "session_id="+newSession(t))
	for _, tc := range []struct{ frame, pointer string }{
		{`{"type":"query","query":"a","query":"b"}`, "/query"},
		{`{"type":"query","query":"x","query_id":"a","qu\u0065ry_id":"b"}`, "/query_id"},
		{`{"type":"ping","extra":{"k":1,"k":2}}`, "/extra/k"},
	} {
		c.sendRaw(websocket.MessageText, []byte(tc.frame))
		f := c.expect("error")
		if f.str("code") != "invalid_json" || !strings.Contains(f.str("error"), tc.pointer+": invalid JSON: duplicate member name") {
			t.Errorf("%s: got %v, want invalid_json naming %s", tc.frame, f, tc.pointer)
		}
	}
	c.send(ping)
	c.expect("pong")
	c.send(query("after"))
	if got := checkStream(t, c.stream()); got != "Echo: after" {
		t.Errorf("answer %q after the refusals, want %q", got, "Echo: after")
	}
}
