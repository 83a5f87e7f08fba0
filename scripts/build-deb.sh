#!/usr/bin/env bash
# Builds the Debian package from what `make` built: `make install PREFIX=/usr` into a staging tree, then
# dpkg-deb. Called by `make deb` (after `make build`); prints the package's path as its last line.
#
#   target/debian/asyncshim_VERSION_ARCH.deb
#     /usr/bin/asyncshim                          the launcher
#     /usr/lib/asyncshim/libasyncshim.so          the library (private directory: preloaded, never linked)
#     /usr/share/man/man1/asyncshim.1.gz, man7/asyncshim.7.gz
#     /usr/share/doc/asyncshim/{README.md.gz,copyright,changelog.gz}
#
# Depends comes from the binaries themselves (dpkg-shlibdeps, with the libc6 symbols file: the highest
# symbol version they import), with one correction: the library imports glibc's GLIBC_PRIVATE symbols (to
# give every coroutine its own TCB), for which dpkg pins the exact glibc it was built on. The library
# checks that private layout itself at start-up and runs the program in pass-through mode when it does not
# know it, so the pin would only forbid what it handles; it is dropped and the minimum from the public
# symbol versions stays; for a build linked against the glibc 2.31 sysroot that minimum is 2.31 (see below).
# Whether the package then installs and works on a release is what
# scripts/test-package.sh checks in that release's chroot.
#
# Environment: DEB_MAINTAINER="Name <address>" (default: the author of the commit built), DEB_OUT=DIR
# (default target/debian).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
die() { echo "build-deb: $*" >&2; exit 1; }
for tool in dpkg-deb dpkg-shlibdeps gzip md5sum; do
    command -v "$tool" >/dev/null || die "$tool is required (apt-get install dpkg-dev)"
done

VERSION=$(sed -n '/^\[package\]/,/^\[/s/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml | head -n 1)
[[ -n $VERSION ]] || die "no version in Cargo.toml"
ARCH=$(dpkg --print-architecture)
[[ $ARCH == amd64 ]] || die "asyncshim is x86-64 only (this is $ARCH)"
COMMIT=$(git describe --always --dirty --abbrev=12 2>/dev/null || true)
MAINTAINER=${DEB_MAINTAINER:-$(git log -1 --format='%an <%ae>' 2>/dev/null || true)}
[[ $MAINTAINER == *'<'*'>'* ]] || die "set DEB_MAINTAINER=\"Name <address>\" (not a git checkout)"
OUT=${DEB_OUT:-$ROOT/target/debian}
# dpkg-shlibdeps expects the package's files under debian/PACKAGE next to a debian/control.
WORK=$OUT/build
STAGE=$WORK/debian/asyncshim
DEB=$OUT/asyncshim_${VERSION}_${ARCH}.deb

rm -rf "$WORK"
mkdir -p "$STAGE/DEBIAN"
# Files 0644 and directories 0755 whatever the umask; dpkg-deb --root-owner-group makes them root's.
umask 022
# No cargo here: `make deb` has just built, and what it built is what the package carries.
make -s --no-print-directory install PREFIX=/usr DESTDIR="$STAGE" HAVE_CARGO= >&2
DOC=$STAGE/usr/share/doc/asyncshim
gzip -9n "$STAGE/usr/share/man/man1/asyncshim.1" "$STAGE/usr/share/man/man7/asyncshim.7" "$DOC/README.md"

cat >"$DOC/copyright" <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: asyncshim

Files: *
Copyright: the asyncshim authors
License: MIT or Apache-2.0
 The package is offered under either license, at the licensee's option (Cargo.toml: "MIT OR Apache-2.0").
 .
 On Debian systems, the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0. The MIT license:
 .
 Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
 associated documentation files (the "Software"), to deal in the Software without restriction, including
 without limitation the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
 copies of the Software, and to permit persons to whom the Software is furnished to do so, subject to the
 following conditions:
 .
 The above copyright notice and this permission notice shall be included in all copies or substantial
 portions of the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT
 LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO
 EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER
 IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE
 USE OR OTHER DEALINGS IN THE SOFTWARE.
EOF
# A native package's changelog: what this build is (the history is the git log).
{
    echo "asyncshim ($VERSION) unstable; urgency=medium"
    echo
    echo "  * Built from ${COMMIT:+git commit $COMMIT of }the asyncshim source tree."
    echo
    echo " -- $MAINTAINER  $(date -R -d "@$(git log -1 --format=%ct 2>/dev/null || date +%s)")"
} | gzip -9n >"$DOC/changelog.gz"

# --- Depends, from the binaries.
printf 'Source: asyncshim\n\nPackage: asyncshim\nArchitecture: %s\n' "$ARCH" >"$WORK/debian/control"
SHLIBS=$(cd "$WORK" && dpkg-shlibdeps -O \
    debian/asyncshim/usr/bin/asyncshim debian/asyncshim/usr/lib/asyncshim/libasyncshim.so) ||
    die "dpkg-shlibdeps failed"
SHLIBS=${SHLIBS#shlibs:Depends=}
DEPENDS=()
PINNED=""
IFS=',' read -ra items <<<"$SHLIBS"
for item in "${items[@]}"; do
    item=${item# }
    case $item in
        # The exact-version pair dpkg derives from GLIBC_PRIVATE imports (see the header).
        'libc6 (>> '*|'libc6 (<< '*) PINNED+="${PINNED:+, }$item" ;;
        *) DEPENDS+=("$item") ;;
    esac
done
# A build linked against the glibc 2.31 sysroot (scripts/glibc-sysroot.sh) needs nothing newer than 2.31,
# which scripts/check-glibc-versions.sh verifies. dpkg-shlibdeps cannot see that: it reads this machine's
# libc6 symbols file, where libpthread.so.0 and libdl.so.2 (stubs since 2.34) ask for 2.34.
if scripts/check-glibc-versions.sh "$STAGE/usr/bin/asyncshim" "$STAGE/usr/lib/asyncshim/libasyncshim.so" 2>/dev/null; then
    for i in "${!DEPENDS[@]}"; do
        case ${DEPENDS[$i]} in 'libc6 (>= '*) DEPENDS[$i]='libc6 (>= 2.31)' ;; esac
    done
