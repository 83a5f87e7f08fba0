/* A signal with its default action, blocked by the only thread that accepted it and then sent to the
 * process at once, stays pending (sigpending shows it) and sigwait takes it, as natively: under the shim
 * an idle worker must not still let it through (it would end the process). Also after a handler is
 * replaced by SIG_DFL while the signal is blocked. 300 rounds each, to catch a race.
 *
 * asyncshim-test: timeout=60 */
#define _GNU_SOURCE
#include "test_util.h"
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void on_usr2(int s) { (void)s; }

static int round_trip(int sig)
{
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, sig);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    kill(getpid(), sig);
    sigpending(&pending);
    int was_pending = sigismember(&pending, sig);
    int got = 0;
    sigwait(&set, &got);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    return was_pending && got == sig;
}

int main(void)
{
    test_init();
    int ok = 1;
    for (int i = 0; i < 300; i++)
        ok &= round_trip(SIGUSR1);
    CHECK(ok, "SIGUSR1 (default action) blocked then sent to the process: pending, taken by sigwait, 300 times");

    ok = 1;
    for (int i = 0; i < 300; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_usr2;
        sigaction(SIGUSR2, &sa, NULL);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGUSR2);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        sa.sa_handler = SIG_DFL;
        sigaction(SIGUSR2, &sa, NULL);
        kill(getpid(), SIGUSR2);
        int got = 0;
        sigwait(&set, &got);
        ok &= got == SIGUSR2;
        pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    }
    CHECK(ok, "SIGUSR2 blocked with a handler, then set to SIG_DFL and sent: taken by sigwait, 300 times");
    return test_exit_status();
}
