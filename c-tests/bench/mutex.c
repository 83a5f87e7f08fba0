/* asyncshim benchmark: pthread mutex costs.
 *
 * uncontended: one thread locks and unlocks a mutex ITERS times (ns per lock+unlock pair), after a thread
 * was created and joined, as in any threaded program (before that glibc skips atomic instructions).
 * handoff: two threads take turns through one mutex and a condition variable per side, ROUNDS times;
 * ns per hand-off = elapsed / (2 * ROUNDS). Natively both threads are pinned to one CPU so every hand-off
 * is a kernel context switch, the comparable case to the shim with ASYNCSHIM_WORKERS=1.
 *
 * Prints key=value lines: ns_per_lock_unlock, ns_per_handoff.
 * Usage: mutex [ITERS] [ROUNDS]       Build: gcc -O2 -pthread mutex.c -o mutex -ldl
 */
#include "bench_common.h"
#include <pthread.h>
#include <sched.h>
#include <stdint.h>

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv[2] = { PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER };
static int turn;
static long rounds;

static void *player(void *arg)
{
    int me = (int)(intptr_t)arg;
    if (me > 1)
        return NULL;
    pthread_mutex_lock(&m);
    for (long r = 0; r < rounds; r++) {
        while (turn != me)
            pthread_cond_wait(&cv[me], &m);
        turn = 1 - me;
        pthread_cond_signal(&cv[1 - me]);
    }
    pthread_mutex_unlock(&m);
    return NULL;
}

int main(int argc, char **argv)
{
    long iters = bench_arg(argc, argv, 1, 10000000);
    rounds = bench_arg(argc, argv, 2, 100000);
    pthread_t first;
    pthread_create(&first, NULL, player, (void *)(intptr_t)2);
    pthread_join(first, NULL);
    long long t0 = bench_now_ns();
    for (long i = 0; i < iters; i++) {
        pthread_mutex_lock(&m);
        pthread_mutex_unlock(&m);
    }
    long long t1 = bench_now_ns();
    printf("ns_per_lock_unlock=%.1f\n", (double)(t1 - t0) / iters);

    if (!bench_shim_active()) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(sched_getcpu() < 0 ? 0 : sched_getcpu(), &one);
        sched_setaffinity(0, sizeof one, &one);
    }
    pthread_t t[2];
    long long t2 = bench_now_ns();
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, player, (void *)(intptr_t)i);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    long long t3 = bench_now_ns();
    printf("ns_per_handoff=%.0f\n", (double)(t3 - t2) / (2.0 * rounds));
    printf("shim_active=%d\n", bench_shim_active());
    return 0;
}
