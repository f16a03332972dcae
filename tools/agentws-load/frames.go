package main

import (
	"fmt"

	"github.com/agentws/agentws/schemas"
)

// A frame is what the load generator reads of a server message: the members of every
// type it acts on (spec section 5.2), bound with the validator's exact member names.
type frame struct {
	Type         string   `json:"type"`
	SessionID    string   `json:"session_id"`
	QueryID      string   `json:"query_id"`
	Query        string   `json:"query"`
	Content      string   `json:"content"`
	ChunkNumber  int64    `json:"chunk_number"`
	FullResponse string   `json:"full_response"`
	TotalChunks  int64    `json:"total_chunks"`
	Error        string   `json:"error"`
	Code         string   `json:"code"`
	Capabilities []string `json:"capabilities"`
}

// The types of server message the load generator acts on.
const (
	typeConnected    = "connected"
	typeQueryStart   = "query_start"
	typeChunk        = "chunk"
	typeComplete     = "complete"
	typeError        = "error"
	typeDisconnected = "disconnected"
	typeKeepalive    = "keepalive"
	typeNotice       = "notice"
	typePong         = "pong"
)

// parseFrame decodes data and, when validate is set, validates it as a server message
// (ENV-2). An invalid frame is an error that says where the problem is.
func parseFrame(v *schemas.Validator, data []byte) (*frame, error) {
	doc, err := schemas.Decode(data)
	if err != nil {
		return nil, err
	}
	if v != nil {
		if err := v.ValidateMessageValue(schemas.Server, doc); err != nil {
			return nil, err
		}
	}
	f := &frame{}
	if err := schemas.Bind(doc, f); err != nil {
		return nil, err
	}
	return f, nil
}

// ignorable reports whether a frame of type t belongs to no query and may come between
// any two frames of a stream: a keepalive (KA-1), a notice (NOTICE-2), a pong.
func ignorable(t string) bool {
	return t == typeKeepalive || t == typeNotice || t == typePong
}

// quote shortens s for an example in the report.
func quote(s string) string {
	const max = 80
	if len(s) > max {
		return fmt.Sprintf("%q… (%d bytes)", s[:max], len(s))
	}
	return fmt.Sprintf("%q", s)
}
