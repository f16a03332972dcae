package main

import (
	"context"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/agentws/agentws/schemas"
)

// A runner runs the connections of one load run and collects what they measure.
type runner struct {
	cfg       *config
	url       *url.URL
	validator *schemas.Validator // nil without -validate
	rec       *recorder
	sig       context.Context // ends on an interrupt
	start     time.Time
	deadline  time.Time // the end of sending, with -duration (not -idle)
	nofile    nofile

	capsOnce sync.Once
	caps     []string // the first connection's capabilities
}

// nofile is the open-file limit, raised at start.
type nofile struct {
	before, now uint64
	err         error
}

func newRunner(c *config) (*runner, error) {
	r := &runner{cfg: c, url: parseURL(c.url), rec: newRecorder()}
	if c.validate {
		v, err := schemas.NewValidator(schemas.Options{})
		if err != nil {
			return nil, err
		}
		r.validator = v
	}
	// Go raises the soft limit itself since Go 1.19; this says so, and covers a
	// binary built otherwise.
	r.nofile.now, r.nofile.before, r.nofile.err = raiseNoFile()
	return r, nil
}

// noteCapabilities keeps the capabilities of the first connected.
func (r *runner) noteCapabilities(caps []string) {
	r.capsOnce.Do(func() { r.caps = append([]string{}, caps...) })
}

// interrupted reports whether the run was interrupted: a failure then is no error of
// the server's.
func (r *runner) interrupted() bool { return r.sig.Err() != nil }

// more reports whether a connection sends its k-th query, due at origin.
func (r *runner) more(k int, origin time.Time) bool {
	if r.cfg.duration > 0 {
		return origin.Before(r.deadline)
	}
	return k < r.cfg.queries
}

// run opens the connections, runs their queries (or holds them), and reports.
func (r *runner) run(sig context.Context) *report {
	c := r.cfg
	r.sig = sig
	m := startMeasure(c)
	r.start = m.start
	ctx := sig
	if c.duration > 0 && !c.idle {
		r.deadline = r.start.Add(c.ramp + c.duration)
		var cancel context.CancelFunc
		// Each frame has its own -timeout: this bound is only for a wait that has none.
		ctx, cancel = context.WithDeadline(sig, r.deadline.Add(2*c.timeout))
		defer cancel()
	}
	var workers, held sync.WaitGroup
	release := make(chan struct{})
	held.Add(c.conns)
	for i := range c.conns {
		workers.Go(func() { r.work(ctx, i, &held, release) })
	}
	if c.idle {
		held.Wait()
		m.sampleOpened()
		t := time.NewTimer(c.duration)
		select {
		case <-t.C:
		case <-sig.Done():
			t.Stop()
		}
		m.sampleHeld()
		close(release)
	}
	workers.Wait()
	m.stop()
	return r.report(m)
}

// work runs connection i.
func (r *runner) work(ctx context.Context, i int, held *sync.WaitGroup, release <-chan struct{}) {
	c := r.cfg
	w := &worker{r: r, id: i, sessionID: c.sessionPrefix + "-" + strconv.Itoa(i)}
	defer func() { r.rec.addCounts(w.counts) }()
	ok := r.rampUp(ctx, i) && w.dial(ctx) == nil
	held.Done()
	if !ok {
		return
	}
	// Ending the session is no part of the load: it happens even after an interrupt,
	// each wait bounded by -timeout.
	end := context.WithoutCancel(ctx)
	if c.idle {
		w.hold(end, release)
		return
	}
	if err := w.queries(ctx); err != nil {
		w.conn.CloseNow()
		return
	}
	w.disconnect(end)
}

// rampUp waits for connection i's turn to dial: -ramp spreads the C dials evenly.
func (r *runner) rampUp(ctx context.Context, i int) bool {
	if r.cfg.ramp <= 0 {
		return true
	}
	at := r.start.Add(r.cfg.ramp * time.Duration(i) / time.Duration(r.cfg.conns))
	t := time.NewTimer(time.Until(at))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
