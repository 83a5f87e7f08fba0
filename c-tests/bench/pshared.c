/* asyncshim benchmark: process-shared objects between this process and a forked one.
 *
 * sem: a round trip through two process-shared semaphores — this process posts one and waits on the
 * other, a forked child does the reverse — ROUNDS times; ns per round trip. Under the shim this process's
 * waits are queued in the kernel (io_uring futex waits) while its worker has nothing else to run.
 * cond: the same ping-pong through a process-shared mutex and condition variable (glibc's wait, made on a
 * helper thread under the shim); ns per round trip.
 * barrier: 2 threads here and 2 in the child pass one process-shared barrier ROUNDS times; ns per round.
 * cond_ring: a turn passed around 8 threads here and 1 in the child through one process-shared mutex and
 * condition variable (each pass a broadcast: all other players wake and look), ROUNDS/4 passes; ns per
 * pass. Before the runtime ran process-shared condition variables, each waiting coroutine held a helper
 * thread, so every broadcast woke 8 OS threads of this process.
 *
 * Prints key=value lines: sem_ns_per_roundtrip, cond_ns_per_roundtrip, barrier_ns_per_round,
 * cond_ring_ns_per_pass, cond_ring_os_threads (peak OS threads of this process during the ring), shim_active.
 * Usage: pshared [ROUNDS]       Build: gcc -O2 -pthread pshared.c -o pshared -ldl
 */
#include "bench_common.h"
#include <pthread.h>
#include <semaphore.h>
#include <sys/mman.h>
#include <sys/wait.h>

struct shared {
    sem_t ping, pong;
    pthread_mutex_t m;
    pthread_cond_t cv;
    pthread_barrier_t b;
    int turn;
    int ring_turn;
};

#define RING_LOCAL 8
#define RING (RING_LOCAL + 1)

/* Peak OS threads of this process seen by player 0 during the ring (every 8th of its turns). */
static long ring_peak_threads;

static struct shared *sh;
static long rounds;

static void cond_player(int me)
{
    pthread_mutex_lock(&sh->m);
    for (long r = 0; r < rounds; r++) {
        while (sh->turn != me)
            pthread_cond_wait(&sh->cv, &sh->m);
        sh->turn = 1 - me;
        pthread_cond_broadcast(&sh->cv);
    }
    pthread_mutex_unlock(&sh->m);
}

static long ring_passes(void)
{
    return rounds / 4 > 0 ? rounds / 4 : 1;
}

/* Player `me` of the ring: takes its turns until the pass count is reached. */
static void ring_player(int me)
{
    long passes = ring_passes();
    pthread_mutex_lock(&sh->m);
    for (;;) {
        while (sh->ring_turn % RING != me && sh->ring_turn < passes)
            pthread_cond_wait(&sh->cv, &sh->m);
        if (sh->ring_turn >= passes)
            break;
        if (me == 0 && sh->ring_turn % (8 * RING) == 0) {
            long t = bench_status("Threads");
            if (t > ring_peak_threads)
                ring_peak_threads = t;
        }
        sh->ring_turn++;
        pthread_cond_broadcast(&sh->cv);
    }
    pthread_mutex_unlock(&sh->m);
}

static void *ring_thread(void *arg)
{
    ring_player((int)(long)arg);
    return NULL;
}

static void *barrier_player(void *arg)
{
    (void)arg;
    for (long r = 0; r < rounds; r++)
        pthread_barrier_wait(&sh->b);
    return NULL;
}

static void barrier_pair(void)
{
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, barrier_player, NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
}

int main(int argc, char **argv)
{
    rounds = bench_arg(argc, argv, 1, 20000);
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        return 1;
    sem_init(&sh->ping, 1, 0);
    sem_init(&sh->pong, 1, 0);
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(&sh->m, &ma);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
    pthread_cond_init(&sh->cv, &ca);
    pthread_barrierattr_t ba;
    pthread_barrierattr_init(&ba);
    pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
    pthread_barrier_init(&sh->b, &ba, 4);

    pid_t kid = fork();
    if (kid == 0) {
        for (long r = 0; r < rounds; r++) {
            sem_wait(&sh->ping);
            sem_post(&sh->pong);
        }
        cond_player(1);
        barrier_pair();
        ring_player(RING_LOCAL);
        _exit(0);
    }
    long long t0 = bench_now_ns();
    for (long r = 0; r < rounds; r++) {
        sem_post(&sh->ping);
        sem_wait(&sh->pong);
    }
    long long t1 = bench_now_ns();
    cond_player(0);
    long long t2 = bench_now_ns();
    barrier_pair();
    long long t3 = bench_now_ns();
    pthread_t rt[RING_LOCAL];
    for (long i = 0; i < RING_LOCAL; i++)
        pthread_create(&rt[i], NULL, ring_thread, (void *)i);
    for (int i = 0; i < RING_LOCAL; i++)
        pthread_join(rt[i], NULL);
    long long t4 = bench_now_ns();
    int st;
    waitpid(kid, &st, 0);
    printf("sem_ns_per_roundtrip=%.0f\n", (double)(t1 - t0) / rounds);
    printf("cond_ns_per_roundtrip=%.0f\n", (double)(t2 - t1) / rounds);
    printf("barrier_ns_per_round=%.0f\n", (double)(t3 - t2) / rounds);
    printf("cond_ring_ns_per_pass=%.0f\n", (double)(t4 - t3) / ring_passes());
    printf("cond_ring_os_threads=%ld\n", ring_peak_threads);
    printf("shim_active=%d\n", bench_shim_active());
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}
