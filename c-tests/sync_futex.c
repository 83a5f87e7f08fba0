/* sync_futex: raw futex system calls through syscall(SYS_futex, ...), each with and without
 * FUTEX_PRIVATE_FLAG where it applies.
 *  - FUTEX_WAIT on a changed value -> -1/EAGAIN; FUTEX_WAIT with a 100 ms relative timeout -> ETIMEDOUT
 *    after at least 100 ms; FUTEX_WAKE with nobody waiting -> 0;
 *  - FUTEX_WAIT_BITSET with an absolute CLOCK_MONOTONIC deadline (and with FUTEX_CLOCK_REALTIME and a
 *    CLOCK_REALTIME one) -> ETIMEDOUT no earlier than the deadline; a past deadline ETIMEDOUT; bitset 0,
 *    tv_nsec = 1e9, a misaligned address -> EINVAL; a NULL address -> EFAULT; an unknown op -> ENOSYS;
 *  - 8 threads in FUTEX_WAIT (all known to be waiting: a handshake, then 200 ms): none returns by
 *    itself, FUTEX_WAKE of 3 returns 3 and exactly 3 return, FUTEX_WAKE of INT_MAX returns the other 5;
 *  - FUTEX_WAKE_BITSET with a non-matching bitset wakes 0, with the matching one 1;
 *  - FUTEX_CMP_REQUEUE with a stale value -> EAGAIN; of 4 waiters, wake 1 and requeue the rest ->
 *    returns 4; a FUTEX_WAKE on the second word then wakes 3;
 *  - a lock built on futexes (Drepper's three-state mutex) protecting a counter across 8 threads x
 *    20,000 iterations with the holder yielding inside now and then: exact count, exclusive;
 *  - a shared futex in MAP_SHARED memory: the parent and two of its threads wait on it, a forked child
 *    sets it after 200 ms and FUTEX_WAKEs them: its wake returns 3, every wait returns 0.
 * asyncshim-test: timeout=30 */
#include "shim_probe.h"
#include "test_util.h"
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define MS 1000000LL

static long futex(int *uaddr, int op, int val, const struct timespec *ts, int *uaddr2, int val3)
{
    return syscall(SYS_futex, uaddr, op, val, ts, uaddr2, val3);
}

/* result of a futex call as a string: the count, or the errno name */
static const char *res(long rc, int e, char *buf, size_t n)
{
    if (rc >= 0)
        snprintf(buf, n, "%ld", rc);
    else if (e == ENOSYS)
        snprintf(buf, n, "ENOSYS");
    else
        snprintf(buf, n, "%s", errname(e));
    return buf;
}

/* ---- simple calls ---- */

