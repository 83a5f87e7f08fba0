/* sync_convoy.c — a global interpreter lock built like CPython's (a mutex, a condition variable and a
 * "locked" flag; waiters re-check every 5 ms and then ask the holder to drop it; the holder that drops on
 * request waits until another thread has taken it), taken by 200 threads between socket round trips with
 * an echo thread. The lock must stay exclusive, no thread may be lost and every round trip must complete;
 * under the shim with two or more workers a worker must have stepped aside from the convoy (the statistics
 * report says so), while four threads that compute between short lock waits, and a pool of 128 threads
 * taking 60 us jobs from a mutex/condition-variable queue, must never make a worker step aside. The phases
 * run with ASYNCSHIM_CONVOY_STREAK=16 (a quarter of the default) so that the convoy is seen within the
 * test's short run and the others are held to the stricter setting.
 * Each phase runs in a re-executed child so that under the shim its own report can be read.
 * asyncshim-test: timeout=120 */
#include "shim_probe.h"
#include "test_util.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#define GIL_THREADS 200
#define GIL_ROUNDS 100
#define PAR_THREADS 4
#define PAR_ROUNDS 40

/* ---- the interpreter lock (CPython 3.11's take_gil/drop_gil, FORCE_SWITCHING) ---- */
static pthread_mutex_t gil_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gil_cond;
static pthread_mutex_t switch_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t switch_cond;
static int gil_locked;
static unsigned long switch_number;
static atomic_int drop_request;
static atomic_long last_holder;
static atomic_long holder;
static long total, violations;

static void take_gil(long me)
{
    pthread_mutex_lock(&gil_mutex);
    while (gil_locked) {
        unsigned long saved = switch_number;
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += 5000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        int r = pthread_cond_timedwait(&gil_cond, &gil_mutex, &until);
        if (r == ETIMEDOUT && gil_locked && switch_number == saved)
            atomic_store(&drop_request, 1);
    }
    gil_locked = 1;
    if (atomic_load(&last_holder) != me) {
        atomic_store(&last_holder, me);
        switch_number++;
    }
    pthread_mutex_lock(&switch_mutex);
    pthread_cond_signal(&switch_cond);
    pthread_mutex_unlock(&switch_mutex);
    atomic_store(&drop_request, 0);
    pthread_mutex_unlock(&gil_mutex);
}

static void drop_gil(long me)
{
    pthread_mutex_lock(&gil_mutex);
    gil_locked = 0;
    pthread_cond_signal(&gil_cond);
    pthread_mutex_unlock(&gil_mutex);
    if (atomic_load(&drop_request)) {
        pthread_mutex_lock(&switch_mutex);
        if (atomic_load(&last_holder) == me) {
            atomic_store(&drop_request, 0);
            pthread_cond_wait(&switch_cond, &switch_mutex);
        }
        pthread_mutex_unlock(&switch_mutex);
    }
}

static void spin_ns(long ns)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do
        clock_gettime(CLOCK_MONOTONIC, &b);
    while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < ns);
}

/* The interpreter threads' sockets: each thread's near end, and the far ends one echo thread serves. */
static int near_end[GIL_THREADS], far_end[GIL_THREADS];
static atomic_int interpreters_done;

static void *echo_thread(void *arg)
{
    (void)arg;
    struct pollfd p[GIL_THREADS];
    for (int i = 0; i < GIL_THREADS; i++)
        p[i] = (struct pollfd){ .fd = far_end[i], .events = POLLIN };
    while (atomic_load(&interpreters_done) < GIL_THREADS) {
        if (poll(p, GIL_THREADS, 100) <= 0)
            continue;
        for (int i = 0; i < GIL_THREADS; i++) {
            char c;
            if ((p[i].revents & POLLIN) && read(p[i].fd, &c, 1) == 1 && write(p[i].fd, &c, 1) != 1)
                return NULL;
        }
    }
    return NULL;
}

static void *interpreter_thread(void *arg)
{
    long me = (long)arg;
    int fd = near_end[me - 1];
    long done = 0;
    for (int i = 0; i < GIL_ROUNDS; i++) {
        take_gil(me);
        if (atomic_exchange(&holder, me) != 0)
            violations++;
        spin_ns(10000);
        total++;
        if (atomic_exchange(&holder, 0) != me)
            violations++;
        drop_gil(me);
        /* A round trip without the lock, as the interpreter makes its system calls: the reply comes from
         * the echo thread, so the read usually waits. */
        char c = (char)i, back = 0;
        if (write(fd, &c, 1) == 1 && read(fd, &back, 1) == 1 && back == c)
            done++;
    }
    atomic_fetch_add(&interpreters_done, 1);
    return (void *)done;
}

