/* churn: 200,000 short-lived threads, created and joined 100 at a time. Each checks that its __thread
 * variable and its pthread key start out zero/NULL (fresh TLS even when stacks or descriptors are
 * reused), mallocs and frees a few sizes, sets both, and returns a value. VmRSS is read after 20k,
 * 100k and 200k threads: RSS at 200k must not exceed RSS at 20k + 16 MiB (only the verdict goes to
 * stdout, the numbers to stderr). The key's destructor must have run once per thread.
 * asyncshim-test: timeout=180 */
#include "shim_probe.h"
#include "test_util.h"
#include <pthread.h>
#include <stdlib.h>

#define TOTAL 200000
#define BATCH 100

static pthread_key_t key;
static __thread long tls_counter;
static __thread char tls_buf[256];
static long dtor_calls;
static long not_fresh;
static long bad_values;

static void dtor(void *p)
{
    (void)p;
    ATOMIC_ADD(&dtor_calls, 1);
}

static void *worker(void *arg)
{
    long id = (long)(intptr_t)arg;
    if (tls_counter != 0 || tls_buf[0] != 0 || tls_buf[255] != 0 || pthread_getspecific(key) != NULL)
        ATOMIC_ADD(&not_fresh, 1);
    static const size_t sizes[] = { 16, 200, 4096, 100000 };
    for (int i = 0; i < 4; i++) {
        char *p = malloc(sizes[i]);
        if (!p)
            abort();
        p[0] = (char)id;
        p[sizes[i] - 1] = (char)i;
        if (p[0] != (char)id)
            ATOMIC_ADD(&bad_values, 1);
        free(p);
    }
    tls_counter = id + 1;
    tls_buf[0] = tls_buf[255] = 1;
    pthread_setspecific(key, (void *)(intptr_t)(id + 1));
    if (pthread_getspecific(key) != (void *)(intptr_t)(id + 1) || tls_counter != id + 1)
        ATOMIC_ADD(&bad_values, 1);
    return (void *)(intptr_t)(id * 2 + 1);
}

int main(void)
{
    test_init();
    pthread_key_create(&key, dtor);
    long rss20 = -1, rss100 = -1, rss200 = -1;
    int create_fail = 0, join_bad = 0;
    int64_t t0 = mono_ns();
    pthread_t th[BATCH];
    for (long base = 0; base < TOTAL; base += BATCH) {
        int n = 0;
        for (int i = 0; i < BATCH; i++) {
            if (pthread_create(&th[i], NULL, worker, (void *)(intptr_t)(base + i)) != 0) {
                create_fail++;
                break;
            }
            n++;
        }
        for (int i = 0; i < n; i++) {
            void *r;
            if (pthread_join(th[i], &r) != 0 || r != (void *)(intptr_t)((base + i) * 2 + 1))
                join_bad++;
        }
        long done = base + BATCH;
        if (done == 20000)
            rss20 = proc_status_field("VmRSS");
        else if (done == 100000)
            rss100 = proc_status_field("VmRSS");
        else if (done == TOTAL)
            rss200 = proc_status_field("VmRSS");
        if (create_fail)
            break;
    }
    fprintf(stderr, "%d threads in %.2f s; VmRSS KiB at 20k %ld, 100k %ld, 200k %ld; OS threads now %d\n", TOTAL,
            (mono_ns() - t0) / 1e9, rss20, rss100, rss200, os_threads());
    CHECK(create_fail == 0, "200000 threads created");
    CHECK(join_bad == 0, "every join returned the thread's value");
    CHECK(not_fresh == 0, "every thread starts with zeroed __thread data and a NULL key");
    CHECK(bad_values == 0, "malloc / __thread / key values right in every thread");
    CHECK(dtor_calls == TOTAL, "key destructor ran once per thread");
    int flat = rss20 > 0 && rss200 > 0 && rss200 <= rss20 + 16 * 1024;
    printf("rss flat: %s\n", flat ? "yes" : "no");
    if (!flat)
        test_failures++;
    return test_exit_status();
}
