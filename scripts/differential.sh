# Shared by scripts/run-c-tests.sh and scripts/run-app-tests.sh (sourced, not run): how a test's runs are
# judged. The runner defines
#   run NAME MODE LIMIT EXTRA...   one run; sets RUN_STATUS, RUN_SECS, RUN_TIMEDOUT, RUN_LEFTOVER and leaves
#                                  stdout/stderr in $OUT_DIR/NAME.MODE.out / .err
#   show_failure NAME MODE         what to print under a FAIL line
# and the globals LIB (the library), OUT_DIR, ALL_MODES and FILTERS (name globs); `want_modes` fills
# WANT_MODE from the MODES environment variable.

passed=0
failed=0
pass() { echo "PASS $1 [$2] ($3s)"; passed=$((passed + 1)); }
fail() { echo "FAIL $1 [$2]: $3"; failed=$((failed + 1)); }
indent() { sed -e 's/^/    /'; }

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

# judge NAME LIMIT EXPECT REGEXFILE MODES...: runs the native reference (which must end with EXPECT),
# then every other mode listed, each compared with it: same stdout byte for byte, same exit status,
# every regex line of REGEXFILE (if it exists) found in its stderr, nothing left behind. Extra arguments
# for `run` come from the array RUN_EXTRA.
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
        if [ ! -f "$LIB" ]; then
            fail "$name" "$m" "library not found: $LIB (run cargo build --release, or MODES=native)"
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
