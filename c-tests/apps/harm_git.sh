#!/usr/bin/env bash
# asyncshim-test: timeout=90
# asyncshim-test: modes=native,shim,shim-w1
#
# Do no harm: git under the shim (the shell and every git process run under $SHIM_ENV). Fixed author,
# committer and dates make every object id deterministic: init, add, commit, log, diff, branch, merge,
# tag, threaded git grep, gc (threaded pack-objects), fsck, archive | tar, and clones of the local
# repository through the pack protocol (upload-pack/fetch-pack over pipes, --no-local and file://).
. "$APPS_DIR/lib.sh"
. "$APPS_DIR/harm_lib.bash"
cd "$H_TMP" || exit 1
cat >body.sh <<'BODY'
set -euo pipefail
export LC_ALL=C TZ=UTC HOME=$PWD/home GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME="A U Thor" GIT_AUTHOR_EMAIL=author@example.com
export GIT_COMMITTER_NAME="C O Mitter" GIT_COMMITTER_EMAIL=committer@example.com
mkdir -p home
n=0
commit() { # message: commit with dates one hour apart
    n=$((n + 1))
    export GIT_AUTHOR_DATE="@$((1700000000 + n * 3600)) +0000" GIT_COMMITTER_DATE="@$((1700000000 + n * 3600)) +0000"
    git commit -q -m "$1"
}
echo "== init, add, commit"
git init -q -b main repo
cd repo
git config core.autocrlf false
git config gc.auto 0
for d in src doc data; do mkdir -p $d; done
for i in $(seq 1 40); do seq $i $((i * 50)) >data/f$i.txt; done
printf 'int main(void) { return 0; }\n' >src/main.c
printf '# Project\n\nSome text.\n' >doc/README.md
git add -A
commit "initial import"
git rev-parse HEAD
sed -i 's/return 0/return 42/' src/main.c
echo "more text" >>doc/README.md
git rm -q data/f3.txt
git add -A
commit "second: change main, extend readme, drop f3"
git rev-parse HEAD
echo "== diff, log"
git diff --stat HEAD~1 HEAD
git diff HEAD~1 HEAD -- src/main.c
git log --format='%H %an <%ae> %ad %s' --date=iso-strict
echo "== branch, merge, tag"
git checkout -q -b feature
for i in 1 2 3; do echo "feature line $i" >>doc/README.md; git add doc/README.md; commit "feature $i"; done
git checkout -q main
echo "main change" >src/util.c
git add src/util.c
commit "util"
export GIT_AUTHOR_DATE="@1700100000 +0000" GIT_COMMITTER_DATE="@1700100000 +0000"
git merge -q --no-edit feature
git tag -a v1.0 -m "release 1.0"
git log --graph --oneline --all
git describe --tags
git grep -c 'line' -- doc | cat
git grep -n -e '^1[0-9]*5$' -- data | wc -l
git ls-files | wc -l
git rev-list --count HEAD
echo "== gc, fsck"
git gc -q --aggressive
git count-objects -v | grep -E '^(count|in-pack|packs):'
git fsck --strict --no-progress 2>&1
# Delta choices of threaded pack-objects may depend on timing: only the verdict, pack name normalised.
git verify-pack .git/objects/pack/*.idx && echo "verify-pack ok"
git cat-file --batch-all-objects --batch-check | sort | sha256sum
echo "== archive"
git archive --format=tar --prefix=v1/ v1.0 | tar -tf - | sort | sha256sum
git archive --format=tar v1.0 | tar -xOf - src/main.c
cd ..
echo "== clone"
git clone -q --no-local repo clone1
git clone -q "file://$PWD/repo" clone2
git clone -q --bare repo clone3.git
for c in clone1 clone2 clone3.git; do
    echo "$c: $(git -C $c rev-parse HEAD) $(git -C $c tag) $(git -C $c rev-list --count --all)"
done
git -C clone1 log --format='%H %s' -n 3
diff -r -x .git repo clone1 && echo "clone1 work tree identical"
echo "change in clone" >clone1/new.txt
git -C clone1 add new.txt
(cd clone1 && commit "from clone")
git -C clone1 push -q origin HEAD:refs/heads/from-clone
git -C repo log --format='%H %s' -n 1 from-clone
git -C clone2 fetch -q origin
git -C clone2 branch -r | sort
BODY
shimmed bash body.sh
echo "body exit status: $?"
