package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// scriptCall is one handshake to a scripted server: the n-th of its session.
type scriptCall struct {
	ctx context.Context
	t   *testing.T
	w   http.ResponseWriter
	r   *http.Request
	sid string
	n   int
	ws  *websocket.Conn
}

// refuse answers the handshake with an HTTP error of section 15.3.
func (c *scriptCall) refuse(status int, code, text string) {
	c.w.Header().Set("Content-Type", "application/json")
	c.w.WriteHeader(status)
	json.NewEncoder(c.w).Encode(map[string]string{"code": code, "error": text})
}

// accept upgrades and sends connected with caps; nil caps: a core (1.0) server.
func (c *scriptCall) accept(caps []string) bool { return c.acceptWith(caps, nil) }

// acceptWith is accept with more members of connected (epoch, resumed).
func (c *scriptCall) acceptWith(caps []string, more frame) bool {
	ws, err := websocket.Accept(c.w, c.r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return false
	}
	c.ws = ws
	f := frame{"type": "connected", "message": "scripted", "session_id": c.sid}
	if caps != nil {
		f["protocol_version"], f["capabilities"] = "1.1", caps
	}
	for k, v := range more {
		f[k] = v
	}
	return c.send(f)
}

func (c *scriptCall) send(f frame) bool {
	f["timestamp"] = time.Now().UTC().Format(time.RFC3339Nano)
	if _, ok := f["session_id"]; !ok && f["type"] != "pong" {
		f["session_id"] = c.sid
	}
	data, err := json.Marshal(f)
	if err != nil {
		c.t.Error(err)
		return false
	}
	return c.ws.Write(c.ctx, websocket.MessageText, data) == nil
}

// read returns the next client frame, or nil when the connection ended.
func (c *scriptCall) read() frame {
	_, data, err := c.ws.Read(c.ctx)
	if err != nil {
		return nil
	}
	var f frame
	if json.Unmarshal(data, &f) != nil {
		return frame{}
	}
	return f
}

// readQuery returns the next query, answering pings; nil when the connection ended.
func (c *scriptCall) readQuery() frame {
	for {
		f := c.read()
		switch {
		case f == nil || f["type"] == "query":
			return f
		case f["type"] == "ping":
			c.send(frame{"type": "pong"})
		}
	}
}

// drop ends the connection as a network failure would.
func (c *scriptCall) drop() { c.ws.CloseNow() }

// answer streams q's fixture answer in chunks of four characters, with its query_id
// when withID; pause is the wait before each chunk.
func (c *scriptCall) answer(q frame, withID bool, pause time.Duration) {
	text := "Echo: " + q.str("query")
	id := func(f frame) frame {
		if withID {
			f["query_id"] = q["query_id"]
		}
		return f
	}
	c.send(id(frame{"type": "query_start", "query": q.str("query")}))
	n := 0
	for rest := text; rest != ""; n++ {
		k := min(4, len(rest))
		time.Sleep(pause) // the pace of a slow agent
		if !c.send(id(frame{"type": "chunk", "content": rest[:k], "chunk_number": n + 1})) {
			return
		}
		rest = rest[k:]
	}
	c.send(id(frame{"type": "complete", "full_response": text, "total_chunks": n}))
}

