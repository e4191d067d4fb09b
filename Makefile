# NetGuardian build. `make run` builds and starts the sensor; `make test` runs the suite.
GO        ?= go
BIN       := bin
# Every folder of plugins/ with a main package is a plugin binary.
PLUGINS   := $(patsubst plugins/%/main.go,%,$(wildcard plugins/*/main.go))
GOFLAGS_BUILD ?= -trimpath
PROTOC_GEN_GO      := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2

.PHONY: all build run test bench proto deps clean fmt vet

all: build

build:
	@mkdir -p $(BIN)/plugins
	$(GO) build $(GOFLAGS_BUILD) -o $(BIN)/netguardian ./cmd/netguardian
	@for p in $(PLUGINS); do \
		echo "$(GO) build -o $(BIN)/plugins/$$p ./plugins/$$p"; \
		$(GO) build $(GOFLAGS_BUILD) -o $(BIN)/plugins/$$p ./plugins/$$p || exit 1; \
	done

run: build
	$(BIN)/netguardian run -config netguardian.hcl

# deps installs what the suite needs from the system (apt-get as root, else it names the packages).
deps:
	bash scripts/install-deps.sh

test: deps build
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...

bench: build
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1x -timeout 30m ./... | tee bench.out

proto:
	@mkdir -p $(BIN)/tools
	GOBIN=$(abspath $(BIN)/tools) $(GO) install $(PROTOC_GEN_GO)
	GOBIN=$(abspath $(BIN)/tools) $(GO) install $(PROTOC_GEN_GO_GRPC)
	PATH="$(abspath $(BIN)/tools):$$PATH" protoc -I sdk/proto \
		--go_out=sdk/proto --go_opt=paths=source_relative \
		--go-grpc_out=sdk/proto --go-grpc_opt=paths=source_relative \
		sdk/proto/netguardian/v1/netguardian.proto

fmt:
	gofmt -w $$(git ls-files '*.go' | grep -v '\.pb\.go$$')

clean:
	rm -rf $(BIN)
