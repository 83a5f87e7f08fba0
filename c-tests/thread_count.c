/* thread_count: 5,000 threads alive at once, each blocked in sleep / usleep / nanosleep polling a
 * release flag (no mutex or condition variable waits). While all are alive the number of OS threads is
 * read from /proc/self/status: natively every thread is an OS thread (>= 5,000); under the shim they
 * are coroutines on at most shim_workers() worker threads (+ a few helpers: <= workers + 8).
 * Counts go to stderr, only the verdicts to stdout. */
#include "shim_probe.h"
#include "test_util.h"
#include <pthread.h>

#define NTHREADS 5000

static int arrived, released, finished;

static void *worker(void *arg)
{
    int kind = (int)(intptr_t)arg % 3;
    ATOMIC_ADD(&arrived, 1);
    while (!ATOMIC_LOAD(&released)) {
        if (kind == 0) {
            struct timespec ts = { 0, 100 * 1000000L };
            nanosleep(&ts, NULL);
        } else if (kind == 1) {
            usleep(100000);
        } else {
            sleep(1);
        }
    }
    ATOMIC_ADD(&finished, 1);
    return (void *)((intptr_t)arg + 1);
}

int main(void)
{
    static pthread_t th[NTHREADS];
    test_init();
    int64_t t0 = mono_ns();
    int created = 0;
    for (int i = 0; i < NTHREADS; i++) {
        int rc = pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i);
        if (rc != 0) {
            fprintf(stderr, "pthread_create #%d: %s\n", i, strerror(rc));
            break;
        }
        created++;
    }
    CHECK(created == NTHREADS, "5000 threads created");
    CHECK(wait_at_least(&arrived, created, 10, 60000), "all threads running at once");
    int n = os_threads();
    int shim = under_shim(), workers = shim_workers();
    fprintf(stderr, "%d threads alive after %.2f s; OS threads: %d; under shim: %d, workers: %d\n", created,
            (mono_ns() - t0) / 1e9, n, shim, workers);
    /* the same line both ways; the bound differs by design */
    CHECK(shim ? workers > 0 && n <= workers + 8 : n >= NTHREADS,
          "OS thread count (native: >= 5000; shim: <= workers + 8)");
    ATOMIC_STORE(&released, 1);
    int ok = 1;
    for (int i = 0; i < created; i++) {
        void *r;
        if (pthread_join(th[i], &r) != 0 || r != (void *)(intptr_t)(i + 1))
            ok = 0;
    }
    CHECK(ok && finished == created, "all threads joined with their values");
    fprintf(stderr, "done after %.2f s, OS threads now %d\n", (mono_ns() - t0) / 1e9, os_threads());
    return test_exit_status();
}
