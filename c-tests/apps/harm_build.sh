#!/usr/bin/env bash
# asyncshim-test: timeout=90
# asyncshim-test: modes=native,shim,shim-w1
#
# Do no harm: building software under the shim. The shell, gcc (driver, cc1, as, collect2, ld), make
# and the built programs all run under $SHIM_ENV:
#  - gcc compiles a small threaded C program (threads, mutex, condition variable, pipe), which runs;
#  - make -j4 builds a generated 24-file project, a no-op rebuild, then an incremental rebuild.
. "$APPS_DIR/lib.sh"
. "$APPS_DIR/harm_lib.bash"
cd "$H_TMP" || exit 1
cat >body.sh <<'BODY'
set -euo pipefail
export LC_ALL=C
echo "== gcc: threaded program"
cat >threads.c <<'EOF'
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#define N 8
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static long total, turn;
static int fds[2];
static void *work(void *arg) {
    long id = (long)arg, s = 0;
    for (long i = 0; i < 1000000; i++) s += (i * id) % 13;
    pthread_mutex_lock(&mu);
    while (turn != id) pthread_cond_wait(&cv, &mu);   /* finish in id order */
    total += s;
    char line[64];
    int n = snprintf(line, sizeof line, "thread %ld: %ld\n", id, s);
    if (write(fds[1], line, n) != n) return (void *)1;
    turn++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    return 0;
}
int main(void) {
    pthread_t t[N];
    if (pipe(fds)) return 1;
    for (long i = 0; i < N; i++) pthread_create(&t[i], 0, work, (void *)i);
    for (int i = 0; i < N; i++) { void *r; pthread_join(t[i], &r); if (r) return 2; }
    close(fds[1]);
    char buf[4096]; ssize_t n; size_t lines = 0;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++) lines += buf[i] == '\n';
        fwrite(buf, 1, n, stdout);
    }
    printf("lines %zu total %ld\n", lines, total);
    return 0;
}
EOF
gcc -O2 -Wall -pthread -o threads threads.c
./threads
gcc -O0 -g -pthread -o threads-g threads.c
./threads-g | sha256sum
echo "== make -j4"
mkdir proj && cd proj
for i in $(seq -w 1 24); do
    cat >f$i.c <<EOF
#include "common.h"
long f$i(long x) { long s = 0; for (long k = 0; k < x; k++) s += (k ^ $((10#$i))) % 17; return s + VERSION; }
EOF
done
echo '#define VERSION 1' >common.h
{
    echo '#include <stdio.h>'
    echo '#include "common.h"'
    for i in $(seq -w 1 24); do echo "long f$i(long);"; done
    echo 'int main(void) { long t = 0;'
    for i in $(seq -w 1 24); do echo "  t += f$i(100000);"; done
    echo '  printf("project total %ld\n", t); return 0; }'
} >main.c
cat >Makefile <<'EOF'
SRCS := $(sort $(wildcard f*.c)) main.c
OBJS := $(SRCS:.c=.o)
CFLAGS := -O1 -Wall
app: $(OBJS)
	$(CC) -o $@ $^
	@echo linked
%.o: %.c common.h
	$(CC) $(CFLAGS) -c -o $@ $<
clean:
	rm -f $(OBJS) app
.PHONY: clean
EOF
make -j4 >make1.log 2>&1
grep -c '^cc ' make1.log
grep -c '^linked$' make1.log
./app
make -j4
sleep 1.1   # coarse mtime file systems
echo 'long unused_symbol = 1;' >>f07.c
make -j4 >make2.log 2>&1
grep '^cc ' make2.log
ls -t *.o | sed -n 1p
./app
sed -i 's/VERSION 1/VERSION 2/' common.h
make -j4 -s
./app
make -s clean
ls
BODY
shimmed bash body.sh
echo "body exit status: $?"
