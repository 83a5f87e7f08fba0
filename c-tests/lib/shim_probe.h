/* shim_probe.h — lets a test tell whether it runs under libasyncshim.so.
 *
 * The library exports `int asyncshim_is_active(void)` (1 while its runtime is on) and
 * `int asyncshim_worker_count(void)` (the configured maximum number of worker OS threads).
 * Natively neither symbol exists, so both probes return 0. Include this before any system header,
 * or define _GNU_SOURCE yourself. */
#ifndef SHIM_PROBE_H
#define SHIM_PROBE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 1 when the shim's runtime is active in this process, else 0. */
static __attribute__((unused)) int under_shim(void)
{
    int (*is_active)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "asyncshim_is_active");
    return is_active != NULL && is_active() != 0;
}

/* The shim's configured maximum number of worker OS threads; 0 when not under the shim. */
static __attribute__((unused)) int shim_workers(void)
{
    if (!under_shim())
        return 0;
    int (*count)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "asyncshim_worker_count");
    return count != NULL ? count() : 0;
}

/* Value of a numeric field of /proc/self/status ("Threads", "VmRSS" in KiB, ...), or -1.
 * Uses only open/read (no stdio, no malloc) so it is safe to call from any thread. */
static __attribute__((unused)) long proc_status_field(const char *field)
{
    char buf[8192];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == sizeof buf - 1)
            break;
    }
    close(fd);
    buf[len] = '\0';
    size_t flen = strlen(field);
    for (char *line = buf; line && *line; ) {
        if (strncmp(line, field, flen) == 0 && line[flen] == ':')
            return strtol(line + flen + 1, NULL, 10);
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return -1;
}

/* Number of OS threads (kernel tasks) in this process, from "Threads:" in /proc/self/status; -1 on error. */
static __attribute__((unused)) int os_threads(void)
{
    return (int)proc_status_field("Threads");
}

/* Runs this program again as `self ARG` with the shim's statistics report going to a file (and, when
 * `env_name` is set, that variable set to `env_value`), its stdout kept when `keep_stdout`, else sent to
 * /dev/null. Returns the number that follows `marker` on the last report line holding it, or -1 without
 * one (natively there is no report); the child's exit status (128+signal if killed) goes to *status. */
static __attribute__((unused)) long rerun_for_report(const char *arg, const char *env_name, const char *env_value,
                                                     int keep_stdout, const char *marker, int *status)
{
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    *status = -1;
    if (n <= 0)
        return -1;
    self[n] = 0;
    char report[96];
    snprintf(report, sizeof report, "/tmp/asyncshim-report.%d.%s", (int)getpid(), arg);
    unlink(report);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("ASYNCSHIM_STATS", report, 1);
        if (env_name)
            setenv(env_name, env_value, 1);
        if (!keep_stdout) {
            int devnull = open("/dev/null", O_WRONLY);
            dup2(devnull, 1);
        }
        execl(self, self, arg, (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    long value = -1;
    FILE *f = fopen(report, "r");
    if (f) {
        char line[512];
        size_t len = strlen(marker);
        while (fgets(line, sizeof line, f)) {
            char *p = strstr(line, marker);
            if (p)
                value = strtol(p + len, NULL, 10);
        }
        fclose(f);
        unlink(report);
    }
    return value;
}

/* Under the shim: runs this program again as `self ARG` (stdout to /dev/null) and returns the number of
 * stalls its statistics report counts (workers blocked while other threads waited), or -1 without one. */
static __attribute__((unused)) long stalls_of_rerun(const char *arg)
{
    int status;
    return rerun_for_report(arg, NULL, NULL, 0, "others waited): ", &status);
}

/* For the process-shared lock tests, under the shim and not in that re-run itself (`self again`): runs this
 * program again with statistics; its process-shared futex waits must all have gone through io_uring, none
 * on a helper thread, and it must have passed. Says so on stdout only when that is not so (natively nothing
 * is printed); the counts go to stderr. */
static __attribute__((unused)) void check_pshared_waits_of_rerun(int argc, char **argv)
{
    if (!under_shim() || (argc == 2 && strcmp(argv[1], "again") == 0))
        return;
    int status;
    long helpers = rerun_for_report("again", NULL, NULL, 0, "process-shared futex waits ", &status);
    long queued = rerun_for_report("again", NULL, NULL, 0, "kernel futex waits (io_uring): ", &status);
    fprintf(stderr, "re-run: process-shared futex waits on helper threads %ld, io_uring futex waits %ld, "
                    "status %d\n", helpers, queued, status);
    if (helpers > 0 || queued <= 0 || status != 0)
        printf("re-run under the shim: helper-thread waits %ld, io_uring waits %ld, status %d\n", helpers, queued,
               status);
}

/* Runs this program again with the same arguments and each NAME, VALUE pair of `env` (a NULL-ended list)
 * set, unless `marker` is set (the re-run has it): for tests that need shim settings (one worker, no spare
 * workers, a short slice) in every shim mode. Natively the settings mean nothing. Returns in the re-run. */
static __attribute__((unused)) void rerun_with_env(char **argv, const char *marker, const char *const env[])
{
    if (getenv(marker))
        return;
    setenv(marker, "1", 1);
    for (int i = 0; env[i] && env[i + 1]; i += 2)
        setenv(env[i], env[i + 1], 1);
    execv("/proc/self/exe", argv);
    perror("execv");
    exit(1);
}

/* CHECK that `threads` OS threads (counted while many threads waited) are at most the shim's workers and
 * a few more under the shim; natively each thread is an OS thread and the check passes. */
#define CHECK_FEW_OS_THREADS(threads, name) CHECK(!under_shim() || (threads) <= shim_workers() + 8, name)

#endif /* SHIM_PROBE_H */
