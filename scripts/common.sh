# The process control shared by every script that runs programs (sourced, not run): the test runners
# (through scripts/differential.sh, their core), the other test scripts, the glibc matrix, demo and bench.
# Every program a script starts is bounded in time and ended by its PID or process group when the script
# exits, also on Ctrl-C or TERM; nothing is found or killed by name.
#   exit_traps FUNC                 FUNC at exit, also after Ctrl-C (status 130) or TERM (143)
#   bounded LIMIT CMD...            CMD under timeout, ended by PID if this script is stopped
#   start_bounded / wait_bounded    the same in two steps, to watch CMD while it runs
#   run_in_group DIR LIMIT OUT ERR CMD...   CMD in a process group of its own, nothing left behind
#   make_tmp NAME, run_bounded, start_server, stop_server   a scratch directory and servers (demo, bench)

# exit_traps FUNC: FUNC runs when the script exits, normally or by `exit`, and Ctrl-C or TERM make it exit
# (130, 143) so that FUNC runs then too. (FUNC ends what the script started: `stop_bounded`, `stop_group`.)
exit_traps() {
    trap "$1" EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# --- bounded commands -----------------------------------------------------------------------------------
# start_bounded LIMIT CMD...: starts CMD in the background under `timeout -k 5 LIMIT` (TERM at the limit,
# KILL 5 s later); its PID (timeout's) is $CHILD. Should the script be killed outright (no trap runs),
# timeout and CMD die with it (setpriv --pdeathsig). CMD is a program, not a shell function; redirect the
# call to give it its input and output.
CHILD=""
start_bounded() {
    local limit=$1
    shift
    setpriv --pdeathsig KILL -- timeout -k 5 "$limit" setpriv --pdeathsig KILL -- "$@" &
    CHILD=$!
}

# wait_bounded: waits for $CHILD and returns its status (124 when the limit struck, 137 when it was killed).
wait_bounded() {
    local rc
    wait "$CHILD" 2>/dev/null   # (2>/dev/null: no job notice for a crash; the caller reports it)
    rc=$?
    CHILD=""
    return $rc
}

# bounded LIMIT CMD...: start_bounded and wait_bounded; returns CMD's status.
bounded() {
    start_bounded "$@"
    wait_bounded
}

# stop_bounded: ends the bounded command in progress, if any (for an exit trap): TERM to timeout, which
# passes it on to CMD and kills it 5 s later if it is still there.
stop_bounded() {
    if [[ -n $CHILD ]] && kill -0 "$CHILD" 2>/dev/null; then
        kill -TERM "$CHILD" 2>/dev/null
        wait "$CHILD" 2>/dev/null
    fi
    CHILD=""
}

# --- runs in a process group of their own ---------------------------------------------------------------
# run_in_group DIR LIMIT OUT ERR CMD...: runs CMD in DIR with stdin from /dev/null, stdout to OUT and stderr
# to ERR; sets RUN_STATUS, RUN_SECS, RUN_TIMEDOUT, RUN_LEFTOVER (and CURRENT_RUN, the group, while it runs).
# setsid gives the run its own session and process group (pgid = this job's pid, since a job of a
# non-interactive shell is never a group leader, so setsid does not fork); timeout signals that whole
# group when the limit passes (TERM, KILL 5 s later). Whatever is still in the group a second after the
# run ended is a leftover and is killed. (fd 9, the runners' lock, is not passed on.)
CURRENT_RUN=""
run_in_group() {
    local dir=$1 limit=$2 out=$3 err=$4
    shift 4
    local t0=$EPOCHREALTIME
    (cd "$dir" && exec setsid timeout -k 5 "$limit" "$@" </dev/null >"$out" 2>"$err" 9>&-) &
    local pid=$!
    CURRENT_RUN=$pid
    wait "$pid" 2>/dev/null
    RUN_STATUS=$?
    local t1=$EPOCHREALTIME
    RUN_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    RUN_TIMEDOUT=0
    if [ "$RUN_STATUS" -eq 124 ] ||
        { [ "$RUN_STATUS" -eq 137 ] && awk -v s="$RUN_SECS" -v l="$limit" 'BEGIN { exit !(s >= l) }'; }; then
        RUN_TIMEDOUT=1
    fi
    RUN_LEFTOVER=0
    local i
    for i in 1 2 3 4 5 6 7 8 9 10; do
        kill -0 -- "-$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 -- "-$pid" 2>/dev/null; then
        RUN_LEFTOVER=1
        kill -KILL -- "-$pid" 2>/dev/null
    fi
    CURRENT_RUN=""
}

# stop_group: ends the run in progress, if any (for an exit trap): TERM to its whole process group, KILL
# a second later.
stop_group() {
    if [ -n "$CURRENT_RUN" ] && kill -0 -- "-$CURRENT_RUN" 2>/dev/null; then
        kill -TERM -- "-$CURRENT_RUN" 2>/dev/null
        sleep 1
        kill -KILL -- "-$CURRENT_RUN" 2>/dev/null
    fi
    CURRENT_RUN=""
}

# --- a scratch directory and servers (demo, bench) ------------------------------------------------------
# make_tmp NAME : creates $TMP and installs the traps that clean it (and running children) up.
make_tmp() {
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/asyncshim-$1.XXXXXX") || { echo "$1: mktemp failed" >&2; exit 1; }
    SERVER_PID=""
    exit_traps cleanup
}

cleanup() {
    stop_bounded
    stop_server
    rm -rf "$TMP"
}

# run_bounded OUT ERR CMD... : `bounded $RUN_TIMEOUT CMD...` with stdout to OUT, stderr to ERR and no
# input; returns its exit status (124 when the time limit struck).
run_bounded() {
    local out=$1 err=$2
    shift 2
    bounded "$RUN_TIMEOUT" "$@" >"$out" 2>"$err" </dev/null
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
