package conformance

// The scripted server of the client cases: the harness plays the server, and the
// client under test, run through its adapter, is checked against the client rules
// (spec/PROTOCOL.md section 14).

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	neturl "net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/agentws/agentws/schemas"
)

// scriptServer listens on a loopback port for the client of one case. It holds every
// WebSocket handshake until the script decides (accept, refuse), and keeps the one
// session the script plays: its epoch, its seq and the frames it sent.
type scriptServer struct {
	st       *caseState
	ln       net.Listener
	srv      *http.Server
	url      string        // the endpoint: ws://127.0.0.1:PORT/ws
	arrivals chan *arrival // handshakes the script has not answered yet

	mu        sync.Mutex
	attempts  []time.Time // when each handshake arrived
	dropped   time.Time   // when the script last ended a connection
	params    []neturl.Values
	epoch     string
	epochs    int
	seq       int
	history   []sentFrame // the session-scoped frames, in seq order (with resume)
	query     string      // the text of the client's query
	queryID   string      // its query_id: the client's, or one the server gave it
	chunks    int         // chunks of the current stream
	answer    strings.Builder
	complete  *string  // the full_response of the complete sent, if one was
	unwritten []string // the types of the frames not written, the client gone
	adapter   *adapter
}

// sentFrame is a session-scoped frame the server produced, with its seq (0 without
// resume).
type sentFrame struct {
	seq  int
	data []byte
}

// arrival is a handshake waiting for the script.
type arrival struct {
	w    http.ResponseWriter
	r    *http.Request
	raw  net.Conn
	at   time.Time
	mu   sync.Mutex
	gone bool          // the handler returned: the script may not answer it any more
	done chan struct{} // closed once the script answered it
}

type rawConnKey struct{}

const scriptPath = "/ws"

func newScriptServer(st *caseState) (*scriptServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("the scripted server cannot listen: %w", err)
	}
	s := &scriptServer{st: st, ln: ln, url: "ws://" + ln.Addr().String() + scriptPath, arrivals: make(chan *arrival, 64), epoch: "epoch-1", epochs: 1}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: st.opts.FrameTimeout,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, rawConnKey{}, c)
		},
	}
	go s.srv.Serve(ln)
	return s, nil
}

// ServeHTTP queues a handshake for the script and holds it until the script answers,
// or the case ends.
func (s *scriptServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != scriptPath {
		httpError(w, http.StatusNotFound, "not_found", "the scripted server serves "+scriptPath+" only")
		return
	}
	raw, _ := r.Context().Value(rawConnKey{}).(net.Conn)
	a := &arrival{w: w, r: r, raw: raw, at: time.Now(), done: make(chan struct{})}
	s.mu.Lock()
	s.attempts = append(s.attempts, a.at)
	s.params = append(s.params, r.URL.Query())
	s.mu.Unlock()
	s.st.wire.add(wireEntry{conn: "-", dir: "#", text: "handshake " + r.URL.RequestURI()})
	select {
	case s.arrivals <- a:
	default:
		httpError(w, http.StatusServiceUnavailable, "server_full", "the scripted server holds 64 handshakes at most")
		return
	}
	select {
	case <-a.done:
	case <-s.st.ctx.Done():
		a.mu.Lock()
		a.gone = true
		a.mu.Unlock()
		select {
		case <-a.done: // the script was answering it
		default:
			httpError(w, http.StatusServiceUnavailable, "draining", "the case ended")
		}
	}
}

func httpError(w http.ResponseWriter, status int, code, text string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": text, "code": code})
}

// next waits for the next handshake, within d.
func (s *scriptServer) next(d time.Duration) (*arrival, error) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	var exited <-chan struct{}
	if s.adapter != nil {
		exited = s.adapter.done
	}
	for {
		select {
		case <-exited:
			return nil, fmt.Errorf("the client %s, without connecting", s.adapter.describe())
		case a := <-s.arrivals:
			a.mu.Lock()
			gone := a.gone
			a.mu.Unlock()
			if gone {
				continue
			}
			return a, nil
		case <-timer.C:
			return nil, fmt.Errorf("the client did not connect within %v", d)
		case <-s.st.ctx.Done():
			return nil, context.Cause(s.st.ctx)
		}
	}
}

// answer lets the script answer a, unless its handler gave up (the case ended); it
// reports whether it ran.
func (a *arrival) answer(f func()) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.gone {
		return false
	}
	f()
	close(a.done)
	return true
}

// finish ends what the case started: the adapter (killed, then judged on what it
// printed), the connections, the listener.
func (s *scriptServer) finish() {
	if s.adapter != nil {
		s.adapter.stop()
		s.judgeExit(s.adapter)
	}
	for _, c := range s.st.sconns {
		c.release()
	}
	s.srv.Close()
}

// sconn is the server side of one connection of the client.
type sconn struct {
	name   string
	s      *scriptServer
	ws     *websocket.Conn
	raw    net.Conn
	params neturl.Values
	caps   []string
	in     *inbox
	stop   context.CancelFunc
	done   chan struct{}
	ended  bool // the script ended the connection (drop, close, a takeover)
}

