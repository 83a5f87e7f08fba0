/* Thread pidfds (pidfd_open with PIDFD_THREAD, Linux 6.9) of threads other than the main one: poll,
 * select and epoll see nothing while the thread runs and POLLIN|POLLHUP once it ended (an epoll_wait the
 * main thread is blocked in is woken by the thread's end); pidfd_send_signal sends a signal to that thread
 * (its handler runs in it, with SI_TKILL or the sender's siginfo), through a dup too, and is ESRCH once the
 * thread ended; pidfd_getfd gives a close-on-exec copy of the caller's fd while the thread runs;
 * waitid(P_PIDFD) is ECHILD (a thread is no child); bad flags, a forged siginfo, a non-leader without
 * PIDFD_THREAD and an ended thread's tid are the kernel's errors; opening and closing one leaves no fd
 * behind; it is a pidfd (its link, its flags). The glibc wrappers and syscall() agree. A thread-directed send through a pidfd of the main thread
 * (its thread pidfd, or the process's with PIDFD_SIGNAL_THREAD) runs the handler in the main thread.
 * The epoll wait parks on the netpoller, so the io_uring one is tried too.
 * asyncshim-test: timeout=120
 * asyncshim-test: modes=native,shim,shim-w1,shim-arch,shim-uring */
#include "test_util.h"
#include "glibc_compat.h"
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define PIDFD_THREAD_FLAG O_EXCL
#define SIGNAL_THREAD 1
#define SIGNAL_THREAD_GROUP 2
#define SIGNAL_PROCESS_GROUP 4
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static const char *res(int r)
{
    static __thread char buf[8][48];
    static __thread int k;
    char *b = buf[k++ % 8];
    if (r < 0)
        snprintf(b, 48, "-1 %s", errno == EBADF ? "EBADF" : errname(errno));
    else
        snprintf(b, 48, "%d", r);
    return b;
}

static int send_sys(int fd, int sig, siginfo_t *info, unsigned flags)
{
    return (int)syscall(SYS_pidfd_send_signal, fd, sig, info, flags);
}

static pthread_t thread_a, main_thread;
static pid_t tid_a, tid_b;
static int a_end, b_end;
static int handled, handled_in_a, handled_in_main, last_code, last_value;

static void on_signal(int sig, siginfo_t *si, void *ctx)
{
    (void)sig;
    (void)ctx;
    ATOMIC_STORE(&handled_in_a, pthread_equal(pthread_self(), thread_a));
    ATOMIC_STORE(&handled_in_main, pthread_equal(pthread_self(), main_thread));
    ATOMIC_STORE(&last_code, si->si_code);
    ATOMIC_STORE(&last_value, si->si_code == SI_QUEUE ? si->si_value.sival_int : 0);
    ATOMIC_ADD(&handled, 1);
}

static void *run_a(void *arg)
{
    (void)arg;
    ATOMIC_STORE(&tid_a, gettid());
    wait_at_least(&a_end, 1, 1, 60000);
    /* Ends a while after main was told to wait for it. */
    sleep_ms(100);
    return NULL;
}

static char out_b[2][96];

static void *run_b(void *arg)
{
    (void)arg;
    ATOMIC_STORE(&tid_b, gettid());
    /* A thread's pidfd of itself: it may send itself any siginfo. */
    int fd = pidfd_open(gettid(), PIDFD_THREAD_FLAG);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = SIGUSR2;
    si.si_code = SI_USER;
    int before = ATOMIC_LOAD(&handled);
    int r = pidfd_send_signal(fd, SIGUSR2, &si, 0);
    snprintf(out_b[0], 96, "b to itself, SI_USER: %s, handled %d, code %s", res(r), ATOMIC_LOAD(&handled) - before,
             si_code_name(ATOMIC_LOAD(&last_code)));
    snprintf(out_b[1], 96, "b closes its own: %s", res(close(fd)));
    ATOMIC_STORE(&b_end, 1);
    wait_at_least(&b_end, 2, 1, 60000);
    return NULL;
}

static int wait_handled(int before, int n);
static int main_pidfd;
static char out_c[128];

/* Sends SIGUSR1 to the main thread through main_pidfd, thread-directed by PIDFD_SIGNAL_THREAD (and by
 * default, for a thread pidfd). */
