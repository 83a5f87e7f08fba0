/* futex_ops: the raw futex commands that move and wake waiters between words, made with
 * syscall(SYS_futex, ...), with waiters of every kind: ordinary threads (coroutines under the shim, which
 * park in the shim's parking lot), a real OS thread (PTHREAD_EXPLICIT_SCHED) waiting through syscall(), and
 * a real OS thread making the system call itself (a `syscall` instruction: a waiter only the kernel knows).
 *  - requeue, private and shared words: 64 waiters on word A (62 ordinary, the two real ones) are all
 *    moved to B by FUTEX_CMP_REQUEUE(wake 0) repeated until the moved count reaches 64 (so all are known to
 *    be asleep); meanwhile a ticker thread keeps running (the waiters hold no worker). Then on B:
 *    FUTEX_CMP_REQUEUE(wake 3, requeue 20) to C returns 23 and exactly 3 waiters return;
 *    FUTEX_REQUEUE(wake 2, requeue 5) to C returns 7 (the kernel counts the moved too) and 2 return;
 *    FUTEX_WAKE of C wakes 25, of B the other 34 (woken waiters go back to A); a stale CMP_REQUEUE value -> EAGAIN;
 *  - a condition variable built on FUTEX_CMP_REQUEUE (old glibc's broadcast: wake one, requeue the rest
 *    onto the mutex word; the three-state futex mutex) used by 64 threads for 200 generations of a
 *    barrier: every thread passes every generation;
 *  - FUTEX_WAKE_OP: each operation (SET, ADD, OR, ANDN, XOR, and with FUTEX_OP_OPARG_SHIFT) with each
 *    comparison (EQ, NE, LT, LE, GT, GE), made to hold and not to hold, with one waiter asleep on each
 *    word: the return value (1 + whether it held), the word's new value, and that the second word's
 *    waiter was woken exactly when it held; a count of 0 still wakes one, as the kernel counts;
 *  - FUTEX_WAKE_OP on a word whose page a real OS thread write-protects and unprotects in a loop: every
 *    call returns 0 (its ADD made once) or EFAULT (not made), for 300 ms;
 *  - bad calls, answered as the kernel does: an unknown operation or comparison -> ENOSYS (the latter
 *    having made the operation), an unmapped or read-only second word -> EFAULT, misaligned words ->
 *    EINVAL; CMP_REQUEUE: a negative count -> EINVAL, an unmapped first word -> EFAULT; a private
 *    REQUEUE of an unmapped first word -> 0; FUTEX_CLOCK_REALTIME on a wake -> ENOSYS; FUTEX_WAKE with a
 *    bad timeout argument ignored.
 * asyncshim-test: timeout=60 */
#include "shim_probe.h"
#include "sync_util.h"
#include "test_util.h"
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#define NWAITERS 64

static long futex(int *uaddr, int op, int val, uintptr_t val2, int *uaddr2, int val3)
{
    return syscall(SYS_futex, uaddr, op, val, val2, uaddr2, val3);
}

/* A FUTEX_WAIT made with the system call instruction itself, as code that does not go through libc does. */
static long kernel_futex_wait(int *addr, int op, int val)
{
    long ret;
    register long r10 __asm__("r10") = 0;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "0"((long)SYS_futex), "D"(addr), "S"((long)op), "d"((long)val), "r"(r10)
                     : "rcx", "r11", "memory");
    return ret;
}

/* A futex call's result for the output: its count, or its errno's name (errname has no ENOSYS). */
static const char *res(long rc, char *buf, size_t n)
{
    snprintf(buf, n, "%ld", rc);
    return rc >= 0 ? buf : errno == ENOSYS ? "ENOSYS" : errname(errno);
}

/* ---- a pool of waiters: each waits on `stage` (value 0) until told to stop, counting its wakes ---- */

struct pool {
    int *stage;      /* the word they wait on while idle */
    int pf;          /* FUTEX_PRIVATE_FLAG or 0 */
    int returned;    /* wakes counted */
    int started;
};
static struct pool *cur_pool;

static void pool_loop(struct pool *p, int kernel_call)
{
    ATOMIC_ADD(&p->started, 1);
    for (;;) {
        if (ATOMIC_LOAD(p->stage) != 0)
            return;
        long r = kernel_call ? kernel_futex_wait(p->stage, FUTEX_WAIT | p->pf, 0)
                             : (futex(p->stage, FUTEX_WAIT | p->pf, 0, 0, NULL, 0) == 0 ? 0 : -errno);
        if (r == 0)
            ATOMIC_ADD(&p->returned, 1);
        else if (r != -EAGAIN && r != -EINTR)
            fprintf(stderr, "futex wait: %s\n", errname((int)-r));
    }
}

