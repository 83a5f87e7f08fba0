#!/usr/bin/env bash
# The web scenario (issue 17): a Python web app on a blocking MySQL driver, served one thread per
# connection, natively, under the shim and with gevent. Runs alone or as part of scripts/bench.sh.
#
# Apps (bench/web/server.py: wsgiref + socketserver.ThreadingMixIn, HTTP/1.0, a thread per connection):
#   django  Django (Debian's python3-django) on mysqlclient: SELECT SLEEP(0.02), a 20-row ORM query,
#           a template; a new database connection per request (Django's default, CONN_MAX_AGE=0)
#   wsgi    plain WSGI: one SELECT SLEEP(0.02) per request on a pooled connection
# Rows:
#   native              the script as is, one OS thread per connection
#   shim                the same with LD_PRELOAD=libasyncshim.so
#   gevent-mysqlclient  gevent.monkey.patch_all() first; the C driver still blocks the whole process
#   gevent-pymysql      gevent.monkey.patch_all() with the pure-Python driver (cooperative)
#   (also accepted: native-pymysql, shim-pymysql)
# Load: wrk (Debian's) with bench/web/check.lua, which checks every response (status 200 and the line
# the app computes from the database's answer) and prints one JSON line. Before each measured window
# a short warm-up at 20 clients. While wrk runs, the server's OS threads and RSS are sampled from /proc
# every 0.25 s (peaks reported), and its CPU time and mariadbd's are taken before and after.
# The database is a private MariaDB from scripts/mariadb.sh (own datadir, 127.0.0.1, free port), with
# max_connections raised for the run; it is stopped at exit.
#
# Output: markdown on stdout (progress on stderr), $BENCH_WEB_OUT (default bench/results/web.json, the
# medians and every run) and a plot next to it (web.png).
#
# Environment:
#   QUICK=1              1 run per cell, 200 clients, 4 s windows (about 2 minutes)
#   WEB_CLIENTS="…"      concurrent clients (default 200 1000; QUICK: 200); at most 5000 (20,000 fds:
#                        each client is a socket in wrk, in the server and, with its database
#                        connection, in the server and in mariadbd)
#   WEB_APPS="…"         django wsgi (default both)
#   WEB_ROWS="…"         default native shim gevent-mysqlclient gevent-pymysql
#   WEB_REPS=N           runs per cell, the median is reported (default 3; QUICK: 1); the runs are
#                        interleaved (every cell once, then again) so that a load change on the machine
#                        spreads over all rows
#   WEB_DURATION=S       measured seconds per run (default 10; QUICK: 4)
#   WEB_STATS_DIR=DIR    keep the shim's statistics report of every shim run there (ASYNCSHIM_STATS)
#   BENCH_WEB_OUT=PATH   JSON output; the plot goes next to it
#   BENCH_LIB=PATH       the library (default target/release/libasyncshim.so; copied at the start)
#   ASYNCSHIM_*          passed to the shim runs as set (e.g. ASYNCSHIM_WORKERS)
#
# Exit status: 0 when every native run worked, 1 otherwise (shim and gevent failures are reported).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WEB=$ROOT/bench/web
LIB=${BENCH_LIB:-$ROOT/target/release/libasyncshim.so}
LOADGEN_DIR=$ROOT/bench/loadgen
LOADGEN=$LOADGEN_DIR/target/release/loadgen
OUT=${BENCH_WEB_OUT:-$ROOT/bench/results/web.json}
QUICK=${QUICK:-0}
PY=/usr/bin/python3
if [[ $QUICK == 1 ]]; then
    CLIENTS=${WEB_CLIENTS:-200}; REPS=${WEB_REPS:-1}; DURATION=${WEB_DURATION:-4}
else
    CLIENTS=${WEB_CLIENTS:-"200 1000"}; REPS=${WEB_REPS:-3}; DURATION=${WEB_DURATION:-10}
fi
APPS=${WEB_APPS:-"django wsgi"}
ROWS=${WEB_ROWS:-"native shim gevent-mysqlclient gevent-pymysql"}
STATS_DIR=${WEB_STATS_DIR:-}
WARMUP_S=2
WARMUP_CLIENTS=20

