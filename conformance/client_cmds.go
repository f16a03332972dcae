package conformance

// The commands of the client cases (testdata/client): the harness is the server.

import (
	"encoding/json"
	"flag"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/rogpeppe/go-internal/testscript"
)

// clientCommands holds the verbs of the client cases, as commands does those of the
// server cases; README.md's reference of them is generated from it.
var clientCommands map[string]command

func init() { clientCommands = clientCommandTable() }

func clientCommandTable() map[string]command {
	return map[string]command{
		"accept": {
			usage:   "accept [-caps LIST] [-epoch new] [-resumed true|false] [-missed N] [-within DURATION] NAME [MEMBER=JSON...]",
			summary: "the client's next handshake arrives within DURATION (the frame timeout) and is upgraded as connection NAME, which gets connected: claiming the comma-separated capabilities LIST (none: a core 1.0 connected), with the session's epoch (-epoch new: a new one, the history lost), and, for a request with last_seq, resumed (true when its epoch is the session's, unless given) and missed; MEMBER=JSON sets a member (MEMBER=- removes it); sets $LAST_SEQ and $EPOCH to the request's parameters (empty when absent) and $SEQ to the session's last seq",
			run:     cmdAccept,
		},
		"answer": {
			usage:   "answer TEXT",
			summary: "what the adapter printed so far (one trailing newline aside) is TEXT",
			run:     cmdAnswer,
		},
		"backoff": {
			usage:   "backoff N",
			summary: "the waits between the client's last N+1 handshakes back off: none is shorter than 20ms, and the last is longer than the first",
			run:     cmdBackoff,
		},
		"client": {
			usage:   "client [-user USER] [-cancel-after N] QUERY",
			summary: "starts the client's adapter with the scripted server's URL (session_id=$SID, user_id=USER: $USER unless given, none when empty) and QUERY; with -cancel-after, the adapter cancels the query after its N-th chunk (AGENTWS_CANCEL_AFTER, for adapters of the cancel feature)",
			run:     cmdClient,
		},
		"close": {
			usage:   "close NAME CODE [REASON]",
			summary: "closes connection NAME with a close frame of CODE",
			run:     cmdSClose,
		},
		"drop": {
			usage:   "drop NAME",
			summary: "ends connection NAME abruptly, without a close frame, as a network failure does: what was sent still reaches the client",
			run:     cmdSDrop,
		},
		"exit": {
			usage:   "exit [-within DURATION] STATUS|nonzero",
			summary: "the adapter exits within DURATION (two frame timeouts) with STATUS (0 answered, 1 the query failed, 3 incomplete or lost, 4 replaced or ended, 5 cancelled), or any status but 0",
			run:     cmdExit,
		},
		"handshake": {
			usage:   "handshake NAME PARAM VALUE|-",
			summary: "the handshake of connection NAME carried the query parameter PARAM with VALUE (-: without PARAM)",
			run:     cmdHandshake,
		},
		"noconnect": {
			usage:   "noconnect DURATION",
			summary: "no handshake arrives for DURATION",
			run:     cmdNoConnect,
		},
		"norecv": {
			usage:   "norecv NAME TYPE DURATION",
			summary: "no frame of TYPE comes from the client on NAME for DURATION, or before the connection ends; other frames are skipped",
			run:     cmdNoRecv,
		},
		"pause": {
			usage:   "pause DURATION",
			summary: "waits, at most a minute",
			run:     cmdPause,
		},
		"recv": {
			usage:   "recv [-within DURATION] NAME TYPE [MEMBER=VALUE...]",
			summary: "the client's next frame on NAME (ping is answered with pong and skipped) comes within DURATION (the frame timeout), is of TYPE and has each MEMBER equal to VALUE (JSON, or a string); a query sets $QUERY and $QUERY_ID, and the session's query",
			run:     cmdRecv,
		},
		"refuse": {
			usage:   "refuse [-within DURATION] STATUS CODE",
			summary: "the client's next handshake arrives within DURATION (the frame timeout) and is refused with HTTP STATUS and a JSON body of code CODE",
			run:     cmdRefuse,
		},
		"replay": {
			usage:   "replay NAME FROM",
			summary: "sends on NAME again, unchanged, every session-scoped frame of the session with a seq greater than FROM",
			run:     cmdReplay,
		},
		"send": {
			usage:   "send [-lost] NAME TYPE [ARG...] [MEMBER=JSON...]",
			summary: "sends a frame of TYPE on NAME, made from the session: query_start, chunk CONTENT, complete, error CODE [TEXT] (each with the session's query_id and next seq when NAME's connected claims them), notice (with the next seq, and no query_id), keepalive, pong, disconnected, another TYPE as it is, or raw JSON; MEMBER=JSON sets a member (MEMBER=- removes it); -lost keeps a session-scoped frame in the history without writing it, as a frame lost in a dying connection; a frame the client can no longer get, having closed the connection itself, is noted, and the client's exit 0 after it fails CLIENT-7",
			run:     cmdSSend,
		},
	}
}

