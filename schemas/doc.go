// Package schemas holds the JSON Schemas (draft 2020-12) of the agentws protocol and
// validates messages against them.
//
// The schema files in this directory are the single source of truth for every message
// of the protocol described in spec/PROTOCOL.md: one schema per message type, a union per
// direction discriminated by "type" (client-message.json, server-message.json), the
// body of GET /ws/health (health.json) and the JSON body of HTTP errors
// (http-error.json). They are embedded in the package, so a [Validator] needs no files
// at run time.
//
// A Validator compiles the schemas once and is safe for concurrent use:
//
//	v, err := schemas.NewValidator(schemas.Options{Strict: true})
//	...
//	if err := v.ValidateMessage(schemas.Client, frame); err != nil {
//		var verr *schemas.ValidationError
//		errors.As(err, &verr) // verr.Problems name the JSON pointer and the reason
//	}
//
// A server acts on the document it validated: [Validator.DecodeClient] returns it as the
// generated Go type of its message (package msg), member names matched exactly, as the
// validator matches them; encoding/json would also take "QUERY" for "query". [Decode]
// refuses an object with two members of the same name (rule ENV-1).
package schemas
