#!/usr/bin/env bash
# asyncshim-test: timeout=90
# asyncshim-test: modes=native,shim,shim-w1
#
# CPython servers under the shim, each with 300 concurrent keep-alive clients (run natively):
#  1. `python3 -m http.server` (ThreadingHTTPServer, HTTP/1.1) serving a directory of known files;
#  2. a socketserver.ThreadingTCPServer line-echo server (python_echo_server.py).
# The client (python_servers_client.py) checks every response and, while all clients are connected,
# the server's OS thread count: natively >= 300 (a thread per connection), under the shim <= workers + 8.
. "$APPS_DIR/lib.sh"
. "$APPS_DIR/harm_lib.bash"
N=300

# --- 1. http.server -------------------------------------------------------------------------------
docroot=$H_TMP/www
mkdir -p "$docroot"
native "$PY" - "$docroot" <<'PYEOF'
import sys, os
sizes = {"empty.txt": 0, "one.txt": 1, "small.html": 777, "page.bin": 4096, "odd.dat": 65537, "big.bin": 262144}
for i, (name, size) in enumerate(sorted(sizes.items())):
    pattern = bytes((j * 7 + i) % 251 for j in range(1024))
    with open(os.path.join(sys.argv[1], name), "wb") as f:
        f.write((pattern * (size // 1024 + 1))[:size])
PYEOF
started=
for attempt in 1 2 3; do
    port=$(free_port)
    bg_shim http.server "$PY" -u -m http.server -b 127.0.0.1 -d "$docroot" -p HTTP/1.1 "$port" \
        >"$H_TMP/http.out" 2>"$H_TMP/http.err"
    http_pid=$BG_PID
    if wait_port "$port" 20 "$http_pid"; then started=1; break; fi
    bg_stop "$http_pid"
    # Only a lost race for the port is retried; any other failure (a crash) fails the test.
    grep -q 'Address already in use' "$H_TMP/http.err" || break
done
[ -n "$started" ] || die "http.server did not start: $(cat "$H_TMP/http.err")"
native "$PY" "$APPS_DIR/python_servers_client.py" http "$port" "$docroot" "$http_pid" "$N"
kill -TERM "$http_pid"
bg_wait "$http_pid" 20
echo "http.server exit status after TERM: $?"
sed "s/$port/PORT/g" "$H_TMP/http.out"
# One log line per request on stderr: count them by status.
echo "http.server log: $(grep -c '"GET [^"]* HTTP/1.1" 200 ' "$H_TMP/http.err") x 200," \
     "$(grep -c '"GET [^"]* HTTP/1.1" 404 ' "$H_TMP/http.err") x 404," \
     "$(grep -c 'code 404, message File not found' "$H_TMP/http.err") x 'code 404'," \
     "$(grep -Evc '"GET [^"]* HTTP/1.1" [24]0[04] |code 404, message File not found' "$H_TMP/http.err") other lines"

# --- 2. socketserver.ThreadingTCPServer echo ---------------------------------------------------------
bg_shim echo-server "$PY" -u "$APPS_DIR/python_echo_server.py" "$H_TMP/echo.port" >"$H_TMP/echo.out" 2>"$H_TMP/echo.err"
echo_pid=$BG_PID
for i in $(seq 200); do [ -s "$H_TMP/echo.port" ] && break; sleep 0.05; done
[ -s "$H_TMP/echo.port" ] || die "echo server did not start: $(cat "$H_TMP/echo.err")"
native "$PY" "$APPS_DIR/python_servers_client.py" echo "$(cat "$H_TMP/echo.port")" "$echo_pid" "$N"
bg_wait "$echo_pid" 20
echo "echo server exit status: $?"
cat "$H_TMP/echo.out"
if [ -s "$H_TMP/echo.err" ]; then echo "echo server stderr:"; cat "$H_TMP/echo.err"; fi
