#!/usr/bin/env bash
# Differential application test runner for asyncshim (the contract is in c-tests/README.md, section
# "Application tests").
#
#   scripts/run-app-tests.sh [FILTER...]
#
# Every c-tests/apps/NAME.sh (except lib.sh) is a test: a bash script that runs real programs, putting
# the program under test under the shim through `shimmed` (lib.sh) / $SHIM_ENV. It runs once per mode
# of its `asyncshim-test: modes=` marker (default native,shim,shim-w1):
#   native   SHIM_ENV empty (the reference)
#   shim     SHIM_ENV="LD_PRELOAD=/abs/libasyncshim.so"
#   shim-w1  SHIM_ENV="LD_PRELOAD=/abs/libasyncshim.so ASYNCSHIM_WORKERS=1"
# The script itself always runs natively. Pass rules are those of scripts/run-c-tests.sh: each shim
# mode's stdout equals native's byte for byte, its exit status equals native's, native exits with the
# `status=` marker (default 0), every regex of c-tests/apps/NAME.shim-stderr matches a shim mode's
# stderr (grep -Ei), every run is bounded by `setsid timeout -k 5 LIMIT` (marker `timeout=`, default
# 120) and leaves nothing in its process group.
#
# c-tests/apps/*.c are helper programs (not tests), built into $APPS_BUILD with gcc -O2 -pthread, plus
# the MariaDB client library when the source contains `asyncshim-test: link=mariadb`.
# Services a test lists in `asyncshim-test: needs=` (e.g. mariadb) are started once, by
# scripts/SERVICE.sh start, only when a selected test needs them, and stopped when the runner exits.
#
# FILTER: test names or shell globs; default all tests.
# Environment: MODES=native[,shim][,shim-w1] (only report these), SHIM_LIB=PATH, CC (default gcc).
# Output: `PASS name [mode] (secs)` / `FAIL name [mode]: reason` lines, then `N passed, M failed`;
# exit status 1 when anything failed, 2 for a filter that matches nothing.
set -u
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
APPS_DIR=$ROOT/c-tests/apps
APPS_BUILD=$ROOT/c-tests/build/apps
LIB=${SHIM_LIB:-$ROOT/target/release/libasyncshim.so}
case $LIB in /*) ;; *) LIB=$ROOT/$LIB ;; esac
CC=${CC:-gcc}
PY=/usr/bin/python3
ALL_MODES="native shim shim-w1"
export APPS_DIR APPS_BUILD PY ROOT
mkdir -p "$APPS_BUILD"
# One app-test run at a time: runs share $APPS_BUILD, and tests check timings and thread counts that
# a concurrent run would disturb. The lock is released when this script exits.
exec 9>"$APPS_BUILD/.lock"
if ! flock -n 9; then
    echo "run-app-tests: waiting for another run-app-tests.sh to finish" >&2
    flock 9
fi
ulimit -c 0 2>/dev/null || true

OUT_DIR=$APPS_BUILD
# shellcheck source=scripts/differential.sh
source "$ROOT/scripts/differential.sh"
want_modes run-app-tests

FILTERS=("$@")

shopt -s nullglob
TESTS=()
for src in "$APPS_DIR"/*.sh; do
    name=${src##*/}
    name=${name%.sh}
    [ "$name" = lib ] && continue
    selected "$name" && TESTS+=("$src")
