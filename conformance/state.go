package conformance

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/agentws/agentws/schemas"
	"github.com/agentws/agentws/spec"
)

// A Finding is a rule broken by a frame, whatever the case was checking.
type Finding struct {
	Rule    string     `json:"rule"`
	Level   spec.Level `json:"level"`
	Message string     `json:"message"`
}

// caseState is the state of one running case: its connections, its wire log and what
// the checks found.
type caseState struct {
	ctx   context.Context // ends with the case: its deadline, or the run's end
	token string          // the bearer token every connection and request carries; "" for none
	opts  *Options
	rules map[string]spec.Rule
	v     *schemas.Validator
	wire  *wireLog
	conns map[string]*conn

	// Of a client case: the scripted server, and its side of the client's connections.
	srv    *scriptServer
	sconns map[string]*sconn

	inv  *invariants // the run's; nil for the probe
	name string      // the case's
	// errorCodes: the server claims error_codes, so every error frame carries a code of
	// table 15.2 (CODE-1)
	errorCodes bool

	mu        sync.Mutex
	findings  []Finding
	against   []string                // the rules the failing command named (failAgainst)
	completed bool                    // the failing command completed: it stopped on findings
	epochs    map[string]string       // by connection name: the epoch its connected named
	streams   map[string]*streamState // by session_id
	updates   map[string]string       // archive file -> new content, with Options.Update
	notices   map[string]noticeSeen   // by session_id and notice_id: where the session first had it
}

// blessed records the new content of an archive file, to write when the case ends.
func (st *caseState) blessed(file, content string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.updates == nil {
		st.updates = map[string]string{}
	}
	st.updates[file] = content
}

func newCaseState(ctx context.Context, opts *Options, rules map[string]spec.Rule, v *schemas.Validator) *caseState {
	return &caseState{ctx: ctx, opts: opts, rules: rules, v: v, wire: newWireLog(), conns: map[string]*conn{}, sconns: map[string]*sconn{}, streams: map[string]*streamState{}}
}

// finding records a broken rule; rule "" is a harness problem, counted as a failure.
func (st *caseState) finding(rule, format string, args ...any) {
	level := spec.Must
	if r, ok := st.rules[rule]; ok {
		level = r.Level
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	msg := fmt.Sprintf(format, args...)
	for _, f := range st.findings {
		if f.Rule == rule && f.Message == msg {
			return
		}
	}
	st.findings = append(st.findings, Finding{Rule: rule, Level: level, Message: msg})
}

// failures returns the findings of MUST level, which fail the case.
func (st *caseState) failures() []Finding {
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []Finding
	for _, f := range st.findings {
		if f.Level == spec.Must {
			out = append(out, f)
		}
	}
	return out
}

func (st *caseState) allFindings() []Finding {
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]Finding(nil), st.findings...)
}

var offset = regexp.MustCompile(`([Zz]|[+-][0-9]{2}:[0-9]{2})$`)

// check applies the checks every frame gets, on the reader's goroutine. The probe
// that learns the capabilities (no validator) checks nothing.
func (st *caseState) check(c *conn, e event) {
	if st.v == nil {
		return
	}
	first := c.first
	c.first = false
	switch {
	case e.binary:
		st.finding("ENV-1", "%s: the server sent a binary frame", c.name)
		return
	case !utf8.Valid(e.data):
		st.finding("ENV-1", "%s: a text frame that is not valid UTF-8 (RFC 6455 section 8.1): %q", c.name, truncate(string(e.data), 200))
		return
	case e.frame == nil:
		st.finding("ENV-1", "%s: a frame that is not a JSON object: %s", c.name, truncate(string(e.data), 200))
		return
	}
	if first && e.typ() != "connected" {
		st.finding("CONN-1", "%s: the first frame is %q, want connected: %s", c.name, e.typ(), truncate(string(e.data), 200))
	}
	if sid, _ := e.frame["session_id"].(string); e.typ() == "connected" && c.sid != "" && sid != c.sid {
		st.finding("CONN-3", "%s: connected carries session_id %q, want the request's %q", c.name, sid, c.sid)
	}
	if invalid := st.checkCode(c, e, st.v.ValidateMessage(schemas.Server, e.data)); invalid != nil {
		rule := "ENV-2"
		if e.typ() == "notice" {
			rule = "NOTICE-1" // valid against notice.json
		}
		st.finding(rule, "%s: a %q frame breaks its schema: %v: %s", c.name, e.typ(), invalid, truncate(string(e.data), 200))
	}
	if e.typ() == "notice" {
		st.checkNotice(c, e)
	}
	switch sid, _ := e.frame["session_id"].(string); e.typ() {
	case "query_start", "chunk", "complete":
		if c.sid != "" && sid != c.sid {
			st.finding("STREAM-2", "%s: a %s frame carries session_id %q, want the connection's %q", c.name, e.typ(), sid, c.sid)
		}
	}
	if ts, ok := e.frame["timestamp"].(string); ok && !offset.MatchString(ts) {
		st.finding("ENV-5", "timestamp %q has no offset (want RFC 3339 with Z or ±hh:mm)", ts)
	}
	st.checkStream(c, e)
	st.observe(c, e)
}

