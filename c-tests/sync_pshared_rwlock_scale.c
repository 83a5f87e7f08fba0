/* sync_pshared_rwlock_scale.c — many threads of this process (coroutines under the shim, one worker in the
 * shim-w1 mode) and of 3 other processes that run glibc natively (forked and exec'd again without
 * LD_PRELOAD, 4 threads each) on process-shared rwlocks of the three kinds (prefer readers, prefer writers,
 * prefer writers non-recursive):
 *  A. readers and writers mixed: each thread takes the lock 150 times, a writer every 3rd time; writers
 *     write a two-word record that readers check is never torn, and count;
 *  B. timed locks (CLOCK_MONOTONIC and CLOCK_REALTIME) while another process holds the lock for writing
 *     all time out, and a timed lock that the holder's release ends succeeds; EDEADLK on relocking by
 *     the writer; readers queued behind a writer all get in when it leaves;
 *  C. a signal handler runs in a thread waiting for the write lock, and the wait goes on to success.
 * Meanwhile under the shim the process's OS threads stay bounded, and a re-run checks the statistics: no
 * helper thread made these waits, the kernel made them (io_uring futex waits). Counts and results only on
 * stdout; no timing is judged.
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
#define ITERS 150
#define KINDS 3

struct shared {
    pthread_rwlock_t rw[KINDS];
    pthread_rwlock_t hold; /* B and C: held for writing by one party while others wait */
    long a[KINDS], b[KINDS]; /* written as a pair under each kind's write lock */
    long writes[KINDS];
    long reads[KINDS];
    long torn;
    int started;
    int b_phase;   /* 1: the child holds `hold`; 2: released */
    int b_readers; /* readers that got in behind the writer */
    int max_threads_over;
};

static struct shared *sh;
static const int kinds[KINDS] = { PTHREAD_RWLOCK_PREFER_READER_NP, PTHREAD_RWLOCK_PREFER_WRITER_NP,
                                  PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP };

static void init_rw(pthread_rwlock_t *rw, int kind)
{
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_rwlockattr_setkind_np(&a, kind);
    pthread_rwlock_init(rw, &a);
    pthread_rwlockattr_destroy(&a);
}

static void *participant(void *arg)
{
    long id = (long)arg;
    __atomic_add_fetch(&sh->started, 1, __ATOMIC_SEQ_CST);
    for (int k = 0; k < KINDS; k++) {
        for (int i = 0; i < ITERS; i++) {
            if ((i + id) % 3 == 0) {
                pthread_rwlock_wrlock(&sh->rw[k]);
                sh->a[k]++;
                if (i % 16 == 0)
                    sched_yield();
                sh->b[k]++;
                sh->writes[k]++;
                pthread_rwlock_unlock(&sh->rw[k]);
            } else {
                pthread_rwlock_rdlock(&sh->rw[k]);
                long a = sh->a[k];
                if (i % 16 == 1)
                    sched_yield();
                if (a != sh->b[k] || a != sh->a[k])
                    __atomic_add_fetch(&sh->torn, 1, __ATOMIC_SEQ_CST);
                __atomic_add_fetch(&sh->reads[k], 1, __ATOMIC_SEQ_CST);
                pthread_rwlock_unlock(&sh->rw[k]);
            }
        }
    }
    return NULL;
}

/* B in a native child: holds `hold` for writing until the parent says, then releases it. */
static int holder_child(void)
{
    pthread_rwlock_wrlock(&sh->hold);
    __atomic_store_n(&sh->b_phase, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&sh->b_phase, __ATOMIC_SEQ_CST) != 2)
        usleep(1000);
    usleep(20000);
    pthread_rwlock_unlock(&sh->hold);
    return 0;
}

static int child_main(int holder)
{
    if (holder)
        return holder_child();
    pthread_t t[NPER];
    for (long i = 0; i < NPER; i++)
        pthread_create(&t[i], NULL, participant, (void *)(NLOCAL + i));
    for (int i = 0; i < NPER; i++)
        pthread_join(t[i], NULL);
    return 0;
}

static int timed_results[4];
static void *timed_locker(void *arg)
{
    long i = (long)arg;
    struct timespec ts = deadline_in(i % 2 ? CLOCK_REALTIME : CLOCK_MONOTONIC, 40);
    int r;
    if (i < 2)
        r = i % 2 ? pthread_rwlock_timedwrlock(&sh->hold, &ts) : pthread_rwlock_clockwrlock(&sh->hold, CLOCK_MONOTONIC, &ts);
    else
        r = i % 2 ? pthread_rwlock_timedrdlock(&sh->hold, &ts) : pthread_rwlock_clockrdlock(&sh->hold, CLOCK_MONOTONIC, &ts);
    timed_results[i] = r;
    if (r == 0)
        pthread_rwlock_unlock(&sh->hold);
    return NULL;
}

static void *queued_reader(void *arg)
{
    (void)arg;
    struct timespec ts = deadline_in(CLOCK_REALTIME, 60000);
    if (pthread_rwlock_timedrdlock(&sh->hold, &ts) == 0) {
        __atomic_add_fetch(&sh->b_readers, 1, __ATOMIC_SEQ_CST);
        pthread_rwlock_unlock(&sh->hold);
    }
    return NULL;
}

