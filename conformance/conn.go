package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	neturl "net/url"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// An event is what a connection receives: a frame, or its end.
type event struct {
	at     time.Time
	data   []byte
	frame  map[string]any // the decoded frame; nil when data is not a JSON object
	binary bool
	end    error // not nil for the end of the connection
}

// code returns the close code of an end event, or -1 for an end without a close frame.
func (e event) code() websocket.StatusCode { return websocket.CloseStatus(e.end) }

func (e event) typ() string {
	t, _ := e.frame["type"].(string)
	return t
}

// conn is one connection of a case. A reader goroutine always runs, so that the
// server's pings and close frames are answered, and queues what arrives in an inbox
// bounded in frames and bytes. It never blocks: a server that floods the connection
// gets a finding and the connection is ended.
type conn struct {
	name  string
	st    *caseState
	ws    *websocket.Conn
	raw   net.Conn // the TCP connection under ws
	in    *inbox
	stop  context.CancelFunc // ends the connection at once (the reader's Read returns)
	done  chan struct{}      // closed when the reader has returned
	first bool               // the first frame is still to come; only the reader goroutine uses it
	// notices are the notice_ids the connection received; only the reader goroutine
	// uses it (NOTICE-3: one notice of a broadcast per session)
	notices map[string]bool
	framed  atomic.Bool // a frame has arrived, the first one included
	sid     string      // the session_id it was opened with
	ours    atomic.Bool // the harness ended the connection (drop, close, end of the case)
}

// dial opens a connection for the case. The dial, HTTP answer included, is bounded by
// ctx; the connection lives until the case ends (st.ctx) or the harness ends it.
func (st *caseState) dial(ctx context.Context, name, query string, header http.Header) (*conn, *http.Response, error) {
	url := st.opts.URL
	if query != "" {
		url += "?" + query
	}
	header = st.authenticate(query, header)
	// The TCP connection is kept, so that drop can end the harness's side of it after
	// what was sent (a close() with frames still unread would reset it and lose them).
	var raw net.Conn
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DisableKeepAlives = true
	dialer := &net.Dialer{}
	transport.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := dialer.DialContext(ctx, network, addr)
		raw = nc
		return nc, err
	}
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: header, Host: header.Get("Host"), HTTPClient: &http.Client{Transport: transport}}) // Host: HS-13
	transport.CloseIdleConnections()
	st.wire.note(name, fmt.Sprintf("open %s", query))
	if err != nil {
		return nil, resp, err
	}
	ws.SetReadLimit(st.opts.readLimit())
	readCtx, stop := context.WithCancel(st.ctx)
	c := &conn{name: name, st: st, ws: ws, raw: raw, in: newInbox(), stop: stop, done: make(chan struct{}), first: true}
	if q, err := neturl.ParseQuery(query); err == nil {
		c.sid = q.Get("session_id")
	}
	st.joined(c.sid)
	go c.read(readCtx)
	return c, resp, nil
}

// authenticate adds the run's bearer token to a request (AUTH-1), unless the case
// handles tokens itself or the request carries one already.
func (st *caseState) authenticate(query string, header http.Header) http.Header {
	q, _ := neturl.ParseQuery(query)
	if st.token == "" || header.Get("Authorization") != "" || q.Has("access_token") {
		return header
	}
	out := header.Clone()
	if out == nil {
		out = http.Header{}
	}
	out.Set("Authorization", "Bearer "+st.token)
	return out
}

func (c *conn) read(ctx context.Context) {
	defer close(c.done)
	for {
		typ, data, err := c.ws.Read(ctx)
		if err != nil {
			c.end(err)
			return
		}
		e := event{at: time.Now(), data: data, binary: typ == websocket.MessageBinary}
		if !e.binary {
			var f map[string]any
			if json.Unmarshal(data, &f) == nil {
				e.frame = f
			}
		}
		c.st.wire.recv(c.name, e)
		c.st.check(c, e)
		c.framed.Store(true)
		if !c.in.put(e) {
			c.st.finding("", "%s: more than %d frames or %d bytes unread: the server sends faster than the case reads, so the harness ended the connection", c.name, maxQueued, maxQueuedBytes)
			c.ours.Store(true)
			c.ws.CloseNow() // the next Read ends; a cancelled context alone may not close the connection
		}
	}
}

