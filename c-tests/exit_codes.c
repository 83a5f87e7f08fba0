/* exit_codes: how a threaded process ends. With `--all` (the args marker) this program re-runs itself
 * (/proc/self/exe, so LD_PRELOAD and ASYNCSHIM_* are inherited) once per scenario, captures the child's
 * stdout and stderr, and prints its stdout and wait status; each scenario's status is checked:
 *   return3      main returns 3 while 4 threads sleep                      -> exit 3, atexit runs
 *   exit7        exit(7) from a thread while main joins a sleeper          -> exit 7, atexit runs in it
 *   _exit9       _exit(9) from a thread                                    -> exit 9, no atexit
 *   pthread_exit main calls pthread_exit, the others print after it        -> exit 0 after the last one
 *   atexit_order exit(5) from a thread: atexit LIFO order, on_exit sees 5  -> exit 5
 *   quick_exit   quick_exit(4) from a thread: at_quick_exit only           -> exit 4
 *   abort        abort() from a thread                                     -> SIGABRT
 *   segv         a NULL write from a thread (not a stack overflow)         -> SIGSEGV, stderr does not
 *                                                                             mention a stack overflow
 *   sigterm      kill(getpid(), SIGTERM) from a thread                     -> SIGTERM
 * asyncshim-test: args=--all */
#include "shim_probe.h"
#include "test_util.h"
#include "glibc_compat.h"
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

static pthread_t exiter;
static int exiter_set;

static void *sleeper(void *arg)
{
    (void)arg;
    for (;;)
        sleep(100);
    return NULL;
}

static void start_sleepers(int n)
{
    pthread_t t;
    for (int i = 0; i < n; i++)
        pthread_create(&t, NULL, sleeper, NULL);
}

static void atexit_handler(void)
{
    printf("atexit handler ran\n");
}

static void atexit_in_exiter(void)
{
    printf("atexit handler ran in the exiting thread: %s\n",
           ATOMIC_LOAD(&exiter_set) && pthread_equal(pthread_self(), exiter) ? "yes" : "no");
}

static void *call_exit7(void *arg)
{
    (void)arg;
    sleep_ms(50);
    exiter = pthread_self();
    ATOMIC_STORE(&exiter_set, 1);
    printf("thread calls exit(7)\n");
    exit(7);
}

static void *call__exit9(void *arg)
{
    (void)arg;
    sleep_ms(50);
    printf("thread calls _exit(9)\n");
    fflush(stdout);
    printf("this buffered line is lost\n");
    _exit(9);
}

static int turn;
static void *after_main(void *arg)
{
    int id = (int)(intptr_t)arg;
    while (ATOMIC_LOAD(&turn) != id)
        sleep_ms(5);
    sleep_ms(20);
    printf("thread %d runs after main's pthread_exit\n", id);
    ATOMIC_STORE(&turn, id + 1);
    return NULL;
}

static void h1(void) { printf("atexit 1 (registered first, runs last)\n"); }
static void h2(void) { printf("atexit 2\n"); }
static void h3(void) { printf("atexit 3 (registered last, runs first)\n"); }
static void onexit(int status, void *arg) { printf("on_exit sees status %d, arg %s\n", status, (char *)arg); }
static void *call_exit5(void *arg)
{
    (void)arg;
    sleep_ms(20);
    exit(5);
}

static void quick_handler(void) { printf("at_quick_exit handler ran\n"); fflush(stdout); }
static void *call_quick_exit4(void *arg)
{
    (void)arg;
    sleep_ms(20);
    printf("thread calls quick_exit(4)\n");
    quick_exit(4);
}

static void *call_abort(void *arg)
{
    (void)arg;
    sleep_ms(20);
    printf("thread calls abort()\n");
    fflush(stdout);
    abort();
}

static void *null_write(void *arg)
{
    (void)arg;
    sleep_ms(20);
    printf("thread writes through NULL\n");
    fflush(stdout);
    *(volatile int *)(uintptr_t)arg = 1;
    return NULL;
}

static void *send_sigterm(void *arg)
{
    (void)arg;
    sleep_ms(20);
    printf("thread sends SIGTERM to the process\n");
    fflush(stdout);
    kill(getpid(), SIGTERM);
    for (;;)
        sleep(1);
    return NULL;
}

