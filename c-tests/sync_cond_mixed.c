/* sync_cond_mixed.c — condition waits whose condition variable and mutex are of different families:
 *  A. a process-private condition variable with a process-shared mutex (which glibc runs): the signal
 *     must reach the waiter (under the shim it used to go to the runtime's queue while the waiter slept in
 *     glibc: the wait only ended at its timeout), EPERM for an errorcheck mutex the waiter does not own,
 *     the mutex owned again after the wait;
 *  B. a process-shared condition variable in shared memory with a process-shared mutex, signalled by this
 *     process and by a forked child, timed out, EPERM, the mutex owned again after every wait — and under
 *     the shim the wait must not keep its worker: a ticking thread runs meanwhile, and the statistics
 *     report of the run shows no stall (the phase runs in a re-executed child to read its report);
 *  C. a process-shared condition variable with a process-private mutex (which the runtime runs under the
 *     shim), waited on by a thread and by a real OS thread while four threads hammer the mutex: glibc's
 *     wait must not strand the mutex's other waiters (under the shim they used to stay parked for ever),
 *     signalled by a thread and by another process, timed out, EPERM.
 * asyncshim-test: timeout=60 */
#include "shim_probe.h"
#include "test_util.h"
#include "sync_util.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

/* ---- A: private condition variable, process-shared mutex ---- */
static pthread_mutex_t a_mutex;
static pthread_cond_t a_cond = PTHREAD_COND_INITIALIZER;
static int a_flag;

static void *a_signaller(void *arg)
{
    (void)arg;
    sleep_ms(50);
    signal_flag(&a_cond, &a_mutex, &a_flag, 1);
    return NULL;
}

static void part_a(void)
{
    for (int type = PTHREAD_MUTEX_NORMAL; type <= PTHREAD_MUTEX_ERRORCHECK; type++) {
        const char *name = type == PTHREAD_MUTEX_NORMAL      ? "normal"
                           : type == PTHREAD_MUTEX_RECURSIVE ? "recursive"
                                                             : "errorcheck";
        init_mutex(&a_mutex, type, 0, 0, 1);
        a_flag = 0;
        pthread_t t;
        pthread_create(&t, NULL, a_signaller, NULL);
        pthread_mutex_lock(&a_mutex);
        int r = wait_for_flag(&a_cond, &a_mutex, &a_flag, 1, 5000);
        printf("A %s: signalled wait %s, flag %d\n", name, errname(r), a_flag);
        printf("A %s: unlock after the wait %s\n", name, errname(pthread_mutex_unlock(&a_mutex)));
        pthread_join(t, NULL);
        struct timespec until = deadline_in(CLOCK_REALTIME, 20);
        pthread_mutex_lock(&a_mutex);
        printf("A %s: timed out wait %s\n", name, errname(pthread_cond_timedwait(&a_cond, &a_mutex, &until)));
        printf("A %s: unlock %s\n", name, errname(pthread_mutex_unlock(&a_mutex)));
        struct timespec bad = { .tv_sec = 1, .tv_nsec = 1000000000L };
        pthread_mutex_lock(&a_mutex);
        printf("A %s: wait with a bad time %s\n", name, errname(pthread_cond_timedwait(&a_cond, &a_mutex, &bad)));
        printf("A %s: unlock after it %s\n", name, errname(pthread_mutex_unlock(&a_mutex)));
        if (type != PTHREAD_MUTEX_NORMAL) {
            until = deadline_in(CLOCK_REALTIME, 20);
            printf("A %s: wait without owning %s\n", name,
                   errname(pthread_cond_timedwait(&a_cond, &a_mutex, &until)));
        }
        pthread_mutex_destroy(&a_mutex);
    }
}

/* ---- B: process-shared condition variable and mutex in shared memory ---- */
struct shared {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int flag;
    int seen;
};
static struct shared *sh;

