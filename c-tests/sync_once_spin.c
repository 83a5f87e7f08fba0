/* sync_once_spin: pthread_once with a slow initialiser, and spin locks.
 *  - pthread_once from 200 threads released together where the initialiser sleeps 200 ms: it runs
 *    exactly once, and every caller returns only after it finished (sees its result); a second
 *    pthread_once on the same control from main does not run it again;
 *  - a second once control whose initialiser itself creates and joins a thread that calls
 *    pthread_once on a different control (nested once in another thread) from 20 callers;
 *  - pthread_spin_lock protecting a counter across 8 threads x 20,000 iterations, the holder calling
 *    sched_yield() inside the critical section every 2,000 iterations (so others spin on a lock whose
 *    holder is switched out): the counter is exact and no two threads are inside together;
 *  - pthread_spin_trylock EBUSY while another thread holds the lock and while the caller holds it, 0 once
 *    free; pthread_spin_init with PTHREAD_PROCESS_PRIVATE and PTHREAD_PROCESS_SHARED.
 * asyncshim-test: timeout=30 */
#include "shim_probe.h"
#include "test_util.h"
#include <pthread.h>
#include <sched.h>

#define MS 1000000LL

/* ---- once ---- */

#define OTHREADS 200
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int once_runs, once_done, once_gate, once_early, once_errors, once_returned;

static void slow_init(void)
{
    ATOMIC_ADD(&once_runs, 1);
    sleep_ms(200);
    ATOMIC_STORE(&once_done, 1);
}

static void *once_caller(void *arg)
{
    (void)arg;
    while (!ATOMIC_LOAD(&once_gate))
        sleep_ms(2);
    if (pthread_once(&once, slow_init) != 0)
        ATOMIC_ADD(&once_errors, 1);
    if (!ATOMIC_LOAD(&once_done))
        ATOMIC_ADD(&once_early, 1);
    ATOMIC_ADD(&once_returned, 1);
    return NULL;
}

static pthread_once_t outer_once = PTHREAD_ONCE_INIT, inner_once = PTHREAD_ONCE_INIT;
static int outer_runs, inner_runs, outer_done, nested_early;

static void inner_init(void)
{
    ATOMIC_ADD(&inner_runs, 1);
    sleep_ms(50);
}

static void *inner_caller(void *arg)
{
    (void)arg;
    pthread_once(&inner_once, inner_init);
    return NULL;
}

static void outer_init(void)
{
    ATOMIC_ADD(&outer_runs, 1);
    pthread_t t;
    pthread_create(&t, NULL, inner_caller, NULL);
    pthread_join(t, NULL);
    ATOMIC_STORE(&outer_done, 1);
}

static void *outer_caller(void *arg)
{
    (void)arg;
    pthread_once(&outer_once, outer_init);
    if (!ATOMIC_LOAD(&outer_done))
        ATOMIC_ADD(&nested_early, 1);
    return NULL;
}

static void once_tests(void)
{
    pthread_t t[OTHREADS];
    for (int i = 0; i < OTHREADS; i++)
        pthread_create(&t[i], NULL, once_caller, NULL);
    sleep_ms(20);
    int64_t t0 = mono_ns();
    ATOMIC_STORE(&once_gate, 1);
    sleep_ms(100);
    int returned_mid = ATOMIC_LOAD(&once_returned); /* the initialiser is still sleeping */
    for (int i = 0; i < OTHREADS; i++)
        pthread_join(t[i], NULL);
    fprintf(stderr, "once: 200 callers done after %.1f ms, %d returned by 100 ms\n", (mono_ns() - t0) / 1e6,
            returned_mid);
    printf("once: initialiser runs: %d\n", once_runs);
    CHECK(once_runs == 1, "once: 200 threads, the 200 ms initialiser runs exactly once");
    CHECK(once_early == 0 && returned_mid == 0, "once: no caller returns before the initialiser finished");
    CHECK(once_errors == 0, "once: pthread_once returns 0 in every thread");
    CHECK(pthread_once(&once, slow_init) == 0 && once_runs == 1, "once: again from main: not run again");

    pthread_t u[20];
    for (int i = 0; i < 20; i++)
        pthread_create(&u[i], NULL, outer_caller, NULL);
    for (int i = 0; i < 20; i++)
        pthread_join(u[i], NULL);
    CHECK(outer_runs == 1 && inner_runs == 1 && nested_early == 0,
          "once: an initialiser that creates and joins a thread calling another pthread_once");
}

