# asyncshim — build, test, demo, bench.  `make` builds target/release/libasyncshim.so and the launcher,
# linked against glibc 2.31 (scripts/glibc-sysroot.sh, scripts/link-portable) so that the one build loads
# on every glibc from 2.31 (Debian 11) on; scripts/check-glibc-versions.sh verifies it.
CARGO   ?= cargo
LIB     := target/release/libasyncshim.so
LAUNCH  := target/release/asyncshim
# The commit `asyncshim --version` names (empty outside a git checkout); a change rebuilds only the launcher.
GIT_COMMIT := $(shell git describe --always --dirty --abbrev=12 2>/dev/null)

.PHONY: structure-test all build deps test rust-test c-test passthrough-test stacks-test app-test install-test package-test glibc-test \
	demo demo-web bench bench-web clean install uninstall deb

all: build

build:
	@scripts/glibc-sysroot.sh >/dev/null
	ASYNCSHIM_GIT_COMMIT='$(GIT_COMMIT)' $(CARGO) build --release
	@scripts/check-glibc-versions.sh $(LIB) $(LAUNCH)

# Installs what the tests need on a fresh Debian 12 machine (idempotent, quiet when already there).
deps:
	scripts/install-deps.sh

test: deps build structure-test rust-test c-test passthrough-test stacks-test app-test install-test package-test glibc-test

# The architecture's rules a change can break unnoticed (issue 19): the only import circle among the
# library's files is the scheduler core (task, worker, scheduler, park, timers), system calls are made
# only in src/runtime/sys/ (and the syscall() hook, which is one; the launcher includes its one probe from
# there), and lazy statics are initialised only through runtime::lazy::get_or_init (issue 16).
structure-test:
	scripts/module-cycles.py src --max 5
	@if grep -rnE 'libc::syscall\(|\bsyscall[0-9]\(|"syscall"' src --include='*.rs' | grep -Ev '^src/runtime/sys/|^src/hooks/syscall.rs:'; then \
		echo 'raw system calls outside src/runtime/sys/ (above)' >&2; exit 1; fi
	@# Lazy statics initialise through runtime::lazy::get_or_init, which keeps errno: std's Once waits through
	@# the shim's syscall(SYS_futex) hook (EAGAIN leaked into a coroutine's errno across a successful call).
	@if grep -rnE '\.get_or_(try_)?init\(|\bLazy(Lock|Cell)\b' src --include='*.rs' | grep -v '^src/runtime/lazy.rs:'; then \
		echo 'lazy initialisation outside runtime::lazy::get_or_init (above)' >&2; exit 1; fi

rust-test:
	$(CARGO) test --release --lib --bins

c-test: build
	scripts/run-c-tests.sh

# A glibc the shim does not know (simulated with a test-only build in target/knobs): pass-through with one
# line naming the fact, once per process tree, output as natively.
passthrough-test: build
	scripts/test-passthrough.sh

# A hung program's five threads seen from outside: `asyncshim stacks PID`, and gdb with the shipped
# extension on the live process and on a core file (scripts/test-stacks.sh).
stacks-test: build
	scripts/test-stacks.sh

# Real programs (MariaDB clients, PHP, CPython, everyday tools) natively and under the shim; starts a
# private MariaDB when a test needs it (c-tests/README.md, "Application tests").
app-test: build
	scripts/run-app-tests.sh

# `make install DESTDIR=$(mktemp -d)` installs exactly the listed files, the installed launcher finds the
# installed library and runs a program with its threads as coroutines; `make uninstall` removes it all.
install-test: build
	scripts/test-install.sh

# The Debian package installs, runs and is removed in a chroot: an overlay of this machine's own root (so
# nothing here changes; needs root). glibc-test runs `scripts/test-package.sh CHROOT_DIR` per release.
package-test: build
	scripts/test-package.sh /

# The C differential suite and the package on other glibc versions with this one build of the library
# (needs root): Debian 11 (glibc 2.31), 13 (2.41) and sid in cached debootstrap chroots (c-tests/README.md,
# "The glibc matrix"). `make glibc-test GLIBC_RELEASES=trixie` runs one release.
GLIBC_RELEASES ?= bullseye trixie sid
glibc-test: build
	scripts/glibc-matrix.sh $(GLIBC_RELEASES)

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

