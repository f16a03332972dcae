package selftest_test

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	gocmp "github.com/google/go-cmp/cmp"

	"github.com/agentws/agentws/conformance"
	"github.com/agentws/agentws/conformance/internal/reftest"
	"github.com/agentws/agentws/reference/server"
)

// The hostile servers: each misbehaves in one way a real server (or an attacker) might,
// in front of the in-process reference server where the rest of the protocol should
// still be right, or standing alone where misbehaving is all it does. Against each,
// a run must end within a bound, report the rule that is broken, and never panic.

// hostileFrameTimeout keeps the runs short: every wait of a case is a few of these. It
// is twice the longest wait of a case for what a correct server sends (a slow fixture
// stream, about 700 ms), so that a loaded machine does not fail a rule the hostility
// leaves alone.
const hostileFrameTimeout = 2 * time.Second

// A hostile server, its expected report, and the bound its run must end within.
type hostileCase struct {
	name  string
	start func(t *testing.T, upstream string) string // returns the server's URL
	cases []string                                   // nil: the whole catalogue
	// fail are the rules that must fail ("" for a harness finding, such as a flood);
	// warn those that must warn.
	fail, warn []string
	// failure, when not "", must be in some failed case's failure or findings.
	failure string
	bound   time.Duration
	// frameTimeout, when not 0, replaces hostileFrameTimeout.
	frameTimeout time.Duration
}

// TestHostileServers runs the harness against each hostile server, and checks that the
// report fails (or warns) exactly the rules the server breaks: each expected set says
// why each of its rules is broken. A whole-catalogue run (82 cases, 8 at a time, 2 s
// frame timeout) must end within 45 s: the slowest case against the reference takes
// about 7 s (a TTL wait), and a case that waits for what never comes fails after a
// frame timeout or a few (four for stream and skipto). Runs of a representative set of
// cases are used where every case would meet the same hostility (a flood, a frame too
// large, a connection cut short): they are each bounded by 20 s.
// hostileBufferBytes is the byte bound of the reference behind the hostile servers.
const hostileBufferBytes = 64 << 10

