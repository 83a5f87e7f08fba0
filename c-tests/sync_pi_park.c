/* sync_pi_park.c — waits for process-shared priority-inheritance and priority-protect mutexes held by
 * someone else (under the shim: parked coroutines, a keeper thread waiting in the kernel's FUTEX_LOCK_PI
 * for each PI waiter, the futex queue of the word for PP ones):
 *  - many threads, a real OS thread and a forked child process contend on one process-shared PI mutex in
 *    shared memory: every acquisition counted, the word free at the end (the time on stderr);
 *  - a robust PI mutex whose holder (a thread, or another process) ends while a thread waits for it in the
 *    kernel: the waiter gets EOWNERDEAD;
 *  - timed locks of a held PI mutex time out on CLOCK_REALTIME and CLOCK_MONOTONIC, and one the holder
 *    releases in time succeeds (before glibc 2.34 the CLOCK_MONOTONIC ones time out at once, natively
 *    and under the shim);
 *  - a handler for a waiting thread runs in it, on its own stack, and the wait goes on (the lock then got);
 *    a handler that leaves by siglongjmp leaves the mutex not held;
 *  - the same contention on a process-shared priority-protect mutex (each thread's first lock is glibc's
 *    EINVAL: a SCHED_OTHER thread cannot be raised to the ceiling), PP timed locks, and handlers in a PP
 *    waiter (returning, or leaving by siglongjmp).
 * Arguments (for measurements): THREADS ITERATIONS of the PI contention (default 100 200).
 * asyncshim-test: timeout=120 */
#include "glibc_compat.h"
#include "shim_probe.h"
#include "sync_util.h"
#include "test_util.h"
#include "waiter.h"
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define MAX_THREADS 1000

struct area {
    pthread_mutex_t pi, robust, pp;
    long count, handoffs;
    void *last;
    int go, ready, child_done, child_bad;
};

static struct area *ar;
static int threads = 100, iterations = 200;
static int bad, started;

/* `iterations` lock/count/yield/unlock rounds of `m`; failed calls go to *failed. */
static void rounds(pthread_mutex_t *m, int *failed)
{
    for (int i = 0; i < iterations; i++) {
        int l = pthread_mutex_lock(m);
        if (l == 0) {
            /* A yield while holding it: the others find it held and must wait (under the shim, on one
             * worker too). */
            ar->count++;
            if (ar->last != (void *)&i) /* each thread's own stack address */
                ar->handoffs++;
            ar->last = (void *)&i;
            sched_yield();
            if (pthread_mutex_unlock(m))
                ATOMIC_ADD(failed, 1);
        } else {
            ATOMIC_ADD(failed, 1);
        }
    }
}

/* A contender: waits for the start, then its rounds. A PP contender's first lock (glibc's EINVAL for a
 * SCHED_OTHER thread) comes first and is counted apart. */
static int pp_first[2];
static void *contend(void *arg)
{
    pthread_mutex_t *m = arg;
    if (m == &ar->pp) {
        int r = pthread_mutex_lock(m);
        ATOMIC_ADD(&pp_first[r == EINVAL], 1);
        if (r == 0)
            pthread_mutex_unlock(m);
    }
    ATOMIC_ADD(&started, 1);
    wait_at_least(&ar->go, 1, 1, 30000);
    rounds(m, &bad);
    return NULL;
}

/* The contention on `m`, started once all are ready: `n` ordinary threads, one real OS thread and a
 * forked child. */
static void contention(const char *what, pthread_mutex_t *m, int n)
{
    ar->count = ar->handoffs = 0;
    ATOMIC_STORE(&ar->go, 0);
    ATOMIC_STORE(&ar->ready, 0);
    ATOMIC_STORE(&ar->child_bad, 0);
    ATOMIC_STORE(&started, 0);
    ATOMIC_STORE(&bad, 0);
    pp_first[0] = pp_first[1] = 0;
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        int failed = 0;
        if (m == &ar->pp && pthread_mutex_lock(m) == 0)
            pthread_mutex_unlock(m);
        ATOMIC_STORE(&ar->ready, 1);
        wait_at_least(&ar->go, 1, 1, 30000);
        rounds(m, &failed);
        ATOMIC_STORE(&ar->child_bad, failed);
        _exit(0);
    }
    pthread_t *t = calloc(n + 1, sizeof *t);
    for (int i = 0; i < n; i++)
        pthread_create(&t[i], NULL, contend, m);
    {
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setinheritsched(&a, PTHREAD_EXPLICIT_SCHED);
        pthread_create(&t[n], &a, contend, m);
        pthread_attr_destroy(&a);
    }
    wait_at_least(&started, n + 1, 1, 30000);
    wait_at_least(&ar->ready, 1, 1, 30000);
    int64_t t0 = mono_ns();
    ATOMIC_STORE(&ar->go, 1);
    for (int i = 0; i <= n; i++)
        pthread_join(t[i], NULL);
    int st;
    waitpid(c, &st, 0);
    int64_t ns = mono_ns() - t0;
    long want = (long)(n + 2) * iterations;
    fprintf(stderr,
            "%s: %d threads + a real thread + a child x %d rounds: %.3f s, %.2f us per acquisition, %ld changes of "
            "holder\n",
            what, n, iterations, ns / 1e9, ns / 1e3 / want, ar->handoffs);
    int tl = pthread_mutex_trylock(m);
    int tu = tl == 0 ? pthread_mutex_unlock(m) : -1;
    unsigned word = __atomic_load_n((unsigned *)m, __ATOMIC_SEQ_CST);
    printf("%s: %ld of %ld acquisitions counted, failed calls %d (child %d), child exit %d, then trylock %s, "
           "unlock %d, lock bits %#x\n",
           what, ar->count, want, ATOMIC_LOAD(&bad), ATOMIC_LOAD(&ar->child_bad), WIFEXITED(st) ? WEXITSTATUS(st) : -1,
           errname(tl), tu, word & 0x7ffff);
    if (m == &ar->pp)
        printf("%s: first locks EINVAL %d, other %d\n", what, pp_first[1], pp_first[0]);
    free(t);
}

