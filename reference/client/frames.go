package client

import (
	"encoding/json"
	"regexp"
)

// queryFrame is the query message (spec section 5.1).
type queryFrame struct {
	Type           string `json:"type"`
	Query          string `json:"query"`
	QueryID        string `json:"query_id,omitempty"`
	SystemPrompt   string `json:"system_prompt,omitempty"`
	IncludeContext *bool  `json:"include_context,omitempty"`
}

// serverFrame holds the members of every server message (spec section 5.2) the client
// uses; the others are ignored (CLIENT-1). A member of the wrong JSON type makes the
// whole frame unreadable, and so ignored.
type serverFrame struct {
	Type         string   `json:"type"`
	Capabilities []string `json:"capabilities"`
	Epoch        *string  `json:"epoch"`
	Resumed      *bool    `json:"resumed"`
	Missed       *int64   `json:"missed"`
	Message      string   `json:"message"`

	QueryID      string  `json:"query_id"`
	Query        string  `json:"query"`
	Seq          *int64  `json:"seq"`
	Content      string  `json:"content"`
	ChunkNumber  *int    `json:"chunk_number"`
	FullResponse *string `json:"full_response"`
	TotalChunks  *int    `json:"total_chunks"`
	Replayed     bool    `json:"replayed"`
	Error        string  `json:"error"`
	Code         string  `json:"code"`
	RetryAfterMs float64 `json:"retry_after_ms"`
}

func parseFrame(raw []byte) (serverFrame, bool) {
	var f serverFrame
	if err := json.Unmarshal(raw, &f); err != nil || f.Type == "" {
		return f, false
	}
	return f, true
}

// idSyntax is the syntax of session_id, user_id and query_id (spec section 2).
var idSyntax = regexp.MustCompile(`^[A-Za-z0-9._:~-]{1,128}$`)

// sessionScoped are the error codes of table 15.2 whose error ends an accepted query
// (a session-scoped frame); the others refuse a client frame. The client uses them to
// match an error to a query only with error_codes and without query_id.
var sessionScoped = map[string]bool{"query_failed": true, "cancelled": true, "unavailable": true, "internal": true}

// The capabilities of spec section 12.1 the client uses.
const (
	capBuffering  = "buffering"
	capQueryID    = "query_id"
	capErrorCodes = "error_codes"
	capResume     = "resume"
	capCancel     = "cancel"
)