func TestHostileServers(t *testing.T) {
	for _, tt := range []hostileCase{
		{
			name:  "keepalive forever, ignoring binary frames, oversized messages and takeovers",
			start: func(t *testing.T, up string) string { return stubborn(t, up) },
			// It closes no connection, so every rule that promises a close breaks: after
			// a message over the limit (ENV-7), invalid UTF-8 (ENV-8: the reference's 1007
			// is not passed on), a takeover (TAKE-1), disconnected (DISC-1) and the
			// operator's end of a session (ADMIN-4: 4003); and the
			// SHOULD rules of their codes, 1003 for a binary frame (ENV-6) and 1000 after
			// disconnected (DISC-2). The cases that rely on those closes (disc_ends_session,
			// health_messages_sent, take_newer_unaffected, take_stream_moves) fail the
			// rule of the close.
			fail: []string{"ENV-7", "ENV-8", "TAKE-1", "DISC-1", "ADMIN-4"}, warn: []string{"ENV-6", "DISC-2"},
			failure: "the connection is still open", bound: 45 * time.Second,
		},
		{
			name:  "invalid UTF-8 in a text frame",
			start: func(t *testing.T, up string) string { return rawProxy(t, up, rawHostility{frame: invalidUTF8}) },
			// Every pong carries it: a finding against ENV-1 in every case that gets one.
			fail: []string{"ENV-1"}, failure: "not valid UTF-8", bound: 45 * time.Second,
		},
		{
			name:  "a flood of frames",
			start: func(t *testing.T, up string) string { return rawProxy(t, up, rawHostility{frame: flood}) },
			// ka_websocket_ping's WebSocket ping is answered after the flood: wsping waits
			// (up to the long frame timeout) until the flood has overflowed the inbox.
			cases: []string{"ka_websocket_ping"}, frameTimeout: time.Minute,
			fail: []string{""}, failure: "frames or 67108864 bytes unread", bound: 20 * time.Second,
		},
		{
			name:  "a 64 MiB frame",
			start: func(t *testing.T, up string) string { return rawProxy(t, up, rawHostility{frame: huge}) },
			cases: []string{"ping_pong", "stream_echo"}, // each connection costs 16 MiB of reading
			// Reading 16 MiB under the race detector, beside seven other hostile servers,
			// can take longer than the 2 s frame timeout: the finding must be the limit's.
			frameTimeout: 10 * time.Second,
			// A harness finding, of no rule: the harness will not read it.
			fail: []string{""}, failure: "over the harness's read limit", bound: 20 * time.Second,
		},
		{
			name:  "a connection closed in the middle of a frame",
			start: func(t *testing.T, up string) string { return rawProxy(t, up, rawHostility{frame: cutShort}) },
			// Every connection ends in the middle of its second frame, so every case that
			// waits for a second frame fails its own rule, genuinely: the server delivers
			// nothing after connected. ping_pong is the case whose second frame is all its
			// rule promises.
			cases: []string{"ping_pong"},
			fail:  []string{"PING-1"}, failure: "without a close frame", bound: 20 * time.Second,
		},
		{
			name:  "a stream that never ends",
			start: func(t *testing.T, up string) string { return rawProxy(t, up, rawHostility{frame: endless}) },
			cases: []string{"stream_echo", "stream_totals"},
			// A stream without its terminal frame breaks STREAM-1, which stream names
			// itself; the rules the cases check of a whole stream are not judged.
			fail: []string{"STREAM-1"}, failure: "the stream did not end within 8s", bound: 20 * time.Second,
		},
		{
			name: "bytes trickling, one every 20 ms",
			start: func(t *testing.T, up string) string {
				return rawProxy(t, up, rawHostility{trickle: 20 * time.Millisecond})
			},
			// connected (some 200 bytes) takes longer than the frame timeout to arrive, so
			// every wait for a connection's first frame runs out: CONN-1, in every case
			// (the probe finds no capabilities either).
			fail: []string{"CONN-1"}, failure: "want connected first", bound: 45 * time.Second,
		},
		{
			name:  "a stall after the upgrade",
			start: func(t *testing.T, up string) string { return stalling(t, up) },
			// Every wait for a connection's first frame runs out: CONN-1, in every case,
			// whatever rules the case checks (the probe finds no capabilities, so the
			// cases that need one are skipped).
			fail: []string{"CONN-1"}, failure: "not a frame since c opened: want connected first", bound: 45 * time.Second,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// A reference server of its own: a broadcast to all (notice_all) reaches every
			// session of its server, which no other run may share. A small byte bound
			// keeps buf_byte_bound's big query small: eight hostile servers relay at once,
			// and the case is about the buffer, not about the hostility.
			upstream, _ := reftest.Start(t, func(cfg *server.Config) { cfg.BufferBytes = hostileBufferBytes })
			opts := reftest.Options(tt.start(t, upstream))
			opts.BufferBytes = hostileBufferBytes
			opts.Cases, opts.FrameTimeout = tt.cases, cmp.Or(tt.frameTimeout, hostileFrameTimeout)
			start := time.Now()
			rep, err := conformance.Run(t.Context(), opts)
			took := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			if took > tt.bound {
				t.Errorf("the run took %v, over its bound of %v", took, tt.bound)
			}
			t.Logf("%s in %v; failed rules %q\n%s", rep.Tally(), took.Round(time.Millisecond), failedRules(rep, conformance.Fail), failures(rep))
			// The rules broken, and nothing else (rule "": a harness finding).
			if d := gocmp.Diff(sorted(tt.fail), sorted(failedRules(rep, conformance.Fail))); d != "" {
				t.Errorf("failed rules (-want +got):\n%s\n%s", d, failures(rep))
			}
			if d := gocmp.Diff(sorted(tt.warn), sorted(failedRules(rep, conformance.Warn))); d != "" {
				t.Errorf("warned rules (-want +got):\n%s\n%s", d, failures(rep))
			}
			if !strings.Contains(failures(rep), tt.failure) {
				t.Errorf("no failure says %q:\n%s", tt.failure, failures(rep))
			}
		})
	}
}

