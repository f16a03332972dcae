package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"sync"
)

// A Client holds one session of an agentws server. Its methods are safe for
// concurrent use.
type Client struct {
	opts      Options
	endpoint  *url.URL // with the session's parameters; last_seq and epoch are added per handshake
	sessionID string
	life      context.Context // ends when the client stops reconnecting
	stop      context.CancelFunc
	runDone   chan struct{} // closed when the connection loop has returned
	done      chan struct{} // closed when the client has ended (Err is set)
	idPrefix  string

	frameMu sync.Mutex // serializes OnFrame

	mu            sync.Mutex
	link          *link // the connection, from its connected frame to its end; nil between
	caps          map[string]bool
	capList       []string
	epoch         *string           // the epoch of the last connected, with resume
	lastSeq       int64             // the highest seq received, with resume
	order         []*Query          // queries whose stream is not over, in the order sent
	ids           map[string]*Query // the same, by id
	nextID        int64
	attempt       int      // reconnections since the last stable connection
	err           error    // why the client ended; Query fails with it
	over          bool     // the connection loop must stop
	disconnecting bool     // Disconnect was called: send disconnect, wait for disconnected
	cancels       [][]byte // cancel frames to send once connected
}

// Dial connects to the agentws endpoint url (ws://host:port/ws, with or without
// session_id and user_id in its query) and returns once the server's connected frame
// has arrived. ctx bounds this first connection only; the client then lives until
// Close, Disconnect, or a close after which it does not reconnect. A refused first
// connection is an [*Error] with code refused, naming the HTTP status and the code of
// the refusal's body.
func Dial(ctx context.Context, endpoint string, opts Options) (*Client, error) {
	opts = opts.withDefaults()
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, newError(CodeRefused, "bad URL %q: %v", endpoint, err)
	}
	q := u.Query()
	if opts.SessionID != "" {
		q.Set("session_id", opts.SessionID)
	}
	if opts.UserID != "" {
		q.Set("user_id", opts.UserID)
	}
	if q.Get("session_id") == "" {
		return nil, newError(CodeRefused, "no session id: set Options.SessionID or give session_id in the URL")
	}
	q.Del("last_seq")
	q.Del("epoch")
	u.RawQuery = q.Encode()
	c := &Client{
		opts:      opts,
		endpoint:  u,
		sessionID: q.Get("session_id"),
		runDone:   make(chan struct{}),
		done:      make(chan struct{}),
		ids:       map[string]*Query{},
		idPrefix:  randomHex(4),
	}
	c.life, c.stop = context.WithCancel(context.Background())
	l, f, err := c.handshake(ctx)
	if err != nil {
		c.stop()
		return nil, firstFailure(err)
	}
	c.mu.Lock()
	c.connected(l, f, true)
	c.mu.Unlock()
	go c.run(l)
	return c, nil
}

// Capabilities returns the capabilities of the server's last connected frame.
func (c *Client) Capabilities() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.capList)
}

// SessionID returns the session's id.
func (c *Client) SessionID() string { return c.sessionID }

// Done is closed when the client has ended; Err then says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the client ended (an [*Error]: replaced, ended, closed,
// session_ended, unreachable, ...), or nil while it runs.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Query sends a query, once connected, and returns at once. Cancelling ctx cancels
// the query: it ends at once with code cancelled and, with a server that claims cancel
// and query_id, the client sends cancel; with another, it sends nothing (CLIENT-2) and
// the query ends with code unsupported, the server's answer to it ignored.
func (c *Client) Query(ctx context.Context, text string, opts ...QueryOption) *Query {
	f := queryFrame{Type: "query", Query: text}
	for _, o := range opts {
		o(&f)
	}
	q := &Query{c: c, frame: f, next: 1, done: make(chan struct{}), changed: make(chan struct{})}
	c.mu.Lock()
	defer c.mu.Unlock()
	q.id = f.QueryID
	switch {
	case c.err != nil:
		q.settle(Answer{}, c.err)
		return q
	case text == "":
		q.settle(Answer{}, newError(CodeInvalidField, "empty query: not sent"))
		return q
	case q.id == "":
		c.nextID++
		q.id = "q-" + c.idPrefix + "-" + strconv.FormatInt(c.nextID, 36)
	case !idSyntax.MatchString(q.id):
		q.settle(Answer{}, newError(CodeInvalidField, "query_id %q is not 1 to 128 characters of A-Z a-z 0-9 . _ : ~ -: not sent", q.id))
		return q
	case c.ids[q.id] != nil:
		q.settle(Answer{}, newError(CodeInvalidField, "query_id %q names a query still in flight: not sent", q.id))
		return q
	}
	c.order = append(c.order, q)
	c.ids[q.id] = q
	if c.link != nil {
		c.link.sendQuery(q, c.caps[capQueryID])
	}
	q.watch(ctx)
	return q
}

