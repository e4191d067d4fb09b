# NetGuardian build. `make run` builds and starts the sensor; `make test` runs the suite.
GO        ?= go
BIN       := bin
# Every folder of plugins/ with a main package is a plugin binary.
PLUGINS   := $(patsubst plugins/%/main.go,%,$(wildcard plugins/*/main.go))
# Third-party style example plugins, built only against sdk/.
EXAMPLE_PLUGINS := $(patsubst examples/%/main.go,%,$(wildcard examples/detector-*/main.go))
GOFLAGS_BUILD ?= -trimpath
PROTOC_GEN_GO      := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2

.PHONY: all build web run test bench bench-e2e fuzz soak model proto deps clean fmt vet

all: build

# The dashboard's bundle (core/api/dashboard/dist) is committed so that
# `go build` works on a fresh clone; `make build` rebuilds it from web/ when
# npm is available.
web:
	@if command -v npm >/dev/null 2>&1; then \
		cd web && npm ci --no-audit --no-fund --loglevel=error && npm run --silent typecheck && npm run --silent build; \
	else \
		echo "npm not found: using the committed dashboard bundle in core/api/dashboard/dist"; \
	fi

build: web
	@mkdir -p $(BIN)/plugins
	$(GO) build $(GOFLAGS_BUILD) -o $(BIN)/netguardian ./cmd/netguardian
	@for p in $(PLUGINS); do \
		echo "$(GO) build -o $(BIN)/plugins/$$p ./plugins/$$p"; \
		$(GO) build $(GOFLAGS_BUILD) -o $(BIN)/plugins/$$p ./plugins/$$p || exit 1; \
	done
	@for p in $(EXAMPLE_PLUGINS); do \
		echo "$(GO) build -o $(BIN)/plugins/$$p ./examples/$$p"; \
		$(GO) build $(GOFLAGS_BUILD) -o $(BIN)/plugins/$$p ./examples/$$p || exit 1; \
	done

run: build
	$(BIN)/netguardian run -config netguardian.hcl

# deps installs what the suite needs from the system (apt-get as root, else it names the packages).
deps:
	bash scripts/install-deps.sh

test: deps build
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...

# Benchmarks: figures are recorded in docs/benchmarks.md. BENCHTIME=5x for steadier numbers.
BENCHTIME ?= 1x
bench: build
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -timeout 60m ./... | tee bench.out

# bench-e2e times analyze against nfpcapd, softflowd, argus and tshark on the
# same synthetic captures (about half an hour) and writes the table into
# docs/benchmarks.md. BENCH_E2E_FLAGS='-sizes 50k -runs 2' for a quick look;
# `go run ./internal/tools/bench-e2e -h` lists the flags.
bench-e2e: build
	$(GO) run ./internal/tools/bench-e2e $(BENCH_E2E_FLAGS)

# Fuzzing: each target for FUZZTIME (not part of make test).
FUZZTIME ?= 60s
fuzz:
	@set -e; for t in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
		for f in $$(grep -h -o '^func Fuzz[A-Za-z0-9_]*' $$t/*_test.go | cut -c6-); do \
			echo "== $$t $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 0 $$t; \
		done; \
	done

# Soak (not part of make test): 30 minutes at 100k packets/s with every
# plugin on; RSS and goroutines plotted to docs/soak.png (docs/soak.md).
# SOAKFLAGS='-duration 2m' for a short run.
soak: build
	$(GO) run ./internal/tools/soak $(SOAKFLAGS)

proto:
	@mkdir -p $(BIN)/tools
	GOBIN=$(abspath $(BIN)/tools) $(GO) install $(PROTOC_GEN_GO)
	GOBIN=$(abspath $(BIN)/tools) $(GO) install $(PROTOC_GEN_GO_GRPC)
	PATH="$(abspath $(BIN)/tools):$$PATH" protoc -I sdk/proto \
		--go_out=sdk/proto --go_opt=paths=source_relative \
		--go-grpc_out=sdk/proto --go-grpc_opt=paths=source_relative \
		sdk/proto/netguardian/v1/netguardian.proto

# model retrains the bundled XGBoost detector from labeled captures (needs
# editcap and Debian's python3-xgboost; see plugins/detector-xgboost/training).
model: build
	plugins/detector-xgboost/training/make_model.sh

fmt:
	gofmt -w $$(git ls-files '*.go' | grep -v '\.pb\.go$$')

clean:
	rm -rf $(BIN)
