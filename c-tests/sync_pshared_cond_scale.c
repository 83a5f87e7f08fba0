/* sync_pshared_cond_scale.c — many threads of this process (coroutines under the shim, one worker in the
 * shim-w1 mode) and of 3 other processes that run glibc natively (each forked and exec'd again without
 * LD_PRELOAD, 4 threads each) on one process-shared condition variable and errorcheck mutex:
 *  A. a barrier made of the condition variable (30 rounds; the last arriver, of any process, broadcasts);
 *  B. 400 items handed out one pthread_cond_signal at a time to all 36 consumers;
 *  C. timed waits on a second condition variable (CLOCK_MONOTONIC) that time out, then timed waits that a
 *     broadcast ends, the mutex held again after each; meanwhile, under the shim, the process's OS
 *     threads stay bounded (the coroutines' waits hold no thread each);
 *  D. a waiting coroutine is cancelled: its cleanup handler finds the mutex locked again, and the
 *     signals sent afterwards (exactly one per remaining waiter, all in the other processes) all arrive;
 *  E. a signal handler runs in a waiting thread and the wait goes on until signalled, without a spurious
 *     return.
 * Under the shim a re-run checks the statistics: no helper thread made any of these waits (no
 * process-shared futex offload) and the kernel made them (io_uring futex waits). Counts and results only
 * on stdout; no timing is judged.
 * asyncshim-test: timeout=180 */
#include "shim_probe.h"
#include "sync_util.h"
#include "test_util.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NLOCAL 24
#define NPROC 3
#define NPER 4
#define P (NLOCAL + NPROC * NPER)
#define ROUNDS 30
#define ITEMS 400

struct shared {
    pthread_mutex_t m;
    pthread_cond_t c;
    pthread_cond_t c2;
    int arrived;
    unsigned gen;
    long rounds_done;
    int items;
    int produced_all;
    long consumed;
    long timed_out;
    long timed_ok;
    long timed_held;
    int c_waiting;
    int c_flag;
    int d_waiting;
    int d_flag;
    int d_woke;
    int e_waiting;
    int e_flag;
};

static struct shared *sh;

/* A hang guard: a wait for a predicate that must come true, bounded at 60 s. */
static int guarded_wait(pthread_cond_t *c)
{
    struct timespec ts;
    ts = deadline_in(CLOCK_REALTIME, 60000);
    int r = pthread_cond_timedwait(c, &sh->m, &ts);
    if (r == ETIMEDOUT)
        fprintf(stderr, "guarded wait timed out (pid %d)\n", (int)getpid());
    return r;
}

static void cond_barrier(void)
{
    pthread_mutex_lock(&sh->m);
    unsigned mine = sh->gen;
    if (++sh->arrived == P) {
        sh->arrived = 0;
        sh->gen++;
        pthread_cond_broadcast(&sh->c);
    } else {
        while (sh->gen == mine)
            if (guarded_wait(&sh->c) == ETIMEDOUT)
                break;
    }
    sh->rounds_done++;
    pthread_mutex_unlock(&sh->m);
}

/* The part every participant plays, in this process or another: A, B, C. */
static void *participant(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++)
        cond_barrier();
    /* B: consume until the producer is done and nothing is left. */
    pthread_mutex_lock(&sh->m);
    for (;;) {
        if (sh->items > 0) {
            sh->items--;
            sh->consumed++;
            continue;
        }
        if (sh->produced_all)
            break;
        if (guarded_wait(&sh->c) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&sh->m);
    /* C: a wait nobody ends, then one a broadcast ends. */
    struct timespec ts;
    pthread_mutex_lock(&sh->m);
    ts = deadline_in(CLOCK_MONOTONIC, 30);
    int r = pthread_cond_timedwait(&sh->c2, &sh->m, &ts);
    if (r == ETIMEDOUT)
        sh->timed_out++;
    int tr = pthread_mutex_trylock(&sh->m);
    if (tr == EBUSY)
        sh->timed_held++;
    else
        fprintf(stderr, "C: after the first wait (%s) in pid %d trylock gave %s\n", errname(r), (int)getpid(), errname(tr));
    sh->c_waiting++;
    pthread_cond_broadcast(&sh->c);
    ts = deadline_in(CLOCK_MONOTONIC, 60000);
    while (!sh->c_flag) {
        r = pthread_cond_timedwait(&sh->c2, &sh->m, &ts);
        if (r != 0)
            break;
    }
    if (r == 0 && sh->c_flag)
        sh->timed_ok++;
    else
        fprintf(stderr, "C: second wait in pid %d ended with %s, flag %d\n", (int)getpid(), errname(r), sh->c_flag);
    tr = pthread_mutex_trylock(&sh->m);
    if (tr == EBUSY)
        sh->timed_held++;
    else
        fprintf(stderr, "C: after the second wait (%s) in pid %d trylock gave %s\n", errname(r), (int)getpid(), errname(tr));
    pthread_mutex_unlock(&sh->m);
    return NULL;
}

