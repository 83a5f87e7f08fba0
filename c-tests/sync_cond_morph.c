/* sync_cond_morph: condition variables signalled while the waiters' mutex is held (the case the shim's
 * wait morphing moves waiters straight onto the mutex's queue; the test re-runs itself with
 * ASYNCSHIM_COND_MORPH=1, which turns it on), each with coroutine waiters and with real OS threads:
 *  - a signal sent with the mutex held: the waiter returns only after the signaller's unlock, owning the
 *    mutex (errorcheck: its unlock says 0) and seeing what the signaller wrote before unlocking; then the
 *    same condition variable with a second, normal mutex;
 *  - a broadcast to 100 waiters (a third of them timed, far deadlines) with the mutex held: none returns
 *    before the unlock, all 100 return 0, one at a time (the mutex stays exclusive);
 *  - 10 timed waiters with one 80 ms deadline, 5 signalled at about 20 ms, the mutex held until 200 ms:
 *    exactly the 5 signalled ones return 0 (signalled in time), the others ETIMEDOUT;
 *  - a handled signal (SIGUSR1) delivered to a waiter signalled while the mutex is held: the handler runs
 *    once and the wait goes on, returning 0 after the unlock;
 *  - a waiter cancelled after a signal sent with the mutex held: its cleanup handler runs owning the mutex
 *    (errorcheck unlock 0) and the thread ends PTHREAD_CANCELED; a second waiter is released (by the
 *    signal the cancelled one passes on, under the shim with two or more workers always: checked there;
 *    natively it may have been consumed, so the test broadcasts after 1 s: stderr says which);
 *  - a recursive mutex locked twice by the waiter (so still locked during the wait), signalled by a thread
 *    that does not hold it: the wait returns 0 and both unlocks 0.
 * asyncshim-test: timeout=60 */
#include "shim_probe.h"
#include "sync_util.h"
#include "test_util.h"
#include <pthread.h>
#include <signal.h>

#define MS 1000000LL
#define MANY 100
#define TIMED 10

static pthread_mutex_t em, nm;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int go, released, returned_early, blocked;

/* ---- one waiter, signal with the mutex held ---- */

struct one {
    pthread_mutex_t *m;
    int wait_rc, unlock_rc, saw_release;
};
static struct one one_arg;

static void *one_waiter(void *arg)
{
    (void)arg;
    struct one *o = &one_arg;
    pthread_mutex_lock(o->m);
    ATOMIC_ADD(&blocked, 1);
    int rc = 0;
    while (!go && rc == 0)
        rc = pthread_cond_wait(&cv, o->m);
    o->wait_rc = rc;
    o->saw_release = released;
    if (!ATOMIC_LOAD(&released))
        ATOMIC_STORE(&returned_early, 1);
    o->unlock_rc = pthread_mutex_unlock(o->m);
    return NULL;
}

static void reset(void)
{
    go = 0;
    released = 0;
    ATOMIC_STORE(&returned_early, 0);
    ATOMIC_STORE(&blocked, 0);
}

/* Starts a waiter and gives it time to block as the `nth` one. */
static pthread_t start_waiter(void *(*fn)(void *), int real, int nth)
{
    pthread_t t = start_thread(fn, real);
    wait_at_least(&blocked, nth, 1, 10000);
    sleep_ms(20);
    return t;
}

/* Locks `m`, sets the predicate and signals once, keeping `m` locked. */
static void lock_and_signal(pthread_mutex_t *m)
{
    pthread_mutex_lock(m);
    go = 1;
    pthread_cond_signal(&cv);
}

