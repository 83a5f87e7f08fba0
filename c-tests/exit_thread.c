/* exit_thread: exit(7) called from a non-main thread while main waits in pthread_join on a thread that
 * sleeps forever and other threads sleep; the process exits with 7, atexit handlers run (in the
 * exiting thread) and buffered stdout is flushed.
 * asyncshim-test: status=7 */
#include "shim_probe.h"
#include "test_util.h"
#include <pthread.h>

static pthread_t exiter;
static int exiter_set;

static void *sleeper(void *arg)
{
    (void)arg;
    for (;;)
        sleep(100);
    return NULL;
}

static void *call_exit(void *arg)
{
    (void)arg;
    sleep_ms(100);
    exiter = pthread_self();
    ATOMIC_STORE(&exiter_set, 1);
    printf("thread calls exit(7)\n");
    exit(7);
}

static void bye(void)
{
    printf("atexit handler ran in the exiting thread: %s\n",
           ATOMIC_LOAD(&exiter_set) && pthread_equal(pthread_self(), exiter) ? "yes" : "no");
}

int main(void)
{
    pthread_t t, s;
    atexit(bye);
    for (int i = 0; i < 8; i++)
        pthread_create(&t, NULL, sleeper, NULL);
    pthread_create(&s, NULL, sleeper, NULL);
    pthread_create(&t, NULL, call_exit, NULL);
    printf("main joins a sleeping thread\n");
    pthread_join(s, NULL);
    printf("unreachable: the join returned\n");
    return 1;
}
