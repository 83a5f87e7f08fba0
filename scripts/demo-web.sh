#!/usr/bin/env bash
# asyncshim demo, second act: the essay's scenario. A Django app (Debian's Django 3.2 on mysqlclient, the
# C driver that gevent cannot make cooperative) whose view waits for the database (SELECT SLEEP(0.02)),
# fetches 20 rows through the ORM and renders a template, served by the standard library's wsgiref with
# a thread per connection (bench/web/server.py). Under the same load from wrk (DEMO_CLIENTS concurrent
# clients, every response checked), side by side: native threads, the same script under the shim, and
# gevent's monkey patching with mysqlclient and with the pure-Python PyMySQL. Then one conclusion.
#
# It runs scripts/bench-web.sh (one run per row; its JSON goes to a temporary file, the committed
# bench/results/web.json is left alone), which starts and stops a private MariaDB (scripts/mariadb.sh).
#
# Environment:
#   DEMO_CLIENTS=N    concurrent clients (default 1000; at most 5000)
#   DEMO_SECONDS=S    measured seconds per row (default 10)
#   DEMO_APP=APP      django (default) or wsgi (the plain WSGI app of bench/web/light.py)
#
# Exit status: that of scripts/bench-web.sh (0 when the native run worked).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLIENTS=${DEMO_CLIENTS:-1000}
SECS=${DEMO_SECONDS:-10}
APP=${DEMO_APP:-django}
die() { echo "demo-web: $*" >&2; exit 1; }
[[ $CLIENTS =~ ^[1-9][0-9]*$ && $CLIENTS -le 5000 ]] || die "DEMO_CLIENTS must be an integer in 1..5000 (got '$CLIENTS')"
[[ $SECS =~ ^[1-9][0-9]*$ ]] || die "DEMO_SECONDS must be a positive integer (got '$SECS')"
[[ $APP == django || $APP == wsgi ]] || die "DEMO_APP must be django or wsgi (got '$APP')"

# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
make_tmp demo-web

echo "asyncshim demo, act 2: a Python web app on a blocking MySQL driver"
if [[ $APP == django ]]; then
    echo "  Django $(/usr/bin/python3 -c 'import django; print(django.get_version())' 2>/dev/null || echo '(not installed yet)') on mysqlclient; the view (bench/web/webapp/views.py):"
    echo "    SELECT SLEEP(0.02)  ->  Item.objects.order_by('id')[:20]  ->  template webapp/items.html"
else
    echo "  plain WSGI on mysqlclient (bench/web/light.py): one SELECT SLEEP(0.02) per request"
fi
echo "  served by wsgiref + ThreadingMixIn (a thread per connection), $CLIENTS concurrent clients (wrk),"
echo "  $SECS s per row, every response checked; machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  rows: native threads | the same script under the shim | gevent + mysqlclient | gevent + PyMySQL"
echo

RUN_TIMEOUT=$((4 * (SECS + 150) + 300)) run_bounded "$TMP/report.md" "$TMP/bench.err" \
    env QUICK=0 WEB_APPS="$APP" WEB_CLIENTS="$CLIENTS" WEB_REPS=1 WEB_DURATION="$SECS" \
    BENCH_WEB_OUT="$TMP/web.json" "$ROOT/scripts/bench-web.sh"
rc=$?
# The first table of the report: the rows of the one app and client count.
awk '/^\|/ { print; seen = 1; next } seen { exit }' "$TMP/report.md"
echo
if [[ ! -s $TMP/web.json ]]; then
    echo "the run failed (status $rc):"
    tail -n 5 "$TMP/bench.err"
    exit 1
fi
grep -E 'failed' "$TMP/bench.err" | sed 's/^bench-web: */  /'
/usr/bin/python3 - "$TMP/web.json" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
cells = {c["row"]: c for c in doc["cells"]}
def rps(row):
    return (cells.get(row) or {}).get("rps") or 0
n, s = rps("native"), rps("shim")
g = max(rps("gevent-mysqlclient"), rps("gevent-pymysql"))
shim = cells.get("shim") or {}
native = cells.get("native") or {}
if not (n and s):
    print("Conclusion: no comparison (a run failed, see above).")
    sys.exit(0)
print("Conclusion: the unmodified script under the shim served %.0f requests/s with %s OS threads:"
      % (s, int(shim.get("os_threads") or 0)))
print("  %.2fx native threads (%s OS threads), %.2fx the better gevent row%s;"
      % (s / n, int(native.get("os_threads") or 0), s / g if g else float("nan"),
         " (gevent needs the pure-Python driver: with mysqlclient each query blocks the whole process)"))
print("  %d wrong responses or errors under the shim." % shim.get("errors", 0))
EOF
exit $rc
