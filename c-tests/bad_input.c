/* bad_input: wrong uses of the pthread API give glibc's error numbers and never crash.
 * joining oneself (EDEADLK); joining a detached thread that is still running (EINVAL); detaching an
 * already detached, still running thread (EINVAL); pthread_tryjoin_np on it (EBUSY, glibc checks
 * "still running" first); a timed join with a negative timeout (ETIMEDOUT); clock joins with a bad
 * clock (EINVAL); invalid attribute values
 * (stack size below PTHREAD_STACK_MIN, bad detach state / scope / policy / inherit); pthread_kill with
 * signal 0 and with an invalid signal; a thread with a PTHREAD_STACK_MIN stack runs. Only cases whose
 * native result is deterministic are included (glibc 2.36 does not detect a second concurrent joiner:
 * it simply blocks, so that case is left out); results are printed as errno names. */
#include "shim_probe.h"
#include "test_util.h"
#include "glibc_compat.h"
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>

static int release;

static void *wait_release(void *arg)
{
    (void)arg;
    while (!ATOMIC_LOAD(&release))
        sleep_ms(5);
    return (void *)0x77;
}

static void *join_self(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)pthread_join(pthread_self(), NULL);
}

static void *small_stack(void *arg)
{
    volatile char buf[2048];
    unsigned sum = 0;
    for (unsigned i = 0; i < sizeof buf; i++)
        buf[i] = (char)i;
    for (unsigned i = 0; i < sizeof buf; i++)
        sum += (unsigned char)buf[i];
    sched_yield();
    usleep(100);
    return (void *)(uintptr_t)(sum + (uintptr_t)arg);
}

static void report(const char *what, int rc, int want)
{
    char name[200];
    if (rc == want)
        snprintf(name, sizeof name, "%s -> %s", what, errname(rc));
    else
        snprintf(name, sizeof name, "%s -> %s (expected %s)", what, errname(rc), errname(want));
    CHECK(rc == want, name);
}

int main(void)
{
    test_init();
    pthread_t t, t2;
    void *res;
    int rc;

    /* joining oneself, from main and from a thread */
    report("pthread_join(self) in main", pthread_join(pthread_self(), NULL), EDEADLK);
    pthread_create(&t, NULL, join_self, NULL);
    pthread_join(t, &res);
    report("pthread_join(self) in a thread", (int)(intptr_t)res, EDEADLK);

    /* joining / detaching a detached, still running thread */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_create(&t, &attr, wait_release, NULL);
    pthread_attr_destroy(&attr);
    report("pthread_join(detached running thread)", pthread_join(t, NULL), EINVAL);
    report("pthread_tryjoin_np(detached running thread)", pthread_tryjoin_np(t, NULL), EBUSY);
    report("pthread_detach(detached running thread)", pthread_detach(t), EINVAL);
    pthread_create(&t2, NULL, wait_release, NULL);
    report("pthread_detach(joinable thread)", pthread_detach(t2), 0);
    report("pthread_detach(thread detached by pthread_detach)", pthread_detach(t2), EINVAL);
    report("pthread_join(thread detached by pthread_detach)", pthread_join(t2, NULL), EINVAL);

    /* bad timeouts and clocks for the timed joins (thread still running) */
    pthread_t tj;
    pthread_create(&tj, NULL, wait_release, NULL);
    /* (glibc 2.36 does not validate tv_nsec here: a timeout with tv_nsec >= 1e9 blocks, so it is left out) */
    struct timespec neg_ts = { -1, 0 };
    report("pthread_timedjoin_np(tv_sec = -1)", pthread_timedjoin_np(tj, NULL, &neg_ts), ETIMEDOUT);
    struct timespec past = { 0, 0 };
    /* glibc checks the clock since 2.32; 2.31 waits on it and times out */
    report("pthread_clockjoin_np(CLOCK_PROCESS_CPUTIME_ID)",
           pthread_clockjoin_np(tj, NULL, CLOCK_PROCESS_CPUTIME_ID, &past), glibc_at_least(2, 32) ? EINVAL : ETIMEDOUT);
    report("pthread_clockjoin_np(clock 12345)", pthread_clockjoin_np(tj, NULL, (clockid_t)12345, &past), EINVAL);
    report("pthread_clockjoin_np(MONOTONIC, epoch)", pthread_clockjoin_np(tj, NULL, CLOCK_MONOTONIC, &past),
           ETIMEDOUT);

    /* pthread_kill */
    report("pthread_kill(running thread, 0)", pthread_kill(tj, 0), 0);
    report("pthread_kill(self, 0)", pthread_kill(pthread_self(), 0), 0);
    report("pthread_kill(running thread, 9999)", pthread_kill(tj, 9999), EINVAL);

    ATOMIC_STORE(&release, 1);
    pthread_join(tj, &res);
    CHECK(res == (void *)0x77, "timed-join target still joinable after the failed calls");

    /* attributes */
    pthread_attr_init(&attr);
    report("pthread_attr_setstacksize(PTHREAD_STACK_MIN - 1)",
           pthread_attr_setstacksize(&attr, PTHREAD_STACK_MIN - 1), EINVAL);
    report("pthread_attr_setstacksize(1)", pthread_attr_setstacksize(&attr, 1), EINVAL);
    report("pthread_attr_setstacksize(0)", pthread_attr_setstacksize(&attr, 0), EINVAL);
    report("pthread_attr_setdetachstate(42)", pthread_attr_setdetachstate(&attr, 42), EINVAL);
    report("pthread_attr_setscope(PTHREAD_SCOPE_PROCESS)",
           pthread_attr_setscope(&attr, PTHREAD_SCOPE_PROCESS), ENOTSUP);
    report("pthread_attr_setscope(42)", pthread_attr_setscope(&attr, 42), EINVAL);
    report("pthread_attr_setinheritsched(42)", pthread_attr_setinheritsched(&attr, 42), EINVAL);
    report("pthread_attr_setschedpolicy(42)", pthread_attr_setschedpolicy(&attr, 42), EINVAL);
    size_t sz = 0;
    pthread_attr_getstacksize(&attr, &sz);
    /* the failed calls left the attribute usable */
    rc = pthread_create(&t, &attr, small_stack, (void *)1);
    report("pthread_create after failed attribute calls", rc, 0);
    if (rc == 0) {
        pthread_join(t, &res);
        CHECK(res == (void *)(uintptr_t)(2048 / 256 * (255 * 256 / 2) + 1), "thread result");
    }
    report("pthread_attr_setstacksize(PTHREAD_STACK_MIN)", pthread_attr_setstacksize(&attr, PTHREAD_STACK_MIN), 0);
    sz = 0;
    pthread_attr_getstacksize(&attr, &sz);
    CHECK(sz == PTHREAD_STACK_MIN, "stack size reads back PTHREAD_STACK_MIN");
    int ok = 1;
    pthread_t th[32];
    for (int i = 0; i < 32; i++)
        if (pthread_create(&th[i], &attr, small_stack, (void *)(uintptr_t)i) != 0)
            ok = 0;
    for (int i = 0; ok && i < 32; i++)
        if (pthread_join(th[i], &res) != 0 || res != (void *)(uintptr_t)(2048 / 256 * (255 * 256 / 2) + i))
            ok = 0;
    CHECK(ok, "32 threads with PTHREAD_STACK_MIN stacks run and join");
    pthread_attr_destroy(&attr);
    return test_exit_status();
}