static void simple_tests(int priv)
{
    const char *p = priv ? "private" : "shared";
    int pf = priv ? FUTEX_PRIVATE_FLAG : 0;
    char name[200], b1[32], b2[32], b3[32];
    int word = 1;

    errno = 0;
    long rc = futex(&word, FUTEX_WAIT | pf, 0, NULL, NULL, 0);
    int e = errno;
    printf("%s FUTEX_WAIT on a changed value: %s\n", p, res(rc, e, b1, sizeof b1));
    snprintf(name, sizeof name, "%s FUTEX_WAIT on a changed value -> EAGAIN", p);
    CHECK(rc == -1 && e == EAGAIN, name);

    struct timespec rel = { 0, 100 * MS };
    int64_t t0 = mono_ns();
    errno = 0;
    rc = futex(&word, FUTEX_WAIT | pf, 1, &rel, NULL, 0);
    e = errno;
    int64_t waited = mono_ns() - t0;
    fprintf(stderr, "%s FUTEX_WAIT 100 ms relative: %s after %.1f ms\n", p, res(rc, e, b1, sizeof b1), waited / 1e6);
    printf("%s FUTEX_WAIT with a 100 ms timeout: %s\n", p, res(rc, e, b1, sizeof b1));
    snprintf(name, sizeof name, "%s FUTEX_WAIT with a 100 ms timeout -> ETIMEDOUT after at least 100 ms", p);
    CHECK(rc == -1 && e == ETIMEDOUT && waited >= 99 * MS, name);

    rc = futex(&word, FUTEX_WAKE | pf, INT_MAX, NULL, NULL, 0);
    snprintf(name, sizeof name, "%s FUTEX_WAKE with nobody waiting -> 0", p);
    CHECK(rc == 0, name);

    /* FUTEX_WAIT_BITSET with absolute deadlines */
    for (int real = 0; real < 2; real++) {
        clockid_t clk = real ? CLOCK_REALTIME : CLOCK_MONOTONIC;
        int cf = real ? FUTEX_CLOCK_REALTIME : 0;
        const char *cn = real ? "CLOCK_REALTIME" : "CLOCK_MONOTONIC";
        struct timespec dl = deadline_in(clk, 100);
        t0 = mono_ns();
        errno = 0;
        rc = futex(&word, FUTEX_WAIT_BITSET | pf | cf, 1, &dl, NULL, FUTEX_BITSET_MATCH_ANY);
        e = errno;
        int64_t after = now_ns(clk);
        waited = mono_ns() - t0;
        struct timespec past = { 1, 0 };
        errno = 0;
        long rc_past = futex(&word, FUTEX_WAIT_BITSET | pf | cf, 1, &past, NULL, FUTEX_BITSET_MATCH_ANY);
        int e_past = errno;
        struct timespec bad = deadline_in(clk, 1000);
        bad.tv_nsec = 1000000000L;
        errno = 0;
        long rc_bad = futex(&word, FUTEX_WAIT_BITSET | pf | cf, 1, &bad, NULL, FUTEX_BITSET_MATCH_ANY);
        int e_bad = errno;
        fprintf(stderr, "%s FUTEX_WAIT_BITSET %s 100 ms absolute: %s after %.1f ms\n", p, cn, res(rc, e, b1, 32),
                waited / 1e6);
        printf("%s FUTEX_WAIT_BITSET, absolute %s: 100 ms deadline %s, past deadline %s, tv_nsec 1e9 %s\n", p, cn,
               res(rc, e, b1, sizeof b1), res(rc_past, e_past, b2, sizeof b2), res(rc_bad, e_bad, b3, sizeof b3));
        snprintf(name, sizeof name, "%s FUTEX_WAIT_BITSET absolute %s -> ETIMEDOUT, not before the deadline", p, cn);
        CHECK(rc == -1 && e == ETIMEDOUT && after >= ts_ns(&dl) && waited >= 99 * MS, name);
        snprintf(name, sizeof name, "%s FUTEX_WAIT_BITSET %s: past deadline ETIMEDOUT, tv_nsec 1e9 EINVAL", p, cn);
        CHECK(rc_past == -1 && e_past == ETIMEDOUT && rc_bad == -1 && e_bad == EINVAL, name);
    }

    /* invalid arguments */
    struct timespec dl = deadline_in(CLOCK_MONOTONIC, 100);
    errno = 0;
    long r0 = futex(&word, FUTEX_WAIT_BITSET | pf, 1, &dl, NULL, 0);
    int e0 = errno;
    char *bytes = (char *)&word;
    errno = 0;
    long r1 = futex((int *)(bytes + 1), FUTEX_WAIT | pf, 1, &rel, NULL, 0);
    int e1 = errno;
    errno = 0;
    long r2 = futex(NULL, FUTEX_WAIT | pf, 1, &rel, NULL, 0);
    int e2 = errno;
    errno = 0;
    long r3 = futex(&word, 99 | pf, 1, &rel, NULL, 0);
    int e3 = errno;
    printf("%s futex: bitset 0 %s, misaligned %s, NULL %s, op 99 %s\n", p, res(r0, e0, b1, sizeof b1),
           res(r1, e1, b2, sizeof b2), res(r2, e2, b3, sizeof b3), e3 == ENOSYS ? "ENOSYS" : errname(e3));
    snprintf(name, sizeof name, "%s FUTEX_WAIT_BITSET with bitset 0 -> EINVAL", p);
    CHECK(r0 == -1 && e0 == EINVAL, name);
    snprintf(name, sizeof name, "%s FUTEX_WAIT on a misaligned address -> EINVAL", p);
    CHECK(r1 == -1 && e1 == EINVAL, name);
    snprintf(name, sizeof name, "%s FUTEX_WAIT on NULL -> EFAULT", p);
    CHECK(r2 == -1 && e2 == EFAULT, name);
    snprintf(name, sizeof name, "%s futex op 99 -> ENOSYS", p);
    CHECK(r3 == -1 && e3 == ENOSYS, name);
}