static void *pool_thread(void *arg)
{
    (void)arg;
    pool_loop(cur_pool, 0);
    return NULL;
}

static void *pool_kernel_thread(void *arg)
{
    (void)arg;
    pool_loop(cur_pool, 1);
    return NULL;
}

/* Starts n waiters: n - 2 ordinary threads, a real OS thread through syscall() and one making the system
 * call itself. */
static void pool_start(struct pool *p, pthread_t *t, int n)
{
    cur_pool = p;
    for (int i = 0; i < n - 2; i++)
        pthread_create(&t[i], NULL, pool_thread, NULL);
    t[n - 2] = start_thread(pool_thread, 1);
    t[n - 1] = start_thread(pool_kernel_thread, 1);
    wait_at_least(&p->started, n, 1, 10000);
}

static void pool_stop(struct pool *p, pthread_t *t, int n)
{
    ATOMIC_STORE(p->stage, 1);
    futex(p->stage, FUTEX_WAKE | p->pf, INT_MAX, 0, NULL, 0);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
}

/* Moves `want` idle waiters from the stage onto `to` (FUTEX_CMP_REQUEUE with no wake, repeated until that
 * many have moved: a moved waiter is known to be asleep). Returns how many moved (want unless 10 s pass). */
static int settle(struct pool *p, int *to, int want)
{
    int moved = 0;
    int64_t deadline = mono_ns() + 10000 * 1000000LL;
    while (moved < want && mono_ns() < deadline) {
        long r = futex(p->stage, FUTEX_CMP_REQUEUE | p->pf, 0, (uintptr_t)(want - moved), to, 0);
        if (r > 0)
            moved += r;
        else
            sleep_ms(1);
    }
    return moved;
}

/* Waits until the pool has counted `n` wakes (or 5 s pass), then 20 ms more so that any wake beyond `n`
 * would be counted too. */
static int returned_settled(struct pool *p, int n)
{
    wait_at_least(&p->returned, n, 1, 5000);
    sleep_ms(20);
    return ATOMIC_LOAD(&p->returned);
}

/* ---- requeue ---- */

static int tick_count, stop_tick_count;
static void *tick_thread(void *arg)
{
    (void)arg;
    while (!ATOMIC_LOAD(&stop_tick_count)) {
        ATOMIC_ADD(&tick_count, 1);
        sleep_ms(1);
    }
    return NULL;
}

