#!/usr/bin/env bash
# asyncshim demo: the threads of an unmodified C program become coroutines.
#
# Builds c-tests/demo/sleepers.c (gcc -O2 -pthread), then runs it twice, natively and under the shim
# (through the launcher target/release/asyncshim). The program starts DEMO_THREADS threads (default
# 10000) that each sleep 20 x 100 ms; while all are alive it reads OS threads, RSS and page tables from
# /proc/self/status. The two runs are printed side by side, with a one-line conclusion.
#
# Environment:
#   DEMO_THREADS=N    number of threads (default 10000)
#   DEMO_WORKERS=N    passed as --workers to the launcher (default: the shim's default, online CPUs)
#   DEMO_TIMEOUT=S    time limit per run in seconds (default 20)
#   DEMO_STRICT=1     exit 1 when the shim run fails (default: report it and exit 0)
#
# Exit status: 0 when the native run worked (and the shim run too with DEMO_STRICT=1), 1 otherwise.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${DEMO_THREADS:-10000}
RUN_TIMEOUT=${DEMO_TIMEOUT:-20}
WORKERS=${DEMO_WORKERS:-}
SRC=$ROOT/c-tests/demo/sleepers.c
BUILD=$ROOT/c-tests/build/demo
BIN=$BUILD/sleepers
LAUNCHER=$ROOT/target/release/asyncshim
LIB=$ROOT/target/release/libasyncshim.so