// cancel is called when a query's context is done. The query ends at once with code
// cancelled, and the server is asked to stop it; with a server that does not claim
// cancel and query_id, nothing is sent (CLIENT-2) and the query ends with code
// unsupported: it runs on there, its answer ignored.
func (c *Client) cancel(q *Query) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if q.isDone() {
		return
	}
	switch {
	case !q.sent:
		if c.link != nil {
			c.link.unqueue(q)
		}
		c.forget(q)
		q.settle(Answer{}, newError(CodeCancelled, "query %s was cancelled before it was sent", q.id))
	case c.caps[capCancel] && c.caps[capQueryID] && q.sentWithID:
		c.fail(q, newError(CodeCancelled, "query %s was cancelled", q.id))
		frame := mustJSON(map[string]string{"type": "cancel", "query_id": q.id})
		if c.link != nil {
			c.link.send(frame, nil)
		} else {
			c.cancels = append(c.cancels, frame) // sent once connected again
		}
	default:
		c.fail(q, newError(CodeUnsupported, "the server does not claim cancel (and query_id): query %s runs on there, its answer ignored", q.id))
	}
}

// Close closes the connection and ends the client; its unfinished queries end with
// ErrClosed. The server keeps the session for its TTL (a close is an abrupt drop).
func (c *Client) Close() error {
	c.mu.Lock()
	l := c.link
	c.finish(newError(CodeClosed, "the client was closed"))
	c.mu.Unlock()
	if l != nil {
		l.close()
	}
	c.stop()
	<-c.runDone
	return nil
}

// Disconnect ends the session: it sends disconnect, waits for disconnected and the
// close after it, and ends the client. Unfinished queries end with ErrSessionEnded at
// once. When ctx ends first, the client is closed and ctx's error returned.
func (c *Client) Disconnect(ctx context.Context) error {
	c.mu.Lock()
	if c.err == nil {
		c.disconnecting = true
		c.endQueries(newError(CodeSessionEnded, "the session was ended by Disconnect"))
		if c.link != nil {
			c.link.send([]byte(`{"type":"disconnect"}`), nil)
		}
	}
	c.mu.Unlock()
	select {
	case <-c.runDone:
		return nil
	case <-ctx.Done():
		c.Close()
		return fmt.Errorf("agentws: disconnect: %w", ctx.Err())
	}
}

// The methods below are called with c.mu held.

// fail ends a query for its caller. Its later frames are ignored: found by their
// query_id no more, or, matched by order, taken by the query until its stream ends.
func (c *Client) fail(q *Query, err error) {
	q.settle(Answer{}, err)
	if c.caps[capQueryID] || !q.sent {
		c.forget(q)
	}
}

// forget removes a query whose stream is over.
func (c *Client) forget(q *Query) {
	q.ended = true
	if c.ids[q.id] == q {
		delete(c.ids, q.id)
	}
	c.order = slices.DeleteFunc(c.order, func(o *Query) bool { return o == q })
}

// endQueries ends every query with err, and sets err as the client's.
func (c *Client) endQueries(err error) {
	if c.err == nil {
		c.err = err
	}
	for _, q := range c.order {
		q.ended = true
		q.settle(Answer{}, err)
	}
	c.order = nil
	clear(c.ids)
}

// finish ends the client: its queries end with err, and it does not reconnect.
func (c *Client) finish(err error) {
	c.endQueries(err)
	if !c.over {
		c.over = true
		close(c.done)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

var errNoConnected = errors.New("the connection ended before its connected frame")
