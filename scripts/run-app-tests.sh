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
OUT_DIR=$APPS_BUILD
LIB=${SHIM_LIB:-$ROOT/target/release/libasyncshim.so}
case $LIB in /*) ;; *) LIB=$ROOT/$LIB ;; esac
CC=${CC:-gcc}
PY=/usr/bin/python3
ALL_MODES="native shim shim-w1"
FILTERS=("$@")
export APPS_DIR APPS_BUILD PY ROOT
# shellcheck source=scripts/differential.sh
source "$ROOT/scripts/differential.sh"
# One app-test run at a time: runs share $APPS_BUILD, and tests check timings and thread counts that
# a concurrent run would disturb.
runner_start run-app-tests "$APPS_BUILD/.lock"
SHIM_ACTIVE_EXE=$APPS_BUILD/shim_active
build_shim_active "$APPS_BUILD" || true

shopt -s nullglob
APP_SCRIPTS=()
for src in "$APPS_DIR"/*.sh; do [ "${src##*/}" = lib.sh ] || APP_SCRIPTS+=("$src"); done
select_tests run-app-tests "${APP_SCRIPTS[@]}"

# --- helper programs ------------------------------------------------------------------------------
# Built before any test runs (they are cheap); a helper that fails to build is reported as a failure of
# its own and the tests that use it then fail on their own account.
BUILD_DEPS=("$APPS_DIR"/*.h "$ROOT"/c-tests/lib/*.h "$ROOT/scripts/run-app-tests.sh" "$ROOT/scripts/differential.sh")
build_helper() { # src -> 0 when $APPS_BUILD/NAME is up to date or built
    local src=$1 name exe log
    name=${src##*/}
    name=${name%.c}
    exe=$APPS_BUILD/$name
    log=$APPS_BUILD/$name.build.log
    up_to_date "$exe" "$src" "${BUILD_DEPS[@]}" && return 0
    local -a extra=()
    if grep -q 'asyncshim-test: link=mariadb' "$src"; then
        # shellcheck disable=SC2207
        extra=($(mariadb_config --cflags --libs 2>"$log")) || { rm -f "$exe"; return 1; }
    fi
    compile "$exe" "$src" "$log" -I"$APPS_DIR" "${extra[@]}"
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
runner_cleanup() { stop_services; }
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
# run NAME MODE LIMIT SERVICE_ENV...: one run of the test script, natively, in a fresh scratch directory;
# it applies SHIM_ENV only to the programs under test.
run() {
    local name=$1 mode=$2 limit=$3
    shift 3
    local tmp=$APPS_BUILD/tmp/$name.$mode
    rm -rf "$tmp"
    mkdir -p "$tmp"
    # Under `make test` the outer make's MAKELEVEL/MAKEFLAGS would reach the tests' own make runs (which
    # then print "Entering directory" lines with the per-mode scratch path): the tests get a clean slate.
    run_in_group "$tmp" "$limit" "$APPS_BUILD/$name.$mode.out" "$APPS_BUILD/$name.$mode.err" \
        env -u LD_PRELOAD -u ASYNCSHIM_WORKERS -u MAKELEVEL -u MAKEFLAGS -u MFLAGS -u MAKEOVERRIDES \
        MODE="$mode" SHIM_ENV="$(mode_env "$mode")" SHIM_LIB="$LIB" TEST_TMP="$tmp" "$@" \
        bash "$APPS_DIR/$name.sh"
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

summary
