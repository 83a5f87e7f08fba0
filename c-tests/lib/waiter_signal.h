/* waiter_signal.h — the signal handler of the tests of a thread interrupted while it waits, and how they
 * start that thread (not a test itself). The handler counts its runs, notes whether it ran in the waiting
 * thread (`waiter`) and on that thread's own stack (which the waiter notes with note_waiter_stack()), and
 * leaves by siglongjmp to `env` in the scenarios that ask for it (handler_reset). It takes SIGUSR1, sent to
 * the waiter, and SIGUSR2, sent to the whole process: only the waiter takes SIGUSR2. */
#ifndef WAITER_SIGNAL_H
#define WAITER_SIGNAL_H
#include "test_util.h"
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>

static __attribute__((unused)) pthread_t waiter;
static __attribute__((unused)) sigjmp_buf env;
/* What the handler saw: how many runs, in the waiter, on the waiter's own stack. */
static __attribute__((unused)) int handled, in_waiter, on_own_stack;
/* Whether the handler leaves by siglongjmp(env, 1) in this scenario. */
static __attribute__((unused)) int handler_longjmps;
static __attribute__((unused)) char *stack_lo, *stack_hi;
/* Set by the waiter just before it waits (start_waiter waits for it). */
static __attribute__((unused)) int armed;

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

/* The main thread, once: blocks SIGUSR2, so that a kill() to the process goes to the waiter. */
static __attribute__((unused)) void process_signal_to_waiter(void)
{
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &usr2, NULL);
}

/* Called by the waiting thread first: notes its stack, and takes SIGUSR2. */
static __attribute__((unused)) void waiter_begins(void)
{
    note_waiter_stack();
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    pthread_sigmask(SIG_UNBLOCK, &usr2, NULL);
}

/* Installs the handler for SIGUSR1 and SIGUSR2, with SA_RESTART when `restart`. */
static __attribute__((unused)) void handler_install(int restart)
{
    set_signal_handler(SIGUSR1, on_signal, restart ? SA_RESTART : 0);
    set_signal_handler(SIGUSR2, on_signal, restart ? SA_RESTART : 0);
}

/* Starts the waiter running `body`; returns once it is about to wait (`armed`), and 30 ms later: most
 * likely waiting by then (the output does not depend on it). */
static __attribute__((unused)) void start_waiter(void *(*body)(void *))
{
    pthread_create(&waiter, NULL, body, NULL);
    while (!ATOMIC_LOAD(&armed))
        sleep_ms(1);
    sleep_ms(30);
}

/* A new scenario: nothing seen yet; the handler leaves by siglongjmp when `longjmps`. */
static __attribute__((unused)) void handler_reset(int longjmps)
{
    handled = in_waiter = on_own_stack = 0;
    handler_longjmps = longjmps;
}

#endif /* WAITER_SIGNAL_H */
