/* thread_misc: assorted per-thread facilities.
 *  - pthread_once from 64 threads released together: the initialiser runs exactly once and every
 *    caller sees its effect when pthread_once returns (the initialiser does not block or sleep);
 *  - pthread_setname_np / pthread_getname_np: own name and another thread's; a name of 16+ chars is
 *    ERANGE, a too-small getname buffer is ERANGE; two threads keep their own names across switches;
 *  - detach state: from the attribute (getdetachstate) and seen by pthread_getattr_np inside the thread,
 *    also after pthread_detach(pthread_self());
 *  - sched_yield() returns 0;
 *  - the signal mask is per thread: a thread that blocks SIGUSR1 keeps it blocked across switches while
 *    another thread that blocks SIGUSR2 keeps only that.
 * Nothing depends on gettid values. */
#include "shim_probe.h"
#include "test_util.h"
#include <pthread.h>
#include <sched.h>
#include <signal.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int once_runs, once_value, once_gate, once_seen_bad;

static void init_once(void)
{
    ATOMIC_ADD(&once_runs, 1);
    volatile unsigned long x = 0;
    for (int i = 0; i < 2000000; i++)
        x += i;
    ATOMIC_STORE(&once_value, 42 + (int)(x & 0));
}

static void *once_caller(void *arg)
{
    (void)arg;
    while (!ATOMIC_LOAD(&once_gate))
        sleep_ms(2);
    int rc = pthread_once(&once, init_once);
    if (rc != 0 || ATOMIC_LOAD(&once_value) != 42)
        ATOMIC_ADD(&once_seen_bad, 1);
    return NULL;
}

/* names */
static int name_phase;
struct named {
    const char *name;
    int ok;
};

static void *keep_name(void *arg)
{
    struct named *n = arg;
    char buf[32];
    n->ok = pthread_setname_np(pthread_self(), n->name) == 0;
    ATOMIC_ADD(&name_phase, 1);
    for (int i = 0; i < 20; i++) {
        if (i % 2)
            sched_yield();
        else
            usleep(500);
        if (pthread_getname_np(pthread_self(), buf, sizeof buf) != 0 || strcmp(buf, n->name) != 0)
            n->ok = 0;
    }
    return NULL;
}

static int named_by_main;
static void *wait_for_name(void *arg)
{
    char *out = arg;
    while (!ATOMIC_LOAD(&named_by_main))
        sleep_ms(2);
    if (pthread_getname_np(pthread_self(), out, 16) != 0)
        strcpy(out, "(error)");
    return NULL;
}

/* detach state seen from inside */
static int own_detachstate(void)
{
    pthread_attr_t a;
    int st = -1;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        pthread_attr_getdetachstate(&a, &st);
        pthread_attr_destroy(&a);
    }
    return st;
}

static int detached_seen = -1, self_detached_seen = -1, detached_done;
static void *report_detach(void *arg)
{
    int mode = (int)(intptr_t)arg;
    if (mode == 0)
        return (void *)(intptr_t)own_detachstate();
    if (mode == 1) {
        ATOMIC_STORE(&detached_seen, own_detachstate());
    } else {
        pthread_detach(pthread_self());
        ATOMIC_STORE(&self_detached_seen, own_detachstate());
    }
    ATOMIC_ADD(&detached_done, 1);
    return NULL;
}

/* signal masks */
struct masked {
    int sig;
    int other;
    int ok;
};
static void *keep_mask(void *arg)
{
    struct masked *m = arg;
    sigset_t set, cur;
    sigemptyset(&set);
    sigaddset(&set, m->sig);
    m->ok = pthread_sigmask(SIG_BLOCK, &set, NULL) == 0;
    for (int i = 0; i < 20; i++) {
        if (i % 2)
            sched_yield();
        else
            usleep(500);
        pthread_sigmask(SIG_BLOCK, NULL, &cur);
        if (!sigismember(&cur, m->sig) || sigismember(&cur, m->other))
            m->ok = 0;
    }
    return NULL;
}