// scriptedServers are the servers the Node tests script, by name (/scripted/NAME/ws).
var scriptedServers = map[string]func(c *scriptCall){
	// core: a 1.0 server, no capabilities: frames carry no query_id; a query starting
	// with __slow__ takes 30 ms a chunk. It answers anything else with an error
	// without code (a cancel would get one, but the client must send none).
	"core": func(c *scriptCall) {
		if !c.accept(nil) {
			return
		}
		for {
			f := c.read()
			switch {
			case f == nil:
				return
			case f["type"] == "query":
				var pause time.Duration
				if strings.HasPrefix(f.str("query"), "__slow__") {
					pause = 30 * time.Millisecond
				}
				c.answer(f, false, pause)
			case f["type"] == "ping":
				c.send(frame{"type": "pong"})
			default:
				c.send(frame{"type": "error", "error": "unknown message type: " + f.str("type")})
			}
		}
	},
	// gap: chunk 2 of every answer is lost.
	"gap": func(c *scriptCall) {
		if !c.accept([]string{"query_id", "error_codes"}) {
			return
		}
		for q := c.readQuery(); q != nil; q = c.readQuery() {
			id := q["query_id"]
			c.send(frame{"type": "query_start", "query": q.str("query"), "query_id": id})
			c.send(frame{"type": "chunk", "content": "Echo", "chunk_number": 1, "query_id": id})
			c.send(frame{"type": "chunk", "content": "lo", "chunk_number": 3, "query_id": id})
			c.send(frame{"type": "complete", "full_response": "Echo: lo", "total_chunks": 3, "query_id": id})
		}
	},
	// replayed: every query is one it finished before (QID-4): its complete, replayed.
	"replayed": func(c *scriptCall) {
		if !c.accept([]string{"query_id"}) {
			return
		}
		for q := c.readQuery(); q != nil; q = c.readQuery() {
			c.send(frame{"type": "complete", "full_response": "Echo: " + q.str("query"), "total_chunks": 2, "query_id": q["query_id"], "replayed": true})
		}
	},
	// refuse: the first connection drops once it has the query; every reconnection is
	// refused with 401, as when a token expired.
	"refuse": func(c *scriptCall) {
		if c.n > 1 {
			c.refuse(http.StatusUnauthorized, "unauthorized", "token expired")
			return
		}
		if c.accept([]string{"buffering", "query_id"}) && c.readQuery() != nil {
			c.drop()
		}
	},
	// flaky: the first connection drops once it has the query; the second handshake
	// gets 429, the third 503 (both worth trying again), the fourth answers the query
	// the client sends again.
	"flaky": func(c *scriptCall) {
		switch c.n {
		case 1:
			if c.accept([]string{"buffering", "query_id"}) && c.readQuery() != nil {
				c.drop()
			}
		case 2:
			c.refuse(http.StatusTooManyRequests, "too_many_connections", "scripted: too many")
		case 3:
			c.refuse(http.StatusServiceUnavailable, "server_full", "scripted: full")
		default:
			if !c.accept([]string{"buffering", "query_id"}) {
				return
			}
			for q := c.readQuery(); q != nil; q = c.readQuery() {
				c.answer(q, true, 0)
			}
		}
	},
	// policy: closes every connection with 1008 once connected.
	"policy": func(c *scriptCall) {
		if c.accept(nil) {
			c.ws.Close(websocket.StatusPolicyViolation, "scripted policy")
		}
	},
	// notice: with resume; the test's query has query_id q-notice. The first
	// connection starts the query, sends its first chunk and notice n-1 (seq 3), and
	// drops; the second resumes, expected from last_seq 3, sends n-1 again all the
	// same, and n-2 between the chunks that follow.
	"notice": func(c *scriptCall) {
		caps := []string{"buffering", "query_id", "error_codes", "resume"}
		const qid = "q-notice"
		notice := func(seq int, id, level string) frame {
			return frame{"type": "notice", "notice_id": id, "message": "scripted " + id, "level": level, "seq": seq}
		}
		if c.n == 1 {
			if !c.acceptWith(caps, frame{"epoch": "e1"}) {
				return
			}
			q := c.readQuery()
			if q == nil {
				return
			}
			c.send(frame{"type": "query_start", "query": q.str("query"), "query_id": qid, "seq": 1})
			c.send(frame{"type": "chunk", "content": "Echo", "chunk_number": 1, "query_id": qid, "seq": 2})
			c.send(notice(3, "n-1", "info"))
			c.drop()
			return
		}
		if !c.acceptWith(caps, frame{"epoch": "e1", "resumed": true}) {
			return
		}
		c.send(notice(3, "n-1", "info")) // again: the client has it
		c.send(frame{"type": "chunk", "content": ": ", "chunk_number": 2, "query_id": qid, "seq": 4})
		c.send(notice(5, "n-2", "critical"))
		c.send(frame{"type": "chunk", "content": "hi", "chunk_number": 3, "query_id": qid, "seq": 6})
		c.send(frame{"type": "complete", "full_response": "Echo: hi", "total_chunks": 3, "query_id": qid, "seq": 7})
		for c.read() != nil { // until the client closes
		}
	},
	// notice-core: a core server (frames matched by order) with a notice between the
	// chunks of the answer.
	"notice-core": func(c *scriptCall) {
		if !c.accept(nil) {
			return
		}
		for q := c.readQuery(); q != nil; q = c.readQuery() {
			c.send(frame{"type": "query_start", "query": q.str("query")})
			c.send(frame{"type": "chunk", "content": "Echo", "chunk_number": 1})
			c.send(frame{"type": "notice", "notice_id": "n-core", "message": "Maintenance in 5 minutes", "level": "warning", "data": map[string]any{"in_s": 300}})
			c.send(frame{"type": "chunk", "content": ": hi", "chunk_number": 2})
			c.send(frame{"type": "complete", "full_response": "Echo: hi", "total_chunks": 2})
		}
	},
	// ended: the operator ends the session (ADMIN-4) in the middle of an answer: close
	// 4003 after the first chunk.
	"ended": func(c *scriptCall) {
		if !c.accept([]string{"query_id"}) {
			return
		}
		if q := c.readQuery(); q != nil {
			c.send(frame{"type": "query_start", "query": q.str("query"), "query_id": q["query_id"]})
			c.send(frame{"type": "chunk", "content": "Echo", "chunk_number": 1, "query_id": q["query_id"]})
			c.ws.Close(4003, "session ended")
		}
	},
	// noresume: buffering and query_id, no resume. The first connection takes two
	// queries, starts the first, sends its first chunk and drops; the next ones answer
	// what they get, and fail a query that arrives twice.
	"noresume": func(c *scriptCall) {
		caps := []string{"buffering", "query_id", "error_codes"}
		if !c.accept(caps) {
			return
		}
		if c.n == 1 {
			a, b := c.readQuery(), c.readQuery()
			if a == nil || b == nil {
				return
			}
			c.send(frame{"type": "query_start", "query": a.str("query"), "query_id": a["query_id"]})
			c.send(frame{"type": "chunk", "content": "Echo", "chunk_number": 1, "query_id": a["query_id"]})
			c.drop()
			return
		}
		for q := c.readQuery(); q != nil; q = c.readQuery() {
			c.answer(q, true, 0)
		}
	},
}
