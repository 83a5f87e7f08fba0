# Shared by demo.sh and bench.sh (sourced): a private temporary directory removed on exit, and bounded
# runs that an interrupted script ends by PID.

# make_tmp NAME : creates $TMP and installs the traps that clean it (and a running child) up.
make_tmp() {
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/asyncshim-$1.XXXXXX") || { echo "$1: mktemp failed" >&2; exit 1; }
    CHILD=""
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

cleanup() {
    if [[ -n $CHILD ]] && kill -0 "$CHILD" 2>/dev/null; then
        kill -TERM "$CHILD" 2>/dev/null   # timeout(1) passes it on to the program
        wait "$CHILD" 2>/dev/null
    fi
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