static void requeue_tests(int priv)
{
    const char *p = priv ? "private" : "shared";
    char name[200], b1[32], b2[32], b3[32], b4[32];
    const char *s1, *s2, *s3;
    int *w = priv ? calloc(4, sizeof(int)) : shared_area(4096);
    int *a = &w[0], *b = &w[1], *c = &w[2];
    struct pool pool = { .stage = a, .pf = priv ? FUTEX_PRIVATE_FLAG : 0 };
    pthread_t t[NWAITERS];
    stop_tick_count = 0;
    pthread_t ticker = start_thread(tick_thread, 0);
    pool_start(&pool, t, NWAITERS);

    int moved = settle(&pool, b, NWAITERS);
    int t0 = ATOMIC_LOAD(&tick_count);
    sleep_ms(60);
    int progressed = ATOMIC_LOAD(&tick_count) - t0;
    printf("%s: %d waiters moved from A to B\n", p, moved);
    snprintf(name, sizeof name, "%s: all %d waiters asleep and moved to B", p, NWAITERS);
    CHECK(moved == NWAITERS, name);
    snprintf(name, sizeof name, "%s: another thread runs while the waiters sleep", p);
    CHECK(progressed >= 5, name);
    fprintf(stderr, "%s: tick_count in 60 ms while %d waited: %d\n", p, NWAITERS, progressed);
    snprintf(name, sizeof name, "%s: no waiter returned while on B", p);
    CHECK(ATOMIC_LOAD(&pool.returned) == 0, name);

    errno = 0;
    long stale = futex(b, FUTEX_CMP_REQUEUE | pool.pf, 1, INT_MAX, c, 5);
    int stale_errno = errno;
    s1 = res(stale, b1, sizeof b1);
    long r1 = futex(b, FUTEX_CMP_REQUEUE | pool.pf, 3, 20, c, 0);
    s2 = res(r1, b2, sizeof b2);
    int after1 = returned_settled(&pool, 3);
    long r2 = futex(b, FUTEX_REQUEUE | pool.pf, 2, 5, c, 0);
    s3 = res(r2, b3, sizeof b3);
    int after2 = returned_settled(&pool, 5);
    printf("%s: CMP_REQUEUE stale -> %s; CMP_REQUEUE(wake 3, requeue 20) B->C -> %s, %d returned; "
           "REQUEUE(wake 2, requeue 5) B->C -> %s, %d returned in all\n",
           p, s1, s2, after1, s3, after2);
    snprintf(name, sizeof name, "%s: stale CMP_REQUEUE -> EAGAIN", p);
    CHECK(stale == -1 && stale_errno == EAGAIN, name);
    snprintf(name, sizeof name, "%s: CMP_REQUEUE returns woken + moved (23), 3 return", p);
    CHECK(r1 == 23 && after1 == 3, name);
    snprintf(name, sizeof name, "%s: REQUEUE returns woken + moved (7), 2 return", p);
    CHECK(r2 == 7 && after2 == 5, name);

    long wc = futex(c, FUTEX_WAKE | pool.pf, INT_MAX, 0, NULL, 0);
    int after3 = returned_settled(&pool, 30);
    long wb = futex(b, FUTEX_WAKE | pool.pf, INT_MAX, 0, NULL, 0);
    int after4 = returned_settled(&pool, NWAITERS);
    printf("%s: WAKE C -> %s (%d returned in all), WAKE B -> %s (%d returned in all)\n", p,
           res(wc, b1, sizeof b1), after3, res(wb, b4, sizeof b4), after4);
    snprintf(name, sizeof name, "%s: the 25 moved to C are woken by a wake of C", p);
    CHECK(wc == 25 && after3 == 30, name);
    snprintf(name, sizeof name, "%s: the other 34 are woken by a wake of B", p);
    CHECK(wb == NWAITERS - 30 && after4 == NWAITERS, name);

    pool_stop(&pool, t, NWAITERS);
    ATOMIC_STORE(&stop_tick_count, 1);
    pthread_join(ticker, NULL);
    if (priv)
        free(w);
    else
        munmap(w, 4096);
}

/* ---- a condition variable built on FUTEX_CMP_REQUEUE, used as a generation barrier ---- */

static int mx;        /* 0 free, 1 locked, 2 locked with waiters */
static int cv_seq;
static int arrived, generation, passes;
#define GENERATIONS 200

static void mx_lock(void)
{
    int c = __sync_val_compare_and_swap(&mx, 0, 1);
    if (c == 0)
        return;
    if (c != 2)
        c = __atomic_exchange_n(&mx, 2, __ATOMIC_ACQUIRE);
    while (c != 0) {
        futex(&mx, FUTEX_WAIT_PRIVATE, 2, 0, NULL, 0);
        c = __atomic_exchange_n(&mx, 2, __ATOMIC_ACQUIRE);
    }
}

/* After a condition wait: a requeued waiter may be one of several on the mutex word, so it takes the
 * mutex as contended (its unlock then wakes the next). */
static void mx_lock_contended(void)
{
    while (__atomic_exchange_n(&mx, 2, __ATOMIC_ACQUIRE) != 0)
        futex(&mx, FUTEX_WAIT_PRIVATE, 2, 0, NULL, 0);
}

static void mx_unlock(void)
{
    if (__atomic_exchange_n(&mx, 0, __ATOMIC_RELEASE) == 2)
        futex(&mx, FUTEX_WAKE_PRIVATE, 1, 0, NULL, 0);
}

static void cv_wait(void)
{
    int s = ATOMIC_LOAD(&cv_seq);
    mx_unlock();
    futex(&cv_seq, FUTEX_WAIT_PRIVATE, s, 0, NULL, 0);
    mx_lock_contended();
}

static int broadcast_fallbacks;
static void cv_broadcast(void)
{
    int s = ATOMIC_ADD(&cv_seq, 1);
    if (futex(&cv_seq, FUTEX_CMP_REQUEUE_PRIVATE, 1, INT_MAX, &mx, s) < 0) {
        broadcast_fallbacks++;
        futex(&cv_seq, FUTEX_WAKE_PRIVATE, INT_MAX, 0, NULL, 0);
    }
}

static void *barrier_thread(void *arg)
{
    (void)arg;
    for (int g = 0; g < GENERATIONS; g++) {
        mx_lock();
        passes++;
        if (++arrived == NWAITERS) {
            arrived = 0;
            generation++;
            cv_broadcast();
        } else {
            while (generation == g)
                cv_wait();
        }
        mx_unlock();
    }
    return NULL;
}

