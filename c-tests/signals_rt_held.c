/* Many instances of process-directed real-time signals, of one number and of several, each sent with
 * sigqueue and its own value: they queue (each delivered once, with SI_QUEUE, our pid and its value, lowest
 * number first, first in first out within a number) while standard signals merge. Sent in bursts
 *  A. while every thread blocks them, then taken by sigwaitinfo;
 *  B. while every thread blocks them, then delivered to handlers when main unblocks them;
 *  C. to main while it waits for a mutex the sender holds (handlers run in the wait);
 *  D. to a thread sleeping in nanosleep (each ends the sleep with EINTR; it sleeps again);
 *  E. to a thread that computes (yielding) while the sender runs;
 *  F. to two sleeping threads at once (which takes which varies: printed sorted).
 * Under the shim, a worker that takes such a signal in its own context holds it until a thread takes it;
 * every instance must come through once with its siginfo, and in order (C-E) natively and with one worker.
 * With more workers, instances the kernel hands to different workers at once can be taken out of order
 * (README): C-E print them sorted, the order taken goes to stderr.
 * asyncshim-test: timeout=120 */
#include "shim_probe.h"
#include "test_util.h"
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>

#define PER 8           /* instances per real-time number in a burst */
#define NRT 3           /* real-time numbers: SIGRTMIN .. SIGRTMIN+2 */
#define BURST (PER * NRT)
#define MAXREC 512

struct rec {
    int sig, code, value, pid_ok, who;
};

static struct rec recs[MAXREC];
static int nrec;
static __thread int my_id;
static int ready, stop;

static void on_sig(int sig, siginfo_t *si, void *ctx)
{
    (void)ctx;
    int n = ATOMIC_ADD(&nrec, 1) - 1;
    if (n < MAXREC) {
        struct rec *r = &recs[n];
        r->sig = sig;
        r->code = si->si_code;
        r->value = si->si_value.sival_int;
        r->pid_ok = si->si_pid == getpid();
        r->who = my_id;
    }
}

static const char *sig_name(int sig)
{
    static char buf[4][16];
    static int k;
    char *b = buf[k++ % 4];
    if (sig == SIGUSR1)
        return "USR1";
    snprintf(b, 16, "RT+%d", sig - SIGRTMIN);
    return b;
}

static void the_set(sigset_t *s)
{
    sigemptyset(s);
    sigaddset(s, SIGUSR1);
    for (int k = 0; k < NRT; k++)
        sigaddset(s, SIGRTMIN + k);
}

static void mask_all(int how)
{
    sigset_t s;
    the_set(&s);
    pthread_sigmask(how, &s, NULL);
}

static void send(int sig, int value)
{
    union sigval v = { .sival_int = value };
    if (sigqueue(getpid(), sig, v) != 0)
        printf("sigqueue %s %d: %s\n", sig_name(sig), value, errname(errno));
}

/* Interleaved, highest number first (the order taken must not be the order sent), with two SIGUSR1. */
static void send_interleaved(int base)
{
    send(SIGUSR1, base + 90);
    for (int k = 0; k < BURST; k++)
        send(SIGRTMIN + NRT - 1 - k % NRT, base + k);
    send(SIGUSR1, base + 91);
}

/* Ascending (number, then value): the order a thread that takes them as they come sees too. */
static void send_ascending(int base)
{
    for (int k = 0; k < BURST; k++)
        send(SIGRTMIN + k / PER, base + k);
}

static void *interleaved_sender(void *arg)
{
    send_interleaved((int)(intptr_t)arg);
    return NULL;
}

static void print_recs(const char *what, int from, int to)
{
    printf("%s: %d handled\n", what, to - from);
    for (int k = from; k < to && k < MAXREC; k++)
        printf("  %s %s value=%d pid=%d\n", sig_name(recs[k].sig), si_code_name(recs[k].code), recs[k].value,
               recs[k].pid_ok);
}

