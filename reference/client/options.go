package client

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/agentws/agentws/schemas/msg"
)

// Defaults of [Options] and [Backoff]; the backoff's are those of the shared client
// design (the JavaScript client has the same).
const (
	DefaultBackoffInitial   = 250 * time.Millisecond
	DefaultBackoffMax       = 10 * time.Second
	DefaultBackoffStable    = 5 * time.Second
	DefaultReadLimit        = 16 << 20 // bytes: a larger frame closes the connection
	DefaultHandshakeTimeout = 10 * time.Second
)

// Options configure a [Client]. The zero value of each field is its default.
type Options struct {
	SessionID string      // the session; it wins over a session_id in the URL; one of them is required
	UserID    string      // the user_id parameter; it wins over one in the URL
	Token     string      // a bearer token, sent as Authorization: Bearer (extension auth)
	Header    http.Header // more headers for every handshake
	// HTTPClient makes the handshakes (http.DefaultClient).
	HTTPClient *http.Client

	Backoff Backoff
	// MaxAttempts is how many reconnections in a row the client makes before it gives
	// up with ErrUnreachable; 0: no bound.
	MaxAttempts int

	// OnFrame, when set, is called with every frame, received and sent, as it is on the
	// wire. Received frames are given in order, from one goroutine.
	OnFrame func(dir Direction, raw []byte)
	// OnNotice, when set, is called with every notice the server sends (an operator's
	// message broadcast through the admin API, spec section 12.7), once each, in the
	// order received, from the goroutine that reads the connection: the client reads no
	// frame while it runs, so it should return quickly (hand the notice to a channel or
	// a goroutine of its own for slow work). It may call the client's methods. A notice
	// is part of no query: it changes no stream (NOTICE-2).
	OnNotice func(msg.Notice)
	// Logger logs connections and reconnections; nil: no logs.
	Logger *slog.Logger

	// ReadLimit is the largest frame the client reads, in bytes (DefaultReadLimit). A
	// larger one ends the client with code message_too_big: a resume would send it again.
	ReadLimit int64
	// HandshakeTimeout bounds each handshake, from the request to the connected frame
	// (DefaultHandshakeTimeout).
	HandshakeTimeout time.Duration
}

// Backoff is the wait before each reconnection: min(Max, Initial*2^attempt) times a
// random factor in [0.5, 1).
type Backoff struct {
	Initial time.Duration // the first wait (DefaultBackoffInitial)
	Max     time.Duration // the longest (DefaultBackoffMax)
	Stable  time.Duration // a connection up this long resets attempt to 0 (DefaultBackoffStable)
}

// Direction says which way a frame went.
type Direction int

// The directions of [Options.OnFrame].
const (
	Received Direction = iota
	Sent
)

func (d Direction) String() string {
	if d == Sent {
		return "out"
	}
	return "in"
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Backoff.Initial, DefaultBackoffInitial)
	def(&o.Backoff.Max, DefaultBackoffMax)
	def(&o.Backoff.Stable, DefaultBackoffStable)
	def(&o.HandshakeTimeout, DefaultHandshakeTimeout)
	if o.ReadLimit <= 0 {
		o.ReadLimit = DefaultReadLimit
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// A QueryOption sets a member of a query.
type QueryOption func(*queryFrame)

// WithQueryID gives the query its query_id (sent only when the server claims
// query_id); without it the client assigns one, unique within the client.
func WithQueryID(id string) QueryOption { return func(f *queryFrame) { f.QueryID = id } }

// WithSystemPrompt sets the query's system_prompt, a hint for the agent.
func WithSystemPrompt(p string) QueryOption { return func(f *queryFrame) { f.SystemPrompt = p } }

// WithIncludeContext sets the query's include_context, a hint for the agent.
func WithIncludeContext(b bool) QueryOption { return func(f *queryFrame) { f.IncludeContext = &b } }
