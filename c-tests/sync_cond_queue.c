/* sync_cond_queue: condition variables.
 *  - a bounded queue (capacity 16) on one mutex and two condition variables (not_empty, not_full),
 *    1 producer and 64 consumers, 50,000 items, one pthread_cond_signal per push and per pop; a third
 *    of the consumers wait with pthread_cond_wait, a third with pthread_cond_timedwait and a third with
 *    pthread_cond_clockwait(CLOCK_MONOTONIC), both with far deadlines; every item is consumed exactly
 *    once (per-item marks and a checksum), none is lost; the producer's end is a broadcast;
 *  - timeouts, each with an errorcheck mutex (whose unlock then proves the mutex was reacquired):
 *    pthread_cond_timedwait on a default (CLOCK_REALTIME) cond, on a cond whose condattr clock is
 *    CLOCK_MONOTONIC, pthread_cond_clockwait with CLOCK_MONOTONIC and CLOCK_REALTIME: 100 ms deadlines
 *    give ETIMEDOUT no earlier than the deadline on that clock; a past deadline ETIMEDOUT; tv_nsec = 1e9
 *    EINVAL; clockwait with an unsupported clock EINVAL; condattr_setclock(CPUTIME) EINVAL;
 *  - a timed wait signalled before its deadline returns 0;
 *  - 3 signals with 3 tokens wake 3 of 10 waiters (the others keep waiting), then a broadcast the rest;
 *  - a broadcast wakes all of 100 waiters;
 *  - a timed wait whose deadline passes while another thread holds the mutex: not signalled ->
 *    ETIMEDOUT, signalled before the deadline -> 0 (as glibc does: the wake-up happened in time, only the
 *    mutex came late); either way it returns only once the mutex is free again, owning it.
 * Timings go to stderr.
 * asyncshim-test: timeout=60 */
#include "shim_probe.h"
#include "test_util.h"
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#define MS 1000000LL
#define CAP 16
#define CONSUMERS 64
#define ITEMS 50000

static void errorcheck_init(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
}

/* ---- bounded queue ---- */

static pthread_mutex_t qm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER, not_full = PTHREAD_COND_INITIALIZER;
static int queue[CAP], qhead, qcount, qdone;
static unsigned char seen[ITEMS + 1];
static int dup_items, bad_items, wait_errors, max_count;
static long long consumed_sum;
static int consumed_total;

static int qwait(pthread_cond_t *c, int kind)
{
    if (kind == 0)
        return pthread_cond_wait(c, &qm);
    struct timespec ts = deadline_in(kind == 1 ? CLOCK_REALTIME : CLOCK_MONOTONIC, 30000);
    int rc = kind == 1 ? pthread_cond_timedwait(c, &qm, &ts) : pthread_cond_clockwait(c, &qm, CLOCK_MONOTONIC, &ts);
    return rc;
}

static void *producer(void *arg)
{
    (void)arg;
    for (int v = 1; v <= ITEMS; v++) {
        pthread_mutex_lock(&qm);
        while (qcount == CAP)
            if (pthread_cond_wait(&not_full, &qm) != 0)
                ATOMIC_ADD(&wait_errors, 1);
        queue[(qhead + qcount) % CAP] = v;
        qcount++;
        if (qcount > max_count)
            max_count = qcount;
        pthread_cond_signal(&not_empty);
        pthread_mutex_unlock(&qm);
        if (v % 1000 == 0)
            sched_yield();
    }
    pthread_mutex_lock(&qm);
    qdone = 1;
    pthread_cond_broadcast(&not_empty);
    pthread_mutex_unlock(&qm);
    return NULL;
}

static void *consumer(void *arg)
{
    int kind = (int)(intptr_t)arg % 3;
    long long sum = 0;
    int n = 0;
    for (;;) {
        pthread_mutex_lock(&qm);
        while (qcount == 0 && !qdone) {
            int rc = qwait(&not_empty, kind);
            if (rc != 0) /* a 30 s deadline must never pass */
                ATOMIC_ADD(&wait_errors, 1);
        }
        if (qcount == 0) {
            pthread_mutex_unlock(&qm);
            break;
        }
        int v = queue[qhead];
        qhead = (qhead + 1) % CAP;
        qcount--;
        pthread_cond_signal(&not_full);
        pthread_mutex_unlock(&qm);
        if (v < 1 || v > ITEMS)
            ATOMIC_ADD(&bad_items, 1);
        else if (__atomic_fetch_add(&seen[v], 1, __ATOMIC_SEQ_CST) != 0)
            ATOMIC_ADD(&dup_items, 1);
        sum += v;
        n++;
        if (n % 97 == 0)
            sched_yield();
    }
    __atomic_add_fetch(&consumed_sum, sum, __ATOMIC_SEQ_CST);
    ATOMIC_ADD(&consumed_total, n);
    return (void *)(intptr_t)n;
}

