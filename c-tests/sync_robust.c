/* sync_robust.c — robust mutexes whose owner dies (issue 4): a thread that ends holding a robust mutex
 * hands EOWNERDEAD to the next locker (also to one already waiting), pthread_mutex_consistent makes it
 * usable again, and a process-shared robust mutex in shared memory locked by a forked child that dies is
 * released by the kernel for the parent. Coroutines have no kernel thread to die: the shim walks their
 * robust lists itself, and registers the forking coroutine's list in the child.
 * asyncshim-test: timeout=30 */
#include "test_util.h"
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>

static pthread_mutex_t m;
static int waiter_result = -1, waiter_started;

static void *die_holding(void *arg)
{
    (void)arg;
    int r = pthread_mutex_lock(&m);
    return (void *)(intptr_t)r; /* ends without unlocking */
}

static void *die_holding_later(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&m);
    wait_at_least(&waiter_started, 1, 1, 5000);
    sleep_ms(100); /* the waiter is blocked in pthread_mutex_lock by now */
    return NULL;
}

static void *waiter(void *arg)
{
    (void)arg;
    ATOMIC_STORE(&waiter_started, 1);
    waiter_result = pthread_mutex_lock(&m);
    if (waiter_result == EOWNERDEAD) {
        pthread_mutex_consistent(&m);
        pthread_mutex_unlock(&m);
    }
    return NULL;
}

int main(void)
{
    test_init();
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&m, &a);

    pthread_t t;
    void *r;
    pthread_create(&t, NULL, die_holding, NULL);
    pthread_join(t, &r);
    printf("owner locked it: %s, then ended\n", errname((int)(intptr_t)r));
    int e = pthread_mutex_lock(&m);
    printf("next lock: %s\n", errname(e));
    int c1 = pthread_mutex_consistent(&m);
    int u1 = pthread_mutex_unlock(&m);
    printf("consistent: %d, unlock: %d\n", c1, u1);
    e = pthread_mutex_lock(&m);
    printf("lock after recovery: %s\n", errname(e));
    pthread_mutex_unlock(&m);

    /* Not made consistent: the mutex becomes unusable. */
    pthread_create(&t, NULL, die_holding, NULL);
    pthread_join(t, NULL);
    e = pthread_mutex_lock(&m);
    int u2 = pthread_mutex_unlock(&m);
    printf("lock of a dead owner's mutex again: %s; unlock without consistent: %d\n", errname(e), u2);
    e = pthread_mutex_lock(&m);
    printf("then: %s\n", errname(e));
    pthread_mutex_destroy(&m);
    pthread_mutex_init(&m, &a);

    /* A waiter already blocked when the owner dies. */
    pthread_t o, w;
    pthread_create(&o, NULL, die_holding_later, NULL);
    sleep_ms(20);
    pthread_create(&w, NULL, waiter, NULL);
    pthread_join(o, NULL);
    pthread_join(w, NULL);
    printf("waiter blocked while the owner died: %s\n", errname(waiter_result));

    /* Process-shared robust mutex: a forked child locks it and dies. */
    pthread_mutex_t *pm = mmap(NULL, sizeof *pm, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(pm, &a);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        pthread_mutex_lock(pm);
        _exit(7);
    }
    int st;
    waitpid(c, &st, 0);
    e = pthread_mutex_lock(pm);
    printf("child exit %d; parent's lock of the shared mutex: %s\n", WEXITSTATUS(st), errname(e));
    if (e == EOWNERDEAD)
        pthread_mutex_consistent(pm);
    pthread_mutex_unlock(pm);
    return test_exit_status();
}
