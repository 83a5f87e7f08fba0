#!/usr/bin/env bash
# asyncshim benchmarks, one command: every scenario natively and under the shim, side by side in one run
# on one machine (absolute numbers move between machines; the ratios are what count).
#
# Prints a markdown report on stdout (progress goes to stderr) and writes bench/results/latest.json (with
# the machine it ran on) and bench/results/{throughput,memory,latency_p99}.png.
#
# Scenarios
#   echo servers   c-tests/bench/echo_threads.c (a detached thread per connection, blocking read/write),
#                  echo_pool.c (acceptor + mutex/cond queue + workers), echo_epoll.c (hand-written epoll
#                  server, run with one event loop per core and with a single loop: the better of the two
#                  at each connection count is the reference every ratio is taken against), driven by
#                  bench/loadgen (closed-loop ping-pong, one epoll thread, connections from
#                  127.0.0.2..9) at 1 ... 19,000 connections. Each run also
#                  yields the server's memory per idle connection (RSS + page tables + 16 KiB of kernel
#                  stack per OS thread), its OS threads and CPU.
#   micro          create_join.c, switch.c, mutex.c (uncontended; hand-off), pshared.c (ping-pong with a
#                  forked process through process-shared semaphores, mutex + condition variable, barrier;
#                  one worker), idle_mem.c, ready_fd.c (hooked read/write on a ready fd)
#   preempt        compute_echo.c: a thread per connection, 1% of the requests compute for 20 ms; p99
#                  latency of the other requests and the server's OS threads (50 connections, 4 s; a
#                  forked load generator, plain threads in both modes)
#   CPython        bench/py/echo_server.py (socketserver.ThreadingTCPServer) natively, under the shim and
#                  with gevent's monkey patching, at 100, 1,000 and 5,000 connections
#   MariaDB        when scripts/mariadb.sh exists: mariadbd natively and under the shim, N client threads of
#                  mariadb-slap running SELECT 1
#
# Environment:
#   QUICK=1          short runs (under 2 minutes): fewer connection counts, 2 s windows, no MariaDB
#   BENCH_CONNS="…"  connection counts of the echo scenario (default 1 100 1000 10000 19000; QUICK: 1 1000 10000)
#   BENCH_DURATION=S measured seconds per echo run (default 8; QUICK: 2), after 1 s of warm-up (QUICK: 0.5)
#   BENCH_SIZE=B     message size of the ping-pong (default 64)
#   BENCH_ONLY="…"   run only these scenario groups: micro preempt echo python mariadb web (default: all)
#   BENCH_REPS=N     repetitions of the micro timing benchmarks, median reported (default 3; QUICK: 1)
#   BENCH_THREADS=N  threads for idle_mem (default 10000)
#   BENCH_TIMEOUT=S  time limit per micro run in seconds (default 60; QUICK: 30)
#   BENCH_OUT=PATH   JSON output (default bench/results/latest.json); plots go next to it
#   BENCH_LIB=PATH   the library to measure (default target/release/libasyncshim.so; copied at the start)
#
# Exit status: 0 when every native run worked (shim failures are reported in the report and the JSON),
# 1 otherwise.
set -uo pipefail

T_START=$(date +%s.%N)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC=$ROOT/c-tests/bench
BUILD=$ROOT/c-tests/build/bench
LIB=${BENCH_LIB:-$ROOT/target/release/libasyncshim.so}
LOADGEN_DIR=$ROOT/bench/loadgen
LOADGEN=$LOADGEN_DIR/target/release/loadgen
OUT=${BENCH_OUT:-$ROOT/bench/results/latest.json}
PLOTS=$(dirname "$OUT")
QUICK=${QUICK:-0}
# Debian's interpreter, where python3-gevent is installed (a pyenv python3 earlier in PATH is another one).
PY=/usr/bin/python3

if [[ $QUICK == 1 ]]; then
    CJ_ITERS=5000; SW_ROUNDS=50000; MX_ITERS=2000000; MX_ROUNDS=20000; RF_ITERS=200000; PS_ROUNDS=5000
    REPS=${BENCH_REPS:-1}; RUN_TIMEOUT=${BENCH_TIMEOUT:-30}
    CONNS=${BENCH_CONNS:-"1 1000 10000"}; DURATION=${BENCH_DURATION:-2}; WARMUP=0.5
    PY_CONNS="1000"; IDLE_N=${BENCH_THREADS:-5000}
