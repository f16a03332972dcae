package conformance

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/agentws/agentws/spec"
)

// The client cases that ship with the harness.
//
//go:embed testdata/client/*.txtar
var builtinClient embed.FS

// ClientFeatures are what a client's adapter may declare it can be asked beyond the
// contract's minimum: cancel, to cancel its query after a number of chunks
// (AGENTWS_CANCEL_AFTER).
var ClientFeatures = []string{"cancel"}

// ClientCatalog reads the client cases of dir ("" for the built-in ones), sorted by
// name. Their "needs" are features of the client's adapter (ClientFeatures).
func ClientCatalog(dir string) ([]Case, error) {
	if dir == "" {
		return catalogOf(builtinClient, "testdata/client", "")
	}
	return catalogOf(os.DirFS(dir), ".", dir)
}

// runClient runs the client cases against the adapter of opts.Client: every case
// gets a scripted server of its own and one run of the adapter.
func runClient(ctx context.Context, opts Options) (*Report, error) {
	if err := opts.checkClient(); err != nil {
		return nil, err
	}
	rules, v, cases, err := prepare(opts, ClientCatalog)
	if err != nil {
		return nil, err
	}
	started := time.Now()
	files, cleanup, err := caseFilesOf(builtinClient, opts.Dir, cases)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	r := &runner{
		opts: &opts, caps: opts.ClientFeatures, v: v, rules: map[string]spec.Rule{},
		cases: map[string]Case{}, results: map[string]*CaseResult{},
		sem: make(chan struct{}, opts.Parallel), runID: newRunID(), ctx: ctx, client: true,
	}
	for _, rule := range rules {
		r.rules[rule.ID] = rule
	}
	for _, c := range cases {
		r.cases[c.Name] = c
	}
	if opts.Dir == "" {
		r.caseDir = filepath.Dir(files[0])
	}
	if err := r.runScripts(files); err != nil {
		return nil, err
	}
	rep := newReport(&opts, "", opts.ClientFeatures, rules, r.ordered(cases), []Finding{}, started)
	if ctx.Err() != nil {
		return rep, fmt.Errorf("the run was cut short: %w", context.Cause(ctx))
	}
	return rep, nil
}

// clientLabel names the client under test in reports.
func (o *Options) clientLabel() string { return "client: " + strings.Join(o.Client, " ") }

func (o *Options) checkClient() error {
	switch {
	case o.URL != "":
		return fmt.Errorf("give a server URL (%s) or a client (%s), not both", o.URL, strings.Join(o.Client, " "))
	case o.Parallel < 1:
		return fmt.Errorf("parallel must be at least 1, not %d", o.Parallel)
	case o.FrameTimeout <= 0:
		return fmt.Errorf("frame timeout must be positive, not %v", o.FrameTimeout)
	case o.CaseTimeout < 0:
		return fmt.Errorf("case timeout must be positive (or 0 for the default), not %v", o.CaseTimeout)
	case o.Update:
		return errors.New("update re-blesses server cases from the reference server; the client cases have nothing to re-bless")
	}
	for _, f := range o.ClientFeatures {
		if !slices.Contains(ClientFeatures, f) {
			return fmt.Errorf("client feature %q: the features are %s", f, strings.Join(ClientFeatures, ", "))
		}
	}
	if _, err := exec.LookPath(o.Client[0]); err != nil {
		return fmt.Errorf("the client's adapter %q: %w", o.Client[0], err)
	}
	return nil
}

// setupClient prepares a client case: a scripted server of its own, and the
// variables of its script.
func (r *runner) setupClient(env *testscript.Env) error {
	ct := env.T().(*caseT)
	for _, need := range ct.c.Needs {
		if not, ok := strings.CutPrefix(need, "!"); ok && slices.Contains(r.caps, not) {
			env.T().Skip(fmt.Sprintf("checks a client that does not declare the feature %q, which the adapter declares", not))
		} else if !ok && !slices.Contains(r.caps, need) {
			env.T().Skip(fmt.Sprintf("needs the client feature %q, which the adapter does not declare (declare it with -client-features if the adapter supports it)", need))
		}
	}
	st := newCaseState(ct.ctx, r.opts, r.rules, r.v)
	st.name = ct.c.Name
	ct.st = st
	srv, err := newScriptServer(st)
	if err != nil {
		return err
	}
	st.srv = srv
	env.Values[stateKey{}] = st
	env.Setenv("SID", fmt.Sprintf("cf-%s-%s", r.runID, ct.c.Name))
	env.Setenv("USER_ID", "cf-user-"+r.runID)
	env.Setenv("URL", srv.url)
	env.Defer(func() {
		srv.finish()
		if a := srv.adapter; a != nil {
			st.wire.add(wireEntry{conn: "-", dir: "#", text: "the client " + a.describe()})
		}
	})
	return nil
}
