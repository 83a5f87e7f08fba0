#!/usr/bin/env bash
# asyncshim benchmarks: each C program in c-tests/bench runs natively and under the shim
# (LD_PRELOAD=target/release/libasyncshim.so). Prints a markdown table on stdout (progress goes to
# stderr) and writes bench/results/latest.json.
#
#   create_join.c  thread create + join latency (ns per pthread_create + pthread_join)
#   switch.c       two threads ping-ponging with sched_yield(): ns per yield. Shim: ASYNCSHIM_WORKERS=1;
#                  native: both threads pinned to one CPU, so both numbers are one-CPU switches
#   idle_mem.c     N idle (sleeping) threads: (RSS + page tables) growth per thread, OS threads, and the
#                  growth of KernelStack in /proc/meminfo (system-wide: disturbed by other processes)
#
# Environment:
#   QUICK=1          fewer iterations, one repetition (well under a minute)
#   BENCH_REPS=N     repetitions of the timing benchmarks, median reported (default 3; QUICK: 1)
#   BENCH_THREADS=N  threads for idle_mem (default 10000)
#   BENCH_TIMEOUT=S  time limit per run in seconds (default 60; QUICK: 30)
#   BENCH_OUT=PATH   JSON output (default bench/results/latest.json)
#
# Exit status: 0 when every native run worked (shim failures are reported in the table and the JSON),
# 1 otherwise.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC=$ROOT/c-tests/bench
BUILD=$ROOT/c-tests/build/bench
LIB=$ROOT/target/release/libasyncshim.so
OUT=${BENCH_OUT:-$ROOT/bench/results/latest.json}
QUICK=${QUICK:-0}

if [[ $QUICK == 1 ]]; then
    CJ_ITERS=5000; SW_ROUNDS=50000; MX_ITERS=2000000; MX_ROUNDS=20000; REPS=${BENCH_REPS:-1}; RUN_TIMEOUT=${BENCH_TIMEOUT:-30}
else
    CJ_ITERS=20000; SW_ROUNDS=200000; MX_ITERS=10000000; MX_ROUNDS=100000; REPS=${BENCH_REPS:-3}; RUN_TIMEOUT=${BENCH_TIMEOUT:-60}
fi
IDLE_N=${BENCH_THREADS:-10000}

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }
for v in REPS:BENCH_REPS RUN_TIMEOUT:BENCH_TIMEOUT IDLE_N:BENCH_THREADS; do
    var=${v%%:*}
    [[ ${!var} =~ ^[1-9][0-9]*$ ]] || die "${v#*:} must be a positive integer (got '${!var}')"
done
command -v gcc >/dev/null || die "gcc is required (scripts/install-deps.sh)"
command -v timeout >/dev/null || die "timeout (coreutils) is required"

# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
make_tmp bench

# --- build ------------------------------------------------------------------------------------------
mkdir -p "$BUILD" || die "cannot create $BUILD"
for p in create_join switch mutex idle_mem; do
    if [[ ! -x $BUILD/$p || $SRC/$p.c -nt $BUILD/$p || $SRC/bench_common.h -nt $BUILD/$p ]]; then
        gcc -O2 -pthread -Wall -o "$BUILD/$p" "$SRC/$p.c" -ldl || die "cannot build $SRC/$p.c"
    fi
done

SHIM_AVAILABLE=1
[[ -f $LIB ]] || { SHIM_AVAILABLE=0; log "library not built ($LIB missing): shim column will be n/a (run 'make build')"; }

