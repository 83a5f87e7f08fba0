/* Helpers shared by the asyncshim benchmarks in c-tests/bench. Header-only, Linux/glibc. */
#ifndef ASYNCSHIM_BENCH_COMMON_H
#define ASYNCSHIM_BENCH_COMMON_H

#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline long long bench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Value of "Field:" in a /proc file whose lines look like "Field:   123 kB" (or "Threads:  5"); -1 if absent. */
static inline long bench_proc_field(const char *file, const char *field) {
    FILE *f = fopen(file, "r");
    if (!f) return -1;
    char line[256];
    size_t n = strlen(field);
    long v = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            v = strtol(line + n + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

static inline long bench_status(const char *field) { return bench_proc_field("/proc/self/status", field); }
static inline long bench_meminfo(const char *field) { return bench_proc_field("/proc/meminfo", field); }

/* 1 when running under an active asyncshim (the library exports asyncshim_is_active and it says so). */
static inline int bench_shim_active(void) {
    int (*f)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "asyncshim_is_active");
    return f ? f() != 0 : 0;
}

/* asyncshim_worker_count() when available, else -1. */
static inline int bench_shim_workers(void) {
    int (*f)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "asyncshim_worker_count");
    return f ? f() : -1;
}

/* Positive integer from argv[i] or the default; exits with status 2 on garbage. */
static inline long bench_arg(int argc, char **argv, int i, long dflt) {
    if (argc <= i) return dflt;
    char *end;
    long v = strtol(argv[i], &end, 10);
    if (*argv[i] == '\0' || *end != '\0' || v <= 0) {
        fprintf(stderr, "%s: bad argument '%s' (expected a positive integer)\n", argv[0], argv[i]);
        exit(2);
    }
    return v;
}

#endif
