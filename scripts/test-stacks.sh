#!/usr/bin/env bash
# Seeing a shimmed process's threads (make stacks-test): c-tests/stacks/program.c (main sleeping, two threads
# in read() on pipes, two waiting for a mutex main holds, one on a condition variable, one joining it) runs
# under the shim, built with -O2 and without
# frame pointers (the stacks are walked with the call-frame information), and is inspected while it hangs:
#   - `asyncshim stacks PID` lists all seven threads with their names, what they wait on and call stacks
#     that reach the program's functions (main, sleep_long, pipe_reader, mutex_waiter, cond_waiter, joiner);
#   - gdb in batch mode, with the shipped extension (gdb/libasyncshim.so-gdb.py): `info coroutines` and
#     `coroutine apply all bt` on the live process.
# Output: `PASS stacks: what` / `FAIL stacks: what: why` lines, then `N passed, M failed`. Needs gcc (and gdb
# for the gdb part).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/asyncshim-stacks.XXXXXX") || exit 1
PID=
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
cleanup_stacks() {
    stop_bounded
    [[ -n $PID ]] && kill -9 "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$T"
}
exit_traps cleanup_stacks
CHECK_LABEL=stacks
# shellcheck source=scripts/install-checks.sh
source "$ROOT/scripts/install-checks.sh"
LIB=$ROOT/target/release/libasyncshim.so
LAUNCHER=$ROOT/target/release/asyncshim

if ! gcc -O2 -g -fomit-frame-pointer -pthread -o "$T/program" "$ROOT/c-tests/stacks/program.c" 2>"$T/cc.err"; then
    fail "build the program" "$(oneline "$T/cc.err")"
    finish
fi
# In $T with core dumps on: the gdb part ends it with SIGABRT and reads the kernel's core file. It hangs
# until then (ended by PID at exit) and dies with this script should that be killed outright.
(cd "$T" && ulimit -c unlimited &&
    exec setpriv --pdeathsig KILL -- env -u ASYNCSHIM -u ASYNCSHIM_STATS LD_PRELOAD="$LIB" "$T/program") \
    >"$T/program.out" 2>"$T/program.err" &
PID=$!
for _ in $(seq 100); do
    grep -q ready "$T/program.out" && break
    sleep 0.1
done
check "the program is ready" "stdout '$(oneline "$T/program.out")', stderr $(oneline "$T/program.err")" \
    grep -q ready "$T/program.out"

# --- asyncshim stacks PID
bounded 30 "$LAUNCHER" stacks "$PID" >"$T/stacks.out" 2>"$T/stacks.err"
check "asyncshim stacks PID answers" "status $?, stderr $(oneline "$T/stacks.err")" test -s "$T/stacks.out"
# thread_block NAME : the listing's block for the thread named NAME (its header and frames).
thread_block() { awk -v n="\"$1\"" '/^thread /{show = index($0, n) > 0} /^$/{show = 0} show' "$T/stacks.out"; }
# expect NAME STATE-REGEX FUNCTION : NAME's header matches STATE-REGEX and its stack has FUNCTION.
expect() {
    local name=$1 state=$2 fn=$3 block
    block=$(thread_block "$name")
    check "$name $state" "got: $(head -n 1 <<<"$block")" grep -qE "$state" <<<"$(head -n 1 <<<"$block")"
    check "$name's stack has $fn" "stack: $(tail -n +2 <<<"$block" | tr -s ' ' | tr '\n' '|')" \
        grep -qE "^    $fn\+0x" <<<"$block"
}
expect program "\(coroutine, main\): sleeping, [0-9.]+ s left, for [0-9.]+ s" sleep_long
expect program "sleeping" main
for i in 1 2; do
    expect "reader-$i" "waiting for fd [0-9]+ to be readable, for [0-9.]+ s" pipe_reader
    expect "locker-$i" "waiting for mutex 0x[0-9a-f]+, for [0-9.]+ s" mutex_waiter
done
expect cond-waiter "waiting on condition variable 0x[0-9a-f]+, for [0-9.]+ s" cond_waiter
expect joiner "joining thread [0-9]+ \"cond-waiter\", for [0-9.]+ s" joiner
check "seven program threads" "$(grep -c '^thread ' "$T/stacks.out") listed" \
    test "$(grep -c '^thread ' "$T/stacks.out")" -eq 7
check "the OS threads are listed" "$(oneline "$T/stacks.out" 4)" grep -q "^  OS thread .*worker #0" "$T/stacks.out"
check "the process goes on" "it ended" kill -0 "$PID"

# --- gdb with the extension, on the live process and on the kernel's core file of it. (Not on a gcore
# core: gcore's reads fail over the stacks' guard markers, MADV_GUARD_INSTALL, and it drops the whole
# 1 MiB chunk around each, so most coroutine stacks read as zeros in such a core.)
# gdb_expect WHERE FILE : FILE (gdb's output) has the seven coroutines and their functions.
gdb_expect() {
    local where=$1 out=$2
    check "gdb $where: info coroutines lists seven" "$(grep -c '^ *[0-9]  thread' "$out") listed; $(oneline "$out" 4)" \
        test "$(grep -c '^ *[0-9]  thread' "$out")" -eq 7
    check "gdb $where: main is parked in sleep" "$(grep '(main)' "$out")" grep -qE '"program" +parked: sleep \(main\)' "$out"
    for fn in sleep_long main pipe_reader mutex_waiter cond_waiter joiner; do
        check "gdb $where: a coroutine's stack has $fn" "$(oneline "$out" 6)" \
            grep -qE "^    #[0-9]+ .*\b$fn \(.*program.c:[0-9]+" "$out"
    done
    check "gdb $where: two coroutines in read, two in a mutex" "$(oneline "$out" 6)" eval \
        'test "$(grep -cE "^    #[0-9]+ .* in pipe_reader " "$out")" -eq 2 &&
         test "$(grep -cE "^    #[0-9]+ .* in mutex_waiter " "$out")" -eq 2'
}
if command -v gdb >/dev/null; then
    # Loaded the way an installed copy is: gdb's auto-load finds <scripts-directory>/<library path>-gdb.py.
    lib_real=$(realpath "$LIB")
    install -D -m 0644 "$ROOT/gdb/libasyncshim.so-gdb.py" "$T/auto-load$lib_real-gdb.py"
    GDB=(bounded 120 gdb -q -nx -batch -iex "set auto-load scripts-directory $T/auto-load"
        -iex "set auto-load safe-path $T/auto-load")
    "${GDB[@]}" -p "$PID" -ex "info coroutines" -ex "coroutine apply all bt" \
        >"$T/gdb-live.out" 2>&1 </dev/null
    gdb_expect "live" "$T/gdb-live.out"
    check "the process goes on after gdb" "it ended" kill -0 "$PID"
    kill -ABRT "$PID"
    wait "$PID" 2>/dev/null
    PID=
    pattern=$(cat /proc/sys/kernel/core_pattern)
    core=$(find "$T" -maxdepth 1 -name 'core*' -type f | head -n 1)
    if [[ -n $core ]]; then
        "${GDB[@]}" "$T/program" "$core" -ex "info coroutines" -ex "coroutine apply all bt" \
            >"$T/gdb-core.out" 2>&1 </dev/null
        gdb_expect "core file" "$T/gdb-core.out"
    else
        fail "the kernel wrote a core file in the program's directory" \
            "none (kernel.core_pattern is '$pattern'; this test needs a plain file name such as 'core')"
    fi
else
    fail "gdb" "not installed (make deps installs it)"
fi
cp "$T"/*.out "$ROOT/target/" 2>/dev/null

finish
