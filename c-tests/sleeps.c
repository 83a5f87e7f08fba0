/* sleeps: the sleep family behaves as natively.
 *  - sleep(0), usleep, nanosleep, clock_nanosleep (relative and TIMER_ABSTIME, CLOCK_MONOTONIC and
 *    CLOCK_REALTIME, and an absolute time in the past) return 0 and sleep at least the requested time
 *    and at most 2 s more;
 *  - a SIGALRM handler installed without SA_RESTART interrupts nanosleep (-1/EINTR, remaining time
 *    sensible), clock_nanosleep (returns EINTR, remaining time set), usleep (-1/EINTR) and sleep
 *    (returns the unslept seconds); the handler runs once per interruption;
 *  - invalid arguments: nanosleep with tv_nsec 2e9, -1 or tv_sec -1 gives -1/EINVAL; clock_nanosleep
 *    with an unknown clock or CLOCK_THREAD_CPUTIME_ID, or a bad tv_nsec, returns EINVAL without
 *    touching errno;
 *  - 20 threads sleeping 100 ms each at the same time finish in well under the 2 s a serial run takes.
 * Times are printed only as booleans. */
#include "shim_probe.h"
#include "test_util.h"
#include <pthread.h>
#include <signal.h>
#include <sys/time.h>

#define MS 1000000LL

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

static void arm(long ms)
{
    struct itimerval it = { { 0, 0 }, { ms / 1000, (ms % 1000) * 1000 } };
    setitimer(ITIMER_REAL, &it, NULL);
}

static int within(int64_t elapsed, int64_t want)
{
    return elapsed >= want && elapsed <= want + 2000 * MS;
}

static void timed(const char *name, int64_t want_ns, int rc, int64_t elapsed)
{
    char buf[160];
    snprintf(buf, sizeof buf, "%s returns 0", name);
    CHECK(rc == 0, buf);
    snprintf(buf, sizeof buf, "%s slept at least the time asked, at most 2 s more", name);
    CHECK(within(elapsed, want_ns), buf);
    fprintf(stderr, "%s: asked %.1f ms, slept %.3f ms\n", name, want_ns / 1e6, elapsed / 1e6);
}

static struct timespec ts_add(struct timespec t, int64_t ns)
{
    int64_t v = (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec + ns;
    struct timespec r = { v / 1000000000LL, v % 1000000000LL };
    return r;
}

static void *sleeper(void *arg)
{
    (void)arg;
    struct timespec ts = { 0, 100 * MS };
    return (void *)(intptr_t)nanosleep(&ts, NULL);
}

int main(void)
{
    test_init();
    int64_t t0;
    int rc;
    struct timespec ts, rem, now;

    t0 = mono_ns();
    rc = (int)sleep(0);
    CHECK(rc == 0 && mono_ns() - t0 < 1000 * MS, "sleep(0) returns 0 at once");
    t0 = mono_ns();
    rc = usleep(10000);
    timed("usleep(10 ms)", 10 * MS, rc, mono_ns() - t0);
    t0 = mono_ns();
    rc = sleep(1);
    timed("sleep(1)", 1000 * MS, rc, mono_ns() - t0);
    ts = (struct timespec){ 0, 50 * MS };
    t0 = mono_ns();
    rc = nanosleep(&ts, &rem);
    timed("nanosleep(50 ms)", 50 * MS, rc, mono_ns() - t0);

    ts = (struct timespec){ 0, 30 * MS };
    t0 = mono_ns();
    rc = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
    timed("clock_nanosleep(MONOTONIC, relative 30 ms)", 30 * MS, rc, mono_ns() - t0);
    t0 = mono_ns();
    rc = clock_nanosleep(CLOCK_REALTIME, 0, &ts, NULL);
    timed("clock_nanosleep(REALTIME, relative 30 ms)", 30 * MS, rc, mono_ns() - t0);
    clock_gettime(CLOCK_MONOTONIC, &now);
    t0 = mono_ns();
    rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, (ts = ts_add(now, 40 * MS), &ts), NULL);
    timed("clock_nanosleep(MONOTONIC, absolute now + 40 ms)", 40 * MS, rc, mono_ns() - t0);
    CHECK(mono_ns() >= (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec, "MONOTONIC absolute deadline reached");
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t r0 = now_ns(CLOCK_REALTIME);
    rc = clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, (ts = ts_add(now, 40 * MS), &ts), NULL);
    timed("clock_nanosleep(REALTIME, absolute now + 40 ms)", 40 * MS, rc, now_ns(CLOCK_REALTIME) - r0);
    clock_gettime(CLOCK_MONOTONIC, &now);
    ts = ts_add(now, -500 * MS);
    t0 = mono_ns();
    rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    CHECK(rc == 0 && mono_ns() - t0 < 500 * MS, "clock_nanosleep with a past absolute time returns 0 at once");

    /* interruption by a signal handler without SA_RESTART */
    set_signal_handler(SIGALRM, on_alarm, 0);

    alarms = 0;
    arm(100);
    ts = (struct timespec){ 2, 0 };
    rem = (struct timespec){ -1, -1 };
    t0 = mono_ns();
    errno = 0;
    rc = nanosleep(&ts, &rem);
    int e = errno;
    int64_t el = mono_ns() - t0;
    int64_t rem_ns = (int64_t)rem.tv_sec * 1000000000LL + rem.tv_nsec;
    printf("nanosleep(2 s) interrupted by SIGALRM: returns %d, errno %s\n", rc, errname(e));
    CHECK(rc == -1 && e == EINTR, "nanosleep interrupted: -1/EINTR");
    CHECK(alarms == 1, "handler ran once");
    CHECK(el >= 90 * MS && el < 1500 * MS, "interrupted after about 100 ms");
    CHECK(rem.tv_nsec >= 0 && rem.tv_nsec < 1000000000L && rem_ns > 0 && rem_ns <= 2000 * MS - el + 20 * MS &&
              rem_ns >= 2000 * MS - el - 200 * MS,
          "remaining time is about 2 s minus the time slept");
    fprintf(stderr, "nanosleep: interrupted after %.1f ms, remaining %.1f ms\n", el / 1e6, rem_ns / 1e6);

