/* join_values: thread results and the join family.
 * Return values via `return` and via pthread_exit (from a nested call) reach pthread_join; 100 threads
 * joined in reverse order each deliver their own value; pthread_tryjoin_np is EBUSY while the thread
 * runs and then 0; pthread_timedjoin_np times out (ETIMEDOUT) and then succeeds; the same for
 * pthread_clockjoin_np on CLOCK_MONOTONIC; threads detached by attribute and by pthread_detach run to
 * completion; pthread_equal; pthread_self() seen inside a thread equals the handle pthread_create gave
 * and stays stable across switches. Threads wait only by sleep-polling flags. */
#include "shim_probe.h"
#include "test_util.h"
#include <pthread.h>
#include <sched.h>

static int release_flag[8];
static int done_count;
static pthread_t seen_self[128];

static void *ret_plain(void *arg)
{
    return (void *)((uintptr_t)arg * 3 + 1);
}

static void nested_exit(uintptr_t v, int depth)
{
    if (depth < 0)
        return;
    if (depth == 0)
        pthread_exit((void *)v);
    nested_exit(v, depth - 1);
    printf("unreachable after pthread_exit\n");
}

static void *ret_exit(void *arg)
{
    sched_yield();
    nested_exit((uintptr_t)arg + 0x5000, 5);
    return (void *)1;
}

/* Waits for release_flag[idx], then returns idx + 0x100. */
static void *wait_flag(void *arg)
{
    int idx = (int)(uintptr_t)arg;
    while (!ATOMIC_LOAD(&release_flag[idx]))
        sleep_ms(5);
    return (void *)(uintptr_t)(idx + 0x100);
}

static void *record_self(void *arg)
{
    int idx = (int)(uintptr_t)arg;
    pthread_t me = pthread_self();
    int stable = 1;
    for (int i = 0; i < 5; i++) {
        sched_yield();
        usleep(100);
        if (!pthread_equal(me, pthread_self()))
            stable = 0;
    }
    seen_self[idx] = me;
    return (void *)(uintptr_t)stable;
}

static void *detached_worker(void *arg)
{
    (void)arg;
    sleep_ms(10);
    ATOMIC_ADD(&done_count, 1);
    return NULL;
}

static struct timespec abs_in(clockid_t clk, long ms)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

