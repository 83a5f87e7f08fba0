/* set*id calls in a process with many threads, as natively. glibc's setresuid & co. signal every OS
 * thread of the process (SIGSETXID, 33) and wait until each has changed its own credentials, so one OS
 * thread that blocks signal 33 — under the shim, a runtime thread: a worker, the monitor, a spare, a PI
 * keeper or an offload helper — makes the call wait for ever. Here threads wait in read(), on a mutex, on
 * a PI mutex they hold (a keeper under the shim), in waitpid (an offload helper), in sleeps (one with all
 * signals blocked), and one computes (a stalled worker: a spare under the shim), while the main thread
 * changes its ids and back: every call returns as natively and every thread sees the ids of the moment.
 * Then another thread sets the ids, and a forked child (one thread). As root the ids change to 65534 and
 * back; otherwise they are set to what they are.
 *
 * asyncshim-test: timeout=60 */
#define _GNU_SOURCE
#include "sync_util.h"
#include "test_util.h"
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

enum { READERS = 2, LOCKERS = 2, SLEEPERS = 2, PHASES = 2 };

static int phase;              /* what the main thread has made of the ids: 1 changed, 2 restored */
static int arrived[PHASES + 1]; /* threads that have seen phase N's ids */
static int seen_euid[PHASES + 1], seen_egid[PHASES + 1]; /* threads that saw the expected ids there */
static uid_t want_uid[PHASES + 1];
static gid_t want_gid[PHASES + 1];
static int pipes[READERS][2];
static pthread_mutex_t plain = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t pi;
static int pi_held, child_pipe[2], child_status = -1;
static pid_t child;

/* Records whether this thread sees the ids of phase p. */
static void note_ids(int p)
{
    if (geteuid() == want_uid[p])
        ATOMIC_ADD(&seen_euid[p], 1);
    if (getegid() == want_gid[p])
        ATOMIC_ADD(&seen_egid[p], 1);
    ATOMIC_ADD(&arrived[p], 1);
}

static void *reader(void *arg)
{
    int *fd = arg;
    char c;
    for (int p = 1; p <= PHASES; p++) {
        if (read(fd[0], &c, 1) != 1)
            fprintf(stderr, "read failed\n");
        note_ids(p);
    }
    return NULL;
}

static void *locker(void *arg)
{
    (void)arg;
    for (int p = 1; p <= PHASES; p++) {
        while (ATOMIC_LOAD(&phase) < p) {
            pthread_mutex_lock(&plain); /* main holds it until the phase has begun */
            pthread_mutex_unlock(&plain);
        }
        note_ids(p);
    }
    return NULL;
}

static void *sleeper(void *arg)
{
    if (arg) {
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, NULL);
    }
    for (int p = 1; p <= PHASES; p++) {
        while (ATOMIC_LOAD(&phase) < p)
            sleep_ms(5);
        note_ids(p);
    }
    return NULL;
}

static void *spinner(void *arg)
{
    (void)arg;
    for (int p = 1; p <= PHASES; p++) {
        while (ATOMIC_LOAD(&phase) < p)
            ;
        note_ids(p);
    }
    return NULL;
}

static void *pi_holder(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&pi);
    ATOMIC_STORE(&pi_held, 1);
    for (int p = 1; p <= PHASES; p++) {
        while (ATOMIC_LOAD(&phase) < p)
            sleep_ms(5);
        note_ids(p);
    }
    pthread_mutex_unlock(&pi);
    return NULL;
}

static void *child_waiter(void *arg)
{
    (void)arg;
    int st;
    if (waitpid(child, &st, 0) == child)
        child_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return NULL;
}

static uid_t uid0;
static gid_t gid0;

/* set*id from a thread other than main, while main waits in a join. */
static void *setter(void *arg)
{
    (void)arg;
    int ok = setresgid(-1, gid0, -1) == 0 && setresuid(-1, uid0, -1) == 0 && seteuid(uid0) == 0;
    return (void *)(intptr_t)ok;
}

