#!/usr/bin/env bash
# Measures the reference server against a bare coder/websocket echo server on this
# machine, in one run, with one load client (tools/agentws-load): the figures of the
# README's performance table. Both servers run on loopback, built with the same Go.
# With two cores or more, the server runs on the first (taskset, GOMAXPROCS=1) and the
# load client on the second, so that neither waits for the other's time slice: on a
# shared core the scheduler's slices, not the server, make the latency tails.
#
#   tools/perf.sh            all of it (about two minutes)
#   tools/perf.sh stream     one part: stream, idle, open, delay, held
#
# Each part prints agentws-load's report; its exit status fails the script when a
# stream check breaks.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$bin"
}
trap cleanup EXIT
go build -o "$bin/" ./reference/cmd/agentws-server ./tools/agentws-echo ./tools/agentws-load
server_cpu=() client_cpu=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  server_cpu=(env GOMAXPROCS=1 taskset -c 0) client_cpu=(env GOMAXPROCS=1 taskset -c 1)
fi
load() { "${client_cpu[@]}" "$bin/agentws-load" "$@"; }

# start NAME ARGS...: starts a server, waits until it listens, and sets pid.
start() {
  local name=$1 addr=$2
  shift 2
  "${server_cpu[@]}" "$bin/$name" "$@" >"$bin/$name.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/${addr%:*}/${addr#*:}") 2>/dev/null; then return; fi
    sleep 0.05 # polling the port: the server prints nothing when it listens
  done
  echo "perf: $name did not listen on $addr" >&2
  cat "$bin/$name.log" >&2
  exit 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; }

# The reference on loopback, without the per-address bounds one load client would hit,
# with the fixture agent's chunks of 8 characters (what the original streamed).
reference() {
  start agentws-server localhost:8050 -query-rate 0 -max-conns-per-ip 0 -max-sessions 20000 \
    -fixture-chunk-size 8 -console=false -log-level error "$@"
}
echo_server() { start agentws-echo localhost:8060; }

part=${1:-all}
want() { [ "$part" = all ] || [ "$part" = "$1" ]; }

if want stream; then
  echo "== stream: server CPU per frame, 50 clients, 64-character queries, no delay"
  reference
  load -c 50 -q 400 -validate=false -pid "$pid"
  stop
  echo "== stream: the bare echo server, 50 clients, 64-byte frames"
  echo_server
  load -echo -c 50 -q 4000 -pid "$pid"
  stop
fi

if want idle; then
  echo "== idle: 3,000 connections held, and what opening them cost"
  reference
  load -idle -c 3000 -ramp 3s -duration 5s -pid "$pid"
  stop
  echo "== idle: the bare echo server"
  echo_server
  load -idle -echo -c 3000 -ramp 3s -duration 5s -pid "$pid"
  stop
fi

if want open; then
  echo "== open: capacity (closed loop, 50 clients), then an open loop at half of it"
  reference
  capacity=$(load -c 50 -duration 5s -validate=false -json | sed -n 's/.*"queries_per_second": *\([0-9.]*\).*/\1/p' | head -1)
  half=$(awk -v c="$capacity" 'BEGIN { printf "%d", c / 2 }')
  echo "capacity $capacity queries a second (closed loop, 50 clients); open loop at $half, then at 2,000"
  load -c 50 -rate "$half" -duration 10s -validate=false -pid "$pid" || true
  load -c 50 -rate 2000 -duration 10s -validate=false -pid "$pid"
  stop
  echo "== open: the bare echo server at the same rates, one frame each way (the machine's floor)"
  echo_server
  load -echo -c 50 -rate "$half" -duration 10s -pid "$pid" || true
  load -echo -c 50 -rate 2000 -duration 10s -pid "$pid"
  stop
fi

if want delay; then
  echo "== delay: 5 ms before each chunk, 50 clients (ideal: 50 / time per answer)"
  reference -fixture-delay 5ms
  load -c 50 -duration 10s -pid "$pid"
  stop
  echo "== delay: the bare echo server waiting 5 ms before each echo, 50 clients (the machine's floor)"
  start agentws-echo localhost:8060 -delay 5ms
  load -echo -c 50 -duration 10s -pid "$pid"
  stop
fi

if want held; then
  echo "== held: 10,000 connections"
  reference
  load -idle -c 10000 -ramp 5s -duration 5s -pid "$pid"
  stop
  echo "== resume of a 100-frame history"
  go test ./reference/server -run '^$' -bench 'BenchmarkResume$' -benchtime 200x
fi
