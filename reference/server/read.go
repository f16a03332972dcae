package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/agentws/agentws/schemas"
	"github.com/agentws/agentws/schemas/msg"
)

// readLoop reads c's frames until it ends: a binary frame closes it with 1003 (ENV-6),
// a text frame that is not UTF-8 with 1007 (ENV-8, RFC 6455 section 8.1). It always runs, so that WebSocket pings and
// close frames are answered at once, whatever the session is doing (KA-2). It is not
// cancelled: it ends when the writer closes the connection, so that a close frame
// (1001 on shutdown) always goes out first. It reads the next frame once one more
// answer to it may be queued: while the writer is behind on the answers, the client's
// frames wait in the network (awaitAnswerRoom).
//
// The loop itself is small: it waits for the next frame in a shallow stack (a
// goroutine of its own, serveConn), and each message is handled in a frame of its own
// (readFrame), so that an idle connection's goroutine, whose stack grew handling a
// message, shrinks back at the next GC.
func (s *Server) readLoop(c *conn, sess liveSession) {
	for c.awaitAnswerRoom() {
		typ, r, err := c.ws.Reader(context.Background())
		if !s.readFrame(c, sess, typ, r, err) {
			return
		}
	}
}

// readFrame handles the frame Reader gave, and reports whether the connection reads
// on.
//
//go:noinline
func (s *Server) readFrame(c *conn, sess liveSession, typ websocket.MessageType, r io.Reader, err error) bool {
	if err != nil {
		s.readEnded(c, err)
		return false
	}
	if typ == websocket.MessageBinary {
		c.log.Info("binary frame: closing with 1003")
		s.dropped(c, websocket.StatusUnsupportedData, "binary frames are not supported")
		return false
	}
	data, charged, err := s.readMessage(r)
	if errors.Is(err, errNoRoom) {
		c.log.Warn("message not read: no room in the memory budget", "err", err, "max_memory_bytes", s.cfg.MaxMemoryBytes)
		s.metrics.refused.WithLabelValues(string(msg.ErrorCodeBusy)).Inc()
		c.reply(errorFrame(sess.sessionID(), msg.ErrorCodeBusy, "", fmt.Sprintf("Message not read: the server's memory budget (-max-memory-bytes) has no room now to read %v; try again later", err)))
		return true
	}
	if err != nil {
		s.readEnded(c, err)
		return false
	}
	if st := c.stats.Load(); st != nil {
		st.touch()
	}
	if !utf8.Valid(data) {
		s.mem.add(-charged)
		c.log.Info("text frame not UTF-8: closing with 1007")
		s.dropped(c, websocket.StatusInvalidFramePayloadData, "text frame is not valid UTF-8")
		return false
	}
	return s.handle(c, sess, data, charged)
}

// The bytes of a message read without a reservation, and how many bytes of the
// memory budget a byte read beyond them reserves: the read buffer and what decoding
// allocates (schemas.Validator.DecodeClient, measured at under 6 bytes a byte).
const (
	readFree     = 4 << 10
	decodeFactor = 6
)

// reserveNow is tryReserve, with a pass of the reclaimer when there is no room at
// first. The caller holds no session's mu.
func (s *Server) reserveNow(n int) bool {
	if s.mem.tryReserve(n) {
		return true
	}
	s.relieve(n)
	return s.mem.tryReserve(n)
}

// readMessage reads the message r gives. Past readFree bytes, each growth of its buffer
// first reserves decodeFactor bytes a byte of the memory budget, with a pass of the
// reclaimer when there is no room, but never waiting: the reader must go on answering
// pings. With no room, it reads the rest of the message
// into nothing and returns what it read with errNoRoom. It returns the bytes it
// reserved, for the caller to release once it has handled the message.
func (s *Server) readMessage(r io.Reader) (data []byte, charged int, err error) {
	data = make([]byte, 0, 512)
	for {
		if len(data) == cap(data) {
			grown := min(2*cap(data), int(s.cfg.MaxMessageBytes)+1)
			need := decodeFactor * (max(grown-readFree, 0) - max(cap(data)-readFree, 0))
			if need > 0 && !s.reserveNow(need) {
				s.mem.add(-charged)
				n, err := io.Copy(io.Discard, r)
				if err != nil {
					return nil, 0, err
				}
				return nil, 0, fmt.Errorf("a message of %d bytes: %w", int64(len(data))+n, errNoRoom)
			}
			charged += need
			data = append(make([]byte, 0, grown), data...)
		}
		n, err := r.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err == io.EOF {
			return data, charged, nil
		}
		if err != nil {
			s.mem.add(-charged)
			return nil, 0, err
		}
	}
}

// readEnded handles a read error: the client went away, closed, sent too much, or
// broke the framing of RFC 6455. The library answers most framing faults with 1002
// itself, but not all (an unmasked frame, section 5.1; a negative length): any error
// that is not the transport failing is such a fault, closed with 1002 (table 15.1).
func (s *Server) readEnded(c *conn, err error) {
	code := websocket.StatusGoingAway
	switch {
	case errors.Is(err, websocket.ErrMessageTooBig):
		c.log.Info("message over the size limit: closed with 1009", "limit", s.cfg.MaxMessageBytes)
	case websocket.CloseStatus(err) != -1:
		c.log.Info("client closed the connection", "code", websocket.CloseStatus(err))
	case errors.Is(err, context.Canceled):
	case transportFailed(err):
		c.log.Info("connection lost", "err", err)
	default:
		c.log.Info("the client broke the WebSocket framing: closing with 1002", "err", err)
		code = websocket.StatusProtocolError
	}
	s.dropped(c, code, "")
}

// transportFailed reports whether a read error is the connection failing (closed,
// reset, timed out, cut short) rather than the client sending something wrong.
func transportFailed(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne)
}

// handle dispatches one text frame, for which charged bytes of the memory budget were
// reserved; it returns false when the connection ends. It acts
// on the document the validator checked, member names matched exactly
// (schemas.DecodeClient), never on a second decoding of the frame.
func (s *Server) handle(c *conn, sess liveSession, data []byte, charged int) bool {
	m, err := s.validator.DecodeClient(data)
	// Once decoded, the message's bytes and the decoder's are garbage: what lives on
	// is the decoded message, whose query text an accepted query reserves anew.
	s.mem.add(-charged)
	if err != nil {
		code := msg.ErrorCodeInvalidMessage
		var verr *schemas.ValidationError
		if errors.As(err, &verr) {
			code = msg.ErrorCode(verr.Code())
		}
		s.metrics.refused.WithLabelValues(string(code)).Inc()
		c.reply(errorFrame(sess.sessionID(), code, "", "Invalid message: "+err.Error()))
		return true
	}
	switch m := m.(type) {
	case *msg.Query:
		if refusal := sess.submit(*m, c.rate); refusal != nil {
			c.reply(*refusal)
		}
	case *msg.Ping:
		c.reply(pongFrame())
	case *msg.Disconnect:
		c.log.Info("disconnect: ending the session")
		sess.end(errSessionEnded)
		s.release(c)
		c.reply(disconnectedFrame(sess.sessionID()))
		c.closeAfter(websocket.StatusNormalClosure, "")
		return false
	case *msg.Cancel:
		if refusal := sess.cancelQuery(m.QueryId); refusal != nil {
			c.reply(*refusal)
		}
	}
	return true
}