// end records the end of the connection, with a finding when the server sent a frame
// over the harness's read limit.
func (c *conn) end(err error) {
	e := event{at: time.Now(), end: err}
	switch {
	case errors.Is(err, websocket.ErrMessageTooBig):
		c.st.finding("", "%s: the server sent a frame over the harness's read limit of %d bytes (4 × -max-message-bytes + -buffer-bytes, at least 16 MiB); the harness ended the connection", c.name, c.st.opts.readLimit())
	case c.ours.Load():
		e.end = errClosedByHarness
	}
	c.st.wire.end(c.name, e)
	c.in.finish(e)
}

// next returns the next event before w ends. Keepalive frames are skipped unless
// keepalive is set; skipping them does not extend w. The end of the case (its
// deadline, or the run's) ends the wait too.
func (c *conn) next(w wait, keepalive bool) (event, error) {
	timer := time.NewTimer(time.Until(w.until))
	defer timer.Stop()
	for {
		for e, ok := c.in.take(); ok; e, ok = c.in.take() {
			if e.end == nil && e.typ() == "keepalive" && !keepalive {
				continue
			}
			return e, nil
		}
		select {
		case <-c.in.wake:
		case <-timer.C:
			return event{}, fmt.Errorf("no frame on %s within %v", c.name, w.of)
		case <-c.st.ctx.Done():
			return event{}, context.Cause(c.st.ctx)
		}
	}
}

// send writes a frame within the frame timeout.
func (c *conn) send(typ websocket.MessageType, data []byte) error {
	ctx, cancel := context.WithTimeout(c.st.ctx, c.st.opts.FrameTimeout)
	defer cancel()
	c.st.wire.send(c.name, typ, data)
	return c.ws.Write(ctx, typ, data)
}

// errClosedByHarness marks the end of a connection the harness ended itself.
var errClosedByHarness = errors.New("the harness ended the connection")

// drop ends the connection abruptly, without a close frame.
//
// What the harness sent before still reaches the server: the harness ends its side of
// the TCP connection (a FIN after the data) and waits, at most the frame timeout, for
// the server to end its side, reading what comes meanwhile; then it closes. A plain
// close() with frames still unread would reset the connection, and the kernel would
// throw away what was not yet sent, such as the end of a big message.
func (c *conn) drop() {
	c.st.wire.note(c.name, "drop (no close frame)")
	c.ours.Store(true)
	if hc, ok := c.raw.(interface{ CloseWrite() error }); ok && hc.CloseWrite() == nil {
		timer := time.NewTimer(c.st.opts.FrameTimeout)
		defer timer.Stop()
		select {
		case <-c.done:
		case <-timer.C:
			c.st.wire.note(c.name, fmt.Sprintf("the server did not end the connection within %v of the harness ending its side", c.st.opts.FrameTimeout))
		case <-c.st.ctx.Done():
		}
	}
	c.release()
}

// release ends the connection at once, as at the end of a case.
func (c *conn) release() {
	c.ours.Store(true)
	c.stop()
	c.ws.CloseNow()
	<-c.done
}

// close ends the connection with a close handshake, which the server must answer
// within the frame timeout; then, or when the case ends, the connection is ended
// abruptly.
func (c *conn) close(code websocket.StatusCode) error {
	c.st.wire.note(c.name, fmt.Sprintf("close %d", code))
	c.ours.Store(true)
	closed := make(chan error, 1)
	go func() { closed <- c.ws.Close(code, "") }()
	timer := time.NewTimer(c.st.opts.FrameTimeout)
	defer timer.Stop()
	select {
	case err := <-closed:
		<-c.done
		return err
	case <-timer.C:
	case <-c.st.ctx.Done():
	}
	c.stop() // the reader's Read, under way, ends and closes the connection; Close itself gives up within 10 s
	<-closed
	<-c.done
	return fmt.Errorf("%s: the close handshake was not answered within %v", c.name, c.st.opts.FrameTimeout)
}

func describe(e event) string {
	switch {
	case errors.Is(e.end, errClosedByHarness):
		return "the harness ended the connection"
	case e.end != nil:
		if code := e.code(); code != -1 {
			return fmt.Sprintf("close %d %q", code, closeReason(e.end))
		}
		return "the connection ended without a close frame (" + e.end.Error() + ")"
	case e.binary:
		return fmt.Sprintf("a binary frame of %d bytes", len(e.data))
	}
	return string(e.data)
}

func closeReason(err error) string {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Reason
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("… (%d bytes)", len(s))
}