static void *run_c(void *arg)
{
    (void)arg;
    int before = ATOMIC_LOAD(&handled);
    int in_main = 0;
    int r = pidfd_send_signal(main_pidfd, SIGUSR1, NULL, SIGNAL_THREAD);
    wait_handled(before, 1);
    in_main += ATOMIC_LOAD(&handled_in_main);
    int r2 = pidfd_send_signal(main_pidfd, SIGUSR1, NULL, 0);
    int n = 0;
    if (fcntl(main_pidfd, F_GETFL) & O_EXCL) {
        wait_handled(before, 2);
        in_main += ATOMIC_LOAD(&handled_in_main);
        n = 1;
    }
    snprintf(out_c, sizeof out_c, "c to main: PIDFD_SIGNAL_THREAD %s, default %s, thread-directed %d, in main %d",
             res(r), res(r2), 1 + n, in_main);
    /* The process-directed one, if any, is handled by some thread. */
    wait_handled(before, 2);
    return NULL;
}

/* Waits until `n` handlers ran since `before` (the handler of a thread-directed signal may run a moment
 * after the send returned, in the other thread). */
static int wait_handled(int before, int n)
{
    wait_at_least(&handled, before + n, 1, 10000);
    return ATOMIC_LOAD(&handled) - before;
}

static void poll_line(const char *what, int fd, short events)
{
    struct pollfd p = {fd, events, 0};
    int r = poll(&p, 1, 0);
    printf("%s: poll %s revents %#x\n", what, res(r), (unsigned)p.revents);
}

static int select_readable(int fd)
{
    fd_set r;
    FD_ZERO(&r);
    FD_SET(fd, &r);
    struct timeval tv = {0, 0};
    int n = select(fd + 1, &r, NULL, NULL, &tv);
    return n < 0 ? -1 : FD_ISSET(fd, &r) ? 1 : 0;
}

static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

