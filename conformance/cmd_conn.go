package conformance

// The commands that open, use and end connections.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/coder/websocket"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/agentws/agentws/schemas"
)

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
		old.release()
	}
	ctx, cancel := context.WithTimeout(st.ctx, st.opts.FrameTimeout)
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
	var lacks []string
	args = parse(ts, "refused", args, 1, -1, func(fs *flag.FlagSet) {
		fs.BoolVar(&httpOnly, "http", false, "")
		fs.IntVar(&status, "status", 0, "")
		fs.StringVar(&code, "code", "", "")
		lacksFlag(fs, &lacks)
	})
	ctx, cancel := context.WithTimeout(st.ctx, st.opts.FrameTimeout)
	defer cancel()
	c, resp, err := st.dial(ctx, "refused", expand(ts, args[0]), header(ts, "refused", args[1:]))
	if err == nil {
		// Upgraded: only a close 1008 before any frame is a refusal.
		if old, ok := st.conns["refused"]; ok {
			old.release()
		}
		st.conns["refused"] = c
		e, err := c.next(within(st.opts.FrameTimeout), true)
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
	checkLacks(ts, "the refusal's body", body, lacks)
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

func cmdClosed(ts *testscript.TestScript, st *caseState, args []string) {
	skip, d := false, st.opts.FrameTimeout
	args = parse(ts, "closed", args, 2, 2, func(fs *flag.FlagSet) {
		fs.BoolVar(&skip, "skip", false, "")
		fs.DurationVar(&d, "within", d, "")
	})
	c := connNamed(ts, st, args[0])
	want := args[1]
	w := within(d)
	for {
		e, err := c.next(w, true)
		switch {
		case err != nil && st.ctx.Err() != nil:
			ts.Fatalf("closed %s: %v", args[0], err)
		case err != nil:
			ts.Fatalf("closed %s: the connection is still open after %v, want it closed (%s)", args[0], d, want)
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
	if err := connNamed(ts, st, args[0]).close(code); err != nil {
		ts.Logf("close: %v", err) // the close handshake is the client's; the server's answer is not checked here
	}
}

func cmdWSPing(ts *testscript.TestScript, st *caseState, args []string) {
	args = parse(ts, "wsping", args, 1, 1, nil)
	ctx, cancel := context.WithTimeout(st.ctx, st.opts.FrameTimeout)
	defer cancel()
	if err := connNamed(ts, st, args[0]).ws.Ping(ctx); err != nil {
		ts.Fatalf("wsping %s: no pong control frame within %v: %v", args[0], st.opts.FrameTimeout, err)
	}
}

// maxSendMany is the most frames one sendmany sends.
const maxSendMany = 10000

func cmdSendMany(ts *testscript.TestScript, st *caseState, args []string) {
	args = parse(ts, "sendmany", args, 3, 3, nil)
	n, err := sum(expand(ts, args[1]))
	if err != nil || n < 1 || n > maxSendMany {
		ts.Fatalf("sendmany: COUNT must be a number from 1 to %d, not %q", maxSendMany, args[1])
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
		c := st.conns[name]
		e, err := c.next(within(st.opts.FrameTimeout), false)
		if err != nil {
			st.failNoFirstFrame(ts, c, err)
			ts.Fatalf("openmany: connection %s: %v; want connected", name, err)
		}
		if e.typ() != "connected" {
			ts.Fatalf("openmany: connection %s: got %s, want connected", name, describe(e))
		}
	}
}
