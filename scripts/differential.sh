# The runner core shared by scripts/run-c-tests.sh and scripts/run-app-tests.sh (sourced, not run): the
# modes and their environment, the one-at-a-time lock, bounded runs in their own process group, the check
# that the shim really runs coroutines, and how a test's runs are judged against the native one.
#
# A runner sets ROOT, OUT_DIR (absolute; outputs go to OUT_DIR/NAME.MODE.out / .err), ALL_MODES, LIB and
# FILTERS (name globs), calls `runner_start RUNNER LOCKFILE`, and defines
#   run NAME MODE LIMIT EXTRA...   one run through `run_in_group`
# and, when it has something to stop at exit, `runner_cleanup`. Runs are made by run_in_group of
# scripts/common.sh (sourced here), the process control every script shares.

# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"

passed=0
failed=0
pass() { echo "PASS $1 [$2] ($3s)"; passed=$((passed + 1)); }
FAILURES=()
fail() { echo "FAIL $1 [$2]: $3"; failed=$((failed + 1)); FAILURES+=("$1 [$2]"); }
indent() { sed -e 's/^/    /'; }

# summary: the failed runs named again (a CI log may show only its tail), the closing line and the
# runner's exit status.
summary() {
    [ "$failed" -eq 0 ] || echo "failed: ${FAILURES[*]}"
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

# marker FILE KEY: value of the first `asyncshim-test: KEY=VALUE` marker (up to end of line or `*/`).
marker() {
    grep -o "asyncshim-test: $2=[^*]*" "$1" | head -n 1 | sed -e "s/^asyncshim-test: $2=//" -e 's/[[:space:]]*$//'
}

# describe STATUS: "exit N" or "status N = signal S (SIGNAME)".
describe() {
    if [ "$1" -gt 128 ] && [ "$1" -lt 160 ]; then
        echo "status $1 = signal $(($1 - 128)) (SIG$(kill -l $(($1 - 128)) 2>/dev/null))"
    else
        echo "exit $1"
    fi
}

# mode_env MODE: the environment assignments that make MODE (space-separated; empty for native).
mode_env() {
    case $1 in
        native) echo "" ;;
        shim) echo "LD_PRELOAD=$LIB" ;;
        shim-w1) echo "LD_PRELOAD=$LIB ASYNCSHIM_WORKERS=1" ;;
        shim-arch) echo "LD_PRELOAD=$LIB ASYNCSHIM_NO_FSGSBASE=1" ;;
        shim-uring) echo "LD_PRELOAD=$LIB ASYNCSHIM_IO=uring" ;;
    esac
}

# runner_start RUNNER LOCKFILE: one run of this kind at a time (concurrent runs would share binaries and
# output files and disturb each other's timings and thread counts; a second one waits), no core files
# from tests that die by a signal, the modes to report, and traps that end the run in progress (and call
# `runner_cleanup`) when the runner exits, also on Ctrl-C or TERM.
runner_start() {
    local runner=$1 lockfile=$2
    case $LIB in *[[:space:]]*) echo "$runner: the library path must not contain spaces: $LIB" >&2; exit 2 ;; esac
    mkdir -p "$OUT_DIR" "${lockfile%/*}"
    exec 9>"$lockfile"
    if ! flock -n 9; then
        echo "$runner: waiting for another $runner run to finish" >&2
        flock 9
    fi
    ulimit -c 0 2>/dev/null || true
    want_modes "$runner"
    exit_traps on_runner_exit
}

on_runner_exit() {
    stop_group
    if declare -F runner_cleanup >/dev/null; then runner_cleanup; fi
}

# up_to_date EXE SRC DEPS...: true when EXE exists and is newer than SRC and every DEP (headers, the
# scripts that choose the compiler flags).
up_to_date() {
    local exe=$1 dep
    shift
    [ -x "$exe" ] || return 1
    for dep in "$@"; do
        [ "$exe" -nt "$dep" ] || return 1
    done
}

# compile EXE SRC LOG FLAGS...: builds the test program (or helper) SRC into EXE the one way both runners
# do, compiler messages in LOG: `gcc -O2 -pthread -Wall -I c-tests/lib FLAGS... -ldl` ($CC), a *.cc with
# `g++ -std=gnu++17` ($CXX; C++17 is the default of Debian 12's g++, not of Debian 11's, where
# scripts/glibc-matrix.sh builds); FLAGS (include directories, libraries) follow the source. A stale EXE
# is removed first, so that a failed build leaves none behind.
compile() {
    local exe=$1 src=$2 log=$3
    shift 3
    rm -f "$exe"
    case $src in
        *.cc) "${CXX:-g++}" -std=gnu++17 -O2 -pthread -Wall -I"$ROOT/c-tests/lib" -o "$exe" "$src" "$@" -ldl >"$log" 2>&1 ;;
        *) "${CC:-gcc}" -O2 -pthread -Wall -I"$ROOT/c-tests/lib" -o "$exe" "$src" "$@" -ldl >"$log" 2>&1 ;;
    esac
}

