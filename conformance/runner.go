package conformance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	neturl "net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/agentws/agentws/schemas"
	"github.com/agentws/agentws/spec"
)

// Verdict is the outcome of a case or a rule.
type Verdict string

// The verdicts.
const (
	Pass Verdict = "pass"
	Fail Verdict = "fail" // a MUST rule is broken (or a SHOULD rule, with Strict)
	Warn Verdict = "warn" // a SHOULD rule is broken
	Skip Verdict = "skip" // the server does not claim a capability the case needs, or a setting is unknown
)

// Run runs the selected cases against the server of opts and reports what they found.
// It returns an error without a report when the cases cannot run at all (a bad option,
// an unreachable server); a server that breaks rules gives a report with failures.
// When ctx ends first, every case still running ends promptly, failing, and Run
// returns the report and ctx's cause.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if len(opts.Client) > 0 {
		return runClient(ctx, opts)
	}
	if err := opts.check(); err != nil {
		return nil, err
	}
	rules, v, cases, err := prepare(opts, Catalog)
	if err != nil {
		return nil, err
	}
	started := time.Now()
	version, caps, probeNote, err := probe(ctx, &opts)
	if err != nil {
		return nil, err
	}
	if opts.Capabilities != nil {
		caps = opts.Capabilities
	}
	files, cleanup, err := caseFilesOf(builtin, opts.Dir, cases)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	r := &runner{
		opts: &opts, caps: caps, capsUnknown: probeNote != "" && opts.Capabilities == nil, v: v, rules: map[string]spec.Rule{},
		cases: map[string]Case{}, results: map[string]*CaseResult{},
		sem: make(chan struct{}, opts.Parallel), runID: newRunID(), ctx: ctx,
	}
	for _, rule := range rules {
		r.rules[rule.ID] = rule
	}
	for _, c := range cases {
		r.cases[c.Name] = c
	}
	if opts.Dir == "" {
		r.caseDir = filepath.Dir(files[0]) // the built-in cases' temporary copies
	}
	r.inv = newInvariants(r.rules, started)
	sampling, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		r.inv.sampleHealth(sampling, &opts, healthSampleInterval)
	}()
	for _, group := range schedule(cases, files) {
		if err == nil {
			err = r.runScripts(group)
		}
	}
	stopSampling()
	<-sampled
	if err != nil {
		return nil, err
	}
	rep := newReport(&opts, version, caps, rules, r.ordered(cases), r.inv.Findings(), started)
	rep.Probe = probeNote
	if ctx.Err() != nil {
		return rep, fmt.Errorf("the run was cut short: %w", context.Cause(ctx))
	}
	return rep, nil
}

// schedule groups the case files into the runs that follow one another, the cases of
// a run at the same time: first every case that can share the server; then each case
// that must be alone on it (setting alone: it reaches every session, such as a
// broadcast to all), on its own; last the cases that spend the client's query
// allowance, which they would otherwise starve (STREAM-11).
func schedule(cases []Case, files []string) [][]string {
	var shared, last []string
	var alone [][]string
	for i, c := range cases {
		switch {
		case slices.Contains(c.Settings, "query-rate"):
			last = append(last, files[i])
		case slices.Contains(c.Settings, "alone"):
			alone = append(alone, []string{files[i]})
		default:
			shared = append(shared, files[i])
		}
	}
	var out [][]string
	for _, g := range append(append([][]string{shared}, alone...), last) {
		if len(g) > 0 {
			out = append(out, g)
		}
	}
	return out
}

