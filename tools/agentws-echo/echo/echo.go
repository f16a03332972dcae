// Package echo is a bare WebSocket echo server on github.com/coder/websocket: every
// message a client sends comes back to it unchanged, and nothing else happens. It is
// the baseline that tools/agentws-load compares an agentws server with (its -echo
// mode): the cost of the WebSocket library and the network alone, per frame.
package echo

import (
	"context"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// DefaultReadLimit is the largest message a connection reads unless told otherwise:
// 1 MiB, the reference server's client message size limit (spec table 15.4).
const DefaultReadLimit = 1 << 20

// Handler returns a handler that accepts WebSocket connections and echoes each
// message, text or binary, back on its connection, one goroutine per connection. A
// message over readLimit bytes closes the connection with 1009 (message too big).
func Handler(readLimit int64) http.Handler { return Delayed(readLimit, 0) }

// Delayed is Handler with a wait of delay before each message goes back (a
// time.Timer, as the reference's fixture agent waits before a chunk): the floor of
// what a server whose agent takes delay per answer can do on a machine.
func Delayed(readLimit int64, delay time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return // Accept has answered the request
		}
		defer c.CloseNow()
		c.SetReadLimit(readLimit)
		ctx := r.Context()
		for {
			typ, data, err := c.Read(ctx)
			if err != nil {
				return
			}
			if delay > 0 && !sleep(ctx, delay) {
				return
			}
			if err := c.Write(ctx, typ, data); err != nil {
				return
			}
		}
	})
}

// sleep waits for d, or until ctx ends (false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