die() { echo "bench-web: $*" >&2; exit 1; }
log() { echo "bench-web: $*" >&2; }
[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "WEB_REPS must be a positive integer (got '$REPS')"
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "WEB_DURATION must be a positive integer (got '$DURATION')"
for c in $CLIENTS; do [[ $c =~ ^[1-9][0-9]*$ && $c -le 5000 ]] || die "WEB_CLIENTS: '$c' is not a count in 1..5000"; done
for a in $APPS; do [[ $a == django || $a == wsgi ]] || die "WEB_APPS: unknown app '$a' (django, wsgi)"; done
for r in $ROWS; do
    [[ $r =~ ^(native|shim|gevent)(-(mysqlclient|pymysql))?$ ]] || die "WEB_ROWS: unknown row '$r'"
done
command -v cargo >/dev/null || die "cargo is required (the report and plot are made by bench/loadgen)"

# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
make_tmp bench-web
# The private database: scripts/mariadb.sh keeps everything under STATE_DIR (outside $TMP, which cleanup
# removes: mariadb.sh stop finds the server's PID there); stopped on exit after the server under test.
export STATE_DIR=${TMPDIR:-/tmp}/asyncshim-bench-web-db.$$
cleanup_web() {
    cleanup
    "$ROOT/scripts/mariadb.sh" stop >/dev/null 2>&1
}
trap cleanup_web EXIT

# What the scenario needs that the tests do not: installed here when missing and we may (root).
ensure_pkgs() { # CHECK-FILE:PACKAGE...
    local -a missing=()
    local p
    for p in "$@"; do [[ -e ${p%%:*} ]] || missing+=("${p#*:}"); done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null || die "missing: ${missing[*]} (apt-get install them)"
    log "installing ${missing[*]} ..."
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300)
    "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
        { "${apt[@]}" update -qq >/dev/null 2>&1; "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; } ||
        die "cannot install ${missing[*]}"
}
ensure_pkgs /usr/bin/wrk:wrk /usr/bin/python3:python3 \
    /usr/lib/python3/dist-packages/django/__init__.py:python3-django \
    /usr/lib/python3/dist-packages/MySQLdb/__init__.py:python3-mysqldb \
    /usr/lib/python3/dist-packages/pymysql/__init__.py:python3-pymysql \
    /usr/lib/python3/dist-packages/gevent/__init__.py:python3-gevent \
    /usr/sbin/mariadbd:mariadb-server /usr/bin/mariadb:mariadb-client \
    /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf:fonts-dejavu-core

log "building the report tool (bench/loadgen) ..."
cargo build --release --quiet --manifest-path "$LOADGEN_DIR/Cargo.toml" >&2 || die "cannot build bench/loadgen"
SHIM_AVAILABLE=1
if [[ -f $LIB ]]; then
    cp "$LIB" "$TMP/libasyncshim.so" || die "cannot copy $LIB"
    export BENCH_LIB_BUILT; BENCH_LIB_BUILT=$(date -u -r "$LIB" +%Y-%m-%dT%H:%M:%SZ)
    LIB=$TMP/libasyncshim.so
else
    SHIM_AVAILABLE=0
    log "library not built ($LIB missing): shim rows will be n/a (run 'make build')"
fi
[[ -n $STATS_DIR ]] && { mkdir -p "$STATS_DIR" || die "cannot create $STATS_DIR"; STATS_DIR=$(cd "$STATS_DIR" && pwd); }

log "starting a private MariaDB ..."
RUN_TIMEOUT=120 run_bounded "$TMP/mariadb.out" "$TMP/mariadb.err" "$ROOT/scripts/mariadb.sh" start ||
    die "scripts/mariadb.sh start failed: $(tail -n 3 "$TMP/mariadb.err")"
set -a
# shellcheck disable=SC1091
source "$STATE_DIR/env"
set +a
MARIADB_PID=$(cat "$STATE_DIR/pid")
# Every in-flight request holds a database connection (Django opens one per request; the light app's
# pool grows to the concurrency), and closed ones linger a moment: room for the largest client count.
max_clients=$(printf '%s\n' $CLIENTS | sort -n | tail -n 1)
mariadb --no-defaults --protocol=socket --socket="$MARIADB_SOCKET" -uroot \
    -e "SET GLOBAL max_connections = $((max_clients * 2 + 200))" || die "cannot raise max_connections"

# --- one run --------------------------------------------------------------------------------------
RECORDS=$TMP/records.jsonl
: >"$RECORDS"
NATIVE_FAILED=0
SERVER_SECONDS=$((60 + WARMUP_S + DURATION + 60))

json_str() {
    local s=$1
    s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\t'/ }; s=${s//$'\n'/ }; s=${s//$'\r'/}
    printf '"%s"' "$s"
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null; }
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null; }

