package server

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// What is written while corked leaves at flush, in one write, before anything written
// after it; uncorked, a write goes straight through.
func TestCorkKeepsOrder(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := &corkConn{Conn: a}
	got := make(chan string, 4)
	go func() {
		buf := make([]byte, 64)
		for {
			n, err := b.Read(buf)
			if err != nil {
				close(got)
				return
			}
			got <- string(buf[:n])
		}
	}()
	c.cork()
	for _, s := range []string{"one ", "two ", "three"} {
		if _, err := c.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.flush(time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("four")); err != nil {
		t.Fatal(err)
	}
	if first, second := <-got, <-got; first != "one two three" || second != "four" {
		t.Errorf("read %q then %q, want the corked writes in one piece, then the uncorked one", first, second)
	}
	if c.held != nil {
		t.Error("the flushed connection still holds a buffer")
	}
}

// A flush to a peer that does not read fails with os.ErrDeadlineExceeded after the
// timeout, which the writer reports as a slow consumer.
func TestCorkFlushTimesOut(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := &corkConn{Conn: a}
	c.cork()
	c.Write([]byte("never read"))
	if err := c.flush(10 * time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("flush to a peer that does not read: %v, want os.ErrDeadlineExceeded", err)
	}
	// The deadline is cleared: a later write waits for the reader, and gets through.
	go io.Copy(io.Discard, b)
	if _, err := c.Write([]byte("read now")); err != nil {
		t.Fatalf("write after the failed flush: %v", err)
	}
}
