/* sync_robust_pi.c — a thread (a coroutine under the shim) that ends holding a priority-inheritance mutex,
 * by returning or by pthread_exit, as the kernel hands it on natively: a robust one that a thread waits for
 * in the kernel (a thread of another process — the forked child, where the shim is off — or a real OS
 * thread of this process) goes to that waiter with EOWNERDEAD; one nobody waits for gives EOWNERDEAD to the
 * next locker (at once, right after the join: trylock), to a coroutine or a real thread; then
 * pthread_mutex_consistent + unlock make the next lock 0, and an unlock without it makes the mutex
 * ENOTRECOVERABLE. Whether the waiter really waits in the kernel is seen from the lock word's FUTEX_WAITERS bit.
 * Then many threads holding robust PI mutexes at once, in rounds, and many waiting for one (under the shim
 * each holder has a keeper thread of its own, so has a waiter while it waits, and only a few idle keepers
 * stay).
 * asyncshim-test: timeout=60 */
#include "shim_probe.h"
#include "sync_util.h"
#include "test_util.h"
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>

enum { HELD, SAW_WAITER, WAITER_E, WAITER_U, WAITER_DONE, NFLAGS };

struct area {
    pthread_mutex_t mx, other;
    int flags[NFLAGS];
};

static struct area *ar;
static int end_by_exit, wait_for_waiter, hold_other, make_consistent;

/* Locks the mutex (and the other one when asked), then ends holding it once a kernel waiter is there. */
static void *holder(void *arg)
{
    (void)arg;
    intptr_t r = pthread_mutex_lock(&ar->mx);
    if (hold_other)
        r |= pthread_mutex_lock(&ar->other) << 8;
    ATOMIC_STORE(&ar->flags[HELD], 1);
    if (wait_for_waiter) {
        ATOMIC_STORE(&ar->flags[SAW_WAITER], kernel_waiter_on(&ar->mx));
        sleep_ms(20); /* the waiter is asleep in the kernel, not only attached */
    }
    if (end_by_exit)
        pthread_exit((void *)r);
    return (void *)r;
}

/* The waiter: a timed lock (bounded), then consistent (when asked) and unlock. */
static void wait_for_mutex(void)
{
    wait_at_least(&ar->flags[HELD], 1, 1, 5000);
    struct timespec ts = deadline_in(CLOCK_REALTIME, 5000);
    int e = pthread_mutex_timedlock(&ar->mx, &ts);
    if (e == EOWNERDEAD && make_consistent)
        pthread_mutex_consistent(&ar->mx);
    int u = e == 0 || e == EOWNERDEAD ? pthread_mutex_unlock(&ar->mx) : -1;
    ATOMIC_STORE(&ar->flags[WAITER_E], e);
    ATOMIC_STORE(&ar->flags[WAITER_U], u);
    ATOMIC_STORE(&ar->flags[WAITER_DONE], 1);
}

static void *real_waiter(void *arg)
{
    (void)arg;
    wait_for_mutex();
    return NULL;
}

static const char *ending(void)
{
    return end_by_exit ? "pthread_exit" : "return";
}

/* The mutex after the episode: one more timed lock by the main thread, unlocked again. */
static const char *next_lock(void)
{
    struct timespec ts = deadline_in(CLOCK_REALTIME, 2000);
    int e = pthread_mutex_timedlock(&ar->mx, &ts);
    if (e == EOWNERDEAD)
        pthread_mutex_consistent(&ar->mx);
    if (e == 0 || e == EOWNERDEAD)
        pthread_mutex_unlock(&ar->mx);
    return errname(e);
}