func (c *sconn) claims(capability string) bool { return slices.Contains(c.caps, capability) }

// read reads the client's frames: it checks each (ENV-1, CLIENT-6, CLIENT-2),
// answers ping with pong, as any server does, and queues the rest.
func (c *sconn) read(ctx context.Context) {
	defer close(c.done)
	st := c.s.st
	for {
		typ, data, err := c.ws.Read(ctx)
		if err != nil {
			e := event{at: time.Now(), end: err}
			st.wire.add(wireEntry{conn: c.name, dir: "#", text: describe(e)})
			c.in.finish(e)
			return
		}
		e := event{at: time.Now(), data: data, binary: typ == websocket.MessageBinary}
		if !e.binary {
			var f map[string]any
			if json.Unmarshal(data, &f) == nil {
				e.frame = f
			}
		}
		st.wire.add(wireEntry{conn: c.name, dir: ">", text: string(data), cmd: fmt.Sprintf("recv %s %s", c.name, e.typ())})
		c.check(e)
		if e.typ() == "ping" {
			c.write(c.s.build(c, "pong", nil))
			continue
		}
		if !c.in.put(e) {
			st.finding("", "%s: more than %d frames or %d bytes unread: the client sends faster than the case reads, so the harness ended the connection", c.name, maxQueued, maxQueuedBytes)
			c.ws.CloseNow()
		}
	}
}

func (c *sconn) check(e event) {
	st := c.s.st
	switch {
	case e.binary:
		st.finding("ENV-1", "%s: the client sent a binary frame", c.name)
		return
	case e.frame == nil:
		st.finding("ENV-1", "%s: the client sent a frame that is not a JSON object: %s", c.name, truncate(string(e.data), 200))
		return
	}
	if err := st.v.ValidateMessage(schemas.Client, e.data); err != nil {
		st.finding("CLIENT-6", "%s: a %q frame breaks client-message.json: %v: %s", c.name, e.typ(), err, truncate(string(e.data), 200))
	}
	if e.typ() == "cancel" && !c.claims("cancel") {
		st.finding("CLIENT-2", "%s: the client sent cancel, and the server's connected claims no cancel capability: %s", c.name, truncate(string(e.data), 200))
	}
}

// write sends a frame within the frame timeout; a client that is gone makes it fail.
// clientLeft reports whether the client, not the script, ended the connection: a
// write that fails because of it is not the script's to fail, the client may
// leave (a gap it reports, a query it gives up). It waits a frame timeout at
// most for the reader to see the end.
func (c *sconn) clientLeft() bool {
	if c.ended {
		return false
	}
	timer := time.NewTimer(c.s.st.opts.FrameTimeout)
	defer timer.Stop()
	select {
	case <-c.done:
		return !c.ended
	case <-timer.C:
		return false
	case <-c.s.st.ctx.Done():
		return false
	}
}

func (c *sconn) write(data []byte) error {
	ctx, cancel := context.WithTimeout(c.s.st.ctx, c.s.st.opts.FrameTimeout)
	defer cancel()
	c.s.st.wire.add(wireEntry{conn: c.name, dir: "<", text: string(data), cmd: fmt.Sprintf("send %s raw %s", c.name, quote(string(data)))})
	return c.ws.Write(ctx, websocket.MessageText, data)
}

// next returns the client's next frame (or the connection's end) within w.
func (c *sconn) next(w wait) (event, error) {
	timer := time.NewTimer(time.Until(w.until))
	defer timer.Stop()
	for {
		if e, ok := c.in.take(); ok {
			return e, nil
		}
		select {
		case <-c.in.wake:
		case <-timer.C:
			return event{}, fmt.Errorf("no frame from the client on %s within %v", c.name, w.of)
		case <-c.s.st.ctx.Done():
			return event{}, context.Cause(c.s.st.ctx)
		}
	}
}

// drop ends the connection abruptly, without a close frame, as a network failure
// would: what was sent still reaches the client (a FIN after the data), then the
// connection is closed once the client ends its side, or after the frame timeout.
func (c *sconn) drop() {
	c.ended = true
	c.s.st.wire.add(wireEntry{conn: c.name, dir: "#", text: "drop (no close frame)", cmd: "drop " + c.name})
	c.s.noteDrop()
	if hc, ok := c.raw.(interface{ CloseWrite() error }); ok && hc.CloseWrite() == nil {
		timer := time.NewTimer(c.s.st.opts.FrameTimeout)
		defer timer.Stop()
		select {
		case <-c.done:
		case <-timer.C:
		case <-c.s.st.ctx.Done():
		}
	}
	c.release()
}

func (c *sconn) release() {
	c.ended = true
	c.stop()
	c.ws.CloseNow()
	<-c.done
}

func (s *scriptServer) noteDrop() {
	s.mu.Lock()
	s.dropped = time.Now()
	s.mu.Unlock()
}

