package server

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/agentws/agentws/schemas/msg"
)

// ProtocolVersion is the protocol version the server speaks.
const ProtocolVersion = "1.1"

// A frame is one encoded server message waiting to be written.
type frame struct {
	data    []byte
	session bool // session-scoped: buffered while the session has no connection
	seq     int  // its seq, for a session-scoped frame
	evicted int  // for connected: the evictions it announces (BUF-8)
	answer  bool // queued on a conn as the answer to a client frame
}

func timestamp() string { return time.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// encode encodes a server message. It does not escape <, > and & as encoding/json
// does by default: an escaped string may grow sixfold, and the memory budget assumes
// no string grows more than twofold (Config.Budget).
func encode(v any) frame {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // the generated types always encode
	}
	return frame{data: bytes.TrimSuffix(b.Bytes(), []byte("\n"))}
}

func pongFrame() frame {
	return encode(msg.Pong{Type: msg.PongTypePong, Timestamp: timestamp()})
}

func keepaliveFrame() frame {
	return encode(msg.Keepalive{Type: msg.KeepaliveTypeKeepalive, Timestamp: timestamp()})
}

func disconnectedFrame(sessionID string) frame {
	text := "Session ended"
	return encode(msg.Disconnected{Type: msg.DisconnectedTypeDisconnected, Message: &text, SessionId: sessionID, Timestamp: timestamp()})
}

// errorFrame is a connection-scoped error: the refusal of a client frame, carrying the
// query_id of the query it refuses, if any (QID-1).
func errorFrame(sessionID string, code msg.ErrorCode, queryID, text string) frame {
	return encode(msg.Error{Type: msg.ErrorTypeError, Error: text, Code: code, SessionId: sessionID, QueryId: queryID, Timestamp: timestamp()})
}
