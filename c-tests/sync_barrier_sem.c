/* sync_barrier_sem: barriers and POSIX semaphores.
 *  - a barrier of 16 threads over 2,000 rounds: before arriving at round r's barrier no thread has yet
 *    arrived at round r+1 (nobody ran ahead), after it all 16 have arrived at round r; exactly one
 *    waiter per round gets PTHREAD_BARRIER_SERIAL_THREAD, the others 0; threads yield now and then;
 *  - barrier init with count 0 EINVAL; a barrier of 1 always returns PTHREAD_BARRIER_SERIAL_THREAD;
 *  - a counting semaphore of value 3 shared by 20 threads x 300 iterations (yielding or sleeping inside):
 *    never more than 3 inside (the largest number seen inside goes to stderr), value 3 again at the end;
 *  - sem_trywait on 0 -> -1/EAGAIN; sem_timedwait (CLOCK_REALTIME) and sem_clockwait (CLOCK_MONOTONIC,
 *    CLOCK_REALTIME) with 100 ms deadlines -> -1/ETIMEDOUT no earlier than the deadline; a past deadline
 *    ETIMEDOUT; tv_nsec = 1e9 EINVAL; sem_clockwait with an unsupported clock EINVAL; sem_getvalue;
 *  - a thread blocked in sem_wait / sem_timedwait (far deadline) / sem_clockwait is released by a
 *    sem_post 200 ms later, and not before;
 *  - process-shared: a named semaphore pair (sem_open O_CREAT|O_EXCL, sem_unlink) ping-ponged 50 times
 *    with a forked child (the child opens them by name and posts, the parent waits in sem_wait and
 *    sem_timedwait), O_EXCL on an existing name -> EEXIST, sem_unlink while both have them open -> 0
 *    (the names are removed as soon as the child has opened them, and by a SIGTERM/SIGINT handler should
 *    the test be killed before), sem_unlink of a missing name -> ENOENT; and an unnamed pshared
 *    semaphore in MAP_SHARED memory that the child posts after 200 ms while two parent threads and the
 *    parent wait on it.
 * asyncshim-test: timeout=60 */
#include "shim_probe.h"
#include "test_util.h"
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define MS 1000000LL

static const char *err2(int e)
{
    return e == EEXIST ? "EEXIST" : errname(e);
}

static int wait_child(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- barrier ---- */

#define BTHREADS 16
#define BROUNDS 2000
static pthread_barrier_t bar;
static int arrived[BROUNDS + 1], serial[BROUNDS];
static int ran_ahead, not_all_arrived, bad_returns;

static void *barrier_body(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int r = 0; r < BROUNDS; r++) {
        if (ATOMIC_LOAD(&arrived[r + 1]) != 0)
            ATOMIC_ADD(&ran_ahead, 1);
        ATOMIC_ADD(&arrived[r], 1);
        if ((r + id) % 97 == 0)
            sched_yield();
        int rc = pthread_barrier_wait(&bar);
        if (rc == PTHREAD_BARRIER_SERIAL_THREAD)
            ATOMIC_ADD(&serial[r], 1);
        else if (rc != 0)
            ATOMIC_ADD(&bad_returns, 1);
        if (ATOMIC_LOAD(&arrived[r]) != BTHREADS)
            ATOMIC_ADD(&not_all_arrived, 1);
    }
    return NULL;
}

