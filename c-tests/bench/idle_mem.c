/* asyncshim benchmark: memory cost of idle threads.
 *
 * Starts N threads (default 10,000) that each sleep (usleep loop) until told to stop. With all of them
 * alive it measures the growth of VmRSS and VmPTE (page tables) of the process since before they were
 * created, and reports it per thread. Also reports the OS thread count and, for information, the growth
 * of the system-wide KernelStack in /proc/meminfo (kernel memory per OS thread; noisy: system-wide).
 *
 * Prints key=value lines on stdout: bytes_per_thread (RSS + page tables), rss_bytes_per_thread,
 * pte_bytes_per_thread, os_threads, ...
 *
 * Usage: idle_mem [N]      Build: gcc -O2 -pthread idle_mem.c -o idle_mem -ldl
 */
#include "bench_common.h"
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

static atomic_int started;
static atomic_int stop;

static void *sleeper(void *arg) {
    (void)arg;
    atomic_fetch_add(&started, 1);
    while (!atomic_load(&stop)) usleep(50 * 1000);
    return NULL;
}

int main(int argc, char **argv) {
    long n = bench_arg(argc, argv, 1, 10000);
    pthread_t *t = calloc((size_t)n, sizeof *t);
    if (!t) { perror("calloc"); return 1; }

    long rss0 = bench_status("VmRSS"), pte0 = bench_status("VmPTE"), ks0 = bench_meminfo("KernelStack");
    long created = 0;
    long long t0 = bench_now_ns();
    for (; created < n; created++) {
        int rc = pthread_create(&t[created], NULL, sleeper, NULL);
        if (rc != 0) {
            fprintf(stderr, "idle_mem: pthread_create #%ld: %s\n", created + 1, strerror(rc));
            break;
        }
    }
    long long t1 = bench_now_ns();
    /* Wait (bounded) until every thread has run, then let things settle briefly. */
    for (int i = 0; i < 30000 && atomic_load(&started) < created; i++) usleep(1000);
    usleep(100 * 1000);
    long rss1 = bench_status("VmRSS"), pte1 = bench_status("VmPTE"), ks1 = bench_meminfo("KernelStack");
    long threads = bench_status("Threads");
    int alive = atomic_load(&started);

    atomic_store(&stop, 1);
    for (long i = 0; i < created; i++) pthread_join(t[i], NULL);
    long long t2 = bench_now_ns();

    long m = created > 0 ? created : 1;
    printf("benchmark=idle_mem\n");
    printf("shim_active=%d\n", bench_shim_active());
    printf("workers=%d\n", bench_shim_workers());
    printf("threads_requested=%ld\n", n);
    printf("threads_created=%ld\n", created);
    printf("threads_running=%d\n", alive);
    printf("os_threads=%ld\n", threads);
    printf("rss_kb_before=%ld\n", rss0);
    printf("rss_kb=%ld\n", rss1);
    printf("pte_kb_before=%ld\n", pte0);
    printf("pte_kb=%ld\n", pte1);
    printf("rss_bytes_per_thread=%.0f\n", (rss1 - rss0) * 1024.0 / m);
    printf("pte_bytes_per_thread=%.0f\n", (pte1 - pte0) * 1024.0 / m);
    printf("bytes_per_thread=%.0f\n", ((rss1 - rss0) + (pte1 - pte0)) * 1024.0 / m);
    printf("kernel_stack_bytes_per_thread=%.0f\n", (ks1 - ks0) * 1024.0 / m);
    printf("create_ms=%.1f\n", (t1 - t0) / 1e6);
    printf("total_ms=%.1f\n", (t2 - t0) / 1e6);
    free(t);
    return created == n ? 0 : 1;
}