// failedRules returns the rules with verdict v, and "" when a case has a harness
// finding (of no rule) and v is Fail.
func failedRules(rep *conformance.Report, v conformance.Verdict) []string {
	var out []string
	for _, r := range rep.Rules {
		if r.Verdict == v {
			out = append(out, r.ID)
		}
	}
	for _, c := range rep.Cases {
		for _, f := range c.Findings {
			if f.Rule == "" && v == conformance.Fail && !slices.Contains(out, "") {
				out = append(out, "")
			}
		}
	}
	return out
}

// Servers that cannot be checked at all make Run say so, within a bound: one that
// accepts TCP connections and never answers, and one that answers HTTP a byte at a time.
func TestUnanswering(t *testing.T) {
	upstream, _ := reftest.Start(t, nil)
	for _, tt := range []struct {
		name string
		url  string
	}{
		{"accepts TCP and never answers HTTP", silentTCP(t)},
		{"answers HTTP a byte every 50 ms", rawProxy(t, upstream, rawHostility{slowHTTP: 50 * time.Millisecond})},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := conformance.DefaultOptions(tt.url)
			opts.FrameTimeout = 500 * time.Millisecond
			start := time.Now()
			rep, err := conformance.Run(t.Context(), opts)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("Run took %v; the probe's dial is bounded by the frame timeout", took)
			}
			if rep != nil || err == nil || !strings.Contains(err.Error(), "cannot connect to the server at "+tt.url) {
				t.Errorf("got report %v, error %v; want the error that it cannot connect", rep != nil, err)
			}
		})
	}
}

// Cancelling Run's context ends a run against a server that answers nothing, at once,
// with the report of what ran and the cause; the case deadline ends a case that would
// wait longer than it.
func TestRunEndsWithItsContext(t *testing.T) {
	upstream, _ := reftest.Start(t, nil)
	url := stubborn(t, upstream)
	t.Run("context", func(t *testing.T) {
		t.Parallel()
		opts := reftest.Options(url)
		opts.FrameTimeout, opts.Cases = time.Minute, []string{"take_replaced", "env_message_size"}
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		start := time.Now()
		rep, err := conformance.Run(ctx, opts)
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("Run took %v after its context ended at 2s", took)
		}
		if rep == nil || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got report %v, error %v; want the report and the context's error", rep != nil, err)
		}
		for _, c := range rep.Cases {
			if c.Verdict != conformance.Fail {
				t.Errorf("%s: %s, want fail", c.Name, c.Verdict)
			}
		}
	})
	t.Run("case deadline", func(t *testing.T) {
		t.Parallel()
		opts := reftest.Options(url)
		opts.FrameTimeout, opts.CaseTimeout, opts.Cases = time.Minute, time.Second, []string{"take_replaced"}
		start := time.Now()
		rep, err := conformance.Run(t.Context(), opts)
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("Run took %v with a case deadline of 1s", took)
		}
		if c := rep.Cases[0]; c.Verdict != conformance.Fail || !strings.Contains(c.Failure, "the case deadline of 1s was hit") {
			t.Errorf("%s: %s, %q; want a failure saying the case deadline was hit", c.Name, c.Verdict, c.Failure)
		}
	})
}

// stubborn relays to the reference server, and sends a keepalive every 50 ms on every
// connection, while it ignores what it should close the connection for: binary frames
// (ENV-6), messages over the reference's limit (ENV-7), and a takeover (TAKE-1).
func stubborn(t *testing.T, upstream string) string {
	u, _ := url.Parse(strings.Replace(upstream, "ws", "http", 1))
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: u.Host})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			rp.ServeHTTP(w, r)
			return
		}
		relayStubborn(w, r, upstream)
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
}

// upConn is a proxy's connection to the server it stands in front of, with the TCP
// connection under it, so that the proxy passes an abrupt end of the client's side on
// as the harness made it: a FIN after what was relayed. A plain close() with frames
// still unread would reset the connection, and the kernel would throw away what it had
// not yet sent, such as the end of a big query the server is slow to read.
type upConn struct {
	*websocket.Conn
	raw net.Conn
}

