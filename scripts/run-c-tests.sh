#!/usr/bin/env bash
# Differential C test runner for asyncshim (the contract is c-tests/README.md).
#
#   scripts/run-c-tests.sh [FILTER...]
#
# Builds every c-tests/*.c (gcc) and c-tests/*.cc (g++) into c-tests/build/, then runs each test in
# every mode its `asyncshim-test: modes=` marker lists (default native,shim,shim-w1,shim-arch):
#   native   plain run (the reference)
#   shim     LD_PRELOAD=target/release/libasyncshim.so
#   shim-w1  the same with ASYNCSHIM_WORKERS=1
#   shim-arch  the shim switching FS/GS with arch_prctl instead of FSGSBASE (ASYNCSHIM_NO_FSGSBASE=1)
# A shim mode passes when its stdout equals native's byte for byte, its exit status (or terminating
# signal) equals native's, and every regex line of c-tests/NAME.shim-stderr matches its stderr
# (grep -Ei). The native run passes when its exit status is the one its `status=` marker expects
# (default 0). Every run is limited by `timeout -k 5 SECONDS` (marker `timeout=`, default 60), runs in
# its own session/process group (setsid) and must leave no process behind.
#
# FILTER: test names or shell globs (`exit_*`); default all tests.
# Environment:
#   MODES=native[,shim][,shim-w1][,shim-arch]  only report these modes (native still runs as the reference)
#   SHIM_LIB=PATH                  library to preload (default target/release/libasyncshim.so)
#   CC, CXX                        compilers (default gcc, g++)
# Runs are serialised by a lock on c-tests/build/.lock (a second invocation waits).
# Output: one `PASS name [mode] (secs)` or `FAIL name [mode]: reason` line per test+mode, then
# `N passed, M failed`; exit status 1 when anything failed.
set -u
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
TESTDIR=c-tests
BUILD=$TESTDIR/build
LIB=${SHIM_LIB:-$ROOT/target/release/libasyncshim.so}
CC=${CC:-gcc}
CXX=${CXX:-g++}
ALL_MODES="native shim shim-w1 shim-arch"
mkdir -p "$BUILD"
# One run at a time: concurrent runs would share the binaries and output files in $BUILD (and disturb
# each other's timings and thread counts). The lock is released when this script exits.
exec 9>"$BUILD/.lock"
if ! flock -n 9; then
    echo "run-c-tests: waiting for another run-c-tests.sh to finish" >&2
    flock 9
fi
ulimit -c 0 2>/dev/null || true   # a test that dies by a signal must not leave core files around

OUT_DIR=$BUILD
# shellcheck source=scripts/differential.sh
source "$ROOT/scripts/differential.sh"
want_modes run-c-tests
FILTERS=("$@")

shopt -s nullglob
SOURCES=("$TESTDIR"/*.c "$TESTDIR"/*.cc)
HEADERS=("$TESTDIR"/*.h)
TESTS=()
for src in "${SOURCES[@]}"; do
    base=${src##*/}
    name=${base%.*}
    selected "$name" && TESTS+=("$src")
done
if [ ${#TESTS[@]} -eq 0 ]; then
    echo "run-c-tests: no test matches: $*" >&2
    echo "0 passed, 0 failed"
    exit 2
fi
# Stable order: by name.
mapfile -t TESTS < <(printf '%s\n' "${TESTS[@]}" | sort -t/ -k2)

# build SRC NAME: compiles into $BUILD/NAME unless it is up to date; 0 on success.
build() {
    local src=$1 name=$2 exe=$BUILD/$2 log=$BUILD/$2.build.log
    if [ -x "$exe" ] && [ "$exe" -nt "$src" ] && [ "$exe" -nt "$0" ]; then
        local h newer=0
        for h in "${HEADERS[@]}"; do [ "$h" -nt "$exe" ] && newer=1; done
        [ $newer -eq 0 ] && return 0
    fi
    rm -f "$exe"
    case $src in
        *.cc) "$CXX" -O2 -pthread -Wall -o "$exe" "$src" -ldl >"$log" 2>&1 ;;
        *)    "$CC" -O2 -pthread -Wall -o "$exe" "$src" -ldl >"$log" 2>&1 ;;
    esac
}

