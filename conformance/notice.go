package conformance

// The checks every notice frame gets (extension notice, section 12.7 of
// spec/PROTOCOL.md): NOTICE-1 to NOTICE-3, whatever the case checks.

import "fmt"

// noticeSeen is where a session first received a notice: the epoch of its connection
// and the notice's seq (-1: none).
type noticeSeen struct {
	epoch string
	seq   int
	conn  string
}

// checkNotice checks a notice frame on c, on the reader's goroutine: it belongs to
// the connection's session (NOTICE-1) and to no query (NOTICE-2), and one broadcast
// gives a session one notice (NOTICE-3): its notice_id comes once on a connection, and
// again on a later connection of the session only as the same frame, resent by a
// resume (the same epoch and seq).
func (st *caseState) checkNotice(c *conn, e event) {
	if sid, _ := e.frame["session_id"].(string); c.sid != "" && sid != c.sid {
		st.finding("NOTICE-1", "%s: a notice carries session_id %q, want the connection's %q", c.name, sid, c.sid)
	}
	if id, ok := e.frame["query_id"]; ok {
		st.finding("NOTICE-2", "%s: a notice carries query_id %s: a notice belongs to no query: %s", c.name, show(id), truncate(string(e.data), 200))
	}
	id, ok := e.frame["notice_id"].(string)
	if !ok {
		return // the schema check says so
	}
	if c.notices[id] {
		st.finding("NOTICE-3", "%s: notice %q came twice on the connection: one broadcast gives a session one notice", c.name, id)
		return
	}
	if c.notices == nil {
		c.notices = map[string]bool{}
	}
	c.notices[id] = true
	seq, hasSeq := num(e.frame["seq"])
	if !hasSeq {
		seq = -1
	}
	st.mu.Lock()
	epoch := st.epochs[c.name]
	if st.notices == nil {
		st.notices = map[string]noticeSeen{}
	}
	key := c.sid + "\x00" + id
	old, seen := st.notices[key]
	if !seen {
		st.notices[key] = noticeSeen{epoch: epoch, seq: seq, conn: c.name}
	}
	st.mu.Unlock()
	if seen && (seq < 0 || old.seq != seq || old.epoch != epoch) {
		st.finding("NOTICE-3", "%s: notice %q came again (%s), after %s had it (%s): one broadcast gives a session one notice, which only a resume resends, as the same frame",
			c.name, id, where(epoch, seq), old.conn, where(old.epoch, old.seq))
	}
}

func where(epoch string, seq int) string {
	if seq < 0 {
		return "without a seq"
	}
	return fmt.Sprintf("epoch %q, seq %d", epoch, seq)
}