static void held_signal(const char *what, pthread_mutex_t *m, int real)
{
    reset();
    one_arg = (struct one){ .m = m, .wait_rc = -1, .unlock_rc = -1 };
    pthread_t t = start_waiter(one_waiter, real, 1);
    lock_and_signal(m);
    sleep_ms(30);
    int early = ATOMIC_LOAD(&returned_early);
    ATOMIC_STORE(&released, 1);
    pthread_mutex_unlock(m);
    pthread_join(t, NULL);
    printf("%s: wait %s, returned before the unlock %d, saw the release %d, its unlock %s\n", what,
           errname(one_arg.wait_rc), early || ATOMIC_LOAD(&returned_early), one_arg.saw_release,
           errname(one_arg.unlock_rc));
    CHECK(one_arg.wait_rc == 0 && !early && one_arg.saw_release == 1 && one_arg.unlock_rc == 0, what);
}

/* ---- a broadcast to many, mutex held ---- */

static int inside, overlaps, many_done, many_bad;

static void *many_waiter(void *arg)
{
    long i = (long)arg;
    pthread_mutex_lock(&em);
    ATOMIC_ADD(&blocked, 1);
    int rc = 0;
    while (!go && rc == 0) {
        if (i % 3 == 0) {
            struct timespec ts = deadline_in(CLOCK_REALTIME, 30000);
            rc = pthread_cond_timedwait(&cv, &em, &ts);
        } else {
            rc = pthread_cond_wait(&cv, &em);
        }
    }
    if (!ATOMIC_LOAD(&released))
        ATOMIC_STORE(&returned_early, 1);
    if (++inside != 1)
        overlaps++;
    sched_yield();
    inside--;
    if (rc != 0)
        many_bad++;
    many_done++;
    if (pthread_mutex_unlock(&em) != 0)
        ATOMIC_ADD(&many_bad, 1);
    return NULL;
}

static void held_broadcast(int real_every)
{
    reset();
    inside = overlaps = many_done = many_bad = 0;
    pthread_t t[MANY];
    pthread_attr_t small;
    pthread_attr_init(&small);
    pthread_attr_setstacksize(&small, 64 * 1024);
    for (long i = 0; i < MANY; i++) {
        if (real_every && i % real_every == 0) {
            t[i] = start_thread(many_waiter, 1);
            /* start_thread passes no argument: a real thread waits timed (0 % 3 == 0 below). */
        } else {
            pthread_create(&t[i], &small, many_waiter, (void *)(i + 1));
        }
    }
    pthread_attr_destroy(&small);
    wait_at_least(&blocked, MANY, 1, 20000);
    sleep_ms(30);
    pthread_mutex_lock(&em);
    go = 1;
    pthread_cond_broadcast(&cv);
    sleep_ms(30);
    int early = ATOMIC_LOAD(&returned_early);
    ATOMIC_STORE(&released, 1);
    pthread_mutex_unlock(&em);
    for (int i = 0; i < MANY; i++)
        pthread_join(t[i], NULL);
    printf("broadcast to %d waiters with the mutex held%s: returned %d, early %d, overlaps %d, errors %d\n",
           MANY, real_every ? " (some real threads)" : "", many_done, early, overlaps, many_bad);
    CHECK(many_done == MANY && !early && overlaps == 0 && many_bad == 0, "held broadcast");
}

/* ---- timed waiters, signalled in time, mutex held past their deadline ---- */

static struct timespec timed_deadline;
static int timed_rc[TIMED];
static int timed_next;

static void *timed_waiter(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&em);
    int me = timed_next++;
    ATOMIC_ADD(&blocked, 1);
    int rc = pthread_cond_timedwait(&cv, &em, &timed_deadline);
    timed_rc[me] = rc;
    pthread_mutex_unlock(&em);
    return NULL;
}

