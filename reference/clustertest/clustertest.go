// Package clustertest runs reference server processes for tests of a server of many
// nodes (spec/PROTOCOL.md section 9.3), and a round-robin TCP proxy in front of them.
package clustertest

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A Node is a reference server process of a cluster.
type Node struct {
	t    testing.TB
	Addr string // host:port
	ID   string
	args []string
	cmd  *exec.Cmd
	exit chan error
}

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// Binary builds the reference server once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "agentws-reftest-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "agentws-server")
		out, err := exec.Command("go", "build", "-o", binary, "github.com/agentws/agentws/reference/cmd/agentws-server").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// StartNode runs a reference server process with the flags args (an -addr of a free
// loopback port is added), and waits until it is ready. It is killed when the test
// ends, if it still runs.
func StartNode(t testing.TB, id string, args ...string) *Node {
	t.Helper()
	n := &Node{t: t, ID: id, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))}
	n.args = append([]string{"-addr", n.Addr, "-node-id", id}, args...)
	n.Start()
	t.Cleanup(n.Kill)
	return n
}

// Start starts the node's process (again, after Kill or a drain), on the same address.
func (n *Node) Start() {
	n.t.Helper()
	n.cmd = exec.Command(Binary(n.t), n.args...)
	n.cmd.Stdout, n.cmd.Stderr = os.Stderr, os.Stderr
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.exit = make(chan error, 1)
	go func(cmd *exec.Cmd, exit chan error) { exit <- cmd.Wait() }(n.cmd, n.exit)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, err := http.Get("http://" + n.Addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-n.exit:
			n.t.Fatalf("node %s exited at start: %v", n.ID, err)
		case <-time.After(20 * time.Millisecond): // polling for the port to answer
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("node %s was not ready within 20 s", n.ID)
		}
	}
}

// CPU returns the processor time the node's process has used so far (user and
// system), from /proc on Linux.
func (n *Node) CPU() (time.Duration, error) {
	if n.cmd == nil {
		return 0, fmt.Errorf("node %s is not running", n.ID)
	}
	return ProcessCPU(n.cmd.Process.Pid)
}

// ProcessCPU returns the processor time process pid has used (user and system), from
// /proc/<pid>/stat on Linux.
func ProcessCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses and may hold spaces:
	// utime and stime are the 12th and 13th of them, in clock ticks (100 a second).
	rest := string(data)
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: unreadable times", pid)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// Kill ends the node at once (SIGKILL): it drains nothing.
func (n *Node) Kill() {
	if n.cmd == nil {
		return
	}
	n.cmd.Process.Kill()
	<-n.exit
	n.cmd = nil
}

// Drain sends SIGTERM and waits for the process to exit.
func (n *Node) Drain() error {
	if n.cmd == nil {
		return nil
	}
	n.cmd.Process.Signal(os.Interrupt)
	err := <-n.exit
	n.cmd = nil
	return err
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// A Proxy is a round-robin TCP proxy: each connection it accepts goes to the next of
// its backends that accepts it, so consecutive connections land on different nodes.
type Proxy struct {
	Addr     string
	backends []string
	next     atomic.Int64
	l        net.Listener
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
}

// StartProxy listens on a free loopback port in front of backends until the test ends.
func StartProxy(t testing.TB, backends ...string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: l.Addr().String(), backends: backends, l: l, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.Close)
	return p
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.relay(c)
		}()
	}
}

// relay joins c to the next backend that accepts a connection.
func (p *Proxy) relay(c net.Conn) {
	defer c.Close()
	var b net.Conn
	for range p.backends {
		i := int(p.next.Add(1)-1) % len(p.backends)
		var err error
		if b, err = net.DialTimeout("tcp", p.backends[i], time.Second); err == nil {
			break
		}
	}
	if b == nil {
		return
	}
	defer b.Close()
	if !p.track(c, b) {
		return
	}
	defer p.untrack(c, b)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(b, c)
	go pipe(c, b)
	<-done
	<-done
}

func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *Proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
	}
}

// Cut closes every connection the proxy relays, as a network failure would: without a
// close frame, on both sides. It returns how many client connections it cut.
func (p *Proxy) Cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	n := len(p.conns) / 2
	clear(p.conns)
	return n
}

// Close stops the proxy and its connections.
func (p *Proxy) Close() {
	p.l.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}
