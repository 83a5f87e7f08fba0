#!/usr/bin/env bash
# asyncshim-test: timeout=60
# asyncshim-test: modes=native,shim,shim-w1
#
# Do no harm: everyday shell work, with the shell itself and every program it starts under the shim
# (bash runs under $SHIM_ENV; its children inherit LD_PRELOAD): pipelines (seq|awk|sort|uniq|wc,
# find|xargs, tee, sort -R), coreutils (cp, mv, ln, sha256sum, dd, split/cat, cmp, od),
# tar+gzip round trip of a generated tree. Output: results and checksums only.
. "$APPS_DIR/lib.sh"
. "$APPS_DIR/harm_lib.bash"
cd "$H_TMP" || exit 1
cat >body.sh <<'BODY'
set -euo pipefail
export LC_ALL=C TZ=UTC
echo "== pipelines"
seq 1 200000 | awk '{ print $1 % 1000, $1 % 7 }' | sort -n | uniq -c | sort -k1,1nr -k2,2n -k3,3n | sed -n '1,3p;$p'
seq 1 200000 | awk '{ s += $1 } END { print "awk sum", s }'
seq 1 300000 >random.src
seq 1 50000 | sort -R --random-source=random.src | sha256sum
seq 1 50000 | sort -R --random-source=random.src | sort -n | sha256sum
printf '%s\n' alpha beta gamma beta alpha alpha | sort | uniq -c | sort -rn
seq 1 100000 | tee tee.out | wc -l
sha256sum tee.out
awk 'BEGIN { for (i = 0; i < 100000; i++) print "a line of text" }' | tr 'a-z' 'A-Z' | sed 's/LINE/row/' | grep -c 'A row OF TEXT'
echo "== tree"
mkdir -p tree
for d in $(seq 1 12); do
    mkdir -p tree/dir$d/sub
    for f in $(seq 1 15); do
        seq $((d * f)) $((d * f + 200)) >tree/dir$d/file$f.txt
    done
    head -c $((d * 5000)) /dev/zero | tr '\0' "$(printf "\\$(printf %o $((d + 64)))")" >tree/dir$d/sub/blob.bin
done
ln -s ../dir1/file1.txt tree/dir2/link
find tree -type f | sort | wc -l
find tree -name '*.txt' -print0 | sort -z | xargs -0 -n 7 -P 4 sha256sum | sort | sha256sum
find tree -name '*.txt' | sort | xargs wc -l | tail -n 1
find tree -type f -size +20k | sort
echo "== coreutils"
cp -a tree tree2
mv tree2/dir3 tree2/dir3-moved
cp tree/dir5/file5.txt copy.txt
dd if=/dev/urandom of=rand.bin bs=64k count=16 status=none
dd if=rand.bin of=rand2.bin bs=4096 status=none
cmp rand.bin rand2.bin && echo "dd copy identical"
dd if=rand.bin bs=1000 skip=3 count=5 status=none | wc -c
split -b 100000 rand.bin part.
ls part.* | wc -l
cat part.* | cmp - rand.bin && echo "split/cat identical"
(cd tree2 && find . -type f | sort | xargs sha256sum) | sha256sum
sha256sum copy.txt
od -An -tx1 -N16 tree/dir1/sub/blob.bin
readlink tree/dir2/link
du -b -s tree | cut -f1
echo "== tar+gzip"
tar -cf - tree | gzip -6 >tree.tar.gz
mkdir out
gzip -dc tree.tar.gz | tar -xf - -C out
diff -r tree out/tree && echo "tar+gzip round trip identical"
tar -tzf tree.tar.gz | sort | sha256sum
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - tree | sha256sum
gzip -9 -c rand.bin | gzip -dc | cmp - rand.bin && echo "gzip round trip identical"
echo "== done"
BODY
shimmed bash body.sh
echo "body exit status: $?"
