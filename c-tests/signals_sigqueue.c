/* Queued signals with values: pthread_sigqueue to another thread runs its handler in that thread with
 * si_code SI_QUEUE, our pid and uid and the value; real-time signals sent while the thread blocks them are
 * queued once per send and delivered in order when it unblocks, a standard one only once (the first
 * value); sigwaitinfo takes them with their values; a thread sending to itself runs the handler before the
 * call returns; rt_tgsigqueueinfo through syscall() to a thread's tid does the same (EPERM for a siginfo
 * that pretends to be the kernel's or tgkill's, ESRCH for a wrong process id, EINVAL for a bad signal);
 * sigqueue to the process, or to a thread's tid (which names the process), reaches the process's
 * handler, and so does kill of a thread's tid. Bad signals are EINVAL (out of range, glibc's reserved
 * one), signal 0 checks, and a thread that ended is ESRCH.
 * asyncshim-test: timeout=120 */
#include "test_util.h"
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>

#define NT 4
#define MAXREC 16

struct rec {
    int sig, code, value, pid_ok, uid_ok, in_thread;
};

static __thread int my_index = -1;
static struct rec recs[NT + 1][MAXREC];
static int nrec[NT + 1];
static pid_t tids[NT + 1];
static pthread_t handles[NT + 1];
static int phase[NT + 1], go[NT + 1], done;
static char lines[4][200];

static void on_sig(int sig, siginfo_t *si, void *ctx)
{
    (void)ctx;
    int i = my_index < 0 ? 0 : my_index;
    int n = ATOMIC_LOAD(&nrec[i]);
    if (n < MAXREC) {
        struct rec *r = &recs[i][n];
        r->sig = sig;
        r->code = si->si_code;
        r->value = si->si_value.sival_int;
        r->pid_ok = si->si_pid == getpid();
        r->uid_ok = si->si_uid == getuid();
        r->in_thread = gettid() == tids[i];
    }
    ATOMIC_ADD(&nrec[i], 1);
}

static int cmp_code_value(const void *a, const void *b)
{
    const struct rec *x = a, *y = b;
    return x->code != y->code ? x->code - y->code : x->value - y->value;
}

static void print_recs(const char *what, int i, int from)
{
    int n = ATOMIC_LOAD(&nrec[i]);
    printf("%s: %d handled:", what, n - from);
    for (int k = from; k < n && k < MAXREC; k++) {
        struct rec *r = &recs[i][k];
        printf(" [sig%+d %s value=%d pid=%d uid=%d here=%d]", r->sig - SIGRTMIN, si_code_name(r->code), r->value,
               r->pid_ok, r->uid_ok, r->in_thread);
    }
    printf("\n");
}

static void block(int sig, int how)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    pthread_sigmask(how, &s, NULL);
}

static void wait_phase(int i, int p)
{
    if (!wait_at_least(&go[i], p, 1, 60000)) {
        printf("thread %d: phase %d never came\n", i, p);
        exit(3);
    }
}

static void *thread_main(void *arg)
{
    int i = (int)(intptr_t)arg;
    my_index = i;
    tids[i] = gettid();
    ATOMIC_STORE(&phase[i], 1);
    if (i == 2) {
        /* Blocks the signals, lets main queue some, then unblocks: each queued one runs now, in order. */
        block(SIGRTMIN, SIG_BLOCK);
        block(SIGUSR1, SIG_BLOCK);
        ATOMIC_STORE(&phase[i], 2);
        wait_phase(i, 1);
        block(SIGRTMIN, SIG_UNBLOCK);
        block(SIGUSR1, SIG_UNBLOCK);
        ATOMIC_STORE(&phase[i], 3);
    } else if (i == 3) {
        /* Takes queued signals with sigwaitinfo, values and all. */
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGRTMIN + 1);
        pthread_sigmask(SIG_BLOCK, &s, NULL);
        ATOMIC_STORE(&phase[i], 2);
        for (int k = 0; k < 2; k++) {
            siginfo_t si;
            memset(&si, 0, sizeof si);
            int sig = sigwaitinfo(&s, &si);
            snprintf(lines[k], sizeof lines[k], "sigwaitinfo %d: sig%+d %s value=%d pid=%d\n", k, sig - SIGRTMIN,
                     si_code_name(si.si_code), si.si_value.sival_int, si.si_pid == getpid());
        }
        ATOMIC_STORE(&phase[i], 3);
    } else if (i == 4) {
        /* Sends to itself: the handler has run when the call returns. */
        union sigval v = { .sival_int = 44 };
        int r = pthread_sigqueue(pthread_self(), SIGRTMIN, v);
        snprintf(lines[2], sizeof lines[2], "self pthread_sigqueue: %s, handled before return: %d\n", errname(r),
                 ATOMIC_LOAD(&nrec[i]));
        siginfo_t si = sent_siginfo(SIGRTMIN, SI_TKILL, 45);
        /* SI_TKILL to oneself is allowed (only another thread's is EPERM). */
        r = (int)syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), SIGRTMIN, &si);
        snprintf(lines[3], sizeof lines[3], "self rt_tgsigqueueinfo SI_TKILL: %d, handled before return: %d\n", r,
                 ATOMIC_LOAD(&nrec[i]));
        ATOMIC_STORE(&phase[i], 3);
    }
    while (!ATOMIC_LOAD(&done))
        sleep_ms(1);
    return NULL;
}

