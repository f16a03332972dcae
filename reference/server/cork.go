package server

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"time"
)

// A corkConn is a connection's socket that can hold what is written to it and send it
// at once: the writer corks it, writes the frames waiting in its queue, and flushes
// them in one system call (one TLS record) instead of one for each frame. Uncorked, a
// write goes straight to the socket, as the library's own control frames (its pong,
// its close) do. Bytes leave in the order they were written, whoever writes them:
// a write while corked joins the held bytes, and flush sends those before any later
// write. The held bytes come from a pool, so an idle connection holds none.
type corkConn struct {
	net.Conn

	mu     sync.Mutex
	corked bool
	held   *[]byte
}

// corkBatchBytes bounds the frames the writer corks together: more go in the next
// system call, and a larger frame is written alone, uncorked.
const corkBatchBytes = 32 << 10

var corkBuffers = sync.Pool{New: func() any { b := make([]byte, 0, corkBatchBytes+1<<10); return &b }}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		*c.held = append(*c.held, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// cork holds what is written from now on until flush.
func (c *corkConn) cork() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = true
	if c.held == nil {
		c.held = corkBuffers.Get().(*[]byte)
	}
}

// flush sends what was held, within timeout, and uncorks the connection. A write that
// takes longer fails with os.ErrDeadlineExceeded.
func (c *corkConn) flush(timeout time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	held := c.held
	c.held = nil
	if held == nil {
		return nil
	}
	defer func() {
		if cap(*held) <= 2*corkBatchBytes {
			*held = (*held)[:0]
			corkBuffers.Put(held)
		}
	}()
	if len(*held) == 0 {
		return nil
	}
	if err := c.Conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	_, err := c.Conn.Write(*held)
	if derr := c.Conn.SetWriteDeadline(time.Time{}); err == nil {
		err = derr
	}
	return err
}

// corkWriter is the ResponseWriter that websocket.Accept hijacks: the connection it
// gets is a corkConn, written through a small buffer (the frame headers; the library
// writes a payload that does not fit straight through), not the 4 KiB one net/http
// gives a hijacked connection, which an idle connection would keep. The 101 that
// accepts the upgrade is held in the corked connection, so that it leaves with the
// connection's first frames (connected) in one system call.
type corkWriter struct {
	http.ResponseWriter
	conn      *corkConn
	switching bool // the 101 is held for the hijacked connection to write
}

// An upgradeNoter is told of a 101 that net/http does not write (the access log).
type upgradeNoter interface{ upgraded() }

func (w *corkWriter) WriteHeader(status int) {
	if status != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(status)
		return
	}
	w.switching = true
	for rw := w.ResponseWriter; rw != nil; {
		if n, ok := rw.(upgradeNoter); ok {
			n.upgraded()
			return
		}
		u, ok := rw.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return
		}
		rw = u.Unwrap()
	}
}

// corkWriteBuffer fits a control frame (at most 125 bytes of payload) and its
// header, so that the library writes one with a single system call.
const corkWriteBuffer = 256

func (w *corkWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	raw, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil {
		raw.Close()
		return nil, nil, err
	}
	w.conn = &corkConn{Conn: raw}
	if w.switching {
		w.conn.cork()
		w.conn.Write([]byte("HTTP/1.1 101 Switching Protocols\r\n"))
		if err := w.ResponseWriter.Header().Write(w.conn); err != nil {
			raw.Close()
			return nil, nil, err
		}
		w.conn.Write([]byte("\r\n"))
	}
	return w.conn, bufio.NewReadWriter(brw.Reader, bufio.NewWriterSize(w.conn, corkWriteBuffer)), nil
}

func (w *corkWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