// checkCode checks that an error frame carries a code of table 15.2 (CODE-1), when the
// server claims error_codes. invalid is what the frame's schema found: its enum of
// codes (defs.json's error_code) is CODE-1's table, so a code outside it is against
// CODE-1 alone; checkCode returns what is left of invalid, against ENV-2.
func (st *caseState) checkCode(c *conn, e event, invalid error) error {
	if !st.errorCodes || e.typ() != "error" {
		return invalid
	}
	code, ok := e.frame["code"]
	if !ok {
		st.finding("CODE-1", "%s: an error frame without a code: %s", c.name, truncate(string(e.data), 200))
		return invalid
	}
	var ve *schemas.ValidationError
	if !errors.As(invalid, &ve) {
		return invalid
	}
	atCode := func(p schemas.Problem) bool { return p.Pointer == "/code" }
	if !slices.ContainsFunc(ve.Problems, atCode) {
		return invalid
	}
	st.finding("CODE-1", "%s: error code %v is not one of table 15.2: %s", c.name, code, truncate(string(e.data), 200))
	rest := &schemas.ValidationError{Schema: ve.Schema, Problems: slices.DeleteFunc(slices.Clone(ve.Problems), atCode)}
	if len(rest.Problems) == 0 {
		return nil
	}
	return rest
}

// observe gives the run-wide checks what they follow of a frame: the epoch of each
// connection, and the seq of session-scoped frames in it.
func (st *caseState) observe(c *conn, e event) {
	if st.inv == nil {
		return
	}
	st.mu.Lock()
	if e.typ() == "connected" {
		if st.epochs == nil {
			st.epochs = map[string]string{}
		}
		st.epochs[c.name], _ = e.frame["epoch"].(string)
	}
	epoch := st.epochs[c.name]
	st.mu.Unlock()
	st.inv.observeSeq(c.sid, epoch, e)
}

// streamState follows the stream of one session's query (STREAM-1 to STREAM-5).
type streamState struct {
	active bool // between query_start (or a chunk seen first) and the terminal frame
	next   int  // the chunk_number expected next
	chunks int
	text   strings.Builder
	whole  bool // every chunk was seen, so totals and text can be checked
	// misnumbered: STREAM-3 is broken, so chunk numbers say nothing of STREAM-4
	misnumbered bool
}

// joined notes a new connection to a session: a stream in progress may continue on
// it from anywhere (frames written into the old connection may be lost, and a bounded
// buffer keeps only the newest), so its numbering is followed from what comes next.
func (st *caseState) joined(sid string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if s := st.streams[sid]; s != nil && s.active {
		*s = streamState{}
	}
}

func num(v any) (int, bool) {
	f, ok := v.(float64)
	return int(f), ok && f == float64(int(f))
}

// checkStream checks the stream rules across the connections of a session. A new
// connection may join a stream in the middle (after a drop or a takeover, frames may
// have been lost on the way in the core protocol), so numbering is checked from the
// first chunk it sees, and totals only when every chunk was seen. Readers of several
// connections share the session's state, so each frame's step is one critical section.
func (st *caseState) checkStream(c *conn, e event) {
	for _, f := range st.followStream(c, e) {
		st.finding(f.Rule, "%s", f.Message)
	}
}

// followStream advances the session's stream state by one frame, under st.mu, and
// returns what it found.
func (st *caseState) followStream(c *conn, e event) (found []Finding) {
	note := func(rule, format string, args ...any) {
		found = append(found, Finding{Rule: rule, Message: fmt.Sprintf(format, args...)})
	}
	sid := c.sid // a frame that names another session is still of this one's stream (STREAM-2)
	if sid == "" {
		sid, _ = e.frame["session_id"].(string)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.streams[sid]
	if s == nil {
		s = &streamState{}
		st.streams[sid] = s
	}
	switch e.typ() {
	case "query_start":
		if s.active {
			note("STREAM-7", "%s: query_start of a new query before the terminal frame of the previous one", c.name)
		}
		*s = streamState{active: true, next: 1, whole: true}
	case "chunk":
		n, _ := num(e.frame["chunk_number"])
		content, _ := e.frame["content"].(string)
		switch {
		case !s.active:
			// joined in the middle: follow from here
			*s = streamState{active: true, next: n + 1, chunks: n}
			return found
		case n != s.next && s.whole:
			note("STREAM-3", "%s: chunk_number %d, want %d: chunk numbers run 1, 2, … without gaps", c.name, n, s.next)
			s.whole, s.misnumbered = false, true
		case n != s.next:
			// a gap after a drop; follow from here
		}
		s.next = n + 1
		s.chunks = n
		s.text.WriteString(content)
	case "complete":
		total, _ := num(e.frame["total_chunks"])
		full, _ := e.frame["full_response"].(string)
		if s.active && s.whole {
			if total != s.chunks {
				note("STREAM-4", "%s: total_chunks %d, but the stream had %d chunks", c.name, total, s.chunks)
			}
			if full != s.text.String() {
				note("STREAM-5", "%s: full_response %q is not the chunks joined, %q", c.name, truncate(full, 80), truncate(s.text.String(), 80))
			}
		} else if s.active && !s.misnumbered && total < s.chunks {
			note("STREAM-4", "%s: total_chunks %d, but chunk %d was sent", c.name, total, s.chunks)
		}
		*s = streamState{}
	case "error":
		if endsQuery(e.frame) && s.active {
			*s = streamState{}
		}
	}
	return found
}

// endsQuery reports whether an error frame ends a query rather than refusing a client
// frame: by its code when it has one, by its seq, and otherwise (a core server) yes.
func endsQuery(f map[string]any) bool {
	if _, ok := f["seq"]; ok {
		return true
	}
	switch code, _ := f["code"].(string); code {
	case "":
		return true
	case "query_failed", "cancelled", "unavailable", "internal":
		return true
	}
	return false
}
