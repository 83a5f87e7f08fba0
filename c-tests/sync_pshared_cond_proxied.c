/* sync_pshared_cond_proxied.c — waits on a process-shared condition variable in shared memory with the
 * mutexes a thread (a coroutine under the shim) holds through the shim's proxy owners: a robust PI mutex, a
 * process-shared PI mutex that is not robust, and a robust mutex that is not PI (each normal, recursive and
 * errorcheck). Every wait is signalled by a thread and by another process, timed out (ETIMEDOUT), EPERM when
 * the mutex is not owned, and the mutex is owned again after it (unlock: 0). Then a wait made while a thread
 * of another process (the forked child, where the shim is off) is blocked in the kernel on the mutex — seen
 * from the lock word's FUTEX_WAITERS bit — which the wait's unlock must hand the mutex to (under the shim a
 * PI one used to make the wait fail with EPERM); a wait whose relock finds that the mutex's holder in
 * another process died meanwhile (EOWNERDEAD, robust ones); and a process killed while a thread holds the
 * mutex after such a wait (EOWNERDEAD for the next locker). Under the shim the waits must not keep their
 * worker: a ticking thread runs meanwhile (the signaller waits for its ticks), and the statistics report of
 * a re-executed run shows no stall.
 * asyncshim-test: timeout=60 */
#include "shim_probe.h"
#include "sync_util.h"
#include "test_util.h"
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>

struct shared {
    pthread_mutex_t mutex, other;
    pthread_cond_t cond;
    int flag;
    int woken;
};

static struct shared *sh;

/* Sets the flag to 1 and signals, once the ticker has run on while the main thread waits. */
static void *signaller(void *arg)
{
    (void)arg;
    wait_for_ticks(20);
    signal_flag(&sh->cond, &sh->mutex, &sh->flag, 1);
    return NULL;
}

/* Polls (bounded) until a thread waits for the mutex in the kernel: it then has set the waiters bit. */
static int kernel_waiter(void)
{
    for (int i = 0; i < 5000; i++) {
        if (ATOMIC_LOAD((unsigned *)&sh->mutex) & 0x80000000u) {
            sleep_ms(20); /* asleep in the kernel, not only about to be */
            return 1;
        }
        sleep_ms(1);
    }
    return 0;
}