done
if [ ${#TESTS[@]} -eq 0 ]; then
    echo "run-app-tests: no test matches: $*" >&2
    echo "0 passed, 0 failed"
    exit 2
fi
mapfile -t TESTS < <(printf '%s\n' "${TESTS[@]}" | sort)

# --- helper programs ------------------------------------------------------------------------------
# Built before any test runs (they are cheap); a helper that fails to build is reported as a failure of
# its own and the tests that use it then fail on their own account.
HEADERS=("$APPS_DIR"/*.h "$ROOT"/c-tests/*.h)
build_helper() { # src -> 0 when $APPS_BUILD/NAME is up to date or built
    local src=$1 name exe log h newer=0
    name=${src##*/}
    name=${name%.c}
    exe=$APPS_BUILD/$name
    log=$APPS_BUILD/$name.build.log
    if [ -x "$exe" ] && [ "$exe" -nt "$src" ] && [ "$exe" -nt "$0" ]; then
        for h in "${HEADERS[@]}"; do [ "$h" -nt "$exe" ] && newer=1; done
        [ $newer -eq 0 ] && return 0
    fi
    rm -f "$exe"
    local -a extra=()
    if grep -q 'asyncshim-test: link=mariadb' "$src"; then
        # shellcheck disable=SC2207
        extra=($(mariadb_config --cflags --libs 2>>"$log")) || return 1
    fi
    "$CC" -O2 -pthread -Wall -I"$ROOT/c-tests" -I"$APPS_DIR" -o "$exe" "$src" "${extra[@]}" -ldl >"$log" 2>&1
}
for src in "$APPS_DIR"/*.c; do
    if ! build_helper "$src"; then
        hname=${src##*/}
        fail "build:${hname%.c}" build "helper failed to build (see $APPS_BUILD/${hname%.c}.build.log)"
        tail -n 20 "$APPS_BUILD/${hname%.c}.build.log" | indent
    fi
done

# --- services -------------------------------------------------------------------------------------
# Union of the needs of the selected tests (and of the modes that will actually run).
declare -A SERVICE_STATE=()   # name -> state dir (started) or "" (failed)
SERVICES_STARTED=()
stop_services() {
    local s
    for s in "${SERVICES_STARTED[@]}"; do
        STATE_DIR=${SERVICE_STATE[$s]} "$ROOT/scripts/$s.sh" stop >/dev/null 2>&1 || true
    done
    SERVICES_STARTED=()
}
CURRENT_RUN=""   # process group of the run in progress, killed if the runner itself is stopped
on_runner_exit() {
    if [ -n "$CURRENT_RUN" ] && kill -0 -- "-$CURRENT_RUN" 2>/dev/null; then
        kill -TERM -- "-$CURRENT_RUN" 2>/dev/null
        sleep 1
        kill -KILL -- "-$CURRENT_RUN" 2>/dev/null
    fi
    stop_services
}
trap 'on_runner_exit' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
start_service() { # name -> 0 when running; its env file is $STATE_DIR/env
    local s=$1 dir=$APPS_BUILD/svc-$1
    [ -n "${SERVICE_STATE[$s]+x}" ] && [ -n "${SERVICE_STATE[$s]}" ] && return 0
    [ -n "${SERVICE_STATE[$s]+x}" ] && return 1
    if [ ! -x "$ROOT/scripts/$s.sh" ]; then
        echo "run-app-tests: unknown service '$s' (no scripts/$s.sh)" >&2
        SERVICE_STATE[$s]=""
        return 1
    fi
    echo "run-app-tests: starting service $s" >&2
    # The service is started outside every test's process group (and natively): it is shared by all
    # tests and modes, and its own start/stop script owns its processes by PID.
    if STATE_DIR=$dir env -u LD_PRELOAD "$ROOT/scripts/$s.sh" start >"$APPS_BUILD/svc-$s.log" 2>&1 </dev/null 9>&-; then
        SERVICE_STATE[$s]=$dir
        SERVICES_STARTED+=("$s")
        return 0
    fi
    echo "run-app-tests: service $s failed to start:" >&2
    tail -n 20 "$APPS_BUILD/svc-$s.log" | indent >&2
    SERVICE_STATE[$s]=""
    return 1
}

