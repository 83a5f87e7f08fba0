#!/usr/bin/env bash
# The glibc matrix: the C differential suite on other Debian releases' glibc, with the one build of the
# library (target/release/libasyncshim.so, built on the host).
#
#   scripts/glibc-matrix.sh [RELEASE...] [-- TEST_FILTER...]
#
# RELEASE: bullseye (Debian 11, glibc 2.31), trixie (13, 2.41), sid (unstable, the newest glibc), or any
# other release debootstrap knows (bookworm, 12, is the host's own glibc: there it shows the harness's
# passing path). Default: bullseye trixie sid. TEST_FILTER: test names or globs, as for run-c-tests.sh.
#
# Per release: a minimal Debian (debootstrap --variant=minbase, from the mirror apt is configured with)
# is unpacked from a cached tarball into a scratch directory; inside it (chroot, in a mount and PID
# namespace of its own) scripts/run-c-tests.sh runs every test natively and in MATRIX_MODES with the
# library. The test programs are built once, in the oldest release (bullseye, the only one with a
# compiler; c-tests/lib/glibc_compat.h lets tests that call newer functions build there), and the same
# programs run in every release: one build of the tests, like one build of the library. Before a shim
# mode's first test, c-tests/lib/shim_active.c checks that the shim really runs coroutines there; when it
# does not (pass-through), or the library does not load, that mode's runs all FAIL. Then the Debian package
# (make deb, once) is installed, run and purged in each release by scripts/test-package.sh, with the
# probe it runs built on bullseye too.
#
# Cache: one tarball per release in GLIBC_CHROOT_CACHE (default /var/cache/asyncshim/glibc-chroots, outside
# the clone so a clean clone reuses it; keep that directory between CI runs to skip debootstrap). A tarball
# older than GLIBC_CHROOT_MAX_AGE days (default 14; sid moves daily) is made again, as is every one with
# GLIBC_CHROOT_REFRESH=1. Nothing else persists: the scratch directory is removed at exit.
# Safety: every mount (proc, /dev, a tmpfs on /dev/shm, the checkout at /asyncshim) is made inside a
# private mount namespace whose processes all die with it (unshare --pid --kill-child), so the mounts
# vanish with the run, also on failure, timeout, Ctrl-C or SIGKILL, and the host never sees them. Each
# release's run is bounded by MATRIX_RELEASE_TIMEOUT seconds (default 1500), each creation by 900.
#
# Environment: MATRIX_MODES (default native,shim: the modes run in every release; every test runs in
# each listed shim mode), GLIBC_CHROOT_CACHE, GLIBC_CHROOT_MAX_AGE, GLIBC_CHROOT_REFRESH,
# MATRIX_RELEASE_TIMEOUT, DEBIAN_MIRROR (default: read from /etc/apt/sources.list.d/debian.sources or
# /etc/apt/sources.list), SHIM_LIB (default target/release/libasyncshim.so). Needs root, debootstrap,
# zstd and unshare (scripts/install-deps.sh).
# Output: the runner's lines prefixed with `[RELEASE]`, logs in c-tests/build/glibc/RELEASE.log, then one
# summary line per release; exit status 1 when any release failed.
set -u
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
SELF=$ROOT/scripts/glibc-matrix.sh
BUILDER=bullseye
BUILDER_PACKAGES=gcc,g++,libc6-dev
CHROOT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
MOUNT_POINT=/asyncshim   # where the checkout appears inside a chroot