/* ---- spin locks ---- */

#define SPTHREADS 8
#define SPITERS 20000
static pthread_spinlock_t spin;
static long spin_counter;
static int spin_inside, spin_overlaps, spin_errors, spin_gate;

static void *spin_body(void *arg)
{
    (void)arg;
    while (!ATOMIC_LOAD(&spin_gate))
        sleep_ms(1);
    for (int i = 0; i < SPITERS; i++) {
        if (pthread_spin_lock(&spin) != 0)
            ATOMIC_ADD(&spin_errors, 1);
        if (ATOMIC_ADD(&spin_inside, 1) != 1)
            ATOMIC_ADD(&spin_overlaps, 1);
        long v = spin_counter;
        if (i % 2000 == 1000)
            sched_yield(); /* switched out while holding the spin lock */
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        spin_counter = v + 1;
        ATOMIC_ADD(&spin_inside, -1);
        if (pthread_spin_unlock(&spin) != 0)
            ATOMIC_ADD(&spin_errors, 1);
    }
    return NULL;
}

static int spin_held, spin_release;
static void *spin_holder(void *arg)
{
    (void)arg;
    pthread_spin_lock(&spin);
    ATOMIC_STORE(&spin_held, 1);
    while (!ATOMIC_LOAD(&spin_release))
        sleep_ms(2);
    pthread_spin_unlock(&spin);
    return NULL;
}

static void spin_tests(void)
{
    CHECK(pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE) == 0, "spin_init PTHREAD_PROCESS_PRIVATE -> 0");
    pthread_t t[SPTHREADS];
    int64_t t0 = mono_ns();
    for (int i = 0; i < SPTHREADS; i++)
        pthread_create(&t[i], NULL, spin_body, NULL);
    sleep_ms(10);
    ATOMIC_STORE(&spin_gate, 1);
    for (int i = 0; i < SPTHREADS; i++)
        pthread_join(t[i], NULL);
    fprintf(stderr, "spin: %d threads x %d in %.1f ms, counter %ld, overlaps %d\n", SPTHREADS, SPITERS,
            (mono_ns() - t0) / 1e6, spin_counter, spin_overlaps);
    CHECK(spin_counter == (long)SPTHREADS * SPITERS && spin_overlaps == 0 && spin_errors == 0,
          "spin: 8 threads x 20000 increments with yields inside = 160000, exclusive");

    pthread_t h;
    pthread_create(&h, NULL, spin_holder, NULL);
    wait_at_least(&spin_held, 1, 1, 10000);
    int rc = pthread_spin_trylock(&spin);
    printf("spin_trylock while another thread holds it: %s\n", errname(rc));
    CHECK(rc == EBUSY, "spin_trylock while another thread holds it -> EBUSY");
    ATOMIC_STORE(&spin_release, 1);
    pthread_join(h, NULL);
    rc = pthread_spin_trylock(&spin);
    CHECK(rc == 0, "spin_trylock once free -> 0");
    int again = pthread_spin_trylock(&spin);
    printf("spin_trylock by the holder: %s\n", errname(again));
    CHECK(again == EBUSY, "spin_trylock by the holder -> EBUSY");
    CHECK(pthread_spin_unlock(&spin) == 0, "spin_unlock -> 0");
    CHECK(pthread_spin_destroy(&spin) == 0, "spin_destroy -> 0");

    pthread_spinlock_t shared;
    CHECK(pthread_spin_init(&shared, PTHREAD_PROCESS_SHARED) == 0 && pthread_spin_lock(&shared) == 0 &&
              pthread_spin_unlock(&shared) == 0 && pthread_spin_destroy(&shared) == 0,
          "spin_init PTHREAD_PROCESS_SHARED, lock, unlock, destroy -> 0");
}

int main(void)
{
    test_init();
    fprintf(stderr, "under shim: %d, workers %d\n", under_shim(), shim_workers());
    once_tests();
    spin_tests();
    return test_exit_status();
}
