// Command ask asks an agentws server one query and streams the answer to standard
// output as it arrives. It is the reference Go client (reference/client) on the
// command line: after an abrupt drop it reconnects and resumes on its own, and it never
// prints a partial answer as a whole one.
//
// Usage:
//
//	ask [flags] URL QUERY
//
// URL is the server's endpoint, ws://host:port/ws or wss://…, with or without
// session_id and user_id in its query; QUERY is the text to ask. For example, against
// the reference server on its defaults:
//
//	go run ./tools/ask ws://localhost:8050/ws "What is the capital of France?"
//
// Standard output has the answer, chunk by chunk, and a newline at its end when it is
// whole and on a terminal; -json prints instead every frame the server sent, one per
// line (NDJSON), which agentws-validate reads:
//
//	ask -json ws://localhost:8050/ws hello | agentws-validate -direction server -
//
// Standard error says why the query ended when it did not end whole, the server's
// notices (an operator's messages, "ask: notice (warning): Maintenance in 5 minutes"),
// and, with -v, each connection and reconnection.
//
// Flags:
//
//	-session ID       the session (default: session_id of the URL, or a new random one)
//	-user ID          the user_id parameter
//	-token T          a bearer token (default $AGENTWS_TOKEN)
//	-query-id ID      the query's query_id (default: one of the client's)
//	-system-prompt S  the query's system_prompt
//	-timeout D        give up after D, with exit status 3 (default 0: no bound)
//	-max-attempts N   reconnections in a row before giving up (default $AGENTWS_MAX_ATTEMPTS, or 10)
//	-cancel-after N   cancel the query after its N-th chunk (default $AGENTWS_CANCEL_AFTER, or never)
//	-json             print every received frame as NDJSON instead of the answer
//	-v                log connections and reconnections to standard error
//
// An interrupt (Ctrl-C) cancels the query: with a server that claims cancel, ask sends
// cancel and exits with status 5; a second one exits at once.
//
// Exit status:
//
//	0  the whole answer arrived
//	1  the server ended the query with an error (its code is printed)
//	2  usage, or the first connection failed (refused, unreachable)
//	3  the answer is incomplete or was lost (a gap, a drop without resume, -timeout,
//	   reconnections exhausted, the session ended)
//	4  another connection took the session over (close 4001), or the operator ended
//	   the session through the admin API (close 4003): retrying would not help
//	5  the query was cancelled
//
// These are the statuses of the client adapter contract of the conformance harness
// (conformance/README.md): ask is the Go client's adapter.
package main
