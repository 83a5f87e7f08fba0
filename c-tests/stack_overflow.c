/* stack_overflow: a thread created with a 256 KiB stack recurses without end (a volatile 1 KiB array
 * per frame, so nothing can be optimised away). Natively it runs into the guard page and the process
 * dies of SIGSEGV (status 139). Under the shim the process must die the same way, and the library must
 * first report on stderr the stack overflow, the stack size and how to get a bigger stack
 * (ASYNCSHIM_STACK_SIZE, pthread_attr_setstacksize) and where it overflowed: see stack_overflow.shim-stderr.
 * asyncshim-test: status=139 */
#include "shim_probe.h"
#include "test_util.h"
#include <pthread.h>

static volatile unsigned long deepest;
static volatile int never; /* always 0: only keeps the compiler from warning about the recursion */

static __attribute__((noinline)) unsigned long dive(unsigned long depth)
{
    volatile char frame[1024];
    frame[0] = (char)depth;
    frame[sizeof frame - 1] = (char)(depth >> 8);
    deepest = depth;
    if (never)
        return 0;
    unsigned long r = dive(depth + 1);
    return r + frame[0] + frame[sizeof frame - 1];
}

static void *overflow(void *arg)
{
    (void)arg;
    printf("thread with a 256 KiB stack recurses without end\n");
    fflush(stdout);
    return (void *)dive(0);
}

int main(void)
{
    test_init();
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    CHECK(pthread_attr_setstacksize(&attr, 256 * 1024) == 0, "setstacksize(256 KiB)");
    int rc = pthread_create(&t, &attr, overflow, NULL); /* from here on the thread may die at any time */
    if (rc != 0) {
        printf("pthread_create: %s\n", errname(rc));
        return 1;
    }
    pthread_join(t, NULL);
    printf("unreachable: the recursion returned (depth %lu)\n", deepest);
    return 1;
}
