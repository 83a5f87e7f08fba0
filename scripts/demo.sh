#!/usr/bin/env bash
# asyncshim demo: an unmodified thread-per-connection echo server (c-tests/bench/echo_threads.c: a
# detached thread per accepted connection, blocking read/write), natively and under the shim (through
# the launcher target/release/asyncshim), under the same load: DEMO_CONNS connections (default 5000)
# doing closed-loop 64-byte ping-pong for DEMO_SECONDS (default 10) each, from bench/loadgen. Side by
# side: round trips/s, latency, memory per idle connection, OS threads, server CPU; then one conclusion.
#
# Environment:
#   DEMO_CONNS=N      connections (default 5000; at most 19,500: 20,000 fds per process)
#   DEMO_SECONDS=S    measured seconds per run (default 10)
#   DEMO_WORKERS=N    passed as --workers to the launcher (default: the shim's default, online CPUs)
#   DEMO_STRICT=1     exit 1 when the shim run fails (default: report it and exit 0)
#
# Exit status: 0 when the native run worked (and the shim run too with DEMO_STRICT=1), 1 otherwise.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${DEMO_CONNS:-5000}
SECS=${DEMO_SECONDS:-10}
WORKERS=${DEMO_WORKERS:-}
SRC=$ROOT/c-tests/bench/echo_threads.c
BUILD=$ROOT/c-tests/build/bench
BIN=$BUILD/echo_threads
LAUNCHER=$ROOT/target/release/asyncshim
LIB=$ROOT/target/release/libasyncshim.so
LOADGEN_DIR=$ROOT/bench/loadgen
LOADGEN=$LOADGEN_DIR/target/release/loadgen

die() { echo "demo: $*" >&2; exit 1; }
[[ $N =~ ^[1-9][0-9]*$ && $N -le 19500 ]] || die "DEMO_CONNS must be an integer in 1..19500 (got '$N')"
[[ $SECS =~ ^[1-9][0-9]*$ ]] || die "DEMO_SECONDS must be a positive integer (got '$SECS')"
[[ -z $WORKERS || $WORKERS =~ ^[1-9][0-9]*$ ]] || die "DEMO_WORKERS must be a positive integer (got '$WORKERS')"
command -v gcc >/dev/null || die "gcc is required (scripts/install-deps.sh)"
command -v cargo >/dev/null || die "cargo is required (the load generator is a Rust crate)"

# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
make_tmp demo

mkdir -p "$BUILD" || die "cannot create $BUILD"
if [[ ! -x $BIN || $SRC -nt $BIN || $ROOT/c-tests/bench/echo_common.h -nt $BIN ]]; then
    gcc -O2 -pthread -Wall -o "$BIN" "$SRC" || die "cannot build $SRC"
fi
cargo build --release --quiet --manifest-path "$LOADGEN_DIR/Cargo.toml" || die "cannot build bench/loadgen"

echo "asyncshim demo: thread-per-connection echo server (c-tests/bench/echo_threads.c), $N connections,"
echo "closed-loop 64-byte ping-pong for $SECS s, natively and under the shim"
echo "machine: $(nproc) CPUs, Linux $(uname -r), $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo

# one SIDE CMD... : a server run under load; leaves the load generator's JSON in $TMP/SIDE.json or the
# reason it failed in $TMP/SIDE.fail.
one() {
    local side=$1 rc
    shift
    if ! start_server "$TMP/$side.server" "$TMP/$side.server.err" "$@"; then
        echo "$SERVER_ERR" >"$TMP/$side.fail"
        return
    fi
    bounded $((SECS + 90)) env -u LD_PRELOAD "$LOADGEN" run --port "$SERVER_PORT" --conns "$N" --warmup 1 \
        --duration "$SECS" --pid "$SERVER_PID" >"$TMP/$side.json" 2>"$TMP/$side.lg.err" </dev/null
    rc=$?
    stop_server
    if [[ -n $SERVER_STATUS ]]; then
        echo "the server died during the run ($SERVER_STATUS): $(tail -n 2 "$TMP/$side.server.err" | tr '\n' ' ')" >"$TMP/$side.fail"
    elif [[ $rc -ne 0 || ! -s $TMP/$side.json ]]; then
        echo "load generator failed (status $rc): $(tail -n 2 "$TMP/$side.lg.err" | tr '\n' ' ')" >"$TMP/$side.fail"
    fi
}

# The server bounds its own life; SECS + 120 covers connecting, warm-up and the window.
echo "running natively ..."
one native env -u LD_PRELOAD "$BIN" 0 65535 $((SECS + 120))
if [[ ! -f $LIB ]]; then
    echo "library not built ($LIB missing): run 'make build'" >"$TMP/shim.fail"
