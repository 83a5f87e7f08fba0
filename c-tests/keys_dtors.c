/* keys_dtors: pthread keys and their destructors across 1,000 threads.
 * 64 keys (so indexes above 31 and glibc's second-level blocks are used), each thread sets a subset to
 * per-thread values; every destructor call is counted per key and checked to run in the exiting thread
 * (pthread_self, a __thread variable) with the slot already cleared. One destructor re-sets its value
 * once (so it runs twice per thread), one always re-sets (so it runs PTHREAD_DESTRUCTOR_ITERATIONS
 * times). A key deleted while the threads still hold values never calls its destructor, and a key
 * created after the delete reads NULL in the old threads and in main. Finally keys are created until
 * EAGAIN and all deleted again. */
#include "shim_probe.h"
#include "test_util.h"
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#define NTHREADS 1000
#define NKEYS 64
#define KEY_RESET_ONCE 40
#define KEY_RESET_ALWAYS 50

struct val {
    int thread;
    int key;
    pthread_t self;
    int rounds;
};

static pthread_key_t keys[NKEYS];
static pthread_key_t key_deleted, key_new;
static struct val vals[NTHREADS][NKEYS];
static int deleted_vals[NTHREADS];
static int dtor_calls[NKEYS];
static int deleted_dtor_calls;
static int dtor_bad_context;
static int dtor_slot_not_cleared;
static int arrived, gate_open, new_key_null_bad, get_own_bad;
static __thread int my_id = -1;

static int sets_key(int thread, int key)
{
    return (thread + key) % 3 != 0 || key == KEY_RESET_ONCE || key == KEY_RESET_ALWAYS;
}

static void dtor(void *p)
{
    struct val *v = p;
    if (v->key < 0 || v->key >= NKEYS)
        abort();
    ATOMIC_ADD(&dtor_calls[v->key], 1);
    if (!pthread_equal(pthread_self(), v->self) || my_id != v->thread)
        ATOMIC_ADD(&dtor_bad_context, 1);
    if (pthread_getspecific(keys[v->key]) != NULL)
        ATOMIC_ADD(&dtor_slot_not_cleared, 1);
    v->rounds++;
    if (v->key == KEY_RESET_ALWAYS || (v->key == KEY_RESET_ONCE && v->rounds == 1))
        pthread_setspecific(keys[v->key], v);
}

static void deleted_dtor(void *p)
{
    (void)p;
    ATOMIC_ADD(&deleted_dtor_calls, 1);
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    my_id = id;
    for (int k = 0; k < NKEYS; k++) {
        if (pthread_getspecific(keys[k]) != NULL)
            ATOMIC_ADD(&get_own_bad, 1);
        if (!sets_key(id, k))
            continue;
        struct val *v = &vals[id][k];
        v->thread = id;
        v->key = k;
        v->self = pthread_self();
        pthread_setspecific(keys[k], v);
    }
    pthread_setspecific(key_deleted, &deleted_vals[id]);
    ATOMIC_ADD(&arrived, 1);
    while (!ATOMIC_LOAD(&gate_open))
        sleep_ms(20);
    /* key_deleted was deleted and key_new created meanwhile (probably in the same slot) */
    if (pthread_getspecific(key_new) != NULL)
        ATOMIC_ADD(&new_key_null_bad, 1);
    for (int k = 0; k < NKEYS; k++) {
        void *want = sets_key(id, k) ? &vals[id][k] : NULL;
        if (pthread_getspecific(keys[k]) != want)
            ATOMIC_ADD(&get_own_bad, 1);
    }
    sched_yield();
    for (int k = 0; k < NKEYS; k++) {
        void *want = sets_key(id, k) ? &vals[id][k] : NULL;
        if (pthread_getspecific(keys[k]) != want)
            ATOMIC_ADD(&get_own_bad, 1);
    }
    return NULL;
}

