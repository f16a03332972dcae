package server

// Budget is the most memory the server holds on behalf of its clients, in bytes, as a
// formula of its configuration (README, "Memory"). What clients can make grow is
// counted against -max-memory-bytes, which reservations keep the count within; beyond
// it, each connection and each session holds a constant that no client can enlarge.
// It does not count the server's own baseline (its code, its goroutines, the Go
// runtime), which does not grow with clients, nor what the agent holds for a request.
type Budget struct {
	Frame      int // the largest frame: one that echoes a whole client message, escaped
	Counted    int // what the memory count holds at most: -max-memory-bytes
	PerSession int // what one session with its connection can make the count hold at most
	Connection int // what a live connection holds beyond the count
	Session    int // what a session holds beyond the count
	Total      int // MaxSessions sessions, each with a live connection
}

// The constants beyond the count. A session: its remembered query ids (at most 128
// bytes each), its maps, timers and logger, and the error that ends its running query,
// counted without a reservation (errorText). A connection: the message read before it
// reserves (readFree, decoded), the answers to client frames queued without a
// reservation (controlReserve pongs and refusals, each under 2 KiB), and the
// WebSocket library's and net/http's buffers and the connection's goroutines.
const (
	sessionOverhead = 64 << 10
	answerBound     = 2 << 10
	libraryOverhead = 64 << 10
)

// Budget returns the budget of the configuration c. It assumes an agent whose answer
// is no longer than the query's text plus a constant, as the fixture agent's, for
// PerSession; the count's bound holds whatever the agent answers.
func (c Config) Budget() Budget {
	m := int(c.MaxMessageBytes)
	var b Budget
	b.Frame = 2*m + 1<<10
	b.Counted = c.MaxMemoryBytes
	b.Session = sessionOverhead + frameBound(maxErrorText) + rememberedBound(maxErrorText)
	b.Connection = decodeFactor*readFree + controlReserve*answerBound + libraryOverhead
	// A session's buffer and history; its send queue and its answers; its waiting
	// queries' text and query_start reservations; the running query's text, the
	// answer kept for its complete, and the complete with its remembered result; the
	// remembered results; a message being read.
	b.PerSession = 2*c.BufferBytes + 2*(c.SendQueueBytes+b.Frame) +
		3*c.QueueBytes + admissionBound(m) + m + frameBound(m) + rememberedBound(m) +
		c.RememberedBytes + decodeFactor*m
	b.Total = b.Counted + c.MaxSessions*(b.Session+b.Connection)
	return b
}

// admissionBound is what a query of a message of m bytes reserves (admission).
func admissionBound(m int) int { return m + frameBound(m) }

// For is the budget of n sessions, each with a connection: the count's bound, or what
// n sessions can make it hold when that is less, and their constants.
func (b Budget) For(n int) int {
	return min(b.Counted, n*b.PerSession) + n*(b.Session+b.Connection)
}
