// Command agentws-echo is a bare WebSocket echo server: it accepts connections at /ws,
// reads each message and writes it back, and does nothing else. It is the baseline for
// measuring an agentws server with agentws-load: the same client, the same frames, and
// only the WebSocket library (github.com/coder/websocket) and the network between
// them, so that the server's cost per frame can be compared with the floor.
//
// Usage:
//
//	agentws-echo [-addr ADDRESS] [-max-message-bytes N] [-delay D]
//
// For example, beside the reference server on its defaults:
//
//	go run ./tools/agentws-echo &
//	go run ./tools/agentws-load -echo -pid $! -c 50 -q 2000
//
// It prints the URL it serves, "agentws-echo: serving ws://localhost:8060/ws", on
// standard output, and runs until interrupted (SIGINT or SIGTERM).
//
// Flags:
//
//	-addr ADDRESS          the listen address (default localhost:8060; :0 picks a free port)
//	-max-message-bytes N   the largest message read; a larger one closes the
//	                       connection with 1009 (default 1 MiB, the reference server's)
//	-delay D               wait D before echoing each message, as the reference's fixture
//	                       agent waits before a chunk (-fixture-delay): the floor of the
//	                       latency a server whose answers take D can reach on a machine
//	                       (default 0)
//
// Exit status: 0 after an interrupt, 1 when it cannot listen or serve, 2 on a usage
// error.
package main