static int cmp_rec(const void *a, const void *b)
{
    const struct rec *x = a, *y = b;
    return x->sig != y->sig ? x->sig - y->sig : x->value - y->value;
}

/* The instances a thread took as they came (C-E): each once, lowest number first, in order within one;
 * the order is checked where it is the kernel's (natively, the shim with one worker), printed sorted. */
static void print_taken(const char *what, int from, int to)
{
    int in_order = 1;
    fprintf(stderr, "%s, in the order taken:", what);
    for (int k = from; k < to && k < MAXREC; k++) {
        fprintf(stderr, " %d:%d", recs[k].sig - SIGRTMIN, recs[k].value);
        if (k > from && cmp_rec(&recs[k - 1], &recs[k]) > 0)
            in_order = 0;
    }
    fprintf(stderr, "\n");
    if (!in_order) {
        if (!under_shim() || shim_workers() == 1) {
            printf("%s: taken out of order\n", what);
            test_failures++;
        } else {
            fprintf(stderr, "%s: taken out of order (%d workers)\n", what, shim_workers());
        }
    }
    qsort(&recs[from], (size_t)(to - from), sizeof recs[0], cmp_rec);
    print_recs(what, from, to);
}

static void wait_count(int n, const char *what)
{
    if (!wait_at_least(&nrec, n, 1, 30000))
        printf("%s: timed out waiting for %d handled (have %d)\n", what, n, ATOMIC_LOAD(&nrec));
}

/* C: main waits for this mutex while the sender holds it and sends. */
static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static int locked, target_count;

static void *locking_sender(void *arg)
{
    int base = (int)(intptr_t)arg;
    pthread_mutex_lock(&held_lock);
    ATOMIC_STORE(&locked, 1);
    sleep_ms(20); /* main is (most likely) waiting for the lock by now; either way the output is the same */
    send_ascending(base);
    wait_count(ATOMIC_LOAD(&target_count), "mutex wait");
    pthread_mutex_unlock(&held_lock);
    return NULL;
}

/* D, F: a thread that takes the signals in nanosleep; E: one that computes, yielding. */
static void *sleeper(void *arg)
{
    my_id = (int)(intptr_t)arg;
    int eintr = 0;
    mask_all(SIG_UNBLOCK);
    ATOMIC_ADD(&ready, 1);
    while (!ATOMIC_LOAD(&stop)) {
        struct timespec ts = { 0, 20 * 1000 * 1000 };
        if (nanosleep(&ts, NULL) != 0 && errno == EINTR)
            eintr = 1;
    }
    mask_all(SIG_BLOCK);
    return (void *)(intptr_t)eintr;
}

static void *computer(void *arg)
{
    my_id = (int)(intptr_t)arg;
    mask_all(SIG_UNBLOCK);
    ATOMIC_ADD(&ready, 1);
    while (!ATOMIC_LOAD(&stop))
        sched_yield();
    mask_all(SIG_BLOCK);
    return NULL;
}

/* Starts n threads running fn (ids first_id...), sends a burst (values from base) while they run, waits
 * until it was all taken, stops and joins them (*result: the first one's); returns the burst's first
 * record. */
static int burst_to_threads(const char *what, void *(*fn)(void *), int n, int first_id, int base, void **result)
{
    pthread_t ts[2];
    int from = ATOMIC_LOAD(&nrec);
    ATOMIC_STORE(&ready, 0);
    ATOMIC_STORE(&stop, 0);
    for (int i = 0; i < n; i++)
        pthread_create(&ts[i], NULL, fn, (void *)(intptr_t)(first_id + i));
    if (!wait_at_least(&ready, n, 1, 30000))
        printf("%s: threads did not start\n", what);
    send_ascending(base);
    wait_count(from + BURST, what);
    ATOMIC_STORE(&stop, 1);
    for (int i = 0; i < n; i++)
        pthread_join(ts[i], i == 0 ? result : NULL);
    return from;
}

