/* Threads the shim does not turn into coroutines — one started by a constructor before main, and ones
 * created with attributes a coroutine cannot honour (explicit scheduling) — run as real threads and mix
 * with coroutine threads: they join coroutines, coroutines join them, and their results come through. */
#include "shim_probe.h"
#include "test_util.h"
#include <pthread.h>
#include <sched.h>
#include <stdio.h>

static pthread_t early;
static int early_ran;

static void *early_body(void *arg)
{
    (void)arg;
    sleep_ms(30);
    ATOMIC_STORE(&early_ran, 1);
    return (void *)41;
}

__attribute__((constructor)) static void start_early(void)
{
    pthread_create(&early, NULL, early_body, NULL);
}

static void *napper(void *arg)
{
    sleep_ms(50);
    return (void *)((intptr_t)arg + 1);
}

struct joiner_arg {
    pthread_t target;
    void *result;
    int rc;
    int active;
};

/* Runs as a real thread (explicit scheduling attribute): joins a coroutine thread. */
static void *joiner(void *arg)
{
    struct joiner_arg *j = arg;
    j->active = under_shim();
    j->rc = pthread_join(j->target, &j->result);
    return (void *)7;
}

int main(void)
{
    test_init();
    pthread_t nap, real;
    pthread_create(&nap, NULL, napper, (void *)99);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
    pthread_attr_setschedpolicy(&attr, SCHED_OTHER);
    struct sched_param sp = { .sched_priority = 0 };
    pthread_attr_setschedparam(&attr, &sp);
    struct joiner_arg j = { .target = nap };
    int rc = pthread_create(&real, &attr, joiner, &j);
    CHECK(rc == 0, "thread with explicit scheduling created");
    void *r = NULL;
    CHECK(pthread_join(real, &r) == 0 && r == (void *)7, "joined the explicit-scheduling thread");
    CHECK(j.rc == 0 && j.result == (void *)100, "it joined a sleeping thread and got its value");
    CHECK(j.active == 0, "it does not run as a coroutine");

    r = NULL;
    CHECK(pthread_join(early, &r) == 0 && r == (void *)41, "joined the thread a constructor started");
    CHECK(ATOMIC_LOAD(&early_ran) == 1, "the constructor's thread ran");

    /* A timed join from a real thread that times out, then succeeds. */
    pthread_t slow;
    pthread_create(&slow, NULL, napper, (void *)1);
    struct joiner_arg j2 = { .target = slow };
    pthread_create(&real, &attr, joiner, &j2);
    pthread_join(real, NULL);
    CHECK(j2.rc == 0 && j2.result == (void *)2, "a real thread's join of a coroutine that ends later");
    pthread_attr_destroy(&attr);
    return test_exit_status();
}