/* ---- N waiters ---- */

#define NWAIT 8
struct waiters {
    int word, pf, ready, returned, bad;
    int bitset;
};

static void *futex_waiter(void *arg)
{
    struct waiters *w = arg;
    ATOMIC_ADD(&w->ready, 1);
    long rc;
    if (w->bitset)
        rc = futex(&w->word, FUTEX_WAIT_BITSET | w->pf, 0, NULL, NULL, w->bitset);
    else
        rc = futex(&w->word, FUTEX_WAIT | w->pf, 0, NULL, NULL, 0);
    if (rc != 0)
        ATOMIC_ADD(&w->bad, 1);
    ATOMIC_ADD(&w->returned, 1);
    return NULL;
}

static void wake_count_test(int priv)
{
    const char *p = priv ? "private" : "shared";
    char name[200];
    static struct waiters w;
    memset(&w, 0, sizeof w);
    w.pf = priv ? FUTEX_PRIVATE_FLAG : 0;
    pthread_t t[NWAIT];
    for (int i = 0; i < NWAIT; i++)
        pthread_create(&t[i], NULL, futex_waiter, &w);
    wait_at_least(&w.ready, NWAIT, 1, 10000);
    sleep_ms(200); /* all 8 are in FUTEX_WAIT now */
    int none = ATOMIC_LOAD(&w.returned) == 0;
    long woke3 = futex(&w.word, FUTEX_WAKE | w.pf, 3, NULL, NULL, 0);
    int got3 = wait_at_least(&w.returned, 3, 1, 10000);
    sleep_ms(100);
    int exactly3 = ATOMIC_LOAD(&w.returned) == 3;
    ATOMIC_STORE(&w.word, 1);
    long rest = futex(&w.word, FUTEX_WAKE | w.pf, INT_MAX, NULL, NULL, 0);
    for (int i = 0; i < NWAIT; i++)
        pthread_join(t[i], NULL);
    printf("%s: 8 waiters: FUTEX_WAKE 3 -> %ld, FUTEX_WAKE INT_MAX -> %ld\n", p, woke3, rest);
    snprintf(name, sizeof name, "%s: 8 waiters stay in FUTEX_WAIT until woken", p);
    CHECK(none, name);
    snprintf(name, sizeof name, "%s: FUTEX_WAKE of 3 returns 3 and exactly 3 waiters return", p);
    CHECK(woke3 == 3 && got3 && exactly3, name);
    snprintf(name, sizeof name, "%s: FUTEX_WAKE of INT_MAX returns the other 5", p);
    CHECK(rest == NWAIT - 3, name);
    snprintf(name, sizeof name, "%s: every FUTEX_WAIT returned 0", p);
    CHECK(w.bad == 0 && w.returned == NWAIT, name);
}

