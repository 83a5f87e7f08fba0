/* identity_switch: every thread keeps its own identity across switches.
 * 2,000 threads are alive at once (they meet at a sleep-polled gate), then each loops 50 times over
 * sched_yield(), usleep(random small) and nanosleep(); before each switch it stores a thread-specific
 * value into errno (through `int *e = &errno` taken before the loop) and into a __thread variable, and
 * after it checks errno, &errno, the __thread variable and its address, pthread_self() (saved at start)
 * and the value of a pthread key (a per-thread pointer). Afterwards main checks that the errno, TLS and
 * pthread_self() identities of the 2,000 concurrently alive threads were all distinct.
 * asyncshim-test: timeout=90 */
#include "shim_probe.h"
#include "test_util.h"
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#define NTHREADS 2000
#define LOOPS 50

static pthread_key_t key;
static __thread long tls_value;
static int arrived;
static int gate_open;

struct slot {
    int id;
    pthread_t self;
    int *errno_addr;
    long *tls_addr;
    long checks_ok;
    long checks_bad;
    char first_bad[96];
};
static struct slot slots[NTHREADS];

static void bad(struct slot *s, const char *what, int iter, const char *sw)
{
    if (s->checks_bad++ == 0)
        snprintf(s->first_bad, sizeof s->first_bad, "%s after %s (iteration %d)", what, sw, iter);
}

static void *worker(void *arg)
{
    struct slot *s = arg;
    int *e = &errno;
    pthread_t self = pthread_self();
    long *tp = &tls_value;
    unsigned seed = (unsigned)s->id * 2654435761u + 1;
    s->self = self;
    s->errno_addr = e;
    s->tls_addr = tp;
    if (pthread_setspecific(key, s) != 0)
        bad(s, "pthread_setspecific", -1, "start");

    ATOMIC_ADD(&arrived, 1);
    while (!ATOMIC_LOAD(&gate_open))
        sleep_ms(20);

    for (int i = 0; i < LOOPS; i++) {
        for (int sw = 0; sw < 3; sw++) {
            int expect_errno = 100000 + s->id * 4 + sw;
            long expect_tls = (long)s->id * 1000 + i * 3 + sw;
            const char *swname;
            *e = expect_errno;
            tls_value = expect_tls;
            if (sw == 0) {
                swname = "sched_yield";
                if (sched_yield() != 0)
                    bad(s, "sched_yield result", i, swname);
            } else if (sw == 1) {
                swname = "usleep";
                if (usleep(rand_r(&seed) % 200) != 0)
                    bad(s, "usleep result", i, swname);
            } else {
                struct timespec ts = { 0, (rand_r(&seed) % 100) * 1000 };
                swname = "nanosleep";
                if (nanosleep(&ts, NULL) != 0)
                    bad(s, "nanosleep result", i, swname);
            }
            if (*e == expect_errno) s->checks_ok++; else bad(s, "errno value", i, swname);
            if (&errno == e) s->checks_ok++; else bad(s, "&errno", i, swname);
            if (tls_value == expect_tls) s->checks_ok++; else bad(s, "__thread value", i, swname);
            if (&tls_value == tp) s->checks_ok++; else bad(s, "&__thread", i, swname);
            if (pthread_equal(pthread_self(), self)) s->checks_ok++; else bad(s, "pthread_self", i, swname);
            if (pthread_getspecific(key) == s) s->checks_ok++; else bad(s, "pthread key value", i, swname);
        }
    }
    return NULL;
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

static int all_distinct(uintptr_t *v, int n)
{
    qsort(v, n, sizeof *v, cmp_ptr);
    for (int i = 1; i < n; i++)
        if (v[i] == v[i - 1])
            return 0;
    return 1;
}

int main(void)
{
    static pthread_t th[NTHREADS];
    static uintptr_t v[NTHREADS];
    test_init();
    int64_t t0 = mono_ns();
    if (pthread_key_create(&key, NULL) != 0) {
        printf("pthread_key_create failed\n");
        return 1;
    }
    int created = 0;
    for (int i = 0; i < NTHREADS; i++) {
        slots[i].id = i;
        int rc = pthread_create(&th[i], NULL, worker, &slots[i]);
        if (rc != 0) {
            fprintf(stderr, "pthread_create %d: %s\n", i, strerror(rc));
            break;
        }
        created++;
    }
    CHECK(created == NTHREADS, "created 2000 threads");
    int all_arrived = wait_at_least(&arrived, created, 5, 60000);
    CHECK(all_arrived, "all threads alive at once");
    fprintf(stderr, "all %d threads alive after %.3f s, OS threads %d\n", created,
            (mono_ns() - t0) / 1e9, os_threads());
    ATOMIC_STORE(&gate_open, 1);
    for (int i = 0; i < created; i++)
        pthread_join(th[i], NULL);
    fprintf(stderr, "joined after %.3f s\n", (mono_ns() - t0) / 1e9);

    long ok = 0, badn = 0;
    int reported = 0;
    for (int i = 0; i < created; i++) {
        ok += slots[i].checks_ok;
        badn += slots[i].checks_bad;
        if (slots[i].checks_bad && reported++ < 10)
            fprintf(stderr, "thread %d: %ld bad checks, first: %s\n", i, slots[i].checks_bad, slots[i].first_bad);
    }
    printf("threads: %d, switches per thread: %d\n", created, LOOPS * 3);
    printf("checks ok: %ld\n", ok);
    printf("checks failed: %ld\n", badn);
    CHECK(badn == 0 && ok == (long)NTHREADS * LOOPS * 3 * 6, "every identity check after every switch");

    for (int i = 0; i < created; i++) v[i] = (uintptr_t)slots[i].errno_addr;
    CHECK(all_distinct(v, created), "distinct &errno per live thread");
    for (int i = 0; i < created; i++) v[i] = (uintptr_t)slots[i].tls_addr;
    CHECK(all_distinct(v, created), "distinct &__thread per live thread");
    for (int i = 0; i < created; i++) v[i] = (uintptr_t)slots[i].self;
    CHECK(all_distinct(v, created), "distinct pthread_self per live thread");
    int main_differs = 1;
    for (int i = 0; i < created; i++)
        if (pthread_equal(slots[i].self, pthread_self()))
            main_differs = 0;
    CHECK(main_differs, "main's pthread_self differs from every thread's");
    return test_exit_status();
}
