package schemas

import (
	"fmt"
	"strings"
)

// Code classifies a [Problem] with the error codes of the protocol (the error code table
// of spec/PROTOCOL.md), so that a server can put it in the "code" of its error frame.
type Code string

// The codes a validation problem can have.
const (
	CodeInvalidJSON    Code = "invalid_json"    // not JSON, or not UTF-8
	CodeInvalidMessage Code = "invalid_message" // JSON, but not an object
	CodeUnknownType    Code = "unknown_type"    // "type" is not a message type of the direction
	CodeMissingField   Code = "missing_field"   // a required field is absent
	CodeInvalidField   Code = "invalid_field"   // a field has a wrong type or value, or is unknown in strict mode
)

// A Problem is one reason why a message is invalid.
type Problem struct {
	// Pointer is the RFC 6901 JSON pointer of the offending value ("" for the whole
	// message). For a missing field it is where the field should be.
	Pointer string `json:"pointer"`
	// Message says what is wrong, for example "got number, want string".
	Message string `json:"message"`
	// Code classifies the problem.
	Code Code `json:"code"`
}

// String formats the problem as "POINTER: MESSAGE", with "(root)" for the empty pointer.
func (p Problem) String() string {
	ptr := p.Pointer
	if ptr == "" {
		ptr = "(root)"
	}
	return ptr + ": " + p.Message
}

// ValidationError reports why a message does not match its schema.
type ValidationError struct {
	// Schema is the schema the message was checked against, "" when the message could
	// not be parsed or its type selects no schema.
	Schema Schema
	// Problems lists every problem found, sorted by pointer; it is never empty.
	Problems []Problem
}

// Error joins the problems with "; ".
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return strings.Join(parts, "; ")
}

// Code returns the code of the first problem, the most telling one: a message with an
// unknown type reports unknown_type rather than a list of missing fields.
func (e *ValidationError) Code() Code { return e.Problems[0].Code }

func single(s Schema, ptr string, code Code, format string, args ...any) *ValidationError {
	return &ValidationError{Schema: s, Problems: []Problem{{Pointer: ptr, Message: fmt.Sprintf(format, args...), Code: code}}}
}
