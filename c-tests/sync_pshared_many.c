/* sync_pshared_many.c — many threads of this process (coroutines under the shim) and of 3 forked processes
 * (4 threads each, running glibc's own code) on one set of process-shared objects at once: a barrier
 * (40 rounds; exactly one serial thread per round), a mutex guarding a counter, a condition variable
 * passing a turn around all 28 threads (broadcast) and handing out items one signal at a time, a
 * semaphore posted from another process, a reader-writer lock, raw FUTEX_WAIT/FUTEX_WAKE on a shared word (every wake counted
 * by FUTEX_WAKE reaches a waiter that then returns 0: none lost, none doubled), and timed waits that
 * must time out (semaphore, mutex held by another process, condition variable). Under the shim the
 * waits of coroutines are queued in the kernel (io_uring futex waits): a re-run checks in the stats
 * report that no wait polled. The whole run is made again in a new process where a seccomp filter makes
 * io_uring_setup fail (ENOSYS), as on a kernel without it: the shim's helper threads must make the same
 * waits (the stats must show no io_uring wait, and still no polling). Counts only on stdout; no timing is
 * judged.
 * asyncshim-test: timeout=120 */
#include "shim_probe.h"
#include "sync_util.h"
#include "test_util.h"
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define NLOCAL 16
#define NPROC 3
#define NPER 4
#define P (NLOCAL + NPROC * NPER)
#define ROUNDS 40
#define LOCKS 300
#define CYCLES 5
#define ITEMS_PER 20
#define SEM_PER 30
#define FUTEX_WAITERS_N 8
#define RW_PER 40

struct shared {
    pthread_mutex_t m;
    pthread_cond_t c;
    pthread_cond_t items_cv;
    pthread_barrier_t b;
    pthread_rwlock_t rw;
    long rw_written;
    int rw_torn;
    sem_t s;
    sem_t empty;
    unsigned turn;
    long counter;
    int serial;
    int items;
    int produced_all;
    int consumed;
    int sem_taken;
    unsigned fword;
    int f_arrived;
    int f_woken;
    int f_reported;
    int f_bad;
    int order_bad;
};

static struct shared *sh;

static void worker_body(int k)
{
    for (int r = 0; r < ROUNDS; r++)
        if (pthread_barrier_wait(&sh->b) == PTHREAD_BARRIER_SERIAL_THREAD)
            ATOMIC_ADD(&sh->serial, 1);
    for (int i = 0; i < LOCKS; i++) {
        pthread_mutex_lock(&sh->m);
        sh->counter++;
        pthread_mutex_unlock(&sh->m);
    }
    pthread_barrier_wait(&sh->b);
    /* The turn goes round every thread CYCLES times: each waits for its own number. */
    for (int cyc = 0; cyc < CYCLES; cyc++) {
        pthread_mutex_lock(&sh->m);
        while (sh->turn % P != (unsigned)k)
            pthread_cond_wait(&sh->c, &sh->m);
        if (sh->turn / P != (unsigned)cyc)
            sh->order_bad++;
        sh->turn++;
        pthread_cond_broadcast(&sh->c);
        pthread_mutex_unlock(&sh->m);
    }
    pthread_barrier_wait(&sh->b);
    /* Items handed out one signal at a time by the main process's main thread. */
    pthread_mutex_lock(&sh->m);
    for (;;) {
        while (sh->items == 0 && !(sh->produced_all && sh->consumed == P * ITEMS_PER))
            pthread_cond_wait(&sh->items_cv, &sh->m);
        if (sh->items == 0)
            break;
        sh->items--;
        sh->consumed++;
        if (sh->consumed == P * ITEMS_PER)
            pthread_cond_broadcast(&sh->items_cv);
    }
    pthread_mutex_unlock(&sh->m);
    pthread_barrier_wait(&sh->b);
    /* Units of a semaphore posted by another process. */
    for (int i = 0; i < SEM_PER; i++) {
        while (sem_wait(&sh->s) != 0)
            ;
        ATOMIC_ADD(&sh->sem_taken, 1);
    }
    pthread_barrier_wait(&sh->b);
    /* A reader-writer lock: writers make two stores readers must never see apart. */
    for (int i = 0; i < RW_PER; i++) {
        if (i % 4 == 0) {
            pthread_rwlock_wrlock(&sh->rw);
            long v = sh->rw_written;
            ATOMIC_STORE(&sh->rw_written, v + 1);
            sched_yield();
            ATOMIC_STORE(&sh->rw_written, v + 2);
            pthread_rwlock_unlock(&sh->rw);
        } else {
            pthread_rwlock_rdlock(&sh->rw);
            if (ATOMIC_LOAD(&sh->rw_written) % 2 != 0)
                ATOMIC_ADD(&sh->rw_torn, 1);
            pthread_rwlock_unlock(&sh->rw);
        }
    }
    pthread_barrier_wait(&sh->b);
}