fi
[[ " ${DEPENDS[*]} " == *' libc6 '* ]] || DEPENDS=("libc6" "${DEPENDS[@]}")
DEPENDS_LINE=$(IFS=','; echo "${DEPENDS[*]}" | sed 's/,/, /g')
if [[ -n $PINNED ]]; then
    echo "build-deb: dropped dpkg-shlibdeps' exact glibc pin ($PINNED), which comes from the GLIBC_PRIVATE" \
        "imports: the library checks glibc's private layout itself at start-up" >&2
fi
echo "build-deb: Depends: $DEPENDS_LINE" >&2

INSTALLED_KB=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
cat >"$STAGE/DEBIAN/control" <<EOF
Package: asyncshim
Version: $VERSION
Architecture: $ARCH
Maintainer: $MAINTAINER
Installed-Size: $INSTALLED_KB
Depends: $DEPENDS_LINE
Section: utils
Priority: optional
Description: run the threads of unmodified blocking programs as coroutines
 asyncshim is an LD_PRELOAD library that runs the threads of an unmodified,
 blocking, thread-per-connection Linux program as coroutines on a few OS
 worker threads (M:N). Blocking calls (socket I/O, pthread mutexes and
 condition variables, sleeps, child waits) park the coroutine on an epoll
 netpoller instead of blocking a kernel thread; each coroutine keeps its own
 glibc thread identity (errno, TLS, pthread_self).
 .
 The launcher asyncshim(1) runs a command under the library; asyncshim(7)
 describes the environment variables and the behaviour. The library lives in
 /usr/lib/asyncshim/libasyncshim.so for use with LD_PRELOAD, e.g. in a
 systemd drop-in.
EOF
(cd "$STAGE" && find usr -type f -print0 | sort -z | xargs -0 md5sum) >"$STAGE/DEBIAN/md5sums"

mkdir -p "$OUT"
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$DEB" >&2
echo "$DEB"
