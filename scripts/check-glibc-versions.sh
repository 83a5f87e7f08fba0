#!/usr/bin/env bash
# Fails when a built file asks glibc for a symbol version newer than the oldest supported glibc (2.31),
# for any GLIBC_PRIVATE symbol, or for a symbol without a version that is not weak (a name the 2.31
# sysroot lacks, like __rseq_offset): such a file would not load on some glibc at all. Those are looked up
# at run time instead (dlsym), where a missing one means pass-through, not a program that cannot start.
#   scripts/check-glibc-versions.sh FILE...
set -euo pipefail
OLDEST=2.31
rc=0
for f in "$@"; do
    bad=$(objdump -T "$f" | grep -o '(GLIBC_[A-Z0-9_.]*)' | tr -d '()' | sort -u |
        while read -r v; do
            n=${v#GLIBC_}
            if [ "$n" = PRIVATE ]; then echo "$v"; continue; fi
            [ "$(printf '%s\n%s\n' "$n" "$OLDEST" | sort -V | tail -1)" = "$OLDEST" ] || echo "$v"
        done | tr '\n' ' ')
    if [ -n "$bad" ]; then
        echo "check-glibc-versions: $f needs $bad(newer than glibc $OLDEST, or private): it would not load there" >&2
        rc=1
    fi
    # objdump -T: VALUE FLAGS SECTION SIZE [VERSION] NAME; a strong undefined symbol has no 'w' flag.
    unversioned=$(objdump -T "$f" | awk '$0 ~ /\*UND\*/ && $0 !~ /\(/ && $2 != "w" { print $NF }' | tr '\n' ' ')
    if [ -n "$unversioned" ]; then
        echo "check-glibc-versions: $f needs $unversioned(no version: not in glibc $OLDEST)" >&2
        rc=1
    fi
done
exit $rc