# --- running ----------------------------------------------------------------------------------------
# run MODE OUTFILE PROGRAM ARGS... : one bounded run. MODE is native, shim or shim-w1.
# Returns the program's status; on failure leaves a one-line reason in $TMP/reason.
run() {
    local mode=$1 out=$2 rc
    shift 2
    local -a envs=(env -u LD_PRELOAD -u ASYNCSHIM -u ASYNCSHIM_WORKERS)
    case $mode in
        shim) envs+=("LD_PRELOAD=$LIB${LD_PRELOAD:+:$LD_PRELOAD}") ;;
        shim-w1) envs+=("LD_PRELOAD=$LIB${LD_PRELOAD:+:$LD_PRELOAD}" ASYNCSHIM_WORKERS=1) ;;
        native) [[ -n ${LD_PRELOAD:-} ]] && envs+=("LD_PRELOAD=$LD_PRELOAD") ;;
    esac
    run_bounded "$out" "$out.err" "${envs[@]}" "$@"
    rc=$?
    if [[ $rc -eq 124 || $rc -eq 137 ]]; then
        echo "timed out after ${RUN_TIMEOUT}s" >"$TMP/reason"
    elif [[ $rc -gt 128 ]]; then
        echo "killed by signal $((rc - 128)) ($(kill -l $((rc - 128)) 2>/dev/null || echo '?'))" >"$TMP/reason"
    elif [[ $rc -ne 0 ]]; then
        local last
        last=$(tail -n 1 "$out.err" 2>/dev/null | tr -d '\r' | cut -c1-120)
        echo "exit status $rc${last:+ ($last)}" >"$TMP/reason"
    fi
    if [[ $rc -ne 0 && -s $out.err ]]; then
        log "  $mode $(basename "$1") failed ($(cat "$TMP/reason")); its stderr ends with:"
        tail -n 5 "$out.err" | sed 's/^/bench:   | /' >&2
    fi
    return $rc
}