else
    CJ_ITERS=20000; SW_ROUNDS=200000; MX_ITERS=10000000; MX_ROUNDS=100000; RF_ITERS=1000000; PS_ROUNDS=20000
    REPS=${BENCH_REPS:-3}; RUN_TIMEOUT=${BENCH_TIMEOUT:-60}
    CONNS=${BENCH_CONNS:-"1 100 1000 10000 19000"}; DURATION=${BENCH_DURATION:-8}; WARMUP=1
    PY_CONNS="100 1000 5000"; IDLE_N=${BENCH_THREADS:-10000}
fi
SIZE=${BENCH_SIZE:-64}
ONLY=${BENCH_ONLY:-"micro preempt echo python mariadb web"}

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }
for v in REPS:BENCH_REPS RUN_TIMEOUT:BENCH_TIMEOUT IDLE_N:BENCH_THREADS DURATION:BENCH_DURATION SIZE:BENCH_SIZE; do
    var=${v%%:*}
    [[ ${!var} =~ ^[1-9][0-9]*$ ]] || die "${v#*:} must be a positive integer (got '${!var}')"
done
for c in $CONNS; do [[ $c =~ ^[1-9][0-9]*$ && $c -le 19500 ]] || die "BENCH_CONNS: '$c' is not a count in 1..19500 (20,000 fds per process)"; done
want() { [[ " $ONLY " == *" $1 "* ]]; }
command -v gcc >/dev/null || die "gcc is required (scripts/install-deps.sh)"
command -v timeout >/dev/null || die "timeout (coreutils) is required"
command -v cargo >/dev/null || die "cargo is required (the load generator is a Rust crate)"

# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
make_tmp bench
RECORDS=$TMP/records.jsonl
: >"$RECORDS"

# Debian packages the bench itself needs: the plot font, gevent for the CPython comparison. Installed
# when missing and we may (root), else the scenario or the plots are left out with a note.
ensure_pkg() { # FILE PACKAGE
    [[ -e $1 ]] && return 0
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        log "installing $2 (for $1) ..."
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$2" >/dev/null 2>&1 \
            || { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null 2>&1
                 DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$2" >/dev/null 2>&1; }
    fi
    [[ -e $1 ]] || { log "$2 is not installed: $3"; return 1; }
}
ensure_pkg /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf fonts-dejavu-core "no plots"
HAVE_GEVENT=1
if want python; then
    [[ -x $PY ]] || ensure_pkg "$PY" python3 "no CPython scenario" || HAVE_GEVENT=0
    ensure_pkg /usr/lib/python3/dist-packages/gevent/__init__.py python3-gevent "no gevent column" || HAVE_GEVENT=0
fi

# --- build ------------------------------------------------------------------------------------------
mkdir -p "$BUILD" || die "cannot create $BUILD"
for p in create_join switch mutex pshared idle_mem ready_fd compute_echo echo_threads echo_pool echo_epoll; do
    if [[ ! -x $BUILD/$p || $SRC/$p.c -nt $BUILD/$p || $SRC/bench_common.h -nt $BUILD/$p || $SRC/echo_common.h -nt $BUILD/$p ]]; then
        gcc -O2 -pthread -Wall -o "$BUILD/$p" "$SRC/$p.c" -ldl || die "cannot build $SRC/$p.c"
    fi
done
log "building the load generator (bench/loadgen) ..."
cargo build --release --quiet --manifest-path "$LOADGEN_DIR/Cargo.toml" >&2 || die "cannot build bench/loadgen"

SHIM_AVAILABLE=1
if [[ -f $LIB ]]; then
    # Measure one library: a rebuild during the run (cargo replaces the file) must not mix two versions.
    cp "$LIB" "$TMP/libasyncshim.so" || die "cannot copy $LIB"
    LIB_BUILT=$(date -u -r "$LIB" +%Y-%m-%dT%H:%M:%SZ)
    export BENCH_LIB_BUILT=$LIB_BUILT
    LIB=$TMP/libasyncshim.so
else
    SHIM_AVAILABLE=0
    log "library not built ($LIB missing): shim columns will be n/a (run 'make build')"
fi
NATIVE_FAILED=0

# --- JSON helpers -----------------------------------------------------------------------------------
json_str() { # JSON string literal
    local s=$1
    s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\t'/ }; s=${s//$'\n'/ }; s=${s//$'\r'/}
    printf '"%s"' "$s"
}
json_num() { [[ -z $1 ]] && printf 'null' || printf '%s' "$1"; }
json_arr() { local first=1 v; printf '['; for v in $1; do ((first)) || printf ', '; first=0; printf '%s' "$v"; done; printf ']'; }
json_err() { [[ -n $1 ]] && json_str "$1" || printf 'null'; }

