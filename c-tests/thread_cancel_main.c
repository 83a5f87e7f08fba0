/* The main thread cancelled by another thread while it waits in pause(): its cleanup handler runs, the
 * other thread joins it (PTHREAD_CANCELED) and the process ends with status 0 when that thread returns.
 * asyncshim-test: timeout=60 */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static pthread_t main_thread;

static void main_cleanup(void *arg)
{
    (void)arg;
    printf("main: cleanup handler\n");
    fflush(stdout);
}

static void *canceller(void *arg)
{
    (void)arg;
    usleep(20000);
    int rc = pthread_cancel(main_thread);
    void *res = NULL;
    int jr = pthread_join(main_thread, &res);
    printf("cancel main=%d join main=%d canceled=%d\n", rc, jr, res == PTHREAD_CANCELED);
    fflush(stdout);
    return NULL;
}

int main(void)
{
    pthread_t t;
    main_thread = pthread_self();
    pthread_create(&t, NULL, canceller, NULL);
    pthread_cleanup_push(main_cleanup, NULL);
    for (;;)
        pause();
    pthread_cleanup_pop(0);
    return 3;
}