static void condvar_test(void)
{
    pthread_t t[NWAITERS];
    int64_t t0 = mono_ns();
    for (int i = 0; i < NWAITERS - 1; i++)
        pthread_create(&t[i], NULL, barrier_thread, NULL);
    t[NWAITERS - 1] = start_thread(barrier_thread, 1);
    for (int i = 0; i < NWAITERS; i++)
        pthread_join(t[i], NULL);
    printf("requeue condition variable: %d generations, %d passes\n", generation, passes);
    fprintf(stderr, "requeue condition variable: %.1f ms, %d broadcasts fell back to a wake\n",
           (mono_ns() - t0) / 1e6, broadcast_fallbacks);
    CHECK(generation == GENERATIONS && passes == GENERATIONS * NWAITERS,
          "requeue condition variable: every thread passes every generation");
}

/* ---- FUTEX_WAKE_OP ---- */

#define ENC(op, oparg, cmp, cmparg) \
    ((int)(((unsigned)(op) << 28) | ((unsigned)(cmp) << 24) | (((unsigned)(oparg) & 0xfff) << 12) | ((unsigned)(cmparg) & 0xfff)))

static int apply(int op, int shift, int oparg, int old)
{
    if (shift)
        oparg = 1 << oparg;
    switch (op) {
    case FUTEX_OP_SET: return oparg;
    case FUTEX_OP_ADD: return (int)((unsigned)old + (unsigned)oparg);
    case FUTEX_OP_OR: return old | oparg;
    case FUTEX_OP_ANDN: return old & ~oparg;
    default: return old ^ oparg;
    }
}

static int compare(int cmp, int old, int arg)
{
    switch (cmp) {
    case FUTEX_OP_CMP_EQ: return old == arg;
    case FUTEX_OP_CMP_NE: return old != arg;
    case FUTEX_OP_CMP_LT: return old < arg;
    case FUTEX_OP_CMP_LE: return old <= arg;
    case FUTEX_OP_CMP_GT: return old > arg;
    default: return old >= arg;
    }
}

static void wake_op_tests(void)
{
    static const char *ops[] = { "SET", "ADD", "OR", "ANDN", "XOR" };
    static const char *cmps[] = { "EQ", "NE", "LT", "LE", "GT", "GE" };
    int *w = calloc(4, sizeof(int));
    int *u1 = &w[1], *u2 = &w[2];
    struct pool pool = { .stage = &w[0], .pf = FUTEX_PRIVATE_FLAG };
    pthread_t t[4];
    pool_start(&pool, t, 4);
    int expected_returns = 0, bad = 0, cases = 0;
    for (int op = 0; op <= FUTEX_OP_XOR; op++) {
        for (int shift = 0; shift <= 1; shift++) {
            for (int cmp = 0; cmp <= FUTEX_OP_CMP_GE; cmp++) {
                for (int want = 0; want <= 1; want++) {
                    int old = 6, oparg = shift ? 4 : 3;
                    /* a comparison argument for which `cmp` of the old value gives `want` */
                    int cmparg = 0, found = 0;
                    for (int c = -3; c <= 10 && !found; c++)
                        if (compare(cmp, old, c) == want)
                            cmparg = c, found = 1;
                    int s1 = settle(&pool, u1, 1), s2 = settle(&pool, u2, 1);
                    *u2 = old;
                    int enc = ENC(op, oparg, cmp, cmparg) | (shift ? (FUTEX_OP_OPARG_SHIFT << 28) : 0);
                    long r = futex(u1, FUTEX_WAKE_OP_PRIVATE, 1, 1, u2, enc);
                    int val = *u2;
                    long rest = futex(u2, FUTEX_WAKE_PRIVATE, 1, 0, NULL, 0);
                    expected_returns += 2;
                    int got = returned_settled(&pool, expected_returns);
                    int ok = s1 == 1 && s2 == 1 && r == 1 + want && val == apply(op, shift, oparg, old) &&
                             rest == 1 - want && got == expected_returns;
                    printf("WAKE_OP %s%s %d, %s %d on %d: -> %ld, word %d, other wake %ld%s\n", ops[op],
                           shift ? "|OPARG_SHIFT" : "", oparg, cmps[cmp], cmparg, old, r, val, rest,
                           ok ? "" : " WRONG");
                    bad += !ok;
                    cases++;
                }
            }
        }
    }
    char name[120];
    snprintf(name, sizeof name, "WAKE_OP: %d cases (5 ops, with and without OPARG_SHIFT, 6 comparisons), all right",
             cases);
    CHECK(bad == 0, name);

    /* counts of 0 wake one: the kernel counts after each wake */
    int s1 = settle(&pool, u1, 1), s2 = settle(&pool, u2, 1);
    *u2 = 0;
    long r0 = futex(u1, FUTEX_WAKE_OP_PRIVATE, 0, 0, u2, ENC(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_EQ, 0));
    expected_returns += 2;
    int got = returned_settled(&pool, expected_returns);
    printf("WAKE_OP with counts 0 and a holding comparison -> %ld, word %d, %d returned\n", r0, *u2,
           got - expected_returns + 2);
    CHECK(s1 == 1 && s2 == 1 && r0 == 2 && *u2 == 1 && got == expected_returns, "WAKE_OP counts of 0 wake one each");
    int s3 = settle(&pool, u1, 2);
    long wz = futex(u1, FUTEX_WAKE_PRIVATE, 0, 0, NULL, 0);
    long wn = futex(u1, FUTEX_WAKE_PRIVATE, -1, 0, NULL, 0);
    expected_returns += 2;
    got = returned_settled(&pool, expected_returns);
    printf("FUTEX_WAKE of 0 -> %ld, of -1 -> %ld\n", wz, wn);
    CHECK(s3 == 2 && wz == 1 && wn == 1 && got == expected_returns, "FUTEX_WAKE of 0 or a negative count wakes one");

    /* the operand as a shift count out of range: the kernel takes it modulo 32 */
    *u2 = 0;
    long rs = futex(u1, FUTEX_WAKE_OP_PRIVATE, 1, 1, u2,
                    ENC(FUTEX_OP_SET, 40, FUTEX_OP_CMP_EQ, 0) | (FUTEX_OP_OPARG_SHIFT << 28));
    printf("WAKE_OP SET|OPARG_SHIFT 40 -> %ld, word %#x\n", rs, (unsigned)*u2);
    CHECK(rs == 0 && *u2 == 0x100, "WAKE_OP shift 40 sets bit 8");
    pool_stop(&pool, t, 4);
    free(w);
}