# --- micro-benchmarks -------------------------------------------------------------------------------
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
SHIM_INACTIVE=0

add_micro() { # KEY LABEL UNIT NATIVE SHIM NATIVE_SAMPLES SHIM_SAMPLES NATIVE_ERR SHIM_ERR  (uses $PROG)
    printf '{"kind": "micro", "key": %s, "program": %s, "label": %s, "unit": %s, "native": %s, "shim": %s, "native_samples": %s, "shim_samples": %s, "native_error": %s, "shim_error": %s}\n' \
        "$(json_str "$1")" "$(json_str "$PROG.c")" "$(json_str "$2")" "$(json_str "$3")" "$(json_num "$4")" "$(json_num "$5")" \
        "$(json_arr "$6")" "$(json_arr "$7")" "$(json_err "$8")" "$(json_err "$9")" >>"$RECORDS"
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
    add_micro "$key" "$label" "$unit" "$(median <<<"$nsamp")" "$(median <<<"$ssamp")" "$nsamp" "$ssamp" "$nerr" "$serr"
}

if want micro; then
    timing_bench create_join "thread create+join (ns/op)" "ns/op" ns_per_op shim \
        "$BUILD/create_join" "$CJ_ITERS"
    timing_bench switch "sched_yield switch, 1 CPU (ns/yield)" "ns/yield" ns_per_yield shim-w1 \
        "$BUILD/switch" "$SW_ROUNDS"
    timing_bench mutex_uncontended "mutex lock+unlock, uncontended (ns)" "ns/op" ns_per_lock_unlock shim \
        "$BUILD/mutex" "$MX_ITERS" 1000
    timing_bench mutex_handoff "mutex+cond hand-off between 2 threads, 1 CPU (ns)" "ns/handoff" ns_per_handoff shim-w1 \
        "$BUILD/mutex" 1000 "$MX_ROUNDS"
    timing_bench pshared_sem "process-shared semaphore round trip with another process, 1 worker (ns)" "ns/roundtrip" \
        sem_ns_per_roundtrip shim-w1 "$BUILD/pshared" "$PS_ROUNDS"
    timing_bench pshared_cond "process-shared mutex+cond round trip with another process, 1 worker (ns)" "ns/roundtrip" \
        cond_ns_per_roundtrip shim-w1 "$BUILD/pshared" "$PS_ROUNDS"
    timing_bench pshared_barrier "process-shared barrier, 2+2 threads in 2 processes, 1 worker (ns/round)" "ns/round" \
        barrier_ns_per_round shim-w1 "$BUILD/pshared" "$PS_ROUNDS"
    timing_bench pshared_cond_ring "process-shared cond: a turn around 8 threads + 1 in another process, 1 worker (ns/pass)" "ns/pass" \
        cond_ring_ns_per_pass shim-w1 "$BUILD/pshared" "$PS_ROUNDS"
    timing_bench pshared_cond_ring_threads "process-shared cond ring: peak OS threads of the process of the 8 (1 worker)" "threads" \
        cond_ring_os_threads shim-w1 "$BUILD/pshared" "$PS_ROUNDS"
    timing_bench ready_pipe "read/write on a ready pipe (ns/call)" "ns/call" pipe_ns_per_call shim \
        "$BUILD/ready_fd" "$RF_ITERS"
    timing_bench ready_socket "read/write on a ready Unix socket (ns/call)" "ns/call" socket_ns_per_call shim \
        "$BUILD/ready_fd" "$RF_ITERS"

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
        add_micro "$1" "$2" "$3" "$n" "$s" "$n" "$s" "$IN_ERR" "$IS_ERR"
    }
    idle_row idle_mem "idle thread: RSS + page tables (bytes/thread)" "bytes/thread" bytes_per_thread
    idle_row idle_kstack "idle thread: kernel stack (bytes/thread, system-wide delta, noisy)" "bytes/thread" kernel_stack_bytes_per_thread
    idle_row idle_os_threads "OS threads with $IDLE_N idle threads" "threads" os_threads
    idle_row idle_create "create $IDLE_N idle threads (ms)" "ms" create_ms
fi

