/* waitpid for one child and signals, as natively: a handler without SA_RESTART ends the wait with EINTR
 * (the "alarm + waitpid" timeout pattern), one with SA_RESTART lets it go on, a SIGCHLD handler without
 * SA_RESTART still gets the child's pid (the kernel looks for the child before it reports the signal),
 * and many threads each waiting for their own child all get the right status.
 *
 * asyncshim-test: timeout=60 */
#define _GNU_SOURCE
#include "shim_probe.h"
#include "test_util.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t alarms, chlds;
static void on_alarm(int s) { (void)s; alarms++; }
static void on_chld(int s) { (void)s; chlds++; }

static pid_t child_sleeping(int ms, int code)
{
    pid_t p = fork();
    if (p == 0) {
        usleep(ms * 1000);
        _exit(code);
    }
    return p;
}


#define KIDS 20
static pid_t kids[KIDS];
static int kid_status[KIDS];
static pid_t kid_got[KIDS];

static void *waiter(void *arg)
{
    int i = (int)(long)arg;
    kid_got[i] = waitpid(kids[i], &kid_status[i], 0);
    return NULL;
}

int main(void)
{
    test_init();
    int st = 0;

    /* 1. alarm ends the wait: EINTR, then the program kills the child and reaps it */
    set_signal_handler(SIGALRM, on_alarm, 0);
    pid_t p = child_sleeping(5000, 7);
    struct itimerval it = { .it_value = { 0, 200 * 1000 } };
    setitimer(ITIMER_REAL, &it, NULL);
    errno = 0;
    pid_t r = waitpid(p, &st, 0);
    int e = errno;
    printf("waitpid with a 200 ms alarm (no SA_RESTART): %s, errno %s, alarms %d\n", r == p ? "the child" : r == -1 ? "-1" : "other",
           errname(e), (int)alarms);
    kill(p, SIGKILL);
    r = waitpid(p, &st, 0);
    printf("after kill: %s, signalled %d by %s\n", r == p ? "the child" : "other", WIFSIGNALED(st),
           WTERMSIG(st) == SIGKILL ? "SIGKILL" : "other");

    /* 2. with SA_RESTART the wait goes on to the child's exit */
    set_signal_handler(SIGALRM, on_alarm, SA_RESTART);
    p = child_sleeping(400, 3);
    setitimer(ITIMER_REAL, &it, NULL);
    errno = 0;
    r = waitpid(p, &st, 0);
    e = errno;
    printf("waitpid with a 200 ms alarm (SA_RESTART), child exits after 400 ms: %s, exit %d, alarms %d\n",
           r == p ? "the child" : "other", WIFEXITED(st) ? WEXITSTATUS(st) : -1, (int)alarms);
    (void)e;

    /* 3. SIGCHLD handler without SA_RESTART: the child ending is found, not an EINTR */
    set_signal_handler(SIGCHLD, on_chld, 0);
    for (int round = 0; round < 10; round++) {
        p = child_sleeping(20, round);
        errno = 0;
        r = waitpid(p, &st, 0);
        e = errno;
        if (r != p || !WIFEXITED(st) || WEXITSTATUS(st) != round) {
            printf("SIGCHLD round %d: %s errno %s\n", round, r == p ? "child" : "-1", errname(e));
        }
    }
    printf("10 waits with a SIGCHLD handler (no SA_RESTART): done, SIGCHLD seen %s\n", chlds >= 1 ? "yes" : "no");
    set_signal_handler(SIGCHLD, SIG_DFL, 0);

    /* 4. many threads, each waiting for its own child */
    for (int i = 0; i < KIDS; i++)
        kids[i] = child_sleeping(50 + 10 * i, i + 1);
    pthread_t th[KIDS];
    for (int i = 0; i < KIDS; i++)
        pthread_create(&th[i], NULL, waiter, (void *)(long)i);
    int ok = 1;
    for (int i = 0; i < KIDS; i++) {
        pthread_join(th[i], NULL);
        ok &= kid_got[i] == kids[i] && WIFEXITED(kid_status[i]) && WEXITSTATUS(kid_status[i]) == i + 1;
    }
    CHECK(ok, "20 threads each reaped their own child with its status");

    /* 5. waitid(P_PID): an alarm ends it with EINTR; without one it reports the child's exit */
    set_signal_handler(SIGALRM, on_alarm, 0);
    p = child_sleeping(5000, 9);
    setitimer(ITIMER_REAL, &it, NULL);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    errno = 0;
    int wr = waitid(P_PID, (id_t)p, &si, WEXITED);
    e = errno;
    printf("waitid(P_PID) with a 200 ms alarm: %d, errno %s\n", wr, errname(e));
    kill(p, SIGKILL);
    memset(&si, 0, sizeof si);
    wr = waitid(P_PID, (id_t)p, &si, WEXITED);
    printf("waitid after kill: %d, pid matches %d, code %s, status %s\n", wr, si.si_pid == p,
           si.si_code == CLD_KILLED ? "CLD_KILLED" : "other", si.si_status == SIGKILL ? "SIGKILL" : "other");
    p = child_sleeping(100, 5);
    memset(&si, 0, sizeof si);
    wr = waitid(P_PID, (id_t)p, &si, WEXITED);
    printf("waitid for a child exiting with 5: %d, pid matches %d, code %s, status %d\n", wr, si.si_pid == p,
           si.si_code == CLD_EXITED ? "CLD_EXITED" : "other", si.si_status);

    /* 6. waitpid for something that is not our child */
    errno = 0;
    r = waitpid(1, &st, 0);
    printf("waitpid(1): %d, errno %s\n", (int)r, errname(errno));
    return test_exit_status();
}