int main(void)
{
    test_init();
    sigset_t set;
    the_set(&set);
    /* No handler nests in another: one instance at a time, in the kernel's order. */
    set_siginfo_handler(SIGUSR1, on_sig, SA_RESTART, &set);
    for (int k = 0; k < NRT; k++)
        set_siginfo_handler(SIGRTMIN + k, on_sig, SA_RESTART, &set);
    /* Every thread blocks them unless it unblocks them itself (threads inherit main's mask). */
    mask_all(SIG_BLOCK);

    /* A: sigwaitinfo takes them: USR1 once, then each real-time instance by number, in order. */
    pthread_t t;
    pthread_create(&t, NULL, interleaved_sender, (void *)(intptr_t)100);
    pthread_join(t, NULL);
    printf("A: sigwaitinfo\n");
    for (int k = 0; k < BURST + 1; k++) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        int sig = sigwaitinfo(&set, &si);
        if (sig < 0) {
            printf("  sigwaitinfo: %s\n", errname(errno));
            break;
        }
        printf("  %s %s value=%d pid=%d\n", sig_name(sig), si_code_name(si.si_code), si.si_value.sival_int,
               si.si_pid == getpid());
    }
    struct timespec short_wait = { 0, 50 * 1000 * 1000 };
    int r = sigtimedwait(&set, NULL, &short_wait);
    printf("A: then: %d %s\n", r, r < 0 ? errname(errno) : "");

    /* B: unblocking runs the handlers, in the same order. */
    pthread_create(&t, NULL, interleaved_sender, (void *)(intptr_t)200);
    pthread_join(t, NULL);
    int from = ATOMIC_LOAD(&nrec);
    mask_all(SIG_UNBLOCK);
    mask_all(SIG_BLOCK);
    print_recs("B: unblocked", from, ATOMIC_LOAD(&nrec));

    /* C: main waits for a mutex; its handler runs for each instance in the wait. */
    from = ATOMIC_LOAD(&nrec);
    ATOMIC_STORE(&target_count, from + BURST);
    pthread_create(&t, NULL, locking_sender, (void *)(intptr_t)300);
    if (!wait_at_least(&locked, 1, 1, 30000))
        printf("C: sender did not lock\n");
    mask_all(SIG_UNBLOCK);
    pthread_mutex_lock(&held_lock);
    mask_all(SIG_BLOCK);
    pthread_mutex_unlock(&held_lock);
    pthread_join(t, NULL);
    print_taken("C: in a mutex wait", from, ATOMIC_LOAD(&nrec));

    /* D: a thread sleeping in nanosleep takes them. */
    void *eintr = NULL;
    from = burst_to_threads("D", sleeper, 1, 1, 400, &eintr);
    print_taken("D: in nanosleep", from, ATOMIC_LOAD(&nrec));
    printf("D: nanosleep ended with EINTR: %d\n", (int)(intptr_t)eintr);

    /* E: a thread that computes (yielding) takes them. */
    from = burst_to_threads("E", computer, 1, 2, 500, NULL);
    print_taken("E: computing", from, ATOMIC_LOAD(&nrec));

    /* F: two sleeping threads share them: each instance exactly once (sorted: who took which varies). */
    from = burst_to_threads("F", sleeper, 2, 3, 600, NULL);
    int to = ATOMIC_LOAD(&nrec);
    int by[5] = { 0 };
    for (int k = from; k < to && k < MAXREC; k++)
        by[recs[k].who]++;
    fprintf(stderr, "F: thread 3 took %d, thread 4 took %d\n", by[3], by[4]);
    qsort(&recs[from], (size_t)(to - from), sizeof recs[0], cmp_rec);
    print_recs("F: two sleepers, sorted", from, to);

    /* Nothing left over anywhere. */
    r = sigtimedwait(&set, NULL, &short_wait);
    printf("end: %d %s\n", r, r < 0 ? errname(errno) : "");
    return test_exit_status();
}
