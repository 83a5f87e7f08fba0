/* stall_cpu.c — threads that compute without ever making a call the shim sees must not starve the others
 * (issue 7). Natively the kernel time-slices; under the shim the monitor notices a worker kept by one
 * coroutine and brings in a spare worker for the queued ones.
 *
 * Two threads spin on the CPU (no system calls at all) until a ticker, sleeping 10 ms in a loop, has
 * ticked 20 times: the ticker must get its turns while they spin, also with ASYNCSHIM_WORKERS=1 (the
 * shim-w1 mode). A shim that let them starve it would see them spin to their 20 s safety limit. A second
 * phase checks that main, sleeping next to a hog, wakes up while the hog still spins (so main can stop
 * it). Both are judged by events, not by how long anything took: a loaded machine only makes them slower.
 * Timings go to stderr.
 * asyncshim-test: timeout=90 */
#include "shim_probe.h"
#include "test_util.h"
#include <pthread.h>
#include <stdlib.h>

enum { TICKS = 20 };
#define SAFETY_LIMIT_NS (20000LL * 1000000)

static volatile int stop_spinning;
static volatile unsigned long sink;

/* Spins until stop_spinning is set or the safety limit passes; the result says which (1: stopped). */
static void *spinner(void *arg)
{
    (void)arg;
    int64_t end = mono_ns() + SAFETY_LIMIT_NS;
    unsigned long x = 1;
    /* Reading the vDSO clock is no system call, so the shim never sees this loop. */
    while (!stop_spinning && mono_ns() < end)
        for (int i = 0; i < 10000; i++)
            x = x * 6364136223846793005UL + 1442695040888963407UL;
    sink = x;
    return (void *)(uintptr_t)(stop_spinning ? 1 : 2);
}

/* Sleeps 10 ms TICKS times, then stops the spinners. */
static void *ticker(void *arg)
{
    int64_t *worst = arg;
    for (int i = 0; i < TICKS; i++) {
        int64_t before = mono_ns();
        sleep_ms(10);
        int64_t late = mono_ns() - before - 10LL * 1000000;
        if (late > *worst)
            *worst = late;
    }
    stop_spinning = 1;
    return NULL;
}

int main(void)
{
    test_init();
    fprintf(stderr, "under shim: %d, workers %d\n", under_shim(), shim_workers());

    pthread_t s1, s2, tk;
    int64_t worst = 0, t0 = mono_ns();
    CHECK(pthread_create(&s1, NULL, spinner, NULL) == 0, "spinner 1 created");
    CHECK(pthread_create(&s2, NULL, spinner, NULL) == 0, "spinner 2 created");
    CHECK(pthread_create(&tk, NULL, ticker, &worst) == 0, "ticker created");
    void *r1, *r2;
    pthread_join(tk, NULL);
    pthread_join(s1, &r1);
    pthread_join(s2, &r2);
    fprintf(stderr, "ticker: %d ticks in %.1f ms, worst lateness %.1f ms\n", TICKS, (mono_ns() - t0) / 1e6,
            worst / 1e6);
    CHECK(r1 == (void *)1 && r2 == (void *)1, "the ticker made its 20 ticks while both spinners spun");

    /* A hog main cannot preempt: main sleeps right after creating it (so with one worker the hog runs
     * during the sleep) and must still wake up while the hog spins, to stop it. */
    stop_spinning = 0;
    pthread_t h;
    t0 = mono_ns();
    CHECK(pthread_create(&h, NULL, spinner, NULL) == 0, "hog created");
    sleep_ms(50);
    int64_t slept = mono_ns() - t0;
    stop_spinning = 1;
    void *rh;
    pthread_join(h, &rh);
    fprintf(stderr, "main's 50 ms sleep next to the hog took %.1f ms\n", slept / 1e6);
    CHECK(rh == (void *)1, "main woke from its sleep next to a hog while the hog spun, and stopped it");
    return test_exit_status();
}
