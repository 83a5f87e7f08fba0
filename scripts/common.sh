# Shared by demo.sh and bench.sh (sourced): a private temporary directory removed on exit, bounded runs
# that an interrupted script ends by PID, and servers started in the background and stopped by PID.

# make_tmp NAME : creates $TMP and installs the traps that clean it (and running children) up.
make_tmp() {
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/asyncshim-$1.XXXXXX") || { echo "$1: mktemp failed" >&2; exit 1; }
    CHILD=""
    SERVER_PID=""
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

cleanup() {
    if [[ -n $CHILD ]] && kill -0 "$CHILD" 2>/dev/null; then
        kill -TERM "$CHILD" 2>/dev/null   # timeout(1) passes it on to the program
        wait "$CHILD" 2>/dev/null
    fi
    stop_server
    rm -rf "$TMP"
}

# run_bounded OUT ERR CMD... : runs CMD under timeout ($RUN_TIMEOUT s) in the background, so that an
# interrupted script can end it by PID; returns its exit status (124 when the time limit struck).
run_bounded() {
    local out=$1 err=$2 rc
    shift 2
    timeout -k 3 "$RUN_TIMEOUT" "$@" >"$out" 2>"$err" </dev/null &
    CHILD=$!
    wait "$CHILD" 2>/dev/null   # (2>/dev/null: no job notice for a crash; the caller reports it)
    rc=$?
    CHILD=""
    return $rc
}

# start_server OUT ERR CMD... : starts a server that prints "listening PORT" when ready (the echo servers
# of c-tests/bench and bench/py/echo_server.py). CMD must exec the server itself (env VAR=... PROG is
# fine, timeout(1) is not) so that $SERVER_PID is the server's own PID, whose /proc files the load
# generator reads; the servers bound their own lifetime. Sets SERVER_PID and SERVER_PORT; returns 1 (with
# the reason in SERVER_ERR) when the server exits or stays silent for 15 s.
start_server() {
    local out=$1 err=$2 i
    shift 2
    SERVER_PORT="" SERVER_ERR=""
    # Empty it here: the background job's own redirection happens later, and until then the file would
    # still hold the previous server's port.
    : >"$out"
    "$@" >"$out" 2>"$err" </dev/null &
    SERVER_PID=$!
    for ((i = 0; i < 300; i++)); do
        SERVER_PORT=$(sed -n 's/^listening \([0-9][0-9]*\)$/\1/p' "$out" 2>/dev/null | head -n 1)
        [[ -n $SERVER_PORT ]] && return 0
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            wait "$SERVER_PID" 2>/dev/null
            SERVER_ERR="server exited with status $? before listening: $(tail -n 1 "$err" 2>/dev/null | cut -c1-150)"
            SERVER_PID=""
            return 1
        fi
        sleep 0.05
    done
    SERVER_ERR="server did not print 'listening PORT' within 15 s"
    stop_server
    return 1
}

# stop_server : SIGTERM to $SERVER_PID, SIGKILL after 5 s; sets SERVER_STATUS when it had already exited
# on its own (a crash: "exit status N" / "killed by signal NAME"), else leaves it empty.
stop_server() {
    SERVER_STATUS=""
    [[ -z ${SERVER_PID:-} ]] && return 0
    local rc i
    if kill -0 "$SERVER_PID" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$SERVER_PID/stat" 2>/dev/null) != Z ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null
        for ((i = 0; i < 100; i++)); do
            [[ $(awk '{print $3}' "/proc/$SERVER_PID/stat" 2>/dev/null) == Z ]] && break
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.05
        done
        kill -KILL "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    else
        wait "$SERVER_PID" 2>/dev/null
        rc=$?
        if [[ $rc -gt 128 ]]; then
            SERVER_STATUS="killed by signal $(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))"
        else
            SERVER_STATUS="exit status $rc"
        fi
    fi
    SERVER_PID=""
}