// upDrainBound bounds how long a proxy waits for the server to end its side after the
// proxy ended its own.
const upDrainBound = 5 * time.Second

// drop ends the proxy's side of the connection after what was written to it, waits for
// the server to end its side (done, closed by the goroutine that reads from the
// server), at most upDrainBound, and closes the connection.
func (u upConn) drop(done <-chan struct{}) {
	if hc, ok := u.raw.(interface{ CloseWrite() error }); ok && hc.CloseWrite() == nil {
		timer := time.NewTimer(upDrainBound)
		defer timer.Stop()
		select {
		case <-done:
		case <-timer.C:
		}
	}
	u.CloseNow()
}

// dialUpstream makes the upgrade request r to upstream, as the client made it to the
// proxy standing in for upstream.
func dialUpstream(r *http.Request, upstream string) (upConn, *http.Response, error) {
	header := http.Header{"Authorization": r.Header.Values("Authorization")}
	switch origin := r.Header.Get("Origin"); origin {
	case "":
	case "http://" + r.Host: // the proxy's own origin is the server's own
		header.Set("Origin", strings.Replace(upstream[:strings.LastIndex(upstream, "/")], "ws", "http", 1))
	default:
		header.Set("Origin", origin)
	}
	// The proxy's own address stands for the upstream's; a host name is passed on, so
	// that the upstream's Host check (HS-13) sees it.
	var host string
	if h, _, _ := net.SplitHostPort(r.Host); net.ParseIP(h) == nil {
		host = r.Host
	}
	var raw net.Conn
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DisableKeepAlives = true
	transport.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		raw = nc
		return nc, err
	}
	ws, resp, err := websocket.Dial(r.Context(), upstream+"?"+r.URL.RawQuery, &websocket.DialOptions{HTTPHeader: header, Host: host, HTTPClient: &http.Client{Transport: transport}})
	transport.CloseIdleConnections()
	return upConn{Conn: ws, raw: raw}, resp, err
}

func relayStubborn(w http.ResponseWriter, r *http.Request, upstream string) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	up, resp, err := dialUpstream(r, upstream)
	if err != nil {
		refuse(w, resp, err)
		return
	}
	defer up.CloseNow()
	up.SetReadLimit(-1)
	down, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true}) // the origin is the server's to check
	if err != nil {
		return
	}
	defer down.CloseNow()
	down.SetReadLimit(-1)
	// The keepalives start once the server's first frame (connected) is passed on:
	// before it, they would break CONN-1 whenever the server is slower than a tick.
	if typ, data, err := up.Read(ctx); err != nil || down.Write(ctx, typ, data) != nil {
		return
	}
	go keepalives(ctx, down)
	done := make(chan struct{})
	go func() { // server to client; the end of the server's connection is not passed on
		defer close(done)
		for {
			typ, data, err := up.Read(ctx)
			if err != nil || down.Write(ctx, typ, data) != nil {
				return
			}
		}
	}()
	for { // client to server, without what the server would close the connection for
		typ, data, err := down.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) == -1 {
				up.drop(done)
			}
			return
		}
		if typ == websocket.MessageBinary || len(data) > 1<<20 {
			continue
		}
		if up.Write(ctx, typ, data) != nil {
			// the server ended its side (a takeover): keep the client's open
			<-ctx.Done()
			return
		}
	}
}

// refuse passes the server's refusal of an upgrade on: its status and body.
func refuse(w http.ResponseWriter, resp *http.Response, err error) {
	if resp == nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

func keepalives(ctx context.Context, c *websocket.Conn) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			frame := fmt.Sprintf(`{"type":"keepalive","timestamp":%q}`, time.Now().UTC().Format(time.RFC3339Nano))
			if c.Write(ctx, websocket.MessageText, []byte(frame)) != nil {
				return
			}
		}
	}
}

