/* sync_util.h — helpers shared by the synchronisation tests (not a test itself): mutex set-up, memory and
 * condition variables, barriers and rwlocks shared with forked children, real and ordinary threads, a ticker that shows whether a wait left its worker free, flag waits on a condition
 * variable, and a thread that holds a lock until told to let go. */
#ifndef SYNC_UTIL_H
#define SYNC_UTIL_H
#include "test_util.h"
#include <pthread.h>
#include <stdatomic.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Initialises *mx as `type`, with protocol `pi` (0: none; 1 is PTHREAD_PRIO_INHERIT, or
 * PTHREAD_PRIO_PROTECT), robust and process-shared as asked. */
static __attribute__((unused)) void init_mutex(pthread_mutex_t *mx, int type, int pi, int robust, int pshared)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    if (pi)
        pthread_mutexattr_setprotocol(&a, pi);
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

/* Polls (5 s at most) until a thread waits for the PI mutex `mx` in the kernel: FUTEX_LOCK_PI sets the
 * waiters bit of its word. 1 if one does. */
static __attribute__((unused)) int kernel_waiter_on(pthread_mutex_t *mx)
{
    for (int i = 0; i < 5000; i++) {
        if (__atomic_load_n((unsigned *)mx, __ATOMIC_SEQ_CST) & 0x80000000u)
            return 1;
        sleep_ms(1);
    }
    return 0;
}

/* `size` zeroed bytes shared with the children this process forks (MAP_SHARED | MAP_ANONYMOUS); exits
 * with status 3 (and a message on stderr) when they cannot be mapped. */
static __attribute__((unused)) void *shared_area(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(3);
    }
    return p;
}

/* memfd `fd`'s `size` bytes, mapped shared; exits with status 3 when they cannot be mapped. */
static __attribute__((unused)) void *memfd_area_of_fd(int fd, size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        exit(3);
    return p;
}

/* `size` zeroed bytes of a new memfd named `name`, mapped shared, its fd in *fd: a child that runs this
 * program again (start_native_self) maps the same bytes with memfd_area_of. Exits with status 3 (and a
 * message on stderr) when they cannot be made. */
static __attribute__((unused)) void *memfd_area(const char *name, size_t size, int *fd)
{
    *fd = (int)syscall(SYS_memfd_create, name, 0);
    if (*fd < 0 || ftruncate(*fd, size) != 0) {
        perror("memfd");
        exit(3);
    }
    return memset(memfd_area_of_fd(*fd, size), 0, size);
}

/* The memfd area of `size` bytes whose fd number a child was given as the argument `fd_arg`; exits with
 * status 3 when it cannot be mapped. */
static __attribute__((unused)) void *memfd_area_of(const char *fd_arg, size_t size)
{
    return memfd_area_of_fd(atoi(fd_arg), size);
}

/* Forks a child that runs this program again as `self_name role FD` with glibc's own code (LD_PRELOAD
 * unset: never under the shim), to share the memfd area `fd` with; returns its pid. */
static __attribute__((unused)) pid_t start_native_self(const char *self_name, const char *role, int fd)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        unsetenv("LD_PRELOAD");
        char fdarg[16];
        snprintf(fdarg, sizeof fdarg, "%d", fd);
        execl("/proc/self/exe", self_name, role, fdarg, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Starts n children that run this program again as `self_name role FD` natively (start_native_self),
 * their pids in kids[]. */
static __attribute__((unused)) void start_native_selves(pid_t *kids, int n, const char *self_name, const char *role,
                                                        int fd)
{
    for (int i = 0; i < n; i++)
        kids[i] = start_native_self(self_name, role, fd);
}

/* Initialises *c as a process-shared condition variable when pshared, else a process-private one. */
static __attribute__((unused)) void init_cond(pthread_cond_t *c, int pshared)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setpshared(&a, pshared ? PTHREAD_PROCESS_SHARED : PTHREAD_PROCESS_PRIVATE);
    pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
}

