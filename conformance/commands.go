package conformance

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/agentws/agentws/schemas"
)

// A command is a verb of the transcripts.
type command struct {
	usage   string // "send NAME JSON"
	summary string // one line for the command reference
	run     func(ts *testscript.TestScript, st *caseState, args []string)
}

// commands holds every verb, by name; README.md's command reference is generated from
// it (go test ./conformance -run TestCommandReference -update). It is filled in init:
// the commands' usage errors read it.
var commands map[string]command

func init() { commands = commandTable() }

func commandTable() map[string]command {
	return map[string]command{
		"compare": {
			usage:   "compare A OP B",
			summary: "compares two integers, each a number or a sum such as $SEQ+1; OP is one of == != < <= > >=",
			run:     cmdCompare,
		},
		"drain": {
			usage:   "drain [-idle DURATION] [-count PATTERN] [-last PATTERN] NAME",
			summary: "reads frames on NAME until none comes for DURATION (500ms); sets $DRAINED (frames), $DRAINED_BYTES and $DRAINED_MATCHES (frames matching -count); the last frame must match -last",
			run:     cmdDrain,
		},
		"close": {
			usage:   "close NAME [CODE]",
			summary: "closes connection NAME with a close handshake (code 1000 unless given)",
			run:     cmdClose,
		},
		"closed": {
			usage:   "closed [-skip] NAME CODE|abrupt|any",
			summary: "the connection ends: with a close frame of CODE, without one (abrupt), or either way (any); -skip first discards the frames that come before",
			run:     cmdClosed,
		},
		"drop": {
			usage:   "drop NAME",
			summary: "ends connection NAME abruptly: the TCP connection closes without a close frame",
			run:     cmdDrop,
		},
		"expect": {
			usage:   "expect [-keepalive] [-within DURATION] NAME PATTERN",
			summary: "the next frame on NAME matches PATTERN (see Patterns); keepalive frames are skipped unless -keepalive",
			run:     cmdExpect,
		},
		"expectfile": {
			usage:   "expectfile [-keepalive] [-skip TYPE] NAME FILE",
			summary: "the next frame on NAME (after any frames of type TYPE) matches the pattern in the archive's FILE; with -update, an empty or failing pattern is rewritten from the reference server's frame",
			run:     cmdExpectFile,
		},
		"http": {
			usage:   "http [-status N] [-within DURATION] METHOD PATH [PATTERN]",
			summary: "an HTTP request to the server, answered within DURATION (the frame timeout); its status (200 unless -status) and JSON body (matching PATTERN); /health bodies are validated against health.json",
			run:     cmdHTTP,
		},
		"nothing": {
			usage:   "nothing NAME DURATION",
			summary: "no frame but keepalive arrives on NAME for DURATION",
			run:     cmdNothing,
		},
		"open": {
			usage:   "open NAME QUERY [HEADER:VALUE...]",
			summary: "opens connection NAME to the endpoint with the query string QUERY (session_id=$SID...); the first frame stays queued for expect",
			run:     cmdOpen,
		},
		"openmany": {
			usage:   "openmany PREFIX COUNT QUERY",
			summary: "opens COUNT connections named PREFIX1, PREFIX2, ...; $I in QUERY is the connection's number; each must get connected",
			run:     cmdOpenMany,
		},
		"pause": {
			usage:   "pause DURATION",
			summary: "waits; only for times the protocol itself defines (a TTL, the fixture's pace)",
			run:     cmdPause,
		},
		"refused": {
			usage:   "refused [-http] [-status N] [-code CODE] QUERY [HEADER:VALUE...]",
			summary: "a connection with QUERY is refused: by an HTTP error before the upgrade (of status N, with a JSON body of code CODE, when given), or by a close 1008 before any frame unless -http",
			run:     cmdRefused,
		},
		"sendmany": {
			usage:   "sendmany NAME COUNT JSON",
			summary: "sends JSON COUNT times on NAME; $I in JSON is the copy's number, from 1",
			run:     cmdSendMany,
		},
		"shutdown": {
			usage:   "shutdown",
			summary: "tells the server to shut down, through the run's shutdown hook (cases that need it run on a server of their own)",
			run:     cmdShutdown,
		},
		"send": {
			usage:   "send NAME JSON",
			summary: "sends JSON (after $VARIABLE expansion) as a text frame on NAME",
			run:     cmdSend,
		},
		"sendbig": {
			usage:   "sendbig NAME BYTES",
			summary: "sends a query frame of exactly BYTES bytes on NAME",
			run:     cmdSendBig,
		},
		"sendbinary": {
			usage:   "sendbinary NAME TEXT",
			summary: "sends TEXT as a binary frame on NAME",
			run:     cmdSendBinary,
		},
		"sendraw": {
			usage:   "sendraw NAME TEXT",
			summary: "sends TEXT, which need not be JSON, as a text frame on NAME",
			run:     cmdSendRaw,
		},
		"skipto": {
			usage:   "skipto [-keepalive] [-within DURATION] NAME PATTERN",
			summary: "discards frames on NAME until one matches PATTERN",
			run:     cmdSkipTo,
		},
		"stream": {
			usage:   "stream [-text TEXT] [-end complete|error] [-code CODE] NAME",
			summary: "reads one whole stream on NAME, query_start to complete or error; checks the stream rules, the joined text (-text), how it ends (-end, complete unless given) and the error's code; sets $STREAM_TEXT and $STREAM_CHUNKS",
			run:     cmdStream,
		},
		"wsping": {
			usage:   "wsping NAME",
			summary: "sends a WebSocket ping control frame on NAME; the pong must come within the frame timeout",
			run:     cmdWSPing,
		},
	}
}

