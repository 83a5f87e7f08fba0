#!/usr/bin/env bash
# The Debian package in a chroot (make package-test; the CI matrix calls it once per release):
#
#   scripts/test-package.sh CHROOT_DIR [PACKAGE.deb]
#
# CHROOT_DIR is a Debian root file system with gcc and libc6-dev (/ for this machine's own system), or
# without them when ACTIVE_PROBE names the probe already built (scripts/glibc-matrix.sh builds it once, on
# the oldest release, and passes it to every release's run). It is
# never modified: the test works in an overlay over it (upper layer on a tmpfs), with its own /proc and
# /dev bound in, all unmounted again at the end. PACKAGE.deb defaults to what `make deb` builds.
#
# In the chroot: `dpkg -i` installs the package (its Depends must be satisfied there), `dpkg -L` lists
# exactly the package's files, `asyncshim --version` runs, c-tests/install/active_probe.c (built by the
# chroot's gcc) runs under the launcher and under a bare LD_PRELOAD=/usr/lib/asyncshim/libasyncshim.so (as a
# systemd drop-in sets it): main and 50 threads are coroutines of /usr/lib/asyncshim/libasyncshim.so on a few
# OS threads and the statistics report is written; `dpkg --purge` removes every file.
# When dpkg refuses the package or the library does not load, the reason (dpkg's or ld.so's message) is
# printed.
#
# Output: `PASS package[RELEASE]: what` / `FAIL package[RELEASE]: what: why`, then `N passed, M failed`;
# exit status 1 when anything failed, 2 for bad usage. Needs root (mount, chroot).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage() { echo "usage: scripts/test-package.sh CHROOT_DIR [PACKAGE.deb]" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
CHROOT=$(realpath -e "$1" 2>/dev/null) || { echo "test-package: no such directory: $1" >&2; exit 2; }
[[ -x $CHROOT/usr/bin/dpkg ]] || { echo "test-package: $CHROOT has no /usr/bin/dpkg: not a Debian root" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "test-package: needs root (overlay mount and chroot)" >&2; exit 2; }
if [[ $# -eq 2 ]]; then
    DEB=$(realpath -e "$2") || { echo "test-package: no such package: $2" >&2; exit 2; }
else
    DEB=$(make -s --no-print-directory -C "$ROOT" deb | tail -n 1) || { echo "test-package: make deb failed" >&2; exit 1; }
fi
RELEASE=$(cat "$CHROOT/etc/debian_version" 2>/dev/null || echo '?')

T=$(mktemp -d "${TMPDIR:-/tmp}/asyncshim-package.XXXXXX") || exit 1
MOUNTED=()   # what this script mounted, unmounted in reverse order at exit
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
cleanup_package() {
    stop_bounded   # (a command in the chroot keeps its mounts busy)
    local i
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
        umount "${MOUNTED[i]}" 2>/dev/null || umount -l "${MOUNTED[i]}"
    done
    rm -rf "$T"
}
exit_traps cleanup_package

CHECK_LABEL="package[$RELEASE]"
# shellcheck source=scripts/install-checks.sh
source "$ROOT/scripts/install-checks.sh"
note() { echo "  $CHECK_LABEL: $*"; }

# --- the overlay
mount -t tmpfs -o mode=0700 asyncshim-package "$T" || { echo "test-package: cannot mount a tmpfs" >&2; exit 1; }
MOUNTED+=("$T")
mkdir -p "$T/upper" "$T/work" "$T/root"
mount -t overlay asyncshim-package -o "lowerdir=$CHROOT,upperdir=$T/upper,workdir=$T/work" "$T/root" ||
    { echo "test-package: cannot mount an overlay over $CHROOT" >&2; exit 1; }
MOUNTED+=("$T/root")
R=$T/root
mount -t proc proc "$R/proc" && MOUNTED+=("$R/proc") || { echo "test-package: cannot mount proc" >&2; exit 1; }
mount --bind /dev "$R/dev" && MOUNTED+=("$R/dev") || { echo "test-package: cannot bind /dev" >&2; exit 1; }
mkdir -p "$R/tmp/asyncshim-test"
cp "$DEB" "$R/tmp/asyncshim-test/asyncshim.deb"
cp "$ROOT/c-tests/install/active_probe.c" "$R/tmp/asyncshim-test/"
W=/tmp/asyncshim-test   # the same directory, seen from inside

# in_chroot OUT ERR CMD... : CMD in the chroot with a clean environment, at most 300 s (dpkg's man-db
# trigger can be slow); returns its status.
in_chroot() {
    local out=$1 err=$2
    shift 2
    bounded 300 chroot "$R" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LC_ALL=C DEBIAN_FRONTEND=noninteractive "$@" >"$out" 2>"$err" </dev/null
}

note "chroot $CHROOT (Debian $RELEASE, $(chroot "$R" /usr/bin/dpkg-query -W -f='libc6 ${Version}' libc6 2>/dev/null))"
note "package $(basename "$DEB"): Depends: $(dpkg-deb -f "$DEB" Depends)"

# --- install
if in_chroot "$T/dpkg.out" "$T/dpkg.err" dpkg -i "$W/asyncshim.deb"; then
    pass "dpkg -i"
else
    fail "dpkg -i" "$(grep -v '^(Reading\|^Selecting\|^Preparing\|^Unpacking' "$T/dpkg.err" | oneline /dev/stdin 6)"
    # Why it matters: does the library load here at all? (Diagnostic only; the test has failed.)
    in_chroot "$T/x.out" "$T/x.err" dpkg --force-depends -i "$W/asyncshim.deb"
    in_chroot "$T/x.out" "$T/x.err" /usr/bin/env LD_PRELOAD=/usr/lib/asyncshim/libasyncshim.so /bin/true
    note "diagnostic: installed anyway (--force-depends), LD_PRELOAD of the library with /bin/true:" \
        "status $?$([[ -s $T/x.err ]] && echo ": $(oneline "$T/x.err" 2)")"
    finish
fi

# --- the files
{
    echo /usr/bin/asyncshim
    echo /usr/lib/asyncshim/libasyncshim.so
    echo /usr/share/doc/asyncshim/README.md.gz
    echo /usr/share/doc/asyncshim/changelog.gz
    echo /usr/share/doc/asyncshim/copyright
    echo /usr/share/man/man1/asyncshim.1.gz
    echo /usr/share/man/man7/asyncshim.7.gz
    [[ -f $ROOT/gdb/libasyncshim.so-gdb.py ]] &&
        echo /usr/share/gdb/auto-load/usr/lib/asyncshim/libasyncshim.so-gdb.py
} | sort >"$T/expected"
in_chroot "$T/list.out" "$T/list.err" dpkg -L asyncshim
while read -r f; do [[ -f $R$f && ! -L $R$f ]] && echo "$f"; done <"$T/list.out" | sort >"$T/listed"
check "dpkg -L lists exactly the package's files" "$(diff "$T/expected" "$T/listed" | grep '^[<>]' | tr '\n' ' ')" \
    cmp -s "$T/expected" "$T/listed"
check "man pages are installed" "missing" eval '[[ -s $R/usr/share/man/man1/asyncshim.1.gz && -s $R/usr/share/man/man7/asyncshim.7.gz ]]'

if in_chroot "$T/v.out" "$T/v.err" asyncshim --version; then
    check "asyncshim --version: $(head -n 1 "$T/v.out")" "unexpected output" grep -q '^asyncshim [0-9]' "$T/v.out"
else
    fail "asyncshim --version" "status $? ($(oneline "$T/v.err"))"
fi

# --- a program under the library
if [[ -n ${ACTIVE_PROBE:-} ]]; then
    cp "$ACTIVE_PROBE" "$R$W/active_probe" || { fail "copy the probe $ACTIVE_PROBE" "cp failed"; finish; }
elif ! in_chroot "$T/gcc.out" "$T/gcc.err" gcc -O2 -pthread -o "$W/active_probe" "$W/active_probe.c" -ldl; then
    fail "build the probe with the chroot's gcc" "$(oneline "$T/gcc.err")"
    finish
fi
# probe NAME OUT ERR STATS CMD... : runs the probe (already prefixed by CMD) and judges it.
probe() {
    local name=$1 out=$2 err=$3 stats=$4
    shift 4
    if ! in_chroot "$out" "$err" "$@"; then
        fail "$name: the probe runs" "status $? ($(oneline "$err"))"
        return
    fi
    probe_verdict "$name" /usr/lib/asyncshim/libasyncshim.so "$out" "$err" "$R$stats"
}
probe "launcher" "$T/p1.out" "$T/p1.err" "$W/stats1" \
    asyncshim --workers 2 --stats "$W/stats1" "$W/active_probe"
probe "LD_PRELOAD" "$T/p2.out" "$T/p2.err" "$W/stats2" \
    /usr/bin/env LD_PRELOAD=/usr/lib/asyncshim/libasyncshim.so ASYNCSHIM_WORKERS=2 ASYNCSHIM_STATS="$W/stats2" \
    "$W/active_probe"

# --- removal
if in_chroot "$T/purge.out" "$T/purge.err" dpkg --purge asyncshim; then
    while read -r f; do [[ -e $R$f ]] && echo "$f"; done <"$T/expected" >"$T/left"
    removal_verdict "dpkg --purge" "$T/left" "$R/usr/lib/asyncshim" "$R/usr/share/doc/asyncshim"
else
    fail "dpkg --purge" "$(oneline "$T/purge.err")"
fi
finish
