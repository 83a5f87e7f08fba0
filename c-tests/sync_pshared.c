/* sync_pshared.c — robust and process-shared mutexes whose owner may be a coroutine (issue 4), as other
 * threads and processes see them: robust PI mutexes (normal, errorcheck, recursive) contended by a real OS
 * thread and by a coroutine, their owner ending holding them (EOWNERDEAD, then ENOTRECOVERABLE when not
 * made consistent), also after a kernel waiter timed out; a process-shared PI mutex contended across fork
 * in both directions; condition waits (private and process-shared condition variables) with robust
 * mutexes; a thread ending holding a robust process-shared mutex another process waits for; and robust
 * process-shared mutexes (PI or not) held by a thread of another process when that process is killed
 * (SIGKILL) or exits from its main thread: the kernel's robust-list walk must hand EOWNERDEAD to the next
 * locker. Under the shim a coroutine's own tid is one the kernel does not know.
 * asyncshim-test: timeout=40 */
#include "sync_util.h"
#include "test_util.h"
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>

static pthread_mutex_t m;
static struct contention cs = { .result = -1 };


static void *contender(void *arg)
{
    (void)arg;
    ATOMIC_STORE(&cs.started, 1);
    int64_t t0 = mono_ns();
    struct timespec ts = deadline_in(CLOCK_REALTIME, 5000); /* bounded: a lost unlock fails, not hangs */
    int r = pthread_mutex_timedlock(&m, &ts);
    ATOMIC_STORE(&cs.waited_ms, (int)((mono_ns() - t0) / 1000000));
    ATOMIC_STORE(&cs.flag, 1);
    if (r == 0)
        r = pthread_mutex_unlock(&m);
    ATOMIC_STORE(&cs.result, r);
    return NULL;
}

static void *die_holding(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)pthread_mutex_lock(&m);
}

static void *hold_then_die(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&m);
    ATOMIC_STORE(&cs.started, 1);
    wait_at_least(&cs.started, 2, 1, 5000);
    return NULL;
}

static void *time_out(void *arg)
{
    (void)arg;
    struct timespec ts = deadline_in(CLOCK_REALTIME, 20);
    return (void *)(intptr_t)pthread_mutex_timedlock(&m, &ts);
}

static void *try_from_other(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)pthread_mutex_trylock(&m);
}

static void robust_pi(void)
{
    init_mutex(&m, PTHREAD_MUTEX_NORMAL, 1, 1, 0);
    contend_with_main("robust PI, main holds, real thread contends", 1, &m, contender, &cs);
    contend_with_main("robust PI, main holds, coroutine contends", 0, &m, contender, &cs);
    void *r;
    pthread_t t = start_thread(die_holding, 0);
    pthread_join(t, &r);
    int e = pthread_mutex_lock(&m);
    int c = pthread_mutex_consistent(&m);
    int u = pthread_mutex_unlock(&m);
    printf("robust PI, owner thread ended holding it: its lock %s; next lock %s, consistent %d, unlock %s\n",
           errname((int)(intptr_t)r), errname(e), c, errname(u));
    t = start_thread(die_holding, 1);
    pthread_join(t, &r);
    e = pthread_mutex_lock(&m);
    u = pthread_mutex_unlock(&m);
    int again = pthread_mutex_lock(&m);
    printf("robust PI, real owner ended holding it: its lock %s; next lock %s, unlock %s, then %s\n",
           errname((int)(intptr_t)r), errname(e), errname(u), errname(again));
    pthread_mutex_destroy(&m);
    init_mutex(&m, PTHREAD_MUTEX_NORMAL, 1, 1, 0);

    /* A real thread waited in the kernel and timed out, then the owner ended: the word may keep the
     * kernel's waiters bit with no owner. */
    ATOMIC_STORE(&cs.started, 0);
    t = start_thread(hold_then_die, 1);
    wait_at_least(&cs.started, 1, 1, 5000);
    pthread_t w = start_thread(time_out, 1);
    pthread_join(w, &r);
    ATOMIC_STORE(&cs.started, 2);
    pthread_join(t, NULL);
    fprintf(stderr, "word after the owner ended: %#x\n", *(unsigned *)&m);
    struct timespec ts = deadline_in(CLOCK_REALTIME, 3000);
    e = pthread_mutex_timedlock(&m, &ts);
    c = e == EOWNERDEAD ? pthread_mutex_consistent(&m) : -1;
    u = pthread_mutex_unlock(&m);
    printf("robust PI, a waiter timed out, then the owner ended: waiter %s; next lock %s, consistent %d, unlock %s\n",
           errname((int)(intptr_t)r), errname(e), c, errname(u));
    pthread_mutex_destroy(&m);

    init_mutex(&m, PTHREAD_MUTEX_ERRORCHECK, 1, 1, 0);
    int a = pthread_mutex_lock(&m), b = pthread_mutex_lock(&m);
    contend_with_main("robust errorcheck PI held twice over, real thread contends", 1, &m, contender, &cs);
    int d = pthread_mutex_unlock(&m), f = pthread_mutex_unlock(&m);
    printf("robust errorcheck PI: lock %s, relock %s, unlock %s, unlock again %s\n", errname(a), errname(b), errname(d),
           errname(f));
    pthread_mutex_destroy(&m);

    init_mutex(&m, PTHREAD_MUTEX_RECURSIVE, 1, 1, 0);
    a = pthread_mutex_lock(&m);
    b = pthread_mutex_trylock(&m);
    t = start_thread(try_from_other, 1);
    pthread_join(t, &r);
    d = pthread_mutex_unlock(&m);
    f = pthread_mutex_unlock(&m);
    int g = pthread_mutex_unlock(&m);
    printf("robust recursive PI: lock %s, trylock %s, real thread's trylock %s, unlocks %s %s, one too many %s\n",
           errname(a), errname(b), errname((int)(intptr_t)r), errname(d), errname(f), errname(g));
    contend_with_main("robust recursive PI, real thread contends", 1, &m, contender, &cs);
    pthread_mutex_destroy(&m);
}