func clientScriptCommands() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	out := map[string]func(*testscript.TestScript, bool, []string){}
	for name, cmd := range clientCommands {
		out[name] = func(ts *testscript.TestScript, neg bool, args []string) {
			st := ts.Value(stateKey{}).(*caseState)
			if neg {
				ts.Fatalf("usage: %s (! is not supported)", cmd.usage)
			}
			cmd.run(ts, st, args)
			if a := st.srv.adapter; a != nil {
				st.srv.judgeExit(a)
			}
			st.stopOnFindings(ts)
		}
	}
	return out
}

func sconnNamed(ts *testscript.TestScript, st *caseState, name string) *sconn {
	c, ok := st.sconns[name]
	if !ok {
		ts.Fatalf("no connection named %s: accept it first", name)
	}
	return c
}

// members parses MEMBER=JSON arguments: a value that is not JSON is a string, and -
// removes the member (nil).
func members(ts *testscript.TestScript, name string, args []string) map[string]any {
	out := map[string]any{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			usage(ts, name)
		}
		v = expand(ts, v)
		switch {
		case v == "-":
			out[k] = nil
		default:
			var j any
			if json.Unmarshal([]byte(v), &j) == nil {
				out[k] = j
			} else {
				out[k] = v
			}
		}
	}
	return out
}

// memberArg is a MEMBER=JSON argument: a member name, then =.
var memberArg = regexp.MustCompile(`^[a-z_][a-z0-9_]*=`)

// splitMembers splits a command's arguments into its plain ones and the MEMBER=JSON
// ones that follow them.
func splitMembers(args []string) (plain, kv []string) {
	for i, a := range args {
		if memberArg.MatchString(a) {
			return args[:i], args[i:]
		}
	}
	return args, nil
}

func durationArg(ts *testscript.TestScript, s string) time.Duration {
	d, err := time.ParseDuration(expand(ts, s))
	if err != nil || d < 0 {
		ts.Fatalf("%q is not a duration of 0 or more", s)
	}
	return d
}

func cmdClient(ts *testscript.TestScript, st *caseState, args []string) {
	user, cancelAfter := ts.Getenv("USER_ID"), 0
	args = parse(ts, "client", args, 1, 1, func(fs *flag.FlagSet) {
		fs.StringVar(&user, "user", user, "")
		fs.IntVar(&cancelAfter, "cancel-after", 0, "")
	})
	s := st.srv
	if s.adapter != nil {
		ts.Fatalf("client: the case has started its client already")
	}
	url := s.url + "?session_id=" + ts.Getenv("SID")
	if user = expand(ts, user); user != "" {
		url += "&user_id=" + user
	}
	var env []string
	if cancelAfter > 0 {
		env = append(env, fmt.Sprintf("AGENTWS_CANCEL_AFTER=%d", cancelAfter))
	}
	query := expand(ts, args[0])
	st.wire.add(wireEntry{conn: "-", dir: "#", text: fmt.Sprintf("client %s %q", url, query)})
	a, err := startAdapter(st.opts.Client, url, query, env)
	if err != nil {
		ts.Fatalf("%v", err)
	}
	s.adapter = a
}