die() { echo "demo: $*" >&2; exit 1; }
[[ $N =~ ^[1-9][0-9]*$ ]] || die "DEMO_THREADS must be a positive integer (got '$N')"
[[ $RUN_TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "DEMO_TIMEOUT must be a positive integer (got '$RUN_TIMEOUT')"
[[ -z $WORKERS || $WORKERS =~ ^[1-9][0-9]*$ ]] || die "DEMO_WORKERS must be a positive integer (got '$WORKERS')"
command -v gcc >/dev/null || die "gcc is required (scripts/install-deps.sh)"
command -v timeout >/dev/null || die "timeout (coreutils) is required"

# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
make_tmp demo


# get FILE KEY : the value of KEY=... in FILE (empty when absent).
get() { sed -n "s/^$2=//p" "$1" 2>/dev/null | head -n 1; }

describe_failure() { # RC ERRFILE
    local rc=$1 err=$2
    if [[ $rc -eq 124 || $rc -eq 137 ]]; then
        echo "timed out after ${RUN_TIMEOUT}s"
    elif [[ $rc -gt 128 ]]; then
        echo "killed by signal $((rc - 128)) ($(kill -l $((rc - 128)) 2>/dev/null || echo '?'))"
    else
        echo "exit status $rc"
    fi
    if [[ -s $err ]]; then
        echo "  last lines of its stderr:"
        tail -n 8 "$err" | sed 's/^/    | /'
    fi
}

# --- build ------------------------------------------------------------------------------------------
mkdir -p "$BUILD" || die "cannot create $BUILD"
if [[ ! -x $BIN || $SRC -nt $BIN ]]; then
    gcc -O2 -pthread -Wall -o "$BIN" "$SRC" -ldl || die "cannot build $SRC"
fi

echo "asyncshim demo: $N threads, each sleeping 20 x 100 ms; measured while all of them are alive"
echo "machine: $(nproc) CPUs, Linux $(uname -r), $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo

# --- native -----------------------------------------------------------------------------------------
echo "running natively ..."
run_bounded "$TMP/native.out" "$TMP/native.err" "$BIN" "$N"
native_rc=$?
native_ok=1
if [[ $native_rc -ne 0 ]]; then
    native_ok=0
    echo "native run FAILED: $(describe_failure "$native_rc" "$TMP/native.err")"
fi

# --- shim -------------------------------------------------------------------------------------------
shim_ok=0
shim_note=""
if [[ ! -f $LIB ]]; then
    shim_note="library not built ($LIB missing): run 'make build' (cargo build --release)"
else
    if [[ -x $LAUNCHER ]]; then
        shim_cmd=("$LAUNCHER")
        [[ -n $WORKERS ]] && shim_cmd+=(--workers "$WORKERS")
        shim_cmd+=(-- "$BIN" "$N")
        how="target/release/asyncshim${WORKERS:+ --workers $WORKERS} -- sleepers $N"
    else
        # Launcher not built: preload the library directly.
        shim_cmd=(env "LD_PRELOAD=$LIB${LD_PRELOAD:+:$LD_PRELOAD}")
        [[ -n $WORKERS ]] && shim_cmd+=("ASYNCSHIM_WORKERS=$WORKERS")
        shim_cmd+=("$BIN" "$N")
        how="LD_PRELOAD=target/release/libasyncshim.so sleepers $N (launcher not built)"
    fi
    echo "running under the shim: $how ..."
    run_bounded "$TMP/shim.out" "$TMP/shim.err" "${shim_cmd[@]}"
    shim_rc=$?
    if [[ $shim_rc -eq 0 ]]; then
        shim_ok=1
    else
        shim_note="shim run FAILED: $(describe_failure "$shim_rc" "$TMP/shim.err")"
        # Partial numbers are still shown when the program got as far as printing them.
    fi
fi
echo

# --- table ------------------------------------------------------------------------------------------
# row LABEL NATIVE SHIM
row() { printf '  %-26s %14s %14s\n' "$1" "$2" "$3"; }
# fmt KEY SCALE DECIMALS SIDE : KEY from SIDE's output divided by SCALE, or "-".
fmt() {
    local v
    v=$(get "$TMP/$4.out" "$1")
    if [[ -z $v || $v == -1 ]]; then echo "-"; return; fi
    awk -v v="$v" -v s="$2" -v d="$3" 'BEGIN { printf "%.*f", d, v / s }'
}
row "" "native" "shim"
row "" "--------" "--------"
row "OS threads (all alive)" "$(fmt os_threads 1 0 native)" "$(fmt os_threads 1 0 shim)"
row "RSS MB" "$(fmt rss_kb 1024 1 native)" "$(fmt rss_kb 1024 1 shim)"
row "page tables KB" "$(fmt pte_kb 1 0 native)" "$(fmt pte_kb 1 0 shim)"
# Every OS thread also has a 16 KiB kernel stack (x86-64 THREAD_SIZE), which RSS does not show.
row "kernel stacks MB" "$(fmt os_threads 64 1 native)" "$(fmt os_threads 64 1 shim)"
row "create time ms" "$(fmt create_ms 1 1 native)" "$(fmt create_ms 1 1 shim)"
row "total s" "$(fmt total_ms 1000 2 native)" "$(fmt total_ms 1000 2 shim)"
row "TLS check errors" "$(fmt tls_errors 1 0 native)" "$(fmt tls_errors 1 0 shim)"
echo

# --- conclusion -------------------------------------------------------------------------------------
[[ -n $shim_note ]] && echo "$shim_note"
if [[ $native_ok -eq 1 && $shim_ok -eq 1 ]]; then
    nt=$(get "$TMP/native.out" os_threads); st=$(get "$TMP/shim.out" os_threads)
    active=$(get "$TMP/shim.out" shim_active)
    awk -v n="$N" -v nt="$nt" -v st="$st" \
        -v nm="$(get "$TMP/native.out" rss_kb)" -v sm="$(get "$TMP/shim.out" rss_kb)" \
        -v np="$(get "$TMP/native.out" pte_kb)" -v sp="$(get "$TMP/shim.out" pte_kb)" \
        -v nk="$(get "$TMP/native.out" os_threads)" -v sk="$(get "$TMP/shim.out" os_threads)" \
        -v nc="$(get "$TMP/native.out" create_ms)" -v sc="$(get "$TMP/shim.out" create_ms)" '
        function ratio(a, b,   r) {
            if (b <= 0) return "-";
            r = a / b;
            if (r >= 1) return sprintf("%.1fx less", r);
            return sprintf("%.1fx more", 1 / r);
        }
        BEGIN {
            if (st + 0 < nt / 2) {
                printf "Conclusion: under asyncshim the %d threads ran as coroutines on %d OS threads instead of %d, " \
                       "using %s memory (RSS + page tables + kernel stacks) and %s creation time, with every " \
                       "thread sleeping and waking correctly.\n", n, st, nt, ratio(nm + np + 16 * nk, sm + sp + 16 * sk),
                       (sc > 0 ? (nc / sc >= 1 ? sprintf("%.1fx less", nc / sc) : sprintf("%.1fx more", sc / nc)) : "-");
            } else {
                printf "Conclusion: the shim run worked but still used %d OS threads for %d threads: the threads " \
                       "did NOT become coroutines (is the M:N runtime enabled?).\n", st, n;
            }
        }'
    [[ $active == 1 ]] || echo "(note: the program did not see asyncshim_is_active() return 1)"
elif [[ $native_ok -eq 1 ]]; then
    echo "Conclusion: natively $N threads cost $(get "$TMP/native.out" os_threads) OS threads and" \
         "$(fmt rss_kb 1024 1 native) MB RSS + $(fmt pte_kb 1 0 native) KB page tables; the shim half did not run" \
         "(see above)."
else
    echo "Conclusion: the native run failed (see above); no comparison."
fi

if [[ $native_ok -ne 1 ]]; then exit 1; fi
if [[ $shim_ok -ne 1 && ${DEMO_STRICT:-0} == 1 ]]; then exit 1; fi
exit 0
