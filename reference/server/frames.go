package server

import (
	"bytes"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

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
	held    *charge
	typ     string   // the message's type, for metrics
	refusal *refusal // for the refusal of a client frame: what the log says of it
}

// stampLayout is how the server writes timestamps: UTC, in milliseconds (ENV-5).
const stampLayout = "2006-01-02T15:04:05.000Z07:00"

// timestamp returns the time now as frames write it. Frames written in the same
// millisecond share its text, formatted once.
func timestamp() string {
	now := time.Now()
	ms := now.UnixMilli()
	if last := lastStamp.Load(); last != nil && last.ms == ms {
		return last.text
	}
	text := now.UTC().Format(stampLayout)
	lastStamp.Store(&stamp{ms: ms, text: text})
	return text
}

type stamp struct {
	ms   int64
	text string
}

var lastStamp atomic.Pointer[stamp]

// encoders holds buffers for encode; one that grew past 64 KiB is not kept.
var encoders = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// encode encodes a server message into a slice of exactly its length, which is what
// the memory budget counts. It does not escape <, > and & as encoding/json does by
// default: an escaped string may grow sixfold, and the memory budget assumes no string
// grows more than twofold (frameBound).
func encode(v any) frame {
	b := encoders.Get().(*bytes.Buffer)
	b.Reset()
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // the generated types always encode
	}
	data := bytes.Clone(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
	if b.Cap() <= 64<<10 {
		encoders.Put(b)
	}
	return frame{data: data, typ: frameType(v)}
}

// frameBound bounds the bytes a frame carrying strings of n bytes in all takes,
// counted as memory charges it: each string escaped at most twofold, the other members
// (ids of at most 128 bytes, timestamps, numbers) within 1 KiB, and frameOverhead.
func frameBound(n int) int { return 2*n + 1<<10 + frameOverhead }

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
	return refusalFrame(msg.Error{Code: code, SessionId: sessionID, QueryId: queryID, Error: text})
}

// refusalFrame encodes e, the refusal of a client frame, with its type and timestamp
// and its text cut short (it may quote what the client sent), noting for the log what
// it says.
func refusalFrame(e msg.Error) frame {
	e.Type, e.Timestamp, e.Error = msg.ErrorTypeError, timestamp(), errorText(e.Error)
	f := encode(e)
	f.refusal = &refusal{code: e.Code, queryID: e.QueryId, text: e.Error}
	return f
}

// clip returns s cut to at most n bytes, at a rune boundary, marked with "…" when cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n - len("…")
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