static void *b_signaller(void *arg)
{
    (void)arg;
    /* Signal only once the ticker has run on while the main thread waits. */
    wait_for_ticks(20);
    signal_flag(&sh->cond, &sh->mutex, &sh->flag, 1);
    return NULL;
}

static int part_b(void)
{
    sh = shared_area(sizeof *sh);
    init_mutex(&sh->mutex, PTHREAD_MUTEX_ERRORCHECK, 0, 0, 1);
    init_cond(&sh->cond, 1);
    pthread_t tick, sig;
    pthread_create(&tick, NULL, ticker, NULL);

    /* Signalled by a thread of this process, which waits for 20 ticks first. */
    pthread_create(&sig, NULL, b_signaller, NULL);
    pthread_mutex_lock(&sh->mutex);
    int r = wait_for_flag(&sh->cond, &sh->mutex, &sh->flag, 1, 10000);
    printf("B: wait signalled by a thread %s, flag %d\n", errname(r), sh->flag);
    printf("B: unlock after the wait %s\n", errname(pthread_mutex_unlock(&sh->mutex)));
    pthread_join(sig, NULL);

    /* Signalled by another process. */
    pthread_mutex_lock(&sh->mutex);
    pid_t child = fork();
    if (child == 0) {
        sleep_ms(50);
        pthread_mutex_lock(&sh->mutex);
        sh->flag = 2;
        pthread_cond_broadcast(&sh->cond);
        pthread_mutex_unlock(&sh->mutex);
        _exit(0);
    }
    r = wait_for_flag(&sh->cond, &sh->mutex, &sh->flag, 2, 10000);
    printf("B: wait signalled by another process %s, flag %d\n", errname(r), sh->flag);
    printf("B: unlock after the wait %s\n", errname(pthread_mutex_unlock(&sh->mutex)));
    int st;
    waitpid(child, &st, 0);
    printf("B: child exit %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);

    struct timespec until = deadline_in(CLOCK_REALTIME, 30);
    pthread_mutex_lock(&sh->mutex);
    printf("B: timed out wait %s\n", errname(pthread_cond_timedwait(&sh->cond, &sh->mutex, &until)));
    printf("B: unlock %s\n", errname(pthread_mutex_unlock(&sh->mutex)));
    until = deadline_in(CLOCK_REALTIME, 30);
    printf("B: wait without owning %s\n", errname(pthread_cond_timedwait(&sh->cond, &sh->mutex, &until)));
    struct timespec bad = { .tv_sec = 1, .tv_nsec = -1 };
    printf("B: wait without owning, with a bad time %s\n", errname(pthread_cond_timedwait(&sh->cond, &sh->mutex, &bad)));
    printf("B: clock wait without owning, on a bad clock %s\n",
           errname(pthread_cond_clockwait(&sh->cond, &sh->mutex, 12345, &until)));
    pthread_mutex_lock(&sh->mutex);
    printf("B: wait with a bad time %s\n", errname(pthread_cond_timedwait(&sh->cond, &sh->mutex, &bad)));
    printf("B: unlock after it %s\n", errname(pthread_mutex_unlock(&sh->mutex)));

    atomic_store(&stop_ticking, 1);
    pthread_join(tick, NULL);
    return test_exit_status();
}

/* ---- C: process-shared condition variable, process-private mutex ---- */
static pthread_mutex_t c_mutex;
static atomic_int c_hammering;
static long c_hammered;
static int c_result;

static void *c_hammer(void *arg)
{
    (void)arg;
    while (atomic_load(&c_hammering)) {
        pthread_mutex_lock(&c_mutex);
        c_hammered++;
        pthread_mutex_unlock(&c_mutex);
    }
    return NULL;
}

/* Waits for sh->flag to become 3 (set by a thread) or 4 (by another process); the result in c_result. */
static void *c_waiter(void *arg)
{
    int want = (int)(long)arg;
    pthread_mutex_lock(&c_mutex);
    int r = wait_for_flag(&sh->cond, &c_mutex, &sh->flag, want, 10000);
    c_result = r;
    int u = pthread_mutex_unlock(&c_mutex);
    if (u != 0)
        c_result = 1000 + u;
    return NULL;
}

static int c_want;

static void *c_waiter_for_want(void *arg)
{
    (void)arg;
    return c_waiter((void *)(long)c_want);
}

static void part_c(void)
{
    for (int real = 0; real <= 1; real++) {
        const char *who = real ? "a real thread" : "a thread";
        init_mutex(&c_mutex, PTHREAD_MUTEX_ERRORCHECK, 0, 0, 0);
        atomic_store(&c_hammering, 1);
        pthread_t h[4];
        for (int i = 0; i < 4; i++)
            pthread_create(&h[i], NULL, c_hammer, NULL);
        /* Signalled by a thread of this process. */
        sh->flag = 0;
        c_want = 3;
        pthread_t w = start_thread(c_waiter_for_want, real);
        sleep_ms(50);
        pthread_mutex_lock(&c_mutex);
        sh->flag = 3;
        pthread_cond_broadcast(&sh->cond);
        pthread_mutex_unlock(&c_mutex);
        pthread_join(w, NULL);
        printf("C %s: wait signalled by a thread %s, flag %d\n", who, errname(c_result), sh->flag);
        /* Signalled by another process (which cannot take this process's mutex). */
        c_want = 4;
        w = start_thread(c_waiter_for_want, real);
        sleep_ms(20);
        /* The child cannot take the mutex, so a broadcast can come before the waiter is queued: it sends
         * one every 10 ms until the waiter has seen the flag. */
        sh->seen = 0;
        pid_t child = fork();
        if (child == 0) {
            sleep_ms(50);
            sh->flag = 4;
            for (int i = 0; i < 500 && !__atomic_load_n(&sh->seen, __ATOMIC_ACQUIRE); i++) {
                pthread_cond_broadcast(&sh->cond);
                sleep_ms(10);
            }
            _exit(0);
        }
        pthread_join(w, NULL);
        __atomic_store_n(&sh->seen, 1, __ATOMIC_RELEASE);
        int st;
        waitpid(child, &st, 0);
        printf("C %s: wait signalled by another process %s, flag %d\n", who, errname(c_result), sh->flag);
        atomic_store(&c_hammering, 0);
        for (int i = 0; i < 4; i++)
            pthread_join(h[i], NULL);
        printf("C %s: the mutex's other users all finished: %s\n", who, c_hammered > 0 ? "yes" : "no");
    }
    struct timespec until = deadline_in(CLOCK_REALTIME, 30);
    pthread_mutex_lock(&c_mutex);
    printf("C: timed out wait %s\n", errname(pthread_cond_timedwait(&sh->cond, &c_mutex, &until)));
    printf("C: unlock %s\n", errname(pthread_mutex_unlock(&c_mutex)));
    until = deadline_in(CLOCK_REALTIME, 30);
    printf("C: wait without owning %s\n", errname(pthread_cond_timedwait(&sh->cond, &c_mutex, &until)));
    struct timespec bad = { .tv_sec = 1, .tv_nsec = 2000000000L };
    printf("C: wait without owning, with a bad time %s\n", errname(pthread_cond_timedwait(&sh->cond, &c_mutex, &bad)));
    pthread_mutex_lock(&c_mutex);
    printf("C: wait with a bad time %s\n", errname(pthread_cond_timedwait(&sh->cond, &c_mutex, &bad)));
    printf("C: unlock after it %s\n", errname(pthread_mutex_unlock(&c_mutex)));
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "b") == 0)
        return part_b();
    test_init();
    part_a();
    fflush(stdout);
    part_b();
    part_c();
    if (under_shim()) {
        long stalls = stalls_of_rerun("b");
        fprintf(stderr, "part B again under the shim: %ld stalls\n", stalls);
        CHECK(stalls == 0, "B: the waits kept no worker from its other threads");
    } else {
        CHECK(1, "B: the waits kept no worker from its other threads");
    }
    return test_exit_status();
}