static int sigqueue_rc(pthread_t t, int sig, int value)
{
    union sigval v = { .sival_int = value };
    return pthread_sigqueue(t, sig, v);
}

static void wait_count(int i, int n, const char *what)
{
    if (!wait_at_least(&nrec[i], n, 1, 60000))
        printf("%s: timed out waiting for %d handled (have %d)\n", what, n, ATOMIC_LOAD(&nrec[i]));
}

static void *short_thread(void *arg)
{
    *(pid_t *)arg = gettid();
    return NULL;
}

int main(void)
{
    test_init();
    set_siginfo_handler(SIGRTMIN, on_sig, SA_RESTART, NULL);
    set_siginfo_handler(SIGRTMIN + 1, on_sig, SA_RESTART, NULL);
    set_siginfo_handler(SIGRTMIN + 2, on_sig, SA_RESTART, NULL);
    set_siginfo_handler(SIGUSR1, on_sig, SA_RESTART, NULL);
    tids[0] = gettid();
    my_index = 0;

    /* The process-directed signal goes to main only: the threads start with it blocked. */
    block(SIGRTMIN + 2, SIG_BLOCK);
    for (int i = 1; i <= NT; i++) {
        pthread_create(&handles[i], NULL, thread_main, (void *)(intptr_t)i);
    }
    block(SIGRTMIN + 2, SIG_UNBLOCK);
    for (int i = 1; i <= NT; i++)
        if (!wait_at_least(&phase[i], i == 1 ? 1 : (i == 4 ? 3 : 2), 1, 60000))
            printf("thread %d did not start\n", i);

    /* 1: to a running (sleeping) thread. */
    printf("pthread_sigqueue running: %s\n", errname(sigqueue_rc(handles[1], SIGRTMIN, 42)));
    wait_count(1, 1, "running");
    print_recs("running", 1, 0);

    /* 2: queued while blocked, delivered in order when unblocked; SIGUSR1 once. */
    for (int v = 1; v <= 3; v++)
        printf("queue rt %d: %s\n", v, errname(sigqueue_rc(handles[2], SIGRTMIN, v)));
    printf("queue usr1 a: %s\n", errname(sigqueue_rc(handles[2], SIGUSR1, 10)));
    printf("queue usr1 b: %s\n", errname(sigqueue_rc(handles[2], SIGUSR1, 11)));
    ATOMIC_STORE(&go[2], 1);
    if (!wait_at_least(&phase[2], 3, 1, 60000))
        printf("thread 2 did not unblock\n");
    print_recs("unblocked", 2, 0);

    /* 3: sigwaitinfo. */
    printf("queue for sigwaitinfo: %s\n", errname(sigqueue_rc(handles[3], SIGRTMIN + 1, 7)));
    printf("queue for sigwaitinfo: %s\n", errname(sigqueue_rc(handles[3], SIGRTMIN + 1, 8)));
    if (!wait_at_least(&phase[3], 3, 1, 60000))
        printf("thread 3 did not take its signals\n");
    printf("%s%s", lines[0], lines[1]);

    /* 4: to itself. */
    printf("%s%s", lines[2], lines[3]);
    print_recs("self", 4, 0);

    /* rt_tgsigqueueinfo through syscall(). */
    siginfo_t si = sent_siginfo(SIGRTMIN, SI_QUEUE, 99);
    int r = (int)syscall(SYS_rt_tgsigqueueinfo, getpid(), tids[1], SIGRTMIN, &si);
    printf("rt_tgsigqueueinfo: %d %s\n", r, r ? errname(errno) : "");
    wait_count(1, 2, "rt_tgsigqueueinfo");
    print_recs("rt_tgsigqueueinfo", 1, 1);
    si.si_code = SI_TKILL;
    r = (int)syscall(SYS_rt_tgsigqueueinfo, getpid(), tids[1], SIGRTMIN, &si);
    printf("rt_tgsigqueueinfo SI_TKILL to another: %d %s\n", r, r ? errname(errno) : "");
    si.si_code = SI_USER;
    r = (int)syscall(SYS_rt_tgsigqueueinfo, getpid(), tids[1], SIGRTMIN, &si);
    printf("rt_tgsigqueueinfo SI_USER to another: %d %s\n", r, r ? errname(errno) : "");
    si.si_code = SI_QUEUE;
    r = (int)syscall(SYS_rt_tgsigqueueinfo, 1, tids[1], SIGRTMIN, &si);
    printf("rt_tgsigqueueinfo wrong tgid: %d %s\n", r, r ? errname(errno) : "");
    r = (int)syscall(SYS_rt_tgsigqueueinfo, getpid(), tids[1], 70, &si);
    printf("rt_tgsigqueueinfo bad signal: %d %s\n", r, r ? errname(errno) : "");
    r = (int)syscall(SYS_rt_tgsigqueueinfo, getpid(), tids[1], 0, &si);
    printf("rt_tgsigqueueinfo signal 0: %d %s\n", r, r ? errname(errno) : "");
    r = (int)syscall(SYS_rt_tgsigqueueinfo, getpid(), 0, SIGRTMIN, &si);
    printf("rt_tgsigqueueinfo tid 0: %d %s\n", r, r ? errname(errno) : "");
    print_recs("after refusals", 1, 2);

    /* sigqueue to the process and to a thread's tid (the process): main's handler, each instance with its
     * own siginfo, in order (sent at once: the shim may hold them all before main takes them). */
    union sigval v = { .sival_int = 5 };
    r = sigqueue(getpid(), SIGRTMIN + 2, v);
    printf("sigqueue process: %d\n", r);
    v.sival_int = 6;
    r = sigqueue(tids[1], SIGRTMIN + 2, v);
    printf("sigqueue thread's tid: %d %s\n", r, r ? errname(errno) : "");
    r = kill(tids[1], SIGRTMIN + 2);
    printf("kill thread's tid: %d %s\n", r, r ? errname(errno) : "");
    wait_count(0, 3, "sigqueue");
    /* Sorted (sigqueue's by value, then kill's): with more than one worker the shim may take instances that
     * reach different workers at once out of order (README; signals_rt_held checks the order where it is
     * the kernel's). */
    int nproc = ATOMIC_LOAD(&nrec[0]);
    qsort(recs[0], (size_t)(nproc < MAXREC ? nproc : MAXREC), sizeof recs[0][0], cmp_code_value);
    print_recs("process", 0, 0);

    /* Bad values. */
    printf("signal 0: %s\n", errname(sigqueue_rc(handles[1], 0, 1)));
    printf("signal 65: %s\n", errname(sigqueue_rc(handles[1], 65, 1)));
    printf("signal -1: %s\n", errname(sigqueue_rc(handles[1], -1, 1)));
    printf("SIGCANCEL: %s\n", errname(sigqueue_rc(handles[1], SIGRTMIN - 2, 1)));
    printf("SIGSETXID: %s\n", errname(sigqueue_rc(handles[1], SIGRTMIN - 1, 1)));

    /* A thread that ended (not yet joined): ESRCH once its tid is gone. */
    pthread_t t;
    pid_t short_tid = 0;
    pthread_create(&t, NULL, short_thread, &short_tid);
    int rc = 0;
    for (int k = 0; k < 60000 && (rc = sigqueue_rc(t, SIGRTMIN, 1)) == 0; k++)
        sleep_ms(1);
    printf("ended thread: %s\n", errname(rc));
    /* Natively the tid names the exiting thread a little longer than glibc's pthread_t does (the kernel
     * clears glibc's tid before it releases the task): the call succeeds until it is gone. */
    for (int k = 0; k < 60000 && (r = (int)syscall(SYS_rt_tgsigqueueinfo, getpid(), short_tid, SIGRTMIN, &si)) == 0;
         k++)
        sleep_ms(1);
    printf("rt_tgsigqueueinfo ended thread: %d %s\n", r, r ? errname(errno) : "");
    pthread_join(t, NULL);

    ATOMIC_STORE(&done, 1);
    for (int i = 1; i <= NT; i++)
        pthread_join(handles[i], NULL);
    print_recs("at end, running thread", 1, 0);
    return test_exit_status();
}