/* D in another process: wait for the flag set after the cancellation. */
static void d_wait_for_flag(void)
{
    pthread_mutex_lock(&sh->m);
    sh->d_waiting++;
    pthread_cond_broadcast(&sh->c);
    while (!sh->d_flag)
        if (guarded_wait(&sh->c) == ETIMEDOUT)
            break;
    sh->d_woke++;
    pthread_cond_broadcast(&sh->c2);
    pthread_mutex_unlock(&sh->m);
}

static int child_main(void)
{
    pthread_t t[NPER];
    for (int i = 0; i < NPER; i++)
        pthread_create(&t[i], NULL, participant, NULL);
    for (int i = 0; i < NPER; i++)
        pthread_join(t[i], NULL);
    d_wait_for_flag();
    return 0;
}

static int cleanup_unlock = -1;

static void d_cleanup(void *arg)
{
    (void)arg;
    /* errorcheck: 0 only if the cancelled wait locked the mutex again for this thread */
    cleanup_unlock = pthread_mutex_unlock(&sh->m);
}

static void *d_cancelled_waiter(void *arg)
{
    (void)arg;
    pthread_cleanup_push(d_cleanup, NULL);
    pthread_mutex_lock(&sh->m);
    sh->d_waiting++;
    pthread_cond_broadcast(&sh->c);
    while (!sh->d_flag)
        pthread_cond_wait(&sh->c, &sh->m);
    pthread_mutex_unlock(&sh->m);
    pthread_cleanup_pop(0);
    return NULL;
}

static volatile sig_atomic_t handled;
static void on_usr1(int sig)
{
    (void)sig;
    handled++;
}

static int e_returns;
static void *e_waiter(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&sh->m);
    sh->e_waiting = 1;
    pthread_cond_broadcast(&sh->c);
    while (!sh->e_flag) {
        if (guarded_wait(&sh->c2) == ETIMEDOUT)
            break;
        e_returns++;
    }
    pthread_mutex_unlock(&sh->m);
    return NULL;
}

/* The main thread waits (as a coroutine under the shim) until *v reaches want. */
static void main_wait_for(int *v, int want, pthread_cond_t *c)
{
    while (*v < want)
        if (guarded_wait(c) == ETIMEDOUT)
            break;
}

