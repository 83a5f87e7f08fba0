#!/usr/bin/env bash
# asyncshim-test: timeout=90
# asyncshim-test: modes=native,shim,shim-w1
#
# Do no harm: HTTP clients and servers under the shim.
#  1. curl (under the shim) against a native `python3 -m http.server`: sequential keep-alive requests in
#     one invocation, --parallel transfers, a 404, a 501;
#  2. the reverse: http.server under the shim, the same curl commands run natively;
#  3. nginx (master + 2 workers, started as root with a temporary config on a free port) under the shim,
#     loaded by curl --parallel (under the shim) and by a native Python client with 50 connections;
#     then a graceful stop (SIGQUIT) and the access log's line count.
# Output: status codes, sizes, checksums and counts (no timings).
. "$APPS_DIR/lib.sh"
. "$APPS_DIR/harm_lib.bash"
cd "$H_TMP" || exit 1
export LC_ALL=C

www=$H_TMP/www
mkdir -p "$www/sub"
native "$PY" - "$www" <<'EOF'
import os, sys
root = sys.argv[1]
for i, size in enumerate([0, 1, 1000, 65536, 300000, 1500000]):
    with open(os.path.join(root, "f%d.bin" % i), "wb") as f:
        f.write(bytes((k * 13 + i) % 256 for k in range(size)))
for i in range(40):
    with open(os.path.join(root, "sub", "p%02d.txt" % i), "w") as f:
        f.write("page %d\n" % i * (i + 1))
EOF
(cd "$www" && find . -type f | sort | xargs sha256sum) >expected.sums

# curl_suite RUNNER PORT: the curl part; RUNNER is `shimmed` or `native`.
curl_suite() {
    local run=$1 port=$2 base="http://127.0.0.1:$2" i
    rm -rf dl && mkdir dl
    # One invocation, several URLs: one keep-alive connection, reused.
    $run curl -sS --fail-with-body -w '%{http_code} %{size_download} %{num_connects}\n' \
        "$base/f0.bin" -o dl/f0.bin "$base/f1.bin" -o dl/f1.bin "$base/f2.bin" -o dl/f2.bin \
        "$base/f3.bin" -o dl/f3.bin "$base/f4.bin" -o dl/f4.bin "$base/f5.bin" -o dl/f5.bin
    # Parallel transfers (curl's multi interface: non-blocking sockets and poll); at most 4 at a time, as
    # http.server listens with a backlog of 5 (SYNs beyond it are dropped and retried a second later).
    local args=()
    for i in $(seq -w 0 39); do args+=("$base/sub/p$i.txt" -o "dl/p$i.txt"); done
    $run curl -sS --no-progress-meter --parallel --parallel-max 4 -w '%{http_code}\n' "${args[@]}" | sort | uniq -c
    (cd dl && sha256sum f*.bin) | sed 's/ dl\// /'
    (cd dl && cat p*.txt) | sha256sum
    $run curl -sS -o /dev/null -w 'missing: %{http_code}\n' "$base/missing"
    $run curl -sS -o /dev/null -w 'post: %{http_code}\n' -X POST --data 'x=1' "$base/f1.bin"
    $run curl -sS -I "$base/f2.bin" | grep -Ei '^(HTTP|content-length|content-type)' | tr -d '\r'
    $run curl -sS "$base/sub/" | grep -c 'href="p'
}

start_http_server() { # "env [VARS]" -> sets port, srv (the server's own PID: env execs it)
    local attempt
    for attempt in 1 2 3; do
        port=$(free_port)
        bg http.server $1 "$PY" -m http.server -b 127.0.0.1 -d "$www" -p HTTP/1.1 "$port" >http.out 2>http.err
        srv=$BG_PID
        wait_port "$port" 20 "$srv" && return 0
        bg_stop "$srv"
        # Only a lost race for the port is retried; any other failure (a crash) fails the test.
        grep -q 'Address already in use' http.err || break
    done
    die "http.server did not start: $(cat http.err)"
}

echo "== curl (shimmed) -> http.server (native)"
start_http_server "env -u LD_PRELOAD -u ASYNCSHIM_WORKERS"
curl_suite shimmed "$port"
bg_stop "$srv"
echo "== curl (native) -> http.server (shimmed)"
start_http_server "env $SHIM_ENV"
curl_suite native "$port"
bg_stop "$srv"
echo "http.server requests logged: $(grep -c '"GET \|"HEAD \|"POST ' http.err)"

echo "== nginx (shimmed)"
ng=$H_TMP/nginx
mkdir -p "$ng/logs" "$ng/tmp"
for attempt in 1 2 3; do
    port=$(free_port)
    cat >"$ng/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 2;
user root root;
pid $ng/nginx.pid;
error_log $ng/logs/error.log warn;
events { worker_connections 512; }
http {
    access_log $ng/logs/access.log;
    client_body_temp_path $ng/tmp/body;
    proxy_temp_path $ng/tmp/proxy;
    fastcgi_temp_path $ng/tmp/fastcgi;
    uwsgi_temp_path $ng/tmp/uwsgi;
    scgi_temp_path $ng/tmp/scgi;
    types { text/plain txt; application/octet-stream bin; }
    keepalive_requests 1000;
    server {
        listen 127.0.0.1:$port;
        root $www;
        autoindex on;
        location = /status { return 200 "nginx ok\n"; }
    }
}
EOF
    bg nginx env $SHIM_ENV nginx -p "$ng" -e "$ng/logs/error.log" -c "$ng/nginx.conf"
    ngx=$BG_PID
    wait_port "$port" 20 "$ngx" && break
    bg_stop "$ngx"
    ngx=
    grep -q 'Address already in use' "$ng/logs/error.log" || break
done
[ -n "$ngx" ] || die "nginx did not start: $(cat "$ng/logs/error.log")"
curl_suite shimmed "$port"
shimmed curl -sS "http://127.0.0.1:$port/status"
native "$PY" - "$port" <<'EOF'
import http.client, sys, threading, hashlib
port = int(sys.argv[1])
ok = [0]
lock = threading.Lock()
want = {"/f%d.bin" % i: open("www/f%d.bin" % i, "rb").read() for i in range(6)}
def client(c):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    good = 0
    for k in range(12):
        path = "/f%d.bin" % ((c + k) % 6)
        conn.request("GET", path)
        r = conn.getresponse()
        good += r.status == 200 and r.read() == want[path]
    conn.close()
    with lock:
        ok[0] += good
ts = [threading.Thread(target=client, args=(c,)) for c in range(50)]
for t in ts: t.start()
for t in ts: t.join()
print("python client: %d/600 correct" % ok[0])
EOF
echo "nginx master OS threads: $( [ "$(h_threads "$ngx")" -le $(( $(h_workers) + 8 )) ] && echo bounded)"
kill -QUIT "$ngx"
bg_wait "$ngx" 20
echo "nginx exit status after QUIT: $?"
echo "nginx access log lines: $(wc -l <"$ng/logs/access.log")"
echo "nginx access log statuses: $(awk '{print $9}' "$ng/logs/access.log" | sort | uniq -c | tr -s ' ' | tr '\n' ';')"
echo "nginx error log: $(grep -Ec '\[(emerg|alert|crit)\]' "$ng/logs/error.log") emerg/alert/crit, $(grep -c '\[error\].*open() ".*/www/missing" failed (2: No such file or directory)' "$ng/logs/error.log") x 'missing: ENOENT', $(grep -c '\[error\]' "$ng/logs/error.log") errors"
