#!/usr/bin/env bash
# asyncshim-test: timeout=60
# asyncshim-test: modes=native,shim,shim-w1
#
# Do no harm: scripting languages under the shim (the shell and everything it starts run under
# $SHIM_ENV): a perl script (text processing, hashes, sprintf, sort, ithreads + Thread::Queue, fork and
# pipes, open-from-command, a socketpair) and a Python script (threads, subprocess pipelines, pipes
# between threads, hashlib/zlib releasing the GIL). Output: results and checksums only.
. "$APPS_DIR/lib.sh"
. "$APPS_DIR/harm_lib.bash"
cd "$H_TMP" || exit 1
cat >script.pl <<'PERL'
use strict;
use warnings;
use threads;
use Thread::Queue;
use Socket;
use IO::Handle;
use Digest::SHA qw(sha256_hex);

# Text processing: word frequencies of generated text.
my @words = qw(alpha beta gamma delta epsilon zeta eta theta);
my %freq;
my $text = '';
for my $i (1 .. 20000) {
    my $w = $words[($i * 7 + int($i / 3)) % @words];
    $freq{$w}++;
    $text .= "$w ";
}
printf "%-8s %d\n", $_, $freq{$_} for sort { $freq{$b} <=> $freq{$a} || $a cmp $b } keys %freq;
print "text sha256 ", sha256_hex($text), "\n";
(my $copy = $text) =~ s/\b(\w)(\w*)/\U$1\E$2/g;
print "capitalised sha256 ", sha256_hex($copy), "\n";

# ithreads with a queue.
my $q = Thread::Queue->new();
my @thr = map { threads->create(sub {
    my $s = 0;
    while (defined(my $x = $q->dequeue())) { $s += $x * $x; }
    return $s;
}) } 1 .. 4;
$q->enqueue($_) for 1 .. 5000;
$q->end();
my $sum = 0;
$sum += $_->join() for @thr;
print "threads sum of squares $sum\n";

# fork + pipe.
pipe(my $r, my $w) or die;
my $pid = fork();
die unless defined $pid;
if ($pid == 0) {
    close $r;
    print $w "child line $_\n" for 1 .. 1000;
    close $w;
    exit 7;
}
close $w;
my @lines = <$r>;
waitpid($pid, 0);
print "fork: ", scalar(@lines), " lines, child exit ", $? >> 8, "\n";

# open from a command, and a socketpair between parent and child.
open(my $cmd, '-|', 'seq', '1', '1000') or die;
my $t = 0;
$t += $_ while <$cmd>;
close $cmd;
print "seq via open: $t\n";
socketpair(my $a, my $b, AF_UNIX, SOCK_STREAM, PF_UNSPEC) or die;
$a->autoflush(1);
$b->autoflush(1);
if (my $p = fork()) {
    close $b;
    print $a "$_\n" for 1 .. 200;
    shutdown($a, 1);
    my @back = <$a>;
    waitpid($p, 0);
    print "socketpair echo: ", scalar(@back), " lines, last $back[-1]";
} else {
    close $a;
    while (my $l = <$b>) { print $b $l * 3, "\n"; }
    exit 0;
}
PERL
cat >script.py <<'PY'
import hashlib, os, subprocess, sys, threading, zlib

# Threads hashing and compressing (C code that releases the GIL).
blobs = [bytes((i * k) % 256 for k in range(200000)) for i in range(1, 9)]
res = [None] * 8
def work(i):
    c = zlib.compress(blobs[i] * 5, 6)
    res[i] = (hashlib.sha256(blobs[i]).hexdigest()[:16], len(zlib.decompress(c)))
ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
for t in ts: t.start()
for t in ts: t.join()
for i, r in enumerate(res): print("blob", i, *r)

# subprocess pipelines from threads.
out = [None] * 6
def pipeline(i):
    p1 = subprocess.Popen(["seq", "1", str(10000 * (i + 1))], stdout=subprocess.PIPE)
    p2 = subprocess.Popen(["awk", "{s+=$1} END {print s}"], stdin=p1.stdout, stdout=subprocess.PIPE)
    p1.stdout.close()
    out[i] = p2.communicate()[0].decode().strip()
    p1.wait()
ts = [threading.Thread(target=pipeline, args=(i,)) for i in range(6)]
for t in ts: t.start()
for t in ts: t.join()
print("pipelines:", " ".join(out))
print("shell:", subprocess.check_output("echo $((6*7)) | tr 4 X", shell=True).decode().strip())
r = subprocess.run([sys.executable, "-c", "import sys; sys.stdout.write(sys.stdin.read().upper()); sys.exit(3)"],
                   input=b"child python\n", capture_output=True)
print("child python:", r.returncode, r.stdout.decode().strip())

# A pipe between two threads.
rfd, wfd = os.pipe()
def writer():
    with os.fdopen(wfd, "wb") as w:
        for k in range(2000):
            w.write(b"%05d\n" % k)
got = []
t = threading.Thread(target=writer); t.start()
with os.fdopen(rfd, "rb") as r:
    for line in r: got.append(int(line))
t.join()
print("pipe between threads:", len(got), sum(got))
PY
cat >body.sh <<'BODY'
set -euo pipefail
echo "== perl"
perl script.pl
echo "== python"
"$PY" script.py
BODY
shimmed bash body.sh
echo "body exit status: $?"