    alarms = 0;
    arm(100);
    ts = (struct timespec){ 2, 0 };
    rem = (struct timespec){ -1, -1 };
    errno = 12345;
    t0 = mono_ns();
    rc = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &rem);
    el = mono_ns() - t0;
    rem_ns = (int64_t)rem.tv_sec * 1000000000LL + rem.tv_nsec;
    printf("clock_nanosleep(MONOTONIC, 2 s) interrupted: returns %s\n", errname(rc));
    CHECK(rc == EINTR && errno == 12345, "clock_nanosleep interrupted: returns EINTR, errno untouched");
    CHECK(alarms == 1, "handler ran once");
    CHECK(rem_ns > 0 && rem_ns <= 2000 * MS - el + 20 * MS && rem_ns >= 2000 * MS - el - 200 * MS,
          "clock_nanosleep remaining time sensible");

    alarms = 0;
    arm(100);
    clock_gettime(CLOCK_MONOTONIC, &now);
    ts = ts_add(now, 2000 * MS);
    t0 = mono_ns();
    rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    el = mono_ns() - t0;
    printf("clock_nanosleep(MONOTONIC, absolute +2 s) interrupted: returns %s\n", errname(rc));
    CHECK(rc == EINTR && alarms == 1 && el < 1500 * MS, "absolute clock_nanosleep interrupted early");

    alarms = 0;
    arm(100);
    errno = 0;
    t0 = mono_ns();
    rc = usleep(2000000);
    e = errno;
    el = mono_ns() - t0;
    printf("usleep(2 s) interrupted: returns %d, errno %s\n", rc, errname(e));
    CHECK(rc == -1 && e == EINTR && alarms == 1 && el < 1500 * MS, "usleep interrupted: -1/EINTR");

    alarms = 0;
    arm(100);
    t0 = mono_ns();
    unsigned left = sleep(3);
    el = mono_ns() - t0;
    printf("sleep(3) interrupted: returns %s\n", left >= 2 && left <= 3 ? "2 or 3" : "something else");
    CHECK(left >= 2 && left <= 3 && alarms == 1 && el < 1500 * MS, "sleep interrupted: returns the unslept seconds");
    fprintf(stderr, "sleep(3) interrupted after %.1f ms, returned %u\n", el / 1e6, left);
    arm(0);
    signal(SIGALRM, SIG_DFL);

    /* invalid arguments */
    ts = (struct timespec){ 0, 2000000000L };
    errno = 0;
    rc = nanosleep(&ts, NULL);
    e = errno;
    printf("nanosleep(tv_nsec = 2e9): %d, errno %s\n", rc, errname(e));
    CHECK(rc == -1 && e == EINVAL, "nanosleep tv_nsec 2e9 -> -1/EINVAL");
    ts = (struct timespec){ 0, -1 };
    errno = 0;
    rc = nanosleep(&ts, NULL);
    e = errno;
    CHECK(rc == -1 && e == EINVAL, "nanosleep tv_nsec -1 -> -1/EINVAL");
    ts = (struct timespec){ -1, 0 };
    errno = 0;
    rc = nanosleep(&ts, NULL);
    e = errno;
    CHECK(rc == -1 && e == EINVAL, "nanosleep tv_sec -1 -> -1/EINVAL");
    ts = (struct timespec){ 0, 1000 };
    errno = 777;
    rc = clock_nanosleep((clockid_t)12345, 0, &ts, NULL);
    printf("clock_nanosleep(clock 12345): returns %s\n", errname(rc));
    CHECK(rc == EINVAL && errno == 777, "clock_nanosleep bad clock -> returns EINVAL, errno untouched");
    rc = clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &ts, NULL);
    printf("clock_nanosleep(CLOCK_THREAD_CPUTIME_ID): returns %s\n", errname(rc));
    CHECK(rc == EINVAL && errno == 777, "clock_nanosleep(CLOCK_THREAD_CPUTIME_ID) -> EINVAL");
    ts = (struct timespec){ 0, 1000000000L };
    rc = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
    printf("clock_nanosleep(tv_nsec = 1e9): returns %s\n", errname(rc));
    CHECK(rc == EINVAL && errno == 777, "clock_nanosleep tv_nsec 1e9 -> EINVAL");
    rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    CHECK(rc == EINVAL && errno == 777, "absolute clock_nanosleep tv_nsec 1e9 -> EINVAL");

    /* concurrent sleeps overlap */
    pthread_t th[20];
    t0 = mono_ns();
    for (int i = 0; i < 20; i++)
        pthread_create(&th[i], NULL, sleeper, NULL);
    int all0 = 1;
    for (int i = 0; i < 20; i++) {
        void *r;
        pthread_join(th[i], &r);
        if (r != NULL)
            all0 = 0;
    }
    el = mono_ns() - t0;
    CHECK(all0, "20 threads: nanosleep(100 ms) returns 0");
    CHECK(el >= 100 * MS && el < 1000 * MS, "20 concurrent 100 ms sleeps take 100 ms to 1 s in all");
    fprintf(stderr, "20 concurrent sleeps took %.1f ms\n", el / 1e6);
    return test_exit_status();
}