func cmdAccept(ts *testscript.TestScript, st *caseState, args []string) {
	var capList, epoch, resumedFlag string
	var missed int
	within := st.opts.FrameTimeout
	args = parse(ts, "accept", args, 1, -1, func(fs *flag.FlagSet) {
		fs.StringVar(&capList, "caps", "", "")
		fs.StringVar(&epoch, "epoch", "", "")
		fs.StringVar(&resumedFlag, "resumed", "", "")
		fs.IntVar(&missed, "missed", 0, "")
		fs.DurationVar(&within, "within", within, "")
	})
	name := args[0]
	var caps []string
	for _, c := range strings.Split(capList, ",") {
		if c = strings.TrimSpace(c); c != "" {
			caps = append(caps, c)
		}
	}
	var resumed *bool
	switch resumedFlag {
	case "":
	case "true", "false":
		r := resumedFlag == "true"
		resumed = &r
	default:
		usage(ts, "accept")
	}
	if epoch != "" && epoch != "new" {
		usage(ts, "accept")
	}
	extra := members(ts, "accept", args[1:])
	s := st.srv
	if old, ok := st.sconns[name]; ok {
		old.release()
	}
	a, err := s.next(within)
	if err != nil {
		ts.Fatalf("accept %s: %v", name, err)
	}
	if epoch == "new" {
		s.mu.Lock()
		s.epochs++
		s.epoch, s.seq, s.history = fmt.Sprintf("epoch-%d", s.epochs), 0, nil
		s.mu.Unlock()
	}
	c, err := s.accept(a, name, caps, resumed, missed, extra)
	if err != nil {
		ts.Fatalf("accept %s: %v", name, err)
	}
	ts.Setenv("LAST_SEQ", c.params.Get("last_seq"))
	ts.Setenv("EPOCH", c.params.Get("epoch"))
	s.mu.Lock()
	ts.Setenv("SEQ", strconv.Itoa(s.seq))
	s.mu.Unlock()
	s.checkReconnection(c)
}

// checkReconnection holds a reconnection to CLIENT-4: the same session_id and user_id
// as the client's first handshake.
func (s *scriptServer) checkReconnection(c *sconn) {
	s.mu.Lock()
	first := s.params[0]
	s.mu.Unlock()
	for _, p := range []string{"session_id", "user_id"} {
		if c.params.Get(p) != first.Get(p) || c.params.Has(p) != first.Has(p) {
			s.st.finding("CLIENT-4", "%s: the client reconnected with %s=%q; its first connection had %q", c.name, p, c.params.Get(p), first.Get(p))
		}
	}
}

func cmdRefuse(ts *testscript.TestScript, st *caseState, args []string) {
	within := st.opts.FrameTimeout
	args = parse(ts, "refuse", args, 2, 2, func(fs *flag.FlagSet) { fs.DurationVar(&within, "within", within, "") })
	status, err := strconv.Atoi(args[0])
	if err != nil || status < 400 || status > 599 {
		usage(ts, "refuse")
	}
	a, err := st.srv.next(within)
	if err != nil {
		ts.Fatalf("refuse: %v", err)
	}
	a.answer(func() { httpError(a.w, status, args[1], "refused by the case") })
	st.wire.add(wireEntry{conn: "-", dir: "#", text: fmt.Sprintf("refused with HTTP %d %s", status, args[1]), cmd: fmt.Sprintf("refuse %d %s", status, args[1])})
}

func cmdHandshake(ts *testscript.TestScript, st *caseState, args []string) {
	args = parse(ts, "handshake", args, 3, 3, nil)
	c := sconnNamed(ts, st, args[0])
	param, want := args[1], expand(ts, args[2])
	switch got, has := c.params.Get(param), c.params.Has(param); {
	case want == "-" && has:
		ts.Fatalf("%s: the handshake carried %s=%q, want none", c.name, param, got)
	case want != "-" && !has:
		ts.Fatalf("%s: the handshake carried no %s, want %s=%q (it was ?%s)", c.name, param, param, want, c.params.Encode())
	case want != "-" && got != want:
		ts.Fatalf("%s: the handshake carried %s=%q, want %q", c.name, param, got, want)
	}
}

func cmdNoConnect(ts *testscript.TestScript, st *caseState, args []string) {
	args = parse(ts, "noconnect", args, 1, 1, nil)
	d := durationArg(ts, args[0])
	a, err := st.srv.next(d)
	if err == nil {
		a.answer(func() { httpError(a.w, 503, "server_full", "the case expected no connection") })
		ts.Fatalf("the client connected again (%s) within %v, want no connection", a.r.URL.RequestURI(), d)
	}
	if st.ctx.Err() != nil {
		ts.Fatalf("noconnect: %v", err)
	}
}

