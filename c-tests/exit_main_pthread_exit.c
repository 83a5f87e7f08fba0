/* exit_main_pthread_exit: main calls pthread_exit while 4 threads keep running. Main's pthread key
 * destructor runs (as for any exiting thread), the threads then print one after another (ordered by a
 * sleep-polled turn counter) after main has gone, and the process exits with status 0 after the last
 * thread ends, running the atexit handler. */
#include "shim_probe.h"
#include "test_util.h"
#include <pthread.h>

static int main_gone;
static int turn;

static void main_key_dtor(void *p)
{
    printf("main's key destructor ran with %s\n", (char *)p);
    ATOMIC_STORE(&main_gone, 1);
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    while (!ATOMIC_LOAD(&main_gone) || ATOMIC_LOAD(&turn) != id)
        sleep_ms(5);
    sleep_ms(30);
    printf("thread %d runs after main's pthread_exit\n", id);
    ATOMIC_STORE(&turn, id + 1);
    return NULL;
}

static void bye(void)
{
    printf("atexit handler ran after %d threads\n", ATOMIC_LOAD(&turn));
}

int main(void)
{
    test_init();
    pthread_key_t key;
    pthread_t t;
    atexit(bye);
    pthread_key_create(&key, main_key_dtor);
    pthread_setspecific(key, "main's value");
    for (int i = 0; i < 4; i++)
        pthread_create(&t, NULL, worker, (void *)(intptr_t)i);
    printf("main calls pthread_exit\n");
    pthread_exit(NULL);
}