// prepare reads what a run needs: the spec's rules, the validator, and the cases of
// catalog that opts selects.
func prepare(opts Options, catalog func(dir string) ([]Case, error)) ([]spec.Rule, *schemas.Validator, []Case, error) {
	rules, err := spec.Rules()
	if err != nil {
		return nil, nil, nil, err
	}
	v, err := schemas.NewValidator(schemas.Options{})
	if err != nil {
		return nil, nil, nil, err
	}
	all, err := catalog(opts.Dir)
	if err != nil {
		return nil, nil, nil, err
	}
	var cases []Case
	for _, c := range all {
		if c.selected(opts.Cases) {
			cases = append(cases, c)
		}
	}
	for _, p := range opts.Cases {
		if !slices.ContainsFunc(all, func(c Case) bool { return c.selected([]string{p}) }) {
			return nil, nil, nil, fmt.Errorf("no case name starts with %q (the cases are listed by -list)", p)
		}
	}
	if len(cases) == 0 {
		return nil, nil, nil, errors.New("no case to run")
	}
	return rules, v, cases, nil
}

// probe opens one connection to learn the server's protocol version and capabilities.
// A server that cannot be reached, or refuses the probe, is an error: there is nothing
// to check. A server that does not send connected first is checked as a core server
// with no capabilities, and the note says why; its cases then report CONN-1.
func probe(ctx context.Context, opts *Options) (version string, caps []string, note string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 3*opts.FrameTimeout) // the dial, connected, and the goodbye
	defer cancel()
	st := newCaseState(ctx, opts, nil, nil)
	query := "session_id=conformance-probe-" + newRunID()
	if opts.Token != "" {
		query += "&access_token=" + neturl.QueryEscape(opts.Token) // a server with auth admits no probe without one
	}
	dialCtx, cancelDial := context.WithTimeout(ctx, opts.FrameTimeout)
	defer cancelDial()
	c, resp, err := st.dial(dialCtx, "probe", query, nil)
	if err != nil {
		switch {
		case resp != nil && resp.StatusCode < 400:
			return "", nil, "", fmt.Errorf("the server at %s did not upgrade to WebSocket (HTTP %s): is it the protocol's endpoint, such as ws://host:port/ws?", opts.URL, resp.Status)
		case resp != nil:
			return "", nil, "", fmt.Errorf("the server at %s refused a connection: %s", opts.URL, resp.Status)
		}
		return "", nil, "", fmt.Errorf("cannot connect to the server at %s: %w", opts.URL, err)
	}
	defer func() {
		// End the probe's session, so that it counts nowhere.
		c.send(websocket.MessageText, []byte(`{"type":"disconnect"}`))
		c.next(within(opts.FrameTimeout), false)
		c.drop()
	}()
	e, err := c.next(within(opts.FrameTimeout), false)
	if err != nil || e.typ() != "connected" {
		what := describe(e)
		if err != nil {
			what = err.Error()
		}
		return "unknown", nil, fmt.Sprintf("the server did not send connected first (%s): checked as a core server with no capabilities", truncate(what, 200)), nil
	}
	version, _ = e.frame["protocol_version"].(string)
	if version == "" {
		version = "1.0"
	}
	if list, ok := e.frame["capabilities"].([]any); ok {
		for _, c := range list {
			if s, ok := c.(string); ok {
				caps = append(caps, s)
			}
		}
	}
	return version, caps, "", nil
}

