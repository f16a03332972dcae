// Package msg holds the Go types of every message of the agentws protocol, generated
// by oapi-codegen from the JSON Schemas in schemas/ (through the OpenAPI 3.0 form that
// tools/specgen derives from them, messages.gen.yaml).
//
// ClientMessage and ServerMessage are the unions of each direction, discriminated by
// "type". Do not edit the generated files; edit the JSON Schemas and run
// `make generate`.
package msg
