// Package conformance checks a server of the agentws protocol, rule by rule, against
// spec/PROTOCOL.md, by replaying txtar transcripts (testdata/*.txtar) over real
// connections.
//
// Each transcript is a testscript whose commands speak the protocol (open, send, expect,
// stream, drop, closed, http, ...; see README.md). Its header names the rules it
// checks, their level and the capabilities it needs. Whatever a transcript says, every
// frame the server sends is validated against its JSON Schema and every stream against
// the stream rules, and a violation names its rule.
//
// [Run] runs the catalogue against a server given by URL and returns a [Report]: per
// case and per rule, pass, fail (a MUST rule broken), warn (a SHOULD rule broken) or
// skip (a capability the server does not claim, or a setting not given), with the
// failure, its wire log and durations. The report is written as JSON, JUnit XML and
// Markdown. `go test ./conformance` is the usual front end; see README.md.
//
// The package never imports the reference server: only its test file does, as the
// default target.
package conformance
