/* fork_system_popen: process creation from several threads at once.
 * Eleven threads start together (sleep-polled gate), each doing three rounds of one of:
 *   fork      the child checks it kept the forking thread's __thread value and pthread_self(), writes
 *             a line into a pipe and _exits with 10 + thread; the parent reads the pipe and waitpids;
 *   system    system("exit 5") gives WEXITSTATUS 5;
 *   popen     popen("echo hello", "r") reads "hello", pclose gives 0; popen("exit 3") gives 3;
 *             popen("cat > /dev/null", "w") takes a line, pclose gives 0;
 *   spawn     posix_spawn of /bin/echo with stdout into a pipe; posix_spawnp("sh -c 'exit 6'") gives 6;
 *   threads   a forked child creates 10 threads (which sleep and yield), joins them and exits with
 *             the sum of their results.
 * Results are printed afterwards in a fixed order. */
#include "shim_probe.h"
#include "test_util.h"
#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>

extern char **environ;

#define ROUNDS 3
enum kind { K_FORK, K_SYSTEM, K_POPEN, K_SPAWN, K_THREADS };
static const struct { enum kind kind; int index; } plan[] = {
    { K_FORK, 0 }, { K_FORK, 1 }, { K_FORK, 2 }, { K_FORK, 3 }, { K_SYSTEM, 0 }, { K_SYSTEM, 1 },
    { K_POPEN, 0 }, { K_POPEN, 1 }, { K_SPAWN, 0 }, { K_SPAWN, 1 }, { K_THREADS, 0 },
};
#define NPLAN ((int)(sizeof plan / sizeof plan[0]))

static char results[NPLAN][ROUNDS][256];
static int gate;
static __thread long tls_mark;

static void say(int slot, int round, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(results[slot][round], sizeof results[slot][round], fmt, ap);
    va_end(ap);
}

static const char *status_str(int st, char *buf, size_t n)
{
    if (st == -1)
        snprintf(buf, n, "error %s", errname(errno));
    else if (WIFEXITED(st))
        snprintf(buf, n, "exit %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, n, "signal %d", WTERMSIG(st));
    else
        snprintf(buf, n, "status 0x%x", st);
    return buf;
}

static size_t read_all(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n == cap - 1)
            break;
    }
    buf[n] = '\0';
    while (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    return n;
}

static int wait_child(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return st;
}

static void do_fork(int slot, int idx, int round)
{
    int p[2];
    char buf[256], sb[64];
    if (pipe2(p, O_CLOEXEC) != 0) {
        say(slot, round, "pipe failed");
        return;
    }
    tls_mark = 1000 * idx + round;
    pthread_t self = pthread_self();
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        int n = snprintf(buf, sizeof buf, "child of fork thread %d: tls %s, pthread_self %s", idx,
                         tls_mark == 1000 * idx + round ? "kept" : "LOST",
                         pthread_equal(pthread_self(), self) ? "kept" : "CHANGED");
        if (write(p[1], buf, (size_t)n) != n)
            _exit(99);
        _exit(10 + idx);
    }
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        say(slot, round, "fork failed: %s", errname(errno));
        return;
    }
    read_all(p[0], buf, sizeof buf);
    close(p[0]);
    int st = wait_child(pid);
    say(slot, round, "fork: \"%s\", %s", buf, status_str(st, sb, sizeof sb));
}

static void do_system(int slot, int round)
{
    char sb[64];
    int st = system("exit 5");
    say(slot, round, "system(\"exit 5\"): %s; system(NULL) %s", status_str(st, sb, sizeof sb),
        system(NULL) ? "nonzero" : "0");
}

static void do_popen(int slot, int round)
{
    char line[128] = "", s1[64], s2[64], s3[64];
    FILE *f = popen("echo hello", "r");
    int st1 = -1, st2 = -1, st3 = -1;
    if (f) {
        if (!fgets(line, sizeof line, f))
            strcpy(line, "(nothing)");
        line[strcspn(line, "\n")] = '\0';
        st1 = pclose(f);
    }
    f = popen("exit 3", "r");
    if (f)
        st2 = pclose(f);
    f = popen("cat > /dev/null", "w");
    if (f) {
        fputs("some input\n", f);
        st3 = pclose(f);
    }
    say(slot, round, "popen: read \"%s\" (%s); \"exit 3\": %s; write mode: %s", line,
        status_str(st1, s1, sizeof s1), status_str(st2, s2, sizeof s2), status_str(st3, s3, sizeof s3));
}

