/* sync_pi.c — process-private priority-inheritance mutexes (issue 4): a PI mutex held by one thread and
 * contended by another — coroutine or real OS thread (explicit scheduling attributes make one under the
 * shim) — blocks the contender until the unlock; PI with errorcheck and recursive types, trylock and timed
 * lock, a condition variable used with a PI mutex. Under the shim the owner may be a coroutine, whose tid
 * the kernel's PI futex operations do not know. Robust and process-shared PI mutexes: sync_pi_shared.c.
 * asyncshim-test: timeout=60 */
#include "sync_util.h"
#include "test_util.h"
#include <pthread.h>
#include <sched.h>

static pthread_mutex_t m;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct contention cs = { .result = -1 };

static void init_pi(pthread_mutex_t *mx, int type, int robust, int pshared)
{
    init_mutex(mx, type, 1, robust, pshared);
}


/* Contender: locks m (blocking until the holder unlocks), records how long that took, unlocks. */
static void *contender(void *arg)
{
    (void)arg;
    ATOMIC_STORE(&cs.started, 1);
    int64_t t0 = mono_ns();
    int r = pthread_mutex_lock(&m);
    ATOMIC_STORE(&cs.waited_ms, (int)((mono_ns() - t0) / 1000000));
    ATOMIC_STORE(&cs.flag, 1); /* seen only after the holder let go */
    if (r == 0)
        r = pthread_mutex_unlock(&m);
    ATOMIC_STORE(&cs.result, r);
    return NULL;
}

/* Holds m for 80 ms, then unlocks. */
static void *holder(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&m);
    ATOMIC_STORE(&cs.started, 1);
    sleep_ms(80);
    ATOMIC_STORE(&cs.flag, 2);
    pthread_mutex_unlock(&m);
    return NULL;
}

static void *try_and_time(void *arg)
{
    (void)arg;
    int t = pthread_mutex_trylock(&m);
    struct timespec ts = deadline_in(CLOCK_REALTIME, 30);
    int d = pthread_mutex_timedlock(&m, &ts);
    int u = pthread_mutex_unlock(&m);
    printf("  other thread: trylock %s, timedlock %s, unlock %s\n", errname(t), errname(d), errname(u));
    return NULL;
}

/* The holder is another thread (coroutine or real); main contends. */
static void main_contends(const char *what, int real)
{
    ATOMIC_STORE(&cs.started, 0);
    ATOMIC_STORE(&cs.flag, 0);
    pthread_t t = start_thread(holder, real);
    wait_at_least(&cs.started, 1, 1, 5000);
    int l = pthread_mutex_lock(&m);
    int seen = ATOMIC_LOAD(&cs.flag);
    int u = pthread_mutex_unlock(&m);
    pthread_join(t, NULL);
    printf("%s: main lock %s after the holder's unlock %d, unlock %s\n", what, errname(l), seen == 2, errname(u));
}

static int cond_ready;

static void *signaller(void *arg)
{
    (void)arg;
    sleep_ms(30);
    signal_flag(&cv, &m, &cond_ready, 1);
    return NULL;
}

static void cond_with_pi(const char *what, int real)
{
    ATOMIC_STORE(&cond_ready, 0);
    pthread_mutex_lock(&m);
    pthread_t t = start_thread(signaller, real);
    int r = wait_for_flag(&cv, &m, &cond_ready, 1, 5000);
    int u = pthread_mutex_unlock(&m);
    pthread_join(t, NULL);
    printf("%s: cond wait %s, ready %d, unlock %s\n", what, errname(r), ATOMIC_LOAD(&cond_ready), errname(u));
}

static void types(void)
{
    init_pi(&m, PTHREAD_MUTEX_ERRORCHECK, 0, 0);
    int a = pthread_mutex_lock(&m), b = pthread_mutex_lock(&m), c = pthread_mutex_trylock(&m);
    pthread_t t = start_thread(try_and_time, 1);
    pthread_join(t, NULL);
    t = start_thread(try_and_time, 0);
    pthread_join(t, NULL);
    int d = pthread_mutex_unlock(&m), e = pthread_mutex_unlock(&m);
    printf("errorcheck PI: lock %s, relock %s, trylock %s, unlock %s, unlock again %s\n", errname(a), errname(b),
           errname(c), errname(d), errname(e));
    pthread_mutex_destroy(&m);

    init_pi(&m, PTHREAD_MUTEX_RECURSIVE, 0, 0);
    a = pthread_mutex_lock(&m), b = pthread_mutex_lock(&m), c = pthread_mutex_trylock(&m);
    t = start_thread(try_and_time, 1);
    pthread_join(t, NULL);
    d = pthread_mutex_unlock(&m);
    e = pthread_mutex_unlock(&m);
    int f = pthread_mutex_unlock(&m), g = pthread_mutex_unlock(&m);
    printf("recursive PI: lock %s, relock %s, trylock %s, unlocks %s %s %s, one too many %s\n", errname(a), errname(b),
           errname(c), errname(d), errname(e), errname(f), errname(g));
    main_contends("recursive PI held by a real thread", 1);
    pthread_mutex_destroy(&m);

    init_pi(&m, PTHREAD_MUTEX_NORMAL, 0, 0);
    a = pthread_mutex_trylock(&m);
    b = pthread_mutex_trylock(&m);
    struct timespec ts = deadline_in(CLOCK_MONOTONIC, 20);
    c = pthread_mutex_clocklock(&m, CLOCK_MONOTONIC, &ts);
    d = pthread_mutex_unlock(&m);
    printf("normal PI: trylock %s, trylock again %s, clocklock %s, unlock %s\n", errname(a), errname(b), errname(c), errname(d));
    pthread_mutex_destroy(&m);
}

int main(void)
{
    test_init();
    init_pi(&m, PTHREAD_MUTEX_NORMAL, 0, 0);
    contend_with_main("PI, main holds, real thread contends", 1, &m, contender, &cs);
    contend_with_main("PI, main holds, coroutine contends", 0, &m, contender, &cs);
    main_contends("PI, real thread holds", 1);
    main_contends("PI, coroutine holds", 0);
    cond_with_pi("PI cond, real signaller", 1);
    cond_with_pi("PI cond, coroutine signaller", 0);
    pthread_mutex_destroy(&m);
    types();
    return test_exit_status();
}