/* ---- a robust PI holder that ends while a thread waits in the kernel -------------------------------- */

static int held, saw_waiter, waiter_e, waiter_u, cons;

static void *robust_holder(void *arg)
{
    (void)arg;
    intptr_t r = pthread_mutex_lock(&ar->robust);
    ATOMIC_STORE(&held, 1);
    ATOMIC_STORE(&saw_waiter, kernel_waiter_on(&ar->robust));
    sleep_ms(20);
    return (void *)r;
}

static void *robust_waiter(void *arg)
{
    (void)arg;
    wait_at_least(&held, 1, 1, 5000);
    int e = pthread_mutex_lock(&ar->robust);
    cons = e == EOWNERDEAD ? pthread_mutex_consistent(&ar->robust) : -1;
    ATOMIC_STORE(&waiter_e, e);
    ATOMIC_STORE(&waiter_u, e == 0 || e == EOWNERDEAD ? pthread_mutex_unlock(&ar->robust) : -1);
    return NULL;
}

static void holder_ends(void)
{
    ATOMIC_STORE(&held, 0);
    pthread_t w = start_thread(robust_waiter, 0);
    void *r;
    pthread_join(start_thread(robust_holder, 0), &r);
    pthread_join(w, NULL);
    printf("robust PI, holder thread ended while a thread waited: holder lock %s, kernel waiter %d, waiter got %s, "
           "consistent %d, unlock %s\n",
           errname((int)(intptr_t)r), ATOMIC_LOAD(&saw_waiter), errname(ATOMIC_LOAD(&waiter_e)), cons,
           errname(ATOMIC_LOAD(&waiter_u)));

    /* Now the holder is another process, which dies holding it. */
    ATOMIC_STORE(&ar->ready, 0);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        pthread_mutex_lock(&ar->robust);
        ATOMIC_STORE(&ar->ready, 1);
        ATOMIC_STORE(&ar->child_bad, kernel_waiter_on(&ar->robust));
        sleep_ms(20);
        _exit(0);
    }
    wait_at_least(&ar->ready, 1, 1, 5000);
    ATOMIC_STORE(&held, 1);
    w = start_thread(robust_waiter, 0);
    pthread_join(w, NULL);
    int st;
    waitpid(c, &st, 0);
    printf("robust PI, holder process died while a thread waited: kernel waiter %d, waiter got %s, consistent %d, "
           "unlock %s, child exit %d\n",
           ATOMIC_LOAD(&ar->child_bad), errname(ATOMIC_LOAD(&waiter_e)), cons, errname(ATOMIC_LOAD(&waiter_u)),
           WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

/* ---- timed locks ----------------------------------------------------------------------------------------- */

static pthread_mutex_t *timed_m;
static int timed_r[3], timed_ms[3], timed_first = -1;

/* A lock for the holder: a PP mutex's first lock in a thread is glibc's EINVAL (see the top). */
static int lock_twice_if_pp(void *m)
{
    int r = pthread_mutex_lock(m);
    return r == EINVAL && m == &ar->pp ? pthread_mutex_lock(m) : r;
}

static void *timed_locker(void *arg)
{
    (void)arg;
    clockid_t clocks[3] = { CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_MONOTONIC };
    if (timed_m == &ar->pp)
        timed_first = pthread_mutex_trylock(timed_m);
    for (int i = 0; i < 3; i++) {
        struct timespec ts = deadline_in(clocks[i], i < 2 ? 60 : 5000);
        int64_t t0 = mono_ns();
        int r = i == 0 ? pthread_mutex_timedlock(timed_m, &ts) : pthread_mutex_clocklock(timed_m, clocks[i], &ts);
        timed_ms[i] = (int)((mono_ns() - t0) / 1000000);
        timed_r[i] = r;
        if (r == 0)
            pthread_mutex_unlock(timed_m);
        if (i == 1)
            ATOMIC_STORE(&held, 2);
    }
    return NULL;
}

/* A thread holds `m`; another times out on both clocks, then gets it when the holder lets go 50 ms into
 * its third, long wait. */
static void timed(const char *what, pthread_mutex_t *m)
{
    timed_m = m;
    timed_first = -1;
    ATOMIC_STORE(&held, 0);
    struct holder h;
    holder_start_with(&h, lock_twice_if_pp, (int (*)(void *))pthread_mutex_unlock, m, 0, 0);
    pthread_t t = start_thread(timed_locker, 0);
    wait_at_least(&held, 2, 1, 10000);
    sleep_ms(50);
    int ok = holder_finish(&h);
    pthread_join(t, NULL);
    printf("%s: timedlock (REALTIME) %s, clocklock (MONOTONIC) %s, then %s once the holder unlocked; holder ok %d%s%s\n",
           what, errname(timed_r[0]), errname(timed_r[1]), errname(timed_r[2]), ok,
           timed_first == -1 ? "" : "; the locker's first trylock ", timed_first == -1 ? "" : errname(timed_first));
    fprintf(stderr, "%s: waited %d, %d, %d ms\n", what, timed_ms[0], timed_ms[1], timed_ms[2]);
    CHECK(timed_ms[0] >= 55, "the REALTIME timed lock waited until its deadline");
    /* Before 2.34 glibc takes a CLOCK_MONOTONIC time for a CLOCK_REALTIME one for these mutexes: at once. */
    int mono = glibc_at_least(2, 34);
    CHECK(mono ? timed_ms[1] >= 55 && timed_ms[2] >= 40 : timed_ms[1] < 40 && timed_ms[2] < 40,
          "the MONOTONIC locks waited as this glibc's do (until the deadline, then for the unlock)");
}

/* ---- handlers in a waiting thread ------------------------------------------------------------------------ */

static int lock_r = -1, unlock_r = -1;
static pthread_mutex_t *waited;

static void lock_waited(void)
{
    lock_r = pthread_mutex_lock(waited);
    if (lock_r == 0)
        unlock_r = pthread_mutex_unlock(waited);
}

static void *waiter_body(void *arg)
{
    (void)arg;
    if (waited == &ar->pp)
        pthread_mutex_trylock(waited); /* glibc's EINVAL, once (see the top) */
    wait_in_waiter(lock_waited, NULL);
    return NULL;
}

static void interrupted(const char *what, pthread_mutex_t *mx, enum mode m)
{
    waited = mx;
    set_mode(m);
    ATOMIC_STORE(&handled, 0);
    ATOMIC_STORE(&in_waiter, 0);
    ATOMIC_STORE(&on_own_stack, 0);
    ATOMIC_STORE(&jumped, 0);
    ATOMIC_STORE(&wait_done, 0);
    lock_r = unlock_r = -1;
    set_signal_handler(SIGUSR1, waiter_handler, m == RESTART ? SA_RESTART : 0);
    printf("%s wait, %s:\n", what, mode_name[m]);
    int l = lock_twice_if_pp(mx);
    start_waiter(waiter_body, NULL, 1);
    interrupt_waiter(send_to_waiter, !handler_longjmps);
    int u = pthread_mutex_unlock(mx);
    pthread_join(waiter, NULL);
    /* After a siglongjmp the waiter must not hold it. */
    int tl = pthread_mutex_trylock(mx);
    int tu = tl == 0 ? pthread_mutex_unlock(mx) : -1;
    printf("  main lock %s, unlock %s; waiter: left by siglongjmp %d, lock %s, unlock %s; then trylock %s, unlock %d\n",
           errname(l), errname(u), ATOMIC_LOAD(&jumped), errname(lock_r), errname(unlock_r), errname(tl), tu);
}

int main(int argc, char **argv)
{
    test_init();
    if (argc == 3) {
        threads = atoi(argv[1]);
        iterations = atoi(argv[2]);
        if (threads < 1 || threads > MAX_THREADS || iterations < 1)
            return 2;
    }
    ar = shared_area(sizeof *ar);
    init_mutex(&ar->pi, PTHREAD_MUTEX_NORMAL, 1, 0, 1);
    init_mutex(&ar->robust, PTHREAD_MUTEX_NORMAL, 1, 1, 1);
    init_mutex(&ar->pp, PTHREAD_MUTEX_NORMAL, PTHREAD_PRIO_PROTECT, 0, 1);
    set_signal_handler(SIGUSR1, waiter_handler, 0);
    set_signal_handler(SIGUSR2, waiter_handler, 0);
    mask_usr2(SIG_BLOCK);

    contention("pshared PI", &ar->pi, threads);
    if (argc == 3)
        return test_exit_status();
    holder_ends();
    timed("pshared PI", &ar->pi);
    timed("robust pshared PI", &ar->robust);
    for (enum mode m = LONGJMP; m < MODES; m++)
        interrupted("PI", &ar->pi, m);
    iterations = 100;
    contention("pshared PP", &ar->pp, 20);
    timed("pshared PP", &ar->pp);
    interrupted("PP", &ar->pp, LONGJMP);
    interrupted("PP", &ar->pp, RETURN);
    return test_exit_status();
}