/* Returns 1 when the round was valid (the signals went out well before the deadline). */
static int timed_round(int *zeros, int *timeouts, int *others)
{
    reset();
    timed_next = 0;
    timed_deadline = deadline_in(CLOCK_REALTIME, 80);
    int64_t deadline = ts_ns(&timed_deadline);
    pthread_t t[TIMED];
    for (int i = 0; i < TIMED; i++)
        t[i] = start_thread(timed_waiter, i % 2);
    wait_at_least(&blocked, TIMED, 1, 10000);
    sleep_ms(10);
    pthread_mutex_lock(&em);
    for (int i = 0; i < TIMED / 2; i++)
        pthread_cond_signal(&cv);
    int64_t signalled = now_ns(CLOCK_REALTIME);
    int64_t until = deadline + 120 * MS;
    while (now_ns(CLOCK_REALTIME) < until)
        sleep_ms(10);
    pthread_mutex_unlock(&em);
    for (int i = 0; i < TIMED; i++)
        pthread_join(t[i], NULL);
    *zeros = *timeouts = *others = 0;
    for (int i = 0; i < TIMED; i++) {
        if (timed_rc[i] == 0)
            ++*zeros;
        else if (timed_rc[i] == ETIMEDOUT)
            ++*timeouts;
        else
            ++*others;
    }
    fprintf(stderr, "timed round: signalled %lld ms before the deadline\n", (long long)((deadline - signalled) / MS));
    return deadline - signalled > 30 * MS;
}

static void held_past_deadline(void)
{
    int zeros = 0, timeouts = 0, others = 0, valid = 0;
    for (int round = 0; round < 5 && !valid; round++)
        valid = timed_round(&zeros, &timeouts, &others);
    printf("%d timed waiters, %d signalled in time, mutex held past the deadline: returned 0 %d, ETIMEDOUT %d, "
           "other %d (round valid %d)\n",
           TIMED, TIMED / 2, zeros, timeouts, others, valid);
    CHECK(valid && zeros == TIMED / 2 && timeouts == TIMED / 2 && others == 0, "held past deadline");
}

/* ---- a handled signal while signalled and waiting for the mutex ---- */

static volatile sig_atomic_t handled;

static void on_usr1(int sig)
{
    (void)sig;
    handled++;
}

static void held_signal_handler(void)
{
    reset();
    handled = 0;
    set_signal_handler(SIGUSR1, on_usr1, SA_RESTART);
    one_arg = (struct one){ .m = &em, .wait_rc = -1, .unlock_rc = -1 };
    pthread_t t = start_waiter(one_waiter, 0, 1);
    lock_and_signal(&em);
    sleep_ms(10);
    pthread_kill(t, SIGUSR1);
    sleep_ms(40);
    int early = ATOMIC_LOAD(&returned_early);
    ATOMIC_STORE(&released, 1);
    pthread_mutex_unlock(&em);
    pthread_join(t, NULL);
    printf("handled signal while signalled and the mutex held: handler ran %d, wait %s, returned before the "
           "unlock %d, its unlock %s\n",
           (int)handled, errname(one_arg.wait_rc), early, errname(one_arg.unlock_rc));
    CHECK(handled == 1 && one_arg.wait_rc == 0 && !early && one_arg.unlock_rc == 0, "held signal handler");
}

/* ---- cancellation of a signalled waiter ---- */

static int cleanup_unlock_rc = -1;
static int second_done;

static void cleanup_unlock(void *arg)
{
    cleanup_unlock_rc = pthread_mutex_unlock((pthread_mutex_t *)arg);
}

static void *cancelled_waiter(void *arg)
{
    (void)arg;
    pthread_cleanup_push(cleanup_unlock, &em);
    pthread_mutex_lock(&em);
    ATOMIC_ADD(&blocked, 1);
    while (!go)
        pthread_cond_wait(&cv, &em);
    /* Woken before the request came (natively possible): end here, still owning the mutex. */
    pthread_testcancel();
    pthread_cleanup_pop(1);
    return NULL;
}

static void *second_waiter(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&em);
    ATOMIC_ADD(&blocked, 1);
    pthread_cond_wait(&cv, &em);
    ATOMIC_STORE(&second_done, 1);
    pthread_mutex_unlock(&em);
    return NULL;
}

