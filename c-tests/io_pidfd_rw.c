/* Reads and writes of a pidfd answer at once (the kernel's EINVAL; ENOTSOCK for recv and send) while its
 * task runs: a child process's, this process's own and a thread's (PIDFD_THREAD, Linux 6.9), opened with
 * and without PIDFD_NONBLOCK, through the glibc wrapper and syscall(), and copies made by dup (a number
 * the shim did not see made), with read, write, readv, writev, pread, pwrite, preadv, pwritev, recv,
 * send, zero-length reads and writes, and stdio (fdopen, fgetc, fputc and fflush). The task is still
 * running after them. poll, select and epoll still wait for the task's end: a wait with a 10 s
 * timeout returns once the child is killed, and once the thread ends.
 * asyncshim-test: timeout=60 */
#include "test_util.h"
#include "glibc_compat.h"
#include "io_util.h"
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#define PIDFD_THREAD_FLAG O_EXCL
#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static int thread_end;
static int thread_tid;

/* Runs until told to end, then ends 100 ms later (while the main thread waits for its end). */
static void *worker(void *tid)
{
    ATOMIC_STORE((int *)tid, gettid());
    while (!ATOMIC_LOAD(&thread_end))
        sleep_ms(2);
    sleep_ms(100);
    return NULL;
}

static int64_t slowest_ns;

/* Every read and write form on `fd`, each timed. */
static void calls(const char *what, int fd)
{
    char b[8] = "abcdefg";
    struct iovec iov = { b, sizeof b };
    const char *r[16];
    int64_t t0 = mono_ns();
    r[0] = RES(read(fd, b, sizeof b));
    r[1] = RES(write(fd, b, sizeof b));
    r[2] = RES(readv(fd, &iov, 1));
    r[3] = RES(writev(fd, &iov, 1));
    r[4] = RES(pread(fd, b, sizeof b, 0));
    r[5] = RES(pwrite(fd, b, sizeof b, 0));
    r[6] = RES(preadv(fd, &iov, 1, 0));
    r[7] = RES(pwritev(fd, &iov, 1, 0));
    r[8] = RES(recv(fd, b, sizeof b, 0));
    r[9] = RES(send(fd, b, sizeof b, MSG_NOSIGNAL));
    r[10] = RES(read(fd, b, 0));
    r[11] = RES(write(fd, b, 0));
    r[12] = RES(syscall(SYS_read, fd, b, sizeof b));
    int64_t t = mono_ns() - t0;
    if (t > slowest_ns)
        slowest_ns = t;
    say(what,
        "read %s, write %s, readv %s, writev %s, pread %s, pwrite %s, preadv %s, pwritev %s, recv %s, send %s, "
        "read 0 %s, write 0 %s, syscall read %s",
        r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12]);
}

/* stdio on a copy of `fd` (fclose closes the copy). */
static void stdio_calls(const char *what, int fd)
{
    int copy = dup(fd);
    FILE *in = fdopen(copy, "r");
    if (!in) {
        say(what, "fdopen r %s", en(errno));
        close(copy);
        return;
    }
    errno = 0;
    int c = fgetc(in);
    int err = errno;
    say(what, "fgetc %s errno %s, ferror %s", c == EOF ? "EOF" : "a byte", en(err), yesno(ferror(in)));
    fclose(in);
    copy = dup(fd);
    FILE *out = fdopen(copy, "w");
    if (!out) {
        say(what, "fdopen w %s", en(errno));
        close(copy);
        return;
    }
    fputc('x', out);
    errno = 0;
    int f = fflush(out);
    err = errno;
    say(what, "fflush %d errno %s", f, en(err));
    fclose(out);
}

/* All the calls on pidfds of `pid` with `flags`: the wrapper's, syscall()'s, a dup of the first. */
static void all_forms(const char *what, pid_t pid, unsigned flags)
{
    char label[96];
    int a = pidfd_open(pid, flags);
    int b = (int)syscall(SYS_pidfd_open, pid, flags);
    say(what, "pidfd_open %s, syscall %s", a < 0 ? en(errno) : "ok", b < 0 ? en(errno) : "ok");
    if (a < 0 || b < 0) {
        if (a >= 0)
            close(a);
        if (b >= 0)
            close(b);
        return;
    }
    int d = dup(a);
    snprintf(label, sizeof label, "%s, wrapper", what);
    calls(label, a);
    snprintf(label, sizeof label, "%s, syscall", what);
    calls(label, b);
    snprintf(label, sizeof label, "%s, dup", what);
    calls(label, d);
    snprintf(label, sizeof label, "%s, stdio", what);
    stdio_calls(label, d);
    close(a);
    close(b);
    close(d);
}

