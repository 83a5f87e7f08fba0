/* sync_lock_across_read: a mutex held across a blocking call while 8 other threads wait for it.
 * This is the scenario that deadlocks when a mutex wait blocks the worker OS thread: with one worker, the
 * contenders blocked in pthread_mutex_lock would keep the holder (and main, who must wake it) from ever
 * running again.
 *  - read:  a holder locks the mutex and blocks in read() on an empty pipe; 8 contenders then block in
 *           pthread_mutex_lock; main writes one byte after 200 ms. The holder reads it and unlocks, every
 *           contender gets the mutex, none before the holder let go;
 *  - sleep: the same, the holder sleeping usleep(200000) with the mutex held instead of reading;
 *  - read, timed: the contenders use pthread_mutex_timedlock / pthread_mutex_clocklock(CLOCK_MONOTONIC)
 *           with a 20 s deadline: all get 0;
 *  - sleep, errorcheck: the holder sleeps in nanosleep holding an errorcheck mutex; the contenders lock,
 *           yield while holding it, and unlock.
 * Each contender also increments a plain counter under the mutex (must end at 8 per round, 3 rounds).
 * Hold times go to stderr.
 * asyncshim-test: timeout=30 */
#include "shim_probe.h"
#include "test_util.h"
#include <pthread.h>
#include <sched.h>

#define MS 1000000LL
#define CONTENDERS 8
#define ROUNDS 3

enum holder_kind { HOLD_READ, HOLD_USLEEP, HOLD_NANOSLEEP };
enum contender_kind { C_LOCK, C_TIMED };

struct scenario {
    const char *label;
    enum holder_kind hk;
    enum contender_kind ck;
    int mutex_type;
    pthread_mutex_t m;
    int pipefd[2];
    int holding, holder_done, written, ready, early, errors, got;
    long counter;
    ssize_t read_rc;
    char read_byte;
    int64_t hold_ns;
};

static void *holder_body(void *arg)
{
    struct scenario *s = arg;
    if (pthread_mutex_lock(&s->m) != 0)
        ATOMIC_ADD(&s->errors, 1);
    int64_t t0 = mono_ns();
    ATOMIC_STORE(&s->holding, 1);
    switch (s->hk) {
    case HOLD_READ:
        do
            s->read_rc = read(s->pipefd[0], &s->read_byte, 1);
        while (s->read_rc < 0 && errno == EINTR);
        break;
    case HOLD_USLEEP:
        usleep(200000);
        break;
    case HOLD_NANOSLEEP: {
        struct timespec ts = { 0, 200 * MS };
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
        break;
    }
    }
    s->hold_ns = mono_ns() - t0;
    ATOMIC_STORE(&s->holder_done, 1);
    if (pthread_mutex_unlock(&s->m) != 0)
        ATOMIC_ADD(&s->errors, 1);
    return NULL;
}

static void *contender_body(void *arg)
{
    struct scenario *s = arg;
    ATOMIC_ADD(&s->ready, 1);
    int rc;
    if (s->ck == C_LOCK) {
        rc = pthread_mutex_lock(&s->m);
    } else {
        int64_t t = now_ns(CLOCK_MONOTONIC) + 20000 * MS;
        struct timespec mono = { t / 1000000000LL, t % 1000000000LL };
        t = now_ns(CLOCK_REALTIME) + 20000 * MS;
        struct timespec real = { t / 1000000000LL, t % 1000000000LL };
        if (ATOMIC_LOAD(&s->ready) % 2)
            rc = pthread_mutex_timedlock(&s->m, &real);
        else
            rc = pthread_mutex_clocklock(&s->m, CLOCK_MONOTONIC, &mono);
    }
    if (rc != 0) {
        ATOMIC_ADD(&s->errors, 1);
        return NULL;
    }
    if (!ATOMIC_LOAD(&s->holder_done))
        ATOMIC_ADD(&s->early, 1);
    long v = s->counter;
    sched_yield(); /* switch out while holding it */
    s->counter = v + 1;
    ATOMIC_ADD(&s->got, 1);
    if (pthread_mutex_unlock(&s->m) != 0)
        ATOMIC_ADD(&s->errors, 1);
    return NULL;
}

