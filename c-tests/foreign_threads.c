/* foreign_threads.c — threads made by glibc's own pthread_create, not the shim's (issue 5: Debian's
 * jemalloc finds it with dlsym(RTLD_NEXT) for its background threads, so redis-server does this). Such a
 * thread inherits the creating worker's GS base; it must still be treated as a plain thread: its hooks
 * pass through, its mutex/cond waits and sleeps work, and the coroutines around it are undisturbed.
 * asyncshim-test: timeout=60 */
#include "shim_probe.h"
#include "test_util.h"
#include <pthread.h>

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
typedef int (*join_fn)(pthread_t, void **);

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int stop, shared_counter, foreign_saw_coroutine;

static void *foreign(void *arg)
{
    (void)arg;
    long rounds = 0;
    if (under_shim())
        ATOMIC_STORE(&foreign_saw_coroutine, 1);
    while (!ATOMIC_LOAD(&stop)) {
        struct timespec ts = deadline_in(CLOCK_REALTIME, 1);
        pthread_mutex_lock(&mu);
        shared_counter++;
        pthread_cond_timedwait(&cv, &mu, &ts);
        pthread_mutex_unlock(&mu);
        usleep(300);
        rounds++;
    }
    return (void *)rounds;
}

static void *coroutine(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++) {
        pthread_mutex_lock(&mu);
        shared_counter++;
        pthread_cond_signal(&cv);
        pthread_mutex_unlock(&mu);
        usleep(500);
    }
    return NULL;
}

int main(void)
{
    test_init();
    /* in libc since glibc 2.34, in libpthread before */
    void *lib = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    if (!dlsym(lib, "pthread_create"))
        lib = dlopen("libpthread.so.0", RTLD_NOW | RTLD_NOLOAD);
    create_fn real_create = (create_fn)dlsym(lib, "pthread_create");
    join_fn real_join = (join_fn)dlsym(lib, "pthread_join");
    if (!CHECK(real_create && real_join, "glibc's own pthread_create and pthread_join found"))
        return test_exit_status();
    pthread_t f[3], c[8];
    int made = 0;
    for (int i = 0; i < 3; i++)
        made += real_create(&f[i], NULL, foreign, NULL) == 0;
    CHECK(made == 3, "3 threads made by glibc's own pthread_create");
    for (int i = 0; i < 8; i++)
        pthread_create(&c[i], NULL, coroutine, NULL);
    for (int i = 0; i < 8; i++)
        pthread_join(c[i], NULL);
    ATOMIC_STORE(&stop, 1);
    long total = 0;
    int all_ran = 1;
    for (int i = 0; i < 3; i++) {
        void *r = NULL;
        real_join(f[i], &r);
        all_ran &= (long)r > 0;
        total += (long)r;
    }
    fprintf(stderr, "foreign thread rounds: %ld, counter %d\n", total, shared_counter);
    CHECK(all_ran, "every foreign thread looped and was joined");
    CHECK(!ATOMIC_LOAD(&foreign_saw_coroutine), "no foreign thread took itself for a coroutine");
    CHECK(shared_counter >= 1600, "the coroutines' 1600 increments all happened");
    return test_exit_status();
}
