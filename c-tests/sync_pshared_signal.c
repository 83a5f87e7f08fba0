/* sync_pshared_signal.c — waits on process-shared objects and a shared futex word under a handled signal,
 * as the kernel and glibc end or restart them: without SA_RESTART, sem_wait, sem_timedwait and FUTEX_WAIT
 * (timed or not) fail with EINTR; with SA_RESTART the untimed ones (sem_wait, FUTEX_WAIT without a
 * timeout) are restarted by the kernel and end only when posted or woken, while the timed ones still fail
 * with EINTR (the kernel's restart block). Under the shim these waits are queued in the kernel for the
 * parked coroutine (io_uring), so a signal must cancel the queued wait and queue it again when restarted.
 * Then a post from another process still finds its waiter, and a thread cancelled while it waits in
 * sem_wait on the shared semaphore runs its cleanup handler, is joined as PTHREAD_CANCELED and consumes
 * nothing (the next post stays in the semaphore). A sender thread repeats the signal every 20 ms
 * until the waiter is back (or, for a restarted wait, until its handler ran 3 times, then posts or wakes),
 * so a signal that arrives before the wait starts does not matter; bounded by 10-15 s limits.
 * asyncshim-test: timeout=60 */
#include "test_util.h"
#include <linux/futex.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

struct shared {
    sem_t s;
    unsigned word;
};

static struct shared *sh;
static pthread_t waiter;
static int back;
static int handled;

static void on_usr1(int sig)
{
    (void)sig;
    ATOMIC_ADD(&handled, 1);
}

/* 0: only signals; 1: after 3 handled signals, posts the semaphore; 2: ... wakes the futex word. */
static int ending;

static void *sender(void *arg)
{
    (void)arg;
    int64_t give_up = mono_ns() + 15LL * 1000000000;
    int ended = 0;
    while (!ATOMIC_LOAD(&back) && mono_ns() < give_up) {
        sleep_ms(20);
        if (ATOMIC_LOAD(&back))
            break;
        if (ending && ATOMIC_LOAD(&handled) >= 3) {
            if (ending == 1 && !ended)
                sem_post(&sh->s);
            if (ending == 2)
                syscall(SYS_futex, &sh->word, FUTEX_WAKE, 1, NULL, NULL, 0);
            ended = 1;
        } else {
            pthread_kill(waiter, SIGUSR1);
        }
    }
    return NULL;
}

/* Runs `wait` on this thread while a sender signals it; prints its result. */
static void interrupted(const char *what, int (*wait)(void), int end_by)
{
    ending = end_by;
    ATOMIC_STORE(&back, 0);
    ATOMIC_STORE(&handled, 0);
    pthread_t t;
    pthread_create(&t, NULL, sender, NULL);
    int r = wait();
    int e = errno;
    ATOMIC_STORE(&back, 1);
    pthread_join(t, NULL);
    printf("%s: %d %s, handler ran: %s\n", what, r, r ? errname(e) : "0", ATOMIC_LOAD(&handled) > 0 ? "yes" : "no");
}

static int do_sem_wait(void)
{
    return sem_wait(&sh->s);
}

static int do_sem_timedwait(void)
{
    struct timespec ts = deadline_in(CLOCK_REALTIME, 10000);
    return sem_timedwait(&sh->s, &ts);
}

static int do_futex_wait(void)
{
    struct timespec rel = { 10, 0 };
    return (int)syscall(SYS_futex, &sh->word, FUTEX_WAIT, 0, &rel, NULL, 0);
}

static int do_futex_wait_untimed(void)
{
    return (int)syscall(SYS_futex, &sh->word, FUTEX_WAIT, 0, NULL, NULL, 0);
}

static int cleanups;

static void cleanup(void *arg)
{
    (void)arg;
    ATOMIC_ADD(&cleanups, 1);
}

static void *cancelled_waiter(void *arg)
{
    (void)arg;
    pthread_cleanup_push(cleanup, NULL);
    ATOMIC_STORE(&back, 1);
    sem_wait(&sh->s);
    pthread_cleanup_pop(0);
    return NULL;
}

int main(void)
{
    test_init();
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        return 1;
    sem_init(&sh->s, 1, 0);
    waiter = pthread_self();

    set_signal_handler(SIGUSR1, on_usr1, 0);
    interrupted("sem_wait, handler without SA_RESTART", do_sem_wait, 0);
    interrupted("sem_timedwait, handler without SA_RESTART", do_sem_timedwait, 0);
    interrupted("shared FUTEX_WAIT with a timeout, handler without SA_RESTART", do_futex_wait, 0);
    interrupted("shared FUTEX_WAIT, handler without SA_RESTART", do_futex_wait_untimed, 0);
    set_signal_handler(SIGUSR1, on_usr1, SA_RESTART);
    interrupted("sem_wait, handler with SA_RESTART (restarted, then posted)", do_sem_wait, 1);
    interrupted("sem_timedwait, handler with SA_RESTART", do_sem_timedwait, 0);
    interrupted("shared FUTEX_WAIT with a timeout, handler with SA_RESTART", do_futex_wait, 0);
    interrupted("shared FUTEX_WAIT, handler with SA_RESTART (restarted, then woken)", do_futex_wait_untimed, 2);

    /* The interrupted waits left nothing queued that could take a post meant for a later waiter. */
    pid_t kid = fork();
    if (kid == 0) {
        sleep_ms(50);
        sem_post(&sh->s);
        _exit(0);
    }
    struct timespec ts = deadline_in(CLOCK_REALTIME, 10000);
    int r = sem_timedwait(&sh->s, &ts);
    printf("sem_timedwait for another process's post: %d %s\n", r, r ? errname(errno) : "0");
    int st;
    waitpid(kid, &st, 0);
    int v = -1;
    sem_getvalue(&sh->s, &v);
    printf("value left: %d, child exit %d\n", v, WIFEXITED(st) ? WEXITSTATUS(st) : -1);

    ATOMIC_STORE(&back, 0);
    pthread_t t;
    pthread_create(&t, NULL, cancelled_waiter, NULL);
    wait_at_least(&back, 1, 1, 10000);
    sleep_ms(50); /* into its wait, most likely; a request before it is acted on at sem_wait's entry */
    pthread_cancel(t);
    void *res = NULL;
    pthread_join(t, &res);
    sem_post(&sh->s);
    sem_getvalue(&sh->s, &v);
    printf("cancelled in sem_wait: %s, cleanup ran %d, value after a post: %d\n",
           res == PTHREAD_CANCELED ? "PTHREAD_CANCELED" : "not cancelled", ATOMIC_LOAD(&cleanups), v);
    return 0;
}
