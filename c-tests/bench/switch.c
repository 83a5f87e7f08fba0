/* asyncshim benchmark: cost of a switch between two threads through sched_yield().
 *
 * Two threads pass a token back and forth ROUNDS times (default 200,000); each waits for its turn by
 * calling sched_yield(). Under the shim with ASYNCSHIM_WORKERS=1 every yield is a coroutine switch.
 * Natively both threads are pinned to one CPU (sched_setaffinity) so that every yield is a kernel
 * context switch to the other thread — the comparable number. Under the shim nothing is pinned.
 *
 * Prints key=value lines on stdout: ns_per_yield (elapsed / sched_yield calls), ns_per_handoff, ...
 *
 * Usage: switch [ROUNDS]      Build: gcc -O2 -pthread switch.c -o switch -ldl
 */
#include "bench_common.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

static long rounds;
static atomic_int turn;
static atomic_int go;
static long yields[2];

static void *player(void *arg) {
    int me = (int)(intptr_t)arg;
    long y = 0;
    while (!atomic_load_explicit(&go, memory_order_acquire)) sched_yield();
    for (long r = 0; r < rounds; r++) {
        while (atomic_load_explicit(&turn, memory_order_acquire) != me) {
            sched_yield();
            y++;
        }
        atomic_store_explicit(&turn, 1 - me, memory_order_release);
    }
    yields[me] = y;
    return NULL;
}

int main(int argc, char **argv) {
    rounds = bench_arg(argc, argv, 1, 200000);
    int shim = bench_shim_active();
    int pinned = 0;
    int cpu = -1;
    if (!shim) {
        /* Pin the main thread before creating the players: they inherit the mask. */
        cpu_set_t cur, one;
        if (sched_getaffinity(0, sizeof cur, &cur) == 0) {
            for (int c = 0; c < CPU_SETSIZE; c++)
                if (CPU_ISSET(c, &cur)) { cpu = c; break; }
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            if (sched_setaffinity(0, sizeof one, &one) == 0) pinned = 1;
            else perror("switch: sched_setaffinity");
        }
    }
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        int rc = pthread_create(&t[i], NULL, player, (void *)(intptr_t)i);
        if (rc != 0) {
            fprintf(stderr, "switch: pthread_create: %s\n", strerror(rc));
            return 1;
        }
    }
    long long t0 = bench_now_ns();
    atomic_store_explicit(&go, 1, memory_order_release);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    long long t1 = bench_now_ns();
    long total = yields[0] + yields[1];
    if (total == 0) total = 1;
    printf("benchmark=switch\n");
    printf("shim_active=%d\n", shim);
    printf("workers=%d\n", bench_shim_workers());
    printf("pinned=%d\n", pinned);
    printf("rounds=%ld\n", rounds);
    printf("yields=%ld\n", yields[0] + yields[1]);
    printf("elapsed_ms=%.1f\n", (t1 - t0) / 1e6);
    printf("ns_per_yield=%.0f\n", (double)(t1 - t0) / (double)total);
    printf("ns_per_handoff=%.0f\n", (double)(t1 - t0) / (2.0 * (double)rounds));
    return 0;
}