static void queue_test(void)
{
    pthread_t p, c[CONSUMERS];
    int64_t t0 = mono_ns();
    for (int i = 0; i < CONSUMERS; i++)
        pthread_create(&c[i], NULL, consumer, (void *)(intptr_t)i);
    pthread_create(&p, NULL, producer, NULL);
    pthread_join(p, NULL);
    int busy = 0;
    for (int i = 0; i < CONSUMERS; i++) {
        void *res;
        pthread_join(c[i], &res);
        if ((int)(intptr_t)res > 0)
            busy++;
    }
    int missing = 0;
    for (int v = 1; v <= ITEMS; v++)
        if (seen[v] != 1)
            missing++;
    fprintf(stderr, "queue: %d items in %.1f ms, %d consumers got some, max fill %d, dup %d, bad %d, missing %d\n",
            consumed_total, (mono_ns() - t0) / 1e6, busy, max_count, dup_items, bad_items, missing);
    CHECK(consumed_total == ITEMS, "queue: 64 consumers took 50000 items in total");
    CHECK(missing == 0 && dup_items == 0 && bad_items == 0, "queue: every item consumed exactly once");
    CHECK(consumed_sum == (long long)ITEMS * (ITEMS + 1) / 2, "queue: checksum of the consumed items");
    CHECK(wait_errors == 0, "queue: no wait returned an error (far deadlines never passed)");
    CHECK(max_count <= CAP && qcount == 0, "queue: never more than 16 queued, empty at the end");
}

/* ---- timeouts ---- */

enum how { TIMEDWAIT_REAL, TIMEDWAIT_MONO_ATTR, CLOCKWAIT_MONO, CLOCKWAIT_REAL };
static const char *how_name[] = { "timedwait (default clock)", "timedwait (condattr CLOCK_MONOTONIC)",
                                  "clockwait(CLOCK_MONOTONIC)", "clockwait(CLOCK_REALTIME)" };

static int timed_wait(pthread_cond_t *c, pthread_mutex_t *m, enum how how, const struct timespec *ts)
{
    switch (how) {
    case TIMEDWAIT_REAL:
    case TIMEDWAIT_MONO_ATTR: return pthread_cond_timedwait(c, m, ts);
    case CLOCKWAIT_MONO: return pthread_cond_clockwait(c, m, CLOCK_MONOTONIC, ts);
    default: return pthread_cond_clockwait(c, m, CLOCK_REALTIME, ts);
    }
}

