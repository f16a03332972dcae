package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// A worker drives one connection: it dials, waits for connected, sends its queries
// one after another (or holds the connection, with -idle), and disconnects.
type worker struct {
	r         *runner
	id        int
	sessionID string
	conn      *websocket.Conn
	queryIDs  bool // the server claims query_id: every frame of a stream carries it
	counts    counts
	free      time.Time // open loop: when the connection last became free to send
	echoBuf   []byte    // -echo: the frame being echoed
	readBuf   []byte    // the message read last; the next read reuses it
	closing   atomic.Bool

	// The reads' -timeout: readCtx ends when readTimer goes off, which each read sets
	// again (one context and one timer for the reads of a context, not one each).
	readParent context.Context
	readCtx    context.Context
	readCancel context.CancelFunc
	readTimer  *time.Timer
}

// errStop ends a worker's queries: its connection failed (the failure is recorded),
// or the run was interrupted.
var errStop = errors.New("stop")

// dial opens the connection and reads its connected frame (none with -echo). It
// records the connect latency, or the failure.
func (w *worker) dial(ctx context.Context) error {
	c := w.r.cfg
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	opts := &websocket.DialOptions{HTTPHeader: http.Header{}}
	if c.token != "" {
		opts.HTTPHeader.Set("Authorization", "Bearer "+c.token)
	}
	conn, resp, err := websocket.Dial(ctx, w.r.endpoint(w.sessionID), opts)
	if err != nil {
		if w.r.interrupted() {
			return errStop
		}
		kind, detail := dialFailure(ctx, resp, err)
		w.r.rec.fail(kind, detail, fmt.Sprintf("connection %d: %v", w.id, err))
		return errStop
	}
	w.conn = conn
	conn.SetReadLimit(c.maxFrameBytes)
	if !c.echo {
		if err := w.readConnected(ctx); err != nil {
			return err
		}
	}
	w.counts.opened++
	w.r.rec.latency(latConnect, time.Since(start))
	return nil
}

// dialFailure classifies a failed handshake: its HTTP status and the code of its JSON
// body (spec section 15.3), or the cause of a failure before any answer.
func dialFailure(ctx context.Context, resp *http.Response, err error) (kind, detail string) {
	switch {
	case resp != nil:
		detail = "HTTP " + strconv.Itoa(resp.StatusCode)
		var body struct {
			Code string `json:"code"`
		}
		if resp.Body != nil && json.NewDecoder(resp.Body).Decode(&body) == nil && body.Code != "" {
			detail += " " + body.Code
		}
		return errDial, detail
	case ctx.Err() != nil:
		return errTimeout, "handshake"
	case errors.Is(err, syscall.ECONNREFUSED):
		return errDial, "connection refused"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return errDial, "too many open files"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return errDial, "no local port left"
	}
	return errDial, "other"
}

// readConnected reads the first frame, which must be connected for this session
// (CONN-1, CONN-3), and keeps the server's capabilities.
func (w *worker) readConnected(ctx context.Context) error {
	f, err := w.readFrame(ctx, "connected")
	if err != nil {
		return err
	}
	if f == nil || f.Type != typeConnected {
		got := "an invalid frame"
		if f != nil {
			got = quote(f.Type)
		}
		w.r.rec.failCheck(checkConnected, fmt.Sprintf("connection %d: the first frame is %s, want connected", w.id, got))
		w.conn.CloseNow()
		return errStop
	}
	if f.SessionID != w.sessionID {
		w.r.rec.failCheck(checkConnected, fmt.Sprintf("connection %d: connected names session %s, want %s", w.id, quote(f.SessionID), quote(w.sessionID)))
	}
	w.queryIDs = slices.Contains(f.Capabilities, "query_id")
	w.r.noteCapabilities(f.Capabilities)
	return nil
}

// readMessage reads one message within -timeout (without bound with -idle: an idle
// connection may get no frame). A failure is recorded, with awaiting saying what was
// awaited, and returned as errStop.
func (w *worker) readMessage(ctx context.Context, awaiting string) (websocket.MessageType, []byte, error) {
	rctx := ctx
	if !w.r.cfg.idle {
		rctx = w.readContext(ctx)
		w.readTimer.Reset(w.r.cfg.timeout)
		defer func() {
			if !w.readTimer.Stop() { // it went off: the next read gets a context of its own
				w.readParent = nil
			}
		}()
	}
	typ, data, err := w.read(rctx)
	if err != nil {
		w.readFailure(rctx, err, awaiting)
		return 0, nil, errStop
	}
	w.counts.framesRead++
	w.counts.bytesRead += int64(len(data))
	return typ, data, nil
}

// readContext returns the context of the reads under ctx: it ends with ctx, or when
// readTimer goes off (a read that took -timeout, which ends the connection's work).
func (w *worker) readContext(ctx context.Context) context.Context {
	if w.readParent != ctx {
		if w.readTimer != nil {
			w.readTimer.Stop()
			w.readCancel() // it leaves its parent's children
		}
		rctx, cancel := context.WithCancel(ctx)
		w.readParent, w.readCtx, w.readCancel = ctx, rctx, cancel
		w.readTimer = time.AfterFunc(w.r.cfg.timeout, cancel)
		w.readTimer.Stop()
	}
	return w.readCtx
}

// keptReadBytes bounds the buffer a connection keeps for its next read.
const keptReadBytes = 64 << 10