// accept upgrades a handshake and sends connected: the capabilities caps (none: a
// core 1.0 connected, without protocol_version), the session's epoch and, when the
// request resumes, resumed and missed, with extra members set or removed.
func (s *scriptServer) accept(a *arrival, name string, caps []string, resumed *bool, missed int, extra map[string]any) (*sconn, error) {
	var c *sconn
	var err error
	ok := a.answer(func() {
		var ws *websocket.Conn
		ws, err = websocket.Accept(a.w, a.r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		ws.SetReadLimit(s.st.opts.readLimit())
		ctx, stop := context.WithCancel(s.st.ctx)
		c = &sconn{name: name, s: s, ws: ws, raw: a.raw, params: a.r.URL.Query(), caps: caps, in: newInbox(), stop: stop, done: make(chan struct{})}
		go c.read(ctx)
	})
	switch {
	case !ok:
		return nil, context.Cause(s.st.ctx)
	case err != nil:
		return nil, fmt.Errorf("the upgrade of the client's handshake failed: %w", err)
	}
	s.st.sconns[name] = c
	f := map[string]any{"type": "connected", "message": "Connected to the scripted server", "session_id": c.params.Get("session_id"), "timestamp": now()}
	if len(caps) > 0 {
		f["protocol_version"] = "1.1"
		f["capabilities"] = caps
	}
	if c.claims("resume") {
		s.mu.Lock()
		f["epoch"] = s.epoch
		if c.params.Has("last_seq") {
			if resumed == nil {
				r := c.params.Get("epoch") == s.epoch
				resumed = &r
			}
			f["resumed"] = *resumed
			if missed > 0 {
				f["missed"] = missed
			}
		}
		s.mu.Unlock()
	}
	for k, v := range extra {
		if v == nil {
			delete(f, k)
		} else {
			f[k] = v
		}
	}
	data, _ := json.Marshal(f)
	return c, c.write(data)
}

func now() string { return time.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// build makes a server frame of type typ for connection c: a stream frame of the
// session's query (query_start, chunk with args[0] as content, complete, error with
// args[0] as code and args[1] as text), or a connection-scoped one (pong, keepalive,
// disconnected). Session-scoped frames carry query_id and seq when c claims them.
func (s *scriptServer) build(c *sconn, typ string, args []string) []byte {
	data, _ := s.produce(c, typ, args, nil)
	return data
}

// produce builds a frame as build does, sets or removes (nil) the members of extra,
// and keeps a session-scoped one in the session's history; it notes the full_response
// of a complete, which the client's answer is judged by (CLIENT-7).
func (s *scriptServer) produce(c *sconn, typ string, args []string, extra map[string]any) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.buildLocked(c, typ, args)
	for k, v := range extra {
		if v == nil {
			delete(f, k)
		} else {
			f[k] = v
		}
	}
	data, err := json.Marshal(f)
	if err != nil {
		return nil, err
	}
	if seq, ok := f["seq"].(int); ok {
		s.history = append(s.history, sentFrame{seq: seq, data: data})
	}
	if typ == "complete" {
		full, _ := f["full_response"].(string)
		s.complete = &full
	}
	return data, nil
}

// kept returns the frames of the history with a seq above from, in order.
func (s *scriptServer) kept(from int) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][]byte
	for _, f := range s.history {
		if f.seq > from {
			out = append(out, f.data)
		}
	}
	return out
}

func (s *scriptServer) buildLocked(c *sconn, typ string, args []string) map[string]any {
	f := map[string]any{"type": typ, "timestamp": now()}
	sid := c.params.Get("session_id")
	session := true
	switch typ {
	case "query_start":
		f["query"], f["session_id"] = s.query, sid
		s.chunks = 0
		s.answer.Reset()
	case "chunk":
		s.chunks++
		f["content"], f["chunk_number"], f["session_id"] = arg(args, 0), s.chunks, sid
		s.answer.WriteString(arg(args, 0))
	case "complete":
		f["full_response"], f["total_chunks"], f["session_id"] = s.answer.String(), s.chunks, sid
	case "error":
		f["error"], f["session_id"] = arg(args, 1), sid
		if f["error"] == "" {
			f["error"] = "Query execution failed: the scripted agent failed"
		}
		if c.claims("error_codes") {
			f["code"] = arg(args, 0)
		}
	case "disconnected":
		f["session_id"], f["message"] = sid, "Disconnected"
		session = false
	case "notice":
		// session-scoped, but of no query (NOTICE-2): a seq with resume, no query_id
		f["session_id"], f["notice_id"], f["message"], f["level"] = sid, "n-scripted-1", "Maintenance in 5 minutes", "warning"
		if c.claims("resume") {
			s.seq++
			f["seq"] = s.seq
		}
		session = false
	default: // pong, keepalive, and types of the case's own
		session = false
	}
	if session && c.claims("query_id") && s.queryID != "" {
		f["query_id"] = s.queryID
	}
	if session && c.claims("resume") {
		s.seq++
		f["seq"] = s.seq
	}
	return f
}

func arg(args []string, i int) string {
	if i < len(args) {
		return args[i]
	}
	return ""
}
