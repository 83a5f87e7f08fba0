/* Per-thread CPU-time clocks: CLOCK_THREAD_CPUTIME_ID, the clock of pthread_getcpuclockid and
 * getrusage(RUSAGE_THREAD) count the thread's own CPU time, from zero for a new thread; a thread's clock
 * read by another thread is monotonic and covers what it computed; sleeping adds (almost) nothing;
 * clock_getres, clock_nanosleep on one's own clock (EINVAL) and on another thread's (returns once that
 * thread has used the time), and the clock of an ended thread (EINVAL). Several threads computing at once
 * on one worker each count only their own share: together no more than the process's CPU time.
 * Amounts go to stderr; stdout has the properties. */
#include "test_util.h"
#include <pthread.h>
#include <sys/resource.h>
#include <time.h>

#define MS 1000000LL

static int64_t clock_ns(clockid_t c)
{
    struct timespec ts;
    if (clock_gettime(c, &ts) != 0)
        return -1;
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t self_cpu(void)
{
    return clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

/* Computes until the calling thread's own clock has advanced by `ns`. */
static void spin_cpu(int64_t ns)
{
    int64_t end = self_cpu() + ns;
    volatile unsigned x = 0;
    while (self_cpu() < end)
        for (int i = 0; i < 10000; i++)
            x += i;
}

static int64_t rusage_ns(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) != 0)
        return -1;
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

static int64_t main_cpu;
static int64_t child_start, child_rusage_start, child_after_spin, child_after_sleep, child_rusage_end;
static int child_spun, child_go_on, child_done;
static int own_sleep_rc, own_clockid_sleep_rc;

static void *child(void *arg)
{
    (void)arg;
    child_start = self_cpu();
    child_rusage_start = rusage_ns();
    spin_cpu(100 * MS);
    child_after_spin = self_cpu();
    ATOMIC_STORE(&child_spun, 1);
    /* clock_nanosleep on its own CPU clock is refused. */
    struct timespec d = { 0, 1000000 };
    own_sleep_rc = clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &d, NULL);
    clockid_t mine;
    pthread_getcpuclockid(pthread_self(), &mine);
    own_clockid_sleep_rc = clock_nanosleep(mine, 0, &d, NULL);
    int64_t before = self_cpu();
    sleep_ms(200);
    child_after_sleep = self_cpu() - before;
    while (!ATOMIC_LOAD(&child_go_on))
        sleep_ms(1);
    /* Computes again while main sleeps on this thread's clock. */
    spin_cpu(150 * MS);
    child_rusage_end = rusage_ns();
    ATOMIC_STORE(&child_done, 1);
    return NULL;
}

#define NSPIN 3
static int64_t spun[NSPIN];

static void *spinner(void *arg)
{
    int i = (int)(intptr_t)arg;
    int64_t s = self_cpu();
    spin_cpu(60 * MS);
    spun[i] = self_cpu() - s;
    return NULL;
}

