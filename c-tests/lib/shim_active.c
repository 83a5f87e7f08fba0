/* shim_active — the runners' check that a shim mode really runs threads as coroutines (not a test).
 *
 * Run in a mode's environment (LD_PRELOAD=libasyncshim.so ...) before that mode's first test run. It exits 0,
 * printing one line, when the library is loaded and its runtime is on (asyncshim_is_active()) and 64
 * threads blocked in read() on a pipe occupy at most workers + 8 OS threads (natively: 65). Otherwise it
 * exits 1 with the reason. A library that loads but passes through (every thread a real OS thread) gives
 * native's output in every test, so without this check it would pass the differential suite untested;
 * one that does not load never starts this program (the loader's message is the reason). */
#include "shim_probe.h"
#include "test_util.h"
#include <pthread.h>

#define NTHREADS 64

static int pipe_fds[2];
static int blocked;

static void *block_in_read(void *arg)
{
    (void)arg;
    char c;
    ATOMIC_ADD(&blocked, 1);
    ssize_t n;
    do
        n = read(pipe_fds[0], &c, 1);
    while (n < 0 && errno == EINTR);
    return NULL;
}

int main(void)
{
    test_init();
    if (dlsym(RTLD_DEFAULT, "asyncshim_is_active") == NULL) {
        printf("not active: libasyncshim.so is not loaded (no asyncshim_is_active)\n");
        return 1;
    }
    if (!under_shim()) {
        printf("not active: asyncshim_is_active() is 0 (pass-through)\n");
        return 1;
    }
    if (pipe(pipe_fds) != 0) {
        printf("pipe: %s\n", strerror(errno));
        return 1;
    }
    pthread_t th[NTHREADS];
    int created = 0;
    for (; created < NTHREADS; created++)
        if (pthread_create(&th[created], NULL, block_in_read, NULL) != 0)
            break;
    int all_blocked = created == NTHREADS && wait_at_least(&blocked, NTHREADS, 5, 10000);
    /* the threads are in (or about to enter) read(): give the last ones time to park */
    sleep_ms(50);
    int threads = os_threads(), workers = shim_workers();
    char bytes[NTHREADS] = { 0 };
    if (created > 0 && write(pipe_fds[1], bytes, (size_t)created) != created)
        printf("write to the pipe failed: %s\n", strerror(errno));
    for (int i = 0; i < created; i++)
        pthread_join(th[i], NULL);
    if (!all_blocked) {
        printf("not active: only %d of %d threads started and blocked\n", ATOMIC_LOAD(&blocked), NTHREADS);
        return 1;
    }
    if (workers <= 0 || threads > workers + 8) {
        printf("not active: %d threads blocked in read() use %d OS threads (workers %d; at most workers + 8 "
               "expected)\n",
               NTHREADS, threads, workers);
        return 1;
    }
    printf("active: %d threads blocked in read() on %d OS threads (workers %d)\n", NTHREADS, threads, workers);
    return 0;
}
