package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/agentws/agentws/reference/client"
	"github.com/agentws/agentws/schemas/msg"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// The exit statuses (see doc.go).
const (
	exitWhole      = 0
	exitServer     = 1
	exitUsage      = 2
	exitIncomplete = 3
	exitReplaced   = 4 // also after 4003: the session was taken from the client on purpose
	exitCancelled  = 5
)

const usageLine = "usage: ask [-session ID] [-user ID] [-token T] [-query-id ID] [-system-prompt S] [-timeout D] [-max-attempts N] [-cancel-after N] [-json] [-v] URL QUERY"

type config struct {
	url, query      string
	session, user   string
	token           string
	queryID, system string
	timeout         time.Duration
	maxAttempts     int
	cancelAfter     int
	json, verbose   bool
}

func parse(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("ask", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, usageLine)
		fs.PrintDefaults()
	}
	c := &config{}
	fs.StringVar(&c.session, "session", "", "the session `ID` (default: session_id of the URL, or a new random one)")
	fs.StringVar(&c.user, "user", "", "the user_id `ID`")
	fs.StringVar(&c.token, "token", os.Getenv("AGENTWS_TOKEN"), "a bearer `token` (default $AGENTWS_TOKEN)")
	fs.StringVar(&c.queryID, "query-id", "", "the query's query_id `ID` (default: one of the client's)")
	fs.StringVar(&c.system, "system-prompt", "", "the query's system_prompt")
	fs.DurationVar(&c.timeout, "timeout", 0, "give up after this `duration`, with exit status 3 (0: no bound)")
	attempts, err := envCount("AGENTWS_MAX_ATTEMPTS", 10)
	if err != nil {
		return nil, err
	}
	cancelAfter, err := envCount("AGENTWS_CANCEL_AFTER", 0)
	if err != nil {
		return nil, err
	}
	fs.IntVar(&c.maxAttempts, "max-attempts", attempts, "reconnections in a row before giving up (default $AGENTWS_MAX_ATTEMPTS, or 10)")
	fs.IntVar(&c.cancelAfter, "cancel-after", cancelAfter, "cancel the query after its `N`-th chunk (default $AGENTWS_CANCEL_AFTER, or 0: never)")
	fs.BoolVar(&c.json, "json", false, "print every received frame as NDJSON instead of the answer")
	fs.BoolVar(&c.verbose, "v", false, "log connections and reconnections to standard error")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() != 2:
		return nil, fmt.Errorf("want URL and QUERY, got %d arguments", fs.NArg())
	case fs.Arg(1) == "":
		return nil, errors.New("QUERY is empty")
	case c.maxAttempts < 0:
		return nil, fmt.Errorf("-max-attempts is %d, want 0 or more", c.maxAttempts)
	case c.cancelAfter < 0:
		return nil, fmt.Errorf("-cancel-after is %d, want 0 or more", c.cancelAfter)
	case c.timeout < 0:
		return nil, fmt.Errorf("-timeout is %v, want 0 or more", c.timeout)
	}
	c.url, c.query = fs.Arg(0), fs.Arg(1)
	return c, nil
}

// envCount reads a count from the environment: fallback when unset.
func envCount(name string, fallback int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return fallback, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s is %q, not a count", name, v)
	}
	return n, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	c, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitUsage
	}
	if err != nil {
		fmt.Fprintf(stderr, "ask: %v\n%s\n", err, usageLine)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	context.AfterFunc(ctx, stop) // a second interrupt ends the process at once
	return ask(ctx, c, stdout, stderr)
}

// ask runs the query; ctx ending (an interrupt) cancels it.
func ask(interrupt context.Context, c *config, stdout, stderr io.Writer) int {
	opts := client.Options{
		SessionID:   c.session,
		UserID:      c.user,
		Token:       c.token,
		MaxAttempts: c.maxAttempts,
	}
	if c.verbose {
		opts.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	if c.json {
		enc := json.NewEncoder(stdout)
		opts.OnFrame = func(dir client.Direction, raw []byte) {
			if dir == client.Received && json.Valid(raw) {
				enc.Encode(json.RawMessage(raw)) // compact, one per line
			}
		}
	}
	// A notice (an operator's message, spec 12.7) is no part of the answer: it goes to
	// standard error, which the adapter contract leaves free.
	opts.OnNotice = func(n msg.Notice) {
		fmt.Fprintf(stderr, "ask: notice (%s): %s\n", n.Level, n.Message)
	}
	if opts.SessionID == "" && !hasSession(c.url) {
		opts.SessionID = "ask-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	life := context.Background()
	if c.timeout > 0 {
		var cancel context.CancelFunc
		life, cancel = context.WithTimeout(life, c.timeout)
		defer cancel()
	}
	dialCtx, cancelDial := context.WithCancel(life)
	defer context.AfterFunc(interrupt, cancelDial)()
	cl, err := client.Dial(dialCtx, c.url, opts)
	if err != nil {
		fmt.Fprintf(stderr, "ask: %v\n", err)
		return exitUsage
	}
	defer cl.Close()

	queryCtx, cancelQuery := context.WithCancel(context.Background())
	defer cancelQuery()
	defer context.AfterFunc(interrupt, cancelQuery)()
	var qopts []client.QueryOption
	if c.queryID != "" {
		qopts = append(qopts, client.WithQueryID(c.queryID))
	}
	if c.system != "" {
		qopts = append(qopts, client.WithSystemPrompt(c.system))
	}
	q := cl.Query(queryCtx, c.query, qopts...)
	// -timeout: the client is closed, and the query ends with closed.
	defer context.AfterFunc(life, func() { cl.Close() })()
	n := 0
	for chunk, err := range q.Chunks() {
		if err != nil {
			break
		}
		if !c.json {
			io.WriteString(stdout, chunk)
		}
		if n++; n == c.cancelAfter {
			cancelQuery()
		}
	}
	_, err = q.Result()
	if err == nil {
		if !c.json && isTerminal(stdout) {
			io.WriteString(stdout, "\n")
		}
		return exitWhole
	}
	if errors.Is(err, client.ErrClosed) && life.Err() != nil {
		fmt.Fprintf(stderr, "ask: timed out after %v: the answer is incomplete\n", c.timeout)
		return exitIncomplete
	}
	fmt.Fprintf(stderr, "ask: %v\n", err)
	return statusOf(err)
}

// statusOf is the exit status of a query's error.
func statusOf(err error) int {
	var e *client.Error
	if !errors.As(err, &e) {
		return exitIncomplete
	}
	switch {
	case errors.Is(e, client.ErrReplaced), errors.Is(e, client.ErrEnded):
		return exitReplaced
	case errors.Is(e, client.ErrCancelled) && e.Frame == nil, errors.Is(e, client.ErrUnsupported) && e.Frame == nil:
		return exitCancelled
	case errors.Is(e, client.ErrRefused):
		return exitUsage
	case e.Frame != nil:
		return exitServer
	default:
		return exitIncomplete
	}
}

func hasSession(rawURL string) bool {
	u, err := url.Parse(rawURL)
	return err == nil && u.Query().Get("session_id") != ""
}

// isTerminal reports whether w is a terminal, where the answer ends with a newline.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
