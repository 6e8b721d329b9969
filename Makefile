# archetype-network: the two commands a new user needs are `make run` and `make test`.
SHELL := /bin/bash
BIN := node_modules/.bin
export npm_config_update_notifier := false

.PHONY: run test setup setup-test deps build lint typecheck unit bench bench-smoke clean

## make run: set up the host (OVS, iproute2...), build, and run the agent in the foreground.
run: setup build
	node dist/cli/main.js serve

## make test: the same set-up plus Docker, then lint, type-check and every test (real OVS, kernel, Docker).
test: setup-test build lint typecheck
	node --import tsx --test --test-concurrency=1 --test-timeout=300000 $(TESTS)
	$(MAKE) --no-print-directory bench-smoke

TESTS ?= $(shell find test -name '*.test.ts' | sort)

setup:
	bash scripts/host-setup.sh

setup-test:
	bash scripts/host-setup.sh --docker

deps: node_modules/.package-lock.json
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

build: deps dist/archnet-txoff dist/archnet-carrier
	$(BIN)/tsc -p tsconfig.json

# Native helpers, each one process for many interfaces: TX offload off (src/link/offload.ts),
# waiting for carrier (src/link/carrier.ts).
dist/archnet-%: native/archnet-%.c
	@mkdir -p dist
	cc -O2 -Wall -Wextra -o $@ $<

lint: deps
	$(BIN)/biome check src test bench

typecheck: deps
	$(BIN)/tsc -p tsconfig.check.json

bench: setup-test build
	node --import tsx bench/run.ts

bench-smoke: build
	@if [ -f bench/run.ts ]; then node --import tsx bench/run.ts --smoke; fi

clean:
	rm -rf dist