static int kill_after_ms;
static pid_t kill_target;

static void *killer(void *arg)
{
    (void)arg;
    sleep_ms(ATOMIC_LOAD(&kill_after_ms));
    kill(kill_target, SIGKILL);
    return NULL;
}

static int child_running(pid_t pid)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    return waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == 0;
}

int main(void)
{
    test_init();
    pid_t child = fork();
    if (child == 0) {
        for (;;)
            pause();
    }

    all_forms("child", child, 0);
    all_forms("child nonblocking", child, PIDFD_NONBLOCK);
    all_forms("self", getpid(), 0);
    all_forms("self nonblocking", getpid(), PIDFD_NONBLOCK);

    pthread_t t;
    pthread_create(&t, NULL, worker, &thread_tid);
    wait_at_least(&thread_tid, 1, 1, 10000);
    pid_t tid = ATOMIC_LOAD(&thread_tid);
    all_forms("thread", tid, PIDFD_THREAD_FLAG);
    all_forms("thread nonblocking", tid, PIDFD_THREAD_FLAG | PIDFD_NONBLOCK);
    fprintf(stderr, "slowest set of calls: %.3f ms\n", slowest_ns / 1e6);
    CHECK(slowest_ns < 2000000000LL, "every call answered at once");
    CHECK(child_running(child), "the child still runs after the calls");
    CHECK(ATOMIC_LOAD(&thread_end) == 0, "the thread still runs after the calls");

    /* The waits still work: each returns when the task ends, well before its 10 s timeout. */
    int pfd = pidfd_open(child, 0);
    int pdup = dup(pfd);
    struct pollfd p = { pdup, POLLIN, 0 };
    say("child, poll before its end", "%s", RES(poll(&p, 1, 0)));
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(pfd, &rs);
    struct timeval zero = { 0, 0 };
    say("child, select before its end", "%s", RES(select(pfd + 1, &rs, NULL, NULL, &zero)));
    kill_target = child;
    ATOMIC_STORE(&kill_after_ms, 100);
    pthread_t k;
    pthread_create(&k, NULL, killer, NULL);
    int64_t t0 = mono_ns();
    int pr = poll(&p, 1, 10000);
    int64_t waited = mono_ns() - t0;
    say("child, poll of a dup until its end", "%d revents POLLIN %s", pr, yesno(p.revents & POLLIN));
    pthread_join(k, NULL);
    fprintf(stderr, "poll waited %.1f ms\n", waited / 1e6);
    CHECK(waited < 5000000000LL, "poll returned at the child's end");
    FD_ZERO(&rs);
    FD_SET(pfd, &rs);
    struct timeval ten = { 10, 0 };
    say("child, select after its end", "%s", RES(select(pfd + 1, &rs, NULL, NULL, &ten)));
    calls("child, ended", pfd);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    const char *w = RES(waitid(P_PIDFD, pfd, &si, WEXITED));
    say("child, waitid", "%s, killed %s", w, yesno(si.si_code == CLD_KILLED && si.si_status == SIGKILL));
    close(pfd);
    close(pdup);

    int tfd = pidfd_open(tid, PIDFD_THREAD_FLAG);
    if (tfd >= 0) {
        int ep = epoll_create1(0);
        struct epoll_event ev = { .events = EPOLLIN };
        epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
        say("thread, epoll_wait before its end", "%s", RES(epoll_wait(ep, &ev, 1, 0)));
        ATOMIC_STORE(&thread_end, 1);
        t0 = mono_ns();
        int er = epoll_wait(ep, &ev, 1, 10000);
        waited = mono_ns() - t0;
        say("thread, epoll_wait until its end", "%d", er);
        fprintf(stderr, "epoll_wait waited %.1f ms\n", waited / 1e6);
        CHECK(waited < 5000000000LL, "epoll_wait returned at the thread's end");
        pthread_join(t, NULL);
        calls("thread, ended", tfd);
        close(ep);
        close(tfd);
    } else {
        say("thread pidfd", "%s", en(errno));
        ATOMIC_STORE(&thread_end, 1);
        pthread_join(t, NULL);
    }
    return test_exit_status();
}