static void bitset_test(int priv)
{
    const char *p = priv ? "private" : "shared";
    char name[200];
    static struct waiters w;
    memset(&w, 0, sizeof w);
    w.pf = priv ? FUTEX_PRIVATE_FLAG : 0;
    w.bitset = 0x1;
    pthread_t t;
    pthread_create(&t, NULL, futex_waiter, &w);
    wait_at_least(&w.ready, 1, 1, 10000);
    sleep_ms(200);
    long other = futex(&w.word, FUTEX_WAKE_BITSET | w.pf, INT_MAX, NULL, NULL, 0x2);
    sleep_ms(50);
    int still = ATOMIC_LOAD(&w.returned) == 0;
    long match = futex(&w.word, FUTEX_WAKE_BITSET | w.pf, INT_MAX, NULL, NULL, 0x1);
    pthread_join(t, NULL);
    printf("%s: FUTEX_WAKE_BITSET 0x2 on a 0x1 waiter -> %ld, 0x1 -> %ld\n", p, other, match);
    snprintf(name, sizeof name, "%s: FUTEX_WAKE_BITSET with a non-matching bitset wakes nobody", p);
    CHECK(other == 0 && still, name);
    snprintf(name, sizeof name, "%s: FUTEX_WAKE_BITSET with the matching bitset wakes the waiter", p);
    CHECK(match == 1 && w.bad == 0 && w.returned == 1, name);
}

static void requeue_test(int priv)
{
    const char *p = priv ? "private" : "shared";
    char name[200];
    static struct waiters w;
    static int word2;
    memset(&w, 0, sizeof w);
    word2 = 0;
    w.pf = priv ? FUTEX_PRIVATE_FLAG : 0;
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, futex_waiter, &w);
    wait_at_least(&w.ready, 4, 1, 10000);
    sleep_ms(200);
    errno = 0;
    long stale = futex(&w.word, FUTEX_CMP_REQUEUE | w.pf, 1, (const struct timespec *)(uintptr_t)INT_MAX, &word2, 7);
    int e = errno;
    long rq = futex(&w.word, FUTEX_CMP_REQUEUE | w.pf, 1, (const struct timespec *)(uintptr_t)INT_MAX, &word2, 0);
    int one = wait_at_least(&w.returned, 1, 1, 10000);
    sleep_ms(100);
    int exactly1 = ATOMIC_LOAD(&w.returned) == 1;
    long on_first = futex(&w.word, FUTEX_WAKE | w.pf, INT_MAX, NULL, NULL, 0);
    long on_second = futex(&word2, FUTEX_WAKE | w.pf, INT_MAX, NULL, NULL, 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    printf("%s: FUTEX_CMP_REQUEUE stale %s, requeue -> %ld, wake first word -> %ld, second word -> %ld\n", p,
           stale == -1 ? errname(e) : "not refused", rq, on_first, on_second);
    snprintf(name, sizeof name, "%s: FUTEX_CMP_REQUEUE with a stale value -> EAGAIN", p);
    CHECK(stale == -1 && e == EAGAIN, name);
    snprintf(name, sizeof name, "%s: FUTEX_CMP_REQUEUE of 4 waiters (wake 1, requeue 3) returns 4, one returns", p);
    CHECK(rq == 4 && one && exactly1, name);
    snprintf(name, sizeof name, "%s: the 3 requeued waiters are woken through the second word only", p);
    CHECK(on_first == 0 && on_second == 3 && w.bad == 0 && w.returned == 4, name);
}

/* ---- a futex-based lock (0 free, 1 locked, 2 locked with waiters) ---- */

#define LTHREADS 8
#define LITERS 20000
static int flock_word, lock_gate, lock_inside, lock_overlaps;
static long lock_counter;

