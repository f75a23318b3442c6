# Gofer — one static binary: server, CLI and tools.
SHELL   := /usr/bin/env bash
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
GOFER   := bin/gofer

# Dev server settings for `make run`.
DEV_API  ?= 127.0.0.1:8080
DEV_RAFT ?= 127.0.0.1:8081
DEV_DATA ?= .gofer-dev

.PHONY: build run test test-deps unit e2e lint bench chaos fuzz clean images docs

build: ## Build the static binary into bin/gofer.
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o $(GOFER) .

run: build images ## Start a dev server (auth off, loopback only) with a sample pipeline you can run.
	@GOFER=$(GOFER) DEV_API=$(DEV_API) DEV_RAFT=$(DEV_RAFT) DEV_DATA=$(DEV_DATA) ./e2e/scripts/dev-run.sh

test: test-deps lint unit e2e ## Everything CI runs: lint, unit tests, real-process e2e tests.

test-deps: ## Install what the tests need (load balancer for the LB test).
	@./e2e/scripts/install-test-deps.sh

lint: ## gofmt and go vet, both modules.
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	go vet ./...
	cd sdk/go && go vet ./...

# Packages whose tests exercise concurrency (appliers and readers, the API's
# caches and limiters, the leader's services) run under the race detector.
RACE_PKGS := ./api/... ./fsm/... ./store/... ./agent/...

unit: ## Unit tests (FSM, store, API, CLI, SDK), with the race detector where it matters.
	go test -count=1 -race $(RACE_PKGS)
	go test -count=1 $$(go list ./... | grep -v -e /e2e -e /api -e /fsm -e /store -e /agent)
	cd sdk/go && go test -count=1 ./...
	@command -v python3 >/dev/null || { echo "unit: python3 is required for the Python SDK tests (sdk/python); install Python 3.8+" >&2; exit 1; }
	cd sdk/python && python3 -m unittest discover -s tests -v

e2e: build ## Clusters of real gofer processes on 127.0.0.1, plus a real load balancer.
	GOFER_BIN=$(abspath $(GOFER)) go test -count=1 -timeout 20m ./e2e/...

bench: build ## Gofer vs etcd (writes, failover) side by side; prints ratios.
	GOFER_BIN=$(abspath $(GOFER)) ./e2e/bench/run.sh

chaos: build ## Reliability suite (not in `make test`): faults on a 3-node cluster for CHAOS_DURATION (default 3m), then checks; docs/reliability.md.
	GOFER_BIN=$(abspath $(GOFER)) CHAOS_DURATION=$${CHAOS_DURATION:-3m} go test -count=1 -v -tags chaos -run '^TestChaos$$' -timeout 30m ./e2e/

fuzz: ## Run each fuzz target for FUZZTIME (default 30s).
	cd sdk/go && go test -run XXX -fuzz FuzzValidateDAG -fuzztime $${FUZZTIME:-30s} .
	cd sdk/go && go test -run XXX -fuzz FuzzDecodeConfig -fuzztime $${FUZZTIME:-30s} .
	go test -run XXX -fuzz FuzzDecodeTOML -fuzztime $${FUZZTIME:-30s} ./agent/
	go test -run XXX -fuzz FuzzStream -fuzztime $${FUZZTIME:-30s} ./agent/executor/mask/
	go test -run XXX -fuzz FuzzParseCron -fuzztime $${FUZZTIME:-30s} ./extensions/schedule/
	go test -run XXX -fuzz FuzzParseInterval -fuzztime $${FUZZTIME:-30s} ./extensions/schedule/

docs: ## Regenerate the generated parts of the docs (CLI reference in docs/cli.md, route table in docs/api.md, docs/openapi.json, docs/extension-openapi.json) from the code.
	go test -count=1 -run TestCLIReference ./cli -update
	go test -count=1 -run 'TestAPIRouteReference|TestOpenAPIGolden' ./api -update

images: build ## Docker images for tasks, no registry needed: gofer/gofer:latest (this binary) and gofer/busybox:latest.
	GOFER_BIN=$(abspath $(GOFER)) ./e2e/scripts/build-images.sh

clean:
	rm -rf bin $(DEV_DATA)