static void new_area(int robust, int pshared)
{
    ar = mmap(NULL, sizeof *ar, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (ar == MAP_FAILED) {
        perror("mmap");
        exit(3);
    }
    init_mutex(&ar->mx, PTHREAD_MUTEX_NORMAL, 1, robust, pshared);
    init_mutex(&ar->other, PTHREAD_MUTEX_NORMAL, 1, robust, pshared);
}

static void end_area(void)
{
    pthread_mutex_destroy(&ar->mx);
    pthread_mutex_destroy(&ar->other);
    munmap(ar, sizeof *ar);
}

/* (a) A process-shared robust PI mutex; the waiter is the forked child, in the kernel. */
static void other_process_waits(int exit_, int consistent)
{
    new_area(1, 1);
    end_by_exit = exit_, wait_for_waiter = 1, hold_other = 0, make_consistent = consistent;
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        wait_for_mutex();
        _exit(0);
    }
    void *r;
    pthread_join(start_thread(holder, 0), &r);
    int st;
    waitpid(c, &st, 0);
    printf("robust pshared PI, holder ended (%s) while another process waited: holder lock %s, kernel waiter %d, "
           "waiter got %s, its unlock%s %s; next lock %s; child exit %d\n",
           ending(), errname((int)(intptr_t)r), ATOMIC_LOAD(&ar->flags[SAW_WAITER]),
           errname(ATOMIC_LOAD(&ar->flags[WAITER_E])), consistent ? " after consistent" : "",
           errname(ATOMIC_LOAD(&ar->flags[WAITER_U])), next_lock(), WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    end_area();
}

/* (b) A private robust PI mutex a real thread of this process waits for; the holder also holds another
 * one nobody waits for. */
static void real_thread_waits(int exit_, int consistent)
{
    new_area(1, 0);
    end_by_exit = exit_, wait_for_waiter = 1, hold_other = 1, make_consistent = consistent;
    pthread_t w = start_thread(real_waiter, 1);
    void *r;
    pthread_join(start_thread(holder, 0), &r);
    int other = pthread_mutex_trylock(&ar->other);
    int oc = other == EOWNERDEAD ? pthread_mutex_consistent(&ar->other) : -1;
    int ou = other == 0 || other == EOWNERDEAD ? pthread_mutex_unlock(&ar->other) : -1;
    pthread_join(w, NULL);
    printf("robust PI, holder ended (%s) while a real thread waited: holder locks %#x, kernel waiter %d, "
           "waiter got %s, its unlock%s %s; next lock %s; the other mutex: trylock %s, consistent %d, "
           "unlock %d\n",
           ending(), (int)(intptr_t)r, ATOMIC_LOAD(&ar->flags[SAW_WAITER]), errname(ATOMIC_LOAD(&ar->flags[WAITER_E])),
           consistent ? " after consistent" : "", errname(ATOMIC_LOAD(&ar->flags[WAITER_U])), next_lock(),
           errname(other), oc, ou);
    end_area();
}

static int next_try, next_cons, next_unlock;

static void *try_next(void *arg)
{
    (void)arg;
    next_try = pthread_mutex_trylock(&ar->mx);
    next_cons = next_try == EOWNERDEAD && make_consistent ? pthread_mutex_consistent(&ar->mx) : -1;
    next_unlock = next_try == 0 || next_try == EOWNERDEAD ? pthread_mutex_unlock(&ar->mx) : -1;
    return NULL;
}

/* (c) Nobody waits: the next locker (a coroutine, or a real thread), right after the join. */
static void nobody_waits(int pshared, int exit_, int real_next, int consistent)
{
    new_area(1, pshared);
    end_by_exit = exit_, wait_for_waiter = 0, hold_other = 0, make_consistent = consistent;
    void *r;
    pthread_join(start_thread(holder, 0), &r);
    pthread_join(start_thread(try_next, real_next), NULL);
    printf("robust%s PI, holder ended (%s), nobody waited: holder lock %s; %s trylock %s, consistent %d, "
           "unlock %s; next lock %s\n",
           pshared ? " pshared" : "", ending(), errname((int)(intptr_t)r), real_next ? "real thread's" : "thread's",
           errname(next_try), next_cons, errname(next_unlock), next_lock());
    end_area();
}

#define HOLDERS 8
#define WAITERS 24
static pthread_mutex_t own[HOLDERS], one;
static int holding, bad;

/* Holds its own mutex until all holders hold theirs, then unlocks it. */
static void *hold_own(void *arg)
{
    pthread_mutex_t *mx = arg;
    int l = pthread_mutex_lock(mx);
    ATOMIC_ADD(&holding, 1);
    wait_at_least(&holding, HOLDERS, 1, 5000);
    int u = pthread_mutex_unlock(mx);
    if (l || u)
        ATOMIC_ADD(&bad, 1);
    return NULL;
}

/* A timed lock of `one`, held by main for a while, then unlock. */
static void *wait_for_one(void *arg)
{
    (void)arg;
    ATOMIC_ADD(&holding, 1);
    struct timespec ts = deadline_in(CLOCK_REALTIME, 5000);
    int l = pthread_mutex_timedlock(&one, &ts);
    int u = l == 0 ? pthread_mutex_unlock(&one) : -1;
    if (l || u)
        ATOMIC_ADD(&bad, 1);
    return NULL;
}

static void many_holders_and_waiters(void)
{
    int base = os_threads();
    for (int i = 0; i < HOLDERS; i++)
        init_mutex(&own[i], PTHREAD_MUTEX_NORMAL, 1, 1, 0);
    pthread_t t[WAITERS];
    for (int round = 0; round < 3; round++) {
        ATOMIC_STORE(&holding, 0);
        for (int i = 0; i < HOLDERS; i++)
            pthread_create(&t[i], NULL, hold_own, &own[i]);
        for (int i = 0; i < HOLDERS; i++)
            pthread_join(t[i], NULL);
    }
    int after_holders = os_threads();

    init_mutex(&one, PTHREAD_MUTEX_NORMAL, 1, 1, 0);
    int l = pthread_mutex_lock(&one);
    int before = os_threads();
    ATOMIC_STORE(&holding, 0);
    for (int i = 0; i < WAITERS; i++)
        pthread_create(&t[i], NULL, wait_for_one, NULL);
    wait_at_least(&holding, WAITERS, 1, 5000);
    sleep_ms(50);
    int during = os_threads();
    int u = pthread_mutex_unlock(&one);
    for (int i = 0; i < WAITERS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < HOLDERS; i++)
        pthread_mutex_destroy(&own[i]);
    pthread_mutex_destroy(&one);
    fprintf(stderr, "OS threads: at first %d, after the holders %d; waiters: before %d, during %d\n", base,
            after_holders, before, during);
    printf("%d holders in 3 rounds, %d waiters for one mutex: main lock %s, unlock %s, failed calls %d\n", HOLDERS,
           WAITERS, errname(l), errname(u), ATOMIC_LOAD(&bad));
    CHECK(after_holders - base <= 8, "few threads stay after the holders ended");
    /* Under the shim each waiter's keeper waits in the kernel for it (idle and ending keepers from the
     * holders' rounds are among `before`: count them all). */
    CHECK(during >= WAITERS, "each waiting thread waits in the kernel as an OS thread");
}

int main(void)
{
    test_init();
    alarm(50); /* a safety net: every wait is bounded already */
    for (int exit_ = 0; exit_ < 2; exit_++) {
        other_process_waits(exit_, 1);
        other_process_waits(exit_, 0);
        real_thread_waits(exit_, 1);
        real_thread_waits(exit_, 0);
        for (int pshared = 0; pshared < 2; pshared++)
            for (int real = 0; real < 2; real++)
                for (int consistent = 0; consistent < 2; consistent++)
                    nobody_waits(pshared, exit_, real, consistent);
    }
    many_holders_and_waiters();
    return test_exit_status();
}
