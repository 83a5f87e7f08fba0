/* Signals and cancellation for a thread waiting in a call the shim hands to a helper thread: waitpid(-1),
 * wait(), waitid(P_ALL), waitpid(0) (its process group), system(), pclose(), fcntl(F_SETLKW),
 * lockf(F_LOCK) and flock(LOCK_EX). As natively:
 *  - a handler runs in the waiting thread, on its own stack, while the call waits;
 *  - a handler that leaves by siglongjmp abandons the call: the child a wait was waiting for is still
 *    there to reap afterwards (nothing else reaped it), the lock is not taken;
 *  - a handler that returns: the waits and the lock fail with EINTR without SA_RESTART and go on with it;
 *    system() and pclose() go on either way (glibc restarts their wait) and return the child's status;
 *  - pthread_cancel acts while the call waits (the join returns before what it waits for is released):
 *    the cleanup handler runs, the join gets PTHREAD_CANCELED; a wait's child is left to reap, system()'s
 *    child is killed and reaped, the lock is not taken.
 * The signal is resent until it has done its work, so whether the first one found the thread already
 * waiting changes nothing in the output. Signals are sent with pthread_kill, and with kill() to the process
 * while the main thread blocks the signal.
 * asyncshim-test: timeout=240 */
#include "test_util.h"
#include "waiter.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

enum kind { WAITPID_ANY, WAIT, WAITID_ALL, WAITPID_PGRP, SYSTEM, SETLKW, PCLOSE, LOCKF, FLOCK, KINDS };
static const char *kind_name[] = { "waitpid(-1)", "wait()", "waitid(P_ALL)", "waitpid(0)", "system()",
                                   "fcntl(F_SETLKW)", "pclose()", "lockf(F_LOCK)", "flock(LOCK_EX)" };

static int is_lock(enum kind k) { return k == SETLKW || k == LOCKF || k == FLOCK; }

static enum kind kind;
static long wait_result;
static int wait_errno, wait_status;

static pid_t child;        /* the child a wait waits for, the holder of the lock */
static int release_fd = -1; /* written to let the child (or system's shell) go on */
static int shell_fd = -1;   /* the read end system()'s shell reads from */
static int lock_fd = -1;
static char lock_path[64];


static struct flock whole_file(short type)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    return fl;
}

/* The wait itself, made by the waiter. */
static FILE *popened;

static void do_wait(void)
{
    siginfo_t si;
    struct flock fl;
    char cmd[64];
    int st = 0;
    errno = 0;
    switch (kind) {
    case WAITPID_ANY:
        wait_result = waitpid(-1, &st, 0);
        break;
    case WAIT:
        wait_result = wait(&st);
        break;
    case WAITID_ALL:
        memset(&si, 0, sizeof si);
        wait_result = waitid(P_ALL, 0, &si, WEXITED);
        if (wait_result == 0) {
            wait_result = si.si_pid;
            st = si.si_status << 8;
        }
        break;
    case WAITPID_PGRP:
        wait_result = waitpid(0, &st, 0);
        break;
    case SYSTEM:
        snprintf(cmd, sizeof cmd, "read x <&%d; exit 3", shell_fd);
        wait_result = system(cmd);
        st = (int)wait_result;
        break;
    case SETLKW:
        fl = whole_file(F_WRLCK);
        wait_result = fcntl(lock_fd, F_SETLKW, &fl);
        break;
    case PCLOSE:
        wait_result = pclose(popened);
        st = (int)wait_result;
        break;
    case LOCKF:
        wait_result = lockf(lock_fd, F_LOCK, 0);
        break;
    case FLOCK:
        wait_result = flock(lock_fd, LOCK_EX);
        break;
    default:
        break;
    }
    wait_errno = errno;
    wait_status = st;
}

/* The wait, then the lock it took given back. */
static void wait_and_unlock(void)
{
    do_wait();
    if (kind == SETLKW && wait_result == 0) {
        struct flock fl = whole_file(F_UNLCK);
        fcntl(lock_fd, F_SETLK, &fl);
    }
    if (kind == LOCKF && wait_result == 0)
        lockf(lock_fd, F_ULOCK, 0);
    if (kind == FLOCK && wait_result == 0)
        flock(lock_fd, LOCK_UN);
}