# --- inside a release's namespaces ------------------------------------------------------------------
# `glibc-matrix.sh --inside DIR CMD...` runs as PID 1 of a fresh PID namespace, in a private mount
# namespace: it mounts what the tests need under DIR and runs CMD (with its arguments) in the chroot
# with a clean environment. Its mounts disappear with the namespace when it returns.
if [ "${1:-}" = --inside ]; then
    dir=$2
    shift 2
    set -e
    # The chroot's root is a mount point of its own, as a real root is: tests that unshare a mount
    # namespace (dns_offload) change the propagation of "/", which only a mount point has.
    mount --bind "$dir" "$dir"
    mount -t proc proc "$dir/proc"
    mount --bind /dev "$dir/dev"
    # POSIX semaphores and shm_open live in /dev/shm, pseudo-terminals in /dev/pts: private instances,
    # so nothing leaks to the host's.
    mount -t tmpfs -o mode=1777,size=256m shm "$dir/dev/shm"
    mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$dir/dev/pts"
    mount --bind "$ROOT" "$dir$MOUNT_POINT"
    set +e
    chroot "$dir" /usr/bin/env -i PATH="$CHROOT_PATH" HOME=/root LANG=C.UTF-8 "$@"
    exit
fi

RELEASES=()
FILTERS=()
while [ $# -gt 0 ]; do
    case $1 in
        --) shift; FILTERS=("$@"); break ;;
        -h | --help) sed -n '2,/^set -u/p' "$0" | sed -e 's/^# \{0,1\}//' -e '/^set -u/d'; exit 0 ;;
        -*) echo "glibc-matrix: unknown option $1" >&2; exit 2 ;;
        *) RELEASES+=("$1") ;;
    esac
    shift
