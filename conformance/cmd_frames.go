package conformance

// The commands that read frames and match them.

import (
	"encoding/json"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rogpeppe/go-internal/testscript"
)

// readFlags are the flags of expect and skipto; -within is d unless given.
func readFlags(ts *testscript.TestScript, name string, d time.Duration, args []string) (keepalive bool, within time.Duration, rest []string) {
	keepalive, within, _, rest = readLacksFlags(ts, name, d, args, false)
	return keepalive, within, rest
}

// readLacksFlags are readFlags and, when lacks is set, -lacks TEXT, repeatable.
func readLacksFlags(ts *testscript.TestScript, name string, d time.Duration, args []string, lacks bool) (keepalive bool, within time.Duration, texts []string, rest []string) {
	within = d
	rest = parse(ts, name, args, 2, 2, func(fs *flag.FlagSet) {
		fs.BoolVar(&keepalive, "keepalive", false, "")
		fs.DurationVar(&within, "within", within, "")
		if lacks {
			lacksFlag(fs, &texts)
		}
	})
	return keepalive, within, texts, rest
}

// lacksFlag defines -lacks TEXT, which may be given many times.
func lacksFlag(fs *flag.FlagSet, texts *[]string) {
	fs.Func("lacks", "", func(s string) error { *texts = append(*texts, s); return nil })
}

