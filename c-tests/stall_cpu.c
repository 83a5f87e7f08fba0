/* stall_cpu.c — threads that compute without ever making a call the shim sees must not starve the others
 * (issue 7). Natively the kernel time-slices; under the shim the monitor notices a worker kept by one
 * coroutine and brings in a spare worker for the queued ones.
 *
 * Two threads spin on the CPU for 1.5 s (no system calls at all) while a ticker sleeps 10 ms in a loop;
 * the ticker must never wait more than 200 ms for its turn, also with ASYNCSHIM_WORKERS=1 (the shim-w1
 * mode). A second phase checks that main, sleeping next to a hog, still wakes up in time to stop it.
 * asyncshim-test: timeout=60 */
#include "shim_probe.h"
#include "test_util.h"
#include <pthread.h>
#include <stdlib.h>

static volatile int stop_spinning;

static void *spinner(void *arg)
{
    (void)arg;
    int64_t end = mono_ns() + 1500LL * 1000000;
    unsigned long x = 1;
    /* Reading the vDSO clock is no system call, so the shim never sees this loop. */
    while (mono_ns() < end && !stop_spinning)
        for (int i = 0; i < 10000; i++)
            x = x * 6364136223846793005UL + 1442695040888963407UL;
    return (void *)(x | 1);
}

int main(void)
{
    test_init();
    fprintf(stderr, "under shim: %d, workers %d\n", under_shim(), shim_workers());

    pthread_t s1, s2, tk;
    struct ticker t = { 0, 1500LL * 1000000, 0, 0 };
    CHECK(pthread_create(&s1, NULL, spinner, NULL) == 0, "spinner 1 created");
    CHECK(pthread_create(&s2, NULL, spinner, NULL) == 0, "spinner 2 created");
    t.created_ns = mono_ns();
    CHECK(pthread_create(&tk, NULL, ticker_thread, &t) == 0, "ticker created");
    void *r1, *r2;
    pthread_join(tk, NULL);
    pthread_join(s1, &r1);
    pthread_join(s2, &r2);
    fprintf(stderr, "ticker: %d ticks, worst lateness %.1f ms\n", t.ticks, t.worst_ns / 1e6);
    CHECK(r1 != NULL && r2 != NULL, "spinners finished their loops");
    CHECK(t.worst_ns < 200LL * 1000000, "ticker never waited more than 200 ms for its turn");
    CHECK(t.ticks >= 20, "ticker kept ticking while the spinners ran (at least 20 of ~140 ticks)");

    /* A hog main cannot preempt: main sleeps right after creating it (so with one worker the hog runs
     * during the sleep) and must still wake up in time to stop it, well before the hog's own 1.5 s end. */
    stop_spinning = 0;
    pthread_t h;
    int64_t t0 = mono_ns();
    CHECK(pthread_create(&h, NULL, spinner, NULL) == 0, "hog created");
    sleep_ms(50);
    int64_t slept = mono_ns() - t0;
    stop_spinning = 1;
    pthread_join(h, NULL);
    fprintf(stderr, "main's 50 ms sleep next to the hog took %.1f ms\n", slept / 1e6);
    CHECK(slept < 250LL * 1000000, "main's 50 ms sleep next to a hog ended within 250 ms");
    return test_exit_status();
}