done
[ ${#RELEASES[@]} -eq 0 ] && RELEASES=(bullseye trixie sid)
CACHE=${GLIBC_CHROOT_CACHE:-/var/cache/asyncshim/glibc-chroots}
MAX_AGE=${GLIBC_CHROOT_MAX_AGE:-14}
MODES=${MATRIX_MODES:-native,shim}
RELEASE_TIMEOUT=${MATRIX_RELEASE_TIMEOUT:-1500}
LIB=${SHIM_LIB:-target/release/libasyncshim.so}
case $LIB in /*) ;; *) LIB=$ROOT/$LIB ;; esac
case $LIB in
    "$ROOT"/*) CHROOT_LIB=$MOUNT_POINT/${LIB#"$ROOT"/} ;;
    *) echo "glibc-matrix: SHIM_LIB must lie inside the checkout ($ROOT), which is what the chroots see" >&2; exit 2 ;;
esac
BUILD_DIR=$ROOT/c-tests/build/glibc
BIN_DIR=c-tests/build/glibc/bin-$BUILDER   # relative to the checkout, inside and out

die() { echo "glibc-matrix: $*" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot and mounts); CI runs make test as root"
for tool in debootstrap zstd unshare setpriv chroot; do
    command -v "$tool" >/dev/null || die "$tool is missing (scripts/install-deps.sh installs it)"
done
mkdir -p "$CACHE" "$BUILD_DIR" || die "cannot create $CACHE"

# --- scratch directory, cleanup -------------------------------------------------------------------------
# Scratch directories of runs that were killed outright (their PID file names a process that is gone)
# are removed first: each holds unpacked chroots.
WORK_BASE=${GLIBC_MATRIX_WORK:-/var/tmp}
no_mounts_below() { ! awk -v w="$1/" 'index($5, w) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; }
for stale in "$WORK_BASE"/asyncshim-glibc.*; do
    [ -f "$stale/pid" ] || continue
    kill -0 "$(cat "$stale/pid")" 2>/dev/null && continue
    no_mounts_below "$stale" && rm -rf --one-file-system "$stale"
done
WORK=$(mktemp -d "$WORK_BASE/asyncshim-glibc.XXXXXX") || die "mktemp failed"
echo $$ >"$WORK/pid"
# Every command that may take long (debootstrap, make deb, a release's run) goes through `bounded` of
# scripts/common.sh: under timeout, ended by PID when this script is stopped, and dying with it (setpriv
# --pdeathsig) should it be killed outright; with unshare (--kill-child) goes its namespace.
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
cleanup_matrix() {
    stop_bounded   # timeout passes TERM on to unshare, whose death kills the namespace (--kill-child)
    # The mounts were made in namespaces that are gone (or only ever visible there), but a directory with
    # a mount below it is never removed: that could reach into the mounted checkout.
    if no_mounts_below "$WORK"; then
        rm -rf --one-file-system "$WORK"
    else
        echo "glibc-matrix: something is mounted under $WORK; leaving it in place" >&2
    fi
}
exit_traps cleanup_matrix

now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }'; }

# show_start LOG PREFIX [-a]: fd $SHOW shows what is written to it as it comes, each line prefixed with
# [PREFIX], and writes (-a: appends) it to LOG; show_end closes it once all is out. (A process
# substitution, not a pipe: `bounded` must run in this shell for the traps to reach it.)
show_start() {
    exec {SHOW}> >(tee ${3:-} "$1" | sed -u -e "s/^/[$2] /")
    SHOW_PID=$!
}
show_end() {
    exec {SHOW}>&-
    wait "$SHOW_PID"
}

# --- the mirror ---------------------------------------------------------------------------------------
# The first `URIs:` of a deb822 stanza (or `deb URL SUITE` line) whose suites are not the security ones.
mirror() {
    if [ -n "${DEBIAN_MIRROR:-}" ]; then
        echo "$DEBIAN_MIRROR"
        return
    fi
    local m=""
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        m=$(awk 'BEGIN { RS = ""; FS = "\n" }
                 {
                     uri = ""; suites = ""
                     for (i = 1; i <= NF; i++) {
                         if ($i ~ /^URIs:/) { split($i, w, /[ \t]+/); uri = w[2] }
                         if ($i ~ /^Suites:/) suites = $i
                     }
                     if (uri != "" && suites !~ /-security/) { print uri; exit }
                 }' /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
        m=$(awk '$1 == "deb" && $3 !~ /-security/ { u = $2; if (u ~ /^\[/) u = $3; print u; exit }' /etc/apt/sources.list)
    fi
    [ -n "$m" ] || return 1
    echo "$m"
}

# --- cached chroots -------------------------------------------------------------------------------------
# tarball RELEASE: the cache file for RELEASE (the builder carries the compiler).
tarball() {
    if [ "$1" = "$BUILDER" ]; then echo "$CACHE/$1-minbase+gcc.tar.zst"; else echo "$CACHE/$1-minbase.tar.zst"; fi
}

# ensure_tarball RELEASE: makes RELEASE's tarball when it is missing, too old or a refresh is asked for;
# false with the reason in FAILURE when that fails. A lock per release keeps two runs from making the
# same one. (Not in a subshell: the traps must be able to end debootstrap.)
ensure_tarball() {
    local release=$1 file log
    file=$(tarball "$release")
    log=$BUILD_DIR/$release.debootstrap.log
    exec 8>"$file.lock"
    flock 8
    if [ -f "$file" ] && [ -z "${GLIBC_CHROOT_REFRESH:-}" ] &&
        [ -z "$(find "$file" -mtime "+$MAX_AGE" 2>/dev/null)" ]; then
        exec 8>&-
        return 0
    fi
    make_tarball "$release" "$file" "$log"
    local rc=$?
    exec 8>&-
    return $rc
}

make_tarball() {
    local release=$1 file=$2 log=$3 dir=$WORK/create-$1 t0 url include="" rc
    url=$(mirror) || { FAILURE="no Debian mirror found in /etc/apt (set DEBIAN_MIRROR)"; return 1; }
    [ "$release" = "$BUILDER" ] && include=--include=$BUILDER_PACKAGES
    t0=$(now)
    echo "glibc-matrix: creating the $release chroot (debootstrap --variant=minbase${include:+ $include}, log $log)"
    # In a private mount namespace: debootstrap's own proc/sys mounts in the target go with it, whatever
    # happens. It verifies the Release signature but, unlike apt, not its Valid-Until date (sid's may
    # have expired on a mirror snapshot); apt never runs in the chroots.
    bounded 900 unshare --mount --propagation private \
        debootstrap --variant=minbase $include "$release" "$dir" "$url" >"$log" 2>&1
    rc=$?
    if [ $rc -ne 0 ]; then
        FAILURE="debootstrap $release failed ($(describe_status $rc)): $(tail -n 2 "$log" | tr '\n' ' ')"
        return 1
    fi
    # What the runs need is installed: the package cache and lists (and the mirror's name) go.
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/etc/apt/sources.list
    mkdir -p "$dir$MOUNT_POINT"
    if ! tar -C "$dir" --numeric-owner --zstd -cf "$file.tmp" . 2>>"$log"; then
        rm -f "$file.tmp"
        FAILURE="packing the $release chroot failed (see $log)"
        return 1
    fi
    mv -f "$file.tmp" "$file"
    rm -rf --one-file-system "$dir"
    echo "glibc-matrix: $release chroot created in $(since "$t0") s, cached as $file ($(du -h "$file" | cut -f1))"
}

describe_status() {
    case $1 in
        124 | 137) echo "timed out" ;;
        *) echo "exit $1" ;;
    esac
}

# unpack RELEASE: a fresh copy of RELEASE's chroot in $WORK/RELEASE.
unpack() {
    local dir=$WORK/$1
    rm -rf --one-file-system "$dir"
    mkdir -p "$dir"
    tar -C "$dir" --numeric-owner --zstd -xf "$(tarball "$1")"
}

# in_chroot RELEASE LIMIT CMD...: CMD in RELEASE's unpacked chroot, in its own mount and PID namespaces.
in_chroot() {
    local release=$1 limit=$2
    shift 2
    bounded "$limit" unshare --mount --propagation private --pid --fork --kill-child \
        "$SELF" --inside "$WORK/$release" "$@"
}

# --- the matrix -----------------------------------------------------------------------------------------
declare -A RESULT=() GLIBC=()
T_ALL=$(now)
# The package every release installs (built here, once; a failure fails only the package checks).
DEB=""
if bounded 900 make -s --no-print-directory -C "$ROOT" deb >"$BUILD_DIR/deb.out" 2>"$BUILD_DIR/deb.log"; then
    DEB=$(tail -n 1 "$BUILD_DIR/deb.out")
fi
[ -f "$DEB" ] || { DEB=""; echo "glibc-matrix: make deb failed (see $BUILD_DIR/deb.log)"; }
# The builder first: without the test programs no release can run.
ORDER=("$BUILDER")
for r in "${RELEASES[@]}"; do [ "$r" = "$BUILDER" ] || ORDER+=("$r"); done
built=0
for release in "${ORDER[@]}"; do
    wanted=0
    for r in "${RELEASES[@]}"; do [ "$r" = "$release" ] && wanted=1; done
    t0=$(now)
    FAILURE=""
    if ! ensure_tarball "$release"; then
        echo "glibc-matrix: $FAILURE"
        RESULT[$release]="FAIL: $FAILURE"
        continue
    fi
    unpack "$release" || { RESULT[$release]="FAIL: unpacking its chroot failed"; continue; }
    GLIBC[$release]=$(chroot "$WORK/$release" /usr/bin/getconf GNU_LIBC_VERSION 2>/dev/null)
    echo "glibc-matrix: $release (${GLIBC[$release]:-glibc ?}) ready in $(since "$t0") s"
    log=$BUILD_DIR/$release.log
    if [ "$release" = "$BUILDER" ]; then
        t0=$(now)
        in_chroot "$release" 900 /usr/bin/env BIN_DIR="$BIN_DIR" BUILD_ONLY=1 \
            /bin/bash "$MOUNT_POINT/scripts/run-c-tests.sh" "${FILTERS[@]}" >"$BUILD_DIR/build.log" 2>&1
        rc=$?
        # The installation probe of scripts/test-package.sh, for releases without a compiler.
        in_chroot "$release" 300 /usr/bin/gcc -O2 -pthread -Wall -o "$MOUNT_POINT/$BIN_DIR/active_probe" \
            "$MOUNT_POINT/c-tests/install/active_probe.c" -ldl >>"$BUILD_DIR/build.log" 2>&1 ||
            echo "FAIL active_probe [build]: see $BUILD_DIR/build.log" >>"$BUILD_DIR/build.log"
        sed -e "s/^/[build on $release] /" "$BUILD_DIR/build.log" | grep -v '^\[[^]]*\] PASS'
        echo "glibc-matrix: test programs built on $release in $(since "$t0") s (exit $rc)"
        [ $rc -eq 0 ] && built=1
    fi
    [ $wanted -eq 1 ] || { rm -rf --one-file-system "${WORK:?}/$release"; continue; }
    if [ $built -eq 0 ]; then
        RESULT[$release]="FAIL: the test programs did not build on $BUILDER (see $BUILD_DIR/build.log)"
        rm -rf --one-file-system "${WORK:?}/$release"
        continue
    fi
    t0=$(now)
    mkdir -p "$BUILD_DIR/$release"
    show_start "$log" "$release"
    in_chroot "$release" "$RELEASE_TIMEOUT" /usr/bin/env BIN_DIR="$BIN_DIR" NO_BUILD=1 \
        OUT_DIR="c-tests/build/glibc/$release" MODES="$MODES" SHIM_LIB="$CHROOT_LIB" \
        /bin/bash "$MOUNT_POINT/scripts/run-c-tests.sh" "${FILTERS[@]}" >&$SHOW 2>&1
    rc=$?
    show_end
    counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
    if [ "$rc" -eq 0 ]; then
        RESULT[$release]="ok: $counts"
    elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        RESULT[$release]="FAIL: timed out after ${RELEASE_TIMEOUT}s"
    else
        RESULT[$release]="FAIL: ${counts:-runner exit $rc}"
        names=$(grep -E '^failed: ' "$log" | tail -n 1)
        [ -n "$names" ] && RESULT[$release]+=" (${names#failed: })"
        # The reason the shim is not active, when that is why (the library's own message is in the log).
        inactive=$(grep -m1 '^FAIL shim_active' "$log" | sed -e 's/^FAIL shim_active \(\[[^]]*\]\).*in this mode: /\1 /')
        [ -n "$inactive" ] && RESULT[$release]+="; shim not active: ${inactive:0:150}"
    fi
    RESULT[$release]+=" in $(since "$t0") s"
    # The package in this release: in a mount namespace of its own too (its overlay and mounts go with it).
    t0=$(now)
    if [ -z "$DEB" ]; then
        RESULT[$release]="FAIL: package not built; C suite ${RESULT[$release]}"
    elif [ ! -x "$ROOT/$BIN_DIR/active_probe" ]; then
        RESULT[$release]="FAIL: package probe not built; C suite ${RESULT[$release]}"
    else
        show_start "$log" "$release" -a
        bounded 600 unshare --mount --propagation private /usr/bin/env ACTIVE_PROBE="$ROOT/$BIN_DIR/active_probe" \
            "$ROOT/scripts/test-package.sh" "$WORK/$release" "$DEB" >&$SHOW 2>&1
        rc=$?
        show_end
        counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
        if [ "$rc" -eq 0 ]; then
            RESULT[$release]+="; package ok ($counts, $(since "$t0") s)"
        else
            RESULT[$release]="FAIL: package ${counts:-exit $rc}; C suite ${RESULT[$release]}"
        fi
    fi
    rm -rf --one-file-system "${WORK:?}/$release"
done

echo "glibc matrix (modes $MODES, $(since "$T_ALL") s):"
status=0
for release in "${RELEASES[@]}"; do
    printf '  %-9s %-12s %s\n' "$release" "${GLIBC[$release]:-}" "${RESULT[$release]:-FAIL: not run}"
    [[ ${RESULT[$release]:-FAIL} == ok* ]] || status=1
done
# Each failed run again with its details (diff, stderr), last: a CI log may show only its tail.
for release in "${RELEASES[@]}"; do
    [[ ${RESULT[$release]:-FAIL} == ok* ]] && continue
    log=$BUILD_DIR/$release.log
    [ -f "$log" ] || continue
    awk -v r="[$release] " '/^FAIL /{show=1; n=0; print r $0; next} show && /^  / && n < 40 {print r $0; n++; next} {show=0}' "$log"
done
exit $status