static void held_cancel(void)
{
    reset();
    second_done = 0;
    cleanup_unlock_rc = -1;
    pthread_t a = start_waiter(cancelled_waiter, 0, 1);
    pthread_t b = start_waiter(second_waiter, 0, 2);
    lock_and_signal(&em);
    pthread_cancel(a);
    sleep_ms(20);
    pthread_mutex_unlock(&em);
    void *ra = NULL;
    pthread_join(a, &ra);
    int passed_on = wait_at_least(&second_done, 1, 1, 1000);
    if (!passed_on) {
        pthread_mutex_lock(&em);
        pthread_cond_broadcast(&cv);
        pthread_mutex_unlock(&em);
    }
    pthread_join(b, NULL);
    fprintf(stderr, "cancelled waiter: the second waiter was released by the passed-on signal: %d\n", passed_on);
    printf("cancelled after a signal with the mutex held: canceled %d, cleanup's unlock %s, second waiter done %d\n",
           ra == PTHREAD_CANCELED, errname(cleanup_unlock_rc), ATOMIC_LOAD(&second_done));
    CHECK(ra == PTHREAD_CANCELED && cleanup_unlock_rc == 0 && ATOMIC_LOAD(&second_done) == 1, "held cancel");
    /* The shim's own promise where it moves signalled waiters (two or more workers; natively, and with one
     * worker, the signal may be consumed): stderr only, the exit status says. */
    if (under_shim() && shim_workers() >= 2 && !passed_on) {
        fprintf(stderr, "under the shim the cancelled waiter's signal did not go on to the other waiter\n");
        test_failures++;
    }
}

/* ---- a recursive mutex still locked by the waiter ---- */

static pthread_mutex_t rm;
static int rec_rc = -1, rec_unlock1 = -1, rec_unlock2 = -1, rec_flag;

static void *recursive_waiter(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&rm);
    pthread_mutex_lock(&rm);
    ATOMIC_ADD(&blocked, 1);
    int rc = 0;
    while (!ATOMIC_LOAD(&rec_flag) && rc == 0)
        rc = pthread_cond_wait(&cv, &rm);
    rec_rc = rc;
    rec_unlock1 = pthread_mutex_unlock(&rm);
    rec_unlock2 = pthread_mutex_unlock(&rm);
    return NULL;
}

static void recursive_twice(void)
{
    reset();
    init_mutex(&rm, PTHREAD_MUTEX_RECURSIVE, 0, 0, 0);
    pthread_t t = start_waiter(recursive_waiter, 0, 1);
    ATOMIC_STORE(&rec_flag, 1);
    pthread_cond_signal(&cv);
    pthread_join(t, NULL);
    printf("recursive mutex locked twice by the waiter, signalled: wait %s, unlocks %s %s\n", errname(rec_rc),
           errname(rec_unlock1), errname(rec_unlock2));
    CHECK(rec_rc == 0 && rec_unlock1 == 0 && rec_unlock2 == 0, "recursive twice");
}

int main(int argc, char **argv)
{
    (void)argc;
    static const char *const morph_on[] = { "ASYNCSHIM_COND_MORPH", "1", NULL };
    rerun_with_env(argv, "SYNC_COND_MORPH_RERUN", morph_on);
    test_init();
    fprintf(stderr, "under shim: %d, workers %d\n", under_shim(), shim_workers());
    init_mutex(&em, PTHREAD_MUTEX_ERRORCHECK, 0, 0, 0);
    init_mutex(&nm, PTHREAD_MUTEX_NORMAL, 0, 0, 0);
    held_signal("signal with the errorcheck mutex held, coroutine waiter", &em, 0);
    held_signal("signal with the errorcheck mutex held, real thread waiter", &em, 1);
    held_signal("same condition variable, a normal mutex, coroutine waiter", &nm, 0);
    held_signal("same condition variable, a normal mutex, real thread waiter", &nm, 1);
    held_broadcast(0);
    held_broadcast(10);
    held_past_deadline();
    held_signal_handler();
    held_cancel();
    recursive_twice();
    return test_exit_status();
}
