/* pthread_kill aimed at one thread: its handler runs in that thread (pthread_self, __thread data and
 * errno are its own), a sleep it is in ends with EINTR and the time left, a thread that keeps yielding
 * gets the signal at once, and a signal whose default action is to ignore it changes nothing. */
#include "test_util.h"
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>

static __thread int my_index = -1;
static int handled_in[3];
static volatile sig_atomic_t stop_spinning;
static int ready;

static void on_usr1(int sig)
{
    (void)sig;
    if (my_index >= 0)
        ATOMIC_ADD(&handled_in[my_index], 1);
    stop_spinning = 1;
}

static void *sleeper(void *arg)
{
    my_index = (int)(intptr_t)arg;
    ATOMIC_ADD(&ready, 1);
    struct timespec req = { 5, 0 }, rem = { 0, 0 };
    int r = nanosleep(&req, &rem);
    int e = errno;
    CHECK(r == -1 && e == EINTR, "nanosleep interrupted by pthread_kill: -1/EINTR");
    CHECK(rem.tv_sec >= 3 && rem.tv_sec <= 5, "remaining time reported");
    return NULL;
}

static void *spinner(void *arg)
{
    my_index = (int)(intptr_t)arg;
    ATOMIC_ADD(&ready, 1);
    int64_t end = mono_ns() + 10LL * 1000000000;
    while (!stop_spinning && mono_ns() < end)
        sched_yield();
    CHECK(stop_spinning, "a yielding thread received its signal");
    return NULL;
}

/* Sleeps in 20 ms pieces until main has sent every signal; its result (checked by main, so the line's
 * place does not depend on when it wakes) says whether any sleep was interrupted. */
static int signals_sent, bystander_interrupted = -1;

static void *bystander(void *arg)
{
    my_index = (int)(intptr_t)arg;
    ATOMIC_ADD(&ready, 1);
    int interrupted = 0;
    while (!ATOMIC_LOAD(&signals_sent)) {
        struct timespec req = { 0, 20 * 1000000L };
        if (nanosleep(&req, NULL) != 0)
            interrupted = 1;
    }
    ATOMIC_STORE(&bystander_interrupted, interrupted);
    return NULL;
}

int main(void)
{
    test_init();
    set_signal_handler(SIGUSR1, on_usr1, 0);

    pthread_t s, b, sp;
    pthread_create(&b, NULL, bystander, (void *)2);
    pthread_create(&s, NULL, sleeper, (void *)0);
    CHECK(wait_at_least(&ready, 2, 5, 5000), "threads started");
    sleep_ms(200);
    /* Checked after the join: the target prints its own checks as soon as it wakes. */
    int killed = pthread_kill(s, SIGUSR1);
    pthread_join(s, NULL);
    CHECK(killed == 0, "pthread_kill to a sleeping thread");
    CHECK(ATOMIC_LOAD(&handled_in[0]) == 1, "the handler ran once, in the target thread");
    CHECK(ATOMIC_LOAD(&handled_in[2]) == 0, "not in the bystander");

    stop_spinning = 0;
    pthread_create(&sp, NULL, spinner, (void *)1);
    CHECK(wait_at_least(&ready, 3, 5, 5000), "spinner started");
    sleep_ms(50);
    killed = pthread_kill(sp, SIGUSR1);
    pthread_join(sp, NULL);
    CHECK(killed == 0, "pthread_kill to a yielding thread");
    CHECK(ATOMIC_LOAD(&handled_in[1]) == 1, "its handler ran in it");

    /* SIGCHLD's default action is to ignore it: nothing happens. */
    CHECK(pthread_kill(b, SIGCHLD) == 0, "pthread_kill with an ignored signal");
    ATOMIC_STORE(&signals_sent, 1);
    pthread_join(b, NULL);
    CHECK(ATOMIC_LOAD(&bystander_interrupted) == 0, "another thread's sleeps are not interrupted");
    return test_exit_status();
}
