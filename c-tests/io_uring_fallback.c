/* The netpoller's readiness source and its fallback: the same fd waits (a ping-pong between two threads
 * over a socket pair, a pipe read that waits, a close of a watched socket whose peer then reads EOF) run in
 * child processes made with ASYNCSHIM_IO=uring, with ASYNCSHIM_IO=uring under a seccomp filter that makes
 * io_uring_setup fail (EPERM as container runtimes do, and ENOSYS as a kernel without io_uring), and with
 * ASYNCSHIM_IO=epoll. Every child gives the same answers natively and under the shim. Under the shim each
 * child's statistics report says which source it used: io_uring only where this process can set up a
 * ring itself and no filter forbids it, epoll everywhere else.
 *
 * asyncshim-test: timeout=90 */
#define _GNU_SOURCE
#include "no_uring.h"
#include "shim_probe.h"
#include "test_util.h"
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUNDS 2000

static int sv[2];

static void *ponger(void *arg)
{
    (void)arg;
    char b[8];
    for (int i = 0; i < ROUNDS; i++) {
        if (read(sv[1], b, sizeof b) != sizeof b || write(sv[1], b, sizeof b) != sizeof b)
            return (void *)1;
    }
    return NULL;
}

static void *late_writer(void *arg)
{
    int fd = (int)(intptr_t)arg;
    usleep(20000);
    return (void *)(intptr_t)(write(fd, "late", 4) != 4);
}

/* The fd waits: prints one line per check and returns 0 when all went as expected. */
static int workload(void)
{
    int bad = 0;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return 1;
    pthread_t t;
    pthread_create(&t, NULL, ponger, NULL);
    long sum = 0;
    for (int i = 0; i < ROUNDS; i++) {
        char b[8];
        memcpy(b, &i, sizeof i);
        memset(b + 4, 'x', 4);
        if (write(sv[0], b, sizeof b) != sizeof b || read(sv[0], b, sizeof b) != sizeof b) {
            bad = 1;
            break;
        }
        int back;
        memcpy(&back, b, sizeof back);
        sum += back;
    }
    void *r;
    pthread_join(t, &r);
    printf("  ping-pong: %d round trips, sum %ld, ponger %s\n", ROUNDS, sum, r ? "failed" : "ok");
    bad |= r != NULL || sum != (long)ROUNDS * (ROUNDS - 1) / 2;

    int p[2];
    if (pipe(p) != 0)
        return 1;
    pthread_create(&t, NULL, late_writer, (void *)(intptr_t)p[1]);
    char buf[8] = {0};
    ssize_t n = read(p[0], buf, sizeof buf);
    pthread_join(t, &r);
    printf("  pipe read that waited: %zd bytes \"%.*s\", writer %s\n", n, (int)(n > 0 ? n : 0), buf,
           r ? "failed" : "ok");
    bad |= n != 4 || r != NULL;
    close(p[0]);
    close(p[1]);

    /* A watched socket closed: its peer sees EOF (the poll's reference to it went with the close). */
    close(sv[1]);
    n = read(sv[0], buf, sizeof buf);
    printf("  read after the peer closed: %zd\n", n);
    bad |= n != 0;
    close(sv[0]);
    return bad;
}

/* Whether this process may set up a ring (then the shim's uring source is expected to start). */
static int io_uring_allowed(void)
{
    unsigned char params[120] = {0};
    long fd = syscall(__NR_io_uring_setup, 4, params);
    if (fd < 0)
        return 0;
    close((int)fd);
    return 1;
}

/* Runs `self child` with ASYNCSHIM_IO=io (and a filter when err != 0) and the shim's report in a file;
 * returns 0 when its exit status and (under the shim) the source it used are as expected. */
static int run_case(const char *self, const char *title, const char *io, int err, int expect_uring)
{
    char report[96];
    snprintf(report, sizeof report, "/tmp/asyncshim-report.%d.uring", (int)getpid());
    unlink(report);
    printf("%s:\n", title);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("ASYNCSHIM_STATS", report, 1);
        setenv("ASYNCSHIM_IO", io, 1);
        if (err && forbid_io_uring(err) != 0) {
            perror("seccomp");
            _exit(3);
        }
        execl(self, self, "child", (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    printf("  exit %d\n", code);
    long in_use = -1;
    FILE *f = fopen(report, "r");
    if (f) {
        char line[512];
        const char *marker = "io_uring in use: ";
        while (fgets(line, sizeof line, f)) {
            char *p = strstr(line, marker);
            if (p)
                in_use = strtol(p + strlen(marker), NULL, 10);
        }
        fclose(f);
        unlink(report);
    }
    int bad = code != 0;
    if (under_shim()) {
        fprintf(stderr, "%s: io_uring in use %ld (expected %d)\n", title, in_use, expect_uring);
        if (in_use != expect_uring) {
            fprintf(stderr, "FAIL: %s: the shim's netpoller %s io_uring\n", title, in_use ? "used" : "did not use");
            bad = 1;
        }
    }
    return bad;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "child") == 0)
        return workload();
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return 2;
    self[n] = 0;
    int uring = io_uring_allowed();
    fprintf(stderr, "io_uring_setup allowed here: %d\n", uring);
    int bad = 0;
    bad |= run_case(self, "ASYNCSHIM_IO=uring", "uring", 0, uring);
    bad |= run_case(self, "ASYNCSHIM_IO=uring, io_uring_setup forbidden (EPERM)", "uring", EPERM, 0);
    bad |= run_case(self, "ASYNCSHIM_IO=uring, io_uring_setup missing (ENOSYS)", "uring", ENOSYS, 0);
    bad |= run_case(self, "ASYNCSHIM_IO=epoll", "epoll", 0, 0);
    printf("%s\n", bad ? "FAILED" : "all cases as expected");
    return bad;
}
