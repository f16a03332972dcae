// Package spec embeds the normative documents of the agentws protocol and parses the
// rule catalogue of PROTOCOL.md.
//
// PROTOCOL.md is the normative text; every requirement in it is a rule with a stable id
// (such as STREAM-3), an RFC 2119 level and, for the 1.1 extensions, the capability that
// makes it binding. The conformance harness maps each of its cases to these ids.
// asyncapi.yaml describes the WebSocket channel (AsyncAPI 3.0) and openapi.yaml the
// HTTP endpoints (OpenAPI 3.0, generated from openapi.src.yaml by tools/specgen).
package spec
