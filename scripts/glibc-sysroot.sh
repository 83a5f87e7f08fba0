#!/usr/bin/env bash
# Makes the glibc 2.31 sysroot that the release build links against, so that one libasyncshim.so (and
# launcher) loads on every glibc from 2.31 (Debian 11) on: a library linked against a newer glibc asks for
# that glibc's symbol versions (GLIBC_2.34 for pthread_* since libpthread merged into libc, ...) and does
# not load on an older one. The sysroot holds Debian 11's libc6, libc6-dev and libgcc-s1, fetched with
# apt-get from the Debian mirror apt is configured with (its own state directory; the system's apt state
# is not touched) and unpacked with dpkg-deb. Only the link uses it; nothing from it is loaded at run time.
#
#   scripts/glibc-sysroot.sh          make it unless present (quiet then); prints its path
#   scripts/glibc-sysroot.sh --path   print where it is (or would be)
#
# Location: $ASYNCSHIM_SYSROOT, default ~/.cache/asyncshim/sysroot-glibc-2.31 (shared by checkouts).
set -euo pipefail
SYSROOT=${ASYNCSHIM_SYSROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/asyncshim/sysroot-glibc-2.31}
if [ "${1:-}" = --path ]; then
    echo "$SYSROOT"
    exit 0
fi
if [ -e "$SYSROOT/.complete" ]; then
    echo "$SYSROOT"
    exit 0
fi
SUITE=bullseye
KEYRING=/usr/share/keyrings/debian-archive-$SUITE-stable.gpg
PACKAGES=(libc6 libc6-dev libgcc-s1)

die() { echo "glibc-sysroot: $*" >&2; exit 1; }
for tool in apt-get dpkg-deb; do
    command -v "$tool" >/dev/null || die "needs $tool (a Debian or Ubuntu machine)"
done
[ -r "$KEYRING" ] || die "no $KEYRING (package debian-archive-keyring)"

# The first non-security Debian archive apt uses (deb822 .sources files or one-line sources.list).
mirror=$(
    { cat /etc/apt/sources.list.d/*.sources 2>/dev/null; echo; } | awk '
        /^URIs:/ { uri = $2 } /^Suites:/ { suites = $0 }
        /^$/ { if (uri != "" && suites !~ /security/ && !found) { print uri; found = 1 } uri = ""; suites = "" }'
)
if [ -z "$mirror" ]; then
    mirror=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
fi
[ -n "$mirror" ] || die "cannot find the Debian mirror apt is configured with"

echo "glibc-sysroot: fetching Debian 11's glibc 2.31 for the portable build into $SYSROOT" >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
echo "deb [signed-by=$KEYRING] $mirror $SUITE main" >"$work/sources.list"
apt_opts=(
    -o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/nonexistent
    -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o Dir::State::status=/dev/null
    -o APT::Architecture=amd64 -o Acquire::Check-Valid-Until=false -o APT::Sandbox::User=root
)
apt-get "${apt_opts[@]}" -qq update >"$work/log" 2>&1 || { cat "$work/log" >&2; die "apt-get update failed"; }
(cd "$work/debs" && apt-get "${apt_opts[@]}" -qq download "${PACKAGES[@]}") >>"$work/log" 2>&1 ||
    { cat "$work/log" >&2; die "apt-get download failed"; }

rm -rf "$SYSROOT.tmp"
mkdir -p "$SYSROOT.tmp"
for deb in "$work"/debs/*.deb; do
    dpkg-deb -x "$deb" "$SYSROOT.tmp"
done
# Absolute symlinks (libc.so -> /lib/...) would lead the linker out of the sysroot into the host's glibc.
while IFS= read -r link; do
    target=$(readlink "$link")
    case $target in
        /*) ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$SYSROOT.tmp$target")" "$link" ;;
    esac
done < <(find "$SYSROOT.tmp" -type l)
[ -e "$SYSROOT.tmp/usr/lib/x86_64-linux-gnu/libc.so" ] || die "unpacked packages hold no libc.so"
touch "$SYSROOT.tmp/.complete"
rm -rf "$SYSROOT"
mv "$SYSROOT.tmp" "$SYSROOT"
echo "$SYSROOT"
