/* sync_mutex: pthread mutexes of every type behave as natively, also when the holder switches out.
 *  - mutual exclusion: for each of the four static initialisers (PTHREAD_MUTEX_INITIALIZER,
 *    PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP, PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP,
 *    PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP) and for pthread_mutex_init with a NULL attribute and with
 *    attributes of type NORMAL, RECURSIVE, ERRORCHECK, DEFAULT and ADAPTIVE_NP: 16 threads x 20,000
 *    iterations read a counter, write it back plus one, all under the lock (the recursive ones lock
 *    twice); every 1000 iterations the holder calls sched_yield() or usleep(0) between the read and the
 *    write, so it switches out while holding the lock. The counter must be exactly 320,000 and no two
 *    threads may ever be inside together;
 *  - recursive: depth 5 (lock, lock, lock, trylock, timedlock), another thread's trylock is EBUSY until
 *    the fifth unlock, a thread blocked in pthread_mutex_lock gets it only after the fifth unlock, a
 *    sixth unlock is EPERM, unlock by a non-owner is EPERM;
 *  - errorcheck: relock EDEADLK, trylock by the owner EBUSY, timedlock by the owner EDEADLK, unlock by a
 *    non-owner EPERM, unlock of an unlocked mutex EPERM;
 *  - trylock of a mutex held by another thread is EBUSY for every type;
 *  - pthread_mutex_timedlock (CLOCK_REALTIME), pthread_mutex_clocklock with CLOCK_MONOTONIC and with
 *    CLOCK_REALTIME, while another thread holds the mutex for 300 ms: a 100 ms deadline gives ETIMEDOUT
 *    no earlier than the deadline on that clock; a deadline in the past ETIMEDOUT; tv_nsec = 1e9 EINVAL;
 *    a far deadline succeeds once the holder lets go;
 *  - clocklock with CLOCK_PROCESS_CPUTIME_ID or an unknown clock is EINVAL (also on a free mutex);
 *  - destroy of a mutex locked by its owner or by another thread is EBUSY, of an unlocked one 0;
 *  - a process-shared mutex in MAP_SHARED memory held by a forked child for 200 ms: the parent's
 *    pthread_mutex_lock (and two threads of the parent) get it only after the child unlocks.
 * Timings go to stderr; stdout has only booleans and errno names.
 * asyncshim-test: timeout=60 */
#include "shim_probe.h"
#include "sync_util.h"
#include "test_util.h"
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define MS 1000000LL
#define THREADS 16
#define ITERS 20000

/* ---- helpers ---- */

static void mutex_init_type(pthread_mutex_t *m, int type)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, type);
    pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
}

/* A thread that runs one trylock (unlocking again on success) and returns its result. */
static void *trylock_body(void *arg)
{
    pthread_mutex_t *m = arg;
    int rc = pthread_mutex_trylock(m);
    if (rc == 0)
        pthread_mutex_unlock(m);
    return (void *)(intptr_t)rc;
}

static int trylock_in_thread(pthread_mutex_t *m)
{
    pthread_t t;
    void *res;
    pthread_create(&t, NULL, trylock_body, m);
    pthread_join(t, &res);
    return (int)(intptr_t)res;
}

static void *unlock_body(void *arg)
{
    return (void *)(intptr_t)pthread_mutex_unlock(arg);
}

static int unlock_in_thread(pthread_mutex_t *m)
{
    pthread_t t;
    void *res;
    pthread_create(&t, NULL, unlock_body, m);
    pthread_join(t, &res);
    return (int)(intptr_t)res;
}

static int lock_mutex(void *m)
{
    return pthread_mutex_lock((pthread_mutex_t *)m);
}

static int unlock_mutex(void *m)
{
    return pthread_mutex_unlock((pthread_mutex_t *)m);
}

/* A holder thread (sync_util.h): locks m, holds it at least hold_ms and until `release` is set. */
static void holder_start(struct holder *h, pthread_mutex_t *m, long hold_ms)
{
    holder_start_with(h, lock_mutex, unlock_mutex, m, hold_ms, 0);
}

/* ---- mutual exclusion under contention ---- */