get() { sed -n "s/^$2=//p" "$1" 2>/dev/null | head -n 1; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

# Results: parallel arrays, one entry per table row.
R_KEY=() R_PROG=() R_LABEL=() R_UNIT=() R_NATIVE=() R_SHIM=() R_NSAMP=() R_SSAMP=() R_NERR=() R_SERR=()
NATIVE_FAILED=0
SHIM_INACTIVE=0

add_row() { # KEY LABEL UNIT NATIVE SHIM NATIVE_SAMPLES SHIM_SAMPLES NATIVE_ERR SHIM_ERR  (uses $PROG)
    R_KEY+=("$1"); R_PROG+=("$PROG"); R_LABEL+=("$2"); R_UNIT+=("$3"); R_NATIVE+=("$4"); R_SHIM+=("$5")
    R_NSAMP+=("$6"); R_SSAMP+=("$7"); R_NERR+=("$8"); R_SERR+=("$9")
}

# measure MODE REPS PROGRAM ARGS... -> sets M_FILES (the runs' outputs) and M_ERR (why it failed, or empty)
measure() {
    local mode=$1 reps=$2 i
    shift 2
    M_FILES=() M_ERR=""
    if [[ $mode != native && $SHIM_AVAILABLE -eq 0 ]]; then
        M_ERR="library not built"
        return
    fi
    for ((i = 1; i <= reps; i++)); do
        local f=$TMP/$(basename "$1").$mode.$i
        if run "$mode" "$f" "$@"; then
            M_FILES+=("$f")
            if [[ $mode != native && $(get "$f" shim_active) != 1 ]]; then SHIM_INACTIVE=1; fi
        else
            M_ERR=$(cat "$TMP/reason")
            [[ $mode == native ]] && NATIVE_FAILED=1
            return
        fi
    done
}

# values KEY -> the KEY values from M_FILES, space-separated
values() { local f; for f in "${M_FILES[@]}"; do get "$f" "$1"; done | tr '\n' ' ' | sed 's/ $//'; }

# timing_bench KEY LABEL UNIT METRIC SHIM_MODE PROGRAM ARGS...
timing_bench() {
    local key=$1 label=$2 unit=$3 metric=$4 smode=$5
    shift 5
    local nsamp ssamp nerr serr
    PROG=$(basename "$1")
    log "$key: native x$REPS ..."
    measure native "$REPS" "$@"
    nsamp=$(values "$metric"); nerr=$M_ERR
    log "$key: $smode x$REPS ..."
    measure "$smode" "$REPS" "$@"
    ssamp=$(values "$metric"); serr=$M_ERR
    [[ -n $nerr ]] && nsamp=""
    [[ -n $serr ]] && ssamp=""
    add_row "$key" "$label" "$unit" "$(median <<<"$nsamp")" "$(median <<<"$ssamp")" "$nsamp" "$ssamp" "$nerr" "$serr"
}

timing_bench create_join "thread create+join (ns/op)" "ns/op" ns_per_op shim \
    "$BUILD/create_join" "$CJ_ITERS"
timing_bench switch "sched_yield switch, 1 CPU (ns/yield)" "ns/yield" ns_per_yield shim-w1 \
    "$BUILD/switch" "$SW_ROUNDS"
timing_bench mutex_uncontended "mutex lock+unlock, uncontended (ns)" "ns/op" ns_per_lock_unlock shim \
    "$BUILD/mutex" "$MX_ITERS" 1000
timing_bench mutex_handoff "mutex+cond hand-off between 2 threads, 1 CPU (ns)" "ns/handoff" ns_per_handoff shim-w1 \
    "$BUILD/mutex" 1000 "$MX_ROUNDS"

# idle_mem: one run per mode, several rows from it.
PROG=idle_mem
log "idle_mem ($IDLE_N threads): native ..."
measure native 1 "$BUILD/idle_mem" "$IDLE_N"; IN_FILES=("${M_FILES[@]}"); IN_ERR=$M_ERR
log "idle_mem ($IDLE_N threads): shim ..."
measure shim 1 "$BUILD/idle_mem" "$IDLE_N"; IS_FILES=("${M_FILES[@]}"); IS_ERR=$M_ERR
idle_row() { # KEY LABEL UNIT METRIC
    local n="" s=""
    [[ -z $IN_ERR && ${#IN_FILES[@]} -gt 0 ]] && n=$(get "${IN_FILES[0]}" "$4")
    [[ -z $IS_ERR && ${#IS_FILES[@]} -gt 0 ]] && s=$(get "${IS_FILES[0]}" "$4")
    add_row "$1" "$2" "$3" "$n" "$s" "$n" "$s" "$IN_ERR" "$IS_ERR"
}
idle_row idle_mem "idle thread: RSS + page tables (bytes/thread)" "bytes/thread" bytes_per_thread
idle_row idle_mem_rss "idle thread: RSS (bytes/thread)" "bytes/thread" rss_bytes_per_thread
idle_row idle_mem_pte "idle thread: page tables (bytes/thread)" "bytes/thread" pte_bytes_per_thread
idle_row idle_kstack "idle thread: kernel stack (bytes/thread, system-wide delta, noisy)" "bytes/thread" kernel_stack_bytes_per_thread
idle_row idle_os_threads "OS threads with $IDLE_N idle threads" "threads" os_threads
idle_row idle_create "create $IDLE_N idle threads (ms)" "ms" create_ms

# --- report -----------------------------------------------------------------------------------------
ratio() { # SHIM NATIVE -> shim/native
    if [[ -z $1 || -z $2 ]]; then echo ""; return; fi
    awk -v s="$1" -v n="$2" 'BEGIN { if (n == 0) print ""; else printf "%.4g", s / n }'
}
rfmt() { # ratio for the table: 0.031x, 0.45x, 1.03x, 12.5x
    [[ -z $1 ]] && { echo "n/a"; return; }
    awk -v r="$1" 'BEGIN { if (r >= 10) printf "%.1fx", r; else if (r >= 0.1) printf "%.2fx", r; else printf "%.2gx", r }'
}
num() { # pretty number for the table
    [[ -z $1 ]] && { echo "n/a"; return; }
    awk -v v="$1" 'BEGIN { if (v == int(v) || v >= 100) printf "%.0f", v; else printf "%.1f", v }'
}

KERNEL=$(uname -r)
NPROC=$(nproc)
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
[[ -z $CPU ]] && CPU=$(uname -m)
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)

echo "## asyncshim benchmarks"
echo
echo "$DATE, Linux $KERNEL, $NPROC CPUs, $CPU$([[ $QUICK == 1 ]] && echo ', QUICK=1')."
echo "Timing rows: median of $REPS run(s). Ratio = shim / native (below 1: the shim is cheaper)."
echo
echo "| benchmark | native | shim | ratio |"
echo "|---|---:|---:|---:|"
for i in "${!R_KEY[@]}"; do
    n=$(num "${R_NATIVE[$i]}"); s=$(num "${R_SHIM[$i]}")
    [[ -n ${R_NERR[$i]} ]] && n="failed"
    [[ -n ${R_SERR[$i]} ]] && s="failed"
    [[ ${R_SERR[$i]} == "library not built" ]] && s="n/a"
    r=$(rfmt "$(ratio "${R_SHIM[$i]}" "${R_NATIVE[$i]}")")
    echo "| ${R_LABEL[$i]} | $n | $s | $r |"
done
echo
notes=()
[[ $SHIM_AVAILABLE -eq 0 ]] && notes+=("Shim: library not built ($LIB); run \`make build\`.")
declare -A seen=()
for i in "${!R_KEY[@]}"; do
    for side in native shim; do
        if [[ $side == native ]]; then e=${R_NERR[$i]}; else e=${R_SERR[$i]}; fi
        [[ -z $e || $e == "library not built" ]] && continue
        k="${R_PROG[$i]}/$side"
        [[ -n ${seen[$k]:-} ]] && continue
        seen[$k]=1
        notes+=("${R_PROG[$i]} ($side) failed: $e.")
    done
done
[[ $SHIM_INACTIVE -eq 1 ]] && notes+=("Warning: under LD_PRELOAD a program did not see asyncshim_is_active() return 1; the shim numbers may be native ones.")
notes+=("switch: native pins both threads to one CPU; the shim runs with ASYNCSHIM_WORKERS=1.")
notes+=("mutex hand-off: native pins both threads to one CPU; the shim runs with ASYNCSHIM_WORKERS=1.")
for n in "${notes[@]}"; do echo "- $n"; done

# --- JSON -------------------------------------------------------------------------------------------
json_str() { # JSON string literal
    local s=$1
    s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\t'/ }; s=${s//$'\n'/ }; s=${s//$'\r'/}
    printf '"%s"' "$s"
}
json_num() { [[ -z $1 ]] && printf 'null' || printf '%s' "$1"; }
json_arr() { local first=1 v; printf '['; for v in $1; do ((first)) || printf ', '; first=0; printf '%s' "$v"; done; printf ']'; }

mkdir -p "$(dirname "$OUT")" || die "cannot create $(dirname "$OUT")"
{
    printf '{\n'
    printf '  "date": %s,\n' "$(json_str "$DATE")"
    printf '  "quick": %s,\n' "$([[ $QUICK == 1 ]] && echo true || echo false)"
    printf '  "machine": {"kernel": %s, "nproc": %s, "cpu": %s},\n' "$(json_str "$KERNEL")" "$NPROC" "$(json_str "$CPU")"
    printf '  "library": %s,\n' "$(json_str "$LIB")"
    printf '  "shim_available": %s,\n' "$([[ $SHIM_AVAILABLE -eq 1 ]] && echo true || echo false)"
    printf '  "shim_detected_active": %s,\n' "$([[ $SHIM_AVAILABLE -eq 1 && $SHIM_INACTIVE -eq 0 ]] && echo true || echo false)"
    printf '  "config": {"repetitions": %s, "create_join_iterations": %s, "switch_rounds": %s, "idle_threads": %s, "timeout_s": %s},\n' \
        "$REPS" "$CJ_ITERS" "$SW_ROUNDS" "$IDLE_N" "$RUN_TIMEOUT"
    printf '  "results": [\n'
    last=$((${#R_KEY[@]} - 1))
    for i in "${!R_KEY[@]}"; do
        printf '    {"benchmark": %s, "program": %s, "label": %s, "unit": %s, "native": %s, "shim": %s, "ratio": %s, ' \
            "$(json_str "${R_KEY[$i]}")" "$(json_str "${R_PROG[$i]}.c")" "$(json_str "${R_LABEL[$i]}")" "$(json_str "${R_UNIT[$i]}")" \
            "$(json_num "${R_NATIVE[$i]}")" "$(json_num "${R_SHIM[$i]}")" \
            "$(json_num "$(ratio "${R_SHIM[$i]}" "${R_NATIVE[$i]}")")"
        printf '"native_samples": %s, "shim_samples": %s, "native_error": %s, "shim_error": %s}' \
            "$(json_arr "${R_NSAMP[$i]}")" "$(json_arr "${R_SSAMP[$i]}")" \
            "$([[ -n ${R_NERR[$i]} ]] && json_str "${R_NERR[$i]}" || echo null)" \
            "$([[ -n ${R_SERR[$i]} ]] && json_str "${R_SERR[$i]}" || echo null)"
        [[ $i -lt $last ]] && printf ','
        printf '\n'
    done
    printf '  ]\n}\n'
} >"$OUT.tmp" && mv "$OUT.tmp" "$OUT" || die "cannot write $OUT"
log "wrote ${OUT#"$ROOT"/}"

[[ $NATIVE_FAILED -eq 0 ]]
