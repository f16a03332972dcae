package server

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Close codes of spec/PROTOCOL.md table 15.1.
const (
	closeSessionReplaced = websocket.StatusCode(4001)
	closeSlowConsumer    = websocket.StatusCode(4002)
)

// A conn is one WebSocket connection of a session: the reader runs in the handler's
// goroutine, the writer in its own, draining a bounded queue.
type conn struct {
	srv *Server
	ws  *websocket.Conn
	log *slog.Logger

	mu      sync.Mutex
	out     []frame // frames waiting to be written
	limit   int     // the most frames out may hold
	closing bool    // no more frames are accepted
	code    websocket.StatusCode
	reason  string
	flush   bool     // write what is queued before closing
	counted bool     // counted in active_connections
	sess    *session // the session it belongs to, once attached

	lastSent atomic.Int64 // when the writer last wrote a frame, in Unix nanoseconds

	wake  chan struct{} // the writer has something to do
	space chan struct{} // the writer made room in out, or the connection is closing
	done  chan struct{} // the writer has returned
}

// controlReserve is how many connection-scoped frames (pong, errors) may wait beyond
// the send queue's limit: a full queue of stream frames never costs a client its pong.
const controlReserve = 32

func newConn(srv *Server, ws *websocket.Conn, log *slog.Logger) *conn {
	return &conn{
		srv: srv, ws: ws, log: log, limit: srv.cfg.SendQueue,
		wake: make(chan struct{}, 1), space: make(chan struct{}, 1), done: make(chan struct{}),
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (c *conn) notify() { signal(c.wake) }

// offer queues a session-scoped frame; it returns false when the queue is full or the
// connection is closing.
func (c *conn) offer(f frame) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || len(c.out) >= c.limit {
		return false
	}
	c.out = append(c.out, f)
	c.notify()
	return true
}

// waitSpace waits until the writer makes room or the connection closes; it returns
// false when there was no room within the write timeout: the client is too slow.
func (c *conn) waitSpace() bool {
	timer := time.NewTimer(c.srv.cfg.WriteTimeout)
	defer timer.Stop()
	for {
		c.mu.Lock()
		room := c.closing || len(c.out) < c.limit
		c.mu.Unlock()
		if room {
			return true
		}
		select {
		case <-c.space:
		case <-timer.C:
			return false
		}
	}
}

// reply queues a connection-scoped frame, an answer to a client frame. A client that
// does not read while it keeps sending fills even the reserve, and is closed with 4002;
// reply then returns false.
func (c *conn) reply(f frame) bool {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return false
	}
	if len(c.out) < c.limit+controlReserve {
		c.out = append(c.out, f)
		c.notify()
		c.mu.Unlock()
		return true
	}
	c.mu.Unlock()
	c.log.Warn("slow consumer: the client sends but does not read")
	c.srv.dropped(c)
	return false
}

// enqueueAll queues frames past the limit: the start of a connection, where
// connected and the buffered frames must all go first.
func (c *conn) enqueueAll(fs ...frame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.out = append(c.out, fs...)
	c.notify()
}

// closeAfter closes the connection with code once the frames queued so far are written.
func (c *conn) closeAfter(code websocket.StatusCode, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closing {
		c.closing, c.code, c.reason, c.flush = true, code, reason, true
	}
	c.notify()
	signal(c.space)
}

// closeNow closes the connection with code without writing what is queued, and
// returns the session-scoped frames that were queued, for the session's buffer.
func (c *conn) closeNow(code websocket.StatusCode, reason string) []frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	var unsent []frame
	for _, f := range c.out {
		if f.session {
			unsent = append(unsent, f)
		}
	}
	c.out = nil
	if !c.closing || c.flush {
		c.closing, c.code, c.reason, c.flush = true, code, reason, false
	}
	c.notify()
	signal(c.space)
	return unsent
}

// writeLoop writes queued frames until the connection closes.
func (c *conn) writeLoop() {
	defer close(c.done)
	for range c.wake {
		for {
			c.mu.Lock()
			if len(c.out) == 0 || (c.closing && !c.flush) {
				closing, code, reason := c.closing, c.code, c.reason
				c.mu.Unlock()
				if closing {
					c.close(code, reason)
					return
				}
				break
			}
			f := c.out[0]
			c.out[0] = frame{}
			c.out = c.out[1:]
			c.mu.Unlock()
			signal(c.space)
			if err := c.write(f); err != nil {
				c.log.Debug("write failed", "err", err)
				c.ws.CloseNow()
				c.srv.dropped(c, f)
				return
			}
		}
	}
}

// idleSince reports whether the writer has written nothing since t.
func (c *conn) idleSince(t time.Time) bool { return c.lastSent.Load() <= t.UnixNano() }

// abortGrace is how much longer than the write timeout one write may take before the
// connection is aborted: long enough for the slow-consumer close (4002) to come first.
const abortGrace = 5 * time.Second

func (c *conn) write(f frame) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.srv.cfg.WriteTimeout+abortGrace)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, f.data); err != nil {
		return err
	}
	c.lastSent.Store(time.Now().UnixNano())
	c.srv.stats.sent.Add(1)
	return nil
}

// close ends the connection with a close frame; it waits a short while for the client's
// answer, as the close handshake asks.
func (c *conn) close(code websocket.StatusCode, reason string) {
	if err := c.ws.Close(code, reason); err != nil && !errors.Is(err, context.Canceled) {
		c.log.Debug("close", "code", code, "err", err)
	}
}
