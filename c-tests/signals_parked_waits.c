/* A signal handler for a thread parked in any kind of wait — a mutex, a rwlock (read and write), a
 * barrier, a condition variable (plain and timed), a semaphore, a join, pthread_once, a raw futex — runs
 * in that thread, on that thread's own stack, and afterwards:
 *  - the handler leaves by siglongjmp: the thread carries on from its sigsetjmp point, and everything it
 *    does later (waiting again, taking the same mutex, a semaphore it parks on) works;
 *  - the handler returns: a mutex, rwlock, barrier, condition variable, join or pthread_once wait goes on
 *    and completes normally when released (a condition variable wait returns once: no spurious wake-up); sem_wait and an untimed futex wait fail with EINTR, or go on
 *    with SA_RESTART; sem_timedwait fails with EINTR even with SA_RESTART.
 * Signals are sent with pthread_kill, and once with kill() to the process while every other thread
 * blocks the signal (routed to the parked thread). The signal is resent until it has done its work, so
 * whether the first one found the thread already parked changes nothing in the output.
 * asyncshim-test: timeout=180 */
#include "test_util.h"
#include "waiter.h"
#include <linux/futex.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

enum kind { MUTEX, RDLOCK, WRLOCK, BARRIER, COND, COND_TIMED, SEM, SEM_TIMED, JOIN, ONCE, FUTEX, FUTEX_TIMED };
static const char *kind_name[] = { "mutex", "rwlock rdlock", "rwlock wrlock", "barrier", "cond wait",
                                   "cond timedwait", "sem_wait", "sem_timedwait", "join", "once",
                                   "futex wait", "futex timed wait" };

struct scenario {
    enum kind kind;
    int longjmp_out;  /* the handler leaves by siglongjmp */
    int restart;      /* SA_RESTART */
    int process_wide; /* kill() to the process instead of pthread_kill */
};

/* Per-scenario state, reset by run(). */
static const struct scenario *sc;
static int released;
static int wait_result;  /* what the wait returned (0, an errno value, or the barrier's result) */
static int after_result; /* a later call by the waiter (see each kind) */

static pthread_mutex_t mutex;
static pthread_rwlock_t rwlock;
static pthread_barrier_t barrier;
static pthread_mutex_t cond_mutex;
static pthread_cond_t cond;
static int predicate, cond_returns;
static sem_t sem, init_go, target_go;
static pthread_once_t once;
static int init_runs;
static unsigned futex_word;
static pthread_t target, initializer;

static void init_routine(void)
{
    sem_wait(&init_go);
    ATOMIC_ADD(&init_runs, 1);
}

static void *initializer_body(void *arg)
{
    (void)arg;
    pthread_once(&once, init_routine);
    return NULL;
}

static void *target_body(void *arg)
{
    (void)arg;
    while (sem_wait(&target_go) != 0)
        ;
    return (void *)42;
}

static long futex_call(int op, unsigned val, const struct timespec *ts)
{
    return syscall(SYS_futex, &futex_word, op, val, ts, NULL, 0);
}

/* The wait itself, made by the waiter; returns 0 or an errno value (the barrier: 1 for either result). */
static int do_wait(void)
{
    struct timespec far;
    void *value = NULL;
    int r;
    switch (sc->kind) {
    case MUTEX:
        return pthread_mutex_lock(&mutex);
    case RDLOCK:
        return pthread_rwlock_rdlock(&rwlock);
    case WRLOCK:
        return pthread_rwlock_wrlock(&rwlock);
    case BARRIER:
        r = pthread_barrier_wait(&barrier);
        return r == 0 || r == PTHREAD_BARRIER_SERIAL_THREAD ? 1 : r;
    case COND:
    case COND_TIMED:
        pthread_mutex_lock(&cond_mutex);
        r = 0;
        far = deadline_in(CLOCK_REALTIME, 60000);
        while (!predicate && r == 0) {
            r = sc->kind == COND ? pthread_cond_wait(&cond, &cond_mutex)
                                 : pthread_cond_timedwait(&cond, &cond_mutex, &far);
            cond_returns++;
        }
        pthread_mutex_unlock(&cond_mutex);
        return r;
    case SEM:
        return sem_wait(&sem) == 0 ? 0 : errno;
    case SEM_TIMED:
        far = deadline_in(CLOCK_REALTIME, 60000);
        return sem_timedwait(&sem, &far) == 0 ? 0 : errno;
    case JOIN:
        r = pthread_join(target, &value);
        return r != 0 ? r : value == (void *)42 ? 0 : -1;
    case ONCE:
        r = pthread_once(&once, init_routine);
        return r != 0 ? r : ATOMIC_LOAD(&init_runs) == 1 ? 0 : -1;
    case FUTEX:
        return futex_call(FUTEX_WAIT_PRIVATE, 0, NULL) == 0 ? 0 : errno;
    case FUTEX_TIMED:
        far = (struct timespec){ 60, 0 };
        return futex_call(FUTEX_WAIT_PRIVATE, 0, &far) == 0 ? 0 : errno;
    }
    return -1;
}