struct counter_run {
    pthread_mutex_t *m;
    int nested; /* lock twice (recursive mutexes) */
    int gate;
    long counter;
    int inside, overlaps, errors;
};

static void *counter_body(void *arg)
{
    struct counter_run *c = arg;
    while (!ATOMIC_LOAD(&c->gate))
        sleep_ms(1);
    for (int i = 0; i < ITERS; i++) {
        if (pthread_mutex_lock(c->m) != 0)
            ATOMIC_ADD(&c->errors, 1);
        if (c->nested && pthread_mutex_lock(c->m) != 0)
            ATOMIC_ADD(&c->errors, 1);
        if (ATOMIC_ADD(&c->inside, 1) != 1)
            ATOMIC_ADD(&c->overlaps, 1);
        long v = c->counter;
        if (i % 1000 == 500) {
            /* switch out while holding the lock */
            if ((i / 1000) % 2)
                sched_yield();
            else
                usleep(0);
        }
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        c->counter = v + 1;
        ATOMIC_ADD(&c->inside, -1);
        if (c->nested && pthread_mutex_unlock(c->m) != 0)
            ATOMIC_ADD(&c->errors, 1);
        if (pthread_mutex_unlock(c->m) != 0)
            ATOMIC_ADD(&c->errors, 1);
    }
    return NULL;
}

static void counter_test(const char *label, pthread_mutex_t *m, int nested)
{
    struct counter_run c = { .m = m, .nested = nested };
    pthread_t th[THREADS];
    int64_t t0 = mono_ns();
    for (int i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, counter_body, &c);
    sleep_ms(10);
    ATOMIC_STORE(&c.gate, 1);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    fprintf(stderr, "%s: counter %ld, overlaps %d, errors %d, %.1f ms\n", label, c.counter, c.overlaps,
            c.errors, (mono_ns() - t0) / 1e6);
    char name[160];
    snprintf(name, sizeof name, "%s: 16 threads x 20000 increments = 320000, exclusive, no errors", label);
    CHECK(c.counter == (long)THREADS * ITERS && c.overlaps == 0 && c.errors == 0, name);
}

static pthread_mutex_t s_plain = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t s_recursive = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static pthread_mutex_t s_errorcheck = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
static pthread_mutex_t s_adaptive = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP;

/* ---- recursive ---- */

static int blocked_started, blocked_got;
static void *blocking_locker(void *arg)
{
    pthread_mutex_t *m = arg;
    ATOMIC_STORE(&blocked_started, 1);
    int rc = pthread_mutex_lock(m);
    ATOMIC_STORE(&blocked_got, 1);
    if (rc == 0)
        rc = pthread_mutex_unlock(m);
    return (void *)(intptr_t)rc;
}

static void recursive_tests(void)
{
    pthread_mutex_t m;
    mutex_init_type(&m, PTHREAD_MUTEX_RECURSIVE);
    struct timespec far = deadline_in(CLOCK_REALTIME, 10000);
    int r1 = pthread_mutex_lock(&m), r2 = pthread_mutex_lock(&m), r3 = pthread_mutex_lock(&m);
    int r4 = pthread_mutex_trylock(&m), r5 = pthread_mutex_timedlock(&m, &far);
    CHECK(r1 == 0 && r2 == 0 && r3 == 0 && r4 == 0 && r5 == 0,
          "recursive: lock x3, trylock and timedlock by the owner all 0 (depth 5)");
    int rc = trylock_in_thread(&m);
    printf("recursive depth 5: trylock by another thread: %s\n", errname(rc));
    CHECK(rc == EBUSY, "recursive: trylock by another thread -> EBUSY");
    rc = unlock_in_thread(&m);
    printf("recursive: unlock by a non-owner: %s\n", errname(rc));
    CHECK(rc == EPERM, "recursive: unlock by a non-owner -> EPERM");

    pthread_t t;
    void *res;
    pthread_create(&t, NULL, blocking_locker, &m);
    wait_at_least(&blocked_started, 1, 1, 10000); /* then 50 ms before each unlock to get blocked */
    int still_blocked = 1, unlocks_ok = 1;
    for (int i = 0; i < 4; i++) {
        sleep_ms(50);
        if (ATOMIC_LOAD(&blocked_got) == 1)
            still_blocked = 0;
        if (pthread_mutex_unlock(&m) != 0)
            unlocks_ok = 0;
    }
    sleep_ms(50);
    if (ATOMIC_LOAD(&blocked_got) == 1)
        still_blocked = 0;
    rc = trylock_in_thread(&m);
    CHECK(unlocks_ok, "recursive: 4 unlocks -> 0");
    CHECK(still_blocked, "recursive: a blocked locker waits through the first 4 unlocks");
    CHECK(rc == EBUSY, "recursive: trylock by another thread at depth 1 -> EBUSY");
    CHECK(pthread_mutex_unlock(&m) == 0, "recursive: fifth unlock -> 0");
    pthread_join(t, &res);
    CHECK(ATOMIC_LOAD(&blocked_got) == 1 && (int)(intptr_t)res == 0,
          "recursive: the blocked locker gets it after the fifth unlock");
    rc = pthread_mutex_unlock(&m);
    printf("recursive: sixth unlock: %s\n", errname(rc));
    CHECK(rc == EPERM, "recursive: unlock of an unlocked recursive mutex -> EPERM");
    CHECK(trylock_in_thread(&m) == 0, "recursive: trylock by another thread once free -> 0");
    CHECK(pthread_mutex_destroy(&m) == 0, "recursive: destroy -> 0");
}