// checkLacks fails when data contains one of texts (expanded): what a frame or a body
// must not reveal, such as another session's id (ADMIN-5).
func checkLacks(ts *testscript.TestScript, what string, data []byte, texts []string) {
	for _, t := range texts {
		if t = expand(ts, t); t != "" && strings.Contains(string(data), t) {
			ts.Fatalf("%s: contains %q, which it must not: %s", what, t, truncate(string(data), 500))
		}
	}
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
	keepalive, within, lacks, args := readLacksFlags(ts, "expect", st.opts.FrameTimeout, args, true)
	c := connNamed(ts, st, args[0])
	p := pattern(ts, args[1])
	e, err := c.next(wait{until: time.Now().Add(within), of: within}, keepalive)
	if err != nil {
		st.failNoFirstFrame(ts, c, err)
		ts.Fatalf("expect %s: %v; want %s", args[0], err, show(p))
	}
	if d := matchFrame(ts, p, e); d != "" {
		ts.Fatalf("expect %s: %s\n%s", args[0], d, frameDiff(p, e))
	}
	checkLacks(ts, "expect "+args[0]+": the frame", e.data, lacks)
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
	keepalive, within, args := readFlags(ts, "skipto", longWait(st), args)
	c := connNamed(ts, st, args[0])
	p := pattern(ts, args[1])
	whole := wait{until: time.Now().Add(within), of: within}
	skipped := 0
	for {
		e, err := c.next(frameWait(st, whole), keepalive)
		if err != nil {
			st.failNoFirstFrame(ts, c, err)
			ts.Fatalf("skipto %s: %v: no frame matching %s (%d frames skipped)", args[0], err, show(p), skipped)
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

// longWait bounds the commands that read many frames (stream, drain, skipto), unless -within
// says otherwise: four frame timeouts in all.
func longWait(st *caseState) time.Duration { return 4 * st.opts.FrameTimeout }

// frameWait is the wait for the next frame of a longer read: the frame timeout, cut
// short by the whole read's bound.
func frameWait(st *caseState, whole wait) wait {
	w := within(st.opts.FrameTimeout)
	if whole.until.Before(w.until) {
		return whole
	}
	return w
}

func cmdStream(ts *testscript.TestScript, st *caseState, args []string) {
	var text, end, code string
	textSet, d := false, longWait(st)
	args = parse(ts, "stream", args, 1, 1, func(fs *flag.FlagSet) {
		fs.Func("text", "", func(s string) error { text, textSet = s, true; return nil })
		fs.StringVar(&end, "end", "complete", "")
		fs.StringVar(&code, "code", "", "")
		fs.DurationVar(&d, "within", d, "")
	})
	if end != "complete" && end != "error" {
		usage(ts, "stream")
	}
	c := connNamed(ts, st, args[0])
	whole := within(d)
	// A notice belongs to no query and may come between any two frames (NOTICE-2):
	// the stream skips the notices, and names them.
	var notices []string
	next := func() (event, error) {
		for {
			e, err := c.next(frameWait(st, whole), false)
			if err != nil || e.end != nil || e.typ() != "notice" {
				return e, err
			}
			id, _ := e.frame["notice_id"].(string)
			notices = append(notices, id)
		}
	}
	first, err := next()
	if err != nil {
		ts.Fatalf("stream %s: %v; want query_start", args[0], err)
	}
	switch t := first.typ(); {
	case t == "query_start" || (end == "error" && t == "error"):
	case t == "chunk" || t == "complete":
		// A stream without its start.
		st.failAgainst(ts, "STREAM-1", "stream %s: got %s, want query_start", args[0], truncate(describe(first), 300))
	default:
		// No stream began (a refusal, the end of the connection, another frame): the
		// failure is against the rules of the case's phase, not the stream rules.
		ts.Fatalf("stream %s: got %s, want query_start", args[0], truncate(describe(first), 300))
	}
	e, chunks, joined := first, 0, strings.Builder{}
	for e.typ() != "complete" && e.typ() != "error" {
		if e, err = next(); err != nil && st.ctx.Err() == nil && !time.Now().Before(whole.until) {
			st.failAgainst(ts, "STREAM-1", "stream %s: the stream did not end within %v (%d chunks); want complete or error", args[0], d, chunks)
		}
		if err != nil {
			st.failAgainst(ts, "STREAM-1", "stream %s: %v after %d chunks; want chunk, complete or error", args[0], err, chunks)
		}
		switch e.typ() {
		case "chunk":
			chunks++
			s, _ := e.frame["content"].(string)
			joined.WriteString(s)
		case "complete", "error":
		default:
			st.failAgainst(ts, "STREAM-1", "stream %s: got %s inside a stream", args[0], truncate(describe(e), 300))
		}
	}
	ts.Setenv("STREAM_TEXT", joined.String())
	ts.Setenv("STREAM_CHUNKS", strconv.Itoa(chunks))
	ts.Setenv("STREAM_NOTICES", strconv.Itoa(len(notices)))
	ts.Setenv("STREAM_NOTICE_IDS", strings.Join(notices, ","))
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
	e, err := connNamed(ts, st, args[0]).next(within(d), false)
	switch {
	case err == nil:
		ts.Fatalf("nothing %s: got %s within %v, want nothing", args[0], truncate(describe(e), 300), d)
	case st.ctx.Err() != nil:
		ts.Fatalf("nothing %s: %v", args[0], err)
	}
}

func cmdDrain(ts *testscript.TestScript, st *caseState, args []string) {
	idle, d := 500*time.Millisecond, longWait(st)
	var count, lastPattern, untilPattern string
	args = parse(ts, "drain", args, 1, 1, func(fs *flag.FlagSet) {
		fs.DurationVar(&idle, "idle", idle, "")
		fs.DurationVar(&d, "within", d, "")
		fs.StringVar(&count, "count", "", "")
		fs.StringVar(&lastPattern, "last", "", "")
		fs.StringVar(&untilPattern, "until", "", "")
	})
	if untilPattern != "" && lastPattern != "" {
		usage(ts, "drain")
	}
	var p, until any
	if count != "" {
		p = pattern(ts, count)
	}
	if untilPattern != "" {
		until = pattern(ts, untilPattern)
	}
	c := connNamed(ts, st, args[0])
	frames, bytes, matches, last := 0, 0, 0, event{}
	whole := within(d)
	for {
		e, done := drainNext(ts, st, c, whole, idle, until != nil, frames, bytes)
		if done {
			break
		}
		frames++
		bytes += len(e.data)
		last = e
		if p != nil && match(p, e.frame, "", map[string]string{}) == "" {
			matches++
		}
		if until != nil && matchFrame(ts, until, e) == "" {
			break
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

// drainNext returns drain's next frame, or done when the drain ends: the connection
// ended, or (without -until) it was quiet for idle. With -until, the end of the
// connection or the whole bound before the frame that ends the drain fails it; so does
// the whole bound without -until, as frames kept coming.
func drainNext(ts *testscript.TestScript, st *caseState, c *conn, whole wait, idle time.Duration, until bool, frames, bytes int) (e event, done bool) {
	step := within(idle)
	if until {
		step = frameWait(st, whole)
	}
	cut := whole.until.Before(step.until)
	if cut {
		step = whole
	}
	e, err := c.next(step, false)
	switch {
	case err != nil && st.ctx.Err() != nil:
		ts.Fatalf("drain %s: %v", c.name, err)
	case until && err != nil:
		ts.Fatalf("drain %s: %v, after %d frames, before the frame that ends the drain (-until)", c.name, err, frames)
	case until && e.end != nil:
		ts.Fatalf("drain %s: %s after %d frames, before the frame that ends the drain (-until)", c.name, describe(e), frames)
	case err != nil && cut:
		ts.Fatalf("drain %s: frames kept coming for %v (%d frames, %d bytes): the connection was never quiet for %v", c.name, whole.of, frames, bytes, idle)
	}
	return e, err != nil || e.end != nil
}

func cmdExpectFile(ts *testscript.TestScript, st *caseState, args []string) {
	keepalive, skip := false, ""
	args = parse(ts, "expectfile", args, 2, 2, func(fs *flag.FlagSet) {
		fs.BoolVar(&keepalive, "keepalive", false, "")
		fs.StringVar(&skip, "skip", "", "")
	})
	c := connNamed(ts, st, args[0])
	text := strings.TrimSpace(ts.ReadFile(args[1]))
	w := within(st.opts.FrameTimeout)
	e, err := c.next(w, keepalive)
	for err == nil && skip != "" && e.end == nil && e.typ() == skip {
		e, err = c.next(w, keepalive)
	}
	if err != nil {
		st.failNoFirstFrame(ts, c, err)
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
