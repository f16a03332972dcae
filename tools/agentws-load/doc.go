// Command agentws-load is a load generator for any server of the agentws protocol
// (spec/PROTOCOL.md), as h2load is for HTTP/2 and wrk2 for HTTP: it opens many
// connections, sends queries on them, checks every stream that comes back, and reports
// latency percentiles, throughput, errors and, for a server on the same machine, its
// CPU time and memory.
//
// Usage:
//
//	agentws-load [-url URL] [-c N] [-q N | -duration D] [-rate R] [-ramp D] [-idle] [-echo] [-query-size N] [-pid P] [-json] [flags]
//
// Against the reference server, whose per-address bounds a load from one machine would
// hit (5 queries a second, 128 connections: spec table 15.4), lift them first:
//
//	go run ./reference/cmd/agentws-server -query-rate 0 -max-conns-per-ip 0 &
//	go run ./tools/agentws-load -c 50 -q 200 -pid $!
//	go run ./tools/agentws-load -c 50 -rate 2000 -duration 10s -pid $!
//	go run ./tools/agentws-load -idle -c 1000 -duration 10s -pid $!
//
// and for the baseline, a bare WebSocket echo server (tools/agentws-echo):
//
//	go run ./tools/agentws-echo &
//	go run ./tools/agentws-load -echo -c 50 -q 2000 -pid $!
//
// # Modes
//
// Closed loop (the default): each of the -c connections sends -q queries one after
// another, each as soon as the previous one completed, or sends for -duration.
//
// Open loop (-rate R): the connections send R queries a second in all, each
// connection R/C a second, at intended times fixed in advance and staggered across
// the connections. A query due while its connection still waits for the previous
// answer is sent as soon as that answer ends, and its latencies count from its
// intended time, not from when it was sent: a server that stalls is charged for every
// query it delayed, which a closed loop hides (coordinated omission, as wrk2 avoids it).
// "late_sends" counts those sends; the "send lag" latency is how late each send was
// beyond what its busy connection explains, the client's own lag.
//
// Ramp (-ramp D): the connections are opened evenly over D instead of all at once; in
// open loop each connection's schedule starts when it is connected.
//
// Idle (-idle): the connections are opened, held for -duration (default 10s) after the
// last is connected, sending nothing, and then disconnected. It reports the connect
// latency and, with -pid, the server's RSS per held connection: its RSS with every
// connection held less its RSS before the first dial, divided by the connections
// opened, and the server's CPU time per connection opened: its CPU time from the
// first dial until every connection is open, divided by the connections opened. With
// -echo the connections are held against an echo server: nothing is expected of them,
// and they are closed (1000) at the end.
//
// Echo (-echo): each "query" is a text frame of -query-size bytes, and is answered
// when the same frame comes back; nothing of the protocol is sent or expected (no
// connected, no disconnect). It measures an echo server such as agentws-echo with the
// same client, so that the server CPU a frame of an agentws server and of a bare
// WebSocket server compare in the same units. -url defaults to agentws-echo's,
// ws://localhost:8060/ws. It combines with -rate, and with -idle (see Idle).
//
// Every connection has its own session, session_id PREFIX-i (-session-prefix, default
// load-RUN with RUN unique to the run), and sends {"type":"query","query":…,
// "query_id":"qK"} for its K-th query; the query is "load I.K " filled with letters to
// -query-size characters. After its queries it sends disconnect and waits for
// disconnected and the close 1000, so that the server holds no session of the run.
//
// # Checks and errors
//
// Every frame received is validated against the spec's schemas, server direction
// (ENV-1, ENV-2; -validate=false skips it, to spare the client's CPU), and every
// stream is checked: connected first, for the connection's session (CONN-1, CONN-3);
// query_start with the query's text, then chunks numbered 1..N without gap or repeat,
// then complete with total_chunks N and full_response the chunks joined (STREAM-1 to
// STREAM-5); the query_id sent on every frame of the stream when the server claims
// query_id (QID-1); and with -fixture (the default) the answer "Echo: " + query, the
// fixture agent's (FIX-1). keepalive, notice and pong frames may come anywhere. A check
// that fails is counted by its name (invalid_frame, connected, order, query_start,
// chunk_number, query_id, complete, content, echo) with its first example.
//
// Errors are counted by kind and detail: dial (the HTTP status and code of a refused
// handshake, "connection refused", "too many open files"), close (the server closed
// the connection, with its close code), error_frame (a query ended with an error
// frame, by its code: rate_limited, busy, query_failed…), timeout (no frame, handshake
// or write within -timeout: what was awaited), read and write. A connection that
// failed sends no more queries. A stalled server is reported as a timeout, never a
// hang: the run ends after its -q queries, or after -duration and the ramp, plus the
// timeout.
//
// # Resources
//
// With -pid P, the server's CPU time (user + system, /proc/P/stat) and RSS (VmRSS,
// /proc/P/status) are read before and after the run, and the RSS every
// -sample-interval for its peak. The report gives the server's CPU in total, in cores
// (CPU time over wall time), per query sent, per frame received and per connection
// opened, and its RSS before, after and at the peak.
//
// The client's own CPU time is reported too. When it reaches -cpu-share (0.8) of the
// client's GOMAXPROCS cores, or, in open loop, when sends on free connections fall
// behind schedule by more than -max-lag at p99, the report warns that the client, not
// the server, is the bottleneck (client_cpu, schedule_lag; "bottleneck": true in
// JSON). With -pid it also warns when client and server together use -cpu-share of
// the machine's cores (machine_cpu): on one machine they compete.
//
// At start the client raises its open-file limit (RLIMIT_NOFILE) to the hard limit,
// and warns (nofile) when that still cannot hold -c connections.
//
// # Output
//
// The text report gives the run, the latency percentiles (count, mean, p50, p90, p99,
// p99.9, max) of each measure, the resources, the failed checks and errors, the
// warnings, and PASS or FAIL. The latencies are recorded in HDR histograms (1 µs to 1
// hour, 3 significant digits):
//
//	connect      dial to connected (to the upgrade, with -echo)
//	first chunk  the query's send (open loop: its intended send) to its first chunk
//	chunk gap    between two chunks of a stream
//	query        the query's send (open loop: intended send) to its complete; the
//	             round trip with -echo
//	send lag     open loop: how late a send on a free connection was
//
// -json writes one JSON document instead, with stable field names: durations in
// microseconds (latency_us.query.p99, elapsed_us; fields ending in _us), sizes in bytes
// (_bytes), rates a second; errors and check_failures as lists of kind, detail, count
// and example; server (with -pid), client and warnings; passed and status.
//
// Flags:
//
//	-url URL              the server's WebSocket URL; session_id is set on it (default
//	                      ws://localhost:8050/ws; with -echo ws://localhost:8060/ws)
//	-token T              a bearer token sent with every handshake (default $AGENTWS_TOKEN)
//	-c N                  connections (default 10)
//	-q N                  queries each connection sends, frames with -echo (default 100)
//	-duration D           send for D instead of -q; with -idle, the hold (default 10s)
//	-rate R               open loop: R queries a second in all (default 0: closed loop)
//	-ramp D               open the connections evenly over D (default 0: all at once)
//	-idle                 hold the connections open, send nothing
//	-echo                 send frames to an echo server and wait for each to come back
//	-query-size N         characters of each query, bytes of each echo frame (default 64)
//	-fixture              check the answers are the fixture agent's (default true)
//	-validate             validate every frame against the schemas (default true)
//	-pid P                the server's process id, on this machine, for its CPU and RSS
//	-json                 write one JSON document
//	-timeout D            the longest wait for a frame, a handshake or a write (default 10s)
//	-max-errors N         errors tolerated before exit status 1 (default 0)
//	-max-frame-bytes N    the largest frame read (default 16 MiB)
//	-max-lag D            open loop: the send lag (p99) that makes the client the
//	                      bottleneck (default 10ms)
//	-cpu-share F          the share of its cores that makes the client the bottleneck
//	                      (default 0.8)
//	-sample-interval D    with -pid: how often the server's RSS is sampled (default 100ms)
//	-session-prefix P     session ids are P-0, P-1, … (default load-RUN)
//
// -q and -duration exclude each other; -idle takes neither -q nor -rate, and combines
// with -echo.
//
// Exit status:
//
//	0  every check passed, and at most -max-errors errors occurred
//	1  a stream check failed, or more than -max-errors errors occurred
//	2  usage: a bad flag (the message names it), or the schemas failed to load
//
// An interrupt (Ctrl-C) ends the run early: the connections disconnect and the report
// covers what ran; a second one exits at once.
package main