static void *local_thread(void *arg)
{
    worker_body((int)(long)arg);
    return NULL;
}

/* One FUTEX_WAIT on the shared word; a return of 0 is a wake counted by some FUTEX_WAKE. */
static void *futex_waiter(void *arg)
{
    (void)arg;
    ATOMIC_ADD(&sh->f_arrived, 1);
    long r = syscall(SYS_futex, &sh->fword, FUTEX_WAIT, 0, NULL, NULL, 0);
    if (r == 0)
        ATOMIC_ADD(&sh->f_woken, 1);
    else
        ATOMIC_ADD(&sh->f_bad, 1);
    return NULL;
}

static void child_process(int p)
{
    pthread_t t[NPER];
    for (int i = 0; i < NPER; i++)
        pthread_create(&t[i], NULL, local_thread, (void *)(long)(NLOCAL + p * NPER + i));
    if (p == 0) {
        /* This process posts the semaphore's units while the others wait. */
        for (int i = 0; i < P * SEM_PER; i++)
            sem_post(&sh->s);
    }
    for (int i = 0; i < NPER; i++)
        pthread_join(t[i], NULL);
    if (p == 1) {
        /* Wake the futex waiters of the main process, 1 and 3 at a time, until all 8 wakes were counted. */
        int64_t give_up = mono_ns() + 30LL * 1000000000;
        int sum = 0, step = 0;
        while (sum < FUTEX_WAITERS_N && mono_ns() < give_up) {
            long n = syscall(SYS_futex, &sh->fword, FUTEX_WAKE, (step++ % 2) ? 3 : 1, NULL, NULL, 0);
            if (n > 0)
                sum += (int)n;
            else
                sleep_ms(1);
        }
        ATOMIC_STORE(&sh->f_reported, sum);
    }
    if (p == 2) {
        /* Hold the mutex while the main process's timed lock runs out. */
        pthread_mutex_lock(&sh->m);
        while (ATOMIC_LOAD(&sh->f_bad) != -100)
            sleep_ms(1);
        pthread_mutex_unlock(&sh->m);
    }
    _exit(0);
}

