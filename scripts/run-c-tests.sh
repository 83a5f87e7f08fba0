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
#   shim-uring the shim with the io_uring netpoller (ASYNCSHIM_IO=uring); by default only for the tests
#              of fd waits (io_* and the few others `uring_test` names), which are the ones it changes
# A shim mode passes when its stdout equals native's byte for byte, its exit status (or terminating
# signal) equals native's, and every regex line of c-tests/NAME.shim-stderr matches its stderr
# (grep -Ei). The native run passes when its exit status is the one its `status=` marker expects
# (default 0). Every run is limited by `timeout -k 5 SECONDS` (marker `timeout=`, default 60), runs in
# its own session/process group (setsid) and must leave no process behind. Before the first run of each
# shim mode, c-tests/lib/shim_active.c checks that the shim really runs coroutines in that mode
# (`shim_active [MODE]`); when it does not, that mode's runs fail without being made. How runs are
# judged lives in scripts/differential.sh, shared with scripts/run-app-tests.sh.
#
# FILTER: test names or shell globs (`exit_*`); default all tests.
# Environment:
#   MODES=native[,shim][,shim-w1][,shim-arch][,shim-uring]  only report these modes (native still runs as the reference)
#   SHIM_LIB=PATH     library to preload (default target/release/libasyncshim.so)
#   CC, CXX           compilers (default gcc, g++)
#   BIN_DIR=DIR       where the test programs are built (default c-tests/build)
#   OUT_DIR=DIR       where each run's NAME.MODE.out/.err go (default BIN_DIR)
#   BUILD_ONLY=1      build the selected tests (and the shim check), run nothing
#   NO_BUILD=1        build nothing: run the programs found in BIN_DIR (a missing one fails)
# (BUILD_ONLY and NO_BUILD let scripts/glibc-matrix.sh build once on the oldest glibc and run elsewhere.)
# Runs are serialised by a lock on c-tests/build/.lock (a second invocation waits).
# Output: one `PASS name [mode] (secs)` or `FAIL name [mode]: reason` line per test+mode, then
# `N passed, M failed`; exit status 1 when anything failed, 2 for a filter that matches nothing.
set -u
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
TESTDIR=$ROOT/c-tests
absolute() { case $1 in /*) echo "$1" ;; *) echo "$ROOT/$1" ;; esac; }
BIN_DIR=$(absolute "${BIN_DIR:-c-tests/build}")
OUT_DIR=$(absolute "${OUT_DIR:-$BIN_DIR}")
LIB=$(absolute "${SHIM_LIB:-target/release/libasyncshim.so}")
CC=${CC:-gcc}
CXX=${CXX:-g++}
ALL_MODES="native shim shim-w1 shim-arch shim-uring"
# The tests that wait on fds through the netpoller, run with its io_uring source too (default modes).
uring_test() {
    case $1 in io_* | process_wait_signals | fork_system_popen | preempt_exec | signals_parked_waits) return 0 ;; esac
    return 1
}
FILTERS=("$@")
# shellcheck source=scripts/differential.sh
source "$ROOT/scripts/differential.sh"
mkdir -p "$BIN_DIR"
runner_start run-c-tests "$TESTDIR/build/.lock"
SHIM_ACTIVE_EXE=$BIN_DIR/shim_active

shopt -s nullglob
select_tests run-c-tests "$TESTDIR"/*.c "$TESTDIR"/*.cc
# A test is rebuilt when it is older than its source, a shared helper or this script (the flags).
BUILD_DEPS=("$TESTDIR"/lib/*.h "$ROOT/scripts/run-c-tests.sh" "$ROOT/scripts/differential.sh")

# build SRC NAME: compiles into $BIN_DIR/NAME (`compile` of scripts/differential.sh) unless it is up to
# date; 0 on success.
build() {
    local src=$1 exe=$BIN_DIR/$2
    up_to_date "$exe" "$src" "${BUILD_DEPS[@]}" && return 0
    compile "$exe" "$src" "$BIN_DIR/$2.build.log"
}

# built SRC NAME: the program is there to run (built now, or by an earlier BUILD_ONLY run with NO_BUILD);
# a FAIL line for each reported mode when it is not.
built() {
    local src=$1 name=$2 m
    if [ -n "${NO_BUILD:-}" ]; then
        [ -x "$BIN_DIR/$name" ] && return 0
        for m in "${REPORT[@]}"; do fail "$name" "$m" "not built: no $BIN_DIR/$name (NO_BUILD is set)"; done
        return 1
    fi
    build "$src" "$name" && return 0
    for m in "${REPORT[@]}"; do fail "$name" "$m" "build failed (see $BIN_DIR/$name.build.log)"; done
    tail -n 20 "$BIN_DIR/$name.build.log" | indent
    return 1
}

# run NAME MODE LIMIT ARGS...: one run of the test program, in the repository, with MODE's environment.
run() {
    local name=$1 mode=$2 limit=$3
    shift 3
    # LD_PRELOAD is set by env right before exec'ing the test, so it does not apply to setsid or timeout.
    # shellcheck disable=SC2046  # the mode's assignments are separate words
    run_in_group "$ROOT" "$limit" "$OUT_DIR/$name.$mode.out" "$OUT_DIR/$name.$mode.err" \
        env -u LD_PRELOAD $(mode_env "$mode") "$BIN_DIR/$name" "$@"
}

if [ -n "${BUILD_ONLY:-}" ]; then
    REPORT=(build)
    build_shim_active "$BIN_DIR" || fail shim_active build "build failed (see $BIN_DIR/shim_active.build.log)"
    for src in "${TESTS[@]}"; do
        base=${src##*/}
        built "$src" "${base%.*}" && passed=$((passed + 1))
    done
    echo "$passed built, $failed failed"
    [ "$failed" -eq 0 ]
    exit
fi
[ -n "${NO_BUILD:-}" ] || build_shim_active "$BIN_DIR" || true

for src in "${TESTS[@]}"; do
    base=${src##*/}
    name=${base%.*}
    limit=$(marker "$src" timeout)
    limit=${limit:-60}
    modes=$(marker "$src" modes)
    if [ -z "$modes" ]; then
        modes=native,shim,shim-w1,shim-arch
        uring_test "$name" && modes=$modes,shim-uring
    fi
    args=$(marker "$src" args)
    expect=$(marker "$src" status)
    expect=${expect:-0}
    regexfile=$TESTDIR/$name.shim-stderr

    # Modes to report for this test.
    modes_to_report "$name" "$modes" || continue
    [ ${#REPORT[@]} -eq 0 ] && continue
    built "$src" "$name" || continue

    # shellcheck disable=SC2206  # the args marker is split into words on purpose
    RUN_EXTRA=($args)
    judge "$name" "$limit" "$expect" "$regexfile" "${REPORT[@]}"
done

summary