# --- install ----------------------------------------------------------------------------------------
# `make install PREFIX=/usr/local DESTDIR=` (DESTDIR: a staging root, as for packaging). The library goes
# to a private directory, $(PREFIX)/lib/asyncshim: it is only ever preloaded, never linked against. The
# launcher finds it there relative to its own location (../lib/asyncshim/ from $(PREFIX)/bin), so the
# tree can be moved as a whole; BINDIR and PKGLIBDIR are therefore not separately configurable.
PREFIX    ?= /usr/local
DESTDIR   ?=
BINDIR    := $(PREFIX)/bin
PKGLIBDIR := $(PREFIX)/lib/asyncshim
MANDIR    ?= $(PREFIX)/share/man
DOCDIR    ?= $(PREFIX)/share/doc/asyncshim
# Slot for the gdb extension (issue 18, item 2; not written yet). When $(GDB_SCRIPT) exists it is installed
# as <auto-load dir><library path>-gdb.py, where gdb looks for an objfile's script: gdb loads it without
# configuration when the directory is in its auto-load safe-path, which by default is
# /usr/share/gdb/auto-load (Debian's gdb), whatever the PREFIX. (An extension embedded in the library's
# .debug_gdb_scripts section instead would need no file here.)
GDB_SCRIPT       := gdb/libasyncshim.so-gdb.py
GDB_AUTOLOAD_DIR ?= /usr/share/gdb/auto-load
GDB_SCRIPT_DEST  := $(GDB_AUTOLOAD_DIR)$(PKGLIBDIR)/libasyncshim.so-gdb.py
# Builds first when cargo is at hand; `sudo make install` without cargo on root's PATH installs what
# `make` built.
HAVE_CARGO := $(shell command -v $(CARGO) 2>/dev/null)

install: $(if $(HAVE_CARGO),build)
	@test -f $(LIB) -a -f $(LAUNCH) || { echo "make install: $(LIB) or $(LAUNCH) missing: run make first" >&2; exit 1; }
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(PKGLIBDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man7 \
		$(DESTDIR)$(DOCDIR)
	install -m 0755 $(LAUNCH) $(DESTDIR)$(BINDIR)/asyncshim
	install -m 0644 $(LIB) $(DESTDIR)$(PKGLIBDIR)/libasyncshim.so
	install -m 0644 man/asyncshim.1 $(DESTDIR)$(MANDIR)/man1/asyncshim.1
	install -m 0644 man/asyncshim.7 $(DESTDIR)$(MANDIR)/man7/asyncshim.7
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	$(if $(wildcard $(GDB_SCRIPT)),install -D -m 0644 $(GDB_SCRIPT) $(DESTDIR)$(GDB_SCRIPT_DEST))

# Removes what install put there, and the directories of our own if empty (never bin/ or man/).
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/asyncshim $(DESTDIR)$(PKGLIBDIR)/libasyncshim.so \
		$(DESTDIR)$(MANDIR)/man1/asyncshim.1 $(DESTDIR)$(MANDIR)/man7/asyncshim.7 \
		$(DESTDIR)$(DOCDIR)/README.md $(DESTDIR)$(GDB_SCRIPT_DEST)
	rmdir $(DESTDIR)$(PKGLIBDIR) $(DESTDIR)$(DOCDIR) 2>/dev/null || true
	d=$(dir $(DESTDIR)$(GDB_SCRIPT_DEST)); while [ "$${d%/}" != "$(DESTDIR)$(GDB_AUTOLOAD_DIR)" ] && \
		rmdir "$$d" 2>/dev/null; do d=$$(dirname "$$d")/; done; true

# target/debian/asyncshim_VERSION_ARCH.deb from a `make install PREFIX=/usr` staging tree (scripts/build-deb.sh).
deb: build
	scripts/build-deb.sh

clean:
	$(CARGO) clean
	rm -rf c-tests/build bench/loadgen/target