/* ---- errorcheck ---- */

static void errorcheck_tests(pthread_mutex_t *m, const char *label)
{
    char name[160];
    struct timespec far = deadline_in(CLOCK_REALTIME, 10000);
    CHECK(pthread_mutex_lock(m) == 0, label);
    int relock = pthread_mutex_lock(m);
    int trylock = pthread_mutex_trylock(m);
    int timed = pthread_mutex_timedlock(m, &far);
    int other = unlock_in_thread(m);
    printf("%s: relock %s, trylock %s, timedlock %s, unlock by non-owner %s\n", label, errname(relock),
           errname(trylock), errname(timed), errname(other));
    snprintf(name, sizeof name, "%s: relock by the owner -> EDEADLK", label);
    CHECK(relock == EDEADLK, name);
    snprintf(name, sizeof name, "%s: trylock by the owner -> EBUSY", label);
    CHECK(trylock == EBUSY, name);
    snprintf(name, sizeof name, "%s: timedlock by the owner -> EDEADLK", label);
    CHECK(timed == EDEADLK, name);
    snprintf(name, sizeof name, "%s: unlock by a non-owner -> EPERM", label);
    CHECK(other == EPERM, name);
    snprintf(name, sizeof name, "%s: unlock by the owner -> 0", label);
    CHECK(pthread_mutex_unlock(m) == 0, name);
    int again = pthread_mutex_unlock(m);
    printf("%s: unlock of an unlocked mutex: %s\n", label, errname(again));
    snprintf(name, sizeof name, "%s: unlock of an unlocked mutex -> EPERM", label);
    CHECK(again == EPERM, name);
}

/* ---- timed locking ---- */

enum how { TIMEDLOCK, CLOCK_MONO, CLOCK_REAL };
static const char *how_name[] = { "pthread_mutex_timedlock", "pthread_mutex_clocklock(MONOTONIC)",
                                  "pthread_mutex_clocklock(REALTIME)" };

static int timed_lock(pthread_mutex_t *m, enum how how, const struct timespec *ts)
{
    switch (how) {
    case TIMEDLOCK: return pthread_mutex_timedlock(m, ts);
    case CLOCK_MONO: return pthread_mutex_clocklock(m, CLOCK_MONOTONIC, ts);
    default: return pthread_mutex_clocklock(m, CLOCK_REALTIME, ts);
    }
}