static int scenario(const char *name)
{
    pthread_t t;
    if (strcmp(name, "return3") == 0) {
        atexit(atexit_handler);
        start_sleepers(4);
        sleep_ms(20);
        printf("main returns 3\n");
        return 3;
    }
    if (strcmp(name, "exit7") == 0) {
        atexit(atexit_in_exiter);
        start_sleepers(4);
        pthread_t s;
        pthread_create(&s, NULL, sleeper, NULL);
        pthread_create(&t, NULL, call_exit7, NULL);
        pthread_join(s, NULL);
        printf("unreachable: join of a sleeper returned\n");
        return 1;
    }
    if (strcmp(name, "_exit9") == 0) {
        atexit(atexit_handler);
        start_sleepers(4);
        pthread_create(&t, NULL, call__exit9, NULL);
        for (;;)
            sleep(100);
    }
    if (strcmp(name, "pthread_exit") == 0) {
        atexit(atexit_handler);
        for (int i = 0; i < 4; i++)
            pthread_create(&t, NULL, after_main, (void *)(intptr_t)i);
        printf("main calls pthread_exit\n");
        pthread_exit(NULL);
    }
    if (strcmp(name, "atexit_order") == 0) {
        atexit(h1);
        on_exit(onexit, "x");
        atexit(h2);
        atexit(h3);
        start_sleepers(2);
        pthread_create(&t, NULL, call_exit5, NULL);
        for (;;)
            sleep(100);
    }
    if (strcmp(name, "quick_exit") == 0) {
        atexit(atexit_handler);
        at_quick_exit(quick_handler);
        start_sleepers(2);
        pthread_create(&t, NULL, call_quick_exit4, NULL);
        for (;;)
            sleep(100);
    }
    if (strcmp(name, "abort") == 0) {
        start_sleepers(2);
        pthread_create(&t, NULL, call_abort, NULL);
        for (;;)
            sleep(100);
    }
    if (strcmp(name, "segv") == 0) {
        start_sleepers(2);
        pthread_create(&t, NULL, null_write, NULL);
        for (;;)
            sleep(100);
    }
    if (strcmp(name, "sigterm") == 0) {
        start_sleepers(2);
        pthread_create(&t, NULL, send_sigterm, NULL);
        for (;;)
            sleep(100);
    }
    fprintf(stderr, "unknown scenario %s\n", name);
    return 100;
}

struct expect {
    const char *name;
    int status; /* >= 0: exit code; < 0: -signal */
};

static const struct expect expected[] = {
    { "return3", 3 }, { "exit7", 7 }, { "_exit9", 9 }, { "pthread_exit", 0 }, { "atexit_order", 5 },
    { "quick_exit", 4 }, { "abort", -SIGABRT }, { "segv", -SIGSEGV }, { "sigterm", -SIGTERM },
};

/* Runs one scenario in a child; returns its wait status, fills out/err (NUL-terminated). */
static int run_child(const char *name, char *out, size_t outsz, char *err, size_t errsz)
{
    int po[2], pe[2];
    if (pipe(po) || pipe(pe))
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]); close(po[1]); close(pe[0]); close(pe[1]);
        execl("/proc/self/exe", "exit_codes", name, (char *)NULL);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    size_t no = 0, ne = 0;
    struct pollfd fds[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };
    int open_fds = 2;
    while (open_fds > 0) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char *buf = i == 0 ? out : err;
            size_t *n = i == 0 ? &no : &ne;
            size_t cap = (i == 0 ? outsz : errsz) - 1;
            char tmp[4096];
            ssize_t r = read(fds[i].fd, tmp, sizeof tmp);
            if (r <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
                continue;
            }
            size_t take = (size_t)r < cap - *n ? (size_t)r : cap - *n;
            memcpy(buf + *n, tmp, take);
            *n += take;
        }
    }
    out[no] = '\0';
    err[ne] = '\0';
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return status;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--all") != 0)
        return scenario(argv[1]);
    if (argc != 2) {
        fprintf(stderr, "usage: exit_codes --all | SCENARIO\n");
        return 2;
    }
    test_init();
    static char out[65536], err[65536];
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        const struct expect *e = &expected[i];
        int st = run_child(e->name, out, sizeof out, err, sizeof err);
        char desc[64], name[160];
        if (st == -1)
            snprintf(desc, sizeof desc, "could not run");
        else if (WIFEXITED(st))
            snprintf(desc, sizeof desc, "exit %d", WEXITSTATUS(st));
        else if (WIFSIGNALED(st))
            snprintf(desc, sizeof desc, "signal %s", sigabbrev_np(WTERMSIG(st)) ? sigabbrev_np(WTERMSIG(st)) : "?");
        else
            snprintf(desc, sizeof desc, "status 0x%x", st);
        printf("== %s: %s\n", e->name, desc);
        for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"))
            printf("   | %s\n", line);
        if (err[0])
            fprintf(stderr, "== %s stderr:\n%s\n", e->name, err);
        int ok = st != -1 && (e->status >= 0 ? WIFEXITED(st) && WEXITSTATUS(st) == e->status
                                             : WIFSIGNALED(st) && WTERMSIG(st) == -e->status);
        snprintf(name, sizeof name, "%s ends as expected", e->name);
        CHECK(ok, name);
        if (strcmp(e->name, "segv") == 0) {
            int says_overflow = strcasestr(err, "overflow") != NULL;
            CHECK(!says_overflow, "segv: a NULL write is not reported as a stack overflow");
        }
    }
    return test_exit_status();
}
