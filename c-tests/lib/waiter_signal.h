/* waiter_signal.h — the signal handler of the tests of a thread interrupted while it waits (not a test
 * itself): it counts its runs, notes whether it ran in the waiting thread (`waiter`) and on that thread's
 * own stack (which the waiter notes with note_waiter_stack()), and leaves by siglongjmp to `env` in the
 * scenarios that ask for it (handler_reset). */
#ifndef WAITER_SIGNAL_H
#define WAITER_SIGNAL_H
#include "test_util.h"
#include <pthread.h>
#include <setjmp.h>

static __attribute__((unused)) pthread_t waiter;
static __attribute__((unused)) sigjmp_buf env;
/* What the handler saw: how many runs, in the waiter, on the waiter's own stack. */
static __attribute__((unused)) int handled, in_waiter, on_own_stack;
/* Whether the handler leaves by siglongjmp(env, 1) in this scenario. */
static __attribute__((unused)) int handler_longjmps;
static __attribute__((unused)) char *stack_lo, *stack_hi;

static __attribute__((unused)) void on_signal(int sig)
{
    (void)sig;
    char here;
    ATOMIC_ADD(&handled, 1);
    if (pthread_equal(pthread_self(), waiter))
        ATOMIC_STORE(&in_waiter, 1);
    if (&here > stack_lo && &here < stack_hi)
        ATOMIC_STORE(&on_own_stack, 1);
    if (handler_longjmps)
        siglongjmp(env, 1);
}

/* Called by the waiting thread: its stack, where the handler must run. */
static __attribute__((unused)) void note_waiter_stack(void)
{
    void *addr = NULL;
    size_t size = 0;
    own_stack(&addr, &size);
    stack_lo = addr;
    stack_hi = (char *)addr + size;
}

/* A new scenario: nothing seen yet; the handler leaves by siglongjmp when `longjmps`. */
static __attribute__((unused)) void handler_reset(int longjmps)
{
    handled = in_waiter = on_own_stack = 0;
    handler_longjmps = longjmps;
}

#endif /* WAITER_SIGNAL_H */
