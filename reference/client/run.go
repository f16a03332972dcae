package client

import (
	"errors"
	"math/rand/v2"
	"time"

	"github.com/coder/websocket"

	"github.com/agentws/agentws/schemas/msg"
)

// run serves the connection l, and after each abrupt drop reconnects, until the
// client ends. It is the only reader of the connections.
func (c *Client) run(l *link) {
	defer close(c.runDone)
	defer c.stop()
	for l != nil {
		err := c.serve(l)
		c.mu.Lock()
		if c.link == l {
			c.link = nil
		}
		if time.Since(l.since) >= c.opts.Backoff.Stable {
			c.attempt = 0
		}
		if c.over {
			c.mu.Unlock()
			return
		}
		he := c.dropError(err)
		if c.disconnecting && websocket.CloseStatus(err) == websocket.StatusNormalClosure {
			he = &handshakeError{code: CodeSessionEnded, permanent: true, msg: "the session was ended by Disconnect"}
		}
		if he.permanent {
			c.finish(permanentError(he))
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		c.opts.Logger.Warn("agentws: connection dropped", "session_id", c.sessionID, "err", err)
		l = c.reconnect()
	}
}

// serve reads the connection's frames until it ends, and returns why it ended.
func (c *Client) serve(l *link) error {
	go l.writer()
	defer func() {
		l.cancel()
		l.ws.CloseNow()
		<-l.writerDone
	}()
	for {
		_, data, err := l.ws.Read(c.life)
		if err != nil {
			return err
		}
		c.onFrame(Received, data)
		f, ok := parseFrame(data)
		var notice *msg.Notice
		c.mu.Lock()
		if ok {
			notice = c.receive(f, data)
		}
		over := c.over
		c.mu.Unlock()
		if notice != nil && c.opts.OnNotice != nil {
			c.opts.OnNotice(*notice) // outside c.mu: it may call the client
		}
		if over {
			return errors.New("the client ended")
		}
	}
}

// reconnect waits for the backoff and opens a new connection, until one has its
// connected frame; it returns nil when the client ends instead.
func (c *Client) reconnect() *link {
	for {
		c.mu.Lock()
		if c.over {
			c.mu.Unlock()
			return nil
		}
		if max := c.opts.MaxAttempts; max > 0 && c.attempt >= max {
			c.finish(newError(CodeUnreachable, "gave up after %d reconnections in a row", c.attempt))
			c.mu.Unlock()
			return nil
		}
		delay := c.opts.Backoff.delay(c.attempt)
		c.attempt++
		attempt := c.attempt
		c.mu.Unlock()
		c.opts.Logger.Info("agentws: reconnecting", "session_id", c.sessionID, "attempt", attempt, "delay", delay)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-c.life.Done():
			t.Stop()
			return nil
		}
		l, f, err := c.handshake(c.life)
		c.mu.Lock()
		switch he, _ := err.(*handshakeError); {
		case c.over:
			if l != nil {
				l.ws.CloseNow()
			}
			c.mu.Unlock()
			return nil
		case he != nil && he.permanent:
			c.finish(permanentError(he))
			c.mu.Unlock()
			return nil
		case err != nil:
			c.mu.Unlock()
			c.opts.Logger.Warn("agentws: reconnection failed", "session_id", c.sessionID, "attempt", attempt, "err", err)
			continue
		}
		c.connected(l, f, false)
		c.mu.Unlock()
		return l
	}
}

// delay is the wait before reconnection attempt (from 0): capped exponential, with
// jitter in [0.5, 1).
func (b Backoff) delay(attempt int) time.Duration {
	d := b.Max
	if attempt < 32 && b.Initial<<attempt > 0 {
		d = min(b.Max, b.Initial<<attempt)
	}
	return time.Duration(float64(d) * (0.5 + rand.Float64()/2))
}