// read reads one message into readBuf, which it returns: valid until the next read.
func (w *worker) read(ctx context.Context) (websocket.MessageType, []byte, error) {
	typ, r, err := w.conn.Reader(ctx)
	if err != nil {
		return 0, nil, err
	}
	buf := w.readBuf[:0]
	if cap(buf) > keptReadBytes {
		buf = nil // a large message once is no reason to keep its bytes
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			w.readBuf = buf
			return typ, buf, nil
		}
		if err != nil {
			return 0, nil, err
		}
	}
}

// readFailure records why a read failed, unless the run was interrupted or the
// worker closed the connection itself.
func (w *worker) readFailure(rctx context.Context, err error, awaiting string) {
	if w.closing.Load() {
		return
	}
	example := fmt.Sprintf("connection %d, awaiting %s: %v", w.id, awaiting, err)
	switch code := websocket.CloseStatus(err); {
	case code != -1:
		w.r.rec.fail(errClose, strconv.Itoa(int(code)), example)
	case w.r.interrupted():
	case rctx.Err() != nil:
		w.r.rec.fail(errTimeout, awaiting, example)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		w.r.rec.fail(errRead, "connection closed without a close frame", example)
	case errors.Is(err, syscall.ECONNRESET):
		w.r.rec.fail(errRead, "connection reset", example)
	default:
		w.r.rec.fail(errRead, "other", example)
	}
}

// readFrame reads one message and parses it as a server frame. An invalid one is a
// failed check, returned as a nil frame and no error.
func (w *worker) readFrame(ctx context.Context, awaiting string) (*frame, error) {
	typ, data, err := w.readMessage(ctx, awaiting)
	if err != nil {
		return nil, err
	}
	if typ != websocket.MessageText {
		w.r.rec.failCheck(checkInvalidFrame, fmt.Sprintf("connection %d: a binary frame of %d bytes (ENV-1)", w.id, len(data)))
		return nil, nil
	}
	f, err := parseFrame(w.r.validator, data)
	if err != nil {
		w.r.rec.failCheck(checkInvalidFrame, fmt.Sprintf("connection %d: %v: %s", w.id, err, quote(string(data))))
		return nil, nil
	}
	return f, nil
}

// write sends one text message within -timeout.
func (w *worker) write(ctx context.Context, data []byte, what string) error {
	wctx, cancel := context.WithTimeout(ctx, w.r.cfg.timeout)
	defer cancel()
	if err := w.conn.Write(wctx, websocket.MessageText, data); err != nil {
		example := fmt.Sprintf("connection %d, writing %s: %v", w.id, what, err)
		switch {
		case w.r.interrupted():
		case wctx.Err() != nil:
			w.r.rec.fail(errTimeout, "write", example)
		default:
			w.r.rec.fail(errWrite, "", example)
		}
		return errStop
	}
	w.counts.framesWritten++
	return nil
}

// disconnect ends the session (DISC-1): disconnect, then disconnected and the
// server's close 1000. Frames of no query may still come before it.
func (w *worker) disconnect(ctx context.Context) {
	defer w.conn.CloseNow()
	if w.r.cfg.echo {
		w.conn.Close(websocket.StatusNormalClosure, "")
		return
	}
	if w.write(ctx, []byte(`{"type":"disconnect"}`), "disconnect") != nil {
		return
	}
	w.readUntilDisconnected(ctx, "disconnected", "after disconnect, want disconnected")
}

// readUntilDisconnected reads frames until disconnected and then the close after it,
// or until the connection fails. Frames of no query are ignored; any other is out of
// order, where (such as "after disconnect") says how.
func (w *worker) readUntilDisconnected(ctx context.Context, awaiting, where string) {
	for {
		f, err := w.readFrame(ctx, awaiting)
		if err != nil {
			return
		}
		switch {
		case f == nil, ignorable(f.Type):
		case f.Type == typeDisconnected:
			w.awaitClose(ctx)
			return
		default:
			w.r.rec.failCheck(checkOrder, fmt.Sprintf("connection %d: %s %s", w.id, quote(f.Type), where))
		}
	}
}

// awaitClose waits for the server's close 1000 after disconnected (DISC-2).
func (w *worker) awaitClose(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, w.r.cfg.timeout)
	defer cancel()
	_, data, err := w.conn.Read(rctx)
	switch code := websocket.CloseStatus(err); {
	case err == nil:
		w.r.rec.failCheck(checkOrder, fmt.Sprintf("connection %d: a frame after disconnected: %s", w.id, quote(string(data))))
	case code == websocket.StatusNormalClosure, w.r.interrupted():
	default:
		w.readFailure(rctx, err, "the close after disconnected")
	}
}

// endpoint returns the URL of the connection of session id.
func (r *runner) endpoint(id string) string {
	u := *r.url
	q := u.Query()
	q.Set("session_id", id)
	u.RawQuery = q.Encode()
	return u.String()
}

// queryText returns the k-th query of connection i: "load I.K " filled to n
// characters with letters, so that every query of a run differs.
func queryText(i, k, n int) string {
	return string(appendQueryText(make([]byte, 0, n+len(filler)), i, k, n))
}

// appendQueryText appends queryText(i, k, n) to b.
func appendQueryText(b []byte, i, k, n int) []byte {
	start := len(b)
	b = append(b, "load "...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(k), 10)
	b = append(b, ' ')
	for len(b)-start < n {
		b = append(b, filler...)
	}
	return b[:start+n]
}

const filler = "abcdefghijklmnopqrstuvwxyz"

// parseURL parses -url (checked by parse).
func parseURL(s string) *url.URL {
	u, _ := url.Parse(s)
	return u
}
