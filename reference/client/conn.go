package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/coder/websocket"
)

// A link is one connection, from its connected frame to its end, with the frames
// waiting to be written to it. out is guarded by the client's mutex; one writer
// goroutine writes it in order.
type link struct {
	c          *Client
	ws         *websocket.Conn
	out        []outFrame
	wake       chan struct{}
	ctx        context.Context
	cancel     context.CancelFunc
	since      time.Time // when connected arrived
	closing    bool      // the writer ends once out is written
	writerDone chan struct{}
}

type outFrame struct {
	data []byte
	q    *Query // the query a query frame sends
}

func (l *link) send(data []byte, q *Query) {
	l.out = append(l.out, outFrame{data, q})
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// sendQuery queues a query frame, without query_id unless the server claims it
// (CLIENT-2).
func (l *link) sendQuery(q *Query, withID bool) {
	f := q.frame
	f.QueryID = ""
	if withID {
		f.QueryID = q.id
	}
	q.sentWithID = withID
	l.send(mustJSON(f), q)
}

func (l *link) unqueue(q *Query) {
	l.out = slices.DeleteFunc(l.out, func(o outFrame) bool { return o.q == q })
}

func (l *link) writer() {
	defer close(l.writerDone)
	for {
		select {
		case <-l.wake:
		case <-l.ctx.Done():
			return
		}
		for {
			l.c.mu.Lock()
			batch, closing := l.out, l.closing
			l.out = nil
			for _, o := range batch {
				if o.q != nil {
					o.q.sent = true
				}
			}
			l.c.mu.Unlock()
			if len(batch) == 0 {
				if closing {
					return
				}
				break
			}
			for _, o := range batch {
				if err := l.ws.Write(l.ctx, websocket.MessageText, o.data); err != nil {
					l.ws.CloseNow()
					return
				}
				l.c.onFrame(Sent, o.data)
			}
		}
	}
}

// flushTimeout bounds how long close waits for the frames still queued (a cancel
// asked for just before Close) to be written.
const flushTimeout = time.Second

// close writes the frames still queued, for at most flushTimeout, and closes the
// connection with 1000, which the server takes as an abrupt drop: it keeps the
// session.
func (l *link) close() {
	l.c.mu.Lock()
	l.closing = true
	l.c.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	t := time.NewTimer(flushTimeout)
	select {
	case <-l.writerDone:
	case <-t.C:
	}
	t.Stop()
	l.ws.Close(websocket.StatusNormalClosure, "client closed")
}

func (c *Client) onFrame(dir Direction, raw []byte) {
	if c.opts.OnFrame != nil {
		c.frameMu.Lock()
		defer c.frameMu.Unlock()
		c.opts.OnFrame(dir, raw)
	}
}

// A handshakeError is a handshake that did not end with connected.
type handshakeError struct {
	status    int    // the HTTP status of a refusal, or 0
	code      string // the refusal body's code, or the client code of a close
	msg       string
	permanent bool // reconnecting would get the same
}

func (e *handshakeError) Error() string { return e.msg }

// handshake opens a connection and reads up to its connected frame.
func (c *Client) handshake(ctx context.Context) (*link, serverFrame, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.HandshakeTimeout)
	defer cancel()
	u := c.handshakeURL()
	hdr := c.opts.Header.Clone()
	if c.opts.Token != "" {
		if hdr == nil {
			hdr = http.Header{}
		}
		hdr.Set("Authorization", "Bearer "+c.opts.Token)
	}
	ws, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: c.opts.HTTPClient, HTTPHeader: hdr})
	if err != nil {
		return nil, serverFrame{}, refusal(u, resp, err)
	}
	ws.SetReadLimit(c.opts.ReadLimit)
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			ws.CloseNow()
			return nil, serverFrame{}, c.dropError(fmt.Errorf("%w: %w", errNoConnected, err))
		}
		c.onFrame(Received, data)
		if f, ok := parseFrame(data); ok && f.Type == "connected" {
			l := &link{c: c, ws: ws, wake: make(chan struct{}, 1), writerDone: make(chan struct{}), since: time.Now()}
			l.ctx, l.cancel = context.WithCancel(c.life)
			return l, f, nil
		}
		// CONN-1 puts connected first; anything before it is not the protocol's.
	}
}

func (c *Client) handshakeURL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := *c.endpoint
	if c.caps[capResume] && c.epoch != nil {
		q := u.Query()
		q.Set("last_seq", strconv.FormatInt(c.lastSeq, 10))
		q.Set("epoch", *c.epoch)
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// refusal describes a failed upgrade: an HTTP refusal with its status and the code of
// its JSON body, or a network failure.
func refusal(u string, resp *http.Response, err error) error {
	if resp == nil || resp.StatusCode == http.StatusSwitchingProtocols {
		return &handshakeError{msg: fmt.Sprintf("could not connect to %s: %v", u, err)}
	}
	var body struct{ Error, Code string }
	if resp.Body != nil {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		json.Unmarshal(data, &body)
	}
	s := resp.StatusCode
	e := &handshakeError{status: s, code: body.Code, permanent: s >= 400 && s < 500 && s != http.StatusTooManyRequests}
	e.msg = fmt.Sprintf("%s refused the connection: HTTP %d", u, s)
	if body.Code != "" {
		e.msg += fmt.Sprintf(" (%s: %s)", body.Code, body.Error)
	}
	return e
}

// dropError classifies the end of a connection: permanent when the server closed with
// a code after which it would close again (spec table 15.1), or when a frame was over
// the read limit, which a resume would send again.
func (c *Client) dropError(err error) *handshakeError {
	if errors.Is(err, websocket.ErrMessageTooBig) {
		return &handshakeError{code: CodeMessageTooBig, permanent: true, msg: fmt.Sprintf("a frame of more than %d bytes (Options.ReadLimit) arrived: not reconnecting, as a resume would send it again", c.opts.ReadLimit)}
	}
	status := websocket.CloseStatus(err)
	if code, ok := closeCodes[status]; ok {
		if status == closeReplaced {
			return &handshakeError{code: code, permanent: true, msg: "another connection took the session over (close 4001): not reconnecting"}
		}
		if status == closeEnded {
			return &handshakeError{code: code, permanent: true, msg: "the operator ended the session (close 4003): not reconnecting"}
		}
		return &handshakeError{code: code, permanent: true, msg: fmt.Sprintf("the server closed the connection with %d: not reconnecting, as it would close it again (%v)", status, err)}
	}
	return &handshakeError{msg: err.Error()}
}

// firstFailure is the error of Dial: every failure of the first connection is a
// refusal, whatever it would be on a reconnection.
func firstFailure(err error) error {
	return newError(CodeRefused, "%v", err)
}

// permanentError is the client's end after a permanent handshake or close.
func permanentError(he *handshakeError) *Error {
	code := he.code
	if he.status != 0 {
		code = CodeRefused
	}
	return newError(code, "%s", he.msg)
}

func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return data
}
