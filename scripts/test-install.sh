#!/usr/bin/env bash
# `make install` / `make uninstall` test (make install-test): installs into a scratch DESTDIR with
# PREFIX=/usr/local and checks that
#   - exactly the listed files are installed, with their modes, and the binaries are the ones built;
#   - the installed launcher finds the installed library (also through a symbolic link on PATH) and runs a
#     program whose threads are coroutines (c-tests/install/active_probe.c: asyncshim_is_active() in main
#     and in 50 threads, from the installed file, 50 threads on a few OS threads, the statistics report);
#   - the build tree's launcher still finds the build tree's library, a launcher without a library says
#     where it looked (exit status 125), `--version` names the version and the commit;
#   - the man pages format without warnings;
#   - `make uninstall` removes every file and our own directories.
# Output: `PASS install: what` / `FAIL install: what: why` lines, then `N passed, M failed`; exit status 1
# when anything failed. Needs gcc; does not need root (nothing outside the scratch directory is touched).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=/usr/local
T=$(mktemp -d "${TMPDIR:-/tmp}/asyncshim-install.XXXXXX") || exit 1
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
cleanup_install() {
    stop_bounded
    rm -rf "$T"
}
exit_traps cleanup_install
D=$T/dest
CHECK_LABEL=install
# shellcheck source=scripts/install-checks.sh
source "$ROOT/scripts/install-checks.sh"
# run_bounded OUT ERR CMD... (scripts/common.sh): at most 60 s; returns CMD's status.
RUN_TIMEOUT=60
# Environment of every run: no preload or library choice inherited from the caller.
CLEAN_ENV=(env -u LD_PRELOAD -u ASYNCSHIM_LIB -u ASYNCSHIM -u ASYNCSHIM_WORKERS -u ASYNCSHIM_STATS)

if ! make -s --no-print-directory -C "$ROOT" install PREFIX="$PREFIX" DESTDIR="$D" >"$T/install.log" 2>&1; then
    fail "make install" "$(tail -n 3 "$T/install.log" | tr '\n' ' ')"
    finish
fi
pass "make install PREFIX=$PREFIX DESTDIR=..."

# --- the files
{
    echo "usr/local/bin/asyncshim 755"
    echo "usr/local/lib/asyncshim/libasyncshim.so 644"
    echo "usr/local/share/doc/asyncshim/README.md 644"
    echo "usr/local/share/man/man1/asyncshim.1 644"
    echo "usr/local/share/man/man7/asyncshim.7 644"
    # The gdb extension's slot (Makefile): installed where Debian's gdb auto-loads it, once it exists.
    [[ -f $ROOT/gdb/libasyncshim.so-gdb.py ]] &&
        echo "usr/share/gdb/auto-load/usr/local/lib/asyncshim/libasyncshim.so-gdb.py 644"
} | sort >"$T/expected"
(cd "$D" && find . -mindepth 1 ! -type d -printf '%P %m\n' | sort) >"$T/installed"
check "installs exactly the listed files" "$(diff "$T/expected" "$T/installed" | grep '^[<>]' | tr '\n' ' ')" \
    cmp -s "$T/expected" "$T/installed"
check "installed launcher is the built one" "differs from target/release/asyncshim" \
    cmp -s "$ROOT/target/release/asyncshim" "$D$PREFIX/bin/asyncshim"
check "installed library is the built one" "differs from target/release/libasyncshim.so" \
    cmp -s "$ROOT/target/release/libasyncshim.so" "$D$PREFIX/lib/asyncshim/libasyncshim.so"

LAUNCHER=$D$PREFIX/bin/asyncshim
INSTALLED_LIB=$(realpath "$D$PREFIX/lib/asyncshim/libasyncshim.so")

# --- --version
VERSION=$(sed -n '/^\[package\]/,/^\[/s/^version *= *"\([^"]*\)".*/\1/p' "$ROOT/Cargo.toml" | head -n 1)
"${CLEAN_ENV[@]}" "$LAUNCHER" --version >"$T/version" 2>&1
GOT=$(cat "$T/version")
COMMIT=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || true)
if [[ -n $COMMIT ]]; then
    WANT_RE="^asyncshim $VERSION \\(git $COMMIT[0-9a-f]*(-dirty)?\\)\$"
else
    WANT_RE="^asyncshim $VERSION\$"
