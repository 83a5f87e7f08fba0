#!/usr/bin/env bash
# Where the instructions go: the thread-per-connection echo server under valgrind --tool=callgrind,
# natively and under the shim, driven by bench/loadgen with PROFILE_CONNS connections (default 100) for
# PROFILE_SECONDS (default 4). Prints user-space instructions per round trip for both, the shim's
# heaviest functions (self and inclusive), and the calls per round trip of the runtime's key functions
# (parks, netpoller registrations, worker wake-ups). Perf counters are not available on these machines;
# callgrind counts instructions repeatably (kernel time is not in it: count syscalls from the calls).
#
# Callgrind output is kept in c-tests/build/profile/ (callgrind_annotate FILE for more).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/c-tests/build/bench/echo_threads
LIB=$ROOT/target/release/libasyncshim.so
LOADGEN=$ROOT/bench/loadgen/target/release/loadgen
OUTDIR=$ROOT/c-tests/build/profile
CONNS=${PROFILE_CONNS:-100}
SECS=${PROFILE_SECONDS:-4}
die() { echo "bench-profile: $*" >&2; exit 1; }
command -v valgrind >/dev/null || die "valgrind is required (apt-get install valgrind)"
[[ -x $BIN && -x $LOADGEN ]] || die "run scripts/bench.sh (or make bench QUICK=1) first: it builds the server and the load generator"
[[ -f $LIB ]] || die "library not built"

# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
make_tmp profile
mkdir -p "$OUTDIR"

profile() { # TAG ENV... : sets RTS (round trips during the whole load phase) and leaves $OUTDIR/TAG.callgrind
    local tag=$1 rc i
    shift
    rm -f "$OUTDIR/$tag.callgrind"
    # valgrind cannot run FSGSBASE instructions; the shim's arch_prctl fallback is the same code otherwise.
    start_server "$TMP/$tag.out" "$TMP/$tag.err" env "$@" ASYNCSHIM_NO_FSGSBASE=1 valgrind --tool=callgrind \
        --callgrind-out-file="$OUTDIR/$tag.callgrind" "$BIN" 0 65535 $((SECS + 120)) || die "$tag: $SERVER_ERR"
    timeout $((SECS + 90)) env -u LD_PRELOAD "$LOADGEN" run --port "$SERVER_PORT" --conns "$CONNS" --warmup 0 \
        --duration "$SECS" >"$TMP/$tag.json" 2>"$TMP/$tag.lg.err"
    rc=$?
    # Under valgrind the exit (and callgrind's dump) takes a while: wait up to 60 s before stop_server's
    # TERM-then-KILL, which would lose the profile.
    kill -TERM "$SERVER_PID" 2>/dev/null
    for ((i = 0; i < 600; i++)); do
        [[ -s $OUTDIR/$tag.callgrind ]] && ! kill -0 "$SERVER_PID" 2>/dev/null && break
        [[ $(awk '{print $3}' "/proc/$SERVER_PID/stat" 2>/dev/null) == Z ]] && break
        sleep 0.1
    done
    stop_server
    [[ -s $OUTDIR/$tag.callgrind ]] || die "$tag: callgrind wrote no profile ($(tail -n 2 "$TMP/$tag.err"))"
    [[ $rc -eq 0 ]] || die "$tag: load generator failed: $(tail -n 1 "$TMP/$tag.lg.err")"
    # warm-up is 0, so the counted round trips are all of them but the connection handshakes
    RTS=$(grep -o '"round_trips":[0-9]*' "$TMP/$tag.json" | cut -d: -f2)
    RTS=$((RTS + CONNS))
}

profile native -u LD_PRELOAD
NATIVE_RTS=$RTS
profile shim "LD_PRELOAD=$LIB"
SHIM_RTS=$RTS

total() { callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }'; }
n_ir=$(total "$OUTDIR/native.callgrind"); s_ir=$(total "$OUTDIR/shim.callgrind")
echo "## Instructions per round trip ($CONNS connections, ${SECS} s, server under callgrind)"
echo
awk -v a="$n_ir" -v b="$NATIVE_RTS" -v c="$s_ir" -v d="$SHIM_RTS" 'BEGIN {
    printf "native: %d instructions / %d round trips = %.0f per round trip\n", a, b, a / b
    printf "shim:   %d instructions / %d round trips = %.0f per round trip (%.1fx)\n", c, d, c / d, (c / d) / (a / b) }'
echo
echo "## Shim: heaviest functions (self)"
callgrind_annotate --inclusive=no "$OUTDIR/shim.callgrind" 2>/dev/null | grep -E '^ *[0-9,]+ \(' | sed -n 2,16p | cut -c1-160
echo
echo "## Shim: calls per round trip"
/usr/bin/python3 - "$OUTDIR/shim.callgrind" "$SHIM_RTS" <<'EOF'
import collections, re, sys
names, calls, cfn = {}, collections.Counter(), None
for line in open(sys.argv[1]):
    m = re.match(r'(c?fn)=\((\d+)\)(?: (.*))?$', line.rstrip('\n'))
    if m:
        kind, idx, name = m.groups()
        if name:
            names[idx] = name.strip()
        if kind == 'cfn':
            cfn = names.get(idx, idx)
        continue
    m = re.match(r'calls=(\d+)', line)
    if m and cfn:
        calls[re.sub(r"'\d+$", '', cfn)] += int(m.group(1))
rts = int(sys.argv[2])
for k, v in calls.most_common():
    if re.search(r'runtime::(io::attempt::try_|io::fd::register|io::netpoll::|io::ready::|task::Task::switch_out|parking_lot::unpark|scheduler::Scheduler::(wake_sleeper|wake_ready|push$|next_task))', k):
        print(f"{v / rts:6.2f}  {k}")
# Every park ends in convoy::after_park (worker::run_one). Under callgrind the server runs ~50x slower
# than the load generator, so a read often finds the next request already there and does not park: the
# instructions per round trip above depend on this fraction, which natively is close to 1.
parks = sum(v for k, v in calls.items() if k.endswith('convoy::after_park'))
print(f"\nround trips that parked: {100 * parks / rts:.0f}% (compare instructions per round trip at equal fractions)")
EOF
