#!/usr/bin/env bash
# MariaDB scenario of scripts/bench.sh: mariadbd (thread per connection, Debian's build) natively and
# under the shim, driven by mariadb-slap (native) with N client threads running `SELECT 1` over TCP.
# Prints one JSON record a line on stdout ({"kind": "mariadb", "mode", "threads", "qps", ...}); progress
# on stderr.
#
# The server comes from scripts/mariadb.sh (private datadir, 127.0.0.1, free port). For the shim run the
# same server command line is restarted with LD_PRELOAD, on the same datadir and port, and its PID is
# written where mariadb.sh stop looks for it, so one `stop` ends whichever server is running.
#
# Environment: MARIADB_THREADS="1 16 64 256" (client threads), MARIADB_QUERIES=N total queries per run
# (default 100000), BENCH_LIB (the library; default target/release/libasyncshim.so).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
LIB=${BENCH_LIB:-$ROOT/target/release/libasyncshim.so}
THREADS=${MARIADB_THREADS:-"1 16 64 256"}
QUERIES=${MARIADB_QUERIES:-100000}
export STATE_DIR=${TMPDIR:-/tmp}/asyncshim-bench-mariadb.$$
log() { echo "bench-mariadb: $*" >&2; }
json_str() { local s=$1; s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/ }; printf '"%s"' "$s"; }

for c in mariadbd:/usr/sbin/mariadbd mariadb-slap:/usr/bin/mariadb-slap; do
    [[ -x ${c#*:} ]] || { log "${c%%:*} missing (apt-get install mariadb-server mariadb-client)"; exit 1; }
done
[[ -f $LIB ]] || { log "library not built ($LIB)"; exit 1; }

SERVER_PID=""
cleanup_mariadb() {
    stop_bounded
    # mariadb.sh stop ends the server named in $STATE_DIR/pid (ours, also after the shim restart).
    "$ROOT/scripts/mariadb.sh" stop >/dev/null 2>&1
}
exit_traps cleanup_mariadb

bounded 120 "$ROOT/scripts/mariadb.sh" start >&2 || { log "scripts/mariadb.sh start failed"; exit 1; }
# shellcheck disable=SC1091
source "$STATE_DIR/env"
SERVER_PID=$(cat "$STATE_DIR/pid")

answers() {
    mariadb --no-defaults --protocol=tcp -h127.0.0.1 -P"$MARIADB_PORT" -u"$MARIADB_USER" -p"$MARIADB_PASSWORD" \
        --connect-timeout=2 -e 'SELECT 1' >/dev/null 2>&1
}

measure() { # MODE
    local mode=$1 t out secs per total
    for t in $THREADS; do
        log "$mode: $t client threads x SELECT 1 ..."
        out=$(timeout 120 mariadb-slap --no-defaults --protocol=tcp -h127.0.0.1 -P"$MARIADB_PORT" -u"$MARIADB_USER" \
            -p"$MARIADB_PASSWORD" --create-schema="$MARIADB_DB" --concurrency="$t" --iterations=1 \
            --number-of-queries="$QUERIES" --query="SELECT 1" 2>&1)
        secs=$(sed -n 's/.*Average number of seconds to run all queries: \([0-9.]*\).*/\1/p' <<<"$out")
        per=$(sed -n 's/.*Average number of queries per client: \([0-9]*\).*/\1/p' <<<"$out")
        if [[ -n $secs && -n $per ]] && awk -v s="$secs" 'BEGIN { exit !(s > 0) }'; then
            total=$((per * t))
            printf '{"kind": "mariadb", "mode": "%s", "threads": %s, "queries": %s, "seconds": %s, "qps": %s}\n' \
                "$mode" "$t" "$total" "$secs" "$(awk -v q="$total" -v s="$secs" 'BEGIN { printf "%.0f", q / s }')"
        else
            printf '{"kind": "mariadb", "mode": "%s", "threads": %s, "qps": null, "error": %s}\n' \
                "$mode" "$t" "$(json_str "mariadb-slap: $(tail -n 2 <<<"$out" | tr '\n' ' ' | cut -c1-200)")"
        fi
    done
}

measure native

# Restart the same server under the shim.
mapfile -d '' CMD <"/proc/$SERVER_PID/cmdline"
kill -TERM "$SERVER_PID"
for ((i = 0; i < 200; i++)); do
    [[ -d /proc/$SERVER_PID && $(awk '{print $3}' "/proc/$SERVER_PID/stat" 2>/dev/null) != Z ]] || break
    sleep 0.1
done
rm -f "$MARIADB_SOCKET"
setsid env "LD_PRELOAD=$LIB" "${CMD[@]}" </dev/null >>"$STATE_DIR/mariadbd-shim.out" 2>&1 9>&- &
SERVER_PID=$!
echo "$SERVER_PID" >"$STATE_DIR/pid"
up=0
for ((i = 0; i < 300; i++)); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    if answers; then up=1; break; fi
    sleep 0.1
done
if [[ $up -ne 1 ]]; then
    err="mariadbd under the shim did not come up: $(tail -n 3 "$STATE_DIR/error.log" 2>/dev/null | tr '\n' ' ' | cut -c1-200)"
    log "$err"
    for t in $THREADS; do
        printf '{"kind": "mariadb", "mode": "shim", "threads": %s, "qps": null, "error": %s}\n' "$t" "$(json_str "$err")"
    done
    exit 0
fi
OS_THREADS=$(awk '/^Threads:/ { print $2 }' "/proc/$SERVER_PID/status")
log "mariadbd under the shim: PID $SERVER_PID, $OS_THREADS OS threads"
measure shim
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    log "mariadbd under the shim died during the run"
fi
printf '{"kind": "mariadb", "mode": "info", "what": %s}\n' \
    "$(json_str "mariadbd ($(/usr/sbin/mariadbd --version | awk '{print $3}')) natively and under the shim, same datadir and options (scripts/mariadb.sh); mariadb-slap (native) runs $QUERIES x SELECT 1 over TCP, split over the client threads.")"
