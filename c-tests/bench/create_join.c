/* asyncshim benchmark: thread create + join latency.
 *
 * Creates one thread, joins it, and repeats ITERATIONS times (default 20,000) after a short warm-up.
 * Prints key=value lines on stdout:  ns_per_op (one pthread_create + pthread_join), iterations, ...
 *
 * Usage: create_join [ITERATIONS]      Build: gcc -O2 -pthread create_join.c -o create_join -ldl
 */
#include "bench_common.h"
#include <pthread.h>
#include <stdint.h>

static void *child(void *arg) {
    return (void *)((uintptr_t)arg + 1);
}

static int create_join(long n) {
    for (long i = 0; i < n; i++) {
        pthread_t t;
        int rc = pthread_create(&t, NULL, child, (void *)(uintptr_t)i);
        if (rc != 0) {
            fprintf(stderr, "create_join: pthread_create: %s\n", strerror(rc));
            return -1;
        }
        void *ret;
        rc = pthread_join(t, &ret);
        if (rc != 0) {
            fprintf(stderr, "create_join: pthread_join: %s\n", strerror(rc));
            return -1;
        }
        if ((uintptr_t)ret != (uintptr_t)i + 1) {
            fprintf(stderr, "create_join: wrong return value %lu (expected %ld)\n", (unsigned long)(uintptr_t)ret, i + 1);
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    long iterations = bench_arg(argc, argv, 1, 20000);
    long warmup = iterations / 20 + 1;
    if (create_join(warmup) != 0) return 1;
    long long t0 = bench_now_ns();
    if (create_join(iterations) != 0) return 1;
    long long t1 = bench_now_ns();
    double ns = (double)(t1 - t0) / (double)iterations;
    printf("benchmark=create_join\n");
    printf("shim_active=%d\n", bench_shim_active());
    printf("iterations=%ld\n", iterations);
    printf("elapsed_ms=%.1f\n", (t1 - t0) / 1e6);
    printf("ns_per_op=%.0f\n", ns);
    return 0;
}
