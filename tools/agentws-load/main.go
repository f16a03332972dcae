package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// The exit statuses (see doc.go).
const (
	exitPassed = 0
	exitFailed = 1
	exitUsage  = 2
)

// The default URLs: the reference server's, and agentws-echo's with -echo.
const (
	defaultURL     = "ws://localhost:8050/ws"
	defaultEchoURL = "ws://localhost:8060/ws"
)

// defaultIdle is how long -idle holds its connections without -duration.
const defaultIdle = 10 * time.Second

const usageLine = "usage: agentws-load [-url URL] [-c N] [-q N | -duration D] [-rate R] [-ramp D] [-idle] [-echo] [-query-size N] [-pid P] [-json] [flags]"

// The modes of a run.
const (
	modeClosed = "closed"
	modeOpen   = "open"
	modeIdle   = "idle"
)

type config struct {
	url, token    string
	conns         int
	queries       int
	duration      time.Duration
	rate          float64
	ramp          time.Duration
	idle, echo    bool
	querySize     int
	fixture       bool
	validate      bool
	pid           int
	json          bool
	timeout       time.Duration
	maxErrors     int
	maxFrameBytes int64
	maxLag        time.Duration
	cpuShare      float64
	sample        time.Duration
	sessionPrefix string
}

// mode is closed, open or idle; -echo is a variant of closed and open.
func (c *config) mode() string {
	switch {
	case c.idle:
		return modeIdle
	case c.rate > 0:
		return modeOpen
	}
	return modeClosed
}

func parse(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("agentws-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, usageLine)
		fs.PrintDefaults()
	}
	c := &config{}
	fs.StringVar(&c.url, "url", defaultURL, "the server's WebSocket `URL`; session_id is added to it (default with -echo: "+defaultEchoURL+")")
	fs.StringVar(&c.token, "token", os.Getenv("AGENTWS_TOKEN"), "a bearer `token` sent with every handshake (default $AGENTWS_TOKEN)")
	fs.IntVar(&c.conns, "c", 10, "the `number` of connections")
	fs.IntVar(&c.queries, "q", 100, "queries each connection sends (or frames, with -echo)")
	fs.DurationVar(&c.duration, "duration", 0, "send for this `duration` instead of -q queries; with -idle, how long to hold the connections (default 10s)")
	fs.Float64Var(&c.rate, "rate", 0, "open loop: send this many queries a second in all, on a schedule fixed in advance (0: closed loop)")
	fs.DurationVar(&c.ramp, "ramp", 0, "open the connections evenly over this `duration` (0: all at once)")
	fs.BoolVar(&c.idle, "idle", false, "hold the connections open for -duration, send nothing, and report connect latency and the server's memory per connection")
	fs.BoolVar(&c.echo, "echo", false, "send text frames of -query-size bytes and wait for each to come back, for an echo server such as agentws-echo")
	fs.IntVar(&c.querySize, "query-size", 64, "the `characters` of each query (bytes of each frame, with -echo)")
	fs.BoolVar(&c.fixture, "fixture", true, "check that each answer is the fixture agent's, \"Echo: \" + the query (spec section 13)")
	fs.BoolVar(&c.validate, "validate", true, "validate every received frame against the spec's schemas (costs client CPU)")
	fs.IntVar(&c.pid, "pid", 0, "the process `id` of the server, on this machine: report its CPU time and memory (0: none)")
	fs.BoolVar(&c.json, "json", false, "write one JSON document instead of the text report")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "the longest wait for a frame, a handshake or a write; longer is a timeout error")
	fs.IntVar(&c.maxErrors, "max-errors", 0, "errors tolerated before the exit status is 1 (stream check failures always count)")
	fs.Int64Var(&c.maxFrameBytes, "max-frame-bytes", 16<<20, "the largest frame read, in `bytes`")
	fs.DurationVar(&c.maxLag, "max-lag", 10*time.Millisecond, "open loop: warn that the client is the bottleneck when its sends are this late (p99) while their connection was free")
	fs.Float64Var(&c.cpuShare, "cpu-share", 0.8, "warn that the client is the bottleneck when it uses this `fraction` of GOMAXPROCS cores")
	fs.DurationVar(&c.sample, "sample-interval", 100*time.Millisecond, "with -pid: how often to sample the server's RSS for its peak")
	fs.StringVar(&c.sessionPrefix, "session-prefix", "", "the session_id of connection i is PREFIX-i (default load-RUN, RUN unique to the run)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if c.echo && !set["url"] {
		c.url = defaultEchoURL
	}
	if c.idle && c.duration == 0 {
		c.duration = defaultIdle
	}
	if c.sessionPrefix == "" {
		c.sessionPrefix = "load-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	if err := c.check(fs, set); err != nil {
		return nil, err
	}
	return c, nil
}

