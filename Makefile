# archetype-network: the two commands a new user needs are `make run` and `make test`.
SHELL := /bin/bash
BIN := node_modules/.bin
export npm_config_update_notifier := false

.PHONY: run run-central setup-ovn test unit test-under-load test-kernel setup setup-test deps build install lint typecheck bench bench-smoke bench-kernel clean

## make run: set up the host (OVS, iproute2...), build, put `archnet` on the PATH, run the agent in the foreground.
run: setup install
	archnet serve

## make run-central: OVN's central part for the ovn backend (one host of a multi-host lab): OVN
## installed with its packaged services off, then `archnet central serve` in the foreground.
run-central: setup-ovn install
	archnet central serve

## make test: the same set-up plus Docker, then lint, type-check and every test (real OVS, kernel, Docker),
## then the kernel-datapath suites in a VM (make test-kernel).
test: setup-test build lint typecheck
	node --import tsx --test --test-concurrency=1 --test-timeout=300000 $(TESTS)
	$(MAKE) --no-print-directory bench-smoke
	$(MAKE) --no-print-directory test-kernel

## make test-under-load: `make test` while busy loops keep every core busy (as a loaded CI machine).
test-under-load:
	bash scripts/with-cpu-hog.sh $(MAKE) --no-print-directory test

TESTS ?= $(shell find test -name '*.test.ts' | sort)

## make unit: the pure tests (`*.unit.test.ts`: no root, no OVS, no kernel, no Docker), in seconds.
unit: deps
	node --import tsx --test $(shell find test -name '*.unit.test.ts' | sort)

## make test-kernel: the suites that differ between datapaths, in a VM with Debian's kernel (openvswitch
## kernel datapath, netem, 8021q); skipped, saying why, where no VM can start.
KERNEL_TESTS ?= test/kernel/*.test.ts test/backends/ovs-links.test.ts test/backends/ovs-tcp.test.ts \
	test/overlay/two-hosts.test.ts test/reconcile/recovery.test.ts test/cleanup/cleanup.test.ts \
	test/backends/wire-links.test.ts test/ovn/impairment-across-hosts.test.ts
test-kernel: build
	bash scripts/test-kernel.sh $(KERNEL_TESTS)

# With ARCHETYPE_AGENT_BACKEND=ovn, `make run` also starts ovn-controller as the host's service.
setup:
	bash scripts/host-setup.sh $(if $(filter ovn,$(ARCHETYPE_AGENT_BACKEND)),--ovn-host)

setup-ovn:
	bash scripts/host-setup.sh --ovn

setup-test:
	bash scripts/host-setup.sh --docker

deps: node_modules/.package-lock.json
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# TypeScript and the native helpers (native/*.c, see scripts/build-native.sh): what `npm run build` does.
build: deps
	npm run --silent build

## make install: `archnet` on the PATH (a link to this checkout's build).
PREFIX ?= /usr/local
install: build
	chmod +x dist/cli/main.js
	ln -sfn $(CURDIR)/dist/cli/main.js $(PREFIX)/bin/archnet

lint: deps
	$(BIN)/biome check src test bench ui

typecheck: deps
	$(BIN)/tsc -p tsconfig.check.json
	$(BIN)/tsc -p ui/tsconfig.json

bench: setup-test build
	node --import tsx bench/run.ts

## make bench-kernel BENCH_ARGS="--only 17 --scale-links 5000": bench scenarios in the VM, on the
## kernel datapath (scripts/bench-kernel.sh).
bench-kernel: build
	bash scripts/bench-kernel.sh $(BENCH_ARGS)

bench-smoke: build
	@if [ -f bench/run.ts ]; then node --import tsx bench/run.ts --smoke; fi

clean:
	rm -rf dist
