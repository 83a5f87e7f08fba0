/* Helpers shared by the tests of process-shared, robust and priority-inheritance mutexes. */
#ifndef SYNC_UTIL_H
#define SYNC_UTIL_H
#include "test_util.h"
#include <pthread.h>
#include <stdatomic.h>
#include <sched.h>

/* Initialises *mx as `type`, with PTHREAD_PRIO_INHERIT when pi, robust and process-shared as asked. */
static __attribute__((unused)) void init_mutex(pthread_mutex_t *mx, int type, int pi, int robust, int pshared)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    if (pi)
        pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT);
    pthread_mutexattr_settype(&a, type);
    if (robust)
        pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (pshared)
        pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    int r = pthread_mutex_init(mx, &a);
    if (r)
        fprintf(stderr, "pthread_mutex_init: %s\n", errname(r));
    pthread_mutexattr_destroy(&a);
}

/* Starts `fn` as a real OS thread (explicit scheduling: the shim leaves such threads to the kernel) or
 * as an ordinary thread (a coroutine under the shim). */
static __attribute__((unused)) pthread_t start_thread(void *(*fn)(void *), int real)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    if (real) {
        pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
        pthread_attr_setschedpolicy(&attr, SCHED_OTHER);
        struct sched_param sp = { .sched_priority = 0 };
        pthread_attr_setschedparam(&attr, &sp);
    }
    pthread_t t;
    int r = pthread_create(&t, &attr, fn, NULL);
    if (r)
        fprintf(stderr, "pthread_create: %s\n", errname(r));
    pthread_attr_destroy(&attr);
    return t;
}
/* A thread that counts 2 ms ticks until stop_ticking is set: run beside a wait, it shows whether the wait
 * left its worker free for other threads (see wait_for_ticks). */
static __attribute__((unused)) atomic_int ticks;
static __attribute__((unused)) atomic_int stop_ticking;

static __attribute__((unused)) void *ticker(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_ticking)) {
        sleep_ms(2);
        atomic_fetch_add(&ticks, 1);
    }
    return NULL;
}

/* Returns once the ticker has ticked n more times. */
static __attribute__((unused)) void wait_for_ticks(int n)
{
    int start = atomic_load(&ticks);
    while (atomic_load(&ticks) < start + n)
        sleep_ms(1);
}
/* Waits, holding `m`, until *flag is `want`, at most limit_ms (CLOCK_REALTIME); the last wait's result. */
static __attribute__((unused)) int wait_for_flag(pthread_cond_t *c, pthread_mutex_t *m, int *flag, int want,
                                                 long limit_ms)
{
    struct timespec until = deadline_in(CLOCK_REALTIME, limit_ms);
    int r = 0;
    while (__atomic_load_n(flag, __ATOMIC_ACQUIRE) != want && r == 0)
        r = pthread_cond_timedwait(c, m, &until);
    return r;
}

/* Sets *flag to `value` under `m` and signals `c`. */
static __attribute__((unused)) void signal_flag(pthread_cond_t *c, pthread_mutex_t *m, int *flag, int value)
{
    pthread_mutex_lock(m);
    __atomic_store_n(flag, value, __ATOMIC_RELEASE);
    pthread_cond_signal(c);
    pthread_mutex_unlock(m);
}
#endif