static void timeout_tests(void)
{
    char name[200];
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    clockid_t clk = -1;
    pthread_condattr_getclock(&ca, &clk);
    CHECK(clk == CLOCK_REALTIME, "condattr default clock is CLOCK_REALTIME");
    int rc = pthread_condattr_setclock(&ca, CLOCK_PROCESS_CPUTIME_ID);
    printf("condattr_setclock(CLOCK_PROCESS_CPUTIME_ID): %s\n", errname(rc));
    CHECK(rc == EINVAL, "condattr_setclock(CLOCK_PROCESS_CPUTIME_ID) -> EINVAL");
    CHECK(pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 && pthread_condattr_getclock(&ca, &clk) == 0 &&
              clk == CLOCK_MONOTONIC,
          "condattr_setclock(CLOCK_MONOTONIC) reads back");
    pthread_cond_t c_real, c_mono;
    pthread_cond_init(&c_real, NULL);
    pthread_cond_init(&c_mono, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_t m;
    errorcheck_init(&m);

    for (int how = TIMEDWAIT_REAL; how <= CLOCKWAIT_REAL; how++) {
        pthread_cond_t *c = how == TIMEDWAIT_MONO_ATTR ? &c_mono : &c_real;
        clockid_t wclk = (how == TIMEDWAIT_MONO_ATTR || how == CLOCKWAIT_MONO) ? CLOCK_MONOTONIC : CLOCK_REALTIME;
        pthread_mutex_lock(&m);
        struct timespec dl = deadline_in(wclk, 100);
        int64_t t0 = mono_ns();
        int r = timed_wait(c, &m, how, &dl);
        int64_t after = now_ns(wclk), waited = mono_ns() - t0;
        struct timespec past = { 1, 0 };
        int r_past = timed_wait(c, &m, how, &past);
        struct timespec bad = deadline_in(wclk, 1000);
        bad.tv_nsec = 1000000000L;
        int r_bad = timed_wait(c, &m, how, &bad);
        int owned = pthread_mutex_unlock(&m) == 0;
        fprintf(stderr, "%s: %s after %.1f ms (%.1f ms past the deadline)\n", how_name[how], errname(r),
                waited / 1e6, (after - ts_ns(&dl)) / 1e6);
        printf("%s: 100 ms deadline %s, past deadline %s, tv_nsec 1e9 %s\n", how_name[how], errname(r),
               errname(r_past), errname(r_bad));
        snprintf(name, sizeof name, "%s: 100 ms deadline -> ETIMEDOUT, not before the deadline", how_name[how]);
        CHECK(r == ETIMEDOUT && after >= ts_ns(&dl) && waited >= 99 * MS, name);
        snprintf(name, sizeof name, "%s: past deadline -> ETIMEDOUT, tv_nsec 1e9 -> EINVAL", how_name[how]);
        CHECK(r_past == ETIMEDOUT && r_bad == EINVAL, name);
        snprintf(name, sizeof name, "%s: the mutex is owned again afterwards", how_name[how]);
        CHECK(owned, name);
    }
    {
        pthread_mutex_lock(&m);
        struct timespec ts = deadline_in(CLOCK_MONOTONIC, 100);
        int a = pthread_cond_clockwait(&c_real, &m, CLOCK_PROCESS_CPUTIME_ID, &ts);
        int b = pthread_cond_clockwait(&c_real, &m, (clockid_t)12345, &ts);
        int owned = pthread_mutex_unlock(&m) == 0;
        printf("clockwait with CLOCK_PROCESS_CPUTIME_ID: %s, with clock 12345: %s\n", errname(a), errname(b));
        CHECK(a == EINVAL && b == EINVAL && owned, "clockwait with an unsupported clock -> EINVAL");
    }
    CHECK(pthread_cond_destroy(&c_real) == 0 && pthread_cond_destroy(&c_mono) == 0 &&
              pthread_mutex_destroy(&m) == 0,
          "destroy the conds and the mutex -> 0");
}

/* ---- signalled before the deadline; deadline passing while the mutex is held elsewhere ---- */

struct late {
    pthread_mutex_t m;
    pthread_cond_t c;
    int waiting, pred, released, rc, released_seen, owned;
    long deadline_ms;
    int64_t waited;
};

static void *late_waiter(void *arg)
{
    struct late *l = arg;
    pthread_mutex_lock(&l->m);
    ATOMIC_STORE(&l->waiting, 1);
    struct timespec dl = deadline_in(CLOCK_REALTIME, l->deadline_ms);
    int64_t t0 = mono_ns();
    int rc = 0;
    while (!l->pred && rc == 0)
        rc = pthread_cond_timedwait(&l->c, &l->m, &dl);
    l->waited = mono_ns() - t0;
    l->rc = rc;
    l->released_seen = ATOMIC_LOAD(&l->released);
    l->owned = pthread_mutex_unlock(&l->m) == 0;
    return NULL;
}

/* signal: set pred and signal once the waiter waits; hold_ms: then keep the mutex that long */
static void late_case(const char *label, long deadline_ms, int signal, long hold_ms, int want_rc)
{
    char name[200];
    struct late l;
    memset(&l, 0, sizeof l);
    errorcheck_init(&l.m);
    pthread_cond_init(&l.c, NULL);
    l.deadline_ms = deadline_ms;
    pthread_t t;
    pthread_create(&t, NULL, late_waiter, &l);
    wait_at_least(&l.waiting, 1, 1, 10000);
    pthread_mutex_lock(&l.m); /* the waiter is inside pthread_cond_timedwait now */
    if (signal) {
        l.pred = 1;
        pthread_cond_signal(&l.c);
    }
    sleep_ms(hold_ms);
    ATOMIC_STORE(&l.released, 1);
    pthread_mutex_unlock(&l.m);
    pthread_join(t, NULL);
    fprintf(stderr, "%s: %s after %.1f ms\n", label, errname(l.rc), l.waited / 1e6);
    printf("%s: %s\n", label, errname(l.rc));
    snprintf(name, sizeof name, "%s -> %s", label, errname(want_rc));
    CHECK(l.rc == want_rc, name);
    snprintf(name, sizeof name, "%s: returned only after the mutex was released, owning it", label);
    CHECK(l.released_seen && l.owned, name);
    pthread_cond_destroy(&l.c);
    pthread_mutex_destroy(&l.m);
}

/* ---- tokens: N signals wake N waiters ---- */

static pthread_mutex_t tm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tc = PTHREAD_COND_INITIALIZER;
static int tokens, tdone, twaiting, tfinished_token, tfinished_done, terrors;

static void *token_waiter(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&tm);
    twaiting++;
    while (tokens == 0 && !tdone)
        if (pthread_cond_wait(&tc, &tm) != 0)
            terrors++;
    if (tokens > 0) {
        tokens--;
        ATOMIC_ADD(&tfinished_token, 1);
    } else {
        ATOMIC_ADD(&tfinished_done, 1);
    }
    pthread_mutex_unlock(&tm);
    return NULL;
}

