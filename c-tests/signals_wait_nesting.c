/* Signals that end a wait with a temporary mask (ppoll, pselect, epoll_pwait, sigsuspend) run as one
 * nesting, as the kernel runs them: one the thread's own mask lets through (A) and one only the call's
 * mask lets through (B), both pending when the wait ends. The kernel sets up a frame for the lower one
 * (saving the thread's own mask, which the wait puts back), adds its handler's mask, sets up the other on
 * top, and the top one runs first; a signal the first handler's mask blocks is left to the thread's own
 * mask when that handler returns (B stays pending until the thread unblocks it).
 * To have both pending before the thread can take either, a child process stops this process (SIGSTOP),
 * waits until every thread of it has stopped, sends B and then A to it (the main thread blocks both, so
 * the waiting thread takes them) and continues it (SIGCONT); the main thread waits for the child without
 * sleeping (see run()).
 * Each handler prints its signal, its depth (handlers of the thread running at its entry) and which of
 * SIGUSR1 and SIGUSR2 its mask blocks; then the wait's result, what is pending after it, and what ran once
 * the thread unblocked both.
 * Cases: A = SIGUSR1 and B = SIGUSR2, then the other way round; handlers whose sa_mask is empty, then
 * blocks the other signal.
 * asyncshim-test: timeout=120 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sig_trace.h"

static void handler(int sig)
{
    int saved = errno;
    depth++;
    put_handler_view(sig == SIGUSR1 ? '1' : '2');
    depth--;
    errno = saved;
}

static void install(int blocking)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    if (blocking) {
        sigaddset(&sa.sa_mask, SIGUSR1);
        sigaddset(&sa.sa_mask, SIGUSR2);
    }
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
}

static int sig_a, sig_b;
static char call; /* 'p' ppoll, 's' pselect, 'e' epoll_pwait, 'u' sigsuspend */
static int pipefd[2];
static volatile int waiting;
static volatile int returned;

static void *target(void *arg)
{
    (void)arg;
    /* Its own mask: B blocked, A let through. */
    sigset_t own;
    sigemptyset(&own);
    sigaddset(&own, sig_b);
    pthread_sigmask(SIG_SETMASK, &own, NULL);
    sigset_t temp;
    sigemptyset(&temp);
    __atomic_store_n(&waiting, 1, __ATOMIC_SEQ_CST);
    int r = 0;
    if (call == 'p') {
        struct pollfd p = { pipefd[0], POLLIN, 0 };
        struct timespec ts = { 30, 0 };
        r = ppoll(&p, 1, &ts, &temp);
    } else if (call == 's') {
        fd_set rs;
        FD_ZERO(&rs);
        FD_SET(pipefd[0], &rs);
        struct timespec ts = { 30, 0 };
        r = pselect(pipefd[0] + 1, &rs, NULL, NULL, &ts, &temp);
    } else if (call == 'e') {
        int ep = epoll_create1(0);
        struct epoll_event ev = { .events = EPOLLIN };
        epoll_ctl(ep, EPOLL_CTL_ADD, pipefd[0], &ev);
        r = epoll_pwait(ep, &ev, 1, 30000, &temp);
        int e = errno;
        close(ep);
        errno = e;
    } else {
        r = sigsuspend(&temp);
    }
    int e = errno;
    __atomic_store_n(&returned, 1, __ATOMIC_SEQ_CST);
    put(r == -1 && e == EINTR ? 'E' : '?');
    put(' ');
    put_pending();
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    put_str("unblocked: ");
    put_pending();
    return NULL;
}

/* Whether every thread of process `pid` is stopped. */
static int all_stopped(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int all = 1, seen = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char stat_path[400], buf[512];
        snprintf(stat_path, sizeof stat_path, "%s/%s/stat", path, e->d_name);
        FILE *f = fopen(stat_path, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        char *close_paren = strrchr(buf, ')');
        if (!close_paren || close_paren[1] != ' ')
            continue;
        seen++;
        char state = close_paren[2];
        if (state != 'T' && state != 't')
            all = 0;
    }
    closedir(d);
    return all && seen > 0;
}

/* The child: stops the parent, sends B then A while it is stopped, continues it. */
static void stopper(pid_t parent)
{
    kill(parent, SIGSTOP);
    struct timespec ms = { 0, 1000000 };
    for (int i = 0; i < 10000 && !all_stopped(parent); i++)
        nanosleep(&ms, NULL);
    kill(parent, sig_b);
    kill(parent, sig_a);
    kill(parent, SIGCONT);
    _exit(0);
}

static void run(char c, int a, int b, int blocking)
{
    call = c;
    sig_a = a;
    sig_b = b;
    waiting = 0;
    returned = 0;
    install(blocking);
    pthread_t t;
    pthread_create(&t, NULL, target, NULL);
    while (!__atomic_load_n(&waiting, __ATOMIC_SEQ_CST)) {
        struct timespec ms = { 0, 1000000 };
        nanosleep(&ms, NULL);
    }
    /* Into its wait (if it is not yet, the signals are pending as it enters: the same outcome). */
    struct timespec wait_in = { 0, 20000000 };
    nanosleep(&wait_in, NULL);
    pid_t parent = getpid();
    pid_t child = fork();
    if (child == 0)
        stopper(parent);
    /* Waits without sleeping until the thread's wait returned (for at most 200 ms): under the shim the
     * main thread then keeps its worker, whose mask blocks both signals, so one idle worker takes both
     * (as the one thread that accepts them natively), not two workers one each, which could hand them to
     * the waiting thread apart. With one worker nothing takes them while the main thread spins: they
     * stay pending in the kernel until it stops spinning, and then the one worker takes both. */
    int status = 0, reaped = 0;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (!reaped && waitpid(child, &status, WNOHANG) == child)
            reaped = 1;
        if (reaped && __atomic_load_n(&returned, __ATOMIC_SEQ_CST))
            break;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) > 200000000L)
            break;
    }
    while (!reaped && waitpid(child, &status, 0) == -1 && errno == EINTR) {
    }
    pthread_join(t, NULL);
    const char *cs = c == 'p' ? "ppoll" : c == 's' ? "pselect" : c == 'e' ? "epoll_pwait" : "sigsuspend";
    printf("%s, A=%s B=%s, %s: %s\n", cs, a == SIGUSR1 ? "USR1" : "USR2", b == SIGUSR1 ? "USR1" : "USR2",
           blocking ? "sa_mask blocks the other" : "empty sa_mask", trace_end());
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (pipe(pipefd) != 0)
        return 1;
    /* The main thread blocks both throughout: the process-directed signals go to the waiting thread. */
    sigset_t both;
    sigemptyset(&both);
    sigaddset(&both, SIGUSR1);
    sigaddset(&both, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &both, NULL);
    const char calls[] = "pseu";
    for (int c = 0; c < 4; c++)
        for (int order = 0; order < 2; order++)
            for (int blocking = 0; blocking < 2; blocking++)
                run(calls[c], order ? SIGUSR2 : SIGUSR1, order ? SIGUSR1 : SIGUSR2, blocking);
    return 0;
}
