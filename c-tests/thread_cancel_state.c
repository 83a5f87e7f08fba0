/* pthread_cancel beyond the blocking points: cleanup handlers in LIFO order; a request made while
 * cancellation is disabled is acted on at the first point after enabling; asynchronous cancellation of a
 * thread spinning without calls; a detached thread; pthread_once whose initialiser is cancelled; what
 * pthread_cancel answers for a thread that ended but is not joined (ESRCH before glibc 2.34, 0 after).
 * asyncshim-test: timeout=120 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "glibc_compat.h"
#include "shim_probe.h"

static atomic_int ready;
static char order[64];
static int pfd[2];
static sem_t detached_done;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void wait_ready(void)
{
    while (!atomic_load(&ready))
        usleep(1000);
    atomic_store(&ready, 0);
}

static void note(void *arg)
{
    strcat(order, (const char *)arg);
}

static void *lifo_main(void *arg)
{
    (void)arg;
    pthread_cleanup_push(note, "1");
    pthread_cleanup_push(note, "2");
    pthread_cleanup_push(note, "3");
    atomic_store(&ready, 1);
    char c;
    read(pfd[0], &c, 1);
    pthread_cleanup_pop(0);
    pthread_cleanup_pop(0);
    pthread_cleanup_pop(0);
    return NULL;
}

static atomic_int go_on;

static void *disabled_main(void *arg)
{
    (void)arg;
    int old = -1;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    printf("disabled: old state %s\n", old == PTHREAD_CANCEL_ENABLE ? "enable" : "disable");
    atomic_store(&ready, 1);
    while (!atomic_load(&go_on))
        usleep(1000);
    /* Points while disabled: the request stays pending. */
    usleep(1000);
    pthread_testcancel();
    printf("disabled: survived points\n");
    fflush(stdout);
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);
    printf("disabled: enabled again (old %s)\n", old == PTHREAD_CANCEL_DISABLE ? "disable" : "enable");
    fflush(stdout);
    pthread_testcancel();
    printf("disabled: not reached\n");
    return NULL;
}

static volatile unsigned long spins;

static void *async_main(void *arg)
{
    (void)arg;
    int old = -1;
    pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &old);
    atomic_store(&ready, 1);
    for (;;)
        spins++;
    return NULL;
}

static void detached_cleanup(void *arg)
{
    (void)arg;
    sem_post(&detached_done);
}

static void *detached_main(void *arg)
{
    (void)arg;
    pthread_cleanup_push(detached_cleanup, NULL);
    atomic_store(&ready, 1);
    char c;
    read(pfd[0], &c, 1);
    pthread_cleanup_pop(0);
    return NULL;
}

static atomic_int init_runs;

static void init_blocking(void)
{
    atomic_fetch_add(&init_runs, 1);
    atomic_store(&ready, 1);
    char c;
    read(pfd[0], &c, 1);
}

static void init_plain(void)
{
    atomic_fetch_add(&init_runs, 1);
}

static void *once_main(void *arg)
{
    (void)arg;
    pthread_once(&once, init_blocking);
    return NULL;
}

/* Threads created with PTHREAD_EXPLICIT_SCHED are real OS threads under the shim too: glibc cancels
 * them, also while they wait on a semaphore or condition variable the shim runs. */
static sem_t plain_sem;
static pthread_mutex_t plain_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t plain_cv = PTHREAD_COND_INITIALIZER;
static int plain_cleanup;

static void plain_unlock(void *arg)
{
    (void)arg;
    plain_cleanup = pthread_mutex_unlock(&plain_mtx) == 0 ? 1 : 2;
}

static void *plain_sem_main(void *arg)
{
    (void)arg;
    atomic_store(&ready, 1);
    for (;;)
        sem_wait(&plain_sem);
    return NULL;
}

static void *plain_cond_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&plain_mtx);
    pthread_cleanup_push(plain_unlock, NULL);
    atomic_store(&ready, 1);
    for (;;)
        pthread_cond_wait(&plain_cv, &plain_mtx);
    pthread_cleanup_pop(0);
    return NULL;
}