if want preempt; then
    # One run per mode (the median of REPS), two rows from it.
    PROG=compute_echo
    log "compute_echo: native x$REPS ..."
    measure native "$REPS" "$BUILD/compute_echo" 50 4 20; PN_FILES=("${M_FILES[@]}"); PN_ERR=$M_ERR
    log "compute_echo: shim x$REPS ..."
    measure shim "$REPS" "$BUILD/compute_echo" 50 4 20; PS_FILES=("${M_FILES[@]}"); PS_ERR=$M_ERR
    preempt_row() { # KEY LABEL UNIT METRIC
        local n s
        M_FILES=("${PN_FILES[@]}"); n=$(values "$4"); [[ -n $PN_ERR ]] && n=""
        M_FILES=("${PS_FILES[@]}"); s=$(values "$4"); [[ -n $PS_ERR ]] && s=""
        add_micro "$1" "$2" "$3" "$(median <<<"$n")" "$(median <<<"$s")" "$n" "$s" "$PN_ERR" "$PS_ERR"
    }
    preempt_row preempt_p99 "echo, 1% of requests compute 20 ms: p99 of the others (µs)" "µs" p99_us
    preempt_row preempt_p50 "echo, 1% of requests compute 20 ms: p50 of the others (µs)" "µs" p50_us
    preempt_row preempt_threads "echo, 1% of requests compute 20 ms: server OS threads (50 connections)" "threads" os_threads
fi

# --- servers under load -----------------------------------------------------------------------------
# load_run KIND SERVER MODE CONNS LOADGEN_FLAGS -- CMD... : starts the server (CMD), drives it with the
# load generator, stops it, appends one record. The server bounds its own life (its SECONDS argument);
# the load generator runs under timeout(1).
load_run() {
    local kind=$1 server=$2 mode=$3 conns=$4 flags=$5
    shift 6
    local meta rc err="" lg_timeout
    meta=$(printf '{"kind": %s, "server": %s, "mode": %s}' "$(json_str "$kind")" "$(json_str "$server")" "$(json_str "$mode")")
    if [[ $mode != native && $mode != gevent && $SHIM_AVAILABLE -eq 0 ]]; then
        printf '{"kind": %s, "server": %s, "mode": %s, "conns": %s, "error": "library not built"}\n' \
            "$(json_str "$kind")" "$(json_str "$server")" "$(json_str "$mode")" "$conns" >>"$RECORDS"
        return
    fi
    log "$kind $server $mode: $conns connections ..."
    if ! start_server "$TMP/server.out" "$TMP/server.err" "$@"; then
        err=$SERVER_ERR
    else
        # connect (bounded at 60 s by the load generator) + settle + warm-up + window + closing
        lg_timeout=$(awk -v d="$DURATION" -v w="$WARMUP" 'BEGIN { printf "%d", 60 + d + w + 20 }')
        # shellcheck disable=SC2086 # flags are words
        bounded "$lg_timeout" env -u LD_PRELOAD "$LOADGEN" run --port "$SERVER_PORT" --conns "$conns" --size "$SIZE" \
            --warmup "$WARMUP" --duration "$DURATION" --pid "$SERVER_PID" $flags --meta "$meta" \
            >"$TMP/lg.out" 2>"$TMP/lg.err" </dev/null
        rc=$?
        stop_server
        [[ $rc -ne 0 ]] && err="load generator: exit status $rc ($(tail -n 1 "$TMP/lg.err" | cut -c1-150))"
        [[ -n $SERVER_STATUS ]] && err="server died during the run ($SERVER_STATUS: $(tail -n 1 "$TMP/server.err" | cut -c1-150))${err:+; $err}"
    fi
    if [[ -z $err ]] && [[ -s $TMP/lg.out ]]; then
        grep -q '"round_trips":0,' "$TMP/lg.out" && [[ $mode == native ]] && NATIVE_FAILED=1
        cat "$TMP/lg.out" >>"$RECORDS"
        echo >>"$RECORDS"
    else
        [[ -n $err ]] || err="no result"
        log "  failed: $err"
        [[ $mode == native ]] && NATIVE_FAILED=1
        printf '{"kind": %s, "server": %s, "mode": %s, "conns": %s, "error": %s}\n' \
            "$(json_str "$kind")" "$(json_str "$server")" "$(json_str "$mode")" "$conns" "$(json_str "$err")" >>"$RECORDS"
    fi
    rm -f "$TMP/lg.out"
}

