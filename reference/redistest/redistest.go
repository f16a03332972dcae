// Package redistest runs a real Redis server (Debian's redis-server) for tests: on a
// free loopback port, in a temporary directory, without persistence, stopped when the
// test ends. When redis-server is missing the test is skipped, with the reason, unless
// AGENTWS_REQUIRE_REDIS is set (make test sets it, and installs Redis with
// tools/redis.sh): then it fails.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A Server is a redis-server process.
type Server struct {
	t    testing.TB
	Addr string // host:port
	dir  string
	cmd  *exec.Cmd
	exit chan error
}

// Start starts a Redis server for the test.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("AGENTWS_REQUIRE_REDIS") != "" {
			t.Fatalf("redis-server is not installed, and AGENTWS_REQUIRE_REDIS is set: run tools/redis.sh")
		}
		t.Skip("redis-server is not installed (tools/redis.sh installs it; make test does)")
	}
	s := &Server{t: t, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t))), dir: t.TempDir()}
	s.launch()
	t.Cleanup(s.Stop)
	return s
}

// Pid is the server's process id, while it runs.
func (s *Server) Pid() int {
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// URL is the server's address as a -store URL.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (s *Server) launch() {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(s.Addr)
	s.cmd = exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--daemonize", "no", "--loglevel", "warning")
	s.cmd.Stderr = os.Stderr // its log (of warnings) goes to stdout, left out
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("redis-server: %v", err)
	}
	s.exit = make(chan error, 1)
	go func(cmd *exec.Cmd, exit chan error) { exit <- cmd.Wait() }(s.cmd, s.exit)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if s.ping() == nil {
			return
		}
		select {
		case err := <-s.exit:
			s.t.Fatalf("redis-server on %s exited at start: %v", s.Addr, err)
		case <-time.After(10 * time.Millisecond): // polling for the port to answer
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %s did not answer PING within 10 s", s.Addr)
		}
	}
}

// Stop kills the server; Launch starts it again.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exit
	s.cmd = nil
}

// Pause stops the server's process (SIGSTOP): a Redis that stalls, neither answering
// nor closing its connections; Continue resumes it.
func (s *Server) Pause() { s.cmd.Process.Signal(syscall.SIGSTOP) }

// Continue resumes a paused server (SIGCONT).
func (s *Server) Continue() { s.cmd.Process.Signal(syscall.SIGCONT) }

// Launch starts the server again, empty, on the same port, after Stop: what a Redis
// without persistence that restarts looks like.
func (s *Server) Launch() {
	s.t.Helper()
	if s.cmd == nil {
		s.launch()
	}
}

// Do sends one command and returns its reply line (a status, an error or an integer;
// the first line of a bulk reply).
func (s *Server) Do(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(line, "$") && line != "$-1" {
		line, err = r.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
	}
	return line, err
}

func (s *Server) ping() error {
	reply, err := s.Do("PING")
	if err == nil && reply != "+PONG" {
		err = fmt.Errorf("PING answered %q", reply)
	}
	return err
}
