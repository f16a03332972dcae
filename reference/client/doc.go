// Package client is the reference Go client of the agentws protocol
// (spec/PROTOCOL.md): it holds one session of an agentws server over a WebSocket
// connection that it reopens after an abrupt drop, and streams the answers of its
// queries.
//
//	c, err := client.Dial(ctx, "ws://localhost:8050/ws", client.Options{SessionID: "s1"})
//	if err != nil { ... }
//	defer c.Close()
//	q := c.Query(ctx, "What is the capital of France?")
//	for chunk, err := range q.Chunks() {
//		if err != nil { ... } // the answer did not arrive whole: see [Error]
//		fmt.Print(chunk)
//	}
//
// It keeps the rules for clients of
// [section 14](../../spec/PROTOCOL.md#14-rules-for-clients-client): it ignores members
// and message types it does not know (CLIENT-1); it uses query_id, seq, code and cancel
// only when the server claims their capability (CLIENT-2), and matches the frames of a
// server that claims none to its queries by their order (STREAM-7); it takes keepalive
// at any time (CLIENT-3); after an abrupt drop it reconnects with the same session_id
// and user_id, with capped exponential backoff and jitter, resuming with last_seq and
// epoch when the server claims resume, and it does not reconnect after close code 4001
// (another connection took the session: code replaced), 4003 (the operator ended the
// session through the admin API: code ended) or a close code that says the server
// would close again (CLIENT-4); it discards the frames it has already received, and
// reports a lost part of an answer as an error with code gap rather than as a short
// answer (CLIENT-5).
//
// A notice, an operator's message to the session broadcast through the server's admin
// API (spec section 12.7), is given to [Options.OnNotice] as a [msg.Notice], once, in
// order; it is part of no query and changes no stream (NOTICE-2), and its seq counts
// for resume like any session-scoped frame's.
//
// A query that ends without a whole answer ends with an [*Error] whose Code is the
// server's error code (table 15.2) or one of the client's own (see the Code
// constants); errors.Is(err, client.ErrGap) tells them apart.
package client
