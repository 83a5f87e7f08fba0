/* sig_trace.h — a trace of signal handlers as they run, for the tests of the order and masks in which
 * signals are delivered (not a test itself). Handlers append to one buffer with plain stores (a handler
 * must not call stdio); the test prints the trace once the thread it traced is done. Letters: '1' SIGUSR1,
 * '2' SIGUSR2, 'r' SIGRTMIN. */
#ifndef SIG_TRACE_H
#define SIG_TRACE_H

#include <pthread.h>
#include <signal.h>

static char trace[256];
static volatile int tlen;
/* Handlers of the traced thread running now: a handler counts itself in on entry and out on return. */
static volatile int depth;

static __attribute__((unused)) void put(char c)
{
    if (tlen < (int)sizeof trace - 1)
        trace[tlen++] = c;
}

static __attribute__((unused)) void put_str(const char *s)
{
    while (*s)
        put(*s++);
}

/* Which of SIGUSR1, SIGUSR2 and SIGRTMIN `set` holds, as letters ("-" for none). */
static __attribute__((unused)) void put_set(const sigset_t *set)
{
    int any = 0;
    if (sigismember(set, SIGUSR1)) put('1'), any = 1;
    if (sigismember(set, SIGUSR2)) put('2'), any = 1;
    if (sigismember(set, SIGRTMIN)) put('r'), any = 1;
    if (!any) put('-');
}

/* What a handler sees, as "<letter><depth>[<its mask>] ": call between counting itself in and out. */
static __attribute__((unused)) void put_handler_view(char letter)
{
    sigset_t now;
    pthread_sigmask(SIG_BLOCK, NULL, &now);
    put(letter);
    put('0' + depth);
    put('[');
    put_set(&now);
    put(']');
    put(' ');
}

/* The calling thread's pending signals, as "|<set>| ". */
static __attribute__((unused)) void put_pending(void)
{
    sigset_t p;
    sigpending(&p);
    put('|');
    put_set(&p);
    put('|');
    put(' ');
}

/* Ends the trace and returns it; the next one starts empty. */
static __attribute__((unused)) const char *trace_end(void)
{
    trace[tlen] = 0;
    tlen = 0;
    return trace;
}

#endif /* SIG_TRACE_H */
