/* preempt_ticker.c — threads that compute without any call must not starve a thread that ticks every
 * 1 ms, with one worker and no spare workers (issue 14): the shim preempts a coroutine that ran out its
 * time slice, as the kernel preempts threads natively.
 *
 * The program runs itself again with ASYNCSHIM_WORKERS=1 ASYNCSHIM_MAX_SPARES=0 (harmless natively). Two
 * spinners compute until the ticker has made 100 ticks of 1 ms (at most 8 s); they must be stopped by the
 * ticker, not by their own time limit, and both must have run meanwhile. Under the shim the process must
 * not have grown more OS threads than its one worker and the monitor. The ticker's worst gap goes to
 * stderr only (timings vary on a loaded machine).
 * asyncshim-test: timeout=60 */
#include "shim_probe.h"
#include "test_util.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#define TICKS 100

static atomic_int stop_spinning;
static atomic_int max_threads;

struct spin {
    atomic_long rounds;
    int timed_out;
    unsigned long x;
};

static void note_threads(void)
{
    int n = os_threads();
    int seen = atomic_load(&max_threads);
    while (n > seen && !atomic_compare_exchange_weak(&max_threads, &seen, n))
        ;
}

static void *spinner(void *arg)
{
    struct spin *s = arg;
    int64_t end = mono_ns() + 8LL * 1000000000;
    unsigned long x = s->x;
    for (;;) {
        /* About a millisecond of arithmetic with no call at all. */
        for (int i = 0; i < 1000000; i++)
            x = x * 6364136223846793005UL + 1442695040888963407UL;
        atomic_fetch_add(&s->rounds, 1);
        if (atomic_load(&stop_spinning))
            break;
        if (mono_ns() > end) {
            s->timed_out = 1;
            break;
        }
    }
    s->x = x;
    return NULL;
}

static int64_t worst_gap_ns;

static void *ticker(void *arg)
{
    struct spin *spinners = arg;
    int64_t last = mono_ns();
    for (int i = 0; i < TICKS; i++) {
        sleep_ms(1);
        int64_t now = mono_ns();
        if (now - last > worst_gap_ns)
            worst_gap_ns = now - last;
        last = now;
        if (i % 10 == 0)
            note_threads();
    }
    int both_ran = atomic_load(&spinners[0].rounds) > 0 && atomic_load(&spinners[1].rounds) > 0;
    atomic_store(&stop_spinning, 1);
    return (void *)(long)both_ran;
}

int main(int argc, char **argv)
{
    (void)argc;
    rerun_with_env(argv, "PREEMPT_TICKER_RERUN", (const char *const[]){ "ASYNCSHIM_WORKERS", "1", "ASYNCSHIM_MAX_SPARES", "0", NULL });
    test_init();
    fprintf(stderr, "under shim: %d, workers %d\n", under_shim(), shim_workers());
    static struct spin spinners[2] = { { .x = 1 }, { .x = 2 } };
    pthread_t s1, s2, tk;
    int64_t t0 = mono_ns();
    CHECK(pthread_create(&s1, NULL, spinner, &spinners[0]) == 0, "spinner 1 created");
    CHECK(pthread_create(&s2, NULL, spinner, &spinners[1]) == 0, "spinner 2 created");
    CHECK(pthread_create(&tk, NULL, ticker, spinners) == 0, "ticker created");
    void *both_ran;
    pthread_join(tk, &both_ran);
    pthread_join(s1, NULL);
    pthread_join(s2, NULL);
    fprintf(stderr, "%d ticks in %.1f ms, worst gap %.1f ms; spinner rounds %ld and %ld; at most %d OS threads\n",
            TICKS, (mono_ns() - t0) / 1e6, worst_gap_ns / 1e6, atomic_load(&spinners[0].rounds),
            atomic_load(&spinners[1].rounds), atomic_load(&max_threads));
    CHECK(both_ran != NULL, "both spinners ran while the ticker ticked");
    CHECK(!spinners[0].timed_out && !spinners[1].timed_out, "the ticker finished while the spinners spun");
    CHECK(!under_shim() || atomic_load(&max_threads) <= 2, "no spare OS thread (one worker and the monitor)");
    return test_exit_status();
}