/* After the wait (or the jump out of it) and the release: the waiter uses the object again where the
 * program may (natively, a wait left by siglongjmp leaves glibc's own counts behind in some objects). */
static int use_again(void)
{
    switch (sc->kind) {
    case MUTEX:
        if (pthread_mutex_lock(&mutex) != 0)
            return -1;
        return pthread_mutex_unlock(&mutex);
    case RDLOCK:
        if (pthread_rwlock_rdlock(&rwlock) != 0)
            return -1;
        return pthread_rwlock_unlock(&rwlock);
    case SEM:
    case SEM_TIMED:
        /* The release posted once: the unit is there unless the wait took it. */
        return sem_trywait(&sem) == 0 ? 0 : errno;
    case ONCE:
        return pthread_once(&once, init_routine);
    default:
        return 0;
    }
}

/* The wait; held locks go back at once: the scenario is over for them. */
static void wait_and_unlock(void)
{
    wait_result = do_wait();
    if (sc->kind == MUTEX && wait_result == 0)
        pthread_mutex_unlock(&mutex);
    if ((sc->kind == RDLOCK || sc->kind == WRLOCK) && wait_result == 0)
        pthread_rwlock_unlock(&rwlock);
}

/* Left a condition variable wait: the mutex may or may not be ours (the signal may have come just before
 * the wait); an errorcheck mutex tells, and it is left unlocked either way. */
static void after_jump(void)
{
    if (sc->kind == COND || sc->kind == COND_TIMED)
        pthread_mutex_unlock(&cond_mutex);
}

static void *waiter_body(void *arg)
{
    (void)arg;
    wait_in_waiter(wait_and_unlock, after_jump);
    while (!ATOMIC_LOAD(&released))
        sleep_ms(2);
    after_result = use_again();
    return NULL;
}

/* Lets the wait complete (the main thread's part). */
static void release(void)
{
    switch (sc->kind) {
    case MUTEX:
        pthread_mutex_unlock(&mutex);
        break;
    case RDLOCK:
    case WRLOCK:
        pthread_rwlock_unlock(&rwlock);
        break;
    case BARRIER: {
        int r = pthread_barrier_wait(&barrier);
        CHECK(r == 0 || r == PTHREAD_BARRIER_SERIAL_THREAD, "main passed the barrier");
        break;
    }
    case COND:
    case COND_TIMED:
        pthread_mutex_lock(&cond_mutex);
        predicate = 1;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&cond_mutex);
        break;
    case SEM:
    case SEM_TIMED:
        sem_post(&sem);
        break;
    case JOIN:
        sem_post(&target_go);
        break;
    case ONCE:
        sem_post(&init_go);
        break;
    case FUTEX:
    case FUTEX_TIMED:
        /* Wakes until the waiter is done (a wake before it waits again would be lost). */
        while (!ATOMIC_LOAD(&wait_done)) {
            futex_call(FUTEX_WAKE_PRIVATE, 1, NULL);
            sleep_ms(2);
        }
        break;
    }
}

/* Whether the wait, with the handler returning, is over before the release: it fails with EINTR. */
static int fails_with_eintr(void)
{
    switch (sc->kind) {
    case SEM:
    case FUTEX:
        return !sc->restart;
    case SEM_TIMED:
    case FUTEX_TIMED:
        return 1;
    default:
        return 0;
    }
}

static void setup(void)
{
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&cond_mutex, &ma);
    pthread_mutexattr_destroy(&ma);
    pthread_mutex_init(&mutex, NULL);
    pthread_rwlock_init(&rwlock, NULL);
    pthread_barrier_init(&barrier, NULL, 2);
    pthread_cond_init(&cond, NULL);
    predicate = cond_returns = 0;
    sem_init(&sem, 0, 0);
    sem_init(&init_go, 0, 0);
    sem_init(&target_go, 0, 0);
    once = PTHREAD_ONCE_INIT;
    init_runs = 0;
    futex_word = 0;
    switch (sc->kind) {
    case MUTEX:
        pthread_mutex_lock(&mutex);
        break;
    case RDLOCK:
        pthread_rwlock_wrlock(&rwlock);
        break;
    case WRLOCK:
        pthread_rwlock_rdlock(&rwlock);
        break;
    case JOIN:
        pthread_create(&target, NULL, target_body, NULL);
        break;
    case ONCE:
        pthread_create(&initializer, NULL, initializer_body, NULL);
        /* The initializer is inside the init routine before the waiter calls pthread_once. */
        while (ATOMIC_LOAD(&once) == PTHREAD_ONCE_INIT)
            sleep_ms(1);
        break;
    default:
        break;
    }
}

