#!/usr/bin/env bash
# One run of the web scenario with its measurements kept, for bench/web/ANALYSIS.md:
#
#   bench/web/profile.sh APP ROW CLIENTS SECONDS OUTDIR [stat|record|none]
#
# APP django|wsgi, ROW native|shim|gevent-mysqlclient|gevent-pymysql|native-pymysql|shim-pymysql (as in
# scripts/bench-web.sh). Starts the server (under the shim for shim rows, with whatever ASYNCSHIM_* is
# exported), a 2 s warm-up at 20 clients, then wrk at CLIENTS for SECONDS while `perf stat` (software
# events: task-clock, context switches, migrations) or `perf record -g` (cpu-clock samples, 499 Hz)
# watches the server. Writes OUTDIR/{wrk.json, perf.txt or perf.data, stats.txt (shim rows), server.err}
# and prints one summary line. The database: the MariaDB named by $STATE_DIR/env (scripts/mariadb.sh),
# started here (and stopped at exit) when none answers there.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[[ $# -ge 5 ]] || { echo "usage: $0 APP ROW CLIENTS SECONDS OUTDIR [stat|record|none]" >&2; exit 2; }
APP=$1 ROW=$2 CLIENTS=$3 SECS=$4 OUTDIR=$5 PERF=${6:-stat}
LIB=${BENCH_LIB:-$ROOT/target/release/libasyncshim.so}
mkdir -p "$OUTDIR" && OUTDIR=$(cd "$OUTDIR" && pwd)
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
make_tmp web-profile
export STATE_DIR=${STATE_DIR:-/tmp/asyncshim-web-profile}
OWN_DB=0
if ! "$ROOT/scripts/mariadb.sh" status >/dev/null 2>&1; then
    OWN_DB=1
    RUN_TIMEOUT=120 run_bounded "$TMP/db.out" "$TMP/db.err" "$ROOT/scripts/mariadb.sh" start || { cat "$TMP/db.err" >&2; exit 1; }
fi
trap 'cleanup; [[ $OWN_DB == 1 ]] && "$ROOT/scripts/mariadb.sh" stop >/dev/null 2>&1' EXIT
set -a
# shellcheck disable=SC1091
source "$STATE_DIR/env"
set +a
mariadb --no-defaults --protocol=socket --socket="$MARIADB_SOCKET" -uroot -e "SET GLOBAL max_connections = $((CLIENTS * 2 + 200))"

mode=${ROW%%-*} driver=mysqlclient pymode=threads
[[ $ROW == *-* ]] && driver=${ROW#*-}
[[ $mode == gevent ]] && pymode=gevent
if [[ $APP == django ]]; then path=/items; expect="20 items, total 210, slept 0"; else path=/wait; expect="slept 0"; fi
cmd=(env -u LD_PRELOAD)
rm -f "$OUTDIR/stats.txt"
[[ $mode == shim ]] && cmd=(env "LD_PRELOAD=$LIB" "ASYNCSHIM_STATS=$OUTDIR/stats.txt" ASYNCSHIM_STATS_SIGNAL=USR2)
start_server "$TMP/server.out" "$OUTDIR/server.err" "${cmd[@]}" /usr/bin/python3 "$ROOT/bench/web/server.py" "$APP" "$pymode" "$driver" $((SECS + 120)) ||
    { echo "$SERVER_ERR" >&2; exit 1; }
url=http://127.0.0.1:$SERVER_PORT$path
timeout 30 wrk -t1 -c20 -d2s --timeout 20s -s "$ROOT/bench/web/check.lua" "$url" -- "$expect" >/dev/null 2>&1
sleep 0.5
case $PERF in
    stat) perf stat -e task-clock,context-switches,cpu-migrations -p "$SERVER_PID" -o "$OUTDIR/perf.txt" -- sleep "$SECS" & ;;
    record) perf record -F 499 -g -p "$SERVER_PID" -o "$OUTDIR/perf.data" -- sleep "$SECS" 2>"$OUTDIR/perf.txt" & ;;
    none) sleep "$SECS" & ;;
esac
PERF_PID=$!
load0=$(cut -d' ' -f1 /proc/loadavg)
timeout $((SECS + 60)) wrk -t2 -c"$CLIENTS" -d"${SECS}s" --timeout 60s -s "$ROOT/bench/web/check.lua" "$url" -- "$expect" >"$OUTDIR/wrk.out" 2>&1
wait "$PERF_PID"
threads=$(awk '/^Threads:/ { print $2 }' "/proc/$SERVER_PID/status")
[[ $mode == shim ]] && { kill -USR2 "$SERVER_PID"; for _ in $(seq 20); do [[ -s $OUTDIR/stats.txt ]] && break; sleep 0.2; done; }
stop_server
grep '^{"requests"' "$OUTDIR/wrk.out" >"$OUTDIR/wrk.json"
req=$(grep -o '"requests": [0-9]*' "$OUTDIR/wrk.json" | cut -d' ' -f2)
us=$(grep -o '"duration_us": [0-9]*' "$OUTDIR/wrk.json" | cut -d' ' -f2)
echo "$APP $ROW $CLIENTS: $(awk -v r="$req" -v u="$us" 'BEGIN { printf "%.0f", r / (u / 1e6) }') requests/s ($req in ${us}us), bad $(grep -o '"bad": [0-9]*' "$OUTDIR/wrk.json" | cut -d' ' -f2), p50/p99 $(grep -o '"p50": [0-9]*' "$OUTDIR/wrk.json" | cut -d' ' -f2)/$(grep -o '"p99": [0-9]*' "$OUTDIR/wrk.json" | cut -d' ' -f2) us, threads at end $threads, load $load0"