// caseFiles returns the case files to run: the built-in ones are written to a
// temporary directory, for testscript reads files.
func caseFilesOf(fsys fs.FS, dir string, cases []Case) ([]string, func(), error) {
	if dir != "" {
		var files []string
		for _, c := range cases {
			files = append(files, c.file)
		}
		return files, func() {}, nil
	}
	tmp, err := os.MkdirTemp("", "agentws-conformance-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { os.RemoveAll(tmp) }
	var files []string
	for _, c := range cases {
		data, err := fs.ReadFile(fsys, c.file)
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		f := filepath.Join(tmp, c.Name+".txtar")
		if err := os.WriteFile(f, data, 0o644); err != nil {
			cleanup()
			return nil, nil, err
		}
		files = append(files, f)
	}
	return files, cleanup, nil
}

func newRunID() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// healthSampleInterval is how often the run fetches /ws/health for the run-wide checks.
const healthSampleInterval = 100 * time.Millisecond

// runner is the testscript.T of a run: its Run runs each case in its own goroutine,
// at most opts.Parallel at a time, under a caseT that records the verdict.
type runner struct {
	ctx    context.Context // the run's: when it ends, every case ends
	client bool            // the client cases: the harness plays the server, caps are the adapter's features
	opts   *Options
	caps   []string
	// capsUnknown: the probe got no connected, and no -capabilities named them.
	capsUnknown bool
	v           *schemas.Validator
	rules       map[string]spec.Rule
	cases       map[string]Case
	runID       string
	caseDir     string // where the copies of the built-in cases are, shown as testdata/ in failures
	sem         chan struct{}
	wg          sync.WaitGroup
	inv         *invariants // what the whole run observed

	mu      sync.Mutex
	results map[string]*CaseResult
	fatal   string
}

type stateKey struct{}

var errHarness = errors.New("harness failure")

func (r *runner) runScripts(files []string) (err error) {
	defer func() {
		if p := recover(); p != nil {
			if p != errHarness {
				panic(p)
			}
			err = fmt.Errorf("the cases could not run: %s", r.fatal)
		}
	}()
	p := testscript.Params{Files: files, Setup: r.setup, Cmds: scriptCommands(), Condition: r.condition}
	if r.client {
		p.Setup, p.Cmds = r.setupClient, clientScriptCommands()
	}
	p.Deadline, _ = r.ctx.Deadline()
	testscript.RunT(r, p)
	r.wg.Wait()
	return nil
}

func (r *runner) Skip(args ...any) { r.Fatal(args...) }

func (r *runner) Fatal(args ...any) { r.fatal = fmt.Sprint(args...); panic(errHarness) }

func (r *runner) FailNow() { panic(errHarness) }

func (r *runner) Parallel() {}

func (r *runner) Log(args ...any) {}

func (r *runner) Verbose() bool { return false }

func (r *runner) Run(name string, f func(testscript.T)) {
	c, ok := r.cases[name]
	if !ok {
		r.Fatal("no case named ", name)
	}
	res := &CaseResult{Case: c}
	r.mu.Lock()
	r.results[name] = res
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		select {
		case r.sem <- struct{}{}:
		case <-r.ctx.Done():
			res.Verdict, res.Failure = Fail, fmt.Sprintf("the run ended before the case started: %v", context.Cause(r.ctx))
			return
		}
		defer func() { <-r.sem }()
		ct := &caseT{r: r, c: c, res: res}
		ct.run(f)
	}()
}

func (r *runner) ordered(cases []Case) []*CaseResult {
	out := make([]*CaseResult, 0, len(cases))
	for _, c := range cases {
		out = append(out, r.results[c.Name])
	}
	return out
}