/* Initialises *b as a process-shared barrier for n threads. */
static __attribute__((unused)) void init_pshared_barrier(pthread_barrier_t *b, unsigned n)
{
    pthread_barrierattr_t a;
    pthread_barrierattr_init(&a);
    pthread_barrierattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_barrier_init(b, &a, n);
    pthread_barrierattr_destroy(&a);
}

/* Initialises *rw as a process-shared rwlock. */
static __attribute__((unused)) void init_pshared_rwlock(pthread_rwlock_t *rw)
{
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_rwlock_init(rw, &a);
    pthread_rwlockattr_destroy(&a);
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
/* What a contender thread reports to contend_with_main. */
struct contention {
    int started, flag, result, waited_ms;
};

/* The main thread locks m and starts `contender` (a real OS thread or an ordinary one, see start_thread),
 * which sets c->started, locks m (so it must wait), records c->waited_ms, sets c->flag, unlocks and leaves
 * its result in c->result. Main unlocks 60 ms after the start, joins it, prints what happened and checks
 * that the contender waited for the unlock. */
static __attribute__((unused)) void contend_with_main(const char *what, int real, pthread_mutex_t *m,
                                                      void *(*contender)(void *), struct contention *c)
{
    ATOMIC_STORE(&c->started, 0);
    ATOMIC_STORE(&c->flag, 0);
    ATOMIC_STORE(&c->result, -1);
    int l = pthread_mutex_lock(m);
    pthread_t t = start_thread(contender, real);
    wait_at_least(&c->started, 1, 1, 5000);
    sleep_ms(60);
    int early = ATOMIC_LOAD(&c->flag);
    int u = pthread_mutex_unlock(m);
    pthread_join(t, NULL);
    printf("%s: main lock %s, contender got it before unlock %d, unlock %s, contender %s\n", what, errname(l),
           early, errname(u), errname(ATOMIC_LOAD(&c->result)));
    CHECK(ATOMIC_LOAD(&c->waited_ms) >= 40, "contender waited for the unlock");
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
/* A thread that takes a lock (`lock(obj)`), sets `held`, holds it hold_ms and then until `release` is set,
 * lingers linger_ms more, sets `released` and unlocks (`unlock(obj)`); lock_rc and unlock_rc are the
 * results. Start it with holder_start_with (which returns once it holds the lock), end it with
 * holder_finish. */
struct holder {
    int (*lock)(void *);
    int (*unlock)(void *);
    void *obj;
    long hold_ms, linger_ms;
    int held, release, released, lock_rc, unlock_rc;
    pthread_t t;
};

static __attribute__((unused)) void *holder_body(void *arg)
{
    struct holder *h = (struct holder *)arg;
    h->lock_rc = h->lock(h->obj);
    ATOMIC_STORE(&h->held, 1);
    if (h->hold_ms > 0)
        sleep_ms(h->hold_ms);
    while (!ATOMIC_LOAD(&h->release))
        sleep_ms(2);
    if (h->linger_ms > 0)
        sleep_ms(h->linger_ms);
    ATOMIC_STORE(&h->released, 1);
    h->unlock_rc = h->unlock(h->obj);
    return NULL;
}

static __attribute__((unused)) void holder_start_with(struct holder *h, int (*lock)(void *), int (*unlock)(void *),
                                                      void *obj, long hold_ms, long linger_ms)
{
    memset(h, 0, sizeof *h);
    h->lock = lock;
    h->unlock = unlock;
    h->obj = obj;
    h->hold_ms = hold_ms;
    h->linger_ms = linger_ms;
    pthread_create(&h->t, NULL, holder_body, h);
    wait_at_least(&h->held, 1, 1, 10000);
}

/* Lets the holder go and joins it; 1 when it locked and unlocked without error. */
static __attribute__((unused)) int holder_finish(struct holder *h)
{
    ATOMIC_STORE(&h->release, 1);
    pthread_join(h->t, NULL);
    return h->lock_rc == 0 && h->unlock_rc == 0;
}
#endif
