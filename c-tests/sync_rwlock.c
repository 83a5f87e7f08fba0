/* sync_rwlock: pthread read-write locks.
 *  - invariant under contention, for a default rwlock and a PREFER_WRITER_NONRECURSIVE one: 4 writers x
 *    5,000 iterations write a two-field record (first field, a yield now and then, second field) while 8
 *    readers x 20,000 iterations read it (yielding now and then between the two fields): no reader ever
 *    sees a writer inside or a torn pair, no writer sees anyone else inside, the final record equals the
 *    number of writes. Readers and writers use the plain, timed (CLOCK_REALTIME) and clock
 *    (CLOCK_MONOTONIC) lock calls with far deadlines. The most readers seen inside at once goes to stderr
 *    (how many overlap is not deterministic);
 *  - while another thread holds the write lock: tryrdlock/trywrlock EBUSY; timedrdlock, timedwrlock,
 *    clockrdlock and clockwrlock (CLOCK_MONOTONIC and CLOCK_REALTIME) with 100 ms deadlines ETIMEDOUT no
 *    earlier than the deadline; a past deadline ETIMEDOUT; tv_nsec = 1e9 EINVAL; an unsupported clock
 *    EINVAL; a far deadline succeeds once the writer unlocks;
 *  - while another thread holds a read lock: tryrdlock and timedrdlock 0; trywrlock EBUSY; timedwrlock
 *    and clockwrlock ETIMEDOUT;
 *  - the write-lock owner: wrlock, rdlock, timedwrlock, timedrdlock EDEADLK; trywrlock, tryrdlock EBUSY;
 *  - preference (glibc's documented behaviour): with PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP a new
 *    reader waits while a writer waits for the current reader (order: writer, then new reader), and even
 *    the current reader's tryrdlock is EBUSY; with the default (PREFER_READER_NP) and with
 *    PREFER_WRITER_NP (which glibc treats like PREFER_READER_NP) the new reader gets in ahead of the
 *    waiting writer. Gaps of 200 ms make the waits certain.
 * Timings and reader overlap go to stderr.
 * asyncshim-test: timeout=60 */
#include "shim_probe.h"
#include "sync_util.h"
#include "test_util.h"
#include <pthread.h>
#include <sched.h>

#define MS 1000000LL
#define READERS 8
#define WRITERS 4
#define R_ITERS 20000
#define W_ITERS 5000

static void rwlock_init_kind(pthread_rwlock_t *rw, int kind)
{
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setkind_np(&a, kind);
    pthread_rwlock_init(rw, &a);
    pthread_rwlockattr_destroy(&a);
}

/* ---- invariant under contention ---- */

struct stress {
    pthread_rwlock_t rw;
    long a, b;
    long writes;
    int readers_inside, writers_inside, max_readers;
    int violations, torn, errors, gate;
};

static int lock_far(pthread_rwlock_t *rw, int write, int how)
{
    if (how == 0)
        return write ? pthread_rwlock_wrlock(rw) : pthread_rwlock_rdlock(rw);
    if (how == 1) {
        struct timespec ts = deadline_in(CLOCK_REALTIME, 30000);
        return write ? pthread_rwlock_timedwrlock(rw, &ts) : pthread_rwlock_timedrdlock(rw, &ts);
    }
    struct timespec ts = deadline_in(CLOCK_MONOTONIC, 30000);
    return write ? pthread_rwlock_clockwrlock(rw, CLOCK_MONOTONIC, &ts)
                 : pthread_rwlock_clockrdlock(rw, CLOCK_MONOTONIC, &ts);
}

static struct stress *cur;