static void token_test(void)
{
    pthread_t t[10];
    for (int i = 0; i < 10; i++)
        pthread_create(&t[i], NULL, token_waiter, NULL);
    for (;;) {
        pthread_mutex_lock(&tm);
        int w = twaiting;
        pthread_mutex_unlock(&tm);
        if (w == 10)
            break;
        sleep_ms(2);
    }
    for (int i = 0; i < 3; i++) {
        pthread_mutex_lock(&tm);
        tokens++;
        pthread_mutex_unlock(&tm);
        pthread_cond_signal(&tc);
    }
    int three = wait_at_least(&tfinished_token, 3, 1, 10000);
    sleep_ms(100);
    CHECK(three && ATOMIC_LOAD(&tfinished_token) == 3 && ATOMIC_LOAD(&tfinished_done) == 0,
          "tokens: 3 signals with 3 tokens: 3 of 10 waiters finish, 7 keep waiting");
    pthread_mutex_lock(&tm);
    tdone = 1;
    pthread_cond_broadcast(&tc);
    pthread_mutex_unlock(&tm);
    for (int i = 0; i < 10; i++)
        pthread_join(t[i], NULL);
    CHECK(tfinished_done == 7 && terrors == 0, "tokens: a broadcast finishes the other 7");
}

/* ---- broadcast to 100 waiters ---- */

#define BWAITERS 100
static pthread_mutex_t bm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t bc = PTHREAD_COND_INITIALIZER;
static int bgo, bwaiting, bwoken;

static void *bwaiter(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&bm);
    bwaiting++;
    while (!bgo)
        pthread_cond_wait(&bc, &bm);
    bwoken++;
    pthread_mutex_unlock(&bm);
    return NULL;
}

static void broadcast_test(void)
{
    pthread_t t[BWAITERS];
    for (int i = 0; i < BWAITERS; i++)
        pthread_create(&t[i], NULL, bwaiter, NULL);
    for (;;) {
        pthread_mutex_lock(&bm);
        int w = bwaiting;
        pthread_mutex_unlock(&bm);
        if (w == BWAITERS)
            break;
        sleep_ms(2);
    }
    sleep_ms(50);
    pthread_mutex_lock(&bm);
    int before = bwoken;
    bgo = 1;
    int rc = pthread_cond_broadcast(&bc);
    pthread_mutex_unlock(&bm);
    for (int i = 0; i < BWAITERS; i++)
        pthread_join(t[i], NULL);
    CHECK(before == 0 && rc == 0, "broadcast: none of 100 waiters left before the broadcast");
    CHECK(bwoken == BWAITERS, "broadcast: wakes all 100 waiters");
}

int main(void)
{
    test_init();
    fprintf(stderr, "under shim: %d, workers %d\n", under_shim(), shim_workers());
    queue_test();
    timeout_tests();
    late_case("timedwait signalled before its 10 s deadline", 10000, 1, 0, 0);
    late_case("timedwait, 100 ms deadline passing while another thread holds the mutex, not signalled", 100, 0,
              400, ETIMEDOUT);
    late_case("timedwait, signalled before its 300 ms deadline, mutex held until 600 ms", 300, 1, 600, 0);
    token_test();
    broadcast_test();
    return test_exit_status();
}
