/* Several signals pending for a thread and let through at once run as the kernel runs them natively: it
 * sets up a handler frame for the lowest deliverable signal, adds the handler's sa_mask and the signal to
 * the thread's mask, sets up the next deliverable one on top, and so on; the top frame's handler runs
 * first. SIGUSR1, SIGUSR2 and two SIGRTMIN are made pending for a thread that blocks them, then let through
 * together, with handlers whose sa_mask is empty (natively RT, RT, USR2, USR1, each handler with the
 * signals of the frames below it blocked) and with handlers whose sa_mask blocks the other three (USR1,
 * USR2, RT, RT). Each handler prints its place, its depth (handlers of the thread running at its entry)
 * and which of the four its mask blocks.
 * A: sent by pthread_kill while the thread blocks them, then one pthread_sigmask unblocks all four;
 * B: the same, let through by sigsuspend's temporary mask: the first handler's return puts the thread's
 *    own mask back, so with blocking sa_masks only USR1 runs in sigsuspend and the rest stay pending
 *    (printed after sigsuspend returns) until the thread unblocks them;
 * C: the thread's own raise()s while it blocks them, then one pthread_sigmask unblocks all four.
 * asyncshim-test: timeout=60 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "sig_trace.h"

static char letter(int sig)
{
    return sig == SIGUSR1 ? '1' : sig == SIGUSR2 ? '2' : 'r';
}

static void handler(int sig)
{
    int saved = errno;
    depth++;
    put_handler_view(letter(sig));
    depth--;
    errno = saved;
}

static sigset_t four;
static sem_t sent;
static char which;

static void install(int blocking)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    if (blocking)
        sa.sa_mask = four;
    else
        sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    sigaction(SIGRTMIN, &sa, NULL);
}

static void *target(void *arg)
{
    (void)arg;
    if (which == 'C') {
        raise(SIGUSR1);
        raise(SIGUSR2);
        raise(SIGRTMIN);
        raise(SIGRTMIN);
    } else {
        while (sem_wait(&sent) != 0) {
        }
    }
    put_pending();
    if (which == 'B') {
        sigset_t temp;
        pthread_sigmask(SIG_BLOCK, NULL, &temp);
        sigdelset(&temp, SIGUSR1);
        sigdelset(&temp, SIGUSR2);
        sigdelset(&temp, SIGRTMIN);
        int r = sigsuspend(&temp);
        put(r == -1 && errno == EINTR ? 'E' : '?');
        put(' ');
        put_pending();
    }
    pthread_sigmask(SIG_UNBLOCK, &four, NULL);
    put_pending();
    return NULL;
}

int main(void)
{
    sigemptyset(&four);
    sigaddset(&four, SIGUSR1);
    sigaddset(&four, SIGUSR2);
    sigaddset(&four, SIGRTMIN);
    sem_init(&sent, 0, 0);
    /* Every thread starts with the four blocked (main keeps them blocked throughout). */
    pthread_sigmask(SIG_BLOCK, &four, NULL);
    const char cases[] = "ABC";
    for (int c = 0; c < 3; c++) {
        for (int blocking = 0; blocking < 2; blocking++) {
            which = cases[c];
            install(blocking);
            pthread_t t;
            pthread_create(&t, NULL, target, NULL);
            if (which != 'C') {
                pthread_kill(t, SIGUSR1);
                pthread_kill(t, SIGUSR2);
                pthread_kill(t, SIGRTMIN);
                pthread_kill(t, SIGRTMIN);
                sem_post(&sent);
            }
            pthread_join(t, NULL);
            printf("%c %s: %s\n", which, blocking ? "sa_mask blocks the others" : "empty sa_mask", trace_end());
        }
    }
    return 0;
}
