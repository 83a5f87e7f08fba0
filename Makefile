# asyncshim — build, test, demo, bench.  `make` builds target/release/libasyncshim.so and the launcher,
# linked against glibc 2.31 (scripts/glibc-sysroot.sh, scripts/link-portable) so that the one build loads
# on every glibc from 2.31 (Debian 11) on; scripts/check-glibc-versions.sh verifies it.
CARGO   ?= cargo
LIB     := target/release/libasyncshim.so
LAUNCH  := target/release/asyncshim

.PHONY: all build deps test rust-test c-test passthrough-test app-test demo bench clean

all: build

build:
	@scripts/glibc-sysroot.sh >/dev/null
	$(CARGO) build --release
	@scripts/check-glibc-versions.sh $(LIB) $(LAUNCH)

# Installs what the tests need on a fresh Debian 12 machine (idempotent, quiet when already there).
deps:
	scripts/install-deps.sh

test: deps build rust-test c-test passthrough-test app-test

rust-test:
	$(CARGO) test --release --lib --bins

c-test: build
	scripts/run-c-tests.sh

# A glibc the shim does not know (simulated with a test-only build in target/knobs): pass-through with one
# line naming the fact, once per process tree, output as natively.
passthrough-test: build
	scripts/test-passthrough.sh

# Real programs (MariaDB clients, PHP, CPython, everyday tools) natively and under the shim; starts a
# private MariaDB when a test needs it (c-tests/README.md, "Application tests").
app-test: build
	scripts/run-app-tests.sh

# The thread-per-connection echo server natively and under the shim, same load, side by side (~40 s).
demo: build
	scripts/demo.sh

# Every benchmark natively and under the shim: markdown on stdout, bench/results/latest.json and PNGs.
# `make bench QUICK=1` is the short run (under 2 minutes once built); the full run takes about 10.
bench: build
	scripts/bench.sh

clean:
	$(CARGO) clean
	rm -rf c-tests/build bench/loadgen/target