# web_run APP ROW CLIENTS REP : one server under one load; appends one record.
web_run() {
    local app=$1 row=$2 clients=$3 rep=$4
    local mode=${row%%-*} driver=mysqlclient pymode=threads path expect err="" rc
    [[ $row == *-* ]] && driver=${row#*-}
    [[ $mode == gevent ]] && pymode=gevent
    if [[ $app == django ]]; then path=/items; expect="20 items, total 210, slept 0"; else path=/wait; expect="slept 0"; fi
    local meta
    meta=$(printf '"kind": "web", "app": "%s", "row": "%s", "clients": %s, "rep": %s, "duration_s": %s, "load1": %s' \
        "$app" "$row" "$clients" "$rep" "$DURATION" "$(cut -d' ' -f1 /proc/loadavg)")
    if [[ $mode == shim && $SHIM_AVAILABLE -eq 0 ]]; then
        printf '{%s, "error": "library not built"}\n' "$meta" >>"$RECORDS"
        return
    fi
    local -a cmd=(env -u LD_PRELOAD)
    local stats=""
    if [[ $mode == shim ]]; then
        cmd=(env "LD_PRELOAD=$LIB")
        if [[ -n $STATS_DIR ]]; then
            stats=$STATS_DIR/$app-$row-$clients-$rep.txt
            rm -f "$stats"
            # The server ends by SIGTERM (no exit handlers): the report is asked for by signal.
            cmd+=("ASYNCSHIM_STATS=$stats" ASYNCSHIM_STATS_SIGNAL=USR2)
        fi
    fi
    log "$app $row $clients clients (run $rep/$REPS) ..."
    if ! start_server "$TMP/server.out" "$TMP/server.err" "${cmd[@]}" "$PY" "$WEB/server.py" "$app" "$pymode" "$driver" "$SERVER_SECONDS"; then
        err=$SERVER_ERR
    else
        local url=http://127.0.0.1:$SERVER_PORT$path
        bounded $((WARMUP_S + 30)) wrk -t1 -c"$WARMUP_CLIENTS" -d"${WARMUP_S}s" --timeout 20s -s "$WEB/check.lua" "$url" -- "$expect" \
            >"$TMP/warmup.out" 2>&1 </dev/null
        sleep 0.5
        local cpu0 db0 t0 t1 threads_max=0 rss_max=0 th rss
        cpu0=$(cpu_ticks "$SERVER_PID"); db0=$(cpu_ticks "$MARIADB_PID"); t0=$(date +%s.%N)
        start_bounded $((DURATION + 60)) wrk -t2 -c"$clients" -d"${DURATION}s" --timeout 60s -s "$WEB/check.lua" "$url" -- "$expect" \
            >"$TMP/wrk.out" 2>"$TMP/wrk.err" </dev/null
        while kill -0 "$CHILD" 2>/dev/null; do
            th=$(status_kb "$SERVER_PID" Threads); rss=$(status_kb "$SERVER_PID" VmRSS)
            [[ -n $th && $th -gt $threads_max ]] && threads_max=$th
            [[ -n $rss && $rss -gt $rss_max ]] && rss_max=$rss
            sleep 0.25
        done
        wait_bounded
        rc=$?
        t1=$(date +%s.%N)
        local cpu1 db1 hz
        cpu1=$(cpu_ticks "$SERVER_PID"); db1=$(cpu_ticks "$MARIADB_PID"); hz=$(getconf CLK_TCK)
        if [[ -n $stats ]]; then
            kill -USR2 "$SERVER_PID" 2>/dev/null
            for _ in 1 2 3 4 5 6 7 8 9 10; do [[ -s $stats ]] && break; sleep 0.2; done
        fi
        stop_server
        local wrk_json
        wrk_json=$(grep '^{"requests"' "$TMP/wrk.out" | tail -n 1)
        if [[ -n $SERVER_STATUS ]]; then
            err="server died during the run ($SERVER_STATUS: $(grep -v '^ ' "$TMP/server.err" | tail -n 1 | cut -c1-150))"
        elif [[ $rc -ne 0 || -z $wrk_json ]]; then
            err="wrk: exit status $rc ($(tail -n 1 "$TMP/wrk.err" "$TMP/wrk.out" | tr '\n' ' ' | cut -c1-150))"
        fi
        meta+=$(printf ', "os_threads_max": %s, "rss_max_kb": %s, "server_cpu_cores": %s, "mariadb_cpu_cores": %s, "server_tracebacks": %s' \
            "$threads_max" "$rss_max" \
            "$(awk -v a="$cpu0" -v b="$cpu1" -v h="$hz" -v s="$t0" -v e="$t1" 'BEGIN { if (a == "" || b == "") print "null"; else printf "%.2f", (b - a) / h / (e - s) }')" \
            "$(awk -v a="$db0" -v b="$db1" -v h="$hz" -v s="$t0" -v e="$t1" 'BEGIN { if (a == "" || b == "") print "null"; else printf "%.2f", (b - a) / h / (e - s) }')" \
            "$(grep -c '^Traceback' "$TMP/server.err")")
        [[ -n $wrk_json ]] && meta+=", \"wrk\": $wrk_json"
        [[ -n $stats ]] && meta+=", \"stats_file\": $(json_str "${stats#"$ROOT"/}")"
    fi
    if [[ -n $err ]]; then
        log "  failed: $err"
        [[ $mode == native ]] && NATIVE_FAILED=1
        meta+=", \"error\": $(json_str "$err")"
    fi
    printf '{%s}\n' "$meta" >>"$RECORDS"
    if [[ -n ${wrk_json:-} ]]; then
        local rps bad
        rps=$(awk -v r="$(grep -o '"requests": [0-9]*' <<<"$wrk_json" | cut -d' ' -f2)" -v d="$(grep -o '"duration_us": [0-9]*' <<<"$wrk_json" | cut -d' ' -f2)" \
            'BEGIN { printf "%.0f", r / (d / 1e6) }')
        bad=$(grep -o '"bad": [0-9]*' <<<"$wrk_json" | cut -d' ' -f2)
        log "  $rps requests/s, $bad bad responses, $threads_max OS threads, $((rss_max / 1024)) MiB"
    fi
}

for ((rep = 1; rep <= REPS; rep++)); do
    for app in $APPS; do
        for c in $CLIENTS; do
            for row in $ROWS; do
                web_run "$app" "$row" "$c" "$rep"
            done
        done
    done
done

# --- report ---------------------------------------------------------------------------------------
PLOT=${OUT%.json}.png
REL_PLOT=$PLOT
[[ $PLOT == "$ROOT"/* ]] && REL_PLOT=${PLOT#"$ROOT"/}
mkdir -p "$(dirname "$OUT")" || die "cannot create $(dirname "$OUT")"
export BENCH_COMMIT; BENCH_COMMIT=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
(cd "$ROOT" && "$LOADGEN" web-report --in "$RECORDS" --out "$OUT" --plot "$REL_PLOT" $([[ $QUICK == 1 ]] && echo --quick)) ||
    die "report failed"
log "wrote ${OUT#"$ROOT"/} and ${PLOT#"$ROOT"/}"
[[ $NATIVE_FAILED -eq 0 ]]