static int self_rc = -1, self_after = 0;

static void *self_main(void *arg)
{
    (void)arg;
    self_rc = pthread_cancel(pthread_self());
    /* Deferred: nothing happens until a cancellation point. */
    self_after = 1;
    pthread_testcancel();
    self_after = 2;
    return NULL;
}

static void *quick_main(void *arg)
{
    return arg;
}

static void cancel_join(const char *what, pthread_t t)
{
    void *res = NULL;
    int rc = pthread_cancel(t);
    int jr = pthread_join(t, &res);
    printf("%s: cancel=%d join=%d canceled=%d\n", what, rc, jr, res == PTHREAD_CANCELED);
    fflush(stdout);
}

int main(void)
{
    pthread_t t;
    if (pipe(pfd))
        return 1;

    pthread_create(&t, NULL, lifo_main, NULL);
    wait_ready();
    usleep(20000);
    cancel_join("lifo", t);
    printf("lifo: cleanup order %s\n", order);

    pthread_create(&t, NULL, disabled_main, NULL);
    wait_ready();
    int rc = pthread_cancel(t);
    atomic_store(&go_on, 1);
    void *res = NULL;
    int jr = pthread_join(t, &res);
    printf("disabled: cancel=%d join=%d canceled=%d\n", rc, jr, res == PTHREAD_CANCELED);

    pthread_create(&t, NULL, async_main, NULL);
    wait_ready();
    usleep(20000);
    cancel_join("async spin", t);

    sem_init(&detached_done, 0, 0);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_create(&t, &attr, detached_main, NULL);
    wait_ready();
    usleep(20000);
    printf("detached: cancel=%d\n", pthread_cancel(t));
    sem_wait(&detached_done);
    printf("detached: cleanup ran\n");

    pthread_create(&t, NULL, once_main, NULL);
    wait_ready();
    usleep(20000);
    cancel_join("once", t);
    rc = pthread_once(&once, init_plain);
    printf("once: again=%d init runs=%d\n", rc, atomic_load(&init_runs));
    rc = pthread_once(&once, init_plain);
    printf("once: third=%d init runs=%d\n", rc, atomic_load(&init_runs));

    pthread_create(&t, NULL, self_main, NULL);
    jr = pthread_join(t, &res);
    printf("self: cancel=%d join=%d canceled=%d reached=%d\n", self_rc, jr, res == PTHREAD_CANCELED, self_after);

    pthread_attr_t explicit_attr;
    pthread_attr_init(&explicit_attr);
    pthread_attr_setinheritsched(&explicit_attr, PTHREAD_EXPLICIT_SCHED);
    sem_init(&plain_sem, 0, 0);
    if (pthread_create(&t, &explicit_attr, plain_sem_main, NULL) == 0) {
        wait_ready();
        usleep(20000);
        cancel_join("real thread sem_wait", t);
    }
    if (pthread_create(&t, &explicit_attr, plain_cond_main, NULL) == 0) {
        wait_ready();
        usleep(20000);
        cancel_join("real thread cond_wait", t);
        printf("real thread cond_wait: mutex held in cleanup %d\n", plain_cleanup);
    }

    /* A thread that ended but is not joined: natively on glibc before 2.34 the answer turns to ESRCH once
     * the kernel cleared the thread's tid, which pthread_kill(t, 0) shows there. */
    pthread_create(&t, NULL, quick_main, (void *)7);
    usleep(20000);
    if (!glibc_at_least(2, 34) && !under_shim())
        for (int i = 0; i < 5000 && pthread_kill(t, 0) == 0; i++)
            usleep(1000);
    rc = pthread_cancel(t);
    jr = pthread_join(t, &res);
    printf("ended: cancel=%s join=%d value=%ld\n", rc == 0 ? "0" : rc == ESRCH ? "ESRCH" : "other", jr, (long)res);

    printf("done\n");
    return 0;
}