/* ---- WAKE_OP on a word whose page another thread write-protects and unprotects meanwhile ---- */

static int *toggled;
static int stop_toggling;
static void *toggler(void *arg)
{
    (void)arg;
    while (!ATOMIC_LOAD(&stop_toggling)) {
        mprotect(toggled, 4096, PROT_READ);
        mprotect(toggled, 4096, PROT_READ | PROT_WRITE);
    }
    return NULL;
}

static void wake_op_racing_mprotect(void)
{
    static int w1;
    toggled = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    stop_toggling = 0;
    pthread_t t = start_thread(toggler, 1);
    int ok = 0, efault = 0, other = 0;
    int64_t end = mono_ns() + 300 * 1000000LL;
    while (mono_ns() < end) {
        long r = futex(&w1, FUTEX_WAKE_OP_PRIVATE, 1, 1, toggled, ENC(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_EQ, 0));
        if (r == 0)
            ok++;
        else if (r == -1 && errno == EFAULT)
            efault++;
        else
            other++;
    }
    ATOMIC_STORE(&stop_toggling, 1);
    pthread_join(t, NULL);
    fprintf(stderr, "WAKE_OP racing mprotect: %d made, %d EFAULT, %d other; word %d\n", ok, efault, other, *toggled);
    CHECK(other == 0 && *toggled == ok,
          "WAKE_OP on a word being write-protected meanwhile: each call made once (0) or EFAULT");
    munmap(toggled, 4096);
}

/* ---- bad calls ---- */