int main(void)
{
    test_init();
    spin_cpu(200 * MS);
    main_cpu = self_cpu();
    CHECK(main_cpu >= 200 * MS, "main thread's clock shows its 200 ms of computing");

    pthread_t t;
    pthread_create(&t, NULL, child, NULL);
    clockid_t c;
    CHECK(pthread_getcpuclockid(t, &c) == 0, "pthread_getcpuclockid");
    struct timespec res = { 9, 9 };
    CHECK(clock_getres(c, &res) == 0, "clock_getres on the thread's clock");
    printf("resolution: %ld s %ld ns\n", (long)res.tv_sec, res.tv_nsec);
    res.tv_sec = 9;
    clock_getres(CLOCK_THREAD_CPUTIME_ID, &res);
    printf("resolution of CLOCK_THREAD_CPUTIME_ID: %ld s %ld ns\n", (long)res.tv_sec, res.tv_nsec);

    /* Read the child's clock from here while it computes: never backwards. */
    int64_t prev = 0;
    int monotonic = 1;
    while (!ATOMIC_LOAD(&child_spun)) {
        int64_t v = clock_ns(c);
        if (v < prev)
            monotonic = 0;
        prev = v;
        sleep_ms(2);
    }
    int64_t seen = clock_ns(c);
    CHECK(monotonic && seen >= prev, "another thread's clock read repeatedly never goes back");
    fprintf(stderr, "child start %.3f ms (main %.3f ms), after spin %.3f ms, seen by main %.3f ms\n",
            child_start / 1e6, main_cpu / 1e6, child_after_spin / 1e6, seen / 1e6);
    CHECK(child_start < 50 * MS && child_start < main_cpu / 4, "a new thread's clock starts near zero");
    CHECK(child_rusage_start >= 0 && child_rusage_start < 50 * MS, "a new thread's getrusage(RUSAGE_THREAD) starts near zero");
    CHECK(seen >= 100 * MS && seen < main_cpu + 100 * MS, "its clock read by main covers its own work only");
    printf("clock_nanosleep(CLOCK_THREAD_CPUTIME_ID): %s\n", errname(own_sleep_rc));
    printf("clock_nanosleep(own thread's clockid): %s\n", errname(own_clockid_sleep_rc));

    /* Sleep on the child's clock until it has used 100 ms more (it computes 150 ms more). */
    while (child_after_sleep == 0)
        sleep_ms(5);
    fprintf(stderr, "child's clock advanced %.3f ms during a 200 ms sleep\n", child_after_sleep / 1e6);
    CHECK(child_after_sleep < 50 * MS, "sleeping adds (almost) nothing to a thread's clock");
    int64_t base = clock_ns(c);
    ATOMIC_STORE(&child_go_on, 1);
    struct timespec want = { 0, 100 * MS };
    int r = clock_nanosleep(c, 0, &want, NULL);
    int64_t after = clock_ns(c);
    printf("clock_nanosleep on another thread's clock: %s\n", errname(r));
    fprintf(stderr, "slept until the child's clock went from %.3f to %.3f ms\n", base / 1e6, after / 1e6);
    CHECK(after - base >= 100 * MS || ATOMIC_LOAD(&child_done), "it returned once that thread had used the time");
    pthread_join(t, NULL);
    fprintf(stderr, "child's getrusage at its end: %.3f ms\n", child_rusage_end / 1e6);
    CHECK(child_rusage_end >= 240 * MS, "getrusage(RUSAGE_THREAD) covers the thread's work");

    /* The kernel still knows a joined thread for a moment after glibc's join returns (the tid is cleared
     * before the task is released), so natively the clock can still be read just after the join: ask
     * until it is gone (at most 2 s), then show the answer. */
    struct timespec ts;
    int64_t give_up = mono_ns() + 2000 * MS;
    for (;;) {
        errno = 0;
        r = clock_gettime(c, &ts);
        if (r != 0 || mono_ns() >= give_up)
            break;
        sleep_ms(1);
    }
    printf("clock_gettime on an ended thread's clock: %d %s\n", r, errname(errno));

    /* Threads computing at once: each counts its own share only. */
    int64_t proc0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    pthread_t s[NSPIN];
    for (int i = 0; i < NSPIN; i++)
        pthread_create(&s[i], NULL, spinner, (void *)(intptr_t)i);
    for (int i = 0; i < NSPIN; i++)
        pthread_join(s[i], NULL);
    int64_t proc = clock_ns(CLOCK_PROCESS_CPUTIME_ID) - proc0, sum = 0;
    for (int i = 0; i < NSPIN; i++)
        sum += spun[i];
    fprintf(stderr, "%d threads computed %.3f ms together; the process used %.3f ms\n", NSPIN, sum / 1e6, proc / 1e6);
    CHECK(sum >= NSPIN * 60 * MS, "each thread computed until its own clock showed 60 ms");
    CHECK(sum <= proc + proc / 20 + 5 * MS, "their clocks together are within the process's CPU time");
    return test_exit_status();
}
