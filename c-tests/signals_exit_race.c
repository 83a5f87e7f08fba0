/* Process-directed real-time signals sent while threads that accept them come and go: the kernel keeps
 * every instance in the process's queue until a thread takes it, so none is lost when the thread it
 * would have gone to ends first. Main and the sender block the signal; short-lived threads that accept
 * it are started and end all the time (some sleep briefly, some end at once, some end by pthread_exit
 * from a destructor-free path), while the sender queues SENDS instances with distinct values. At the
 * end main unblocks the signal and takes what is still pending. Printed: how many instances came,
 * whether each value came exactly once, and the si_code of all.
 * Under the shim, a worker that takes such a signal holds it and routes it to a coroutine that accepts
 * it; an instance routed to a coroutine that ends before taking it must go back to the process.
 * asyncshim-test: timeout=120 */
#include "test_util.h"
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>

#define SENDS 3000
#define CHURNERS 4

static unsigned char seen[SENDS];
static int received, bad_code, dup_or_bad;
static int stop;

static void on_sig(int sig, siginfo_t *si, void *ctx)
{
    (void)sig;
    (void)ctx;
    int v = si->si_value.sival_int;
    if (si->si_code != SI_QUEUE)
        ATOMIC_ADD(&bad_code, 1);
    if (v < 0 || v >= SENDS || __atomic_exchange_n(&seen[v], 1, __ATOMIC_SEQ_CST))
        ATOMIC_ADD(&dup_or_bad, 1);
    ATOMIC_ADD(&received, 1);
}

static void *short_lived(void *arg)
{
    long kind = (long)arg;
    /* The thread accepts the signal (it inherits main's mask, which blocks it). */
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGRTMIN);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    switch (kind % 4) {
    case 1: {
        struct timespec ts = {0, 20000};
        nanosleep(&ts, NULL);
        break;
    }
    case 2:
        sched_yield();
        pthread_exit(NULL);
    case 3:
        /* Blocks it again before it ends: an instance on its way to it stays the process's. */
        for (volatile int i = 0; i < 2000; i++)
            ;
        pthread_sigmask(SIG_BLOCK, &s, NULL);
        sched_yield();
        break;
    }
    return NULL;
}

static void *churner(void *arg)
{
    long k = (long)arg;
    while (!ATOMIC_LOAD(&stop)) {
        pthread_t t;
        if (pthread_create(&t, NULL, short_lived, (void *)k++) == 0)
            pthread_join(t, NULL);
    }
    return NULL;
}

static void *sender(void *arg)
{
    (void)arg;
    pid_t pid = getpid();
    for (int i = 0; i < SENDS; i++) {
        union sigval v = {.sival_int = i};
        while (sigqueue(pid, SIGRTMIN, v) != 0) {
            if (errno != EAGAIN) {
                printf("sigqueue: %s\n", errname(errno));
                exit(1);
            }
            sched_yield();
        }
        if (i % 16 == 15) {
            struct timespec ts = {0, 50000};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sig;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGRTMIN, &sa, NULL);

    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGRTMIN);
    pthread_sigmask(SIG_BLOCK, &s, NULL);

    pthread_t ch[CHURNERS], snd;
    for (long i = 0; i < CHURNERS; i++)
        pthread_create(&ch[i], NULL, churner, (void *)i);
    pthread_create(&snd, NULL, sender, NULL);
    pthread_join(snd, NULL);
    ATOMIC_STORE(&stop, 1);
    for (int i = 0; i < CHURNERS; i++)
        pthread_join(ch[i], NULL);

    int before = ATOMIC_LOAD(&received);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    /* What is pending for the process is delivered now; give stragglers (a handler still running in an
     * ended thread's context cannot be) a moment. */
    for (int i = 0; i < 200 && ATOMIC_LOAD(&received) < SENDS; i++) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    int missing = 0;
    for (int i = 0; i < SENDS; i++)
        missing += !seen[i];
    fprintf(stderr, "taken by short-lived threads: %d, by main at the end: %d\n", before,
            ATOMIC_LOAD(&received) - before);
    printf("received %d of %d, missing %d, duplicated or bad %d, bad si_code %d\n", ATOMIC_LOAD(&received),
           SENDS, missing, dup_or_bad, bad_code);
    return 0;
}