/* Sets the effective ids to uid/gid (the real and saved ones stay), gid first while still allowed. */
static void set_ids(const char *what, uid_t uid, gid_t gid)
{
    char name[64];
    snprintf(name, sizeof name, "%s: setresgid", what);
    CHECK(setresgid(-1, gid, -1) == 0, name);
    snprintf(name, sizeof name, "%s: setresuid", what);
    CHECK(setresuid(-1, uid, -1) == 0, name);
    snprintf(name, sizeof name, "%s: own ids", what);
    CHECK(geteuid() == uid && getegid() == gid, name);
}

int main(void)
{
    test_init();
    int root = geteuid() == 0;
    printf("root: %s\n", root ? "yes" : "no");
    uid0 = geteuid();
    gid0 = getegid();
    want_uid[1] = root ? 65534 : uid0;
    want_gid[1] = root ? 65534 : gid0;
    want_uid[2] = uid0;
    want_gid[2] = gid0;

    init_mutex(&pi, PTHREAD_MUTEX_NORMAL, 1, 0, 0);
    if (pipe(child_pipe) != 0)
        return 2;
    child = fork();
    if (child == 0) {
        char c;
        close(child_pipe[1]);
        _exit(read(child_pipe[0], &c, 1) == 0 ? 7 : 8);
    }
    close(child_pipe[0]);

    pthread_mutex_lock(&plain);
    pthread_t t[READERS + LOCKERS + SLEEPERS + 4];
    int n = 0;
    for (int i = 0; i < READERS; i++) {
        if (pipe(pipes[i]) != 0)
            return 2;
        pthread_create(&t[n++], NULL, reader, pipes[i]);
    }
    for (int i = 0; i < LOCKERS; i++)
        pthread_create(&t[n++], NULL, locker, NULL);
    for (int i = 0; i < SLEEPERS; i++)
        pthread_create(&t[n++], NULL, sleeper, i ? (void *)1 : NULL);
    pthread_create(&t[n++], NULL, spinner, NULL);
    pthread_create(&t[n++], NULL, pi_holder, NULL);
    int noting = n;
    pthread_create(&t[n++], NULL, child_waiter, NULL);
    CHECK(wait_at_least(&pi_held, 1, 1, 10000), "PI mutex held");
    sleep_ms(50); /* let the others reach their waits; the outcome does not depend on it */

    for (int p = 1; p <= PHASES; p++) {
        set_ids(p == 1 ? "change" : "restore", want_uid[p], want_gid[p]);
        ATOMIC_STORE(&phase, p);
        pthread_mutex_unlock(&plain);
        for (int i = 0; i < READERS; i++)
            if (write(pipes[i][1], "x", 1) != 1)
                fprintf(stderr, "write failed\n");
        CHECK(wait_at_least(&arrived[p], noting, 1, 20000), p == 1 ? "all threads woke (changed)" : "all threads woke (restored)");
        printf("phase %d: %d of %d threads saw the effective uid, %d the effective gid\n", p,
               ATOMIC_LOAD(&seen_euid[p]), noting, ATOMIC_LOAD(&seen_egid[p]));
        pthread_mutex_lock(&plain);
    }
    pthread_mutex_unlock(&plain);

    /* The same ids as they are, once more with all threads ended but the waiter. */
    for (int i = 0; i < noting; i++)
        pthread_join(t[i], NULL);
    CHECK(setresuid(-1, uid0, -1) == 0, "setresuid to the same ids");
    CHECK(setgid(gid0) == 0, "setgid to the same id");
    close(child_pipe[1]);
    pthread_join(t[noting], NULL);
    printf("child exit: %d\n", child_status);

    pthread_t st_thread;
    void *set_ok;
    pthread_create(&st_thread, NULL, setter, NULL);
    pthread_join(st_thread, &set_ok);
    CHECK(set_ok == (void *)1, "set*id from another thread");

    /* In a forked child, whose only thread is the one that forked. */
    pid_t p = fork();
    if (p == 0)
        _exit(setresuid(-1, uid0, -1) == 0 && setresgid(-1, gid0, -1) == 0 && setgid(gid0) == 0 ? 0 : 1);
    int st = -1;
    waitpid(p, &st, 0);
    printf("set*id in a forked child: exit %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    return test_exit_status();
}
