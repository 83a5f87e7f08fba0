#!/usr/bin/env bash
# A private MariaDB server for the app tests: scripts/mariadb.sh start|stop|status
#
# start   stops what a previous run left in $STATE_DIR, creates a datadir there (mariadb-install-db),
#         starts Debian's mariadbd as root without systemd on 127.0.0.1:<free port> with its own socket,
#         waits (bounded) until it answers, creates user $MARIADB_USER (password) and database $MARIADB_DB,
#         and writes $STATE_DIR/env (MARIADB_HOST/PORT/SOCKET/USER/PASSWORD/DB) and $STATE_DIR/pid.
# stop    TERM to the server's PID, KILL after 20 s, then removes $STATE_DIR.
# status  prints the env file and exits 0 when the server answers, else exits 3.
#
# STATE_DIR defaults to /tmp/asyncshim-mariadb. Everything (datadir, socket, pid, logs) lives under it,
# and --no-defaults keeps /etc/mysql/*.cnf out, so the system's /var/lib/mysql and /run/mysqld are never
# touched, whether or not a system server runs.
set -euo pipefail
STATE_DIR=${STATE_DIR:-/tmp/asyncshim-mariadb}
case $STATE_DIR in /*) ;; *) STATE_DIR=$PWD/$STATE_DIR ;; esac
MARK=$STATE_DIR/.asyncshim-mariadb   # only a directory carrying this mark is ever removed
DATA=$STATE_DIR/data
SOCK=$STATE_DIR/mysqld.sock
PIDFILE=$STATE_DIR/pid
USER_NAME=asyncshim
USER_PW='asyncshim-pw'
DB=asyncshim_test

log() { echo "mariadb.sh: $*" >&2; }

# Our server's PID, if the pid file names a live mariadbd serving our datadir (not a recycled PID).
server_pid() {
    local pid
    [ -f "$PIDFILE" ] || return 1
    pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qxF -- "--datadir=$DATA" || return 1
    echo "$pid"
}

client() { # runs the client as root over our socket only
    mariadb --no-defaults --protocol=socket --socket="$SOCK" -uroot "$@"
}

do_stop() {
    local pid i
    if pid=$(server_pid); then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 200; i++)); do
            [ -d "/proc/$pid" ] || break
            # A zombie (its parent has not reaped it yet) is dead enough.
            [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] && break
            sleep 0.1
        done
        if [ -d "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; then
            log "server $pid ignored TERM for 20 s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    if [ -d "$STATE_DIR" ]; then
        if [ -e "$MARK" ]; then
            rm -rf "$STATE_DIR"
        else
            log "not removing $STATE_DIR: it was not made by this script"
        fi
    fi
}

do_start() {
    if [ -e "$STATE_DIR" ]; then
        [ -e "$MARK" ] || { log "$STATE_DIR exists and was not made by this script; refusing to use it"; exit 1; }
        do_stop   # a stale run (crashed runner, killed test): its server and datadir go first
    fi
    mkdir -p "$STATE_DIR"
    touch "$MARK"
    if ! mariadb-install-db --no-defaults --user=root --datadir="$DATA" --skip-test-db \
        --auth-root-authentication-method=socket >"$STATE_DIR/install.log" 2>&1; then
        log "mariadb-install-db failed:"; tail -n 20 "$STATE_DIR/install.log" >&2; exit 1
    fi
    local attempt port pid i up
    # The free port is found before the server binds it; another process may take it in between, so a
    # server that fails to start is retried on a new port.
    for attempt in 1 2 3; do
        port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        rm -f "$SOCK" "$PIDFILE"
        # setsid: the server gets its own session, so a terminal's Ctrl-C or a test's process-group kill
        # never reaches it; it is stopped only by `stop`, by PID. fd 9 (the runner's lock) is closed.
        setsid /usr/sbin/mariadbd --no-defaults --user=root --datadir="$DATA" --socket="$SOCK" \
            --port="$port" --bind-address=127.0.0.1 --pid-file="$STATE_DIR/mariadbd.pid" \
            --log-error="$STATE_DIR/error.log" --max-connections=1000 --skip-name-resolve \
            --skip-log-bin --innodb-buffer-pool-size=64M --innodb-log-file-size=32M \
            --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 --performance-schema=0 \
            --max-allowed-packet=64M --thread-cache-size=300 \
            </dev/null >"$STATE_DIR/mariadbd.out" 2>&1 9>&- &
        pid=$!
        echo "$pid" >"$PIDFILE"
        up=0
        for ((i = 0; i < 300; i++)); do   # 30 s
            [ -d "/proc/$pid" ] || break
            if client -e 'SELECT 1' >/dev/null 2>&1; then up=1; break; fi
            sleep 0.1
        done
        [ $up -eq 1 ] && break
        log "server did not come up on port $port (attempt $attempt):"
        tail -n 5 "$STATE_DIR/error.log" >&2 || true
        do_stop_server_only "$pid"
    done
    if [ $up -ne 1 ]; then
        log "giving up"; do_stop; exit 1
    fi
    client <<SQL
CREATE DATABASE IF NOT EXISTS $DB;
CREATE USER '$USER_NAME'@'127.0.0.1' IDENTIFIED BY '$USER_PW';
CREATE USER '$USER_NAME'@'localhost' IDENTIFIED BY '$USER_PW';
GRANT ALL PRIVILEGES ON *.* TO '$USER_NAME'@'127.0.0.1';
GRANT ALL PRIVILEGES ON *.* TO '$USER_NAME'@'localhost';
SQL
    # The test user must get in over TCP with its password, as the tests will.
    if ! mariadb --no-defaults --protocol=tcp -h127.0.0.1 -P"$port" -u"$USER_NAME" -p"$USER_PW" "$DB" \
        -e 'SELECT 1' >/dev/null; then
        log "test user cannot log in over TCP"; do_stop; exit 1
    fi
    cat >"$STATE_DIR/env.tmp" <<ENV
MARIADB_HOST=127.0.0.1
MARIADB_PORT=$port
MARIADB_SOCKET=$SOCK
MARIADB_USER=$USER_NAME
MARIADB_PASSWORD=$USER_PW
MARIADB_DB=$DB
ENV
    mv "$STATE_DIR/env.tmp" "$STATE_DIR/env"
    log "mariadbd $pid on 127.0.0.1:$port (socket $SOCK)"
}

do_stop_server_only() { # pid: kills a server that failed to come up, keeping the datadir for a retry
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
}

case ${1:-} in
    start) do_start ;;
    stop) do_stop ;;
    status)
        if server_pid >/dev/null && [ -f "$STATE_DIR/env" ] && client -e 'SELECT 1' >/dev/null 2>&1; then
            cat "$STATE_DIR/env"
            echo "MARIADB_PID=$(server_pid)"
        else
            echo "mariadb.sh: not running (state dir $STATE_DIR)" >&2
            exit 3
        fi
        ;;
    *) echo "usage: $0 start|stop|status   (STATE_DIR=${STATE_DIR})" >&2; exit 2 ;;
esac