fi
check "asyncshim --version: '$GOT'" "want /$WANT_RE/" eval '[[ $GOT =~ $WANT_RE ]]'

# --- the installed launcher runs a program under the installed library
PROBE=$T/active_probe
if ! gcc -O2 -pthread -Wall -o "$PROBE" "$ROOT/c-tests/install/active_probe.c" -ldl 2>"$T/gcc.err"; then
    fail "build c-tests/install/active_probe.c" "$(head -n 3 "$T/gcc.err" | tr '\n' ' ')"
    finish
fi
if run_bounded "$T/probe.out" "$T/probe.err" "${CLEAN_ENV[@]}" "$LAUNCHER" --workers 2 --stats "$T/stats" "$PROBE"; then
    pass "installed launcher runs the probe"
    probe_verdict "installed" "$INSTALLED_LIB" "$T/probe.out" "$T/probe.err" "$T/stats"
else
    fail "installed launcher runs the probe" "status $? ($(tail -n 2 "$T/probe.err" | tr '\n' ' '))"
fi

# Through a symbolic link on PATH (as /usr/local/bin/asyncshim -> /opt/asyncshim/bin/asyncshim would be).
mkdir -p "$T/path"
ln -s "$LAUNCHER" "$T/path/asyncshim"
if run_bounded "$T/link.out" "$T/link.err" "${CLEAN_ENV[@]}" PATH="$T/path:$PATH" asyncshim --workers 2 "$PROBE"; then
    check "launcher through a symlink on PATH finds the installed library" "probe says '$(head -n 1 "$T/link.out")'" \
        grep -qxF "library: $INSTALLED_LIB" "$T/link.out"
else
    fail "launcher through a symlink on PATH" "status $? ($(tail -n 2 "$T/link.err" | tr '\n' ' '))"
fi

# The build tree's launcher keeps finding the library next to it.
BUILD_LIB=$(realpath "$ROOT/target/release/libasyncshim.so")
if run_bounded "$T/tree.out" "$T/tree.err" "${CLEAN_ENV[@]}" "$ROOT/target/release/asyncshim" --workers 2 "$PROBE"; then
    check "build-tree launcher finds target/release/libasyncshim.so" "probe says '$(head -n 1 "$T/tree.out")'" \
        grep -qxF "library: $BUILD_LIB" "$T/tree.out"
else
    fail "build-tree launcher runs the probe" "status $? ($(tail -n 2 "$T/tree.err" | tr '\n' ' '))"
fi

# A launcher with no library where it looks: status 125, and it says where it looked.
mkdir -p "$T/lonely/bin"
cp "$LAUNCHER" "$T/lonely/bin/asyncshim"
run_bounded "$T/lonely.out" "$T/lonely.err" "${CLEAN_ENV[@]}" "$T/lonely/bin/asyncshim" "$PROBE"
rc=$?
check "launcher without a library: status 125 ($rc), names both places" "$(tr '\n' ' ' <"$T/lonely.err")" \
    eval '[[ $rc -eq 125 ]] && grep -qF "$T/lonely/bin/libasyncshim.so" "$T/lonely.err" &&
          grep -qF "$T/lonely/bin/../lib/asyncshim/libasyncshim.so" "$T/lonely.err"'

# --- man pages: format without warnings (groff's, through man)
if command -v man >/dev/null; then
    for page in man1/asyncshim.1 man7/asyncshim.7; do
        LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings=all -l "$D$PREFIX/share/man/$page" >"$T/man.out" 2>"$T/man.err"
        check "man page $page formats without warnings" "$(head -n 3 "$T/man.err" | tr '\n' ' ')" \
            eval '[[ ! -s $T/man.err && -s $T/man.out ]]'
    done
else
    fail "man pages" "man (man-db) is not installed"
fi

# --- uninstall
if make -s --no-print-directory -C "$ROOT" uninstall PREFIX="$PREFIX" DESTDIR="$D" >"$T/uninstall.log" 2>&1; then
    (cd "$D" && find . -mindepth 1 ! -type d -printf '%P\n') >"$T/left"
    removal_verdict "make uninstall" "$T/left" "$D$PREFIX/lib/asyncshim" "$D$PREFIX/share/doc/asyncshim"
else
    fail "make uninstall" "$(tail -n 3 "$T/uninstall.log" | tr '\n' ' ')"
fi
finish