# --- running --------------------------------------------------------------------------------------
# run NAME MODE LIMIT SERVICE_ENV...: one run; sets RUN_STATUS, RUN_SECS, RUN_TIMEDOUT, RUN_LEFTOVER.
run() {
    local name=$1 mode=$2 limit=$3
    shift 3
    local out=$APPS_BUILD/$name.$mode.out err=$APPS_BUILD/$name.$mode.err
    local tmp=$APPS_BUILD/tmp/$name.$mode shim_env=""
    case $mode in
        shim) shim_env="LD_PRELOAD=$LIB" ;;
        shim-w1) shim_env="LD_PRELOAD=$LIB ASYNCSHIM_WORKERS=1" ;;
    esac
    rm -rf "$tmp"
    mkdir -p "$tmp"
    local t0=$EPOCHREALTIME
    # As in run-c-tests.sh: setsid gives the run its own session and process group (pgid = this job's
    # pid), which timeout signals as a whole at the limit. The script runs natively (LD_PRELOAD unset);
    # it applies SHIM_ENV only to the programs under test. It starts in its own scratch directory.
    # Under `make test` the outer make's MAKELEVEL/MAKEFLAGS would reach the tests' own make runs (which
    # then print "Entering directory" lines with the per-mode scratch path): the tests get a clean slate.
    (cd "$tmp" && exec setsid timeout -k 5 "$limit" env -u LD_PRELOAD -u ASYNCSHIM_WORKERS \
        -u MAKELEVEL -u MAKEFLAGS -u MFLAGS -u MAKEOVERRIDES \
        MODE="$mode" SHIM_ENV="$shim_env" SHIM_LIB="$LIB" TEST_TMP="$tmp" "$@" \
        bash "$APPS_DIR/$name.sh" </dev/null >"$out" 2>"$err" 9>&-) &
    local pid=$!
    CURRENT_RUN=$pid
    wait "$pid" 2>/dev/null
    RUN_STATUS=$?
    local t1=$EPOCHREALTIME
    RUN_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    RUN_TIMEDOUT=0
    if [ "$RUN_STATUS" -eq 124 ] ||
        { [ "$RUN_STATUS" -eq 137 ] && awk -v s="$RUN_SECS" -v l="$limit" 'BEGIN { exit !(s >= l) }'; }; then
        RUN_TIMEDOUT=1
    fi
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
    CURRENT_RUN=""
}

show_failure() { # name mode
    local name=$1 mode=$2
    local out=$APPS_BUILD/$name.$mode.out err=$APPS_BUILD/$name.$mode.err
    if [ "$mode" != native ] && ! cmp -s "$APPS_BUILD/$name.native.out" "$out"; then
        echo "  stdout diff (native vs $mode):"
        diff -u --label native --label "$mode" "$APPS_BUILD/$name.native.out" "$out" | head -n 25 | indent
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
    name=${src##*/}
    name=${name%.sh}
    limit=$(marker "$src" timeout)
    limit=${limit:-120}
    modes=$(marker "$src" modes)
    modes=${modes:-native,shim,shim-w1}
    expect=$(marker "$src" status)
    expect=${expect:-0}
    needs=$(marker "$src" needs)
    regexfile=$APPS_DIR/$name.shim-stderr

    modes_to_report "$name" "$modes" || continue
    [ ${#REPORT[@]} -eq 0 ] && continue

    # Services: their env files become the test's environment (KEY=VALUE lines).
    svc_env=()
    svc_bad=""
    for s in ${needs//,/ }; do
        if start_service "$s"; then
            while IFS= read -r line; do
                [[ $line == *=* ]] && svc_env+=("$line")
            done <"${SERVICE_STATE[$s]}/env"
        else
            svc_bad=$s
        fi
    done
    if [ -n "$svc_bad" ]; then
        for m in "${REPORT[@]}"; do fail "$name" "$m" "service $svc_bad failed to start (see $APPS_BUILD/svc-$svc_bad.log)"; done
        continue
    fi

    RUN_EXTRA=("${svc_env[@]}")
    judge "$name" "$limit" "$expect" "$regexfile" "${REPORT[@]}"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