static void flock_lock(int *f)
{
    int c = 0;
    if (__atomic_compare_exchange_n(f, &c, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return;
    if (c != 2)
        c = __atomic_exchange_n(f, 2, __ATOMIC_ACQUIRE);
    while (c != 0) {
        futex(f, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
        c = __atomic_exchange_n(f, 2, __ATOMIC_ACQUIRE);
    }
}

static void flock_unlock(int *f)
{
    if (__atomic_exchange_n(f, 0, __ATOMIC_RELEASE) == 2)
        futex(f, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void *lock_body(void *arg)
{
    (void)arg;
    while (!ATOMIC_LOAD(&lock_gate))
        sleep_ms(1);
    for (int i = 0; i < LITERS; i++) {
        flock_lock(&flock_word);
        if (ATOMIC_ADD(&lock_inside, 1) != 1)
            ATOMIC_ADD(&lock_overlaps, 1);
        long v = lock_counter;
        if (i % 1000 == 500) {
            if ((i / 1000) % 2)
                sched_yield();
            else
                usleep(0);
        }
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        lock_counter = v + 1;
        ATOMIC_ADD(&lock_inside, -1);
        flock_unlock(&flock_word);
    }
    return NULL;
}

static void futex_lock_test(void)
{
    pthread_t t[LTHREADS];
    int64_t t0 = mono_ns();
    for (int i = 0; i < LTHREADS; i++)
        pthread_create(&t[i], NULL, lock_body, NULL);
    sleep_ms(10);
    ATOMIC_STORE(&lock_gate, 1);
    for (int i = 0; i < LTHREADS; i++)
        pthread_join(t[i], NULL);
    fprintf(stderr, "futex lock: %ld increments in %.1f ms, overlaps %d\n", lock_counter, (mono_ns() - t0) / 1e6,
            lock_overlaps);
    CHECK(lock_counter == (long)LTHREADS * LITERS && lock_overlaps == 0 && flock_word == 0,
          "futex-based lock: 8 threads x 20000 increments with yields inside = 160000, exclusive");
}

/* ---- shared futex across fork ---- */

struct shared_word {
    int word;
    int waiters_ready;
};

static void *shared_waiter(void *arg)
{
    struct shared_word *sw = arg;
    ATOMIC_ADD(&sw->waiters_ready, 1);
    long rc = 0;
    while (ATOMIC_LOAD(&sw->word) == 0 && (rc = futex(&sw->word, FUTEX_WAIT, 0, NULL, NULL, 0)) == 0)
        ;
    if (rc == -1 && errno == EAGAIN)
        rc = 0;
    return (void *)(intptr_t)(rc == 0 && ATOMIC_LOAD(&sw->word) == 1);
}

static void fork_test(void)
{
    struct shared_word *sw = mmap(NULL, sizeof *sw, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (!CHECK(sw != MAP_FAILED, "fork: mmap MAP_SHARED"))
        return;
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, shared_waiter, sw);
    wait_at_least(&sw->waiters_ready, 2, 1, 10000);
    pid_t pid = fork();
    if (pid == 0) {
        sleep_ms(200);
        ATOMIC_STORE(&sw->word, 1);
        long n = futex(&sw->word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
        _exit(n < 0 ? 100 : (int)n);
    }
    CHECK(pid > 0, "fork: fork");
    if (pid < 0)
        return;
    long rc = futex(&sw->word, FUTEX_WAIT, 0, NULL, NULL, 0);
    int e = errno;
    int main_ok = rc == 0 && ATOMIC_LOAD(&sw->word) == 1;
    int thr_ok = 1;
    for (int i = 0; i < 2; i++) {
        void *r;
        pthread_join(t[i], &r);
        if (!r)
            thr_ok = 0;
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    int woken = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (!main_ok)
        fprintf(stderr, "fork: parent's FUTEX_WAIT: %ld errno %d, word %d\n", rc, e, sw->word);
    printf("fork: the child's FUTEX_WAKE woke %d\n", woken);
    CHECK(main_ok, "fork: the parent's FUTEX_WAIT on a shared word returns 0 after the child's wake");
    CHECK(thr_ok, "fork: two parent threads waiting on it return too");
    CHECK(woken == 3, "fork: the child's FUTEX_WAKE returns 3 (the parent and its two threads)");
    munmap(sw, sizeof *sw);
}

int main(void)
{
    test_init();
    fprintf(stderr, "under shim: %d, workers %d\n", under_shim(), shim_workers());
    for (int priv = 1; priv >= 0; priv--) {
        simple_tests(priv);
        wake_count_test(priv);
        bitset_test(priv);
        requeue_test(priv);
    }
    futex_lock_test();
    fork_test();
    return test_exit_status();
}