static int run(void)
{
    sh = shared_area(sizeof *sh);
    init_mutex(&sh->m, PTHREAD_MUTEX_DEFAULT, 0, 0, 1);
    init_cond(&sh->c, 1);
    init_cond(&sh->items_cv, 1);
    init_pshared_barrier(&sh->b, P);
    init_pshared_rwlock(&sh->rw);
    sem_init(&sh->s, 1, 0);
    sem_init(&sh->empty, 1, 0);

    /* Raw futex waits first: 8 threads here, woken by another process. */
    pthread_t fw[FUTEX_WAITERS_N];
    for (int i = 0; i < FUTEX_WAITERS_N; i++)
        pthread_create(&fw[i], NULL, futex_waiter, NULL);
    wait_at_least(&sh->f_arrived, FUTEX_WAITERS_N, 1, 20000);

    pid_t kids[NPROC];
    for (int p = 0; p < NPROC; p++) {
        kids[p] = fork();
        if (kids[p] == 0)
            child_process(p);
    }
    pthread_t t[NLOCAL];
    for (int i = 0; i < NLOCAL; i++)
        pthread_create(&t[i], NULL, local_thread, (void *)(long)i);

    /* The items, one signal each, while the workers wait on the condition variable. */
    for (int i = 0; i < P * ITEMS_PER; i++) {
        pthread_mutex_lock(&sh->m);
        sh->items++;
        pthread_cond_signal(&sh->items_cv);
        pthread_mutex_unlock(&sh->m);
    }
    pthread_mutex_lock(&sh->m);
    sh->produced_all = 1;
    pthread_cond_broadcast(&sh->items_cv);
    pthread_mutex_unlock(&sh->m);

    for (int i = 0; i < NLOCAL; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < FUTEX_WAITERS_N; i++)
        pthread_join(fw[i], NULL);

    printf("barrier: %d rounds, %d serial\n", ROUNDS, sh->serial);
    printf("mutex: counter %ld (want %d)\n", sh->counter, P * LOCKS);
    printf("cond broadcast: turn %u (want %d), out of order %d\n", sh->turn, P * CYCLES, sh->order_bad);
    printf("cond signal: consumed %d (want %d), left %d\n", sh->consumed, P * ITEMS_PER, sh->items);
    printf("semaphore: taken %d (want %d)\n", sh->sem_taken, P * SEM_PER);
    printf("rwlock: written %ld (want %d), torn reads %d\n", sh->rw_written, 2 * P * (RW_PER / 4), sh->rw_torn);
    pthread_rwlock_wrlock(&sh->rw);
    printf("rwlock: rdlock by its writer: %s\n", errname(pthread_rwlock_rdlock(&sh->rw)));
    printf("rwlock: wrlock by its writer: %s\n", errname(pthread_rwlock_wrlock(&sh->rw)));
    pthread_rwlock_unlock(&sh->rw);

    /* Timed waits that must run out: an empty semaphore, a mutex another process holds, a condition
     * variable nobody signals. */
    struct timespec ts = deadline_in(CLOCK_REALTIME, 50);
    int r = sem_timedwait(&sh->empty, &ts);
    printf("sem_timedwait on an empty semaphore: %d %s\n", r, r ? errname(errno) : "0");
    int64_t give_up = mono_ns() + 20LL * 1000000000;
    while (pthread_mutex_trylock(&sh->m) == 0) {
        /* Child 2 has not taken it yet. */
        pthread_mutex_unlock(&sh->m);
        sleep_ms(1);
        if (mono_ns() > give_up)
            break;
    }
    ts = deadline_in(CLOCK_REALTIME, 50);
    r = pthread_mutex_timedlock(&sh->m, &ts);
    printf("pthread_mutex_timedlock held by another process: %s\n", errname(r));
    ATOMIC_STORE(&sh->f_bad, -100);
    pthread_mutex_lock(&sh->m);
    ts = deadline_in(CLOCK_REALTIME, 50);
    r = pthread_cond_timedwait(&sh->c, &sh->m, &ts);
    pthread_mutex_unlock(&sh->m);
    printf("pthread_cond_timedwait unsignalled: %s\n", errname(r));

    int ok = 1;
    for (int p = 0; p < NPROC; p++) {
        int st;
        if (waitpid(kids[p], &st, 0) != kids[p] || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            ok = 0;
    }
    printf("children exited 0: %s\n", ok ? "yes" : "no");
    printf("futex: %d wakes counted by FUTEX_WAKE, %d waiters returned 0\n", sh->f_reported, sh->f_woken);
    pthread_barrier_destroy(&sh->b);
    /* The shim's own fds (its io_uring ring among them) take no number the program would get. */
    int fd = open("/dev/null", O_RDONLY);
    printf("next fd opened: %d\n", fd);
    close(fd);
    return 0;
}

/* Makes io_uring_setup fail with ENOSYS in every thread of this process and in those it makes. */
static int refuse_io_uring(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 425 /* io_uring_setup */, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { .len = sizeof f / sizeof f[0], .filter = f };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
}

int main(int argc, char **argv)
{
    test_init();
    if (argc > 1 && strcmp(argv[1], "no-uring") == 0) {
        if (refuse_io_uring() != 0) {
            printf("seccomp filter refused: %s\n", errname(errno));
            return 1;
        }
        return run();
    }
    if (argc > 1 && strcmp(argv[1], "again") == 0)
        return run();
    run();
    /* The same again where io_uring cannot be used. */
    printf("without io_uring:\n");
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        execl("/proc/self/exe", argv[0], "no-uring", (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(p, &st, 0);
    printf("without io_uring: exit %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    if (under_shim()) {
        int status;
        long queued = rerun_for_report("no-uring", NULL, NULL, 0, "kernel futex waits (io_uring): ", &status);
        long polls = rerun_for_report("no-uring", NULL, NULL, 0, "polled retries: ", &status);
        fprintf(stderr, "re-run without io_uring: kernel futex waits %ld, polled retries %ld, status %d\n", queued,
                polls, status);
        if (queued != 0 || polls != 0 || status != 0)
            printf("re-run without io_uring under the shim: io_uring waits %ld, polled retries %ld, status %d\n",
                   queued, polls, status);
    }
    if (under_shim()) {
        /* The same run again with the stats report: no wait may have polled. */
        int status;
        long polls = rerun_for_report("again", NULL, NULL, 0, "polled retries: ", &status);
        long queued = rerun_for_report("again", NULL, NULL, 0, "kernel futex waits (io_uring): ", &status);
        fprintf(stderr, "re-run: polled retries %ld, kernel futex waits %ld, status %d\n", polls, queued, status);
        if (polls != 0 || status != 0)
            printf("re-run under the shim: polled retries %ld, status %d\n", polls, status);
    }
    return test_exit_status();
}
