/* test_util.h — small helpers shared by the C differential tests (not a test itself).
 *
 * CHECK(cond, name) prints "name: ok" or "name: FAILED" on stdout and remembers failures;
 * test_exit_status() is 0 when every check passed, else 1. Tests print every check (not just the
 * first failure) so that a diff against the native run shows exactly which checks differ.
 * Output is line-buffered by test_init() so that a crash keeps what was printed before it.
 * Also: errno names, clocks and deadlines, sleeps, a lateness ticker, signal handler set-up, the thread's own stack, atomics and
 * sleep-polling waits. */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int test_failures;

static __attribute__((unused)) void test_init(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
}

static __attribute__((unused)) int check_impl(int ok, const char *name, const char *file, int line)
{
    if (ok) {
        printf("%s: ok\n", name);
    } else {
        printf("%s: FAILED\n", name);
        fprintf(stderr, "%s:%d: check failed: %s\n", file, line, name);
        test_failures++;
    }
    return ok;
}
#define CHECK(cond, name) check_impl(!!(cond), (name), __FILE__, __LINE__)

static __attribute__((unused)) int test_exit_status(void)
{
    if (test_failures)
        printf("%d check(s) FAILED\n", test_failures);
    return test_failures ? 1 : 0;
}

/* Name of an errno value, for deterministic output. */
static __attribute__((unused)) const char *errname(int e)
{
    switch (e) {
    case 0: return "0";
    case EINVAL: return "EINVAL";
    case ESRCH: return "ESRCH";
    case EDEADLK: return "EDEADLK";
    case EBUSY: return "EBUSY";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EPERM: return "EPERM";
    case EAGAIN: return "EAGAIN";
    case EINTR: return "EINTR";
    case ERANGE: return "ERANGE";
    case ENOTSUP: return "ENOTSUP";
    case EFAULT: return "EFAULT";
    case ENOENT: return "ENOENT";
    case ENOMEM: return "ENOMEM";
    case ECHILD: return "ECHILD";
    case EOWNERDEAD: return "EOWNERDEAD";
    case ENOTRECOVERABLE: return "ENOTRECOVERABLE";
    default: {
        static __thread char buf[32];
        snprintf(buf, sizeof buf, "errno%d", e);
        return buf;
    }
    }
}

static __attribute__((unused)) int64_t now_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static __attribute__((unused)) int64_t mono_ns(void)
{
    return now_ns(CLOCK_MONOTONIC);
}

/* An absolute time `ms` milliseconds from now on clock `clk`, for timed waits. */
static __attribute__((unused)) struct timespec deadline_in(clockid_t clk, long ms)
{
    int64_t t = now_ns(clk) + ms * 1000000LL;
    struct timespec ts = { t / 1000000000LL, t % 1000000000LL };
    return ts;
}

static __attribute__((unused)) int64_t ts_ns(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

/* Sleeps for ms milliseconds with nanosleep (restarted on EINTR). */
static __attribute__((unused)) void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* A thread (start it with ticker_thread) that sleeps 10 ms in a loop from created_ns (set just before
 * pthread_create) for run_ns, recording its worst lateness, the wait for its first turn included: the
 * probe for "the other threads keep running". */
struct ticker {
    int64_t created_ns, run_ns, worst_ns;
    int ticks;
};

static __attribute__((unused)) void *ticker_thread(void *arg)
{
    struct ticker *t = (struct ticker *)arg;
    t->worst_ns = mono_ns() - t->created_ns;
    while (mono_ns() < t->created_ns + t->run_ns) {
        int64_t before = mono_ns();
        sleep_ms(10);
        int64_t late = mono_ns() - before - 10LL * 1000000;
        if (late > t->worst_ns)
            t->worst_ns = late;
        t->ticks++;
    }
    return NULL;
}

/* Installs handler h (or SIG_IGN, SIG_DFL) for sig with sa_flags `flags` (SA_RESTART or 0 mostly) and an
 * empty sa_mask; sigaction's result. */
static __attribute__((unused)) int set_signal_handler(int sig, void (*h)(int), int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    return sigaction(sig, &sa, NULL);
}

/* Installs SA_SIGINFO handler h for sig with sa_flags SA_SIGINFO | `flags` and sa_mask `mask` (NULL: empty);
 * sigaction's result. */
static __attribute__((unused)) int set_siginfo_handler(int sig, void (*h)(int, siginfo_t *, void *), int flags,
                                                       const sigset_t *mask)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h;
    sa.sa_flags = SA_SIGINFO | flags;
    if (mask)
        sa.sa_mask = *mask;
    else
        sigemptyset(&sa.sa_mask);
    return sigaction(sig, &sa, NULL);
}

/* The siginfo a sender of this process passes to rt_(tg)sigqueueinfo or pidfd_send_signal: signal `sig`,
 * si_code `code`, value `value`, this process's pid and uid. */
static __attribute__((unused)) siginfo_t sent_siginfo(int sig, int code, int value)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = sig;
    si.si_code = code;
    si.si_pid = getpid();
    si.si_uid = getuid();
    si.si_value.sival_int = value;
    return si;
}

/* The name of a siginfo's si_code for the codes a process's own sends carry. */
static __attribute__((unused)) const char *si_code_name(int c)
{
    switch (c) {
    case SI_QUEUE: return "SI_QUEUE";
    case SI_TKILL: return "SI_TKILL";
    case SI_USER: return "SI_USER";
    default: return "other";
    }
}

/* The calling thread's stack as pthread_getattr_np reports it: its lowest address in *lo and its size in
 * *size; pthread_getattr_np's result (0 on success, *lo and *size untouched otherwise). */
static __attribute__((unused)) int own_stack(void **lo, size_t *size)
{
    pthread_attr_t a;
    int r = pthread_getattr_np(pthread_self(), &a);
    if (r != 0)
        return r;
    pthread_attr_getstack(&a, lo, size);
    pthread_attr_destroy(&a);
    return 0;
}

/* Atomic helpers (sequentially consistent). */
#define ATOMIC_LOAD(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define ATOMIC_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define ATOMIC_ADD(p, v) __atomic_add_fetch((p), (v), __ATOMIC_SEQ_CST)

/* Wait, polling with sleeps (never a futex wait), until *p >= target or timeout_ms passes.
 * Returns 1 when reached. */
static __attribute__((unused)) int wait_at_least(const int *p, int target, long poll_ms, long timeout_ms)
{
    int64_t deadline = mono_ns() + timeout_ms * 1000000LL;
    while (ATOMIC_LOAD(p) < target) {
        if (mono_ns() > deadline)
            return 0;
        sleep_ms(poll_ms);
    }
    return 1;
}

/* Runs this program again with `arg` as its one argument and the "NAME=VALUE" strings of `env` (ending
 * with NULL) added to its environment, its output going where ours goes; says on stdout, with `what`, when
 * the copy did not exit with status 0. */
static __attribute__((unused)) void run_self_copy(const char *arg, const char *const *env, const char *what)
{
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = 0;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        for (; *env; env++)
            putenv((char *)*env);
        execl(self, self, arg, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        printf("the copy %s ended with status %d\n", what, st);
}

#endif /* TEST_UTIL_H */
