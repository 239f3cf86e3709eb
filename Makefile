# groundzero: `make demo` runs a whole governed bootstrap in a throwaway
# sandbox; `make test` runs every test. Both install what they need.
SHELL := /bin/bash
GO ?= go
export GOFLAGS ?= -buildvcs=false

.PHONY: build deps test-deps tools test unit fuzz demo bench clean

build:
	$(GO) build -o bin/groundzero ./cmd/groundzero

deps:
	@scripts/deps

test-deps:
	@scripts/deps --all

tools: test-deps
	@scripts/tools

unit: tools
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

fuzz:
	@scripts/fuzz

test: unit fuzz

demo: deps build
	@scripts/tools tofu versitygw
	@scripts/demo

bench: tools build
	@bench/run

clean:
	rm -rf bin
