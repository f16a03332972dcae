// Command agentws-validate checks messages of the agentws protocol against its JSON
// Schemas, for the CI of projects that implement a client or a server.
//
// Usage:
//
//	agentws-validate [flags] FILE... | -
//
// Each FILE holds one JSON message (a .json file), or one message per line (NDJSON: a
// .ndjson or .jsonl file); "-" reads standard input. Other names, and standard input,
// are NDJSON when their first non-empty line is a whole JSON value and more lines
// follow, and one message otherwise; -format overrides the guess. Blank lines in NDJSON
// are skipped.
//
// Every problem is printed on standard output as
//
//	FILE[:LINE]: POINTER: REASON
//
// for example "session.ndjson:12: /query: got number, want string", and a summary on
// standard error. -json prints one JSON report on standard output instead.
//
// Member names are matched exactly, as the protocol compares them (rule ENV-3: "QUERY"
// is not "query"), and an object with two members of the same name is invalid (ENV-1).
//
// Flags:
//
//	-direction client|server|any   who sends the messages (default any: by their type)
//	-schema NAME                   validate against one schema instead, such as health
//	-strict                        also report members the schema does not define
//	-json                          print a JSON report
//	-format auto|json|ndjson       how to read the files (default auto)
//	-max-bytes N                   the largest message accepted (default 16 MiB)
//	-j N                           validate on N goroutines (default: the CPUs)
//
// Exit status: 0 when every message is valid, 1 when any is invalid, 2 on a usage or
// I/O error.
//
// In another project's CI:
//
//	go run github.com/agentws/agentws/tools/agentws-validate@latest -direction client -strict testdata/messages.ndjson
package main