static void *writer(void *arg)
{
    struct stress *s = cur;
    int id = (int)(intptr_t)arg;
    while (!ATOMIC_LOAD(&s->gate))
        sleep_ms(1);
    for (int i = 0; i < W_ITERS; i++) {
        if (lock_far(&s->rw, 1, (i + id) % 3) != 0) {
            ATOMIC_ADD(&s->errors, 1);
            continue;
        }
        if (ATOMIC_ADD(&s->writers_inside, 1) != 1 || ATOMIC_LOAD(&s->readers_inside) != 0)
            ATOMIC_ADD(&s->violations, 1);
        long x = ++s->writes;
        __atomic_store_n(&s->a, x, __ATOMIC_RELAXED);
        if (i % 250 == 0)
            sched_yield();
        __atomic_store_n(&s->b, x, __ATOMIC_RELAXED);
        ATOMIC_ADD(&s->writers_inside, -1);
        if (pthread_rwlock_unlock(&s->rw) != 0)
            ATOMIC_ADD(&s->errors, 1);
    }
    return NULL;
}

static void *reader(void *arg)
{
    struct stress *s = cur;
    int id = (int)(intptr_t)arg;
    int max = 0;
    while (!ATOMIC_LOAD(&s->gate))
        sleep_ms(1);
    for (int i = 0; i < R_ITERS; i++) {
        if (lock_far(&s->rw, 0, (i + id) % 3) != 0) {
            ATOMIC_ADD(&s->errors, 1);
            continue;
        }
        int r = ATOMIC_ADD(&s->readers_inside, 1);
        if (r > max)
            max = r;
        if (ATOMIC_LOAD(&s->writers_inside) != 0)
            ATOMIC_ADD(&s->violations, 1);
        long a = __atomic_load_n(&s->a, __ATOMIC_RELAXED);
        if (i % 500 == 0)
            sched_yield();
        long b = __atomic_load_n(&s->b, __ATOMIC_RELAXED);
        if (a != b)
            ATOMIC_ADD(&s->torn, 1);
        if (ATOMIC_LOAD(&s->writers_inside) != 0)
            ATOMIC_ADD(&s->violations, 1);
        ATOMIC_ADD(&s->readers_inside, -1);
        if (pthread_rwlock_unlock(&s->rw) != 0)
            ATOMIC_ADD(&s->errors, 1);
    }
    int m;
    while ((m = ATOMIC_LOAD(&s->max_readers)) < max &&
           !__atomic_compare_exchange_n(&s->max_readers, &m, max, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
        ;
    return NULL;
}

static void stress_test(const char *label, int kind)
{
    static struct stress s;
    char name[200];
    memset(&s, 0, sizeof s);
    rwlock_init_kind(&s.rw, kind);
    cur = &s;
    pthread_t r[READERS], w[WRITERS];
    int64_t t0 = mono_ns();
    for (int i = 0; i < READERS; i++)
        pthread_create(&r[i], NULL, reader, (void *)(intptr_t)i);
    for (int i = 0; i < WRITERS; i++)
        pthread_create(&w[i], NULL, writer, (void *)(intptr_t)i);
    sleep_ms(10);
    ATOMIC_STORE(&s.gate, 1);
    for (int i = 0; i < READERS; i++)
        pthread_join(r[i], NULL);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(w[i], NULL);
    fprintf(stderr, "%s: %.1f ms, writes %ld, violations %d, torn %d, errors %d, max readers inside at once %d\n",
            label, (mono_ns() - t0) / 1e6, s.writes, s.violations, s.torn, s.errors, s.max_readers);
    snprintf(name, sizeof name, "%s: 8 readers and 4 writers: no reader with a writer inside, writers alone",
             label);
    CHECK(s.violations == 0, name);
    snprintf(name, sizeof name, "%s: readers never see a torn pair", label);
    CHECK(s.torn == 0, name);
    snprintf(name, sizeof name, "%s: all 20000 writes done, final record consistent, no errors", label);
    CHECK(s.writes == (long)WRITERS * W_ITERS && s.a == s.writes && s.b == s.writes && s.errors == 0, name);
    snprintf(name, sizeof name, "%s: destroy -> 0", label);
    CHECK(pthread_rwlock_destroy(&s.rw) == 0, name);
}

/* ---- a holder thread ---- */

static int wrlock_rw(void *rw)
{
    return pthread_rwlock_wrlock((pthread_rwlock_t *)rw);
}

static int rdlock_rw(void *rw)
{
    return pthread_rwlock_rdlock((pthread_rwlock_t *)rw);
}

static int unlock_rw(void *rw)
{
    return pthread_rwlock_unlock((pthread_rwlock_t *)rw);
}

/* A holder thread (sync_util.h): write- or read-locks rw until `release` is set, then 100 ms more. */
static void holder_start(struct holder *h, pthread_rwlock_t *rw, int write)
{
    holder_start_with(h, write ? wrlock_rw : rdlock_rw, unlock_rw, rw, 0, 100);
}

enum tkind { T_TIMEDRD, T_TIMEDWR, T_CLOCKRD_MONO, T_CLOCKWR_MONO, T_CLOCKRD_REAL, T_CLOCKWR_REAL };
static const char *tkind_name[] = { "timedrdlock", "timedwrlock", "clockrdlock(MONOTONIC)", "clockwrlock(MONOTONIC)",
                                    "clockrdlock(REALTIME)", "clockwrlock(REALTIME)" };

static clockid_t tkind_clock(enum tkind k)
{
    return (k == T_CLOCKRD_MONO || k == T_CLOCKWR_MONO) ? CLOCK_MONOTONIC : CLOCK_REALTIME;
}

static int timed(pthread_rwlock_t *rw, enum tkind k, const struct timespec *ts)
{
    switch (k) {
    case T_TIMEDRD: return pthread_rwlock_timedrdlock(rw, ts);
    case T_TIMEDWR: return pthread_rwlock_timedwrlock(rw, ts);
    case T_CLOCKRD_MONO: return pthread_rwlock_clockrdlock(rw, CLOCK_MONOTONIC, ts);
    case T_CLOCKWR_MONO: return pthread_rwlock_clockwrlock(rw, CLOCK_MONOTONIC, ts);
    case T_CLOCKRD_REAL: return pthread_rwlock_clockrdlock(rw, CLOCK_REALTIME, ts);
    default: return pthread_rwlock_clockwrlock(rw, CLOCK_REALTIME, ts);
    }
}

/* One timed attempt with a 100 ms deadline; returns the result; checks the deadline had passed. */
static int timed_100(pthread_rwlock_t *rw, enum tkind k, int *waited_ok)
{
    clockid_t clk = tkind_clock(k);
    struct timespec dl = deadline_in(clk, 100);
    int64_t t0 = mono_ns();
    int rc = timed(rw, k, &dl);
    int64_t after = now_ns(clk), waited = mono_ns() - t0;
    if (rc == 0)
        pthread_rwlock_unlock(rw);
    *waited_ok = after >= ts_ns(&dl) && waited >= 99 * MS;
    fprintf(stderr, "%s, 100 ms deadline: %s after %.1f ms\n", tkind_name[k], errname(rc), waited / 1e6);
    return rc;
}

static void write_held_tests(void)
{
    char name[200];
    pthread_rwlock_t rw;
    pthread_rwlock_init(&rw, NULL);
    struct holder h;
    holder_start(&h, &rw, 1);
    int tr = pthread_rwlock_tryrdlock(&rw), tw = pthread_rwlock_trywrlock(&rw);
    printf("write-held by another thread: tryrdlock %s, trywrlock %s\n", errname(tr), errname(tw));
    CHECK(tr == EBUSY && tw == EBUSY, "write-held: tryrdlock and trywrlock -> EBUSY");
    for (int k = T_TIMEDRD; k <= T_CLOCKWR_REAL; k++) {
        int waited_ok;
        int rc = timed_100(&rw, k, &waited_ok);
        struct timespec past = { 1, 0 };
        int r_past = timed(&rw, k, &past);
        struct timespec bad = deadline_in(tkind_clock(k), 1000);
        bad.tv_nsec = 1000000000L;
        int r_bad = timed(&rw, k, &bad);
        printf("write-held: %s: 100 ms deadline %s, past deadline %s, tv_nsec 1e9 %s\n", tkind_name[k],
               errname(rc), errname(r_past), errname(r_bad));
        snprintf(name, sizeof name, "write-held: %s, 100 ms deadline -> ETIMEDOUT, not before the deadline",
                 tkind_name[k]);
        CHECK(rc == ETIMEDOUT && waited_ok, name);
        snprintf(name, sizeof name, "write-held: %s, past deadline -> ETIMEDOUT, tv_nsec 1e9 -> EINVAL",
                 tkind_name[k]);
        CHECK(r_past == ETIMEDOUT && r_bad == EINVAL, name);
    }
    {
        struct timespec ts = deadline_in(CLOCK_MONOTONIC, 100);
        int a = pthread_rwlock_clockrdlock(&rw, CLOCK_PROCESS_CPUTIME_ID, &ts);
        int b = pthread_rwlock_clockwrlock(&rw, (clockid_t)12345, &ts);
        printf("write-held: clockrdlock(CPUTIME) %s, clockwrlock(12345) %s\n", errname(a), errname(b));
        CHECK(a == EINVAL && b == EINVAL, "write-held: clockrdlock/clockwrlock with an unsupported clock -> EINVAL");
    }
    CHECK(h.released == 0, "write-held: the writer still held it during all of these");
    /* far deadlines: succeed once the writer lets go */
    ATOMIC_STORE(&h.release, 1);
    struct timespec far = deadline_in(CLOCK_MONOTONIC, 20000);
    int rc = pthread_rwlock_clockrdlock(&rw, CLOCK_MONOTONIC, &far);
    int rel = ATOMIC_LOAD(&h.released);
    CHECK(rc == 0 && rel, "write-held: clockrdlock with a far deadline -> 0 once the writer unlocks");
    if (rc == 0)
        pthread_rwlock_unlock(&rw);
    CHECK(holder_finish(&h), "write-held: the writer locked and unlocked -> 0");
    holder_start(&h, &rw, 1);
    ATOMIC_STORE(&h.release, 1);
    far = deadline_in(CLOCK_REALTIME, 20000);
    rc = pthread_rwlock_timedwrlock(&rw, &far);
    rel = ATOMIC_LOAD(&h.released);
    CHECK(rc == 0 && rel, "write-held: timedwrlock with a far deadline -> 0 once the writer unlocks");
    if (rc == 0)
        pthread_rwlock_unlock(&rw);
    CHECK(holder_finish(&h), "write-held: the second writer locked and unlocked -> 0");
    CHECK(pthread_rwlock_destroy(&rw) == 0, "write-held: destroy -> 0");
}

static void read_held_tests(void)
{
    pthread_rwlock_t rw;
    pthread_rwlock_init(&rw, NULL);
    struct holder h;
    holder_start(&h, &rw, 0);
    int tr = pthread_rwlock_tryrdlock(&rw);
    if (tr == 0)
        pthread_rwlock_unlock(&rw);
    int tw = pthread_rwlock_trywrlock(&rw);
    struct timespec far = deadline_in(CLOCK_REALTIME, 10000);
    int trd = pthread_rwlock_timedrdlock(&rw, &far);
    if (trd == 0)
        pthread_rwlock_unlock(&rw);
    int ok1, ok2;
    int twr = timed_100(&rw, T_TIMEDWR, &ok1);
    int cwr = timed_100(&rw, T_CLOCKWR_MONO, &ok2);
    printf("read-held by another thread: tryrdlock %s, trywrlock %s, timedrdlock %s, timedwrlock %s, "
           "clockwrlock %s\n",
           errname(tr), errname(tw), errname(trd), errname(twr), errname(cwr));
    CHECK(tr == 0 && trd == 0, "read-held: tryrdlock and timedrdlock -> 0");
    CHECK(tw == EBUSY, "read-held: trywrlock -> EBUSY");
    CHECK(twr == ETIMEDOUT && cwr == ETIMEDOUT && ok1 && ok2,
          "read-held: timedwrlock and clockwrlock with 100 ms deadlines -> ETIMEDOUT");
    CHECK(holder_finish(&h), "read-held: the reader locked and unlocked -> 0");
    CHECK(pthread_rwlock_destroy(&rw) == 0, "read-held: destroy -> 0");
}

static void owner_tests(void)
{
    pthread_rwlock_t rw;
    pthread_rwlock_init(&rw, NULL);
    struct timespec far = deadline_in(CLOCK_REALTIME, 10000);
    int w0 = pthread_rwlock_wrlock(&rw);
    int w = pthread_rwlock_wrlock(&rw), r = pthread_rwlock_rdlock(&rw);
    int tw = pthread_rwlock_timedwrlock(&rw, &far), trd = pthread_rwlock_timedrdlock(&rw, &far);
    int yw = pthread_rwlock_trywrlock(&rw), yr = pthread_rwlock_tryrdlock(&rw);
    printf("write-lock owner: wrlock %s, rdlock %s, timedwrlock %s, timedrdlock %s, trywrlock %s, tryrdlock %s\n",
           errname(w), errname(r), errname(tw), errname(trd), errname(yw), errname(yr));
    CHECK(w0 == 0, "owner: wrlock -> 0");
    CHECK(w == EDEADLK, "owner: wrlock again -> EDEADLK");
    CHECK(r == EDEADLK, "owner: rdlock by the writer -> EDEADLK");
    CHECK(tw == EDEADLK && trd == EDEADLK, "owner: timedwrlock and timedrdlock by the writer -> EDEADLK");
    CHECK(yw == EBUSY && yr == EBUSY, "owner: trywrlock and tryrdlock by the writer -> EBUSY");
    CHECK(pthread_rwlock_unlock(&rw) == 0, "owner: unlock -> 0");
    /* read lock taken twice by the same thread (default kind): fine */
    CHECK(pthread_rwlock_rdlock(&rw) == 0 && pthread_rwlock_rdlock(&rw) == 0 && pthread_rwlock_unlock(&rw) == 0 &&
              pthread_rwlock_unlock(&rw) == 0,
          "owner: rdlock twice and unlock twice -> 0");
    CHECK(pthread_rwlock_destroy(&rw) == 0, "owner: destroy -> 0");
}

/* ---- preference ---- */

struct pref {
    pthread_rwlock_t rw;
    int seq, w_started, w_order, r_started, r_order, errors;
};

static void *pref_writer(void *arg)
{
    struct pref *p = arg;
    ATOMIC_STORE(&p->w_started, 1);
    if (pthread_rwlock_wrlock(&p->rw) != 0) {
        ATOMIC_ADD(&p->errors, 1);
        return NULL;
    }
    ATOMIC_STORE(&p->w_order, ATOMIC_ADD(&p->seq, 1));
    sleep_ms(50);
    if (pthread_rwlock_unlock(&p->rw) != 0)
        ATOMIC_ADD(&p->errors, 1);
    return NULL;
}

static void *pref_reader(void *arg)
{
    struct pref *p = arg;
    ATOMIC_STORE(&p->r_started, 1);
    if (pthread_rwlock_rdlock(&p->rw) != 0) {
        ATOMIC_ADD(&p->errors, 1);
        return NULL;
    }
    ATOMIC_STORE(&p->r_order, ATOMIC_ADD(&p->seq, 1));
    sleep_ms(50);
    if (pthread_rwlock_unlock(&p->rw) != 0)
        ATOMIC_ADD(&p->errors, 1);
    return NULL;
}

static void pref_test(const char *label, int kind, int writer_first)
{
    char name[200];
    struct pref p;
    memset(&p, 0, sizeof p);
    rwlock_init_kind(&p.rw, kind);
    int got_kind = -1;
    {
        pthread_rwlockattr_t a;
        pthread_rwlockattr_init(&a);
        pthread_rwlockattr_setkind_np(&a, kind);
        pthread_rwlockattr_getkind_np(&a, &got_kind);
        pthread_rwlockattr_destroy(&a);
    }
    snprintf(name, sizeof name, "%s: rwlockattr kind reads back", label);
    CHECK(got_kind == kind, name);

    int r1 = pthread_rwlock_rdlock(&p.rw); /* main is the current reader */
    pthread_t w, r;
    pthread_create(&w, NULL, pref_writer, &p);
    wait_at_least(&p.w_started, 1, 1, 10000);
    sleep_ms(200); /* the writer now waits for main's read lock */
    int w_waiting = ATOMIC_LOAD(&p.w_order) == 0;
    int own_try = pthread_rwlock_tryrdlock(&p.rw);
    if (own_try == 0)
        pthread_rwlock_unlock(&p.rw);
    pthread_create(&r, NULL, pref_reader, &p);
    wait_at_least(&p.r_started, 1, 1, 10000);
    sleep_ms(200); /* the new reader got in, or waits behind the writer */
    int r_in = ATOMIC_LOAD(&p.r_order) != 0;
    int w_still = ATOMIC_LOAD(&p.w_order) == 0;
    int u = pthread_rwlock_unlock(&p.rw);
    pthread_join(w, NULL);
    pthread_join(r, NULL);
    printf("%s: current reader's tryrdlock while a writer waits: %s; new reader got in while the writer "
           "waited: %s; order writer %d, new reader %d\n",
           label, errname(own_try), r_in ? "yes" : "no", p.w_order, p.r_order);
    snprintf(name, sizeof name, "%s: the writer waits for the current reader", label);
    CHECK(r1 == 0 && w_waiting && w_still && u == 0, name);
    if (writer_first) {
        snprintf(name, sizeof name, "%s: a new reader waits while a writer waits", label);
        CHECK(!r_in, name);
        snprintf(name, sizeof name, "%s: the current reader's tryrdlock -> EBUSY while a writer waits", label);
        CHECK(own_try == EBUSY, name);
        snprintf(name, sizeof name, "%s: order: the writer, then the new reader", label);
        CHECK(p.w_order == 1 && p.r_order == 2, name);
    } else {
        snprintf(name, sizeof name, "%s: a new reader gets in while a writer waits", label);
        CHECK(r_in, name);
        snprintf(name, sizeof name, "%s: the current reader's tryrdlock -> 0 while a writer waits", label);
        CHECK(own_try == 0, name);
        snprintf(name, sizeof name, "%s: order: the new reader, then the writer", label);
        CHECK(p.r_order == 1 && p.w_order == 2, name);
    }
    snprintf(name, sizeof name, "%s: no errors, destroy -> 0", label);
    CHECK(p.errors == 0 && pthread_rwlock_destroy(&p.rw) == 0, name);
}

int main(void)
{
    test_init();
    fprintf(stderr, "under shim: %d, workers %d\n", under_shim(), shim_workers());
    {
        pthread_rwlockattr_t a;
        int kind = -1;
        pthread_rwlockattr_init(&a);
        pthread_rwlockattr_getkind_np(&a, &kind);
        CHECK(kind == PTHREAD_RWLOCK_PREFER_READER_NP, "rwlockattr default kind is PREFER_READER_NP");
        int rc = pthread_rwlockattr_setkind_np(&a, 12345);
        printf("rwlockattr_setkind_np(12345): %s\n", errname(rc));
        CHECK(rc == EINVAL, "rwlockattr_setkind_np with an unknown kind -> EINVAL");
        pthread_rwlockattr_destroy(&a);
    }
    stress_test("default rwlock", PTHREAD_RWLOCK_PREFER_READER_NP);
    stress_test("PREFER_WRITER_NONRECURSIVE rwlock", PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    write_held_tests();
    read_held_tests();
    owner_tests();
    pref_test("PREFER_WRITER_NONRECURSIVE_NP", PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP, 1);
    pref_test("PREFER_READER_NP", PTHREAD_RWLOCK_PREFER_READER_NP, 0);
    pref_test("PREFER_WRITER_NP", PTHREAD_RWLOCK_PREFER_WRITER_NP, 0);
    return test_exit_status();
}