static void bad_calls(void)
{
    char b[32];
    static int w1 = 0, w2[2] = { 5, 0 };
    int *unmapped = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct {
        const char *what;
        int *u1, op, val;
        uintptr_t val2;
        int *u2, val3;
    } calls[] = {
        { "WAKE_OP unknown op", &w1, FUTEX_WAKE_OP_PRIVATE, 1, 1, &w2[0], ENC(6, 1, 0, 0) },
        { "WAKE_OP unknown op, unmapped second word", &w1, FUTEX_WAKE_OP_PRIVATE, 1, 1, unmapped, ENC(7, 1, 0, 0) },
        { "WAKE_OP unknown comparison (SET 7 made)", &w1, FUTEX_WAKE_OP_PRIVATE, 1, 1, &w2[0], ENC(0, 7, 9, 0) },
        { "WAKE_OP unmapped second word", &w1, FUTEX_WAKE_OP_PRIVATE, 1, 1, unmapped, ENC(1, 1, 0, 0) },
        { "WAKE_OP read-only second word", &w1, FUTEX_WAKE_OP_PRIVATE, 1, 1, ro, ENC(1, 1, 0, 0) },
        { "WAKE_OP misaligned second word", &w1, FUTEX_WAKE_OP_PRIVATE, 1, 1, (int *)((char *)w2 + 2), ENC(1, 1, 0, 0) },
        { "WAKE_OP misaligned first word", (int *)((char *)&w1 + 1), FUTEX_WAKE_OP_PRIVATE, 1, 1, &w2[0], ENC(1, 1, 0, 0) },
        { "WAKE_OP private, unmapped first word", unmapped, FUTEX_WAKE_OP_PRIVATE, 1, 1, &w2[1], ENC(1, 1, 0, 0) },
        { "WAKE_OP shared, unmapped first word", unmapped, FUTEX_WAKE_OP, 1, 1, &w2[1], ENC(1, 1, 0, 0) },
        { "WAKE_OP shared, unmapped second word", &w1, FUTEX_WAKE_OP, 1, 1, unmapped, ENC(1, 1, 0, 0) },
        { "WAKE_OP with CLOCK_REALTIME", &w1, FUTEX_WAKE_OP_PRIVATE | FUTEX_CLOCK_REALTIME, 1, 1, &w2[1], ENC(1, 1, 0, 0) },
        { "CMP_REQUEUE value mismatch", &w1, FUTEX_CMP_REQUEUE_PRIVATE, 1, 1, &w2[1], 1 },
        { "CMP_REQUEUE negative wake count", &w1, FUTEX_CMP_REQUEUE_PRIVATE, -1, 1, &w2[1], 0 },
        { "CMP_REQUEUE requeue count 0x80000000", &w1, FUTEX_CMP_REQUEUE_PRIVATE, 1, 0x80000000u, &w2[1], 0 },
        { "CMP_REQUEUE requeue count 2^32 + 1", &w1, FUTEX_CMP_REQUEUE_PRIVATE, 1, (uintptr_t)1 << 32 | 1, &w2[1], 0 },
        { "CMP_REQUEUE unmapped first word", unmapped, FUTEX_CMP_REQUEUE_PRIVATE, 1, 1, &w2[1], 0 },
        { "CMP_REQUEUE misaligned second word, mismatch", &w1, FUTEX_CMP_REQUEUE_PRIVATE, 1, 1, (int *)((char *)w2 + 1), 3 },
        { "CMP_REQUEUE shared, unmapped second word", &w1, FUTEX_CMP_REQUEUE, 1, 1, unmapped, 0 },
        { "REQUEUE private, unmapped first word", unmapped, FUTEX_REQUEUE_PRIVATE, 1, 1, &w2[1], 0 },
        { "REQUEUE shared, unmapped first word", unmapped, FUTEX_REQUEUE, 1, 1, &w2[1], 0 },
        { "WAKE with CLOCK_REALTIME", &w1, FUTEX_WAKE_PRIVATE | FUTEX_CLOCK_REALTIME, 1, 0, NULL, 0 },
        { "WAIT with CLOCK_REALTIME", &w1, FUTEX_WAIT_PRIVATE | FUTEX_CLOCK_REALTIME, 0, 0, NULL, 0 },
        { "WAIT, changed value, unmapped timeout", &w1, FUTEX_WAIT_PRIVATE, 1, (uintptr_t)unmapped, NULL, 0 },
        { "WAKE, unmapped timeout argument (ignored)", &w1, FUTEX_WAKE_PRIVATE, 1, (uintptr_t)unmapped, NULL, 0 },
    };
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        errno = 0;
        long r = futex(calls[i].u1, calls[i].op, calls[i].val, calls[i].val2, calls[i].u2, calls[i].val3);
        printf("%s -> %s\n", calls[i].what, res(r, b, sizeof b));
    }
    printf("word after the unknown comparison: %d\n", w2[0]);
    munmap(unmapped, 4096);
    munmap(ro, 4096);
}

int main(void)
{
    test_init();
    bad_calls();
    requeue_tests(1);
    requeue_tests(0);
    condvar_test();
    wake_op_tests();
    wake_op_racing_mprotect();
    return test_exit_status();
}