static void barrier_tests(void)
{
    pthread_barrier_t b0;
    int rc = pthread_barrier_init(&b0, NULL, 0);
    printf("barrier_init with count 0: %s\n", errname(rc));
    CHECK(rc == EINVAL, "barrier_init with count 0 -> EINVAL");
    pthread_barrier_t b1;
    int all_serial = pthread_barrier_init(&b1, NULL, 1) == 0;
    for (int i = 0; i < 5; i++)
        if (pthread_barrier_wait(&b1) != PTHREAD_BARRIER_SERIAL_THREAD)
            all_serial = 0;
    CHECK(all_serial && pthread_barrier_destroy(&b1) == 0,
          "barrier of 1: every wait returns PTHREAD_BARRIER_SERIAL_THREAD");

    CHECK(pthread_barrier_init(&bar, NULL, BTHREADS) == 0, "barrier_init with count 16 -> 0");
    pthread_t t[BTHREADS];
    int64_t t0 = mono_ns();
    for (int i = 0; i < BTHREADS; i++)
        pthread_create(&t[i], NULL, barrier_body, (void *)(intptr_t)i);
    for (int i = 0; i < BTHREADS; i++)
        pthread_join(t[i], NULL);
    int serial_ok = 1;
    for (int r = 0; r < BROUNDS; r++)
        if (serial[r] != 1)
            serial_ok = 0;
    fprintf(stderr, "barrier: %d rounds of %d threads in %.1f ms\n", BROUNDS, BTHREADS, (mono_ns() - t0) / 1e6);
    CHECK(ran_ahead == 0, "barrier: no thread reached round r+1 before everyone arrived at round r");
    CHECK(not_all_arrived == 0, "barrier: after each round's wait all 16 had arrived");
    CHECK(serial_ok && bad_returns == 0, "barrier: exactly one PTHREAD_BARRIER_SERIAL_THREAD per round, others 0");
    CHECK(pthread_barrier_destroy(&bar) == 0, "barrier: destroy -> 0");
}

/* ---- counting semaphore ---- */

#define STHREADS 20
#define SITERS 300
static sem_t csem;
static int inside, max_inside, sem_errors;

