# One task runner: CI calls these targets, so developers run exactly what CI runs.
SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/tapwire-target
export CARGO_TERM_COLOR ?= never
CARGO ?= cargo

.PHONY: demo quickstart test lint fmt build release fuzz bench deps

## The main job on its embedded defaults (see README): record, snapshot,
## mock and replay the bundled demo service; exits 0 when the replay passes.
demo:
	$(CARGO) run -q -p tapwire-cli -- demo

## Record a sample app of your own with `tapwire record` (see docs/recording.md).
quickstart: build
	./examples/quickstart.sh

build:
	$(CARGO) build -p tapwire-cli

release:
	$(CARGO) build --release -p tapwire-cli

## Formatting and lints, as CI checks them.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## The whole test suite (README's test command; .ci/run calls this).
test: lint
	./.ci/with-kube-local.sh $(CARGO) test --workspace --no-fail-fast

## Fuzz every parser of untrusted bytes for FUZZ_SECONDS each (nightly + cargo-fuzz).
FUZZ_SECONDS ?= 30
fuzz:
	cd fuzz && for t in $$(cargo +nightly fuzz list); do \
		mkdir -p corpus/$$t; \
		CARGO_TARGET_DIR=$(CARGO_TARGET_DIR)-fuzz cargo +nightly fuzz run $$t corpus/$$t seeds/$$t -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done

## Benchmarks against named peers (see bench/README.md).
bench: release
	./bench/proxy.sh

## Packages the tests need (Debian, PyPI); run as root.
deps:
	./.ci/deps.sh
