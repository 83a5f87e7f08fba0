#!/usr/bin/env bash
# The shim on a glibc it does not know passes through: one line on stderr naming the fact and both values,
# once per process tree, and the program's output, environment and exit status exactly as natively.
# An unknown glibc is simulated with a library built with the `test-knobs` feature (target/knobs; the
# release build has no such knob, which is checked too): ASYNCSHIM_TEST_GLIBC changes a probe's answer,
# drops this glibc's table entry, or pretends a newer version.
#
#   scripts/test-passthrough.sh        prints `PASS passthrough: what` / `FAIL passthrough: what: why` lines,
#                                      then `N passed, M failed`
set -u
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
OUT=$ROOT/target/knobs/passthrough
RELEASE=$ROOT/target/release/libasyncshim.so
KNOBS=$ROOT/target/knobs/release/libasyncshim.so
CHECK_LABEL=passthrough
# shellcheck source=scripts/install-checks.sh
source "$ROOT/scripts/install-checks.sh"
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
exit_traps stop_group
mkdir -p "$OUT"
cargo build --release --lib --features test-knobs --target-dir target/knobs -q || { fail "build" "cargo build"; finish; }
cc -O2 -pthread -o "$OUT/program" c-tests/passthrough/program.c -ldl || { fail "build" "cc program.c"; finish; }

# run NAME LIB KNOB ARG: runs the program (at most 60 s, in a process group of its own: the tree must leave
# nothing behind) with LIB preloaded (none: natively) and KNOB; stdout in $OUT/NAME.out, stderr in
# $OUT/NAME.err, exit status in $OUT/NAME.status; a FAIL line for a run that left processes behind.
run() {
    local name=$1 lib=$2 knob=$3 arg=$4
    local -a env=(env -u LD_PRELOAD -u ASYNCSHIM_TEST_GLIBC)
    [ -n "$lib" ] && env+=("LD_PRELOAD=$lib")
    [ -n "$knob" ] && env+=("ASYNCSHIM_TEST_GLIBC=$knob")
    # shellcheck disable=SC2086  # ARG is empty or one word
    run_in_group "$ROOT" 60 "$OUT/$name.out" "$OUT/$name.err" "${env[@]}" "$OUT/program" $arg
    echo "$RUN_STATUS" >"$OUT/$name.status"
    [ "$RUN_LEFTOVER" -eq 0 ] || fail "$name: nothing left behind" "processes were left in its process group (killed)"
}

version=$(getconf GNU_LIBC_VERSION | awk '{print $2}')
run native "" "" tree
if [ "$(cat "$OUT/native.status")" != 3 ] || [ -s "$OUT/native.err" ]; then
    fail native "the program itself misbehaves (status $(cat "$OUT/native.status"))"
fi

# passes_through NAME KNOB LINE_REGEX: pass-through with exactly one stderr line matching, output as natively.
passes_through() {
    local name=$1 knob=$2 want=$3
    run "$name" "$KNOBS" "$knob" tree
    local why=""
    if ! cmp -s "$OUT/native.out" "$OUT/$name.out"; then
        why="stdout differs from native: $(diff "$OUT/native.out" "$OUT/$name.out" | head -3 | tr '\n' ' ')"
    elif [ "$(cat "$OUT/$name.status")" != "$(cat "$OUT/native.status")" ]; then
        why="exit status $(cat "$OUT/$name.status"), natively $(cat "$OUT/native.status")"
    elif [ "$(wc -l <"$OUT/$name.err")" != 1 ]; then
        why="$(wc -l <"$OUT/$name.err") stderr lines for the process tree, not 1: $(head -3 "$OUT/$name.err" | tr '\n' ' ')"
    elif ! grep -Eqx "$want" "$OUT/$name.err"; then
        why="stderr '$(cat "$OUT/$name.err")' is not '$want'"
    fi
    if [ -z "$why" ]; then pass "$name"; else fail "$name" "$why"; fi
}

tail='; running without coroutines \(pass-through\)'
passes_through probe_answer_changed "result+8" \
    "asyncshim: glibc $version: result probed [0-9]+, table [0-9]+$tail"
passes_through table_entry_removed "drop-entry" \
    "asyncshim: glibc $version: not in the layout table \([0-9., ]+\), so its layout is not checked$tail"
# A glibc newer than the table whose layout differs from the newest entry (this glibc's user_stack flag
# against the newest release's stack_mode, joinid against joinstate...).
passes_through newer_glibc_other_semantics "version=2.99" \
    "asyncshim: glibc 2.99: [a-z_.]+( probed [0-9]+,| not found,|:) .*table \(2\.[0-9]+\).*$tail"

# The knob build without the knob, and the release build with it, run coroutines: the threads then report
# -1 (they are coroutines), and nothing is printed on stderr.
for case in "knobs_unset:$KNOBS:" "release_ignores_knob:$RELEASE:drop-entry"; do
    IFS=: read -r name lib knob <<<"$case"
    run "$name" "$lib" "$knob" ""
    if [ -s "$OUT/$name.err" ]; then
        fail "$name" "stderr: $(head -2 "$OUT/$name.err" | tr '\n' ' ')"
    elif ! grep -q "^thread 0: -1$" "$OUT/$name.out"; then
        fail "$name" "the threads did not run as coroutines: $(head -1 "$OUT/$name.out")"
    else
        pass "$name"
    fi
done

finish