# want_modes RUNNER: the modes to report, from MODES (a comma list of ALL_MODES) or all of them.
declare -A WANT_MODE=()
want_modes() {
    local m
    if [ -n "${MODES:-}" ]; then
        for m in ${MODES//,/ }; do
            case " $ALL_MODES " in
                *" $m "*) WANT_MODE[$m]=1 ;;
                *) echo "$1: unknown mode '$m' in MODES (known: $ALL_MODES)" >&2; exit 2 ;;
            esac
        done
    else
        for m in $ALL_MODES; do WANT_MODE[$m]=1; done
    fi
}

# modes_to_report NAME MODES_MARKER: sets REPORT to the marker's modes that are wanted; false (after a
# FAIL line) when the marker names an unknown mode.
modes_to_report() {
    local name=$1 modes=$2 m bad=""
    REPORT=()
    for m in ${modes//,/ }; do
        case " $ALL_MODES " in
            *" $m "*) [ -n "${WANT_MODE[$m]:-}" ] && REPORT+=("$m") ;;
            *) bad=$m ;;
        esac
    done
    if [ -n "$bad" ]; then
        fail "$name" "$bad" "unknown mode in marker 'modes=$modes'"
        return 1
    fi
}

# selected NAME: true when NAME matches one of FILTERS (all when there are none).
selected() {
    local name=$1 f
    [ ${#FILTERS[@]} -eq 0 ] && return 0
    for f in "${FILTERS[@]}"; do
        # shellcheck disable=SC2053
        [[ $name == $f ]] && return 0
    done
    return 1
}

# select_tests RUNNER FILES...: TESTS = the FILES whose name (file name without its extension) FILTERS
# select, sorted by path; exits 2 when none is.
select_tests() {
    local runner=$1 src name
    shift
    TESTS=()
    for src in "$@"; do
        name=${src##*/}
        name=${name%.*}
        selected "$name" && TESTS+=("$src")
    done
    if [ ${#TESTS[@]} -eq 0 ]; then
        echo "$runner: no test matches: ${FILTERS[*]}" >&2
        echo "0 passed, 0 failed"
        exit 2
    fi
    mapfile -t TESTS < <(printf '%s\n' "${TESTS[@]}" | sort)
}

# --- the shim is really active ---------------------------------------------------------------------
# A library that does not load makes every shim run fail on its own, but one that loads and passes
# through (its runtime off, every thread a real OS thread) gives exactly native's output: every
# differential test would pass without testing anything. So before the first run of each shim mode
# the runner runs c-tests/lib/shim_active.c in that mode (it checks asyncshim_is_active() and that 64
# blocked threads use at most workers + 8 OS threads); when it fails, that mode's runs of every test
# fail with its reason instead of being made.
SHIM_ACTIVE_SRC=$ROOT/c-tests/lib/shim_active.c
SHIM_ACTIVE_DEPS=("$ROOT"/c-tests/lib/*.h "$ROOT/scripts/differential.sh" "$ROOT/scripts/common.sh")
declare -A SHIM_INACTIVE=()   # mode -> why the shim is not active there ("" = checked, active)

# build_shim_active DIR: builds the check into DIR/shim_active unless it is up to date; 0 on success.
build_shim_active() {
    local exe=$1/shim_active
    up_to_date "$exe" "$SHIM_ACTIVE_SRC" "${SHIM_ACTIVE_DEPS[@]}" && return 0
    compile "$exe" "$SHIM_ACTIVE_SRC" "$1/shim_active.build.log"
}

# check_shim_active EXE MODE: runs the check once per mode (PASS/FAIL line `shim_active [MODE]`) and
# remembers the verdict; true when the shim is active in MODE.
check_shim_active() {
    local exe=$1 mode=$2 reason=""
    if [ -z "${SHIM_INACTIVE[$mode]+x}" ]; then
        if [ ! -f "$LIB" ]; then
            reason="library not found: $LIB (run cargo build --release, or MODES=native)"
        elif [ ! -x "$exe" ]; then
            reason="the check $exe is not built (see ${exe%/*}/shim_active.build.log)"
        else
            # shellcheck disable=SC2046  # the mode's assignments are separate words
            run_in_group "$OUT_DIR" 30 "$OUT_DIR/shim_active.$mode.out" "$OUT_DIR/shim_active.$mode.err" \
                env $(mode_env "$mode") "$exe"
            if [ "$RUN_STATUS" -ne 0 ]; then
                # (the loader's messages start with the program's path: left out)
                reason="$(describe "$RUN_STATUS"): $(cat "$OUT_DIR/shim_active.$mode.out" \
                    "$OUT_DIR/shim_active.$mode.err" 2>/dev/null | sed -e "s|^$exe: ||" | head -n 2 |
                    paste -sd ' ' | cut -c1-300)"
            fi
        fi
        SHIM_INACTIVE[$mode]=$reason
        if [ -z "$reason" ]; then
            pass shim_active "$mode" "$RUN_SECS"
        else
            fail shim_active "$mode" "the shim does not run coroutines in this mode: $reason"
        fi
    fi
    [ -z "${SHIM_INACTIVE[$mode]}" ]
}

# --- judging ----------------------------------------------------------------------------------------
show_failure() { # name mode
    local name=$1 mode=$2
    local out=$OUT_DIR/$name.$mode.out err=$OUT_DIR/$name.$mode.err
    if [ "$mode" != native ] && ! cmp -s "$OUT_DIR/$name.native.out" "$out"; then
        echo "  stdout diff (native vs $mode):"
        diff -u --label native --label "$mode" "$OUT_DIR/$name.native.out" "$out" | head -n 25 | indent
    elif [ "$mode" = native ]; then
        echo "  stdout tail:"
        tail -n 15 "$out" | indent
    fi
    if [ -s "$err" ]; then
        echo "  stderr tail ($err):"
        tail -n 12 "$err" | cut -c1-300 | indent
    fi
}

# judge NAME LIMIT EXPECT REGEXFILE MODES...: runs the native reference (which must end with EXPECT),
# then every other mode listed, each compared with it: same stdout byte for byte, same exit status,
# every regex line of REGEXFILE (if it exists) found in its stderr, nothing left behind. A shim mode in
# which the shim is not active (SHIM_ACTIVE_EXE, checked once per mode) fails without running. Extra
# arguments for `run` come from the array RUN_EXTRA.
judge() {
    local name=$1 limit=$2 expect=$3 regexfile=$4
    shift 4
    local -a modes=("$@")
    run "$name" native "$limit" "${RUN_EXTRA[@]}"
    local native_status=$RUN_STATUS native_ok=1 native_reason=""
    if [ "$RUN_TIMEDOUT" -eq 1 ]; then
        native_ok=0; native_reason="timed out after ${limit}s"
    elif [ "$native_status" -ne "$expect" ]; then
        native_ok=0; native_reason="$(describe "$native_status"), expected $(describe "$expect")"
    elif [ "$RUN_LEFTOVER" -eq 1 ]; then
        native_ok=0; native_reason="left processes behind (killed)"
    fi
    if [ -n "${WANT_MODE[native]:-}" ] && [[ " ${modes[*]} " == *" native "* ]]; then
        if [ $native_ok -eq 1 ]; then
            pass "$name" native "$RUN_SECS"
        else
            fail "$name" native "$native_reason"
            show_failure "$name" native
        fi
    fi
    local m re joined
    local -a reasons
    for m in "${modes[@]}"; do
        [ "$m" = native ] && continue
        if [ $native_ok -eq 0 ]; then
            fail "$name" "$m" "not run: the native reference run failed ($native_reason)"
            continue
        fi
        if ! check_shim_active "$SHIM_ACTIVE_EXE" "$m"; then
            fail "$name" "$m" "not run: the shim does not run coroutines in this mode (see shim_active [$m])"
            continue
        fi
        run "$name" "$m" "$limit" "${RUN_EXTRA[@]}"
        reasons=()
        if [ "$RUN_TIMEDOUT" -eq 1 ]; then
            reasons+=("timed out after ${limit}s")
        elif [ "$RUN_STATUS" -ne "$native_status" ]; then
            reasons+=("$(describe "$RUN_STATUS"), native $(describe "$native_status")")
        fi
        cmp -s "$OUT_DIR/$name.native.out" "$OUT_DIR/$name.$m.out" || reasons+=("stdout differs from native")
        if [ -f "$regexfile" ]; then
            while IFS= read -r re || [ -n "$re" ]; do
                [ -z "$re" ] && continue
                [[ $re == \#* ]] && continue
                grep -Eiq -e "$re" "$OUT_DIR/$name.$m.err" || reasons+=("stderr lacks /$re/")
            done <"$regexfile"
        fi
        [ "$RUN_LEFTOVER" -eq 1 ] && reasons+=("left processes behind (killed)")
        if [ ${#reasons[@]} -eq 0 ]; then
            pass "$name" "$m" "$RUN_SECS"
        else
            joined=$(printf '%s; ' "${reasons[@]}")
            fail "$name" "$m" "${joined%; }"
            show_failure "$name" "$m"
        fi
    done
}
