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
// goroutine, the writer in its own, draining a bounded queue. ws is set once, by start,
// before the writer and the reader run; nothing else uses it.
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

	wake chan struct{} // the writer has something to do
	done chan struct{} // the writer has returned
}

// controlReserve is how many connection-scoped frames (pong, errors) may wait beyond
// the send queue's limit: a full queue of stream frames never costs a client its pong.
const controlReserve = 32

// newConn returns a connection without its socket: it joins its session, and queues
// its first frames, before the upgrade; start gives it the socket.
func newConn(srv *Server, log *slog.Logger) *conn {
	return &conn{
		srv: srv, log: log, limit: srv.cfg.SendQueue,
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
}

// start gives c its socket and starts its writer, which writes what was queued so far
// (connected first) or closes the connection if it was closed meanwhile.
func (c *conn) start(ws *websocket.Conn) {
	c.ws = ws
	c.lastSent.Store(time.Now().UnixNano())
	go c.writeLoop()
}

func (c *conn) notify() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// offer queues a session-scoped frame; it returns false when the queue is full (the
// client is a slow consumer) or the connection is closing.
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
	c.log.Warn("slow consumer: the client sends but does not read; closing it with 4002")
	c.srv.dropped(c, closeSlowConsumer, "slow consumer")
	return false
}

// join records that c joined sess, which counts it as active (HEALTH-4). sess.mu is
// held.
func (c *conn) join(sess *session) {
	c.mu.Lock()
	c.sess, c.counted = sess, true
	c.mu.Unlock()
	c.srv.stats.active.Add(1)
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
}

// closeNow closes the connection with code without writing what is queued, and
// returns the session-scoped frames that were queued, for the session's buffer, and
// the evictions that an unwritten connected frame was to announce (BUF-8), for the
// next one.
func (c *conn) closeNow(code websocket.StatusCode, reason string) (unsent []frame, unannounced int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.out {
		if f.session {
			unsent = append(unsent, f)
		}
		unannounced += f.evicted
	}
	c.out = nil
	if !c.closing || c.flush {
		c.closing, c.code, c.reason, c.flush = true, code, reason, false
	}
	c.notify()
	return unsent, unannounced
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
			if err := c.write(f); err != nil {
				c.log.Debug("write failed", "err", err)
				c.ws.CloseNow()
				c.srv.dropped(c, websocket.StatusGoingAway, "", f)
				return
			}
		}
	}
}

// idleSince reports whether the writer has written nothing since t.
func (c *conn) idleSince(t time.Time) bool { return c.lastSent.Load() <= t.UnixNano() }

func (c *conn) write(f frame) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.srv.cfg.WriteTimeout)
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
