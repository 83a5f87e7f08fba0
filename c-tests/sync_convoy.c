/* sync_convoy.c — a global interpreter lock built like CPython's (a mutex, a condition variable and a
 * "locked" flag; waiters re-check every 5 ms and then ask the holder to drop it; the holder that drops on
 * request waits until another thread has taken it), taken by 200 threads between socket round trips.
 * The lock must stay exclusive, no thread may be lost and every round trip must complete; under the shim
 * with two or more workers a worker must also have stepped aside from the convoy (the statistics report
 * says so), while four threads that compute between short lock waits must never make a worker step aside.
 * Each phase runs in a re-executed child so that under the shim its own report can be read.
 * asyncshim-test: timeout=120 */
#include "shim_probe.h"
#include "test_util.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#define GIL_THREADS 200
#define GIL_ROUNDS 300
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

static void *interpreter_thread(void *arg)
{
    long me = (long)arg;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return NULL;
    long done = 0;
    for (int i = 0; i < GIL_ROUNDS; i++) {
        take_gil(me);
        if (atomic_exchange(&holder, me) != 0)
            violations++;
        spin_ns(300);
        total++;
        if (atomic_exchange(&holder, 0) != me)
            violations++;
        drop_gil(me);
        /* A system call without the lock, as the interpreter makes them. */
        char c = (char)i, back = 0;
        if (write(sv[0], &c, 1) == 1 && read(sv[1], &back, 1) == 1 && back == c)
            done++;
    }
    close(sv[0]);
    close(sv[1]);
    return (void *)done;
}

static int gil_phase(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&gil_cond, &ca);
    pthread_cond_init(&switch_cond, NULL);
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

/* Runs this program again for `phase`; under the shim its statistics go to a file, whose "sat out N
 * times" is returned in *sat_out (-1 when there is no report). Returns the child's exit status. */
static int run_phase(const char *self, const char *phase, long *sat_out)
{
    char report[64];
    snprintf(report, sizeof report, "/tmp/sync_convoy.%d.%s", (int)getpid(), phase);
    unlink(report);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("ASYNCSHIM_STATS", report, 1);
        execl(self, self, phase, (char *)NULL);
        _exit(127);
    }
    int st = -1;
    waitpid(pid, &st, 0);
    *sat_out = -1;
    FILE *f = fopen(report, "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            char *p = strstr(line, "sat out ");
            if (p)
                *sat_out = strtol(p + 8, NULL, 10);
        }
        fclose(f);
        unlink(report);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "gil") == 0)
        return gil_phase();
    if (argc > 1 && strcmp(argv[1], "parallel") == 0)
        return parallel_phase();
    test_init();
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return 2;
    self[n] = 0;
    /* Only with two or more workers can one step aside; natively there is nothing to check. */
    int judge = shim_workers() >= 2;
    long sat_out;
    CHECK(run_phase(self, "gil", &sat_out) == 0, "gil: phase exit status 0");
    if (judge)
        fprintf(stderr, "gil phase: a worker sat out %ld times\n", sat_out);
    CHECK(!judge || sat_out > 0, "gil: under the shim with 2+ workers a worker stepped aside from the convoy");
    CHECK(run_phase(self, "parallel", &sat_out) == 0, "parallel: phase exit status 0");
    if (judge)
        fprintf(stderr, "parallel phase: a worker sat out %ld times\n", sat_out);
    CHECK(!judge || sat_out == 0, "parallel: computing threads never make a worker step aside");
    return test_exit_status();
}