int main(int argc, char **argv)
{
    test_init();
    if (argc == 3 && strcmp(argv[1], "child") == 0) {
        sh = memfd_area_of(argv[2], sizeof *sh);
        return child_main();
    }
    int fd;
    sh = memfd_area("cond_scale", sizeof *sh, &fd);
    init_mutex(&sh->m, PTHREAD_MUTEX_ERRORCHECK, 0, 0, 1);
    init_cond(&sh->c, 1);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&sh->c2, &ca);
    pthread_condattr_destroy(&ca);
    set_signal_handler(SIGUSR1, on_usr1, 0);

    pid_t kids[NPROC];
    start_native_selves(kids, NPROC, "sync_pshared_cond_scale", "child", fd);
    pthread_t t[NLOCAL];
    for (int i = 0; i < NLOCAL; i++)
        pthread_create(&t[i], NULL, participant, NULL);

    /* B: the producer (this thread) signals once per item, holding the mutex. */
    for (int i = 0; i < ITEMS; i++) {
        pthread_mutex_lock(&sh->m);
        sh->items++;
        pthread_cond_signal(&sh->c);
        pthread_mutex_unlock(&sh->m);
        if (i % 50 == 0)
            sched_yield();
    }
    pthread_mutex_lock(&sh->m);
    sh->produced_all = 1;
    pthread_cond_broadcast(&sh->c);
    /* C: once all 36 wait on c2, the broadcast ends their waits. */
    main_wait_for(&sh->c_waiting, P, &sh->c);
    int bounded = 1;
    if (under_shim()) {
        int threads = os_threads();
        fprintf(stderr, "OS threads with %d coroutines waiting: %d (workers %d)\n", NLOCAL, threads, shim_workers());
        bounded = threads < NLOCAL;
    }
    printf("C: OS threads bounded while coroutines wait: %s\n", bounded ? "yes" : "no");
    sh->c_flag = 1;
    pthread_cond_broadcast(&sh->c2);
    pthread_mutex_unlock(&sh->m);
    for (int i = 0; i < NLOCAL; i++)
        pthread_join(t[i], NULL);

    /* D: cancel a waiting coroutine among the other processes' waiters, then signal once per waiter left. */
    pthread_t d;
    pthread_create(&d, NULL, d_cancelled_waiter, NULL);
    pthread_mutex_lock(&sh->m);
    main_wait_for(&sh->d_waiting, NPROC + 1, &sh->c);
    /* every participant is done now: the other processes' threads were joined before they came to D */
    printf("A: barrier rounds completed %ld of %d\n", sh->rounds_done, ROUNDS * P);
    printf("B: items consumed %ld of %d, left %d\n", sh->consumed, ITEMS, sh->items);
    printf("C: timed out %ld, woken %ld, mutex held after %ld of %d waits\n", sh->timed_out, sh->timed_ok,
           sh->timed_held, 2 * P);
    pthread_mutex_unlock(&sh->m);
    pthread_cancel(d);
    void *res = NULL;
    pthread_join(d, &res);
    printf("D: cancelled %s, cleanup found the mutex locked again: %s\n", res == PTHREAD_CANCELED ? "yes" : "no",
           cleanup_unlock == 0 ? "yes" : errname(cleanup_unlock));
    pthread_mutex_lock(&sh->m);
    sh->d_flag = 1;
    for (int i = 0; i < NPROC; i++)
        pthread_cond_signal(&sh->c);
    main_wait_for(&sh->d_woke, NPROC, &sh->c2);
    printf("D: other processes' waiters woken %d of %d\n", sh->d_woke, NPROC);
    pthread_mutex_unlock(&sh->m);
    for (int i = 0; i < NPROC; i++) {
        int st = -1;
        waitpid(kids[i], &st, 0);
        printf("child %d: %s %d\n", i, WIFEXITED(st) ? "exit" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    }

    /* E: a handler runs in a waiting thread; the wait goes on until the signal. */
    pthread_t e;
    pthread_create(&e, NULL, e_waiter, NULL);
    pthread_mutex_lock(&sh->m);
    main_wait_for(&sh->e_waiting, 1, &sh->c);
    pthread_mutex_unlock(&sh->m);
    pthread_kill(e, SIGUSR1);
    for (int i = 0; i < 60000 && handled == 0; i++)
        usleep(1000);
    pthread_mutex_lock(&sh->m);
    sh->e_flag = 1;
    pthread_cond_signal(&sh->c2);
    pthread_mutex_unlock(&sh->m);
    pthread_join(e, NULL);
    printf("E: handler ran %d, wait returned %d time(s)\n", (int)handled, e_returns);
    printf("destroy: %d %d\n", pthread_cond_destroy(&sh->c), pthread_cond_destroy(&sh->c2));

    check_pshared_waits_of_rerun(argc, argv);
    return 0;
}
