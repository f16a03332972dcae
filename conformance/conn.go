package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
// server's pings and close frames are answered, and queues what arrives.
type conn struct {
	name   string
	st     *caseState
	ws     *websocket.Conn
	events chan event
	done   chan struct{}
	first  bool        // the first frame is still to come; only the reader goroutine uses it
	sid    string      // the session_id it was opened with
	ours   atomic.Bool // the harness ended the connection (drop, close, end of the case)
}

// maxQueued bounds the frames a connection holds unread.
const maxQueued = 1 << 14

func (st *caseState) dial(ctx context.Context, name, query string, header http.Header) (*conn, *http.Response, error) {
	url := st.opts.URL
	if query != "" {
		url += "?" + query
	}
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: header})
	st.wire.note(name, fmt.Sprintf("open %s", query))
	if err != nil {
		return nil, resp, err
	}
	ws.SetReadLimit(-1)
	c := &conn{name: name, st: st, ws: ws, events: make(chan event, maxQueued), done: make(chan struct{}), first: true}
	if q, err := neturl.ParseQuery(query); err == nil {
		c.sid = q.Get("session_id")
	}
	st.joined(c.sid)
	go c.read()
	return c, resp, nil
}

func (c *conn) read() {
	defer close(c.done)
	for {
		typ, data, err := c.ws.Read(context.Background())
		if err != nil {
			e := event{at: time.Now(), end: err}
			if c.ours.Load() {
				e.end = errClosedByHarness
			}
			c.st.wire.end(c.name, e)
			c.events <- e
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
		select {
		case c.events <- e:
		default:
			c.st.finding("", "connection %s: more than %d frames unread; the rest are dropped", c.name, maxQueued)
		}
	}
}

// next returns the next event within timeout. Keepalive frames are skipped unless
// keepalive is set.
func (c *conn) next(timeout time.Duration, keepalive bool) (event, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case e := <-c.events:
			if e.end == nil && e.typ() == "keepalive" && !keepalive {
				continue
			}
			if e.end != nil {
				c.events <- e // the end stays: every later read sees it
			}
			return e, nil
		case <-timer.C:
			return event{}, fmt.Errorf("no frame on %s within %v", c.name, timeout)
		}
	}
}

func (c *conn) send(typ websocket.MessageType, data []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.st.opts.FrameTimeout)
	defer cancel()
	c.st.wire.send(c.name, typ, data)
	return c.ws.Write(ctx, typ, data)
}

// errClosedByHarness marks the end of a connection the harness ended itself.
var errClosedByHarness = errors.New("the harness ended the connection")

// drop ends the connection abruptly, without a close frame.
func (c *conn) drop() {
	c.st.wire.note(c.name, "drop (no close frame)")
	c.ours.Store(true)
	c.ws.CloseNow()
	<-c.done
}

// release ends the connection at the end of a case.
func (c *conn) release() {
	c.ours.Store(true)
	c.ws.CloseNow()
	<-c.done
}

// close ends the connection with a close handshake.
func (c *conn) close(code websocket.StatusCode) error {
	c.st.wire.note(c.name, fmt.Sprintf("close %d", code))
	c.ours.Store(true)
	err := c.ws.Close(code, "")
	<-c.done
	return err
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
