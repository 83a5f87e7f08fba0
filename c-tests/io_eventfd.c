/* Blocking reads of eventfds (read and glibc's eventfd_read/eventfd_write), timerfds and a signalfd from
 * many threads: each gets exactly its value, expiration count or signal, natively and under the shim; under
 * the shim the waiting threads park (OS threads stay at most workers + a few, where a blocked worker
 * would make the runtime start a spare per waiter).
 *
 * asyncshim-test: timeout=60 */
#define _GNU_SOURCE
#include "shim_probe.h"
#include "test_util.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define N 50

static int efd[N], tfd[N], done_count;
static uint64_t got[N], ticks[N];
static int read_err[N];

static void *event_reader(void *arg)
{
    int i = (int)(intptr_t)arg;
    eventfd_t v = 0;
    /* odd threads use eventfd_read, even ones plain read */
    if (i % 2) {
        read_err[i] = eventfd_read(efd[i], &v) == 0 ? 0 : errno;
    } else {
        ssize_t r = read(efd[i], &v, sizeof v);
        read_err[i] = r == (ssize_t)sizeof v ? 0 : errno;
    }
    got[i] = v;
    __atomic_add_fetch(&done_count, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void *timer_reader(void *arg)
{
    int i = (int)(intptr_t)arg;
    uint64_t v = 0;
    ssize_t r = read(tfd[i], &v, sizeof v);
    ticks[i] = r == (ssize_t)sizeof v ? v : 0;
    __atomic_add_fetch(&done_count, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static int sfd;
static struct signalfd_siginfo sig_info;
static ssize_t sig_read;

static void *signal_reader(void *arg)
{
    (void)arg;
    sig_read = read(sfd, &sig_info, sizeof sig_info);
    return NULL;
}

static void check_threads(const char *what)
{
    int threads = os_threads();
    fprintf(stderr, "%s: %d OS threads (workers %d)\n", what, threads, shim_workers());
    if (under_shim())
        CHECK(threads <= shim_workers() + 6, what);
    else
        CHECK(threads >= N, what);
}

int main(void)
{
    test_init();
    pthread_t th[N];

    /* eventfds: N readers, each blocked until its own value arrives */
    for (int i = 0; i < N; i++)
        efd[i] = eventfd(0, EFD_CLOEXEC);
    for (int i = 0; i < N; i++)
        pthread_create(&th[i], NULL, event_reader, (void *)(intptr_t)i);
    sleep_ms(300);
    CHECK(__atomic_load_n(&done_count, __ATOMIC_SEQ_CST) == 0, "eventfd readers all blocked");
    check_threads("eventfd readers parked, not holding OS threads");
    for (int i = 0; i < N; i++) {
        if (i % 3)
            eventfd_write(efd[i], (eventfd_t)(i + 1));
        else {
            uint64_t v = (uint64_t)(i + 1);
            write(efd[i], &v, sizeof v);
        }
    }
    int ok = 1;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ok &= got[i] == (uint64_t)(i + 1) && read_err[i] == 0;
    }
    CHECK(ok, "each eventfd reader got its own value");
    for (int i = 0; i < N; i++)
        close(efd[i]);

    /* timerfds: one-shot timers 300 ms away, read blocking */
    done_count = 0;
    struct itimerspec its = { .it_value = { 0, 300 * 1000 * 1000 } };
    for (int i = 0; i < N; i++) {
        tfd[i] = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
        timerfd_settime(tfd[i], 0, &its, NULL);
    }
    for (int i = 0; i < N; i++)
        pthread_create(&th[i], NULL, timer_reader, (void *)(intptr_t)i);
    sleep_ms(100);
    CHECK(__atomic_load_n(&done_count, __ATOMIC_SEQ_CST) == 0, "timerfd readers all blocked before expiry");
    check_threads("timerfd readers parked, not holding OS threads");
    ok = 1;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ok &= ticks[i] == 1;
        close(tfd[i]);
    }
    CHECK(ok, "each timerfd reader got one expiration");

    /* an eventfd in semaphore mode read by several threads: each read takes one */
    int sem = eventfd(0, EFD_SEMAPHORE | EFD_CLOEXEC);
    done_count = 0;
    for (int i = 0; i < 10; i++) {
        efd[2 * i] = sem;
        pthread_create(&th[i], NULL, event_reader, (void *)(intptr_t)(2 * i));
    }
    sleep_ms(100);
    eventfd_write(sem, 10);
    ok = 1;
    for (int i = 0; i < 10; i++) {
        pthread_join(th[i], NULL);
        ok &= got[2 * i] == 1;
    }
    CHECK(ok, "semaphore eventfd: ten readers each took 1");
    close(sem);

    /* a signalfd: SIGUSR2 blocked in every thread, a thread blocked reading the signalfd gets it */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    sfd = signalfd(-1, &set, SFD_CLOEXEC);
    pthread_t st;
    pthread_create(&st, NULL, signal_reader, NULL);
    sleep_ms(100);
    kill(getpid(), SIGUSR2);
    pthread_join(st, NULL);
    printf("signalfd read: %zd bytes, signal %s\n", sig_read, sig_info.ssi_signo == SIGUSR2 ? "SIGUSR2" : "other");
    close(sfd);
    return test_exit_status();
}