static void do_spawn(int slot, int idx, int round)
{
    int p[2];
    char buf[256] = "", arg[32], s1[64], s2[64];
    if (pipe2(p, O_CLOEXEC) != 0) {
        say(slot, round, "pipe failed");
        return;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_addclose(&fa, p[0]);
    posix_spawn_file_actions_addclose(&fa, p[1]);
    snprintf(arg, sizeof arg, "%d.%d", idx, round);
    char *argv[] = { "echo", "spawned", arg, NULL };
    pid_t pid;
    int rc = posix_spawn(&pid, "/bin/echo", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    int st1 = -1, st2 = -1;
    if (rc == 0) {
        read_all(p[0], buf, sizeof buf);
        st1 = wait_child(pid);
    }
    close(p[0]);
    char *argv2[] = { "sh", "-c", "exit 6", NULL };
    if (posix_spawnp(&pid, "sh", NULL, NULL, argv2, environ) == 0)
        st2 = wait_child(pid);
    say(slot, round, "posix_spawn: \"%s\" (%s); sh -c 'exit 6': %s", buf, status_str(st1, s1, sizeof s1),
        status_str(st2, s2, sizeof s2));
}

static void *child_thread(void *arg)
{
    long v = (long)(intptr_t)arg;
    usleep(1000);
    sched_yield();
    tls_mark = v;
    sleep_ms(1);
    return (void *)(intptr_t)(tls_mark + 1);
}

static void do_fork_threads(int slot, int round)
{
    char sb[64];
    pid_t pid = fork();
    if (pid == 0) {
        pthread_t t[10];
        long sum = 0;
        for (int i = 0; i < 10; i++)
            if (pthread_create(&t[i], NULL, child_thread, (void *)(intptr_t)i) != 0)
                _exit(98);
        for (int i = 0; i < 10; i++) {
            void *r;
            if (pthread_join(t[i], &r) != 0)
                _exit(97);
            sum += (long)(intptr_t)r;
        }
        _exit((int)sum); /* 1 + 2 + ... + 10 = 55 */
    }
    if (pid < 0) {
        say(slot, round, "fork failed");
        return;
    }
    say(slot, round, "fork, child creates and joins 10 threads: %s", status_str(wait_child(pid), sb, sizeof sb));
}

static void *runner(void *arg)
{
    int slot = (int)(intptr_t)arg;
    while (!ATOMIC_LOAD(&gate))
        sleep_ms(2);
    for (int round = 0; round < ROUNDS; round++) {
        switch (plan[slot].kind) {
        case K_FORK: do_fork(slot, plan[slot].index, round); break;
        case K_SYSTEM: do_system(slot, round); break;
        case K_POPEN: do_popen(slot, round); break;
        case K_SPAWN: do_spawn(slot, plan[slot].index, round); break;
        case K_THREADS: do_fork_threads(slot, round); break;
        }
    }
    return NULL;
}

int main(void)
{
    test_init();
    pthread_t th[NPLAN];
    for (int i = 0; i < NPLAN; i++)
        pthread_create(&th[i], NULL, runner, (void *)(intptr_t)i);
    sleep_ms(20);
    ATOMIC_STORE(&gate, 1);
    for (int i = 0; i < NPLAN; i++)
        pthread_join(th[i], NULL);

    int ok = 1;
    for (int i = 0; i < NPLAN; i++) {
        for (int r = 0; r < ROUNDS; r++) {
            char want[256];
            switch (plan[i].kind) {
            case K_FORK:
                snprintf(want, sizeof want, "fork: \"child of fork thread %d: tls kept, pthread_self kept\", exit %d",
                         plan[i].index, 10 + plan[i].index);
                break;
            case K_SYSTEM:
                snprintf(want, sizeof want, "system(\"exit 5\"): exit 5; system(NULL) nonzero");
                break;
            case K_POPEN:
                snprintf(want, sizeof want,
                         "popen: read \"hello\" (exit 0); \"exit 3\": exit 3; write mode: exit 0");
                break;
            case K_SPAWN:
                snprintf(want, sizeof want, "posix_spawn: \"spawned %d.%d\" (exit 0); sh -c 'exit 6': exit 6",
                         plan[i].index, r);
                break;
            case K_THREADS:
                snprintf(want, sizeof want, "fork, child creates and joins 10 threads: exit 55");
                break;
            }
            printf("thread %2d round %d: %s\n", i, r, results[i][r]);
            if (strcmp(want, results[i][r]) != 0) {
                ok = 0;
                fprintf(stderr, "thread %d round %d: expected: %s\n", i, r, want);
            }
        }
    }
    CHECK(ok, "all results as expected");
    CHECK(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD, "no child left unreaped");
    return test_exit_status();
}