static void run(struct scenario *s)
{
    char name[200];
    int all_ok = 1, none_early = 1, counters_ok = 1, read_ok = 1, held_long = 1;
    int64_t min_hold = INT64_MAX, max_hold = 0;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, s->mutex_type);
    pthread_mutex_init(&s->m, &a);
    pthread_mutexattr_destroy(&a);
    if (pipe(s->pipefd) != 0) {
        CHECK(0, "pipe");
        return;
    }
    for (int round = 0; round < ROUNDS; round++) {
        s->holding = s->holder_done = s->written = s->ready = s->early = s->errors = s->got = 0;
        s->counter = 0;
        s->read_rc = -2;
        s->read_byte = 0;
        pthread_t h, c[CONTENDERS];
        pthread_create(&h, NULL, holder_body, s);
        wait_at_least(&s->holding, 1, 1, 10000);
        for (int i = 0; i < CONTENDERS; i++)
            pthread_create(&c[i], NULL, contender_body, s);
        wait_at_least(&s->ready, CONTENDERS, 1, 10000);
        if (s->hk == HOLD_READ) {
            sleep_ms(200);
            ATOMIC_STORE(&s->written, 1);
            char b = (char)('a' + round);
            if (write(s->pipefd[1], &b, 1) != 1)
                read_ok = 0;
        }
        pthread_join(h, NULL);
        for (int i = 0; i < CONTENDERS; i++)
            pthread_join(c[i], NULL);
        if (s->errors || s->got != CONTENDERS)
            all_ok = 0;
        if (s->early)
            none_early = 0;
        if (s->counter != CONTENDERS)
            counters_ok = 0;
        if (s->hk == HOLD_READ && (s->read_rc != 1 || s->read_byte != (char)('a' + round)))
            read_ok = 0;
        if (s->hold_ns < 200 * MS - 1 * MS)
            held_long = 0;
        if (s->hold_ns < min_hold)
            min_hold = s->hold_ns;
        if (s->hold_ns > max_hold)
            max_hold = s->hold_ns;
        fprintf(stderr, "%s round %d: got %d, early %d, errors %d, counter %ld, held %.1f ms\n", s->label, round,
                s->got, s->early, s->errors, s->counter, s->hold_ns / 1e6);
    }
    close(s->pipefd[0]);
    close(s->pipefd[1]);
    if (s->hk == HOLD_READ) {
        snprintf(name, sizeof name, "%s: the holder's read() returned main's byte", s->label);
        CHECK(read_ok, name);
    }
    snprintf(name, sizeof name, "%s: all %d contenders got the mutex in each of %d rounds, no errors", s->label,
             CONTENDERS, ROUNDS);
    CHECK(all_ok, name);
    snprintf(name, sizeof name, "%s: no contender got it before the holder let go", s->label);
    CHECK(none_early, name);
    snprintf(name, sizeof name, "%s: counter incremented under the mutex = %d", s->label, CONTENDERS);
    CHECK(counters_ok, name);
    snprintf(name, sizeof name, "%s: the holder held it for at least 200 ms", s->label);
    CHECK(held_long, name);
    snprintf(name, sizeof name, "%s: destroy -> 0", s->label);
    CHECK(pthread_mutex_destroy(&s->m) == 0, name);
}

int main(void)
{
    test_init();
    fprintf(stderr, "under shim: %d, workers %d\n", under_shim(), shim_workers());
    static struct scenario sc[] = {
        { .label = "read", .hk = HOLD_READ, .ck = C_LOCK, .mutex_type = PTHREAD_MUTEX_DEFAULT },
        { .label = "usleep", .hk = HOLD_USLEEP, .ck = C_LOCK, .mutex_type = PTHREAD_MUTEX_DEFAULT },
        { .label = "read, timed contenders", .hk = HOLD_READ, .ck = C_TIMED, .mutex_type = PTHREAD_MUTEX_NORMAL },
        { .label = "nanosleep, errorcheck", .hk = HOLD_NANOSLEEP, .ck = C_LOCK,
          .mutex_type = PTHREAD_MUTEX_ERRORCHECK },
    };
    for (size_t i = 0; i < sizeof sc / sizeof sc[0]; i++) {
        int64_t t0 = mono_ns();
        run(&sc[i]);
        fprintf(stderr, "%s: %.1f ms for %d rounds\n", sc[i].label, (mono_ns() - t0) / 1e6, ROUNDS);
    }
    return test_exit_status();
}
