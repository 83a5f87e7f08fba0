/* exit_return: main returns 3 while other threads sleep (in sleep, usleep and nanosleep loops); the
 * process exits with status 3 at once, atexit handlers run and buffered stdout is flushed.
 * asyncshim-test: status=3 */
#include "shim_probe.h"
#include "test_util.h"
#include <pthread.h>

static int started;

static void *sleeper(void *arg)
{
    int kind = (int)(intptr_t)arg % 3;
    ATOMIC_ADD(&started, 1);
    for (;;) {
        if (kind == 0)
            sleep(100);
        else if (kind == 1)
            usleep(900000);
        else
            sleep_ms(100000);
    }
    return NULL;
}

static void bye(void)
{
    printf("atexit handler ran\n");
}

int main(void)
{
    pthread_t t;
    atexit(bye);
    for (int i = 0; i < 9; i++)
        pthread_create(&t, NULL, sleeper, (void *)(intptr_t)i);
    wait_at_least(&started, 9, 2, 10000);
    sleep_ms(20);
    printf("main returns 3 with 9 threads asleep\n"); /* fully buffered: flushed by exit */
    return 3;
}