int main(void)
{
    test_init();
    pthread_t th[64];

    /* pthread_once */
    for (int i = 0; i < 64; i++)
        pthread_create(&th[i], NULL, once_caller, NULL);
    sleep_ms(20);
    ATOMIC_STORE(&once_gate, 1);
    for (int i = 0; i < 64; i++)
        pthread_join(th[i], NULL);
    printf("pthread_once initialiser runs: %d\n", once_runs);
    CHECK(once_runs == 1, "pthread_once from 64 threads runs the initialiser once");
    CHECK(once_seen_bad == 0, "every caller sees the initialised value");
    CHECK(pthread_once(&once, init_once) == 0 && once_runs == 1, "pthread_once again in main: no second run");

    /* names */
    char buf[64];
    CHECK(pthread_setname_np(pthread_self(), "main-thread") == 0, "setname main");
    CHECK(pthread_getname_np(pthread_self(), buf, sizeof buf) == 0 && strcmp(buf, "main-thread") == 0,
          "getname main reads it back");
    int rc = pthread_setname_np(pthread_self(), "a-name-that-is-too-long");
    printf("setname with 23 chars: %s\n", errname(rc));
    CHECK(rc == ERANGE, "setname with a name of 16+ chars -> ERANGE");
    rc = pthread_setname_np(pthread_self(), "fifteen-chars-x");
    CHECK(rc == 0, "setname with 15 chars -> 0");
    rc = pthread_getname_np(pthread_self(), buf, 5);
    printf("getname into 5 bytes: %s\n", errname(rc));
    CHECK(rc == ERANGE, "getname with a too small buffer -> ERANGE");
    CHECK(pthread_getname_np(pthread_self(), buf, 16) == 0 && strcmp(buf, "fifteen-chars-x") == 0,
          "getname with 16 bytes reads 15 chars");
    {
        pthread_t t;
        char seen[16] = "";
        pthread_create(&t, NULL, wait_for_name, seen);
        rc = pthread_setname_np(t, "named-by-main");
        char from_main[16] = "";
        int rc2 = pthread_getname_np(t, from_main, sizeof from_main);
        ATOMIC_STORE(&named_by_main, 1);
        pthread_join(t, NULL);
        CHECK(rc == 0 && rc2 == 0 && strcmp(from_main, "named-by-main") == 0,
              "setname/getname on another thread");
        CHECK(strcmp(seen, "named-by-main") == 0, "the thread sees the name main gave it");
        CHECK(pthread_getname_np(pthread_self(), buf, 16) == 0 && strcmp(buf, "fifteen-chars-x") == 0,
              "main kept its own name");
    }
    {
        struct named n[4] = { { "alpha", 0 }, { "beta", 0 }, { "gamma", 0 }, { "delta", 0 } };
        for (int i = 0; i < 4; i++)
            pthread_create(&th[i], NULL, keep_name, &n[i]);
        for (int i = 0; i < 4; i++)
            pthread_join(th[i], NULL);
        CHECK(n[0].ok && n[1].ok && n[2].ok && n[3].ok, "4 threads keep their own names across switches");
    }

    /* detach state */
    pthread_attr_t attr;
    int st = -1;
    pthread_attr_init(&attr);
    pthread_attr_getdetachstate(&attr, &st);
    CHECK(st == PTHREAD_CREATE_JOINABLE, "default attr detachstate is JOINABLE");
    pthread_t t;
    void *res;
    pthread_create(&t, &attr, report_detach, (void *)0);
    pthread_join(t, &res);
    CHECK((int)(intptr_t)res == PTHREAD_CREATE_JOINABLE, "joinable thread sees JOINABLE via getattr_np");
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_getdetachstate(&attr, &st);
    CHECK(st == PTHREAD_CREATE_DETACHED, "attr detachstate set to DETACHED");
    pthread_create(&t, &attr, report_detach, (void *)1);
    pthread_attr_destroy(&attr);
    pthread_create(&t, NULL, report_detach, (void *)2);
    CHECK(wait_at_least(&detached_done, 2, 2, 10000), "detached threads finished");
    CHECK(detached_seen == PTHREAD_CREATE_DETACHED, "thread created detached sees DETACHED via getattr_np");
    CHECK(self_detached_seen == PTHREAD_CREATE_DETACHED, "thread after pthread_detach(self) sees DETACHED");

    /* sched_yield */
    int yields_ok = 1;
    for (int i = 0; i < 100; i++)
        if (sched_yield() != 0)
            yields_ok = 0;
    CHECK(yields_ok, "sched_yield returns 0");

    /* signal masks */
    {
        struct masked a = { SIGUSR1, SIGUSR2, 0 }, b = { SIGUSR2, SIGUSR1, 0 };
        pthread_t ta, tb;
        pthread_create(&ta, NULL, keep_mask, &a);
        pthread_create(&tb, NULL, keep_mask, &b);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        sigset_t cur;
        pthread_sigmask(SIG_BLOCK, NULL, &cur);
        CHECK(a.ok && b.ok, "two threads keep their own signal masks across switches");
        CHECK(!sigismember(&cur, SIGUSR1) && !sigismember(&cur, SIGUSR2), "main's mask unaffected");
    }
    return test_exit_status();
}
