package client

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/agentws/agentws/schemas/msg"
)

// The methods of this file are called with c.mu held: each state change of the
// session is one critical section.

// connected takes a connection whose connected frame f has arrived: it settles what a
// reconnection lost (see the shared client design), then queues the queries to send.
func (c *Client) connected(l *link, f serverFrame, first bool) {
	resumeAsked := c.caps[capResume] && c.epoch != nil
	epochChanged := c.epoch != nil && (f.Epoch == nil || *f.Epoch != *c.epoch)
	c.caps = map[string]bool{}
	for _, name := range f.Capabilities {
		c.caps[name] = true
	}
	c.capList = slices.Clone(f.Capabilities)
	var lost *Error
	switch {
	case first:
	case resumeAsked && f.Resumed != nil && *f.Resumed && !epochChanged:
	case resumeAsked && epochChanged:
		lost = newError(CodeGap, "the connection dropped and the session's history is another one (a new epoch): the answer may be incomplete")
	case resumeAsked && f.Missed != nil:
		lost = newError(CodeGap, "the connection dropped and %d frames after seq %d were lost: the answer may be incomplete", *f.Missed, c.lastSeq)
	case resumeAsked:
		lost = newError(CodeGap, "the connection dropped and frames after seq %d were lost: the answer may be incomplete", c.lastSeq)
	default:
		lost = newError(CodeNoResume, "the connection dropped and the server does not claim resume: the answer may be incomplete")
	}
	if epochChanged {
		c.lastSeq = 0
	}
	c.epoch = f.Epoch
	c.link = l
	if !first {
		c.settleInFlight(lost, c.caps[capBuffering] && !epochChanged)
	}
	c.opts.Logger.Info("agentws: connected", "session_id", c.sessionID, "capabilities", f.Capabilities, "resumed", f.Resumed, "first", first)
	if c.disconnecting {
		l.send([]byte(`{"type":"disconnect"}`), nil)
		return
	}
	byID := c.caps[capQueryID]
	for _, q := range c.order {
		if q.isDone() {
			continue
		}
		// A query sent before the drop but not started is sent again with its query_id:
		// the server runs it if it never got it, and otherwise not twice (QID-3, QID-4).
		if !q.sent || (byID && !q.started) {
			l.sendQuery(q, byID)
		}
	}
	if c.caps[capCancel] && byID {
		for _, f := range c.cancels {
			l.send(f, nil)
		}
	}
	c.cancels = nil
}

// settleInFlight ends the queries whose frames a reconnection may have lost. Matched
// by order (no query_id), a failed query stays, to take the rest of its stream, while
// the session lives on (kept).
func (c *Client) settleInFlight(lost *Error, kept bool) {
	byID := c.caps[capQueryID]
	for _, q := range slices.Clone(c.order) {
		switch {
		case !q.sent:
		case lost != nil && (q.started || !byID):
			q.settle(Answer{}, lost)
			if byID || !kept {
				c.forget(q)
			}
		case !kept && !byID && q.isDone():
			c.forget(q)
		}
	}
}

// receive handles one server frame. It returns the notice to give to Options.OnNotice,
// which the caller calls once c.mu is released.
func (c *Client) receive(f serverFrame, raw []byte) *msg.Notice {
	if f.Seq != nil && c.caps[capResume] {
		if *f.Seq <= c.lastSeq {
			return nil // already received (CLIENT-5)
		}
		c.lastSeq = *f.Seq
	}
	switch f.Type {
	case "notice":
		// Session-scoped, of no query (NOTICE-2): its seq counts above, and no stream
		// changes. One that is not readable as a notice is ignored, like a frame of the
		// wrong shape.
		var n msg.Notice
		if c.over || c.opts.OnNotice == nil || json.Unmarshal(raw, &n) != nil {
			return nil
		}
		return &n
	case "query_start":
		if q := c.starting(f); q != nil {
			q.started = true
		}
	case "chunk":
		if q := c.streaming(f); q != nil {
			q.started = true
			if !q.isDone() && !q.addChunk(f) && c.caps[capQueryID] {
				c.forget(q)
			}
		}
	case "complete":
		if q := c.streaming(f); q != nil {
			if !q.isDone() {
				q.complete(f)
			}
			c.forget(q)
		}
	case "error":
		if q := c.erroring(f); q != nil {
			q.settle(Answer{}, c.serverError(f, raw))
			c.forget(q)
		}
	case "disconnected":
		text := "the server ended the session"
		if f.Message != "" {
			text += ": " + f.Message
		}
		c.finish(newError(CodeSessionEnded, "%s", text))
	}
	// connected again, pong, keepalive, and types the client does not know: ignored
	// (CLIENT-1, CLIENT-3).
	return nil
}

// starting finds the query a query_start begins: by query_id, or, matched by order,
// the oldest one not started. The streams before it have ended (STREAM-7): one whose
// end never arrived lost it. A failed query whose text is not the frame's never
// reached the server.
func (c *Client) starting(f serverFrame) *Query {
	if c.caps[capQueryID] {
		return c.ids[f.QueryID]
	}
	for len(c.order) > 0 {
		q := c.order[0]
		switch {
		case q.started:
			q.settle(Answer{}, newError(CodeGap, "query %s: the next query started before its end arrived: the answer is incomplete", q.id))
			c.forget(q)
		case !q.sent:
			return nil
		case q.isDone() && q.frame.Query != f.Query:
			c.forget(q)
		default:
			return q
		}
	}
	return nil
}

// streaming finds the query a chunk or complete belongs to: by query_id, or the
// started one.
func (c *Client) streaming(f serverFrame) *Query {
	if c.caps[capQueryID] {
		return c.ids[f.QueryID]
	}
	for _, q := range c.order {
		if q.started {
			return q
		}
	}
	return nil
}

// erroring finds the query an error ends: by query_id (an error without one refuses a
// client frame of no query); matched by order, the started query, or, for a refusal
// (a connection-scoped code, with error_codes), or when none has started, the oldest
// sent.
func (c *Client) erroring(f serverFrame) *Query {
	if c.caps[capQueryID] {
		if f.QueryID == "" {
			return nil
		}
		return c.ids[f.QueryID]
	}
	refusal := c.caps[capErrorCodes] && f.Code != "" && !sessionScoped[f.Code]
	if !refusal {
		if q := c.streaming(f); q != nil {
			return q
		}
	}
	for _, q := range c.order {
		if q.sent && !q.started {
			return q
		}
	}
	return nil
}

// serverError is the error of a query ended by an error frame; its code only with
// error_codes (CLIENT-2).
func (c *Client) serverError(f serverFrame, raw []byte) *Error {
	e := &Error{Code: CodeError, Message: f.Error, Frame: slices.Clone(raw)}
	if c.caps[capErrorCodes] && f.Code != "" {
		e.Code = f.Code
	}
	if f.RetryAfterMs > 0 {
		e.RetryAfter = time.Duration(f.RetryAfterMs * float64(time.Millisecond))
	}
	return e
}