// scriptCommands adapts the commands to testscript: each rejects bad usage with its
// usage line, and fails with any MUST rule the frame checks found meanwhile.
func scriptCommands() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	out := map[string]func(*testscript.TestScript, bool, []string){}
	for name, cmd := range commands {
		out[name] = func(ts *testscript.TestScript, neg bool, args []string) {
			st := ts.Value(stateKey{}).(*caseState)
			if neg {
				ts.Fatalf("usage: %s (! is not supported)", cmd.usage)
			}
			cmd.run(ts, st, args)
			if f := st.failures(); len(f) > 0 {
				ts.Fatalf("%s (MUST): %s", f[0].Rule, f[0].Message)
			}
		}
	}
	return out
}

func usage(ts *testscript.TestScript, name string) {
	ts.Fatalf("usage: %s", commands[name].usage)
}

// parse parses a command's flags; it fails with the usage line on an error or when
// the number of arguments is outside [min, max] (max -1: no limit).
func parse(ts *testscript.TestScript, name string, args []string, min, max int, define func(fs *flag.FlagSet)) []string {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if define != nil {
		define(fs)
	}
	if err := fs.Parse(args); err != nil || fs.NArg() < min || (max >= 0 && fs.NArg() > max) {
		usage(ts, name)
	}
	return fs.Args()
}

// expand replaces $VAR and ${VAR} in a quoted argument with the script's variables.
func expand(ts *testscript.TestScript, s string) string { return os.Expand(s, ts.Getenv) }

func connNamed(ts *testscript.TestScript, st *caseState, name string) *conn {
	c, ok := st.conns[name]
	if !ok {
		ts.Fatalf("no connection named %s: open it first", name)
	}
	return c
}

func header(ts *testscript.TestScript, name string, kvs []string) http.Header {
	h := http.Header{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, ":")
		if !ok {
			usage(ts, name)
		}
		h.Add(strings.TrimSpace(k), expand(ts, strings.TrimSpace(v)))
	}
	return h
}

func cmdOpen(ts *testscript.TestScript, st *caseState, args []string) {
	args = parse(ts, "open", args, 2, -1, nil)
	name := args[0]
	if old, ok := st.conns[name]; ok {
		old.ws.CloseNow()
		<-old.done
	}
	ctx, cancel := context.WithTimeout(context.Background(), st.opts.FrameTimeout)
	defer cancel()
	c, resp, err := st.dial(ctx, name, expand(ts, args[1]), header(ts, "open", args[2:]))
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			ts.Fatalf("open %s: the server refused the connection: %s %s", name, resp.Status, body)
		}
		ts.Fatalf("open %s: %v", name, err)
	}
	st.conns[name] = c
}

