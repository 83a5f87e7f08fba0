/* getrusage(RUSAGE_THREAD) in a thread other than the main one: its user + system time is its own CPU
 * time, consistent with CLOCK_THREAD_CPUTIME_ID read around it (never ahead of it; behind by no more than
 * the kernel's accounting lag); a thread that waits N times has at least N voluntary context switches,
 * a new thread starts with few; the process-wide maximum RSS is the process's; the fields Linux never
 * fills are 0. Amounts go to stderr.
 * asyncshim-test: timeout=120 */
#include "test_util.h"
#include <pthread.h>
#include <sys/resource.h>

static int64_t tv_ns(struct timeval tv)
{
    return (int64_t)tv.tv_sec * 1000000000LL + (int64_t)tv.tv_usec * 1000;
}

static void spin(int64_t ns)
{
    int64_t end = now_ns(CLOCK_THREAD_CPUTIME_ID) + ns;
    volatile unsigned x = 0;
    while (now_ns(CLOCK_THREAD_CPUTIME_ID) < end)
        for (int i = 0; i < 1000; i++)
            x += i;
}

static void *thread_main(void *arg)
{
    (void)arg;
    struct rusage r0, r1, self_a, self_b;
    getrusage(RUSAGE_THREAD, &r0);
    CHECK(r0.ru_nvcsw < 10, "a new thread has few voluntary switches");
    fprintf(stderr, "start: nvcsw %ld nivcsw %ld cpu %lld ns\n", r0.ru_nvcsw, r0.ru_nivcsw,
            (long long)(tv_ns(r0.ru_utime) + tv_ns(r0.ru_stime)));
    for (int i = 0; i < 20; i++)
        sleep_ms(1);
    getrusage(RUSAGE_THREAD, &r1);
    CHECK(r1.ru_nvcsw - r0.ru_nvcsw >= 20, "20 sleeps: at least 20 voluntary switches");
    fprintf(stderr, "after sleeps: nvcsw %ld nivcsw %ld\n", r1.ru_nvcsw, r1.ru_nivcsw);

    spin(30 * 1000000LL);
    int consistent = 1, ahead = 0, behind = 0;
    for (int k = 0; k < 50; k++) {
        int64_t t1 = now_ns(CLOCK_THREAD_CPUTIME_ID);
        struct rusage r;
        getrusage(RUSAGE_THREAD, &r);
        int64_t t2 = now_ns(CLOCK_THREAD_CPUTIME_ID);
        int64_t ru = tv_ns(r.ru_utime) + tv_ns(r.ru_stime);
        if (ru > t2) {
            consistent = 0;
            ahead++;
        }
        if (t1 - ru > 50 * 1000000LL) {
            consistent = 0;
            behind++;
        }
        spin(200000);
    }
    CHECK(consistent, "user + system time agrees with the thread's CPU-time clock");
    fprintf(stderr, "ahead %d behind %d\n", ahead, behind);

    struct rusage r2;
    getrusage(RUSAGE_SELF, &self_a);
    getrusage(RUSAGE_THREAD, &r2);
    getrusage(RUSAGE_SELF, &self_b);
    CHECK(r2.ru_maxrss >= self_a.ru_maxrss && r2.ru_maxrss <= self_b.ru_maxrss, "maxrss is the process's");
    CHECK(r2.ru_ixrss == 0 && r2.ru_idrss == 0 && r2.ru_isrss == 0 && r2.ru_nswap == 0 && r2.ru_msgsnd == 0 &&
              r2.ru_msgrcv == 0 && r2.ru_nsignals == 0,
          "fields Linux does not fill are 0");
    CHECK(tv_ns(r2.ru_utime) + tv_ns(r2.ru_stime) >= 30 * 1000000LL, "the spin is counted");
    int64_t self_cpu = tv_ns(self_b.ru_utime) + tv_ns(self_b.ru_stime);
    CHECK(tv_ns(r2.ru_utime) + tv_ns(r2.ru_stime) <= self_cpu + 10 * 1000000LL, "no more than the process's");
    return NULL;
}

int main(void)
{
    test_init();
    pthread_t t;
    pthread_create(&t, NULL, thread_main, NULL);
    pthread_join(t, NULL);
    struct rusage m;
    CHECK(getrusage(RUSAGE_THREAD, &m) == 0, "main thread getrusage");
    errno = 0;
    CHECK(getrusage(7, &m) == -1 && errno == EINVAL, "bad who: EINVAL");
    return test_exit_status();
}