int main(void)
{
    test_init();
    main_thread = pthread_self();
    set_siginfo_handler(SIGUSR1, on_signal, SA_RESTART, NULL);
    set_siginfo_handler(SIGUSR2, on_signal, SA_RESTART, NULL);
    pthread_create(&thread_a, NULL, run_a, NULL);
    wait_at_least(&tid_a, 1, 1, 60000);

    int fd = pidfd_open(tid_a, PIDFD_THREAD_FLAG);
    printf("pidfd_open(a, PIDFD_THREAD): %s\n", fd >= 0 ? "fd" : res(fd));
    printf("close-on-exec: %d, nonblocking: %d, status flags %#x\n", (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0,
           (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0, fcntl(fd, F_GETFL));
    char path[64], link[64] = "";
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t len = readlink(path, link, sizeof link - 1);
    link[len > 0 ? len : 0] = 0;
    printf("its link: %s\n", link);
    int probe = dup(0);
    printf("next fd is the one after: %d\n", probe == fd + 1);
    close(probe);
    poll_line("running", fd, POLLIN);
    poll_line("running, all events", fd, POLLIN | POLLOUT | POLLPRI | POLLRDHUP);
    printf("running: select readable %d\n", select_readable(fd));

    /* Signals to the running thread. */
    int before = ATOMIC_LOAD(&handled);
    int r = pidfd_send_signal(fd, SIGUSR1, NULL, 0);
    int n = wait_handled(before, 1);
    printf("send SIGUSR1: %s, handled %d, in a %d, code %s\n", res(r), n, ATOMIC_LOAD(&handled_in_a),
           si_code_name(ATOMIC_LOAD(&last_code)));
    before = ATOMIC_LOAD(&handled);
    r = send_sys(fd, SIGUSR1, NULL, SIGNAL_THREAD);
    n = wait_handled(before, 1);
    printf("syscall send PIDFD_SIGNAL_THREAD: %s, handled %d, in a %d\n", res(r), n, ATOMIC_LOAD(&handled_in_a));
    siginfo_t si = sent_siginfo(SIGUSR2, SI_QUEUE, 42);
    before = ATOMIC_LOAD(&handled);
    r = pidfd_send_signal(fd, SIGUSR2, &si, 0);
    n = wait_handled(before, 1);
    printf("send SIGUSR2 with SI_QUEUE 42: %s, handled %d, in a %d, code %s, value %d\n", res(r), n,
           ATOMIC_LOAD(&handled_in_a), si_code_name(ATOMIC_LOAD(&last_code)), ATOMIC_LOAD(&last_value));
    before = ATOMIC_LOAD(&handled);
    r = pidfd_send_signal(fd, SIGUSR1, NULL, SIGNAL_THREAD_GROUP);
    n = wait_handled(before, 1);
    printf("send to the thread group: %s, handled %d\n", res(r), n);
    printf("signal 0: %s\n", res(pidfd_send_signal(fd, 0, NULL, 0)));
    printf("signal 99: %s\n", res(pidfd_send_signal(fd, 99, NULL, 0)));
    printf("bad flags 8: %s, two scopes: %s\n", res(pidfd_send_signal(fd, SIGUSR1, NULL, 8)),
           res(pidfd_send_signal(fd, SIGUSR1, NULL, SIGNAL_THREAD | SIGNAL_THREAD_GROUP)));
    printf("process group scope: %s\n", res(pidfd_send_signal(fd, SIGUSR1, NULL, SIGNAL_PROCESS_GROUP)));
    si = sent_siginfo(SIGUSR1, SI_QUEUE, 1);
    printf("siginfo of another signal: %s\n", res(pidfd_send_signal(fd, SIGUSR2, &si, 0)));
    si = sent_siginfo(SIGUSR2, SI_USER, 1);
    printf("forged SI_USER: %s\n", res(pidfd_send_signal(fd, SIGUSR2, &si, 0)));
    si = sent_siginfo(SIGUSR2, SI_TKILL, 1);
    printf("forged SI_TKILL: %s\n", res(send_sys(fd, SIGUSR2, &si, 0)));
    printf("siginfo at a bad address: %s\n", res(pidfd_send_signal(fd, SIGUSR2, (siginfo_t *)16, 0)));
    printf("send through stdin: %s\n", res(pidfd_send_signal(0, SIGUSR1, NULL, 0)));
    printf("send through a closed fd: %s\n", res(pidfd_send_signal(999, SIGUSR1, NULL, 0)));

    /* A dup names the same thread, and keeps naming it once the original is closed. */
    int dupfd = dup(fd);
    int second = pidfd_open(tid_a, PIDFD_THREAD_FLAG);
    before = ATOMIC_LOAD(&handled);
    r = pidfd_send_signal(dupfd, SIGUSR1, NULL, 0);
    n = wait_handled(before, 1);
    printf("send through a dup: %s, handled %d, in a %d\n", res(r), n, ATOMIC_LOAD(&handled_in_a));
    printf("close the second pidfd: %s\n", res(close(second)));
    before = ATOMIC_LOAD(&handled);
    r = send_sys(dupfd, SIGUSR1, NULL, 0);
    n = wait_handled(before, 1);
    printf("send through the dup after: %s, handled %d\n", res(r), n);

    /* pidfd_getfd: the thread shares our fd table. */
    int got = pidfd_getfd(fd, 1, 0);
    struct stat s1, s2;
    int same = got >= 0 && fstat(got, &s1) == 0 && fstat(1, &s2) == 0 && s1.st_ino == s2.st_ino && s1.st_dev == s2.st_dev;
    printf("pidfd_getfd(stdout): %s, same file %d, close-on-exec %d\n", got >= 0 ? "fd" : res(got), same,
           got >= 0 && (fcntl(got, F_GETFD) & FD_CLOEXEC) != 0);
    if (got >= 0)
        close(got);
    printf("pidfd_getfd flags 1: %s, closed target: %s\n", res(pidfd_getfd(fd, 1, 1)), res(pidfd_getfd(fd, 999, 0)));
    printf("syscall pidfd_getfd(stdout): %s\n", (got = (int)syscall(SYS_pidfd_getfd, fd, 1, 0)) >= 0 ? "fd" : res(got));
    if (got >= 0)
        close(got);

    /* waitid: a thread is no child. */
    siginfo_t wi;
    memset(&wi, 0, sizeof wi);
    printf("waitid(P_PIDFD) WNOHANG: %s\n", res(waitid((idtype_t)P_PIDFD, (id_t)fd, &wi, WEXITED | WNOHANG)));
    printf("waitid(P_PIDFD): %s\n", res(waitid((idtype_t)P_PIDFD, (id_t)fd, &wi, WEXITED)));
    printf("waitid(P_PIDFD) bad options: %s\n", res(waitid((idtype_t)P_PIDFD, (id_t)fd, &wi, 0)));
    printf("syscall waitid(P_PIDFD): %s\n", res((int)syscall(SYS_waitid, P_PIDFD, fd, &wi, WEXITED, NULL)));

    /* Opening and closing a thread pidfd many times leaves nothing open. */
    int fds_before = open_fds();
    for (int i = 0; i < 200; i++)
        close(pidfd_open(tid_a, PIDFD_THREAD_FLAG));
    printf("200 opens and closes: open fds unchanged %d\n", open_fds() == fds_before);

    /* The thread ends while main waits in epoll_wait. */
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 7};
    printf("epoll_ctl add: %s\n", res(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)));
    memset(&ev, 0, sizeof ev);
    int64_t t0 = mono_ns();
    ATOMIC_STORE(&a_end, 1);
    r = epoll_wait(ep, &ev, 1, 10000);
    printf("epoll_wait: %s, events %#x, data %u\n", res(r), ev.events, ev.data.u32);
    fprintf(stderr, "epoll_wait woke after %.1f ms\n", (mono_ns() - t0) / 1e6);
    close(ep);

    /* Ended, not joined yet. */
    poll_line("ended", fd, POLLIN);
    poll_line("ended, all events", fd, POLLIN | POLLOUT | POLLPRI | POLLRDHUP);
    printf("ended: select readable %d\n", select_readable(fd));
    printf("ended: send %s, send with siginfo %s, through the dup %s\n", res(pidfd_send_signal(fd, SIGUSR1, NULL, 0)),
           res((si = sent_siginfo(SIGUSR2, SI_QUEUE, 3), pidfd_send_signal(fd, SIGUSR2, &si, 0))),
           res(send_sys(dupfd, SIGUSR1, NULL, 0)));
    printf("ended: signal 99 %s, forged SI_USER %s\n", res(pidfd_send_signal(fd, 99, NULL, 0)),
           res((si = sent_siginfo(SIGUSR2, SI_USER, 3), pidfd_send_signal(fd, SIGUSR2, &si, 0))));
    printf("ended: pidfd_getfd %s\n", res(pidfd_getfd(fd, 1, 0)));
    printf("ended: waitid %s\n", res(waitid((idtype_t)P_PIDFD, (id_t)fd, &wi, WEXITED | WNOHANG)));

    pthread_join(thread_a, NULL);
    poll_line("joined", fd, POLLIN);
    printf("joined: send %s\n", res(pidfd_send_signal(fd, SIGUSR1, NULL, 0)));
    printf("joined: pidfd_open %s, syscall %s\n", res(pidfd_open(tid_a, PIDFD_THREAD_FLAG)),
           res((int)syscall(SYS_pidfd_open, tid_a, PIDFD_THREAD_FLAG)));
    printf("close: %s, ", res(close(fd)));
    printf("the dup: %s, ", res(close(dupfd)));
    printf("again: %s\n", res(close(fd)));

    /* A thread that opens its own; bad inputs; the main thread. */
    pthread_t b;
    pthread_create(&b, NULL, run_b, NULL);
    wait_at_least(&b_end, 1, 1, 60000);
    printf("%s\n%s\n", out_b[0], out_b[1]);
    printf("pidfd_open(b) without PIDFD_THREAD: %s\n", res(pidfd_open(tid_b, 0)));
    printf("pidfd_open(b) bad flags: %s\n", res(pidfd_open(tid_b, PIDFD_THREAD_FLAG | 1)));
    int nb = (int)syscall(SYS_pidfd_open, tid_b, PIDFD_THREAD_FLAG | O_NONBLOCK);
    printf("syscall pidfd_open(b, PIDFD_THREAD|PIDFD_NONBLOCK): %s, nonblocking %d\n", nb >= 0 ? "fd" : res(nb),
           nb >= 0 && (fcntl(nb, F_GETFL) & O_NONBLOCK) != 0);
    poll_line("b running", nb, POLLIN);
    ATOMIC_STORE(&b_end, 2);
    pthread_join(b, NULL);
    poll_line("b joined", nb, POLLIN);
    close(nb);
    int m = pidfd_open(getpid(), PIDFD_THREAD_FLAG);
    printf("pidfd_open(main, PIDFD_THREAD): %s\n", m >= 0 ? "fd" : res(m));
    poll_line("main running", m, POLLIN);
    /* Another thread signals main through it while main sleeps. */
    main_pidfd = m;
    pthread_t c;
    pthread_create(&c, NULL, run_c, NULL);
    pthread_join(c, NULL);
    printf("%s\n", out_c);
    close(m);
    m = pidfd_open(getpid(), 0);
    printf("pidfd_open(process): %s\n", m >= 0 ? "fd" : res(m));
    poll_line("process running", m, POLLIN);
    pthread_create(&c, NULL, run_c, NULL);
    pthread_join(c, NULL);
    printf("%s\n", out_c);
    close(m);
    return test_exit_status();
}
