# Switchboard — build, test and demo targets. Every target installs what it
# needs (modules, pinned tools) by itself; see README.md.

GO          ?= go
BIN         := $(CURDIR)/bin
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT      ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS     := -X github.com/switchboard-dev/switchboard/internal/buildinfo.Version=$(VERSION) \
               -X github.com/switchboard-dev/switchboard/internal/buildinfo.Commit=$(COMMIT)

STATICCHECK_VERSION        := v0.8.2
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2

STATICCHECK        := $(BIN)/staticcheck
PROTOC_GEN_GO      := $(BIN)/protoc-gen-go
PROTOC_GEN_GO_GRPC := $(BIN)/protoc-gen-go-grpc

.PHONY: all build test fmt-check vet staticcheck unit lint bench demo generate docs fuzz package clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/switchboard ./cmd/switchboard

## test: everything CI checks — formatting, vet, staticcheck, race-enabled tests.
test: fmt-check vet staticcheck unit

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bin/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; echo "run: gofmt -w <files>"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck: $(STATICCHECK)
	$(STATICCHECK) ./...

unit:
	$(GO) test -race -timeout 9m ./...

lint: fmt-check vet staticcheck

$(STATICCHECK):
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

## bench: the figures the issues ask for, one line per figure (see BENCHMARKS.md).
bench:
	@bash scripts/bench.sh

## demo: the whole system end to end on loopback.
demo: build
	@bash scripts/demo.sh

## generate: regenerate the committed gRPC code from plugins/proto.
generate: $(PROTOC_GEN_GO) $(PROTOC_GEN_GO_GRPC)
	@command -v protoc >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq protobuf-compiler; \
		else echo "protoc missing: sudo apt-get install protobuf-compiler"; exit 1; fi; }
	PATH=$(BIN):$$PATH bash scripts/generate.sh

$(PROTOC_GEN_GO):
	GOBIN=$(BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

$(PROTOC_GEN_GO_GRPC):
	GOBIN=$(BIN) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

## docs: markdown reference for every command into docs/cli.
docs:
	$(GO) run ./cmd/switchboard docs --dir docs/cli --format markdown

## fuzz: run every fuzz target for FUZZTIME each (default 30s).
FUZZTIME ?= 30s
fuzz:
	@bash scripts/fuzz.sh $(FUZZTIME)

## package: .deb and .rpm of switchboard (linux/PACKAGE_ARCH) into dist/. nfpm is
## used as a library (internal/packaging), pinned in go.mod at NFPM_VERSION.
## Serve dist/ with 'switchboard registry serve --packages dist'.
NFPM_VERSION       := v2.46.3
PACKAGE_ARCH       ?= $(shell $(GO) env GOARCH)
PACKAGE_MAINTAINER ?= Switchboard maintainers <packages@switchboard.example>
PACKAGE_LICENSE    ?= Proprietary
DIST               := $(CURDIR)/dist
PACKAGE_STAGE      := $(DIST)/.stage
package: build
	@grep -q 'github.com/goreleaser/nfpm/v2 $(NFPM_VERSION)' go.mod || { echo "go.mod does not pin nfpm $(NFPM_VERSION): run go get github.com/goreleaser/nfpm/v2@$(NFPM_VERSION)"; exit 1; }
	rm -rf $(PACKAGE_STAGE) && mkdir -p $(PACKAGE_STAGE)
	CGO_ENABLED=0 GOOS=linux GOARCH=$(PACKAGE_ARCH) $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(PACKAGE_STAGE)/switchboard ./cmd/switchboard
	$(BIN)/switchboard agent config example > $(PACKAGE_STAGE)/agent.toml.example
	$(GO) run ./internal/packaging/cmd/mkpackages --out $(DIST) --version "$(VERSION)" --arch $(PACKAGE_ARCH) \
		--binary $(PACKAGE_STAGE)/switchboard --config-example $(PACKAGE_STAGE)/agent.toml.example --doc README.md \
		--maintainer "$(PACKAGE_MAINTAINER)" --license "$(PACKAGE_LICENSE)"
	@if command -v dpkg-deb >/dev/null; then for f in $(DIST)/*.deb; do \
		list=$$(dpkg-deb -c "$$f") || exit 1; echo "check $$f with dpkg-deb -c"; \
		for p in ./usr/bin/switchboard ./etc/switchboard/agent.toml.example; do \
		echo "$$list" | grep -q " $$p$$" || { echo "$$f lacks $$p"; exit 1; }; done; done; fi
	@if command -v rpm >/dev/null; then for f in $(DIST)/*.rpm; do \
		list=$$(rpm -qlp "$$f") || exit 1; echo "check $$f with rpm -qlp"; \
		for p in /usr/bin/switchboard /etc/switchboard/agent.toml.example; do \
		echo "$$list" | grep -qx "$$p" || { echo "$$f lacks $$p"; exit 1; }; done; done; fi
	rm -rf $(PACKAGE_STAGE)

clean:
	rm -rf $(BIN)