// stalling answers HTTP requests, and refuses upgrades, as the reference server does
// (it relays them), and stalls on every connection it upgrades: it neither reads nor
// writes. Only the stall is hostile, so only CONN-1 breaks.
func stalling(t *testing.T, upstream string) string {
	u, _ := url.Parse(strings.Replace(upstream, "ws", "http", 1))
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: u.Host})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			rp.ServeHTTP(w, r)
			return
		}
		up, resp, err := dialUpstream(r, upstream)
		if err != nil {
			refuse(w, resp, err)
			return
		}
		up.CloseNow() // the reference would accept it: stall instead
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		defer c.CloseNow()
		<-r.Context().Done()
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
}

// silentTCP accepts TCP connections and never answers.
func silentTCP(t *testing.T) string {
	ln := listen(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ln.track(c)
		}
	}()
	return "ws://" + ln.Addr().String() + "/ws"
}

// A listener on 127.0.0.1 that closes the connections it accepted when the test ends.
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func listen(t *testing.T) *trackingListener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := &trackingListener{Listener: ln}
	t.Cleanup(func() {
		ln.Close()
		tl.mu.Lock()
		defer tl.mu.Unlock()
		for _, c := range tl.conns {
			c.Close()
		}
	})
	return tl
}

func (l *trackingListener) track(c net.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.conns = append(l.conns, c)
}

// rawHostility says how rawProxy misbehaves: the HTTP answer a byte at a time, every
// byte of the frames after it a byte at a time, or frame by frame.
type rawHostility struct {
	slowHTTP time.Duration // the delay before each byte of the HTTP answer
	trickle  time.Duration // the delay before each byte of the frames
	// frame writes the n-th frame of a connection (n from 0), as it is or otherwise;
	// an error ends the connection.
	frame func(w io.Writer, n int, f wsFrame) error
}

// rawProxy relays TCP connections to the reference server: the client's bytes as they
// are, the server's as h says.
func rawProxy(t *testing.T, upstream string, h rawHostility) string {
	u, _ := url.Parse(upstream)
	ln := listen(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ln.track(c)
			go h.serve(c, u.Host)
		}
	}()
	return "ws://" + ln.Addr().String() + "/ws"
}

func (h rawHostility) serve(c net.Conn, host string) {
	defer c.Close()
	up, err := net.Dial("tcp", host)
	if err != nil {
		return
	}
	defer up.Close()
	go func() {
		io.Copy(up, c)
		up.Close()
	}()
	br := bufio.NewReader(up)
	head, err := readHead(br)
	if err != nil {
		return
	}
	upgraded := bytes.HasPrefix(head, []byte("HTTP/1.1 101"))
	if !upgraded {
		// One answer per connection: a client must not reuse it for an upgrade, whose
		// frames would then pass unchanged.
		head = append(head[:len(head)-2], "Connection: close\r\n\r\n"...)
	}
	if writeSlowly(c, head, h.slowHTTP) != nil {
		return
	}
	if !upgraded {
		io.Copy(c, br)
		return
	}
	var w io.Writer = c
	if h.trickle > 0 {
		w = trickler{c, h.trickle}
	}
	write := h.frame
	if write == nil {
		write = func(w io.Writer, _ int, f wsFrame) error { return f.write(w) }
	}
	for n := 0; ; n++ {
		f, err := readFrame(br)
		if err != nil || write(w, n, f) != nil {
			return
		}
	}
}

// readHead reads an HTTP answer's status line and headers.
func readHead(br *bufio.Reader) ([]byte, error) {
	var head []byte
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return nil, err
		}
		head = append(head, line...)
	}
	return head, nil
}

func writeSlowly(w io.Writer, p []byte, delay time.Duration) error {
	if delay == 0 {
		_, err := w.Write(p)
		return err
	}
	_, err := trickler{w, delay}.Write(p)
	return err
}

// trickler writes a byte at a time, each after a delay.
type trickler struct {
	w     io.Writer
	delay time.Duration
}

func (t trickler) Write(p []byte) (int, error) {
	for i := range p {
		time.Sleep(t.delay) // the hostility itself: a slow server
		if _, err := t.w.Write(p[i : i+1]); err != nil {
			return i, err
		}
	}
	return len(p), nil
}

