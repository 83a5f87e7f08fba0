/* deep_stack: threads get the stacks glibc would give them.
 *  - a thread with the default attributes uses 6 MiB of locals (recursion, 64 KiB volatile array per
 *    frame); the default is RLIMIT_STACK (8 MiB here, as `ulimit -s` usually is);
 *  - a thread created with pthread_attr_setstacksize(64 MiB) uses about 40 MiB;
 *  - pthread_getattr_np on self reports a stack range that contains a local variable and a size >= the
 *    requested one (only booleans are printed), in both threads and in main;
 *  - a thread on a caller-provided stack (pthread_attr_setstack) runs on that memory. */
#include "shim_probe.h"
#include "test_util.h"
#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>

#define FRAME (64 * 1024)

static __attribute__((noinline)) unsigned long recurse(int depth, unsigned seed)
{
    volatile unsigned char buf[FRAME];
    for (int i = 0; i < FRAME; i += 512)
        buf[i] = (unsigned char)(seed + i / 512 + depth);
    unsigned long sum = 0;
    if (depth > 1)
        sum = recurse(depth - 1, seed * 33 + 1);
    for (int i = 0; i < FRAME; i += 512)
        sum += buf[i];
    return sum;
}

/* The checksum recurse(depth, seed) computes, without using the stack. */
static unsigned long expected_sum(int depth, unsigned seed)
{
    unsigned long sum = 0;
    for (int d = depth; d >= 1; d--) {
        for (int i = 0; i < FRAME; i += 512)
            sum += (unsigned char)(seed + i / 512 + d);
        seed = seed * 33 + 1;
    }
    return sum;
}

struct job {
    int depth;
    size_t requested;   /* 0: default */
    void *user_stack;   /* for pthread_attr_setstack */
    size_t user_size;
    unsigned long sum;
    int local_in_stack;
    int size_ok;
    int guard_below;
};

static void inspect_self(struct job *j)
{
    void *addr = NULL;
    size_t size = 0;
    int local;
    if (own_stack(&addr, &size) != 0)
        return;
    uintptr_t lo = (uintptr_t)addr, hi = lo + size, p = (uintptr_t)&local;
    j->local_in_stack = p >= lo && p < hi;
    j->size_ok = size >= j->requested;
    if (j->user_stack)
        j->size_ok = j->size_ok && lo >= (uintptr_t)j->user_stack && hi <= (uintptr_t)j->user_stack + j->user_size;
    fprintf(stderr, "stack [%p, %p) size %zu KiB, local at %p\n", addr, (void *)hi, size / 1024, (void *)&local);
}

static void *run(void *arg)
{
    struct job *j = arg;
    inspect_self(j);
    j->sum = recurse(j->depth, 7);
    return NULL;
}

static int run_job(struct job *j, pthread_attr_t *attr)
{
    pthread_t t;
    int rc = pthread_create(&t, attr, run, j);
    if (rc != 0) {
        fprintf(stderr, "pthread_create: %s\n", strerror(rc));
        return 0;
    }
    pthread_join(t, NULL);
    return 1;
}

int main(void)
{
    test_init();
    struct rlimit rl;
    getrlimit(RLIMIT_STACK, &rl);
    int default_8m = rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= 8u << 20;
    fprintf(stderr, "RLIMIT_STACK %llu KiB\n", (unsigned long long)rl.rlim_cur / 1024);
    if (!default_8m)
        fprintf(stderr, "note: RLIMIT_STACK below 8 MiB or unlimited; glibc then uses 2 MiB or the limit\n");

    /* main thread */
    struct job m = { 0 };
    inspect_self(&m);
    CHECK(m.local_in_stack, "main: getattr_np stack range contains a local");

    /* default attributes, 6 MiB of locals (only when the default stack is 8 MiB, as glibc derives
     * it from RLIMIT_STACK) */
    unsigned long want6 = expected_sum(96, 7);
    CHECK(recurse(16, 7) == expected_sum(16, 7), "main: 1 MiB of locals, right checksum");
    struct job d = { .depth = 96, .requested = 6u << 20 };
    if (default_8m) {
        CHECK(run_job(&d, NULL), "default thread created");
        CHECK(d.sum == want6, "default thread: 6 MiB of locals, right checksum");
        CHECK(d.local_in_stack, "default thread: getattr_np stack range contains a local");
        CHECK(d.size_ok, "default thread: stack size >= 6 MiB");
    } else {
        printf("default thread: skipped (RLIMIT_STACK)\n");
    }

    /* 64 MiB requested, ~40 MiB used */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    CHECK(pthread_attr_setstacksize(&attr, 64u << 20) == 0, "setstacksize(64 MiB)");
    struct job b = { .depth = 640, .requested = 64u << 20 };
    CHECK(run_job(&b, &attr), "64 MiB thread created");
    pthread_attr_destroy(&attr);
    CHECK(b.sum == expected_sum(640, 7), "64 MiB thread: 40 MiB of locals, right checksum");
    CHECK(b.local_in_stack, "64 MiB thread: getattr_np stack range contains a local");
    CHECK(b.size_ok, "64 MiB thread: stack size >= 64 MiB");

    /* caller-provided stack */
    size_t usz = 4u << 20;
    void *ustack = NULL;
    if (posix_memalign(&ustack, 65536, usz) != 0)
        return 1;
    pthread_attr_init(&attr);
    CHECK(pthread_attr_setstack(&attr, ustack, usz) == 0, "setstack(4 MiB buffer)");
    struct job u = { .depth = 32, .requested = usz, .user_stack = ustack, .user_size = usz };
    CHECK(run_job(&u, &attr), "thread on a caller-provided stack created");
    pthread_attr_destroy(&attr);
    CHECK(u.sum == expected_sum(32, 7), "user stack thread: 2 MiB of locals, right checksum");
    CHECK(u.local_in_stack, "user stack thread: a local lies in the reported range");
    CHECK(u.size_ok, "user stack thread: reported range is the caller's buffer");
    free(ustack);
    return test_exit_status();
}