# Each server runs at most this long (its own alarm), whatever happens to this script.
SERVER_SECONDS=$(awk -v d="$DURATION" 'BEGIN { printf "%d", 60 + d + 60 }')
SHIM_ENV=(env "LD_PRELOAD=$LIB${LD_PRELOAD:+:$LD_PRELOAD}")
NATIVE_ENV=(env -u LD_PRELOAD)
if want echo; then
    for c in $CONNS; do
        load_run echo threads native "$c" "" -- "${NATIVE_ENV[@]}" "$BUILD/echo_threads" 0 65535 "$SERVER_SECONDS"
        load_run echo threads shim "$c" "" -- "${SHIM_ENV[@]}" "$BUILD/echo_threads" 0 65535 "$SERVER_SECONDS"
        # A pool worker waits in read() on whichever connection it took: with a round trip per
        # connection before the load starts, idle connections would hold all the workers.
        load_run echo pool native "$c" "--no-handshake" -- "${NATIVE_ENV[@]}" "$BUILD/echo_pool" 0 65535 "$SERVER_SECONDS" 16
        load_run echo pool shim "$c" "--no-handshake" -- "${SHIM_ENV[@]}" "$BUILD/echo_pool" 0 65535 "$SERVER_SECONDS" 16
        load_run echo epoll native "$c" "" -- "${NATIVE_ENV[@]}" "$BUILD/echo_epoll" 0 65535 "$SERVER_SECONDS"
        load_run echo epoll1 native "$c" "" -- "${NATIVE_ENV[@]}" "$BUILD/echo_epoll" 0 65535 "$SERVER_SECONDS" 1
    done
fi

if want python; then
    if [[ ! -x $PY ]]; then
        log "no $PY: CPython scenario skipped"
    else
        for c in $PY_CONNS; do
            load_run python py native "$c" "" -- "${NATIVE_ENV[@]}" "$PY" "$ROOT/bench/py/echo_server.py" threads "$SERVER_SECONDS"
            load_run python py shim "$c" "" -- "${SHIM_ENV[@]}" "$PY" "$ROOT/bench/py/echo_server.py" threads "$SERVER_SECONDS"
            [[ $HAVE_GEVENT -eq 1 ]] &&
                load_run python py gevent "$c" "" -- "${NATIVE_ENV[@]}" "$PY" "$ROOT/bench/py/echo_server.py" gevent "$SERVER_SECONDS"
        done
    fi
fi

# --- MariaDB ----------------------------------------------------------------------------------------
if want mariadb && [[ $QUICK != 1 ]]; then
    if [[ -x $ROOT/scripts/bench-mariadb.sh ]]; then
        log "mariadb ..."
        RUN_TIMEOUT=300 run_bounded "$TMP/maria.out" "$TMP/maria.err" env "BENCH_LIB=$LIB" "$ROOT/scripts/bench-mariadb.sh"
        rc=$?
        if [[ $rc -eq 0 ]]; then
            grep '^{' "$TMP/maria.out" >>"$RECORDS"
        else
            log "  mariadb scenario failed (status $rc): $(tail -n 1 "$TMP/maria.err")"
            printf '{"kind": "mariadb", "mode": "native", "threads": 0, "error": %s}\n' "$(json_str "scripts/bench-mariadb.sh: status $rc: $(tail -n 1 "$TMP/maria.err")")" >>"$RECORDS"
        fi
    else
        log "scripts/bench-mariadb.sh missing: MariaDB scenario skipped"
    fi
fi

# --- report -----------------------------------------------------------------------------------------
[[ $SHIM_INACTIVE -eq 1 ]] && log "warning: under LD_PRELOAD a micro-benchmark did not see asyncshim_is_active() return 1"
ELAPSED=$(awk -v a="$T_START" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
mkdir -p "$PLOTS" || die "cannot create $PLOTS"
# From the repository root with relative paths, so the committed report names its plots portably.
REL_PLOTS=$PLOTS
[[ $PLOTS == "$ROOT"/* ]] && REL_PLOTS=${PLOTS#"$ROOT"/}
BENCH_COMMIT=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
export BENCH_COMMIT
(cd "$ROOT" && "$LOADGEN" report --in "$RECORDS" --out "$OUT" --plots "$REL_PLOTS" --elapsed "$ELAPSED" $([[ $QUICK == 1 ]] && echo --quick)) ||
    die "report failed"
log "wrote ${OUT#"$ROOT"/} and plots in ${PLOTS#"$ROOT"/} ($ELAPSED s)"

want web && log "web (scripts/bench-web.sh, its own bench/results/web.json and web.png) ..." && { RUN_TIMEOUT=3600 run_bounded "$TMP/web.md" "$TMP/web.err" env "BENCH_LIB=$LIB" "QUICK=$QUICK" "BENCH_WEB_OUT=$PLOTS/web.json" "$ROOT/scripts/bench-web.sh" || log "web scenario failed: $(tail -n 1 "$TMP/web.err")"; cat "$TMP/web.md"; }
[[ $NATIVE_FAILED -eq 0 ]]
