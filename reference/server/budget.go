package server

// Budget is the most memory the server holds on behalf of its clients, in bytes, as a
// formula of its configuration (README, "Memory"): per live connection, per session,
// and in all. It counts what the clients' frames and queries make the server hold, not
// the server's own baseline (its code, its goroutines, the Go runtime), which does not
// grow with clients.
type Budget struct {
	Frame      int // the largest frame: one that echoes a whole client message, escaped
	Connection int // a live connection: its send queue and the message it reads
	Session    int // a session: its buffer, history, queries and remembered results
	Held       int // what all sessions hold in the structures -max-memory-bytes counts
	Offline    int // Held when no session has a connection
	Total      int // MaxSessions sessions, each with a live connection
}

// sessionOverhead bounds what a session holds besides its frames and query text: its
// remembered query ids (at most 128 bytes each), maps, timers and structures.
const sessionOverhead = 64 << 10

// Budget returns the budget of the configuration c. It assumes an agent whose answer
// is no longer than the query's text plus a constant, as the fixture agent's; the
// answers of another agent add their length to Frame.
func (c Config) Budget() Budget {
	m := int(c.MaxMessageBytes)
	var b Budget
	// A frame escapes its strings at most twice as long as a client's JSON did
	// (U+2028 and U+2029 become \u2028 and \u2029; see encode).
	b.Frame = 2*m + 1<<10
	// The runner's frames up to the byte limit and one more; the answers to client
	// frames as much again; the buffered frames queued at once when it joined; and a
	// message being read and decoded (the read buffer, the decoded document, the query).
	b.Connection = 2*(c.SendQueueBytes+b.Frame) + c.BufferBytes + 4*m
	// The offline buffer and the history; the queued text (one query always waits)
	// and the running query's text; its answer and the answer built from its chunks;
	// the remembered results.
	counted := 2*c.BufferBytes + c.QueueBytes + c.RememberedBytes
	uncounted := m + m + 2*b.Frame + sessionOverhead
	b.Session = counted + uncounted
	// The counted bytes of all sessions: the budget, plus what arrives before the
	// reclaimer takes it back from the sessions without a connection (a frame per
	// running query), plus what sessions with a connection go on adding from the
	// queries admitted before the total reached the budget (their history and results).
	b.Offline = min(c.MaxSessions*counted, c.MaxMemoryBytes+c.MaxSessions*b.Frame)
	b.Held = min(c.MaxSessions*counted, c.MaxMemoryBytes+c.MaxSessions*(c.BufferBytes+c.RememberedBytes))
	b.Total = c.MaxSessions*(uncounted+b.Connection) + b.Held
	return b
}