static void timed_tests(pthread_mutex_t *m, const char *label, enum how how)
{
    char name[200];
    clockid_t clk = how == CLOCK_MONO ? CLOCK_MONOTONIC : CLOCK_REALTIME;
    struct holder h;
    holder_start(&h, m, 300);

    struct timespec dl = deadline_in(clk, 100);
    int64_t t0 = mono_ns();
    int rc = timed_lock(m, how, &dl);
    int64_t after = now_ns(clk), waited = mono_ns() - t0;
    int still_held = !ATOMIC_LOAD(&h.released);
    fprintf(stderr, "%s %s: 100 ms deadline: %s after %.1f ms (%.1f ms past the deadline)\n", label,
            how_name[how], errname(rc), waited / 1e6, (after - ts_ns(&dl)) / 1e6);
    snprintf(name, sizeof name, "%s %s: ETIMEDOUT while another thread holds it", label, how_name[how]);
    CHECK(rc == ETIMEDOUT && still_held, name);
    snprintf(name, sizeof name, "%s %s: waited at least until the deadline", label, how_name[how]);
    CHECK(after >= ts_ns(&dl) && waited >= 100 * MS - 1 * MS, name);

    struct timespec past = { 1, 0 };
    int rc_past = timed_lock(m, how, &past);
    struct timespec bad = deadline_in(clk, 1000);
    bad.tv_nsec = 1000000000L;
    int rc_big = timed_lock(m, how, &bad);
    bad.tv_nsec = -1;
    int rc_neg = timed_lock(m, how, &bad);
    printf("%s %s while held: 100 ms deadline %s, past deadline %s, tv_nsec 1e9 %s, tv_nsec -1 %s\n", label,
           how_name[how], errname(rc), errname(rc_past), errname(rc_big), errname(rc_neg));
    snprintf(name, sizeof name, "%s %s: past deadline -> ETIMEDOUT", label, how_name[how]);
    CHECK(rc_past == ETIMEDOUT, name);
    snprintf(name, sizeof name, "%s %s: tv_nsec = 1e9 or -1 -> EINVAL", label, how_name[how]);
    CHECK(rc_big == EINVAL && rc_neg == EINVAL, name);

    /* a far deadline: gets the mutex when the holder lets go */
    ATOMIC_STORE(&h.release, 1);
    struct timespec far = deadline_in(clk, 20000);
    t0 = mono_ns();
    rc = timed_lock(m, how, &far);
    int released = ATOMIC_LOAD(&h.released);
    fprintf(stderr, "%s %s: far deadline: %s after %.1f ms\n", label, how_name[how], errname(rc),
            (mono_ns() - t0) / 1e6);
    snprintf(name, sizeof name, "%s %s: far deadline -> 0 once the holder unlocks", label, how_name[how]);
    CHECK(rc == 0 && released, name);
    if (rc == 0)
        pthread_mutex_unlock(m);
    snprintf(name, sizeof name, "%s %s: holder locked and unlocked -> 0", label, how_name[how]);
    CHECK(holder_finish(&h), name);
}

/* ---- process-shared mutex across fork ---- */

struct shared_area {
    pthread_mutex_t m;
    int child_holds, child_unlocked;
    int parent_got_early;
};

static void *pshared_locker(void *arg)
{
    struct shared_area *sa = arg;
    int rc = pthread_mutex_lock(&sa->m);
    if (!ATOMIC_LOAD(&sa->child_unlocked))
        ATOMIC_ADD(&sa->parent_got_early, 1);
    sched_yield();
    if (rc == 0)
        rc = pthread_mutex_unlock(&sa->m);
    return (void *)(intptr_t)rc;
}

