package client

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/coder/websocket"
)

// The client's own outcome codes. The server's codes (spec table 15.2) pass through
// as they are; a server without error_codes gives CodeError.
const (
	CodeReplaced     = "replaced"      // closed with 4001: another connection has the session; not reconnecting
	CodeEnded        = "ended"         // closed with 4003: the operator ended the session (admin API); not reconnecting
	CodeGap          = "gap"           // frames of a started query were lost: its answer may be incomplete
	CodeNoResume     = "no_resume"     // dropped with a query in flight, and the server does not claim resume
	CodeRefused      = "refused"       // the first connection failed, or a reconnection was refused with 4xx
	CodeUnreachable  = "unreachable"   // gave up reconnecting after Options.MaxAttempts
	CodeClosed       = "closed"        // the client was closed by its owner
	CodeSessionEnded = "session_ended" // disconnected arrived, or Disconnect was called
	CodeCancelled    = "cancelled"     // the caller cancelled the query; also the server's code
	CodeUnsupported  = "unsupported"   // cancel of a server that does not claim it; also the server's code
	CodeError        = "error"         // an error frame without code (a server without error_codes)

	// Close codes after which reconnecting would get the same close (spec table 15.1).
	CodeProtocolError   = "protocol_error"   // 1002
	CodeUnsupportedData = "unsupported_data" // 1003
	CodeInvalidPayload  = "invalid_payload"  // 1007
	CodePolicyViolation = "policy_violation" // 1008
	CodeMessageTooBig   = "message_too_big"  // 1009, or a frame over Options.ReadLimit

	// CodeInvalidField is the server's code for a field outside its syntax; the client
	// uses it for a query it refuses to send (a query_id outside the id syntax).
	CodeInvalidField = "invalid_field"
)

// Sentinels, one per client code, for errors.Is.
var (
	ErrReplaced     = &Error{Code: CodeReplaced}
	ErrEnded        = &Error{Code: CodeEnded}
	ErrGap          = &Error{Code: CodeGap}
	ErrNoResume     = &Error{Code: CodeNoResume}
	ErrRefused      = &Error{Code: CodeRefused}
	ErrUnreachable  = &Error{Code: CodeUnreachable}
	ErrClosed       = &Error{Code: CodeClosed}
	ErrSessionEnded = &Error{Code: CodeSessionEnded}
	ErrCancelled    = &Error{Code: CodeCancelled}
	ErrUnsupported  = &Error{Code: CodeUnsupported}
)

// closeReplaced is the close of a connection whose session another one took (TAKE-1).
const closeReplaced websocket.StatusCode = 4001

// closeEnded is the close of a connection whose session the operator ended through
// the admin API (ADMIN-4).
const closeEnded websocket.StatusCode = 4003

// closeCodes are the close codes of spec table 15.1 after which the client stops
// instead of reconnecting, with the code its queries end with.
var closeCodes = map[websocket.StatusCode]string{
	closeReplaced:                           CodeReplaced,
	closeEnded:                              CodeEnded,
	websocket.StatusProtocolError:           CodeProtocolError,
	websocket.StatusUnsupportedData:         CodeUnsupportedData,
	websocket.StatusInvalidFramePayloadData: CodeInvalidPayload,
	websocket.StatusPolicyViolation:         CodePolicyViolation,
	websocket.StatusMessageTooBig:           CodeMessageTooBig,
}

// An Error says why a query, or the client, ended without a whole answer.
type Error struct {
	Code       string          // the server's error code, or one of the Code constants
	Message    string          // what happened, for people
	Frame      json.RawMessage // the server's error frame, when there is one
	RetryAfter time.Duration   // the server's retry_after_ms (rate_limited)
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "agentws: " + e.Code
	}
	return fmt.Sprintf("agentws: %s: %s", e.Code, e.Message)
}

// Is reports whether target is an *Error with the same code: errors.Is(err, ErrGap).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

func newError(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}