static void *waiter_body(void *arg)
{
    (void)arg;
    wait_in_waiter(wait_and_unlock, NULL);
    return NULL;
}

/* The child a wait (or the lock) waits for: it blocks until released, holding the lock for SETLKW. */
static void setup(void)
{
    int go[2], ready[2];
    if (pipe(go) != 0 || pipe(ready) != 0)
        exit(3);
    if (kind == SYSTEM || kind == PCLOSE) {
        /* The shell reads a line from go[0]; only the read end goes to it. */
        fcntl(go[1], F_SETFD, FD_CLOEXEC);
        shell_fd = go[0];
        release_fd = go[1];
        close(ready[0]);
        close(ready[1]);
        child = -1;
        if (kind == PCLOSE) {
            char cmd[64];
            snprintf(cmd, sizeof cmd, "read x <&%d; exit 3", shell_fd);
            popened = popen(cmd, "r");
            if (!popened)
                exit(3);
        }
        return;
    }
    if (is_lock(kind)) {
        strcpy(lock_path, "/tmp/asyncshim-lockXXXXXX");
        lock_fd = mkstemp(lock_path);
        if (lock_fd < 0)
            exit(3);
    }
    child = fork();
    if (child == 0) {
        close(go[1]);
        close(ready[0]);
        if (kind == SETLKW || kind == LOCKF) {
            struct flock fl = whole_file(F_WRLCK);
            if (fcntl(lock_fd, F_SETLK, &fl) != 0)
                _exit(9);
        }
        if (kind == FLOCK) {
            /* A BSD lock belongs to the open file description: the child's own. */
            int own = open(lock_path, O_RDWR);
            if (own < 0 || flock(own, LOCK_EX | LOCK_NB) != 0)
                _exit(9);
        }
        char c;
        if (write(ready[1], "r", 1) != 1)
            _exit(9);
        while (read(go[0], &c, 1) < 0 && errno == EINTR)
            ;
        _exit(5);
    }
    close(go[0]);
    close(ready[1]);
    char c;
    if (read(ready[0], &c, 1) != 1)
        exit(3);
    close(ready[0]);
    release_fd = go[1];
}

/* Lets the wait complete. */
static void release(void)
{
    if (release_fd >= 0) {
        if (write(release_fd, "go\n", 3) != 3)
            printf("  release failed: %s\n", errname(errno));
        close(release_fd);
        release_fd = -1;
    }
}

