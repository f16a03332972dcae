package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/agentws/agentws/tools/agentws-echo/echo"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// The exit statuses (see doc.go).
const (
	exitOK    = 0
	exitServe = 1
	exitUsage = 2
)

const usageLine = "usage: agentws-echo [-addr ADDRESS] [-max-message-bytes N] [-delay D]"

type config struct {
	addr      string
	readLimit int64
	delay     time.Duration
}

func parse(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("agentws-echo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, usageLine)
		fs.PrintDefaults()
	}
	c := &config{}
	fs.StringVar(&c.addr, "addr", "localhost:8060", "the listen `address`; :0 picks a free port")
	fs.Int64Var(&c.readLimit, "max-message-bytes", echo.DefaultReadLimit, "the largest message read, in `bytes`; a larger one closes the connection with 1009")
	fs.DurationVar(&c.delay, "delay", 0, "wait this long before echoing each message (a model's latency per answer); 0: none")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q: agentws-echo takes only flags", fs.Arg(0))
	case c.readLimit < 1:
		return nil, fmt.Errorf("-max-message-bytes is %d, want a positive size", c.readLimit)
	case c.delay < 0:
		return nil, fmt.Errorf("-delay is %v, want 0 or more", c.delay)
	}
	return c, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	c, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "agentws-echo: %v\n%s\n", err, usageLine)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, c, stdout); err != nil {
		fmt.Fprintf(stderr, "agentws-echo: %v\n", err)
		return exitServe
	}
	return exitOK
}

// serve listens on c.addr, prints the URL it serves, and echoes until ctx ends.
func serve(ctx context.Context, c *config, stdout io.Writer) error {
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", echo.Delayed(c.readLimit, c.delay))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "agentws-echo: serving ws://%s/ws\n", ln.Addr())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	// Hijacked WebSocket connections are not the server's any more: Close ends the
	// listener, and the process's exit ends them.
	srv.Close()
	<-done
	return nil
}
