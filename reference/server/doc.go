// Package server is the reference server of the agentws protocol (spec/PROTOCOL.md):
// the WebSocket endpoint /ws, GET /ws/health, and the /livez and /readyz probes.
//
// A [Server] keeps sessions in memory. Each connection has a reader that always runs
// (so WebSocket pings and close frames are handled at once) and a writer that drains a
// bounded queue. A query waits for room in that queue, so a client that reads paces
// its stream; a client that takes no frame for the write timeout is a slow consumer,
// dropped with 4002, and its session's frames go to the session's buffer. Each session
// runs its queries one at a time, in arrival order, from a bounded queue; a query keeps
// running through an abrupt drop, and its frames are buffered until the client comes
// back or the session's TTL passes.
//
// Every session-scoped frame carries a per-session seq, and the session keeps its last
// frames, delivered or not, so that a client that reconnects with last_seq gets exactly
// what it missed. Queries carry query ids (a query sent again never runs twice) and can
// be cancelled.
//
// The server claims the capabilities buffering, error_codes, query_id, resume and
// cancel, and fixture when it runs the fixture agent.
package server
