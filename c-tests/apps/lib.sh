# Helpers for application tests; source it first: `. "$APPS_DIR/lib.sh"`.
# The contract (environment, markers, pass rules) is in c-tests/README.md, "Application tests".
#
#   shimmed CMD...          run CMD with $SHIM_ENV applied (the program under test)
#   native CMD...           run CMD without the shim (peers such as servers the test talks to)
#   bg NAME CMD...          start CMD in the background, recorded for cleanup; its PID in $BG_PID
#   bg_wait PID [SECS]      wait (bounded, default 30 s) for a bg process; returns its status
#                           (124 when it did not end in time: it is then killed)
#   bg_stop PID [SECS]      TERM, then KILL after SECS (default 5); waits for it
#   on_exit CMD             run CMD (a string, eval'ed) at exit, before the bg processes are stopped
#   free_port               print a TCP port on 127.0.0.1 that is free right now
#   wait_port PORT [SECS] [PID]  wait until 127.0.0.1:PORT accepts (default 15 s; fails early if PID died)
#   elapsed T0              seconds since T0 (a saved $EPOCHREALTIME), "%.2f"
#   die MSG...              message to stderr, exit 1
#
# Every background process is stopped by PID when the script exits (normally, by `die`, or by the
# runner's timeout TERM), so a test never leaves anything in its process group.
set -u
set -o pipefail

: "${SHIM_ENV:=}"
: "${MODE:=native}"
: "${PY:=/usr/bin/python3}"

die() {
    echo "$(basename "$0"): $*" >&2
    exit 1
}

shimmed() {
    # SHIM_ENV is a list of NAME=VALUE words without spaces inside a value (the runner guarantees it).
    # shellcheck disable=SC2086
    env $SHIM_ENV "$@"
}

native() {
    env -u LD_PRELOAD -u ASYNCSHIM_WORKERS "$@"
}

_BG_PIDS=()
_BG_NAMES=()
_EXIT_CMDS=()
BG_PID=

bg() {
    local name=$1
    shift
    # shimmed/native are functions: started as they are, $! would be a bash subshell rather than the
    # program, so they are expanded here and the background job execs the program itself.
    case $1 in
        # shellcheck disable=SC2086
        shimmed) shift; set -- env $SHIM_ENV "$@" ;;
        native) shift; set -- env -u LD_PRELOAD -u ASYNCSHIM_WORKERS "$@" ;;
    esac
    "$@" &
    BG_PID=$!
    _BG_PIDS+=("$BG_PID")
    _BG_NAMES+=("$name")
}

_bg_alive() { kill -0 "$1" 2>/dev/null; }

# A bg process that ended is a zombie until waited for, and kill -0 still succeeds on a zombie, so
# "gone" is decided by `wait` (through a bounded poll) rather than by kill -0 alone.
_bg_reaped() { ! ps -o stat= -p "$1" 2>/dev/null | grep -qv Z; }

bg_wait() {
    local pid=$1 secs=${2:-30} deadline
    deadline=$(awk -v n="$EPOCHREALTIME" -v s="$secs" 'BEGIN { printf "%.3f", n + s }')
    while ! _bg_reaped "$pid"; do
        if awk -v n="$EPOCHREALTIME" -v d="$deadline" 'BEGIN { exit !(n >= d) }'; then
            echo "$(basename "$0"): pid $pid did not end within ${secs}s; killing it" >&2
            bg_stop "$pid" 2
            return 124
        fi
        sleep 0.05
    done
    wait "$pid" 2>/dev/null
}

# _descendants PID: PIDs of every process below PID (children first listed after their parent).
_descendants() {
    local c
    for c in $(pgrep -P "$1" 2>/dev/null); do
        echo "$c"
        _descendants "$c"
    done
}

bg_stop() {
    local pid=$1 secs=${2:-5} i d
    _bg_alive "$pid" || { wait "$pid" 2>/dev/null; return 0; }
    # A bg job may be a shell function or pipeline whose programs are its children: they are stopped
    # with it (by PID), or they would outlive the test.
    local -a kids
    mapfile -t kids < <(_descendants "$pid")
    kill -TERM "$pid" "${kids[@]}" 2>/dev/null
    for ((i = 0; i < secs * 20; i++)); do
        _bg_reaped "$pid" && break
        sleep 0.05
    done
    if ! _bg_reaped "$pid"; then
        kill -KILL "$pid" 2>/dev/null
    fi
    for d in "${kids[@]}"; do _bg_alive "$d" && kill -KILL "$d" 2>/dev/null; done
    wait "$pid" 2>/dev/null
    return 0
}

on_exit() {
    _EXIT_CMDS+=("$1")
}

_lib_cleanup() {
    local status=$? c p
    trap - EXIT
    for c in "${_EXIT_CMDS[@]}"; do eval "$c" || true; done
    for p in "${_BG_PIDS[@]}"; do bg_stop "$p" 3; done
    exit "$status"
}
trap _lib_cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

free_port() {
    "$PY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

wait_port() {
    local port=$1 secs=${2:-15} pid=${3:-} deadline
    deadline=$(awk -v n="$EPOCHREALTIME" -v s="$secs" 'BEGIN { printf "%.3f", n + s }')
    # bash's /dev/tcp connects without any external client; the subshell closes it again at once.
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        if [ -n "$pid" ] && ! _bg_alive "$pid"; then
            echo "$(basename "$0"): process $pid died before port $port opened" >&2
            return 1
        fi
        if awk -v n="$EPOCHREALTIME" -v d="$deadline" 'BEGIN { exit !(n >= d) }'; then
            echo "$(basename "$0"): port $port not open after ${secs}s" >&2
            return 1
        fi
        sleep 0.05
    done
}

elapsed() {
    awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'
}
