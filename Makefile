# Thin entry points; the logic lives in scripts/.
#   make deps    install what is missing (Debian packages, engine B)
#   make build   release build
#   make lint    rustfmt check + clippy, warnings are errors
#   make test    start the test engines, cargo test --release, stop them
#   make demo    pack on one engine, unpack on another, with the release binary
#   make man     man pages of every command into target/man (MANDIR=…)
#   make bench   bench/run: airgap against docker save/load, gzip, zstd (see bench/README.md)
CARGO ?= cargo

.PHONY: deps build lint test demo bench man

MANDIR ?= target/man

deps:
	scripts/deps

build:
	$(CARGO) build --release

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

test: deps
	scripts/test

demo: deps
	scripts/demo

bench:
	bench/run

man: build
	target/release/airgap man $(MANDIR)
