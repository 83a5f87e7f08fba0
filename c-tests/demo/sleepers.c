/* asyncshim demo: many threads that mostly sleep.
 *
 * Starts N threads (default 10,000; first argument or DEMO_THREADS). Each sleeps in a loop, 20 x 100 ms
 * by default, counting its wake-ups in a __thread variable and checking it every time, and stays alive
 * until the main thread has taken its measurement. While all of them are alive, the main thread reads
 * /proc/self/status: OS threads ("Threads:"), VmRSS and VmPTE (page tables). Then it joins them all.
 *
 * Natively every thread is an OS thread; under asyncshim they are coroutines on a few worker threads.
 *
 * Prints key=value lines on stdout (read by scripts/demo.sh): os_threads, rss_kb, pte_kb, create_ms,
 * total_ms, tls_errors, ... Exit status 0 when every thread was created and ran correctly.
 *
 * Usage: sleepers [N [SLEEPS [SLEEP_MS]]]      Build: gcc -O2 -pthread sleepers.c -o sleepers -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long sleeps = 20;
static long sleep_us = 100 * 1000;

static atomic_long started;
static atomic_int measured;
static atomic_long tls_errors;
static __thread long wakeups; /* each thread's own counter */

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long status_field(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    size_t n = strlen(field);
    long v = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') { v = strtol(line + n + 1, NULL, 10); break; }
    fclose(f);
    return v;
}

static int shim_call(const char *name) {
    int (*f)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, name);
    return f ? f() : -1;
}

static long arg_or(int argc, char **argv, int i, const char *env, long dflt) {
    const char *s = argc > i ? argv[i] : (env ? getenv(env) : NULL);
    if (!s || !*s) return dflt;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end != '\0' || v <= 0) {
        fprintf(stderr, "sleepers: bad number '%s'\n", s);
        exit(2);
    }
    return v;
}

static void *sleeper(void *arg) {
    (void)arg;
    atomic_fetch_add(&started, 1);
    for (long i = 0; i < sleeps || !atomic_load(&measured); i++) {
        usleep((useconds_t)sleep_us);
        wakeups++;
        if (wakeups != i + 1) atomic_fetch_add(&tls_errors, 1);
    }
    return (void *)(intptr_t)wakeups;
}

int main(int argc, char **argv) {
    long n = arg_or(argc, argv, 1, "DEMO_THREADS", 10000);
    sleeps = arg_or(argc, argv, 2, NULL, sleeps);
    sleep_us = arg_or(argc, argv, 3, NULL, sleep_us / 1000) * 1000;
    pthread_t *t = calloc((size_t)n, sizeof *t);
    if (!t) { perror("sleepers: calloc"); return 1; }

    long rss0 = status_field("VmRSS"), pte0 = status_field("VmPTE");
    long long t0 = now_ns();
    long created = 0;
    int create_err = 0;
    for (; created < n; created++) {
        int rc = pthread_create(&t[created], NULL, sleeper, NULL);
        if (rc != 0) { create_err = rc; break; }
    }
    long long t1 = now_ns();
    if (create_err)
        fprintf(stderr, "sleepers: pthread_create failed after %ld threads: %s\n", created, strerror(create_err));

    /* Every thread has started (bounded wait: 30 s); none can finish before `measured` is set. */
    long long deadline = t1 + 30LL * 1000000000LL;
    while (atomic_load(&started) < created && now_ns() < deadline) usleep(1000);
    long running = atomic_load(&started);
    long threads = status_field("Threads"), rss = status_field("VmRSS"), pte = status_field("VmPTE");
    atomic_store(&measured, 1);

    long bad_returns = 0;
    for (long i = 0; i < created; i++) {
        void *ret = NULL;
        pthread_join(t[i], &ret);
        if ((intptr_t)ret < sleeps) bad_returns++;
    }
    long long t2 = now_ns();

    printf("threads_requested=%ld\n", n);
    printf("threads_created=%ld\n", created);
    printf("threads_running=%ld\n", running);
    printf("shim_active=%d\n", shim_call("asyncshim_is_active") > 0);
    printf("workers=%d\n", shim_call("asyncshim_worker_count"));
    printf("os_threads=%ld\n", threads);
    printf("rss_kb_before=%ld\n", rss0);
    printf("rss_kb=%ld\n", rss);
    printf("pte_kb_before=%ld\n", pte0);
    printf("pte_kb=%ld\n", pte);
    printf("create_ms=%.1f\n", (t1 - t0) / 1e6);
    printf("total_ms=%.1f\n", (t2 - t0) / 1e6);
    printf("tls_errors=%ld\n", atomic_load(&tls_errors) + bad_returns);
    free(t);
    return (created == n && running == n && atomic_load(&tls_errors) == 0 && bad_returns == 0) ? 0 : 1;
}