static void run(const struct scenario *s)
{
    sc = s;
    armed = handled = on_own_stack = in_waiter = jumped = wait_done = released = 0;
    wait_result = after_result = -99;
    handler_longjmps = s->longjmp_out;
    signal_process_wide = s->process_wide;
    set_signal_handler(SIGUSR1, waiter_handler, s->restart ? SA_RESTART : 0);
    set_signal_handler(SIGUSR2, waiter_handler, s->restart ? SA_RESTART : 0);
    setup();
    pthread_create(&waiter, NULL, waiter_body, NULL);
    while (!ATOMIC_LOAD(&armed))
        sleep_ms(1);
    /* Most likely parked by now; the output does not depend on it. */
    sleep_ms(30);
    int64_t give_up = mono_ns() + 60LL * 1000000000;
    int sent = 0;
    if (s->longjmp_out || fails_with_eintr()) {
        /* Until the handler jumped or the wait failed. */
        while (!ATOMIC_LOAD(&wait_done) && mono_ns() < give_up) {
            send_to_waiter();
            sent++;
            for (int i = 0; i < 20 && !ATOMIC_LOAD(&wait_done); i++)
                sleep_ms(1);
        }
    } else {
        /* Until the handler ran; then the wait must still be going on. */
        while (!ATOMIC_LOAD(&handled) && mono_ns() < give_up) {
            send_to_waiter();
            sent++;
            for (int i = 0; i < 20 && !ATOMIC_LOAD(&handled); i++)
                sleep_ms(1);
        }
        sleep_ms(30);
        CHECK(!ATOMIC_LOAD(&wait_done), "the wait goes on after the handler returned");
    }
    release();
    ATOMIC_STORE(&released, 1);
    pthread_join(waiter, NULL);
    if (s->kind == ONCE)
        pthread_join(initializer, NULL);
    if (s->kind == JOIN && !jumped)
        CHECK(wait_result == 0, "the join got the value");
    else if (s->kind == JOIN)
        /* Natively the target stays claimed by the abandoned join: it is left alone (not joined). */
        ;
    fprintf(stderr, "%s: %d signal(s) sent, %d handled\n", kind_name[s->kind], sent, ATOMIC_LOAD(&handled));
    printf("%-16s %s%s%s: handler in the waiter %s, on its own stack %s; ", kind_name[s->kind],
           s->longjmp_out ? "siglongjmp" : "returns", s->restart ? ", SA_RESTART" : "",
           s->process_wide ? ", kill()" : "", ATOMIC_LOAD(&in_waiter) ? "yes" : "NO",
           ATOMIC_LOAD(&on_own_stack) ? "yes" : "NO");
    if (jumped)
        printf("left the wait by siglongjmp; ");
    else
        printf("wait returned %s; ", wait_result == 1 && s->kind == BARRIER ? "ok" : errname(wait_result));
    if (!jumped && (s->kind == COND || s->kind == COND_TIMED))
        /* glibc's waiter goes on waiting after the handler: no spurious wake-up. */
        printf("returned %d time(s); ", cond_returns);
    printf("later use: %s\n", errname(after_result));
    CHECK(ATOMIC_LOAD(&in_waiter) && ATOMIC_LOAD(&on_own_stack), "handler ran in the waiter on its stack");
}

int main(void)
{
    test_init();
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Only the waiters take SIGUSR2: a kill() to the process goes to them. */
    mask_usr2(SIG_BLOCK);
    static const struct scenario all[] = {
        { MUTEX, 1, 0, 0 },       { MUTEX, 0, 0, 0 },      { MUTEX, 1, 0, 1 },     { MUTEX, 0, 1, 1 },
        { RDLOCK, 1, 0, 0 },      { RDLOCK, 0, 0, 0 },     { WRLOCK, 1, 0, 0 },    { WRLOCK, 0, 0, 0 },
        { BARRIER, 1, 0, 0 },     { BARRIER, 0, 0, 0 },    { COND, 1, 0, 0 },      { COND, 0, 0, 0 },
        { COND, 0, 1, 1 },        { COND_TIMED, 1, 0, 0 }, { COND_TIMED, 0, 0, 0 }, { SEM, 1, 0, 0 },
        { SEM, 0, 0, 0 },         { SEM, 0, 1, 0 },        { SEM, 1, 0, 1 },       { SEM_TIMED, 0, 1, 0 },
        { SEM_TIMED, 1, 0, 0 },   { JOIN, 1, 0, 0 },       { JOIN, 0, 0, 0 },      { ONCE, 1, 0, 0 },
        { ONCE, 0, 0, 0 },        { FUTEX, 1, 0, 0 },      { FUTEX, 0, 0, 0 },     { FUTEX, 0, 1, 0 },
        { FUTEX_TIMED, 0, 1, 0 }, { FUTEX_TIMED, 1, 0, 1 },
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        run(&all[i]);
    return test_exit_status();
}
