# Shared by scripts/test-install.sh and scripts/test-package.sh (sourced): the PASS/FAIL lines and the
# closing count, and the verdict on one run of c-tests/install/active_probe.c under the shim.
# The sourcing script sets CHECK_LABEL, the prefix of its lines ("install", "package[12.11]").

PASSED=0 FAILED=0
pass() { echo "PASS $CHECK_LABEL: $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL $CHECK_LABEL: $1: $2"; FAILED=$((FAILED + 1)); }
check() { # NAME REASON-IF-FALSE TEST...
    local name=$1 why=$2
    shift 2
    if "$@"; then pass "$name"; else fail "$name" "$why"; fi
}
# finish : the count, then exit 1 when anything failed.
finish() {
    echo "$PASSED passed, $FAILED failed"
    [[ $FAILED -eq 0 ]]
    exit
}
# oneline FILE [LINES] : the last LINES (3) lines of FILE on one line, for a FAIL reason.
oneline() { tail -n "${2:-3}" "$1" | tr '\n' ' ' | cut -c1-400; }

# probe_verdict NAME LIBRARY OUT ERR STATS : the probe's stdout OUT (stderr ERR, statistics report file
# STATS) must show main and its 50 threads running as coroutines of LIBRARY on a few OS threads.
probe_verdict() {
    local name=$1 lib=$2 out=$3 err=$4 stats=$5 os
    check "$name: library $lib" "probe says '$(head -n 1 "$out")'; stderr: $(oneline "$err" 2)" \
        grep -qxF "library: $lib" "$out"
    check "$name: main and 50 threads are coroutines" \
        "probe says '$(sed -n 2,3p "$out" | tr '\n' ' ')'; stderr: $(oneline "$err" 2)" \
        eval 'grep -qx "active in main: 1" "$out" && grep -qx "active in threads: 50/50" "$out"'
    # Natively 51; under the shim with 2 workers: the workers, the monitor, perhaps a helper thread.
    os=$(sed -n 's/^os threads: //p' "$out")
    check "$name: 50 live threads on ${os:-?} OS threads (<= 8)" "too many" eval '[[ $os =~ ^[0-9]+$ && $os -le 8 ]]'
    check "$name: statistics report: coroutines created 50" \
        "report: '$(grep -m1 'coroutines:' "$stats" 2>/dev/null || echo none)'" grep -q 'coroutines: created 50,' "$stats"
}

# removal_verdict HOW LEFT LIBDIR DOCDIR : after HOW ("make uninstall", "dpkg --purge"), the file LEFT
# (what is still installed) is empty and the package's own directories LIBDIR and DOCDIR are gone.
removal_verdict() {
    local how=$1 left=$2 libdir=$3 docdir=$4
    check "$how removes every file" "left: $(tr '\n' ' ' <"$left")" eval '[[ ! -s $left ]]'
    check "$how removes ${libdir##*/usr/} and ${docdir##*/usr/}" "still there" eval '[[ ! -e $libdir && ! -e $docdir ]]'
}