static void pshared_pi(void)
{
    pthread_mutex_t *pm = mmap(NULL, sizeof *pm, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    init_mutex(pm, PTHREAD_MUTEX_ERRORCHECK, 1, 0, 1);
    int *sf = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    /* The parent holds; the child contends and must wait for the parent's unlock. */
    int l = pthread_mutex_lock(pm);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        ATOMIC_STORE(&sf[0], 1);
        struct timespec ts = deadline_in(CLOCK_REALTIME, 5000);
        int r = pthread_mutex_timedlock(pm, &ts);
        int after = ATOMIC_LOAD(&sf[1]);
        int u = pthread_mutex_unlock(pm);
        _exit(r == 0 && after == 1 && u == 0 ? 0 : 10 + r);
    }
    wait_at_least(&sf[0], 1, 1, 5000);
    sleep_ms(60);
    ATOMIC_STORE(&sf[1], 1);
    int u = pthread_mutex_unlock(pm);
    int st;
    waitpid(c, &st, 0);
    printf("pshared PI, parent holds: lock %s, unlock %s, child exit %d\n", errname(l), errname(u), WEXITSTATUS(st));

    /* The child holds; the parent contends. */
    sf[0] = sf[1] = 0;
    fflush(stdout);
    c = fork();
    if (c == 0) {
        pthread_mutex_lock(pm);
        ATOMIC_STORE(&sf[0], 1);
        sleep_ms(60);
        ATOMIC_STORE(&sf[1], 1);
        pthread_mutex_unlock(pm);
        _exit(0);
    }
    wait_at_least(&sf[0], 1, 1, 5000);
    int t = pthread_mutex_trylock(pm);
    struct timespec ts = deadline_in(CLOCK_REALTIME, 5000);
    l = pthread_mutex_timedlock(pm, &ts);
    int after = ATOMIC_LOAD(&sf[1]);
    u = pthread_mutex_unlock(pm);
    waitpid(c, &st, 0);
    printf("pshared PI, child holds: parent trylock %s, lock %s after the child's unlock %d, unlock %s\n",
           errname(t), errname(l), after, errname(u));
    munmap(sf, 4096);
    munmap(pm, sizeof *pm);
}

static pthread_cond_t cv;
static int cond_ready;

static void *signaller(void *arg)
{
    (void)arg;
    sleep_ms(30);
    signal_flag(&cv, &m, &cond_ready, 1);
    return NULL;
}

/* A condition variable (process-shared or not) used with a robust mutex (PI or not). */
static void cond_with(int pi, int pshared_cond, int real)
{
    init_cond(&cv, pshared_cond);
    init_mutex(&m, PTHREAD_MUTEX_ERRORCHECK, pi, 1, 0);
    ATOMIC_STORE(&cond_ready, 0);
    struct timespec ts = deadline_in(CLOCK_REALTIME, 5000);
    int unowned = pthread_cond_timedwait(&cv, &m, &ts);
    pthread_mutex_lock(&m);
    pthread_t t = start_thread(signaller, real);
    int r = wait_for_flag(&cv, &m, &cond_ready, 1, 5000);
    int u = pthread_mutex_unlock(&m);
    pthread_join(t, NULL);
    printf("%s cond, robust%s mutex, %s signaller: wait without the mutex %s; wait %s, ready %d, unlock %s\n",
           pshared_cond ? "pshared" : "private", pi ? " PI" : "", real ? "real" : "coroutine", errname(unowned),
           errname(r), ATOMIC_LOAD(&cond_ready), errname(u));
    pthread_mutex_destroy(&m);
    pthread_cond_destroy(&cv);
}

/* ---- a process that dies while one of its threads holds a robust process-shared mutex ---- */

