/* Several instances of one real-time signal pending for a thread and let through at once: the kernel sets
 * up a handler frame for each instance it can deliver, oldest first, and the top frame's handler runs
 * first. A handler with SA_NODEFER does not block its own signal, so every instance gets a frame and the
 * newest runs first (3, 2, 1); without SA_NODEFER, or with the signal in its sa_mask, the next instance
 * waits until the handler returns (1, 2, 3). SIGUSR1 pending too has the lowest frame (it runs last).
 * Each handler prints the instance's value, its depth and whether its mask blocks the signal.
 * Made pending by pthread_sigqueue while the thread blocks it, then let through by pthread_sigmask or by
 * sigsuspend's temporary mask; or sent to the process by sigqueue while every thread blocks it.
 * asyncshim-test: timeout=60 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sig_trace.h"

static void on_rt(int sig, siginfo_t *si, void *ctx)
{
    (void)sig;
    (void)ctx;
    int saved = errno;
    depth++;
    sigset_t now;
    pthread_sigmask(SIG_BLOCK, NULL, &now);
    put('0' + si->si_value.sival_int);
    put('0' + depth);
    put(sigismember(&now, SIGRTMIN) ? 'b' : '-');
    put(' ');
    depth--;
    errno = saved;
}

static void on_usr1(int sig)
{
    (void)sig;
    int saved = errno;
    depth++;
    put('u');
    put('0' + depth);
    put(' ');
    depth--;
    errno = saved;
}

/* How the handler is installed. */
enum style { NODEFER, DEFER, NODEFER_SELF_IN_MASK };

static void install(enum style s)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_rt;
    sa.sa_flags = SA_SIGINFO | (s != DEFER ? SA_NODEFER : 0);
    sigemptyset(&sa.sa_mask);
    if (s == NODEFER_SELF_IN_MASK)
        sigaddset(&sa.sa_mask, SIGRTMIN);
    sigaction(SIGRTMIN, &sa, NULL);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
}

static sigset_t both;
static sem_t sent;
/* 't': sent to the thread; 'u': and SIGUSR1; 's': let through by sigsuspend; 'p': sent to the process. */
static char how;

static void *target(void *arg)
{
    (void)arg;
    while (sem_wait(&sent) != 0) {
    }
    if (how == 's') {
        sigset_t temp;
        pthread_sigmask(SIG_BLOCK, NULL, &temp);
        sigdelset(&temp, SIGRTMIN);
        sigdelset(&temp, SIGUSR1);
        int r = sigsuspend(&temp);
        put(r == -1 && errno == EINTR ? 'E' : '?');
        put(' ');
    }
    pthread_sigmask(SIG_UNBLOCK, &both, NULL);
    return NULL;
}

static void run(char h, enum style s)
{
    how = h;
    install(s);
    pthread_t t;
    pthread_create(&t, NULL, target, NULL);
    if (h == 'u')
        pthread_kill(t, SIGUSR1);
    for (int v = 1; v <= 3; v++) {
        union sigval val = { .sival_int = v };
        if (h == 'p')
            sigqueue(getpid(), SIGRTMIN, val);
        else
            pthread_sigqueue(t, SIGRTMIN, val);
    }
    if (h == 'p') {
        /* Sent to the process: under the shim an idle worker whose mask still lets the signal through
         * (a thread accepted it a moment ago) may be taking the instances; let it hold them all before the
         * thread unblocks (natively they wait in the process's queue either way). */
        struct timespec settle = { 0, 20000000 };
        nanosleep(&settle, NULL);
    }
    sem_post(&sent);
    pthread_join(t, NULL);
    const char *hs = h == 't' ? "to the thread, unblocked"
                     : h == 'u' ? "to the thread with SIGUSR1, unblocked"
                     : h == 's' ? "to the thread, sigsuspend"
                                : "to the process, unblocked";
    const char *ss = s == NODEFER ? "SA_NODEFER" : s == DEFER ? "deferred" : "SA_NODEFER, itself in sa_mask";
    printf("%s, %s: %s\n", hs, ss, trace_end());
}

int main(void)
{
    sigemptyset(&both);
    sigaddset(&both, SIGRTMIN);
    sigaddset(&both, SIGUSR1);
    sem_init(&sent, 0, 0);
    /* Every thread starts with both blocked (main keeps them blocked throughout). */
    pthread_sigmask(SIG_BLOCK, &both, NULL);
    /* Sent to the process first: no thread has accepted SIGRTMIN yet, so no idle worker takes the
     * instances in its own context (where SA_NODEFER would stack their frames too, and they would be held
     * newest first: see README, Signal differences). */
    const char hows[] = "ptus";
    for (int h = 0; h < 4; h++)
        for (int s = NODEFER; s <= NODEFER_SELF_IN_MASK; s++)
            run(hows[h], (enum style)s);
    return 0;
}
