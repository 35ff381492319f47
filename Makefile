# The README's two commands: `make demo` (the main job end to end against the
# Twilio emulator) and `make test` (everything CI checks).
SHELL := /bin/bash
export PATH := $(CURDIR)/.tools/bin:$(PATH)

.PHONY: test demo tools vet build bench rules

tools:
	./scripts/install-tools.sh

# vet: gofmt, a tidy go.mod (robfig/cron direct, no unused modules) and go
# vet. govulncheck is not run here: it installs from the module proxy but
# needs its database from vuln.go.dev, which the build machines cannot
# reach. Where it can be reached: go run golang.org/x/vuln/cmd/govulncheck@latest ./...
vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	@go mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }
	go vet ./...

# VERSION is stamped into every program (internal/version): --version,
# the worker's mediasync_build_info and an export's export.json say it.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X github.com/mediasync/mediasync/internal/version.version=$(VERSION)

build:
	go build ./...
	go build -ldflags "$(LDFLAGS)" -o bin/ ./cmd/worker ./cmd/enqueue ./cmd/twilio-emulator ./cmd/bench

# rules: the Prometheus alert rules parse (promtool check rules) and fire
# as their tests say (promtool test rules). make tools installs promtool
# from Debian's prometheus package where apt is available; without it the
# check is skipped, saying so.
rules:
	@if command -v promtool >/dev/null; then \
	  promtool check rules deploy/prometheus/alerts.yml && \
	  promtool test rules deploy/prometheus/alerts_test.yml; \
	else echo "rules: promtool not installed (make tools): skipping the Prometheus rules check"; fi

test: tools vet rules
	go test -race -count=1 -timeout 30m ./...

demo: tools
	./scripts/demo.sh

# The benchmarks (docs/benchmarks.md): the real pipeline against the bare
# copy, scenario by scenario. BENCH_FLAGS=-quick for a short smoke run;
# BENCH_FLAGS="-plot docs/throughput.svg" also redraws the plot.
bench: tools
	go run ./cmd/bench $(BENCH_FLAGS)