static void *sem_body(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < SITERS; i++) {
        int rc;
        if ((i + id) % 3 == 0) {
            rc = sem_wait(&csem);
        } else if ((i + id) % 3 == 1) {
            struct timespec ts = deadline_in(CLOCK_REALTIME, 30000);
            rc = sem_timedwait(&csem, &ts);
        } else {
            struct timespec ts = deadline_in(CLOCK_MONOTONIC, 30000);
            rc = sem_clockwait(&csem, CLOCK_MONOTONIC, &ts);
        }
        if (rc != 0) {
            ATOMIC_ADD(&sem_errors, 1);
            continue;
        }
        int n = ATOMIC_ADD(&inside, 1);
        int m;
        while ((m = ATOMIC_LOAD(&max_inside)) < n &&
               !__atomic_compare_exchange_n(&max_inside, &m, n, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            ;
        if (i % 10 == 0)
            usleep(100);
        else
            sched_yield();
        ATOMIC_ADD(&inside, -1);
        if (sem_post(&csem) != 0)
            ATOMIC_ADD(&sem_errors, 1);
    }
    return NULL;
}

/* one timed semaphore call; returns errno (0 on success) */
enum swhow { S_TIMED, S_CLOCK_MONO, S_CLOCK_REAL };
static const char *swhow_name[] = { "sem_timedwait", "sem_clockwait(MONOTONIC)", "sem_clockwait(REALTIME)" };
static int sem_timed(sem_t *s, enum swhow how, const struct timespec *ts)
{
    int rc;
    errno = 0;
    if (how == S_TIMED)
        rc = sem_timedwait(s, ts);
    else
        rc = sem_clockwait(s, how == S_CLOCK_MONO ? CLOCK_MONOTONIC : CLOCK_REALTIME, ts);
    return rc == 0 ? 0 : (rc == -1 ? errno : -1000);
}

struct poster {
    sem_t *s;
    int posted;
};
static void *post_later(void *arg)
{
    struct poster *p = arg;
    sleep_ms(200);
    ATOMIC_STORE(&p->posted, 1);
    sem_post(p->s);
    return NULL;
}

static void semaphore_tests(void)
{
    char name[200];
    CHECK(sem_init(&csem, 0, 3) == 0, "sem_init value 3 -> 0");
    pthread_t t[STHREADS];
    int64_t t0 = mono_ns();
    for (int i = 0; i < STHREADS; i++)
        pthread_create(&t[i], NULL, sem_body, (void *)(intptr_t)i);
    for (int i = 0; i < STHREADS; i++)
        pthread_join(t[i], NULL);
    int val = -1;
    sem_getvalue(&csem, &val);
    fprintf(stderr, "semaphore: %d threads x %d in %.1f ms, at most %d inside at once\n", STHREADS, SITERS,
            (mono_ns() - t0) / 1e6, max_inside);
    CHECK(max_inside >= 1 && max_inside <= 3, "semaphore of 3, 20 threads: never more than 3 inside");
    CHECK(sem_errors == 0, "semaphore: no wait or post failed");
    CHECK(val == 3, "semaphore: value 3 again at the end (sem_getvalue)");
    CHECK(sem_destroy(&csem) == 0, "semaphore: destroy -> 0");

    sem_t s;
    sem_init(&s, 0, 0);
    errno = 0;
    int rc = sem_trywait(&s);
    printf("sem_trywait on 0: %d %s\n", rc, errname(errno));
    CHECK(rc == -1 && errno == EAGAIN, "sem_trywait on 0 -> -1/EAGAIN");
    for (int how = S_TIMED; how <= S_CLOCK_REAL; how++) {
        clockid_t clk = how == S_CLOCK_MONO ? CLOCK_MONOTONIC : CLOCK_REALTIME;
        struct timespec dl = deadline_in(clk, 100);
        int64_t w0 = mono_ns();
        int e = sem_timed(&s, how, &dl);
        int64_t after = now_ns(clk), waited = mono_ns() - w0;
        struct timespec past = { 1, 0 };
        int e_past = sem_timed(&s, how, &past);
        struct timespec bad = deadline_in(clk, 1000);
        bad.tv_nsec = 1000000000L;
        int e_bad = sem_timed(&s, how, &bad);
        fprintf(stderr, "%s, 100 ms deadline: %s after %.1f ms\n", swhow_name[how], errname(e), waited / 1e6);
        printf("%s on 0: 100 ms deadline %s, past deadline %s, tv_nsec 1e9 %s\n", swhow_name[how], errname(e),
               errname(e_past), errname(e_bad));
        snprintf(name, sizeof name, "%s on 0, 100 ms deadline -> ETIMEDOUT, not before the deadline",
                 swhow_name[how]);
        CHECK(e == ETIMEDOUT && after >= ts_ns(&dl) && waited >= 99 * MS, name);
        snprintf(name, sizeof name, "%s on 0: past deadline -> ETIMEDOUT, tv_nsec 1e9 -> EINVAL", swhow_name[how]);
        CHECK(e_past == ETIMEDOUT && e_bad == EINVAL, name);
    }
    {
        struct timespec ts = deadline_in(CLOCK_MONOTONIC, 100);
        errno = 0;
        int a = sem_clockwait(&s, CLOCK_PROCESS_CPUTIME_ID, &ts);
        int ea = errno;
        errno = 0;
        int b = sem_clockwait(&s, (clockid_t)12345, &ts);
        int eb = errno;
        printf("sem_clockwait with CLOCK_PROCESS_CPUTIME_ID: %d %s, with clock 12345: %d %s\n", a, errname(ea), b,
               errname(eb));
        CHECK(a == -1 && ea == EINVAL && b == -1 && eb == EINVAL, "sem_clockwait with an unsupported clock -> EINVAL");
    }
    /* getvalue after posts, trywait succeeding */
    sem_post(&s);
    sem_post(&s);
    val = -1;
    sem_getvalue(&s, &val);
    CHECK(val == 2, "sem_getvalue after two posts -> 2");
    CHECK(sem_trywait(&s) == 0 && sem_trywait(&s) == 0, "sem_trywait twice -> 0");
    val = -1;
    sem_getvalue(&s, &val);
    CHECK(val == 0, "sem_getvalue after two trywaits -> 0");

    /* blocked waiters released by a later post */
    for (int how = -1; how <= S_CLOCK_REAL; how++) {
        struct poster p = { &s, 0 };
        pthread_t pt;
        pthread_create(&pt, NULL, post_later, &p);
        int e;
        if (how < 0) {
            errno = 0;
            e = sem_wait(&s) == 0 ? 0 : errno;
        } else {
            struct timespec far = deadline_in(how == S_CLOCK_MONO ? CLOCK_MONOTONIC : CLOCK_REALTIME, 20000);
            e = sem_timed(&s, how, &far);
        }
        int posted = ATOMIC_LOAD(&p.posted);
        pthread_join(pt, NULL);
        snprintf(name, sizeof name, "%s blocked on 0 returns 0 after a post 200 ms later, not before",
                 how < 0 ? "sem_wait" : swhow_name[how]);
        CHECK(e == 0 && posted, name);
    }
    CHECK(sem_destroy(&s) == 0, "sem_destroy -> 0");
}

/* ---- process-shared ---- */

#define PINGS 50

/* The names are unlinked as soon as the child has opened them; should the test be killed before (a
 * hang ends in the runner's SIGTERM), this handler removes them so that nothing is left in /dev/shm. */
static char ping_name[64], pong_name[64], ping_path[96], pong_path[96];

static void unlink_on_term(int sig)
{
    unlink(ping_path);
    unlink(pong_path);
    set_signal_handler(sig, SIG_DFL, 0);
    raise(sig);
}

static void named_test(void)
{
    snprintf(ping_name, sizeof ping_name, "/asyncshim-sync-ping-%d", (int)getpid());
    snprintf(pong_name, sizeof pong_name, "/asyncshim-sync-pong-%d", (int)getpid());
    snprintf(ping_path, sizeof ping_path, "/dev/shm/sem.%s", ping_name + 1);
    snprintf(pong_path, sizeof pong_path, "/dev/shm/sem.%s", pong_name + 1);
    set_signal_handler(SIGTERM, unlink_on_term, 0);
    set_signal_handler(SIGINT, unlink_on_term, 0);
    sem_unlink(ping_name);
    sem_unlink(pong_name);
    sem_t *ping = sem_open(ping_name, O_CREAT | O_EXCL, 0600, 0);
    sem_t *pong = sem_open(pong_name, O_CREAT | O_EXCL, 0600, 0);
    if (!CHECK(ping != SEM_FAILED && pong != SEM_FAILED, "named: sem_open O_CREAT|O_EXCL twice"))
        return;
    errno = 0;
    sem_t *again = sem_open(ping_name, O_CREAT | O_EXCL, 0600, 0);
    int e = errno;
    printf("named: sem_open O_EXCL of an existing name: %s\n", again == SEM_FAILED ? err2(e) : "opened");
    CHECK(again == SEM_FAILED && e == EEXIST, "named: sem_open O_CREAT|O_EXCL of an existing name -> EEXIST");
    sem_t *same = sem_open(ping_name, 0);
    CHECK(same != SEM_FAILED, "named: sem_open of the existing name without O_CREAT");

    pid_t pid = fork();
    if (pid == 0) {
        /* child: opens both by name, says so with a pong 100 ms later, then answers every ping with a
         * pong */
        sem_t *cping = sem_open(ping_name, 0), *cpong = sem_open(pong_name, 0);
        if (cping == SEM_FAILED || cpong == SEM_FAILED)
            _exit(2);
        sleep_ms(100);
        if (sem_post(cpong) != 0)
            _exit(3);
        for (int i = 0; i < PINGS; i++) {
            struct timespec limit = deadline_in(CLOCK_REALTIME, 20000); /* never outlive a dead parent */
            if (sem_timedwait(cping, &limit) != 0)
                _exit(4);
            if (sem_post(cpong) != 0)
                _exit(5);
        }
        _exit(0);
    }
    CHECK(pid > 0, "named: fork");
    if (pid < 0)
        return;
    int waits_ok = sem_wait(pong) == 0; /* the child's first post, 100 ms from now */
    /* the child has both open now: the names can go (the semaphores live on until closed) */
    int unlinked = sem_unlink(ping_name) == 0 && sem_unlink(pong_name) == 0;
    for (int i = 0; i < PINGS; i++) {
        if (sem_post(same) != 0)
            waits_ok = 0;
        if (i % 2 == 0) {
            if (sem_wait(pong) != 0)
                waits_ok = 0;
        } else {
            struct timespec far = deadline_in(CLOCK_REALTIME, 20000);
            if (sem_timedwait(pong, &far) != 0)
                waits_ok = 0;
        }
    }
    int st = wait_child(pid);
    printf("named: child exit status %d\n", st);
    CHECK(waits_ok, "named: 1 + 50 posts by the child each released the parent's wait");
    CHECK(st == 0, "named: the child opened, waited and posted without errors");
    int val = -1;
    sem_getvalue(pong, &val);
    CHECK(val == 0, "named: value 0 at the end");
    CHECK(unlinked, "named: sem_unlink while both processes have them open -> 0");
    CHECK(sem_close(ping) == 0 && sem_close(pong) == 0 && sem_close(same) == 0, "named: sem_close -> 0");
    set_signal_handler(SIGTERM, SIG_DFL, 0);
    set_signal_handler(SIGINT, SIG_DFL, 0);
    errno = 0;
    int rc = sem_unlink(ping_name);
    e = errno;
    printf("named: sem_unlink of a missing name: %d %s\n", rc, errname(e));
    CHECK(rc == -1 && e == ENOENT, "named: sem_unlink of a missing name -> ENOENT");
}

struct shared_sem {
    sem_t s;
    int posted;
};

static void *pshared_waiter(void *arg)
{
    struct shared_sem *ss = arg;
    int rc = sem_wait(&ss->s);
    return (void *)(intptr_t)(rc == 0 && ATOMIC_LOAD(&ss->posted));
}

static void unnamed_pshared_test(void)
{
    struct shared_sem *ss = mmap(NULL, sizeof *ss, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (!CHECK(ss != MAP_FAILED, "pshared: mmap"))
        return;
    CHECK(sem_init(&ss->s, 1, 0) == 0, "pshared: sem_init(pshared=1, 0) -> 0");
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, pshared_waiter, ss);
    pid_t pid = fork();
    if (pid == 0) {
        sleep_ms(200);
        ATOMIC_STORE(&ss->posted, 1);
        for (int i = 0; i < 3; i++)
            if (sem_post(&ss->s) != 0)
                _exit(2);
        _exit(0);
    }
    CHECK(pid > 0, "pshared: fork");
    if (pid < 0)
        return;
    int rc = sem_wait(&ss->s);
    int main_ok = rc == 0 && ATOMIC_LOAD(&ss->posted);
    int thr_ok = 1;
    for (int i = 0; i < 2; i++) {
        void *res;
        pthread_join(t[i], &res);
        if (!res)
            thr_ok = 0;
    }
    int st = wait_child(pid);
    CHECK(main_ok && thr_ok, "pshared: the parent and two of its threads wait until the child posts");
    CHECK(st == 0, "pshared: the child posted three times");
    CHECK(sem_destroy(&ss->s) == 0, "pshared: sem_destroy -> 0");
    munmap(ss, sizeof *ss);
}

int main(void)
{
    test_init();
    fprintf(stderr, "under shim: %d, workers %d\n", under_shim(), shim_workers());
    barrier_tests();
    semaphore_tests();
    named_test();
    unnamed_pshared_test();
    return test_exit_status();
}