static int child_exit(pid_t pid)
{
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void new_area(int type, int pi, int robust)
{
    sh = shared_area(sizeof *sh);
    init_mutex(&sh->mutex, type, pi, robust, 1);
    init_mutex(&sh->other, type, pi, robust, 1);
    init_cond(&sh->cond, 1);
}

static void end_area(void)
{
    pthread_cond_destroy(&sh->cond);
    pthread_mutex_destroy(&sh->mutex);
    pthread_mutex_destroy(&sh->other);
    munmap(sh, sizeof *sh);
}

static void kind(int type, int pi, int robust)
{
    char what[64];
    snprintf(what, sizeof what, "%s%s%s", robust ? "robust " : "pshared ", pi ? "PI " : "",
             type == PTHREAD_MUTEX_NORMAL ? "normal" : type == PTHREAD_MUTEX_RECURSIVE ? "recursive" : "errorcheck");
    new_area(type, pi, robust);

    /* Signalled by a thread of this process, which waits for 20 ticks first; another mutex of the same kind
     * stays held across the wait (still its holder's after it: trylock is its kind's answer to its holder). */
    pthread_t sig;
    pthread_create(&sig, NULL, signaller, NULL);
    int lo = pthread_mutex_lock(&sh->other);
    int l = pthread_mutex_lock(&sh->mutex);
    int r = wait_for_flag(&sh->cond, &sh->mutex, &sh->flag, 1, 10000);
    int lo2 = pthread_mutex_trylock(&sh->other);
    int u = pthread_mutex_unlock(&sh->mutex);
    int uo2 = lo2 == 0 ? pthread_mutex_unlock(&sh->other) : -1;
    int uo = pthread_mutex_unlock(&sh->other);
    pthread_join(sig, NULL);
    printf("%s: lock %s, wait signalled by a thread %s, flag %d, unlock %s; the other mutex held across the "
           "wait: lock %s, trylock after the wait %s, unlocks %s %s\n",
           what, errname(l), errname(r), sh->flag, errname(u), errname(lo), errname(lo2), uo2 < 0 ? "none" : errname(uo2), errname(uo));

    /* An invalid time: refused before anything is unlocked. */
    l = pthread_mutex_lock(&sh->mutex);
    struct timespec bad = { 0, 2000000000L };
    r = pthread_cond_timedwait(&sh->cond, &sh->mutex, &bad);
    u = pthread_mutex_unlock(&sh->mutex);
    printf("%s: lock %s, wait with an invalid time %s, unlock %s\n", what, errname(l), errname(r), errname(u));

    /* Signalled by another process. */
    fflush(stdout);
    l = pthread_mutex_lock(&sh->mutex);
    pid_t c = fork();
    if (c == 0) {
        sleep_ms(50);
        int cl = pthread_mutex_lock(&sh->mutex);
        sh->flag = 2;
        pthread_cond_broadcast(&sh->cond);
        int cu = pthread_mutex_unlock(&sh->mutex);
        _exit(cl == 0 && cu == 0 ? 0 : 1);
    }
    r = wait_for_flag(&sh->cond, &sh->mutex, &sh->flag, 2, 10000);
    u = pthread_mutex_unlock(&sh->mutex);
    printf("%s: lock %s, wait signalled by another process %s, flag %d, unlock %s, child exit %d\n", what,
           errname(l), errname(r), sh->flag, errname(u), child_exit(c));

    /* Timed out; then without owning the mutex. */
    l = pthread_mutex_lock(&sh->mutex);
    struct timespec until = deadline_in(CLOCK_REALTIME, 50);
    r = pthread_cond_timedwait(&sh->cond, &sh->mutex, &until);
    u = pthread_mutex_unlock(&sh->mutex);
    until = deadline_in(CLOCK_REALTIME, 50);
    int unowned = pthread_cond_timedwait(&sh->cond, &sh->mutex, &until);
    printf("%s: lock %s, timed out wait %s, unlock %s; wait without owning it %s\n", what, errname(l), errname(r),
           errname(u), errname(unowned));

    /* A thread of another process waits for the mutex in the kernel when the wait begins: the wait's unlock
     * hands the mutex to it; it signals. */
    fflush(stdout);
    l = pthread_mutex_lock(&sh->mutex);
    c = fork();
    if (c == 0) {
        int cl = pthread_mutex_lock(&sh->mutex);
        sh->flag = 3;
        pthread_cond_broadcast(&sh->cond);
        int cu = pthread_mutex_unlock(&sh->mutex);
        _exit(cl == 0 && cu == 0 ? 0 : 1);
    }
    int waiter = kernel_waiter();
    r = wait_for_flag(&sh->cond, &sh->mutex, &sh->flag, 3, 10000);
    u = pthread_mutex_unlock(&sh->mutex);
    printf("%s: lock %s, kernel waiter %d, wait %s, flag %d, unlock %s, child exit %d\n", what, errname(l), waiter,
           errname(r), sh->flag, errname(u), child_exit(c));

    if (robust) {
        /* The other process takes the mutex from the wait, signals and dies holding it: the wait's relock
         * gets it with EOWNERDEAD. */
        fflush(stdout);
        l = pthread_mutex_lock(&sh->mutex);
        c = fork();
        if (c == 0) {
            pthread_mutex_lock(&sh->mutex);
            sh->flag = 4;
            pthread_cond_broadcast(&sh->cond);
            _exit(0);
        }
        waiter = kernel_waiter();
        r = wait_for_flag(&sh->cond, &sh->mutex, &sh->flag, 4, 10000);
        int cons = r == EOWNERDEAD ? pthread_mutex_consistent(&sh->mutex) : -1;
        u = pthread_mutex_unlock(&sh->mutex);
        int again = pthread_mutex_trylock(&sh->mutex);
        if (again == 0)
            pthread_mutex_unlock(&sh->mutex);
        printf("%s: lock %s, kernel waiter %d, wait while the holder died %s, flag %d, consistent %d, unlock %s, "
               "trylock then %s, child exit %d\n",
               what, errname(l), waiter, errname(r), sh->flag, cons, errname(u), errname(again), child_exit(c));
    }
    end_area();
}

/* ---- a process killed while its thread holds the mutex after a wait ---- */

static void *wait_then_hold(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&sh->mutex);
    ATOMIC_STORE(&sh->woken, 1);
    int r = wait_for_flag(&sh->cond, &sh->mutex, &sh->flag, 5, 10000);
    ATOMIC_STORE(&sh->woken, r == 0 ? 2 : 3);
    sleep_ms(20000); /* holding the mutex until killed */
    return NULL;
}