int main(void)
{
    static pthread_t th[NTHREADS];
    test_init();
    int rc = 0;
    unsigned max_key = 0;
    for (int k = 0; k < NKEYS; k++) {
        rc |= pthread_key_create(&keys[k], dtor);
        if (keys[k] > max_key)
            max_key = keys[k];
    }
    rc |= pthread_key_create(&key_deleted, deleted_dtor);
    CHECK(rc == 0, "create 65 keys");
    CHECK(max_key >= 32, "key indexes above 31 in use");
    fprintf(stderr, "largest key index: %u\n", max_key);

    int created = 0;
    for (int i = 0; i < NTHREADS; i++) {
        if (pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i) != 0)
            break;
        created++;
    }
    CHECK(created == NTHREADS, "create 1000 threads");
    CHECK(wait_at_least(&arrived, created, 5, 60000), "all threads set their values");
    CHECK(pthread_key_delete(key_deleted) == 0, "pthread_key_delete while threads hold values");
    CHECK(pthread_key_create(&key_new, NULL) == 0, "create a key after the delete");
    ATOMIC_STORE(&gate_open, 1);
    for (int i = 0; i < created; i++)
        pthread_join(th[i], NULL);

    int counts_ok = 1;
    for (int k = 0; k < NKEYS; k++) {
        int want = 0;
        for (int i = 0; i < NTHREADS; i++)
            if (sets_key(i, k))
                want++;
        if (k == KEY_RESET_ONCE)
            want *= 2;
        if (k == KEY_RESET_ALWAYS)
            want *= PTHREAD_DESTRUCTOR_ITERATIONS;
        if (dtor_calls[k] != want) {
            counts_ok = 0;
            fprintf(stderr, "key %d: %d destructor calls, expected %d\n", k, dtor_calls[k], want);
        }
    }
    printf("destructor calls of the re-setting key: %d (2 per thread)\n", dtor_calls[KEY_RESET_ONCE]);
    printf("destructor calls of the always re-setting key: %d (%d per thread)\n", dtor_calls[KEY_RESET_ALWAYS],
           PTHREAD_DESTRUCTOR_ITERATIONS);
    CHECK(counts_ok, "destructor call counts for all 64 keys");
    CHECK(dtor_bad_context == 0, "destructors run in the exiting thread");
    CHECK(dtor_slot_not_cleared == 0, "slot is NULL while its destructor runs");
    CHECK(deleted_dtor_calls == 0, "no destructor calls for the deleted key");
    CHECK(new_key_null_bad == 0, "new key reads NULL in threads that set the deleted key");
    CHECK(get_own_bad == 0, "threads read back their own values (and NULL for unset keys)");

    /* main thread: delete a key holding a value, a new key reads NULL */
    pthread_key_t ka, kb;
    pthread_key_create(&ka, NULL);
    pthread_setspecific(ka, &ka);
    pthread_key_delete(ka);
    pthread_key_create(&kb, NULL);
    CHECK(pthread_getspecific(kb) == NULL, "main: key created after delete reads NULL");
    pthread_setspecific(kb, &kb);
    CHECK(pthread_getspecific(kb) == &kb, "main: set/get");
    pthread_key_delete(kb);

    /* exhaustion */
    static pthread_key_t extra[PTHREAD_KEYS_MAX + 1];
    int n = 0;
    while (n <= PTHREAD_KEYS_MAX && (rc = pthread_key_create(&extra[n], NULL)) == 0)
        n++;
    printf("key creation until failure ends with %s\n", errname(rc));
    CHECK(rc == EAGAIN, "key exhaustion gives EAGAIN");
    CHECK(n + NKEYS + 1 <= PTHREAD_KEYS_MAX, "no more than PTHREAD_KEYS_MAX keys");
    fprintf(stderr, "created %d extra keys before EAGAIN\n", n);
    int del_ok = 1;
    for (int i = 0; i < n; i++)
        if (pthread_key_delete(extra[i]) != 0)
            del_ok = 0;
    CHECK(del_ok, "delete them all");
    CHECK(pthread_key_create(&ka, NULL) == 0, "keys available again after deleting");
    return test_exit_status();
}