func cmdRefused(ts *testscript.TestScript, st *caseState, args []string) {
	var status int
	var code string
	var httpOnly bool
	args = parse(ts, "refused", args, 1, -1, func(fs *flag.FlagSet) {
		fs.BoolVar(&httpOnly, "http", false, "")
		fs.IntVar(&status, "status", 0, "")
		fs.StringVar(&code, "code", "", "")
	})
	ctx, cancel := context.WithTimeout(context.Background(), st.opts.FrameTimeout)
	defer cancel()
	c, resp, err := st.dial(ctx, "refused", expand(ts, args[0]), header(ts, "refused", args[1:]))
	if err == nil {
		// Upgraded: only a close 1008 before any frame is a refusal.
		st.conns["refused"] = c
		e, err := c.next(st.opts.FrameTimeout, true)
		switch {
		case err != nil:
			ts.Fatalf("the connection was accepted and stays open, want a refusal")
		case httpOnly:
			ts.Fatalf("the connection was upgraded, want an HTTP refusal before the upgrade; then got %s", truncate(describe(e), 300))
		case e.end == nil || e.code() != websocket.StatusPolicyViolation:
			ts.Fatalf("the connection was accepted: got %s, want an HTTP error before the upgrade or a close 1008 before any frame", truncate(describe(e), 300))
		}
		return
	}
	if resp == nil {
		ts.Fatalf("the connection failed without an HTTP answer: %v", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	st.wire.note("refused", fmt.Sprintf("HTTP %s %s", resp.Status, body))
	switch {
	case resp.StatusCode < 400:
		ts.Fatalf("refused with HTTP %s, want a status of 400 or more", resp.Status)
	case status != 0 && resp.StatusCode != status:
		ts.Fatalf("refused with HTTP %s, want %d", resp.Status, status)
	}
	if code == "" {
		return
	}
	if err := st.v.Validate(schemas.HTTPError, body); err != nil {
		ts.Fatalf("the refusal's body %q is not a JSON error (http-error.json): %v", truncate(string(body), 200), err)
	}
	var he struct{ Code string }
	json.Unmarshal(body, &he)
	if he.Code != code {
		ts.Fatalf("the refusal's code is %q, want %q (body %s)", he.Code, code, body)
	}
}

func cmdSend(ts *testscript.TestScript, st *caseState, args []string) {
	args = parse(ts, "send", args, 2, 2, nil)
	data := expand(ts, args[1])
	if !json.Valid([]byte(data)) {
		ts.Fatalf("send: %s is not JSON; use sendraw to send anything else", data)
	}
	ts.Check(connNamed(ts, st, args[0]).send(websocket.MessageText, []byte(data)))
}

func cmdSendRaw(ts *testscript.TestScript, st *caseState, args []string) {
	args = parse(ts, "sendraw", args, 2, 2, nil)
	ts.Check(connNamed(ts, st, args[0]).send(websocket.MessageText, []byte(expand(ts, args[1]))))
}

func cmdSendBinary(ts *testscript.TestScript, st *caseState, args []string) {
	args = parse(ts, "sendbinary", args, 2, 2, nil)
	ts.Check(connNamed(ts, st, args[0]).send(websocket.MessageBinary, []byte(expand(ts, args[1]))))
}

func cmdSendBig(ts *testscript.TestScript, st *caseState, args []string) {
	args = parse(ts, "sendbig", args, 2, 2, nil)
	n, err := sum(expand(ts, args[1]))
	const frame = `{"type":"query","query":""}`
	if err != nil || n < len(frame) {
		ts.Fatalf("sendbig: BYTES must be a number of at least %d, not %q", len(frame), args[1])
	}
	data := `{"type":"query","query":"` + strings.Repeat("a", n-len(frame)) + `"}`
	c := connNamed(ts, st, args[0])
	// A server may close the connection while the frame is still being written.
	c.send(websocket.MessageText, []byte(data))
}

// readFlags are the flags of expect and skipto.
func readFlags(ts *testscript.TestScript, st *caseState, name string, args []string) (keepalive bool, within time.Duration, rest []string) {
	within = st.opts.FrameTimeout
	rest = parse(ts, name, args, 2, 2, func(fs *flag.FlagSet) {
		fs.BoolVar(&keepalive, "keepalive", false, "")
		fs.DurationVar(&within, "within", within, "")
	})
	return keepalive, within, rest
}

func pattern(ts *testscript.TestScript, text string) any {
	var p any
	if err := json.Unmarshal([]byte(expand(ts, text)), &p); err != nil {
		ts.Fatalf("bad pattern %s: %v", text, err)
	}
	return p
}

// matchFrame matches e against p, storing captures as script variables.
func matchFrame(ts *testscript.TestScript, p any, e event) string {
	if e.end != nil || e.frame == nil {
		return "got " + describe(e)
	}
	captured := map[string]string{}
	if d := match(p, e.frame, "", captured); d != "" {
		return d
	}
	for k, v := range captured {
		ts.Setenv(k, v)
	}
	return ""
}

func cmdExpect(ts *testscript.TestScript, st *caseState, args []string) {
	keepalive, within, args := readFlags(ts, st, "expect", args)
	c := connNamed(ts, st, args[0])
	p := pattern(ts, args[1])
	e, err := c.next(within, keepalive)
	if err != nil {
		ts.Fatalf("expect %s: %v; want %s", args[0], err, show(p))
	}
	if d := matchFrame(ts, p, e); d != "" {
		ts.Fatalf("expect %s: %s\n%s", args[0], d, frameDiff(p, e))
	}
}

// frameDiff shows a frame against the pattern it failed, as cmp.Diff (-want +got),
// then the whole frame.
func frameDiff(p any, e event) string {
	if e.end != nil || e.frame == nil {
		return fmt.Sprintf("want: %s\ngot:  %s", show(p), truncate(describe(e), 500))
	}
	wv, gv := diffViews(p, e.frame)
	return fmt.Sprintf("(-want +got):\n%sframe: %s", cmp.Diff(wv, gv), truncate(describe(e), 500))
}

func cmdSkipTo(ts *testscript.TestScript, st *caseState, args []string) {
	keepalive, within, args := readFlags(ts, st, "skipto", args)
	c := connNamed(ts, st, args[0])
	p := pattern(ts, args[1])
	deadline := time.Now().Add(within)
	skipped := 0
	for {
		e, err := c.next(time.Until(deadline), keepalive)
		if err != nil {
			ts.Fatalf("skipto %s: no frame matching %s within %v (%d frames skipped)", args[0], show(p), within, skipped)
		}
		if e.end != nil {
			ts.Fatalf("skipto %s: %s before a frame matching %s", args[0], describe(e), show(p))
		}
		if matchFrame(ts, p, e) == "" {
			return
		}
		skipped++
	}
}

func cmdStream(ts *testscript.TestScript, st *caseState, args []string) {
	var text, end, code string
	textSet := false
	args = parse(ts, "stream", args, 1, 1, func(fs *flag.FlagSet) {
		fs.Func("text", "", func(s string) error { text, textSet = s, true; return nil })
		fs.StringVar(&end, "end", "complete", "")
		fs.StringVar(&code, "code", "", "")
	})
	if end != "complete" && end != "error" {
		usage(ts, "stream")
	}
	c := connNamed(ts, st, args[0])
	first, err := c.next(st.opts.FrameTimeout, false)
	if err != nil {
		ts.Fatalf("stream %s: %v; want query_start", args[0], err)
	}
	if first.typ() != "query_start" && !(end == "error" && first.typ() == "error") {
		ts.Fatalf("stream %s: got %s, want query_start (STREAM-1)", args[0], truncate(describe(first), 300))
	}
	e, chunks, joined := first, 0, strings.Builder{}
	for e.typ() != "complete" && e.typ() != "error" {
		if e, err = c.next(st.opts.FrameTimeout, false); err != nil {
			ts.Fatalf("stream %s: %v after %d chunks; want chunk, complete or error (STREAM-1)", args[0], err, chunks)
		}
		switch e.typ() {
		case "chunk":
			chunks++
			s, _ := e.frame["content"].(string)
			joined.WriteString(s)
		case "complete", "error":
		default:
			ts.Fatalf("stream %s: got %s inside a stream (STREAM-1)", args[0], truncate(describe(e), 300))
		}
	}
	ts.Setenv("STREAM_TEXT", joined.String())
	ts.Setenv("STREAM_CHUNKS", strconv.Itoa(chunks))
	if e.typ() != end {
		ts.Fatalf("stream %s: ended with %s, want %s", args[0], truncate(describe(e), 300), end)
	}
	if got, _ := e.frame["code"].(string); code != "" && got != code {
		ts.Fatalf("stream %s: the error's code is %q, want %q: %s", args[0], got, code, describe(e))
	}
	if want := expand(ts, text); textSet && joined.String() != want {
		ts.Fatalf("stream %s: the chunks join to %q, want %q", args[0], truncate(joined.String(), 200), truncate(want, 200))
	}
}

func cmdNothing(ts *testscript.TestScript, st *caseState, args []string) {
	args = parse(ts, "nothing", args, 2, 2, nil)
	d, err := time.ParseDuration(expand(ts, args[1]))
	if err != nil {
		usage(ts, "nothing")
	}
	if e, err := connNamed(ts, st, args[0]).next(d, false); err == nil {
		ts.Fatalf("nothing %s: got %s within %v, want nothing", args[0], truncate(describe(e), 300), d)
	}
}

func cmdClosed(ts *testscript.TestScript, st *caseState, args []string) {
	skip := false
	args = parse(ts, "closed", args, 2, 2, func(fs *flag.FlagSet) { fs.BoolVar(&skip, "skip", false, "") })
	c := connNamed(ts, st, args[0])
	want := args[1]
	for {
		e, err := c.next(st.opts.FrameTimeout, true)
		if err != nil {
			ts.Fatalf("closed %s: the connection is still open, want it closed (%s)", args[0], want)
		}
		if e.end == nil {
			if skip || e.typ() == "keepalive" {
				continue
			}
			ts.Fatalf("closed %s: got %s, want the connection to close (%s)", args[0], truncate(describe(e), 300), want)
		}
		got := strconv.Itoa(int(e.code()))
		if e.code() == -1 {
			got = "abrupt"
		}
		if got != want && want != "any" {
			ts.Fatalf("closed %s: %s, want close %s", args[0], describe(e), want)
		}
		return
	}
}

func cmdDrop(ts *testscript.TestScript, st *caseState, args []string) {
	args = parse(ts, "drop", args, 1, 1, nil)
	connNamed(ts, st, args[0]).drop()
}

func cmdClose(ts *testscript.TestScript, st *caseState, args []string) {
	args = parse(ts, "close", args, 1, 2, nil)
	code := websocket.StatusNormalClosure
	if len(args) == 2 {
		n, err := strconv.Atoi(args[1])
		if err != nil {
			usage(ts, "close")
		}
		code = websocket.StatusCode(n)
	}
	connNamed(ts, st, args[0]).close(code)
}

func cmdWSPing(ts *testscript.TestScript, st *caseState, args []string) {
	args = parse(ts, "wsping", args, 1, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), st.opts.FrameTimeout)
	defer cancel()
	if err := connNamed(ts, st, args[0]).ws.Ping(ctx); err != nil {
		ts.Fatalf("wsping %s: no pong control frame within %v: %v", args[0], st.opts.FrameTimeout, err)
	}
}

func cmdPause(ts *testscript.TestScript, st *caseState, args []string) {
	args = parse(ts, "pause", args, 1, 1, nil)
	d, err := time.ParseDuration(expand(ts, args[0]))
	if err != nil || d < 0 || d > time.Minute {
		ts.Fatalf("pause: %q is not a duration of at most a minute", args[0])
	}
	time.Sleep(d) // a time the protocol defines, not something to poll
}

func cmdHTTP(ts *testscript.TestScript, st *caseState, args []string) {
	status, within := http.StatusOK, st.opts.FrameTimeout
	args = parse(ts, "http", args, 2, 3, func(fs *flag.FlagSet) {
		fs.IntVar(&status, "status", status, "")
		fs.DurationVar(&within, "within", within, "")
	})
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, args[0], st.opts.httpBase()+expand(ts, args[1]), nil)
	if err != nil {
		usage(ts, "http")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.Fatalf("http %s %s: %v", args[0], args[1], err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	st.wire.note("http", fmt.Sprintf("%s %s: %s %s", args[0], args[1], resp.Status, truncate(string(body), 500)))
	if resp.StatusCode != status {
		ts.Fatalf("http %s %s: %s, want %d: %s", args[0], args[1], resp.Status, status, truncate(string(body), 300))
	}
	if strings.HasSuffix(args[1], "/health") {
		if err := st.v.Validate(schemas.Health, body); err != nil {
			st.finding("HEALTH-1", "GET %s: the body breaks health.json: %v: %s", args[1], err, truncate(string(body), 300))
		}
	}
	if len(args) < 3 {
		return
	}
	var got any
	if err := json.Unmarshal(body, &got); err != nil {
		ts.Fatalf("http %s %s: the body is not JSON: %s", args[0], args[1], truncate(string(body), 300))
	}
	captured := map[string]string{}
	if d := match(pattern(ts, args[2]), got, "", captured); d != "" {
		ts.Fatalf("http %s %s: %s\nbody: %s", args[0], args[1], d, truncate(string(body), 500))
	}
	for k, v := range captured {
		ts.Setenv(k, v)
	}
}

func cmdSendMany(ts *testscript.TestScript, st *caseState, args []string) {
	args = parse(ts, "sendmany", args, 3, 3, nil)
	n, err := sum(expand(ts, args[1]))
	if err != nil || n < 1 || n > 10000 {
		ts.Fatalf("sendmany: COUNT must be a number from 1 to 10000, not %q", args[1])
	}
	c := connNamed(ts, st, args[0])
	for i := 1; i <= n; i++ {
		data := os.Expand(args[2], func(k string) string {
			if k == "I" {
				return strconv.Itoa(i)
			}
			return ts.Getenv(k)
		})
		ts.Check(c.send(websocket.MessageText, []byte(data)))
	}
}

func cmdDrain(ts *testscript.TestScript, st *caseState, args []string) {
	idle := 500 * time.Millisecond
	var count, lastPattern string
	args = parse(ts, "drain", args, 1, 1, func(fs *flag.FlagSet) {
		fs.DurationVar(&idle, "idle", idle, "")
		fs.StringVar(&count, "count", "", "")
		fs.StringVar(&lastPattern, "last", "", "")
	})
	var p any
	if count != "" {
		p = pattern(ts, count)
	}
	c := connNamed(ts, st, args[0])
	frames, bytes, matches, last := 0, 0, 0, event{}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		e, err := c.next(idle, false)
		if err != nil || e.end != nil {
			break
		}
		frames++
		bytes += len(e.data)
		last = e
		if p != nil && match(p, e.frame, "", map[string]string{}) == "" {
			matches++
		}
	}
	ts.Setenv("DRAINED", strconv.Itoa(frames))
	ts.Setenv("DRAINED_BYTES", strconv.Itoa(bytes))
	ts.Setenv("DRAINED_MATCHES", strconv.Itoa(matches))
	if lastPattern != "" {
		if frames == 0 {
			ts.Fatalf("drain %s: no frame came, want a last frame matching %s", args[0], lastPattern)
		}
		if d := matchFrame(ts, pattern(ts, lastPattern), last); d != "" {
			ts.Fatalf("drain %s: the last of %d frames: %s\ngot: %s", args[0], frames, d, truncate(describe(last), 300))
		}
	}
}

func cmdOpenMany(ts *testscript.TestScript, st *caseState, args []string) {
	args = parse(ts, "openmany", args, 3, 3, nil)
	n, err := sum(expand(ts, args[1]))
	if err != nil || n < 1 || n > 1000 {
		ts.Fatalf("openmany: COUNT must be a number from 1 to 1000, not %q", args[1])
	}
	for i := 1; i <= n; i++ {
		name := args[0] + strconv.Itoa(i)
		query := os.Expand(args[2], func(k string) string {
			if k == "I" {
				return strconv.Itoa(i)
			}
			return ts.Getenv(k)
		})
		cmdOpen(ts, st, []string{name, query})
		e, err := st.conns[name].next(st.opts.FrameTimeout, false)
		if err != nil || e.typ() != "connected" {
			ts.Fatalf("openmany: connection %s: got %s, want connected", name, describe(e))
		}
	}
}

func cmdCompare(ts *testscript.TestScript, st *caseState, args []string) {
	args = parse(ts, "compare", args, 3, 3, nil)
	a, errA := sum(expand(ts, args[0]))
	b, errB := sum(expand(ts, args[2]))
	if errA != nil || errB != nil {
		ts.Fatalf("compare: %q and %q must be integers or sums of integers", expand(ts, args[0]), expand(ts, args[2]))
	}
	ok := false
	switch args[1] {
	case "==":
		ok = a == b
	case "!=":
		ok = a != b
	case "<":
		ok = a < b
	case "<=":
		ok = a <= b
	case ">":
		ok = a > b
	case ">=":
		ok = a >= b
	default:
		usage(ts, "compare")
	}
	if !ok {
		ts.Fatalf("compare: %d %s %d is false (%s %s %s)", a, args[1], b, args[0], args[1], args[2])
	}
}

// sum parses an integer or a sum of integers such as "41+1".
func sum(s string) (int, error) {
	total := 0
	for _, term := range strings.Split(s, "+") {
		n, err := strconv.Atoi(strings.TrimSpace(term))
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

func cmdShutdown(ts *testscript.TestScript, st *caseState, args []string) {
	parse(ts, "shutdown", args, 0, 0, nil)
	if st.opts.Shutdown == nil {
		ts.Fatalf("shutdown: the run has no shutdown hook")
	}
	st.wire.note("server", "shutdown")
	go st.opts.Shutdown()
}

// CommandReference returns the Markdown table of the commands, from their usage lines:
// the command reference of README.md.
func CommandReference() string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("| command | what it does |\n|---|---|\n")
	for _, n := range names {
		esc := strings.NewReplacer("|", "\\|")
		fmt.Fprintf(&b, "| `%s` | %s |\n", esc.Replace(commands[n].usage), esc.Replace(commands[n].summary))
	}
	return b.String()
}

func cmdExpectFile(ts *testscript.TestScript, st *caseState, args []string) {
	keepalive, skip := false, ""
	args = parse(ts, "expectfile", args, 2, 2, func(fs *flag.FlagSet) {
		fs.BoolVar(&keepalive, "keepalive", false, "")
		fs.StringVar(&skip, "skip", "", "")
	})
	c := connNamed(ts, st, args[0])
	text := strings.TrimSpace(ts.ReadFile(args[1]))
	e, err := c.next(st.opts.FrameTimeout, keepalive)
	for err == nil && skip != "" && e.end == nil && e.typ() == skip {
		e, err = c.next(st.opts.FrameTimeout, keepalive)
	}
	if err != nil {
		ts.Fatalf("expectfile %s: %v; want %s", args[0], err, args[1])
	}
	var p any
	d := "the expectation is empty: bless it with -update"
	if text != "" {
		p = pattern(ts, text)
		d = matchFrame(ts, p, e)
	}
	if d == "" {
		return
	}
	if st.opts.Update && e.frame != nil {
		st.blessed(args[1], bless(e.frame, ts))
		return
	}
	ts.Fatalf("expectfile %s: %s: %s\n%s", args[0], args[1], d, frameDiff(p, e))
}

// bless turns a received frame into a pattern: timestamps match any timestamp, and the
// run's session ids become their variables.
func bless(frame map[string]any, ts *testscript.TestScript) string {
	out := map[string]any{}
	for k, v := range frame {
		out[k] = v
	}
	if _, ok := out["timestamp"]; ok {
		out["timestamp"] = "@timestamp"
	}
	data, _ := json.MarshalIndent(out, "", "  ")
	text := string(data)
	for _, name := range []string{"SID3", "SID2", "SID"} {
		if v := ts.Getenv(name); v != "" {
			text = strings.ReplaceAll(text, v, "$"+name)
		}
	}
	return text + "\n"
}