# run NAME MODE TIMEOUT ARGS...: runs one mode; sets RUN_STATUS, RUN_SECS, RUN_TIMEDOUT, RUN_LEFTOVER.
run() {
    local name=$1 mode=$2 limit=$3
    shift 3
    local exe=$ROOT/$BUILD/$name out=$BUILD/$name.$mode.out err=$BUILD/$name.$mode.err
    local -a envset
    case $mode in
        native)  envset=(env -u LD_PRELOAD) ;;
        shim)    envset=(env LD_PRELOAD="$LIB") ;;
        shim-w1) envset=(env LD_PRELOAD="$LIB" ASYNCSHIM_WORKERS=1) ;;
        shim-arch) envset=(env LD_PRELOAD="$LIB" ASYNCSHIM_NO_FSGSBASE=1) ;;
    esac
    local t0=$EPOCHREALTIME
    # setsid: the test gets its own session and process group (pgid = this job's pid, since a job of a
    # non-interactive shell is never a group leader, so setsid does not fork). timeout signals that
    # whole group when the limit passes. LD_PRELOAD is set by env right before exec'ing the test, so
    # it does not apply to setsid or timeout themselves.
    setsid timeout -k 5 "$limit" "${envset[@]}" "$exe" "$@" </dev/null >"$out" 2>"$err" 9>&- &
    local pid=$!
    wait "$pid" 2>/dev/null
    RUN_STATUS=$?
    local t1=$EPOCHREALTIME
    RUN_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    RUN_TIMEDOUT=0
    if [ "$RUN_STATUS" -eq 124 ] ||
        { [ "$RUN_STATUS" -eq 137 ] && awk -v s="$RUN_SECS" -v l="$limit" 'BEGIN { exit !(s >= l) }'; }; then
        RUN_TIMEDOUT=1
    fi
    # Anything still in the test's process group is a leftover: give it a second, then kill the group.
    RUN_LEFTOVER=0
    local i
    for i in 1 2 3 4 5 6 7 8 9 10; do
        kill -0 -- "-$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 -- "-$pid" 2>/dev/null; then
        RUN_LEFTOVER=1
        kill -KILL -- "-$pid" 2>/dev/null
    fi
}

show_failure() { # name mode [difffile]
    local name=$1 mode=$2
    local out=$BUILD/$name.$mode.out err=$BUILD/$name.$mode.err
    if [ "$mode" != native ] && ! cmp -s "$BUILD/$name.native.out" "$out"; then
        echo "  stdout diff (native vs $mode):"
        diff -u --label native --label "$mode" "$BUILD/$name.native.out" "$out" | head -n 25 | indent
    elif [ "$mode" = native ]; then
        echo "  stdout tail:"
        tail -n 15 "$out" | indent
    fi
    if [ -s "$err" ]; then
        echo "  stderr tail ($err):"
        tail -n 12 "$err" | cut -c1-300 | indent
    fi
}

for src in "${TESTS[@]}"; do
    base=${src##*/}
    name=${base%.*}
    limit=$(marker "$src" timeout)
    limit=${limit:-60}
    modes=$(marker "$src" modes)
    modes=${modes:-native,shim,shim-w1,shim-arch}
    args=$(marker "$src" args)
    expect=$(marker "$src" status)
    expect=${expect:-0}
    regexfile=$TESTDIR/$name.shim-stderr

    # Modes to report for this test.
    modes_to_report "$name" "$modes" || continue
    [ ${#REPORT[@]} -eq 0 ] && continue

    if ! build "$src" "$name"; then
        for m in "${REPORT[@]}"; do fail "$name" "$m" "build failed (see $BUILD/$name.build.log)"; done
        tail -n 20 "$BUILD/$name.build.log" | indent
        continue
    fi

    # shellcheck disable=SC2206  # the args marker is split into words on purpose
    RUN_EXTRA=($args)
    judge "$name" "$limit" "$expect" "$regexfile" "${REPORT[@]}"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