/* After the scenario: what is left of its child, and nothing left behind. */
static void finish(int waiter_reaped)
{
    int st = 0;
    if (kind == SYSTEM || kind == PCLOSE) {
        /* The shell is gone or reaped (an abandoned system() leaves it natively to whoever waits next). */
        while (waitpid(-1, &st, 0) > 0)
            ;
        close(shell_fd);
        shell_fd = -1;
        return;
    }
    pid_t r = waitpid(child, &st, 0);
    if (waiter_reaped)
        printf("  main's waitpid for the child: %s\n", r == -1 ? errname(errno) : "got it (reaped twice?)");
    else
        printf("  main's waitpid for the child: %s, exit status %d\n", r == child ? "got it" : r == -1 ? errname(errno) : "other",
               WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    if (is_lock(kind)) {
        if (kind == FLOCK) {
            /* Another description: free unless the abandoned call took the lock for ours. */
            int other = open(lock_path, O_RDWR);
            printf("  lock free afterwards: %s\n", flock(other, LOCK_EX | LOCK_NB) == 0 ? "yes" : errname(errno));
            close(other);
        } else {
            struct flock fl = whole_file(F_WRLCK);
            printf("  lock free afterwards: %s\n", fcntl(lock_fd, F_SETLK, &fl) == 0 ? "yes" : errname(errno));
            fl = whole_file(F_UNLCK);
            fcntl(lock_fd, F_SETLK, &fl);
        }
        close(lock_fd);
        lock_fd = -1;
        unlink(lock_path);
    }
}

static void print_result(void)
{
    if (print_if_interrupted(wait_result, wait_errno))
        return;
    switch (kind) {
    case SYSTEM:
    case PCLOSE:
        printf("  returned exit status %d\n", WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1);
        break;
    case SETLKW:
    case LOCKF:
    case FLOCK:
        printf("  returned %ld (the lock)\n", wait_result);
        break;
    default:
        printf("  returned %s, exit status %d\n", wait_result == child ? "the child" : "another pid",
               WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1);
    }
}

static void run_signal(enum kind k, enum mode m)
{
    kind = k;
    set_mode(m);
    wait_result = -99;
    wait_errno = 0;
    printf("%s, %s:\n", kind_name[k], mode_name[m]);
    fflush(stdout);
    int restart = m == RESTART;
    setup();
    /* system() and pclose() go on after a handler that returns, whatever SA_RESTART says. */
    signal_scenario(restart, !handler_longjmps && (restart || k == SYSTEM || k == PCLOSE), waiter_body, release);
    print_result();
    finish(!ATOMIC_LOAD(&jumped) && wait_result == child && !is_lock(k));
    fflush(stdout);
}

static void *cancelled_body(void *arg)
{
    (void)arg;
    note_waiter_stack();
    pthread_cleanup_push(waiter_cleanup, NULL);
    ATOMIC_STORE(&armed, 1);
    do_wait();
    pthread_cleanup_pop(0);
    ATOMIC_STORE(&wait_done, 1);
    return NULL;
}

static void run_cancel(enum kind k)
{
    kind = k;
    set_mode(RETURN);
    wait_done = cleanup_ran = 0;
    wait_result = -99;
    printf("%s, pthread_cancel:\n", kind_name[k]);
    fflush(stdout);
    setup();
    start_waiter(cancelled_body, NULL, 1);
    pthread_cancel(waiter);
    join_cancelled(release);
    if (k == SYSTEM) {
        int st = 0;
        pid_t left = waitpid(-1, &st, WNOHANG);
        printf("  system()'s child left to reap: %s\n", left == -1 ? errname(errno) : left == 0 ? "one, running" : "one, ended");
    }
    release();
    finish(0);
    fflush(stdout);
}

/* Many threads in wait() for any child at once, the children ending together: each child is reaped
 * exactly once, each waiter gets one. */
#define MANY 16
static pid_t many_got[MANY];

static void *many_waiter(void *arg)
{
    int i = (int)(long)arg;
    int st = 0;
    many_got[i] = wait(&st);
    if (many_got[i] > 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 6))
        many_got[i] = -2;
    return NULL;
}

static void run_many(void)
{
    int go[2];
    if (pipe(go) != 0)
        exit(3);
    pid_t kids[MANY];
    for (int i = 0; i < MANY; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            close(go[1]);
            char c;
            while (read(go[0], &c, 1) < 0 && errno == EINTR)
                ;
            _exit(6);
        }
    }
    close(go[0]);
    pthread_t t[MANY];
    for (int i = 0; i < MANY; i++)
        pthread_create(&t[i], NULL, many_waiter, (void *)(long)i);
    sleep_ms(30);
    close(go[1]); /* every child reads EOF and ends */
    for (int i = 0; i < MANY; i++)
        pthread_join(t[i], NULL);
    int distinct = 0;
    for (int i = 0; i < MANY; i++) {
        int ours = 0, dup = 0;
        for (int j = 0; j < MANY; j++)
            ours |= many_got[i] == kids[j];
        for (int j = 0; j < i; j++)
            dup |= many_got[j] == many_got[i];
        distinct += ours && !dup;
    }
    errno = 0;
    pid_t left = waitpid(-1, NULL, WNOHANG);
    printf("%d threads in wait() for %d children: %d reaped once each (exit status 6), then waitpid: %s\n", MANY,
           MANY, distinct, left == -1 ? errname(errno) : "a child left");
}

int main(void)
{
    test_init();
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* The main thread never takes the process-directed signal. */
    mask_usr2(SIG_BLOCK);
    for (int k = 0; k < KINDS; k++)
        for (int m = 0; m < MODES; m++)
            run_signal((enum kind)k, (enum mode)m);
    /* pclose() is not a cancellation point to rely on; flock() is none. */
    for (int k = 0; k < KINDS; k++)
        if (k != PCLOSE && k != FLOCK)
            run_cancel((enum kind)k);
    run_many();
    return test_exit_status();
}
