/* 100,000 threads alive at once under the shim (5,000 natively, where each thread costs two mappings
 * and vm.max_map_count is 65,530): all alive together, far fewer mappings than threads, and after they
 * end most of their memory goes back to the kernel (a burst does not pin RSS).
 * asyncshim-test: timeout=120 */
#include "shim_probe.h"
#include "test_util.h"
#include "glibc_compat.h"
#include <pthread.h>
#include <stdio.h>

static int alive, release_gate;

static int count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return -1;
    int n = 0, c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static void *sleeper(void *arg)
{
    volatile char touch[2048];
    touch[0] = (char)(intptr_t)arg;
    ATOMIC_ADD(&alive, 1);
    while (!ATOMIC_LOAD(&release_gate))
        sleep_ms(250);
    return (void *)(intptr_t)(touch[0] + 1);
}

int main(void)
{
    test_init();
    int shim = under_shim();
    int n = shim ? 100000 : 5000;
    pthread_t *t = calloc((size_t)n, sizeof *t);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 << 10);
    int created = 0;
    for (int i = 0; i < n; i++)
        if (pthread_create(&t[i], &attr, sleeper, (void *)(intptr_t)(i & 63)) == 0)
            created++;
    CHECK(created == n, "every thread created");
    CHECK(wait_at_least(&alive, n, 5, 60000), "all threads alive at once");
    long rss_peak = proc_status_field("VmRSS");
    int maps = count_maps();
    fprintf(stderr, "threads=%d OS threads=%d maps=%d rss=%ld KiB\n", n, os_threads(), maps, rss_peak);
    /* Under the shim mappings stay far below the thread count; natively every thread has its own, unless
     * glibc (2.42 and later) guards the stacks with MADV_GUARD_INSTALL, which lets them merge. */
    CHECK(shim ? maps < 1000 : maps > n || glibc_at_least(2, 42),
          "mappings as expected (shim: a few; native: one or more per thread)");
    ATOMIC_STORE(&release_gate, 1);
    long sum = 0;
    for (int i = 0; i < created; i++) {
        void *r;
        pthread_join(t[i], &r);
        sum += (intptr_t)r;
    }
    long expect = 0;
    for (int i = 0; i < n; i++)
        expect += (i & 63) + 1;
    CHECK(sum == expect, "every thread returned its value");
    long rss_after = proc_status_field("VmRSS");
    fprintf(stderr, "rss after join=%ld KiB (peak %ld)\n", rss_after, rss_peak);
    CHECK(rss_after < rss_peak / 3, "memory of ended threads returns to the kernel");
    free(t);
    return test_exit_status();
}
