# One entry point for everything this repo does. `make help` lists the targets.
#
# Go modules live side by side and are tied together by go.work; every target works from
# a clean clone with only Go installed (tools the e2e harness needs are built from the Go
# module proxy into .cache/tools on first use).

SHELL := bash
export GOTOOLCHAIN ?= local
GO ?= go

# Modules whose tests need nothing but Go (an in-process NATS server at most).
UNIT_MODULES := natsotel services loadgen demo deploy
ALL_MODULES := $(UNIT_MODULES) e2e
# Modules outside go.work (their dependencies must not join the workspace's build list),
# tested with GOWORK=off: BuildKit's Dockerfile frontend checking the Dockerfile, Helm's
# library rendering the Kubernetes chart.
SOLO_MODULES := deploy/dockerfile deploy/helm

TOOLS_DIR := $(CURDIR)/.cache/tools
export TOOLS_DIR

FUZZTIME ?= 20s
# staticcheck, run from the module proxy at a pinned version (built once into the Go cache).
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: help
help: ## list targets
	@grep -hE '^[a-z][a-zA-Z0-9_-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

.PHONY: test
test: ## unit and in-process end-to-end tests of every module, with -race
	@set -e; for m in $(UNIT_MODULES); do echo "== go test $$m"; (cd $$m && $(GO) test -race -count=1 ./...); done
	@set -e; for m in $(SOLO_MODULES); do echo "== go test $$m (GOWORK=off)"; (cd $$m && GOWORK=off $(GO) test -race -count=1 ./...); done

.PHONY: demo
# Built, then exec'd (not `go run`, which exits 1 when Ctrl-C interrupts the program it runs,
# so make printed "Error 1" after a clean stop). -take-terminal: on a terminal the demo takes
# its foreground process group, so Ctrl-C reaches the demo alone; make, in the same group,
# would die of that SIGINT (status 130) after the clean stop. Flags: make demo ARGS='-rate 100 -logs'.
demo: ## the whole system in one process on an embedded NATS server; prints the live service graph
	@mkdir -p .cache
	cd demo && $(GO) build -o ../.cache/demo ./cmd/demo
	exec ./.cache/demo -take-terminal $(ARGS)

.PHONY: build
build: ## build every binary into ./bin
	@mkdir -p bin
	cd services && CGO_ENABLED=0 $(GO) build -trimpath -o ../bin/ ./cmd/...
	cd loadgen && CGO_ENABLED=0 $(GO) build -trimpath -o ../bin/ ./cmd/...
	cd demo && CGO_ENABLED=0 $(GO) build -trimpath -o ../bin/ ./cmd/...

.PHONY: lint
lint: ## gofmt, go vet, staticcheck and go mod tidy on every module; no file over 1 MB tracked by git
	@big=$$(git ls-files -z 2>/dev/null | xargs -0 -r stat -c '%s %n' 2>/dev/null | awk '$$1 > 1048576 {print $$2}'); \
	if [ -n "$$big" ]; then echo "files over 1 MB tracked by git (build output?):"; echo "$$big"; exit 1; fi
	@out=$$(gofmt -l $(ALL_MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@set -e; for m in $(ALL_MODULES); do (cd $$m && $(GO) vet ./... && $(STATICCHECK) ./...); done
	@set -e; for m in $(SOLO_MODULES); do (cd $$m && GOWORK=off $(GO) vet ./... && GOWORK=off $(STATICCHECK) ./...); done
	@for m in $(ALL_MODULES) $(SOLO_MODULES); do \
		out=$$(cd $$m && $(GO) mod tidy -diff 2>&1) || { echo "$$m: run go mod tidy"; echo "$$out" | grep -v '^go: downloading'; exit 1; }; done

.PHONY: tools
tools: ## build the e2e tools (collector, prometheus, nats-server, nats CLI) into .cache/tools
	bash e2e/tools/build.sh

.PHONY: e2e
e2e: tools ## real collector + Prometheus + nats-server + service binaries: proves the service graph
	cd e2e && $(GO) test -race -count=1 -timeout 25m -run 'Test[^F]' ./...

.PHONY: faults
faults: tools ## fault tests: NATS restart, a three-node cluster losing its leader and restarted node by node, dead telemetry backend, SIGTERM, racing replicas, redelivery
	cd e2e && $(GO) test -race -count=1 -timeout 25m -run 'TestFault' -v ./...

.PHONY: cluster-bench
cluster-bench: tools ## orders/s with 1, 2 and 3 order replicas on a three-node NATS cluster (R3), interleaved rounds
	set -o pipefail; cd e2e && $(GO) test -run '^$$' -bench BenchmarkClusterOrders -benchtime 1x -timeout 20m -v . | grep -v '^ *time=' | tee ../cluster-bench.txt

.PHONY: fuzz
# .ci/fuzz-target runs each target with -fuzzminimizetime 2s (minimising each new interesting
# input may otherwise take up to 60 s, during which the workers run nothing and a 20 s budget
# is wasted) and retries once a run that failed only by Go 1.26's fuzztime-deadline race.
fuzz: ## every fuzz target for FUZZTIME (default 20s)
	@set -e; for m in $(UNIT_MODULES); do \
	  (cd $$m && for pkg in $$($(GO) list ./...); do \
	    for f in $$($(GO) test -list 'Fuzz.*' $$pkg | grep '^Fuzz' || true); do \
	      echo "== fuzz $$pkg $$f"; GO=$(GO) bash $(CURDIR)/.ci/fuzz-target $$pkg $$f $(FUZZTIME); \
	    done; done); done

.PHONY: bench-serve
bench-serve: tools ## the shop's serving figures (slow dependency, dropped charges, saturation, tracing p99), one vs concurrent handlers
	cd e2e && $(GO) test -run '^$$' -bench BenchmarkServe -benchtime 1x -count $${COUNT:-3} -timeout 60m . | tee ../bench-serve.txt

.PHONY: bench
bench: ## natsotel benchmarks (natsotel vs bare nats.go), 6 runs for benchstat
	cd natsotel && $(GO) test -run '^$$' -bench . -benchmem -count 6 ./... | tee ../bench.txt

.PHONY: bench-loadgen
bench-loadgen: tools build ## loadgen closed loop vs `nats bench service request` on the real services: throughput ratios, interleaved
	env $(BENCH_ARGS) bash loadgen/bench/vs-nats-bench.sh