elif [[ -x $LAUNCHER ]]; then
    how="target/release/asyncshim${WORKERS:+ --workers $WORKERS} -- echo_threads"
    echo "running under the shim: $how ..."
    one shim "$LAUNCHER" ${WORKERS:+--workers "$WORKERS"} -- "$BIN" 0 65535 $((SECS + 120))
else
    echo "running under the shim: LD_PRELOAD=target/release/libasyncshim.so echo_threads (launcher not built) ..."
    one shim env "LD_PRELOAD=$LIB" ${WORKERS:+ASYNCSHIM_WORKERS=$WORKERS} "$BIN" 0 65535 $((SECS + 120))
fi
echo

# Values from the load generator's JSON with the Rust-free tools at hand (grep/sed on one-line JSON).
val() { # SIDE KEY-PATTERN : first number after "KEY":
    [[ -f $TMP/$1.fail || ! -s $TMP/$1.json ]] && return
    grep -o "\"$2\":[-0-9.]*" "$TMP/$1.json" | head -n 1 | cut -d: -f2
}
idle_threads() { # SIDE : the server's OS threads with every connection up and idle
    [[ -f $TMP/$1.fail || ! -s $TMP/$1.json ]] && return
    grep -o '"idle":{[^}]*}' "$TMP/$1.json" | grep -o '"threads":[0-9-]*' | cut -d: -f2
}
fmt() { # VALUE SCALE DECIMALS
    [[ -z $1 ]] && { echo "-"; return; }
    awk -v v="$1" -v s="$2" -v d="$3" 'BEGIN { printf "%.*f", d, v / s }'
}
row() { printf '  %-34s %14s %14s\n' "$1" "$2" "$3"; }
row "" "native" "shim"
row "" "--------" "--------"
row "round trips / s" "$(fmt "$(val native rt_per_s)" 1 0)" "$(fmt "$(val shim rt_per_s)" 1 0)"
row "latency p50 / ms" "$(fmt "$(val native p50)" 1000 2)" "$(fmt "$(val shim p50)" 1000 2)"
row "latency p99 / ms" "$(fmt "$(val native p99)" 1000 2)" "$(fmt "$(val shim p99)" 1000 2)"
row "memory per idle connection / KiB" "$(fmt "$(val native idle_bytes_per_conn)" 1024 1)" "$(fmt "$(val shim idle_bytes_per_conn)" 1024 1)"
row "server OS threads" "$(idle_threads native)" "$(idle_threads shim)"
row "server CPU / cores" "$(fmt "$(val native server_cpu_cores)" 1 2)" "$(fmt "$(val shim server_cpu_cores)" 1 2)"
row "connections failed or dropped" "$(fmt "$(( $(val native conns_failed || echo 0) + $(val native conns_died || echo 0) ))" 1 0)" \
    "$(fmt "$(( $(val shim conns_failed || echo 0) + $(val shim conns_died || echo 0) ))" 1 0)"
echo "  (memory per idle connection: RSS + page tables + 16 KiB kernel stack per OS thread)"
echo

native_ok=1; shim_ok=1
for side in native shim; do
    if [[ -f $TMP/$side.fail ]]; then
        echo "$side run FAILED: $(cat "$TMP/$side.fail")"
        [[ $side == native ]] && native_ok=0 || shim_ok=0
    fi
done
if [[ $native_ok -eq 1 && $shim_ok -eq 1 ]]; then
    awk -v n="$N" -v rn="$(val native rt_per_s)" -v rs="$(val shim rt_per_s)" \
        -v mn="$(val native idle_bytes_per_conn)" -v ms="$(val shim idle_bytes_per_conn)" \
        -v tn="$(idle_threads native)" -v ts="$(idle_threads shim)" 'BEGIN {
        t = (rn > 0) ? rs / rn : 0
        printf "Conclusion: the same binary served %d connections with %s OS threads instead of %s, %.2fx the round trips/s, and %s memory per idle connection.\n",
            n, ts, tn, t, (ms > 0 ? sprintf("%.1fx less", mn / ms) : "-")
    }'
elif [[ $native_ok -eq 1 ]]; then
    echo "Conclusion: no comparison: the shim run failed (see above)."
else
    echo "Conclusion: the native run failed (see above); no comparison."
fi

[[ $native_ok -eq 1 ]] || exit 1
[[ $shim_ok -eq 1 || ${DEMO_STRICT:-0} != 1 ]] || exit 1
exit 0