/* The re-executed child: a thread (a coroutine under the shim) waits, then holds the mutex. */
static int child_main(int fd)
{
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (sh == MAP_FAILED)
        return 3;
    pthread_t t;
    pthread_create(&t, NULL, wait_then_hold, NULL);
    sleep_ms(20000);
    return 4;
}

static void killed_after_wait(int pi)
{
    int fd = memfd_create("sync_pshared_cond_proxied", 0);
    if (fd < 0 || ftruncate(fd, sizeof *sh) != 0) {
        perror("memfd");
        exit(3);
    }
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    init_mutex(&sh->mutex, PTHREAD_MUTEX_NORMAL, pi, 1, 1);
    init_cond(&sh->cond, 1);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        char self[4096], fds[16];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0)
            _exit(126);
        self[n] = 0;
        snprintf(fds, sizeof fds, "%d", fd);
        execl(self, self, "child", fds, (char *)NULL);
        _exit(127);
    }
    int waiting = wait_at_least(&sh->woken, 1, 1, 5000);
    struct timespec ts = deadline_in(CLOCK_REALTIME, 5000);
    int l = pthread_mutex_timedlock(&sh->mutex, &ts); /* once the child's wait has let it go */
    sh->flag = 5;
    pthread_cond_broadcast(&sh->cond);
    int u = pthread_mutex_unlock(&sh->mutex);
    int held = wait_at_least(&sh->woken, 2, 1, 5000);
    int woken = ATOMIC_LOAD(&sh->woken);
    kill(c, SIGKILL);
    int st = child_exit(c);
    ts = deadline_in(CLOCK_REALTIME, 3000);
    int e = pthread_mutex_timedlock(&sh->mutex, &ts);
    int cons = e == EOWNERDEAD ? pthread_mutex_consistent(&sh->mutex) : -1;
    int u2 = e == 0 || e == EOWNERDEAD ? pthread_mutex_unlock(&sh->mutex) : -1;
    printf("robust%s, a process killed holding it after a wait: child waiting %d, lock %s, signal, unlock %s; "
           "child held it after its wait %d (%s); child %s; next lock %s, consistent %d, unlock %s\n",
           pi ? " PI" : "", waiting, errname(l), errname(u), held, woken == 2 ? "wait 0" : "wait failed",
           st == 128 + SIGKILL ? "killed" : "not killed", errname(e), cons, errname(u2));
    munmap(sh, sizeof *sh);
    close(fd);
}

static int all_waits(void)
{
    pthread_t tick;
    pthread_create(&tick, NULL, ticker, NULL);
    for (int robust = 0; robust <= 1; robust++)
        for (int pi = !robust; pi <= 1; pi++)
            for (int type = PTHREAD_MUTEX_NORMAL; type <= PTHREAD_MUTEX_ERRORCHECK; type++)
                kind(type, pi, robust);
    killed_after_wait(0);
    killed_after_wait(1);
    atomic_store(&stop_ticking, 1);
    pthread_join(tick, NULL);
    return test_exit_status();
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "child") == 0)
        return child_main(atoi(argv[2]));
    if (argc == 2 && strcmp(argv[1], "again") == 0)
        return all_waits();
    test_init();
    alarm(55); /* a safety net: every wait is bounded already */
    all_waits();
    if (under_shim()) {
        long stalls = stalls_of_rerun("again");
        fprintf(stderr, "all waits again under the shim: %ld stalls\n", stalls);
        CHECK(stalls == 0, "the waits kept no worker from its other threads");
    } else {
        CHECK(1, "the waits kept no worker from its other threads");
    }
    return test_exit_status();
}
