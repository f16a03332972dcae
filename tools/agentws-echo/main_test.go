package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// serve echoes text and binary messages, closes a connection whose message is over
// the limit with 1009, and returns when its context ends.
func TestServe(t *testing.T) {
	ctx, c, stop := serveAndDial(t, &config{addr: "127.0.0.1:0", readLimit: 64})
	for _, m := range []struct {
		typ  websocket.MessageType
		data []byte
	}{
		{websocket.MessageText, []byte(`{"type":"query","query":"hello"}`)},
		{websocket.MessageBinary, []byte{0, 1, 2}},
		{websocket.MessageText, bytes.Repeat([]byte("x"), 64)},
	} {
		if err := c.Write(ctx, m.typ, m.data); err != nil {
			t.Fatal(err)
		}
		typ, data, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if typ != m.typ || !bytes.Equal(data, m.data) {
			t.Errorf("got %v %q back, want %v %q", typ, data, m.typ, m.data)
		}
	}
	if err := c.Write(ctx, websocket.MessageText, bytes.Repeat([]byte("x"), 65)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Errorf("after a message over the limit: %v, want close 1009", err)
	}
	stop()
}

// serveAndDial runs serve with cfg, reads the URL it prints and dials it. stop ends
// serve and checks that it returned nil.
func serveAndDial(t *testing.T, cfg *config) (context.Context, *websocket.Conn, func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	serveCtx, end := context.WithCancel(ctx)
	out, w := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- serve(serveCtx, cfg, w) }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "agentws-echo: serving ")
	if !ok {
		t.Fatalf("first line %q, want agentws-echo: serving URL", line)
	}
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return ctx, c, func() {
		t.Helper()
		end()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
}

// With -delay, each message comes back no sooner than the delay after it was sent,
// and unchanged.
func TestServeDelay(t *testing.T) {
	const delay = 20 * time.Millisecond
	ctx, c, stop := serveAndDial(t, &config{addr: "127.0.0.1:0", readLimit: 64, delay: delay})
	for i := range 3 {
		sent := time.Now()
		msg := []byte{'m', byte('0' + i)}
		if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
			t.Fatal(err)
		}
		_, data, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(sent); took < delay || !bytes.Equal(data, msg) {
			t.Errorf("message %d: %q back after %v, want %q after %v or more", i, data, took, msg, delay)
		}
	}
	stop()
}

func TestServeListenFails(t *testing.T) {
	err := serve(context.Background(), &config{addr: "256.0.0.1:1", readLimit: 1}, io.Discard)
	if err == nil {
		t.Fatal("serve on an impossible address returned nil")
	}
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-max-message-bytes", "0"}, "-max-message-bytes is 0"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"-delay", "-1ms"}, "-delay is -1ms, want 0 or more"},
		{[]string{"-bogus"}, "flag provided but not defined: -bogus"},
	} {
		var stderr bytes.Buffer
		if got := run(tc.args, io.Discard, &stderr); got != exitUsage {
			t.Errorf("run %q: status %d, want %d", tc.args, got, exitUsage)
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("run %q: stderr %q, want it to contain %q", tc.args, stderr.String(), tc.want)
		}
	}
	if got := run([]string{"-h"}, io.Discard, io.Discard); got != exitOK {
		t.Errorf("-h: status %d, want %d", got, exitOK)
	}
}