func cmdBackoff(ts *testscript.TestScript, st *caseState, args []string) {
	args = parse(ts, "backoff", args, 1, 1, nil)
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 2 {
		usage(ts, "backoff")
	}
	s := st.srv
	s.mu.Lock()
	attempts := slices.Clone(s.attempts)
	s.mu.Unlock()
	if len(attempts) < n+1 {
		ts.Fatalf("%d handshakes, want at least %d", len(attempts), n+1)
	}
	attempts = attempts[len(attempts)-n-1:]
	var waits []time.Duration
	for i := 1; i < len(attempts); i++ {
		waits = append(waits, attempts[i].Sub(attempts[i-1]).Round(time.Millisecond))
	}
	for _, w := range waits {
		if w < 20*time.Millisecond {
			ts.Fatalf("the client reconnected after waits of %v: a wait of %v does not back off", waits, w)
		}
	}
	if waits[len(waits)-1] <= waits[0] {
		ts.Fatalf("the client reconnected after waits of %v: the last is not longer than the first, so they do not grow", waits)
	}
	ts.Logf("waits between handshakes: %v", waits)
}

func cmdRecv(ts *testscript.TestScript, st *caseState, args []string) {
	limit := st.opts.FrameTimeout
	args = parse(ts, "recv", args, 2, -1, func(fs *flag.FlagSet) { fs.DurationVar(&limit, "within", limit, "") })
	c := sconnNamed(ts, st, args[0])
	typ, want := args[1], members(ts, "recv", args[2:])
	e, err := c.next(within(limit))
	switch {
	case err != nil:
		ts.Fatalf("recv %s %s: %v", c.name, typ, err)
	case e.end != nil:
		ts.Fatalf("recv %s %s: the connection ended first: %s", c.name, typ, describe(e))
	case e.typ() != typ:
		ts.Fatalf("recv %s: the client sent %s, want a %s frame", c.name, truncate(string(e.data), 300), typ)
	}
	for k, v := range want {
		if got, ok := e.frame[k]; v == nil && ok {
			ts.Fatalf("recv %s: the %s frame has %s=%s, want none: %s", c.name, typ, k, show(got), truncate(string(e.data), 300))
		} else if v != nil && !equal(v, got) {
			ts.Fatalf("recv %s: the %s frame has %s=%s, want %s: %s", c.name, typ, k, show(got), show(v), truncate(string(e.data), 300))
		}
	}
	if typ == "query" {
		q, _ := e.frame["query"].(string)
		id, _ := e.frame["query_id"].(string)
		s := st.srv
		s.mu.Lock()
		s.query = q
		switch {
		case id != "":
			s.queryID = id
		case s.queryID == "":
			s.queryID = "q-scripted-1"
		}
		s.mu.Unlock()
		ts.Setenv("QUERY", q)
		ts.Setenv("QUERY_ID", id)
	}
}

func cmdNoRecv(ts *testscript.TestScript, st *caseState, args []string) {
	args = parse(ts, "norecv", args, 3, 3, nil)
	c := sconnNamed(ts, st, args[0])
	typ, d := args[1], durationArg(ts, args[2])
	w := within(d)
	for {
		e, err := c.next(w)
		switch {
		case err != nil && st.ctx.Err() != nil:
			ts.Fatalf("norecv: %v", err)
		case err != nil, e.end != nil:
			return // the time passed, or the connection ended, without one
		case e.typ() == typ:
			ts.Fatalf("%s: the client sent %s, want no %s frame", c.name, truncate(string(e.data), 300), typ)
		}
	}
}

func cmdSSend(ts *testscript.TestScript, st *caseState, args []string) {
	var lost bool
	args = parse(ts, "send", args, 2, -1, func(fs *flag.FlagSet) { fs.BoolVar(&lost, "lost", false, "") })
	c := sconnNamed(ts, st, args[0])
	typ := args[1]
	plain, kv := splitMembers(args[2:])
	for i := range plain {
		plain[i] = expand(ts, plain[i])
	}
	var data []byte
	if typ == "raw" {
		if len(plain) != 1 || kv != nil {
			usage(ts, "send")
		}
		data = []byte(plain[0])
	} else {
		var err error
		if data, err = st.srv.produce(c, typ, plain, members(ts, "send", kv)); err != nil {
			ts.Fatalf("send: %v", err)
		}
	}
	if lost {
		st.wire.add(wireEntry{conn: c.name, dir: "#", text: "kept in the history, not written (lost in the dying connection): " + string(data)})
		return
	}
	if err := c.write(data); err != nil {
		if !c.clientLeft() {
			ts.Fatalf("send %s %s: %v", c.name, typ, err)
		}
		// The client may leave; exit 0 after it is judged by judgeExit, when the
		// frame was part of the answer.
		if !ofAnswer(typ, data) {
			st.wire.add(wireEntry{conn: c.name, dir: "#", text: "not written: the client had closed the connection, and needed none of it"})
			return
		}
		st.srv.mu.Lock()
		st.srv.unwritten = append(st.srv.unwritten, typ)
		st.srv.mu.Unlock()
		st.wire.add(wireEntry{conn: c.name, dir: "#", text: "not written: the client had closed the connection"})
	}
}