static void pshared_test(void)
{
    struct shared_area *sa =
        mmap(NULL, sizeof *sa, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (!CHECK(sa != MAP_FAILED, "pshared: mmap"))
        return;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    int ps = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    CHECK(ps == 0 && pthread_mutex_init(&sa->m, &a) == 0, "pshared: init a process-shared errorcheck mutex");
    pthread_mutexattr_destroy(&a);

    pid_t pid = fork();
    if (pid == 0) {
        if (pthread_mutex_lock(&sa->m) != 0)
            _exit(2);
        ATOMIC_STORE(&sa->child_holds, 1);
        sleep_ms(200);
        ATOMIC_STORE(&sa->child_unlocked, 1);
        _exit(pthread_mutex_unlock(&sa->m) == 0 ? 0 : 3);
    }
    CHECK(pid > 0, "pshared: fork");
    if (pid < 0)
        return;
    wait_at_least(&sa->child_holds, 1, 1, 10000);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, pshared_locker, sa);
    int trylock = pthread_mutex_trylock(&sa->m);
    printf("pshared: trylock while the child holds it: %s\n", errname(trylock));
    CHECK(trylock == EBUSY, "pshared: trylock while the child holds it -> EBUSY");
    int rc = pthread_mutex_lock(&sa->m);
    int early = !ATOMIC_LOAD(&sa->child_unlocked);
    if (rc == 0)
        rc = pthread_mutex_unlock(&sa->m);
    CHECK(rc == 0 && !early, "pshared: the parent's lock succeeds only after the child unlocks");
    int thr_ok = 1;
    for (int i = 0; i < 2; i++) {
        void *res;
        pthread_join(t[i], &res);
        if ((int)(intptr_t)res != 0)
            thr_ok = 0;
    }
    CHECK(thr_ok && ATOMIC_LOAD(&sa->parent_got_early) == 0,
          "pshared: two parent threads get it only after the child unlocks");
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    printf("pshared: child status: exit %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "pshared: the child locked and unlocked it");
    CHECK(pthread_mutex_destroy(&sa->m) == 0, "pshared: destroy -> 0");
    munmap(sa, sizeof *sa);
}

int main(void)
{
    test_init();
    fprintf(stderr, "under shim: %d, workers %d\n", under_shim(), shim_workers());

    /* types read back from attributes */
    {
        pthread_mutexattr_t a;
        int type = -1;
        pthread_mutexattr_init(&a);
        pthread_mutexattr_gettype(&a, &type);
        CHECK(type == PTHREAD_MUTEX_DEFAULT, "mutexattr default type is PTHREAD_MUTEX_DEFAULT");
        CHECK(pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE) == 0 &&
                  pthread_mutexattr_gettype(&a, &type) == 0 && type == PTHREAD_MUTEX_RECURSIVE,
              "mutexattr settype RECURSIVE reads back");
        int rc = pthread_mutexattr_settype(&a, 12345);
        printf("mutexattr settype 12345: %s\n", errname(rc));
        CHECK(rc == EINVAL, "mutexattr settype with an unknown type -> EINVAL");
        pthread_mutexattr_destroy(&a);
    }

    /* mutual exclusion, holder switching out inside the critical section */
    pthread_mutex_t d_null, d_normal, d_recursive, d_errorcheck, d_default, d_adaptive;
    pthread_mutex_init(&d_null, NULL);
    mutex_init_type(&d_normal, PTHREAD_MUTEX_NORMAL);
    mutex_init_type(&d_recursive, PTHREAD_MUTEX_RECURSIVE);
    mutex_init_type(&d_errorcheck, PTHREAD_MUTEX_ERRORCHECK);
    mutex_init_type(&d_default, PTHREAD_MUTEX_DEFAULT);
    mutex_init_type(&d_adaptive, PTHREAD_MUTEX_ADAPTIVE_NP);
    counter_test("PTHREAD_MUTEX_INITIALIZER", &s_plain, 0);
    counter_test("PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP", &s_recursive, 1);
    counter_test("PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP", &s_errorcheck, 0);
    counter_test("PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP", &s_adaptive, 0);
    counter_test("init(NULL)", &d_null, 0);
    counter_test("init(NORMAL)", &d_normal, 0);
    counter_test("init(RECURSIVE)", &d_recursive, 1);
    counter_test("init(ERRORCHECK)", &d_errorcheck, 0);
    counter_test("init(DEFAULT)", &d_default, 0);
    counter_test("init(ADAPTIVE_NP)", &d_adaptive, 0);

    /* recursive and errorcheck semantics */
    recursive_tests();
    errorcheck_tests(&s_errorcheck, "PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP");
    errorcheck_tests(&d_errorcheck, "init(ERRORCHECK)");
    {
        int rc = pthread_mutex_unlock(&s_recursive);
        CHECK(rc == EPERM, "PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP: unlock of an unlocked mutex -> EPERM");
        pthread_mutex_lock(&s_recursive);
        pthread_mutex_lock(&s_recursive);
        rc = unlock_in_thread(&s_recursive);
        CHECK(rc == EPERM, "PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP: unlock by a non-owner -> EPERM");
        CHECK(pthread_mutex_unlock(&s_recursive) == 0 && pthread_mutex_unlock(&s_recursive) == 0,
              "PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP: two unlocks after two locks -> 0");
    }

    /* trylock of a mutex held by another thread */
    {
        struct {
            const char *label;
            pthread_mutex_t *m;
        } all[] = {
            { "PTHREAD_MUTEX_INITIALIZER", &s_plain },
            { "PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP", &s_recursive },
            { "PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP", &s_errorcheck },
            { "PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP", &s_adaptive },
            { "init(NULL)", &d_null },
            { "init(NORMAL)", &d_normal },
            { "init(RECURSIVE)", &d_recursive },
            { "init(ERRORCHECK)", &d_errorcheck },
            { "init(DEFAULT)", &d_default },
            { "init(ADAPTIVE_NP)", &d_adaptive },
        };
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
            struct holder h;
            char name[160];
            holder_start(&h, all[i].m, 0);
            int rc = pthread_mutex_trylock(all[i].m);
            int d = pthread_mutex_destroy(all[i].m);
            printf("%s held by another thread: trylock %s, destroy %s\n", all[i].label, errname(rc), errname(d));
            snprintf(name, sizeof name, "%s: trylock while another thread holds it -> EBUSY", all[i].label);
            CHECK(rc == EBUSY, name);
            snprintf(name, sizeof name, "%s: destroy while another thread holds it -> EBUSY", all[i].label);
            CHECK(d == EBUSY, name);
            snprintf(name, sizeof name, "%s: the holder locked and unlocked", all[i].label);
            CHECK(holder_finish(&h), name);
            /* destroy while locked by the owner */
            pthread_mutex_lock(all[i].m);
            d = pthread_mutex_destroy(all[i].m);
            snprintf(name, sizeof name, "%s: destroy while the caller holds it -> EBUSY", all[i].label);
            CHECK(d == EBUSY, name);
            pthread_mutex_unlock(all[i].m);
        }
    }

    /* timed locking while another thread holds the mutex for 300 ms */
    for (int how = TIMEDLOCK; how <= CLOCK_REAL; how++) {
        timed_tests(&d_normal, "init(NORMAL)", how);
        timed_tests(&s_recursive, "PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP", how);
        timed_tests(&d_errorcheck, "init(ERRORCHECK)", how);
    }
    /* clocklock with an unsupported clock, on a free and on a held mutex */
    {
        struct timespec ts = deadline_in(CLOCK_MONOTONIC, 1000);
        int a = pthread_mutex_clocklock(&d_normal, CLOCK_PROCESS_CPUTIME_ID, &ts);
        if (a == 0)
            pthread_mutex_unlock(&d_normal);
        int b = pthread_mutex_clocklock(&d_normal, (clockid_t)12345, &ts);
        if (b == 0)
            pthread_mutex_unlock(&d_normal);
        printf("clocklock on a free mutex: CLOCK_PROCESS_CPUTIME_ID %s, clock 12345 %s\n", errname(a), errname(b));
        CHECK(a == EINVAL && b == EINVAL, "clocklock with an unsupported clock on a free mutex -> EINVAL");
        struct holder h;
        holder_start(&h, &d_normal, 0);
        a = pthread_mutex_clocklock(&d_normal, CLOCK_PROCESS_CPUTIME_ID, &ts);
        b = pthread_mutex_clocklock(&d_normal, (clockid_t)12345, &ts);
        CHECK(a == EINVAL && b == EINVAL, "clocklock with an unsupported clock on a held mutex -> EINVAL");
        CHECK(holder_finish(&h), "holder for the unsupported clock checks");
    }

    /* destroy of unlocked mutexes */
    CHECK(pthread_mutex_destroy(&d_null) == 0 && pthread_mutex_destroy(&d_normal) == 0 &&
              pthread_mutex_destroy(&d_recursive) == 0 && pthread_mutex_destroy(&d_errorcheck) == 0 &&
              pthread_mutex_destroy(&d_default) == 0 && pthread_mutex_destroy(&d_adaptive) == 0,
          "destroy of unlocked mutexes -> 0");

    pshared_test();
    return test_exit_status();
}