// setup prepares a case: it skips what the server cannot be asked, and gives the
// script its session ids and the server's settings as variables.
func (r *runner) setup(env *testscript.Env) error {
	ct := env.T().(*caseT)
	if reason := ct.c.skipReason(r.caps, r.capsUnknown, r.opts); reason != "" {
		env.T().Skip(reason)
	}
	st := newCaseState(ct.ctx, r.opts, r.rules, r.v)
	st.inv, st.name = r.inv, ct.c.Name
	st.errorCodes = slices.Contains(r.caps, "error_codes")
	if !slices.Contains(ct.c.Needs, "auth") {
		st.token = r.opts.Token // the auth cases send their tokens themselves
	}
	ct.st = st
	env.Values[stateKey{}] = st
	for i, name := range []string{"SID", "SID2", "SID3"} {
		env.Setenv(name, fmt.Sprintf("cf-%s-%s-%d", r.runID, ct.c.Name, i+1))
	}
	// $UID, $UID2 and $UID3 are user ids unique to the run and the case, which contain
	// no session id of the case, nor a session id them.
	for i, name := range []string{"UID", "UID2", "UID3"} {
		env.Setenv(name, fmt.Sprintf("cf-%s-%s-u%d", r.runID, ct.c.Name, i+1))
	}
	// $SID0 comes just before $SID in session_id order, and no case uses it: a page
	// of the admin API's list after it starts with the case's sessions (ADMIN-3).
	env.Setenv("SID0", fmt.Sprintf("cf-%s-%s-0", r.runID, ct.c.Name))
	sid128 := fmt.Sprintf("cf-%s-%s-128-", r.runID, ct.c.Name)
	env.Setenv("SID128", sid128+strings.Repeat("x", 128-len(sid128)))
	env.Setenv("HTTP", r.opts.httpBase())
	env.Setenv("WS_PATH", r.opts.wsPath())
	env.Setenv("KEEPALIVE", r.opts.KeepaliveInterval.String())
	env.Setenv("SESSION_TTL", r.opts.SessionTTL.String())
	env.Setenv("BUFFER_SIZE", strconv.Itoa(r.opts.BufferSize))
	env.Setenv("MAX_MESSAGE_BYTES", strconv.Itoa(r.opts.MaxMessageBytes))
	env.Setenv("QUEUE_DEPTH", strconv.Itoa(r.opts.QueueDepth))
	env.Setenv("BUFFER_BYTES", strconv.Itoa(r.opts.BufferBytes))
	env.Setenv("MAX_SESSIONS", strconv.Itoa(r.opts.MaxSessions))
	env.Setenv("QUERY_BURST", strconv.Itoa(r.opts.QueryBurst))
	env.Setenv("QUERY_RATE_MARGIN", strconv.Itoa(r.opts.rateMargin()))
	env.Setenv("TOKEN", r.opts.Token)
	env.Setenv("EXPIRED_TOKEN", r.opts.ExpiredToken)
	env.Setenv("KEEPALIVE_WINDOW", r.opts.keepaliveWindow().String())
	env.Setenv("TTL_WAIT", r.opts.ttlWait().String())
	env.Setenv("OFFLINE_WAIT", r.opts.offlineWait().String())
	env.Setenv("BIG_QUERY_BYTES", strconv.Itoa(r.opts.bigQueryBytes()))
	env.Setenv("INVALID_UTF8", "\xff\xfe")
	env.Defer(func() {
		for _, c := range st.conns {
			c.release()
		}
	})
	return nil
}

// condition answers the conditions of the scripts: [cap:NAME], whether the server
// claims a capability; [caps], whether it claims any; [overflowable], whether
// QUEUE_DEPTH+1 queries (3 frames each at least) overflow BUFFER_SIZE frames that fit
// in BUFFER_BYTES (so that the count bounds the buffer, not the bytes);
// [evictable], whether those queries overflow the buffer by either bound;
// [holds:N], whether the buffer holds N small frames; [bytebound], whether one query
// of BIG_QUERY_BYTES (whose query_start, chunks and complete each carry its text)
// overflows BUFFER_BYTES.
func (r *runner) condition(cond string) (bool, error) {
	switch {
	case strings.HasPrefix(cond, "cap:"):
		return slices.Contains(r.caps, cond[len("cap:"):]), nil
	case cond == "caps":
		return len(r.caps) > 0, nil
	case cond == "overflowable":
		return 3*(r.opts.QueueDepth+1) > r.opts.BufferSize && r.opts.BufferSize*smallFrameBytes <= r.opts.BufferBytes, nil
	case cond == "evictable":
		frames := 3 * (r.opts.QueueDepth + 1)
		return frames > r.opts.BufferSize || frames*minFrameBytes > r.opts.BufferBytes, nil
	case strings.HasPrefix(cond, "holds:"):
		n, err := strconv.Atoi(cond[len("holds:"):])
		if err != nil {
			return false, fmt.Errorf("condition %q: want holds:N, N a number of frames", cond)
		}
		return n <= r.opts.BufferSize && n*smallFrameBytes <= r.opts.BufferBytes, nil
	case cond == "bytebound":
		return 3*r.opts.bigQueryBytes() > r.opts.BufferBytes, nil
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}