// ofAnswer reports whether a frame of the scripted server carries part of a query's
// answer, which a client that exits 0 must have had (CLIENT-7): a query_start, chunk,
// complete or error, unless it is replayed (QID-4: it repeats an end the history
// gave). No other frame (keepalive, pong, notice, ...) does; a raw frame may, as far as
// the harness can tell.
func ofAnswer(typ string, data []byte) bool {
	switch typ {
	case "query_start", "chunk", "complete", "error", "raw":
	default:
		return false
	}
	var head struct {
		Replayed bool `json:"replayed"`
	}
	return json.Unmarshal(data, &head) != nil || !head.Replayed
}

func cmdReplay(ts *testscript.TestScript, st *caseState, args []string) {
	args = parse(ts, "replay", args, 2, 2, nil)
	c := sconnNamed(ts, st, args[0])
	from, err := sum(expand(ts, args[1]))
	if err != nil {
		ts.Fatalf("replay: %v", err)
	}
	for _, f := range st.srv.kept(from) {
		if err := c.write(f); err != nil {
			ts.Fatalf("replay %s: %v", c.name, err)
		}
	}
}

func cmdSDrop(ts *testscript.TestScript, st *caseState, args []string) {
	args = parse(ts, "drop", args, 1, 1, nil)
	sconnNamed(ts, st, args[0]).drop()
}

func cmdSClose(ts *testscript.TestScript, st *caseState, args []string) {
	args = parse(ts, "close", args, 2, 3, nil)
	c := sconnNamed(ts, st, args[0])
	code, err := strconv.Atoi(args[1])
	if err != nil {
		usage(ts, "close")
	}
	st.wire.add(wireEntry{conn: c.name, dir: "#", text: fmt.Sprintf("close %d %s", code, arg(args, 2)), cmd: strings.Join(append([]string{"close"}, args...), " ")})
	st.srv.noteDrop()
	c.ended = true
	// The close handshake is the client's to answer; a client that does not is
	// ended with the connection, a frame timeout later.
	go c.ws.Close(websocket.StatusCode(code), arg(args, 2))
	timer := time.NewTimer(st.opts.FrameTimeout)
	defer timer.Stop()
	select {
	case <-c.done:
	case <-timer.C:
	case <-st.ctx.Done():
	}
	c.release()
}

func cmdExit(ts *testscript.TestScript, st *caseState, args []string) {
	within := 2 * st.opts.FrameTimeout
	args = parse(ts, "exit", args, 1, 1, func(fs *flag.FlagSet) { fs.DurationVar(&within, "within", within, "") })
	a := st.srv.adapter
	if a == nil {
		ts.Fatalf("exit: no client started")
	}
	want := -2 // nonzero
	if args[0] != "nonzero" {
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 0 {
			usage(ts, "exit")
		}
		want = n
	}
	if !a.wait(within, st.ctx.Done()) {
		ts.Fatalf("the client did not exit within %v (printed %q)", within, truncate(a.answer(), 200))
	}
	st.wire.add(wireEntry{conn: "-", dir: "#", text: "the client " + a.describe()})
	switch {
	case a.err != nil:
		ts.Fatalf("the client %s", a.describe())
	case want == -2 && a.status == 0:
		ts.Fatalf("the client exited 0, answered in full, and printed %q; want a status saying the query was not answered in full", truncate(a.answer(), 300))
	case want >= 0 && a.status != want:
		ts.Fatalf("the client %s; want %d (%s)", a.describe(), want, exitMeaning[want])
	}
}

func cmdAnswer(ts *testscript.TestScript, st *caseState, args []string) {
	args = parse(ts, "answer", args, 1, 1, nil)
	a := st.srv.adapter
	if a == nil {
		ts.Fatalf("answer: no client started")
	}
	if got, want := a.answer(), expand(ts, args[0]); got != want {
		ts.Fatalf("the client printed %q, want %q", truncate(got, 300), truncate(want, 300))
	}
}