static volatile sig_atomic_t handled;
static void on_usr1(int sig)
{
    (void)sig;
    handled++;
}

static int c_result = -1;
static volatile int c_waiting;
static void *c_writer(void *arg)
{
    (void)arg;
    c_waiting = 1;
    c_result = pthread_rwlock_wrlock(&sh->hold);
    if (c_result == 0)
        pthread_rwlock_unlock(&sh->hold);
    return NULL;
}

int main(int argc, char **argv)
{
    test_init();
    if (argc == 3 && (strcmp(argv[1], "child") == 0 || strcmp(argv[1], "holder") == 0)) {
        sh = memfd_area_of(argv[2], sizeof *sh);
        return child_main(strcmp(argv[1], "holder") == 0);
    }
    int fd;
    sh = memfd_area("rwlock_scale", sizeof *sh, &fd);
    for (int k = 0; k < KINDS; k++)
        init_rw(&sh->rw[k], kinds[k]);
    init_rw(&sh->hold, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    set_signal_handler(SIGUSR1, on_usr1, 0);

    /* A */
    pid_t kids[NPROC];
    start_native_selves(kids, NPROC, "sync_pshared_rwlock_scale", "child", fd);
    pthread_t t[NLOCAL];
    for (long i = 0; i < NLOCAL; i++)
        pthread_create(&t[i], NULL, participant, (void *)i);
    int peak = 0;
    while (__atomic_load_n(&sh->started, __ATOMIC_SEQ_CST) < P)
        usleep(1000);
    for (int i = 0; i < 20; i++) {
        int n = os_threads();
        if (n > peak)
            peak = n;
        usleep(2000);
    }
    for (int i = 0; i < NLOCAL; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < NPROC; i++) {
        int st = -1;
        waitpid(kids[i], &st, 0);
        printf("A: child %d: %s %d\n", i, WIFEXITED(st) ? "exit" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    }
    if (under_shim()) {
        fprintf(stderr, "peak OS threads with %d coroutines locking: %d (workers %d)\n", NLOCAL, peak, shim_workers());
        printf("A: OS threads bounded: %s\n", peak < NLOCAL ? "yes" : "no");
    } else {
        printf("A: OS threads bounded: yes\n");
    }
    for (int k = 0; k < KINDS; k++)
        printf("A: kind %d: writes %ld, reads %ld, pair %s\n", kinds[k], sh->writes[k], sh->reads[k],
               sh->a[k] == sh->b[k] && sh->a[k] == sh->writes[k] ? "consistent" : "broken");
    printf("A: torn reads %ld\n", sh->torn);

    /* B: another process holds `hold` for writing. */
    pid_t holder = start_native_self("sync_pshared_rwlock_scale", "holder", fd);
    while (__atomic_load_n(&sh->b_phase, __ATOMIC_SEQ_CST) != 1)
        usleep(1000);
    pthread_t tl[4];
    for (long i = 0; i < 4; i++)
        pthread_create(&tl[i], NULL, timed_locker, (void *)i);
    for (int i = 0; i < 4; i++)
        pthread_join(tl[i], NULL);
    printf("B: timed locks while another process writes: %s %s %s %s\n", errname(timed_results[0]),
           errname(timed_results[1]), errname(timed_results[2]), errname(timed_results[3]));
    pthread_t qr[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&qr[i], NULL, queued_reader, NULL);
    usleep(20000);
    __atomic_store_n(&sh->b_phase, 2, __ATOMIC_SEQ_CST);
    struct timespec ts = deadline_in(CLOCK_REALTIME, 60000);
    int r = pthread_rwlock_timedwrlock(&sh->hold, &ts);
    printf("B: timed write lock after the release: %s\n", errname(r));
    printf("B: relock by the writer: %s, read lock by the writer: %s\n", errname(pthread_rwlock_wrlock(&sh->hold)),
           errname(pthread_rwlock_rdlock(&sh->hold)));
    pthread_rwlock_unlock(&sh->hold);
    for (int i = 0; i < 8; i++)
        pthread_join(qr[i], NULL);
    printf("B: queued readers that got in: %d of 8\n", sh->b_readers);
    int st = -1;
    waitpid(holder, &st, 0);
    printf("B: holder: %s %d\n", WIFEXITED(st) ? "exit" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));

    /* C: a handler in a thread waiting for the write lock (this thread holds it for reading). */
    pthread_rwlock_rdlock(&sh->hold);
    pthread_t c;
    pthread_create(&c, NULL, c_writer, NULL);
    while (!c_waiting)
        usleep(1000);
    usleep(20000);
    pthread_kill(c, SIGUSR1);
    for (int i = 0; i < 60000 && handled == 0; i++)
        usleep(1000);
    usleep(20000);
    printf("C: handler ran %d, writer still waiting: %s\n", (int)handled, c_result == -1 ? "yes" : "no");
    pthread_rwlock_unlock(&sh->hold);
    pthread_join(c, NULL);
    printf("C: write lock after the reader left: %s\n", errname(c_result));

    check_pshared_waits_of_rerun(argc, argv);
    return 0;
}