int main(void)
{
    test_init();
    pthread_t t, t2;
    void *res;
    pthread_t main_self = pthread_self();

    /* return vs pthread_exit */
    pthread_create(&t, NULL, ret_plain, (void *)41);
    CHECK(pthread_join(t, &res) == 0 && res == (void *)124, "value via return");
    pthread_create(&t, NULL, ret_exit, (void *)7);
    CHECK(pthread_join(t, &res) == 0 && res == (void *)0x5007, "value via pthread_exit from nested call");
    pthread_create(&t, NULL, ret_plain, (void *)1);
    CHECK(pthread_join(t, NULL) == 0, "join with NULL result pointer");

    /* many threads, reverse join order, each its own value */
    {
        pthread_t th[100];
        int ok = 1;
        for (int i = 0; i < 100; i++)
            if (pthread_create(&th[i], NULL, (i & 1) ? ret_exit : ret_plain, (void *)(uintptr_t)i) != 0)
                ok = 0;
        for (int i = 99; i >= 0; i--) {
            uintptr_t want = (i & 1) ? (uintptr_t)i + 0x5000 : (uintptr_t)i * 3 + 1;
            if (pthread_join(th[i], &res) != 0 || res != (void *)want)
                ok = 0;
        }
        CHECK(ok, "100 threads joined in reverse order deliver their own values");
    }

    /* tryjoin */
    pthread_create(&t, NULL, wait_flag, (void *)0);
    int rc = pthread_tryjoin_np(t, &res);
    printf("tryjoin while running: %s\n", errname(rc));
    CHECK(rc == EBUSY, "tryjoin EBUSY while running");
    ATOMIC_STORE(&release_flag[0], 1);
    int64_t deadline = mono_ns() + 10000000000LL;
    while ((rc = pthread_tryjoin_np(t, &res)) == EBUSY && mono_ns() < deadline)
        sleep_ms(2);
    printf("tryjoin after finish: %s\n", errname(rc));
    CHECK(rc == 0 && res == (void *)0x100, "tryjoin 0 with value after finish");

    /* timedjoin */
    pthread_create(&t, NULL, wait_flag, (void *)1);
    struct timespec ts = abs_in(CLOCK_REALTIME, 50);
    int64_t t0 = mono_ns();
    rc = pthread_timedjoin_np(t, &res, &ts);
    int64_t waited = mono_ns() - t0;
    printf("timedjoin while running: %s\n", errname(rc));
    CHECK(rc == ETIMEDOUT, "timedjoin ETIMEDOUT while running");
    CHECK(waited >= 45000000LL && waited < 2050000000LL, "timedjoin waited about the timeout");
    fprintf(stderr, "timedjoin waited %.1f ms\n", waited / 1e6);
    ATOMIC_STORE(&release_flag[1], 1);
    ts = abs_in(CLOCK_REALTIME, 10000);
    rc = pthread_timedjoin_np(t, &res, &ts);
    printf("timedjoin after release: %s\n", errname(rc));
    CHECK(rc == 0 && res == (void *)0x101, "timedjoin 0 with value");

    /* timedjoin on an already finished thread with a past deadline */
    pthread_create(&t, NULL, ret_plain, (void *)5);
    sleep_ms(50);
    ts = abs_in(CLOCK_REALTIME, 0);
    ts.tv_sec -= 1;
    rc = pthread_timedjoin_np(t, &res, &ts);
    if (rc == ETIMEDOUT) /* not finished after 50 ms: join for real so nothing leaks */
        pthread_join(t, &res);
    fprintf(stderr, "timedjoin of finished thread with past deadline: %s\n", errname(rc));
    CHECK(res == (void *)16, "value of thread joined after it finished");

    /* clockjoin on CLOCK_MONOTONIC */
    pthread_create(&t, NULL, wait_flag, (void *)2);
    ts = abs_in(CLOCK_MONOTONIC, 50);
    t0 = mono_ns();
    rc = pthread_clockjoin_np(t, &res, CLOCK_MONOTONIC, &ts);
    waited = mono_ns() - t0;
    printf("clockjoin(MONOTONIC) while running: %s\n", errname(rc));
    CHECK(rc == ETIMEDOUT, "clockjoin ETIMEDOUT while running");
    CHECK(waited >= 45000000LL && waited < 2050000000LL, "clockjoin waited about the timeout");
    ATOMIC_STORE(&release_flag[2], 1);
    ts = abs_in(CLOCK_MONOTONIC, 10000);
    rc = pthread_clockjoin_np(t, &res, CLOCK_MONOTONIC, &ts);
    printf("clockjoin(MONOTONIC) after release: %s\n", errname(rc));
    CHECK(rc == 0 && res == (void *)0x102, "clockjoin 0 with value");

    /* detached threads: by attribute and by pthread_detach */
    {
        pthread_attr_t attr;
        int st = -1;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_getdetachstate(&attr, &st);
        CHECK(st == PTHREAD_CREATE_DETACHED, "attr detachstate reads back DETACHED");
        int ok = 1;
        for (int i = 0; i < 20; i++)
            if (pthread_create(&t, &attr, detached_worker, NULL) != 0)
                ok = 0;
        pthread_attr_destroy(&attr);
        for (int i = 0; i < 20; i++) {
            if (pthread_create(&t, NULL, detached_worker, NULL) != 0 || pthread_detach(t) != 0)
                ok = 0;
        }
        CHECK(ok, "create+detach calls succeed");
        CHECK(wait_at_least(&done_count, 40, 5, 20000), "40 detached threads ran to completion");
    }

    /* pthread_equal and pthread_self */
    pthread_create(&t, NULL, wait_flag, (void *)3);
    pthread_create(&t2, NULL, wait_flag, (void *)4);
    CHECK(pthread_equal(t, t) && !pthread_equal(t, t2), "pthread_equal on two live threads");
    CHECK(!pthread_equal(t, main_self) && pthread_equal(pthread_self(), main_self), "pthread_equal with main");
    ATOMIC_STORE(&release_flag[3], 1);
    ATOMIC_STORE(&release_flag[4], 1);
    pthread_join(t, NULL);
    pthread_join(t2, NULL);
    {
        pthread_t th[64];
        int same = 1, stable = 1;
        for (int i = 0; i < 64; i++)
            pthread_create(&th[i], NULL, record_self, (void *)(uintptr_t)i);
        for (int i = 0; i < 64; i++) {
            pthread_join(th[i], &res);
            if (res != (void *)1)
                stable = 0;
            if (!pthread_equal(seen_self[i], th[i]))
                same = 0;
        }
        CHECK(same, "pthread_self inside == handle from pthread_create");
        CHECK(stable, "pthread_self stable across switches");
    }
    CHECK(pthread_equal(pthread_self(), main_self), "main pthread_self stable");
    return test_exit_status();
}