// wsFrame is a WebSocket frame from the server (RFC 6455 section 5.2), unmasked.
type wsFrame struct {
	head    byte // FIN, RSV and opcode
	payload []byte
}

func (f wsFrame) text() bool { return f.head&0x0f == 1 }

func readFrame(br *bufio.Reader) (wsFrame, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return wsFrame{}, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(br, ext[:]); err != nil {
			return wsFrame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(br, ext[:]); err != nil {
			return wsFrame{}, err
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	f := wsFrame{head: h[0], payload: make([]byte, n)}
	_, err := io.ReadFull(br, f.payload)
	return f, err
}

// header returns the frame's header for a payload of n bytes.
func (f wsFrame) header(n int) []byte {
	switch {
	case n < 126:
		return []byte{f.head, byte(n)}
	case n < 1<<16:
		return binary.BigEndian.AppendUint16([]byte{f.head, 126}, uint16(n))
	}
	return binary.BigEndian.AppendUint64([]byte{f.head, 127}, uint64(n))
}

func (f wsFrame) write(w io.Writer) error {
	_, err := w.Write(append(f.header(len(f.payload)), f.payload...))
	return err
}

// invalidUTF8 puts bytes that are not UTF-8 into every pong, inside a string member
// (a JSON decoder that replaces them still reads the frame).
func invalidUTF8(w io.Writer, _ int, f wsFrame) error {
	if f.text() && bytes.Contains(f.payload, []byte(`"pong"`)) {
		f.payload = append(bytes.TrimSuffix(f.payload, []byte("}")), []byte(",\"note\":\"\xff\xfe\"}")...)
	}
	return f.write(w)
}

// flood follows connected with 20,000 keepalives, more than the harness holds unread.
func flood(w io.Writer, n int, f wsFrame) error {
	if err := f.write(w); err != nil || n != 0 {
		return err
	}
	k := wsFrame{head: 0x81, payload: []byte(`{"type":"keepalive","timestamp":"2025-01-01T00:00:00Z"}`)}
	one := append(k.header(len(k.payload)), k.payload...)
	_, err := w.Write(bytes.Repeat(one, 20000))
	return err
}

// endless follows every query_start with chunks, one every 10 ms, without end.
func endless(w io.Writer, _ int, f wsFrame) error {
	if err := f.write(w); err != nil || !f.text() || !bytes.Contains(f.payload, []byte(`"query_start"`)) {
		return err
	}
	var start struct {
		SessionID string `json:"session_id"`
	}
	json.Unmarshal(f.payload, &start)
	for n := 1; ; n++ {
		time.Sleep(10 * time.Millisecond) // the pace of an agent that never finishes
		chunk := fmt.Sprintf(`{"type":"chunk","session_id":%q,"content":"x","chunk_number":%d,"timestamp":%q}`, start.SessionID, n, time.Now().UTC().Format(time.RFC3339Nano))
		if err := (wsFrame{head: 0x81, payload: []byte(chunk)}).write(w); err != nil {
			return err
		}
	}
}

// huge follows connected with a text frame of 64 MiB.
func huge(w io.Writer, n int, f wsFrame) error {
	if err := f.write(w); err != nil || n != 0 {
		return err
	}
	const size = 64 << 20
	big := wsFrame{head: 0x81}
	if _, err := w.Write(big.header(size)); err != nil {
		return err
	}
	chunk := bytes.Repeat([]byte("a"), 1<<20)
	for range size / len(chunk) {
		if _, err := w.Write(chunk); err != nil {
			return err
		}
	}
	return nil
}

// cutShort sends half of the frame after connected, then ends the connection.
func cutShort(w io.Writer, n int, f wsFrame) error {
	if n == 0 {
		return f.write(w)
	}
	w.Write(append(f.header(len(f.payload)), f.payload[:len(f.payload)/2]...))
	return errors.New("cut short")
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	if out == nil {
		out = []string{}
	}
	return out
}
