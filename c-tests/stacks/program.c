/* The program scripts/test-stacks.sh inspects (not a differential test): seven threads that stay parked —
 * main sleeping, two blocked in read() on pipes, two waiting for a mutex main holds, one waiting on a
 * condition variable nobody signals and one joining that one — named with pthread_setname_np. It prints
 * "ready" once they are all waiting and then sleeps until it is killed. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t cond_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
static pthread_t cond_thread;
static int pipes[2][2];

__attribute__((noinline)) static void *pipe_reader(void *arg)
{
    int *p = arg;
    char c;
    ssize_t n = read(p[0], &c, 1);
    fprintf(stderr, "reader got %zd\n", n);
    return NULL;
}

__attribute__((noinline)) static void *mutex_waiter(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&held);
    fprintf(stderr, "waiter got the mutex\n");
    pthread_mutex_unlock(&held);
    return NULL;
}

__attribute__((noinline)) static void *cond_waiter(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&cond_lock);
    pthread_cond_wait(&never, &cond_lock);
    fprintf(stderr, "cond waiter woke up\n");
    pthread_mutex_unlock(&cond_lock);
    return NULL;
}

__attribute__((noinline)) static void *joiner(void *arg)
{
    (void)arg;
    void *result;
    int r = pthread_join(cond_thread, &result);
    fprintf(stderr, "joined: %d\n", r);
    return NULL;
}

__attribute__((noinline)) static void sleep_long(void)
{
    struct timespec ts = {120, 0};
    nanosleep(&ts, NULL);
    fprintf(stderr, "main woke up\n");
}

int main(void)
{
    pthread_t t[5];
    pthread_mutex_lock(&held);
    for (int i = 0; i < 2; i++) {
        char name[16];
        if (pipe(pipes[i]) != 0)
            return 1;
        pthread_create(&t[i], NULL, pipe_reader, pipes[i]);
        snprintf(name, sizeof name, "reader-%d", i + 1);
        pthread_setname_np(t[i], name);
        pthread_create(&t[2 + i], NULL, mutex_waiter, NULL);
        snprintf(name, sizeof name, "locker-%d", i + 1);
        pthread_setname_np(t[2 + i], name);
    }
    pthread_create(&cond_thread, NULL, cond_waiter, NULL);
    pthread_setname_np(cond_thread, "cond-waiter");
    pthread_create(&t[4], NULL, joiner, NULL);
    pthread_setname_np(t[4], "joiner");
    usleep(200 * 1000);
    printf("ready\n");
    fflush(stdout);
    sleep_long();
    return 0;
}