static int gil_phase(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&gil_cond, &ca);
    pthread_cond_init(&switch_cond, NULL);
    for (int i = 0; i < GIL_THREADS; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
            return 2;
        near_end[i] = sv[0];
        far_end[i] = sv[1];
    }
    pthread_t echo;
    pthread_create(&echo, NULL, echo_thread, NULL);
    take_gil(-1);
    pthread_t t[GIL_THREADS];
    for (long i = 0; i < GIL_THREADS; i++)
        if (pthread_create(&t[i], NULL, interpreter_thread, (void *)(i + 1)) != 0)
            return 2;
    drop_gil(-1);
    long round_trips = 0;
    for (int i = 0; i < GIL_THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        round_trips += (long)r;
    }
    pthread_join(echo, NULL);
    printf("gil: total %ld of %d, violations %ld, round trips %ld\n", total, GIL_THREADS * GIL_ROUNDS, violations,
           round_trips);
    return total == GIL_THREADS * GIL_ROUNDS && violations == 0 && round_trips == total ? 0 : 1;
}

/* ---- threads that compute between short lock waits: real parallelism ---- */
static pthread_mutex_t shared_mutex = PTHREAD_MUTEX_INITIALIZER;
static long shared_count;

static void *computing_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < PAR_ROUNDS; i++) {
        spin_ns(1000000);
        pthread_mutex_lock(&shared_mutex);
        spin_ns(100000);
        shared_count++;
        pthread_mutex_unlock(&shared_mutex);
    }
    return NULL;
}

static int parallel_phase(void)
{
    pthread_t t[PAR_THREADS];
    for (int i = 0; i < PAR_THREADS; i++)
        pthread_create(&t[i], NULL, computing_thread, NULL);
    for (int i = 0; i < PAR_THREADS; i++)
        pthread_join(t[i], NULL);
    printf("parallel: count %ld of %d\n", shared_count, PAR_THREADS * PAR_ROUNDS);
    return shared_count == PAR_THREADS * PAR_ROUNDS ? 0 : 1;
}

/* ---- a thread pool: workers take 60 us jobs from a mutex/condition-variable queue ---- */
#define POOL_THREADS 128
#define POOL_JOBS 4000
static pthread_mutex_t pool_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_work = PTHREAD_COND_INITIALIZER, pool_room = PTHREAD_COND_INITIALIZER;
static int pool_queued, pool_closed;
static long pool_ran;

static void *pool_worker(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&pool_mutex);
        while (!pool_queued && !pool_closed)
            pthread_cond_wait(&pool_work, &pool_mutex);
        if (!pool_queued) {
            pthread_mutex_unlock(&pool_mutex);
            return NULL;
        }
        pool_queued--;
        pool_ran++;
        pthread_cond_signal(&pool_room);
        pthread_mutex_unlock(&pool_mutex);
        spin_ns(60000);
    }
}

static int pool_phase(void)
{
    pthread_t t[POOL_THREADS];
    for (int i = 0; i < POOL_THREADS; i++)
        pthread_create(&t[i], NULL, pool_worker, NULL);
    for (int j = 0; j < POOL_JOBS; j++) {
        pthread_mutex_lock(&pool_mutex);
        while (pool_queued >= 256)
            pthread_cond_wait(&pool_room, &pool_mutex);
        pool_queued++;
        pthread_cond_signal(&pool_work);
        pthread_mutex_unlock(&pool_mutex);
    }
    pthread_mutex_lock(&pool_mutex);
    pool_closed = 1;
    pthread_cond_broadcast(&pool_work);
    pthread_mutex_unlock(&pool_mutex);
    for (int i = 0; i < POOL_THREADS; i++)
        pthread_join(t[i], NULL);
    printf("pool: ran %ld of %d jobs\n", pool_ran, POOL_JOBS);
    return pool_ran == POOL_JOBS ? 0 : 1;
}

/* Runs this program again for `phase` with a shorter convoy streak; under the shim its report's "sat out N
 * times" goes to *sat_out (-1 without a report). Returns the phase's exit status. */
static int run_phase(const char *phase, long *sat_out)
{
    int status;
    *sat_out = rerun_for_report(phase, "ASYNCSHIM_CONVOY_STREAK", "16", 1, "sat out ", &status);
    return status;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "gil") == 0)
        return gil_phase();
    if (argc > 1 && strcmp(argv[1], "parallel") == 0)
        return parallel_phase();
    if (argc > 1 && strcmp(argv[1], "pool") == 0)
        return pool_phase();
    test_init();
    /* Only with two or more workers can one step aside; natively there is nothing to check. */
    int judge = shim_workers() >= 2;
    long sat_out;
    CHECK(run_phase("gil", &sat_out) == 0, "gil: phase exit status 0");
    if (judge)
        fprintf(stderr, "gil phase: a worker sat out %ld times\n", sat_out);
    CHECK(!judge || sat_out > 0, "gil: under the shim with 2+ workers a worker stepped aside from the convoy");
    CHECK(run_phase("parallel", &sat_out) == 0, "parallel: phase exit status 0");
    if (judge)
        fprintf(stderr, "parallel phase: a worker sat out %ld times\n", sat_out);
    CHECK(!judge || sat_out == 0, "parallel: computing threads never make a worker step aside");
    CHECK(run_phase("pool", &sat_out) == 0, "pool: phase exit status 0");
    if (judge)
        fprintf(stderr, "pool phase: a worker sat out %ld times\n", sat_out);
    CHECK(!judge || sat_out == 0, "pool: a thread pool's workers never make a worker step aside");
    return test_exit_status();
}
