package conformance

// The client under test, run through its adapter: a command given the scripted
// server's URL and a query, which prints the answer as its client delivers it and
// exits with a status saying how the query ended (README.md, "The adapter contract").

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// The exit statuses of the adapter contract.
const (
	exitAnswered   = 0 // the whole answer
	exitQueryError = 1 // the server ended the query with an error
	exitUsage      = 2 // a usage error, or the first connection failed
	exitIncomplete = 3 // the answer is incomplete or lost
	exitReplaced   = 4 // another connection took the session over (4001), or the operator ended it (4003)
	exitCancelled  = 5 // the query was cancelled
)

var exitMeaning = map[int]string{
	exitAnswered: "answered", exitQueryError: "the query failed", exitUsage: "usage, or no first connection",
	exitIncomplete: "incomplete or lost", exitReplaced: "replaced or ended", exitCancelled: "cancelled",
}

// maxAdapterOutput bounds what the harness keeps of the adapter's stdout and stderr,
// each: a client that prints without end cannot make the harness hold more.
const maxAdapterOutput = 4 << 20

// adapter is one run of the client's adapter.
type adapter struct {
	cmd    *exec.Cmd
	stdout boundedBuffer
	stderr boundedBuffer
	done   chan struct{} // closed when the process has exited
	status int           // its exit status; -1 when a signal ended it
	err    error         // why it could not run, or the signal
	killed bool          // the harness ended it
	judged bool
}

func startAdapter(command []string, url, query string, env []string) (*adapter, error) {
	a := &adapter{done: make(chan struct{}), status: -1}
	a.cmd = exec.Command(command[0], append(append([]string(nil), command[1:]...), url, query)...)
	a.cmd.Env = append(os.Environ(), env...)
	a.cmd.Stdout, a.cmd.Stderr = &a.stdout, &a.stderr
	ownGroup(a.cmd)
	a.cmd.WaitDelay = time.Second // a child that keeps stdout open does not hold the case
	if err := a.cmd.Start(); err != nil {
		return nil, fmt.Errorf("the client's adapter %q does not start: %w", strings.Join(command, " "), err)
	}
	go func() {
		defer close(a.done)
		err := a.cmd.Wait()
		var ee *exec.ExitError
		switch {
		case err == nil:
			a.status = 0
		case errors.As(err, &ee) && ee.ExitCode() >= 0:
			a.status = ee.ExitCode()
		default:
			a.err = err
		}
	}()
	return a, nil
}

// wait waits for the adapter to exit, within d.
func (a *adapter) wait(d time.Duration, cancel <-chan struct{}) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-a.done:
		return true
	case <-timer.C:
	case <-cancel:
	}
	return false
}

func (a *adapter) exited() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// stop kills the adapter and what it started, unless it has exited.
func (a *adapter) stop() {
	if a.exited() {
		return
	}
	a.killed = true
	killGroup(a.cmd)
	<-a.done
}

// answer is what the adapter printed: the answer as its client delivered it, one
// trailing newline aside.
func (a *adapter) answer() string {
	return strings.TrimSuffix(strings.TrimSuffix(a.stdout.String(), "\n"), "\r")
}

// describe says how the adapter ended, with the end of its stderr.
func (a *adapter) describe() string {
	var what string
	switch {
	case !a.exited():
		what = "still running"
	case a.killed:
		what = "killed by the harness at the end of the case"
	case a.err != nil:
		what = "ended: " + a.err.Error()
	default:
		what = fmt.Sprintf("exited %d (%s)", a.status, exitMeaning[a.status])
	}
	if tail := lastLines(a.stderr.String(), 5); tail != "" {
		what += "; its stderr ends: " + tail
	}
	return what
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return truncate(strings.Join(lines, " | "), 600)
}

// judgeExit checks, once, the rule every case holds the client to: an adapter that
// exits 0 says it has the whole answer, and what it printed must be the answer the
// server's complete confirmed (CLIENT-7).
func (s *scriptServer) judgeExit(a *adapter) {
	if a.judged || !a.exited() || a.killed || a.status != exitAnswered {
		return
	}
	a.judged = true
	s.mu.Lock()
	complete, unwritten := s.complete, s.unwritten
	s.mu.Unlock()
	switch got := a.answer(); {
	case len(unwritten) > 0:
		s.st.finding("CLIENT-7", "the client exited 0, answered in full, though it closed the connection before the server could send it %s; it printed %q", strings.Join(unwritten, ", "), truncate(got, 200))
	case complete == nil:
		s.st.finding("CLIENT-7", "the client exited 0, answered in full, but the server sent no complete for its query; it printed %q", truncate(got, 200))
	case got != *complete:
		s.st.finding("CLIENT-7", "the client exited 0, answered in full, and printed %q; the answer is %q", truncate(got, 300), truncate(*complete, 300))
	}
}

// boundedBuffer keeps the first maxAdapterOutput bytes written to it.
type boundedBuffer struct {
	mu  sync.Mutex
	b   bytes.Buffer
	cut bool
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := maxAdapterOutput - b.b.Len(); room < len(p) {
		b.b.Write(p[:max(room, 0)])
		b.cut = true
		return len(p), nil
	}
	return b.b.Write(p)
}

func (b *boundedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