struct shared {
    pthread_mutex_t mx;
    int held;
};

static struct shared *sh;

static void *hold_forever(void *arg)
{
    (void)arg;
    int r = pthread_mutex_lock(&sh->mx);
    ATOMIC_STORE(&sh->held, r == 0 ? 1 : 2);
    sleep_ms(20000);
    return NULL;
}

/* The re-executed child: a thread (a coroutine under the shim) locks the mutex; then the process is
 * killed by the parent, or its main thread calls exit(). */
static int child_main(int fd, const char *how)
{
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (sh == MAP_FAILED)
        return 3;
    pthread_t t = start_thread(hold_forever, 0);
    (void)t;
    while (ATOMIC_LOAD(&sh->held) == 0)
        sleep_ms(1);
    if (strcmp(how, "exit") == 0)
        exit(5);
    sleep_ms(20000);
    return 4;
}

static void process_death(const char *argv0, int pi, const char *how)
{
    int fd = memfd_create("sync_pshared", 0);
    if (fd < 0 || ftruncate(fd, sizeof *sh) != 0) {
        perror("memfd");
        return;
    }
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    init_mutex(&sh->mx, PTHREAD_MUTEX_NORMAL, pi, 1, 1);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        char fds[16];
        snprintf(fds, sizeof fds, "%d", fd);
        execl(argv0, argv0, "child", fds, how, (char *)NULL);
        _exit(127);
    }
    int ok = wait_at_least(&sh->held, 1, 1, 5000);
    if (strcmp(how, "kill") == 0)
        kill(c, SIGKILL);
    int st;
    waitpid(c, &st, 0);
    struct timespec ts = deadline_in(CLOCK_REALTIME, 3000);
    int e = pthread_mutex_timedlock(&sh->mx, &ts);
    int cons = e == EOWNERDEAD ? pthread_mutex_consistent(&sh->mx) : -1;
    int u = e == 0 || e == EOWNERDEAD ? pthread_mutex_unlock(&sh->mx) : -1;
    printf("robust pshared%s held by a thread of a process that %s: held %d, %s; next lock %s, consistent %d, "
           "unlock %d\n",
           pi ? " PI" : "", strcmp(how, "kill") == 0 ? "was killed" : "exited", ok ? ATOMIC_LOAD(&sh->held) : 0,
           WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "exit status", errname(e), cons, u);
    munmap(sh, sizeof *sh);
    close(fd);
}

static pthread_mutex_t *shared_mx;
static int *shared_flags;

static void *lock_then_end(void *arg)
{
    (void)arg;
    int r = pthread_mutex_lock(shared_mx);
    ATOMIC_STORE(&shared_flags[0], 1);
    wait_at_least(&shared_flags[1], 1, 1, 5000); /* the other process is about to wait */
    sleep_ms(50);
    return (void *)(intptr_t)r; /* ends holding it */
}

/* A thread ends holding a robust process-shared mutex that a process forked earlier is waiting for. */
static void thread_ends_while_other_process_waits(int pi)
{
    shared_mx = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    shared_flags = (int *)(shared_mx + 1);
    init_mutex(shared_mx, PTHREAD_MUTEX_NORMAL, pi, 1, 1);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        wait_at_least(&shared_flags[0], 1, 1, 5000);
        ATOMIC_STORE(&shared_flags[1], 1);
        struct timespec ts = deadline_in(CLOCK_REALTIME, 5000);
        int e = pthread_mutex_timedlock(shared_mx, &ts);
        if (e == EOWNERDEAD)
            pthread_mutex_consistent(shared_mx);
        if (e == 0 || e == EOWNERDEAD)
            pthread_mutex_unlock(shared_mx);
        _exit(e == EOWNERDEAD ? 0 : e == 0 ? 1 : 2);
    }
    pthread_t t = start_thread(lock_then_end, 0);
    void *r;
    pthread_join(t, &r);
    int st;
    waitpid(c, &st, 0);
    printf("robust pshared%s: thread locked it (%s) and ended while another process waited: that process "
           "got %s\n",
           pi ? " PI" : "", errname((int)(intptr_t)r),
           WEXITSTATUS(st) == 0 ? "EOWNERDEAD" : WEXITSTATUS(st) == 1 ? "0" : "an error or nothing");
    munmap(shared_mx, 4096);
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "child") == 0)
        return child_main(atoi(argv[2]), argv[3]);
    test_init();
    robust_pi();
    pshared_pi();
    for (int pi = 0; pi < 2; pi++)
        for (int pc = 0; pc < 2; pc++)
            for (int real = 0; real < 2; real++)
                cond_with(pi, pc, real);
    thread_ends_while_other_process_waits(0);
    process_death(argv[0], 0, "kill");
    process_death(argv[0], 0, "exit");
    process_death(argv[0], 1, "kill");
    process_death(argv[0], 1, "exit");
    return test_exit_status();
}
