# asyncshim — build, test, demo, bench.  `make` builds target/release/libasyncshim.so and the launcher.
CARGO   ?= cargo
LIB     := target/release/libasyncshim.so
LAUNCH  := target/release/asyncshim

.PHONY: all build deps test rust-test c-test app-test demo demo-web bench bench-web clean

all: build

build:
	$(CARGO) build --release

# Installs what the tests need on a fresh Debian 12 machine (idempotent, quiet when already there).
deps:
	scripts/install-deps.sh

test: deps build rust-test c-test app-test

rust-test:
	$(CARGO) test --release --lib --bins

c-test: build
	scripts/run-c-tests.sh

# Real programs (MariaDB clients, PHP, CPython, everyday tools) natively and under the shim; starts a
# private MariaDB when a test needs it (c-tests/README.md, "Application tests").
app-test: build
	scripts/run-app-tests.sh

# The thread-per-connection echo server natively and under the shim, same load, side by side (~40 s).
demo: build
	scripts/demo.sh

# Act 2: a Django app on mysqlclient (a thread per connection) natively, under the shim and with gevent,
# under the same load from wrk (~2 minutes; DEMO_CLIENTS, DEMO_SECONDS, DEMO_APP=wsgi).
demo-web: build
	scripts/demo-web.sh

# Every benchmark natively and under the shim: markdown on stdout, bench/results/latest.json and PNGs.
# `make bench QUICK=1` is the short run (under 2 minutes once built); the full run takes about 10.
bench: build
	scripts/bench.sh

# The web scenario alone (also part of `make bench`, about 12 of its minutes; QUICK=1 about 1):
# bench/results/web.json and web.png.
bench-web: build
	scripts/bench-web.sh

clean:
	$(CARGO) clean
	rm -rf c-tests/build bench/loadgen/target
