/* preempt_stack_full.c — a thread computing with its stack almost used up (issue 14): preempting it would
 * need room for its saved registers on that stack, so the shim refuses (and tries again later), never
 * overflowing it. A thread with a 64 KiB stack recurses until less than 12 KiB are left and computes
 * there while another thread computes normally; both results must be native's. Under the shim the
 * program also runs itself again with the statistics report and checks that it counted refusals for the
 * full stack. ASYNCSHIM_WORKERS=1 and ASYNCSHIM_MAX_SPARES=0 (set when it runs itself again).
 * asyncshim-test: timeout=60 */
#include "shim_probe.h"
#include "test_util.h"
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uintptr_t stack_low;

static unsigned long spin(unsigned long x, long n)
{
    for (long i = 0; i < n; i++)
        x = x * 6364136223846793005UL + 1442695040888963407UL;
    return x;
}

__attribute__((noinline)) static unsigned long deep(int depth, unsigned long x)
{
    volatile char pad[1024];
    pad[0] = (char)depth;
    uintptr_t here = (uintptr_t)&pad[0];
    if (here - stack_low > 12 * 1024) {
        unsigned long r = deep(depth + 1, x);
        /* Never true (pad[0] is the depth), but the compiler must keep the frame for it. */
        if (pad[0] == 127 && depth > 1000)
            r++;
        return r;
    }
    return spin(x, 300L * 1000 * 1000);
}

static void *full_stack_thread(void *arg)
{
    void *addr = NULL;
    size_t size = 0;
    own_stack(&addr, &size);
    stack_low = (uintptr_t)addr;
    return (void *)(deep(0, (unsigned long)arg) | 1);
}

static void *plain_thread(void *arg)
{
    return (void *)(spin((unsigned long)arg, 300L * 1000 * 1000) | 1);
}

int main(int argc, char **argv)
{
    rerun_with_env(argv, "PREEMPT_STACK_RERUN", (const char *const[]){ "ASYNCSHIM_WORKERS", "1", "ASYNCSHIM_MAX_SPARES", "0", NULL });
    test_init();
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 64 * 1024);
    pthread_t t1, t2;
    CHECK(pthread_create(&t1, &a, full_stack_thread, (void *)7) == 0, "small-stack thread created");
    CHECK(pthread_create(&t2, NULL, plain_thread, (void *)9) == 0, "plain thread created");
    void *r1, *r2;
    pthread_join(t1, &r1);
    pthread_join(t2, &r2);
    printf("results %lx %lx\n", (unsigned long)r1, (unsigned long)r2);
    if (argc > 1)
        return test_exit_status();
    if (under_shim()) {
        int status;
        long refused = rerun_for_report("again", NULL, NULL, 0, "stack almost full ", &status);
        fprintf(stderr, "refusals for a full stack in the second run: %ld\n", refused);
        CHECK(status == 0 && refused > 0, "the second run counted refusals for the full stack");
    } else {
        CHECK(1, "the second run counted refusals for the full stack");
    }
    return test_exit_status();
}