// check rejects flags out of their range or that exclude each other.
func (c *config) check(fs *flag.FlagSet, set map[string]bool) error {
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected argument %q: agentws-load takes only flags", fs.Arg(0))
	case c.conns < 1:
		return fmt.Errorf("-c is %d, want 1 or more connections", c.conns)
	case c.queries < 1:
		return fmt.Errorf("-q is %d, want 1 or more queries", c.queries)
	case c.duration < 0:
		return fmt.Errorf("-duration is %v, want 0 or more", c.duration)
	case set["q"] && set["duration"]:
		return errors.New("-q and -duration exclude each other: give one")
	case c.rate < 0 || c.rate != c.rate || c.rate > 1e9:
		return fmt.Errorf("-rate is %v, want 0 (closed loop) or a positive number of queries a second", c.rate)
	case c.ramp < 0:
		return fmt.Errorf("-ramp is %v, want 0 or more", c.ramp)
	case c.idle && (set["q"] || set["rate"]):
		return errors.New("-idle sends nothing: -q and -rate do not apply")
	case c.querySize < 1:
		return fmt.Errorf("-query-size is %d, want 1 or more characters", c.querySize)
	case c.pid < 0:
		return fmt.Errorf("-pid is %d, want a process id", c.pid)
	case c.timeout <= 0:
		return fmt.Errorf("-timeout is %v, want a positive duration", c.timeout)
	case c.maxErrors < 0:
		return fmt.Errorf("-max-errors is %d, want 0 or more", c.maxErrors)
	case c.maxFrameBytes < 1:
		return fmt.Errorf("-max-frame-bytes is %d, want a positive size", c.maxFrameBytes)
	case c.maxLag <= 0:
		return fmt.Errorf("-max-lag is %v, want a positive duration", c.maxLag)
	case c.cpuShare <= 0 || c.cpuShare > 1:
		return fmt.Errorf("-cpu-share is %v, want a fraction in (0, 1]", c.cpuShare)
	case c.sample <= 0:
		return fmt.Errorf("-sample-interval is %v, want a positive duration", c.sample)
	case !validID(c.sessionPrefix + "-" + strconv.Itoa(c.conns-1)):
		return fmt.Errorf("-session-prefix %q does not make session ids of 1 to 128 characters of A-Z a-z 0-9 . _ : ~ -", c.sessionPrefix)
	}
	u, err := url.Parse(c.url)
	if err != nil {
		return fmt.Errorf("-url: %w", err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" && u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("-url %q: want ws://host[:port]/path or wss://…", c.url)
	}
	if c.pid > 0 {
		if _, err := readProc(c.pid); err != nil {
			return fmt.Errorf("-pid %d: %w", c.pid, err)
		}
	}
	return nil
}

// validID reports whether s is in the syntax of a session_id (spec section 2).
func validID(s string) bool {
	if len(s) < 1 || len(s) > 128 {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == ':' || r == '~' || r == '-'
		if !ok {
			return false
		}
	}
	return true
}

func run(args []string, stdout, stderr io.Writer) int {
	c, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitPassed
	}
	if err != nil {
		fmt.Fprintf(stderr, "agentws-load: %v\n%s\n", err, usageLine)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // a second interrupt ends the process at once
	r, err := newRunner(c)
	if err != nil {
		fmt.Fprintf(stderr, "agentws-load: %v\n", err)
		return exitUsage
	}
	rep := r.run(ctx)
	if c.json {
		err = rep.writeJSON(stdout)
	} else {
		err = rep.writeText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "agentws-load: %v\n", err)
	}
	return rep.Status
}

// cores is the CPU the client could use: its GOMAXPROCS.
func cores() int { return runtime.GOMAXPROCS(0) }
