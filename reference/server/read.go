package server

import (
	"context"
	"errors"
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
// (1001 on shutdown) always goes out first.
func (s *Server) readLoop(c *conn, sess *session) {
	for {
		typ, data, err := c.ws.Read(context.Background())
		if err != nil {
			s.readEnded(c, err)
			return
		}
		if typ == websocket.MessageBinary {
			c.log.Info("binary frame: closing with 1003")
			s.dropped(c, websocket.StatusUnsupportedData, "binary frames are not supported")
			return
		}
		if !utf8.Valid(data) {
			c.log.Info("text frame not UTF-8: closing with 1007")
			s.dropped(c, websocket.StatusInvalidFramePayloadData, "text frame is not valid UTF-8")
			return
		}
		if !s.handle(c, sess, data) {
			return
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

// handle dispatches one text frame; it returns false when the connection ends. It acts
// on the document the validator checked, member names matched exactly
// (schemas.DecodeClient), never on a second decoding of the frame.
func (s *Server) handle(c *conn, sess *session, data []byte) bool {
	m, err := s.validator.DecodeClient(data)
	if err != nil {
		code := msg.ErrorCodeInvalidMessage
		var verr *schemas.ValidationError
		if errors.As(err, &verr) {
			code = msg.ErrorCode(verr.Code())
		}
		c.reply(errorFrame(sess.id, code, "", "Invalid message: "+err.Error()))
		return true
	}
	switch m := m.(type) {
	case *msg.Query:
		if refusal := sess.submit(*m); refusal != nil {
			c.reply(*refusal)
		}
	case *msg.Ping:
		c.reply(pongFrame())
	case *msg.Disconnect:
		c.log.Info("disconnect: ending the session")
		sess.end(errSessionEnded)
		s.release(c)
		c.reply(disconnectedFrame(sess.id))
		c.closeAfter(websocket.StatusNormalClosure, "")
		return false
	case *msg.Cancel:
		if refusal := sess.cancelQuery(m.QueryId); refusal != nil {
			c.reply(*refusal)
		}
	}
	return true
}
