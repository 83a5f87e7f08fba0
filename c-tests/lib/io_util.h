/* io_util.h — helpers shared by the fd tests (not a test itself): deterministic printing of results and
 * errno names, the byte pattern of test data, the descriptors the tests make (127.0.0.1 listeners, which
 * return -1 when they cannot be made, and connected TCP pairs, AF_UNIX socket pairs and pipes, which exit
 * with status 3 then, each with a message on stderr), a call made by another thread (bg_call), a counting
 * SIGUSR1 handler, and the frame of a test made of cases. */
#ifndef IO_UTIL_H
#define IO_UTIL_H

#include "shim_probe.h"
#include "test_util.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>

/* errno by name; 1234 is the value the tests preset to show that a call left errno alone. */
static __attribute__((unused)) const char *en(int e)
{
    switch (e) {
    case EAGAIN: return "EAGAIN";
    case EBADF: return "EBADF";
    case EFAULT: return "EFAULT";
    case EPIPE: return "EPIPE";
    case ECONNRESET: return "ECONNRESET";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EINPROGRESS: return "EINPROGRESS";
    case EISCONN: return "EISCONN";
    case ENOTCONN: return "ENOTCONN";
    case EALREADY: return "EALREADY";
    case EINTR: return "EINTR";
    case EINVAL: return "EINVAL";
    case ENOTSOCK: return "ENOTSOCK";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ESPIPE: return "ESPIPE";
    case EMSGSIZE: return "EMSGSIZE";
    case EEXIST: return "EEXIST";
    case EPERM: return "EPERM";
    case 1234: return "1234";
    default: return errname(e);
    }
}

/* "N" or "-1 ENAME" */
static __attribute__((unused)) const char *res(ssize_t rc, int err)
{
    static char bufs[16][48];
    static int k;
    char *b = bufs[k++ % 16];
    if (rc >= 0)
        snprintf(b, 48, "%zd", rc);
    else
        snprintf(b, 48, "%zd %s", rc, en(err));
    return b;
}

/* Result of a call made right here: errno is captured after the call (not in argument order). */
#define RES(expr)                                                                                                  \
    ({                                                                                                             \
        errno = 0;                                                                                                 \
        ssize_t res_rc_ = (ssize_t)(expr);                                                                         \
        int res_err_ = errno;                                                                                      \
        res(res_rc_, res_err_);                                                                                    \
    })

static __attribute__((unused)) const char *yesno(int b)
{
    return b ? "yes" : "no";
}

/* Prints "label: ..." on stdout. */
static void say(const char *label, const char *fmt, ...) __attribute__((format(printf, 2, 3), unused));
static void say(const char *label, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    printf("%s: %s\n", label, buf);
}

/* Byte i of a test data stream; seed tells streams apart. */
static __attribute__((unused)) unsigned char pat(size_t i, unsigned seed)
{
    return (unsigned char)(i * 7 + (i >> 12) * 3 + seed * 101 + 1);
}

static __attribute__((unused)) int nonblock_flag(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && (fl & O_NONBLOCK) != 0;
}

static __attribute__((unused)) void set_nonblock(int fd, int on)
{
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

/* A listener on 127.0.0.1 at a free port, written to *a; -1 (with a message on stderr) when that fails. */
static __attribute__((unused)) int make_listener(struct sockaddr_in *a, int type_flags, int backlog)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | type_flags, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof *a;
    if (bind(l, (struct sockaddr *)a, sizeof *a) != 0 || listen(l, backlog) != 0 ||
        getsockname(l, (struct sockaddr *)a, &len) != 0) {
        fprintf(stderr, "listener: %s\n", strerror(errno));
        close(l);
        return -1;
    }
    return l;
}

/* A connected TCP pair on 127.0.0.1 (TCP_NODELAY): *c the connecting end, *s the accepted end. */
static __attribute__((unused)) void tcp_pair(int *c, int *s)
{
    struct sockaddr_in a;
    int l = make_listener(&a, 0, 16);
    *c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l < 0 || *c < 0 || connect(*c, (struct sockaddr *)&a, sizeof a) != 0) {
        fprintf(stderr, "tcp_pair connect: %s\n", strerror(errno));
        exit(3);
    }
    *s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    if (*s < 0) {
        fprintf(stderr, "tcp_pair accept: %s\n", strerror(errno));
        exit(3);
    }
    close(l);
    int one = 1;
    setsockopt(*c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(*s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static __attribute__((unused)) void unix_pair(int sv[2], int type_flags)
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | type_flags, 0, sv) != 0) {
        fprintf(stderr, "socketpair: %s\n", strerror(errno));
        exit(3);
    }
}

static __attribute__((unused)) void mkpipe(int p[2])
{
    if (pipe2(p, O_CLOEXEC) != 0) {
        fprintf(stderr, "pipe2: %s\n", strerror(errno));
        exit(3);
    }
}

/* Fills a socket or pipe until a non-blocking write says EAGAIN; returns the bytes written. */
static __attribute__((unused)) long fill(int fd, int is_socket)
{
    static char junk[4096];
    long total = 0;
    int was_nb = nonblock_flag(fd);
    if (!is_socket)
        set_nonblock(fd, 1);
    for (;;) {
        ssize_t w = is_socket ? send(fd, junk, sizeof junk, MSG_DONTWAIT) : write(fd, junk, sizeof junk);
        if (w <= 0)
            break;
        total += w;
    }
    /* TCP may make room again a moment later (window updates): top up until it stays full. */
    if (is_socket) {
        for (int i = 0; i < 5; i++) {
            sleep_ms(20);
            ssize_t w;
            while ((w = send(fd, junk, sizeof junk, MSG_DONTWAIT)) > 0)
                total += w;
        }
    }
    if (!is_socket && !was_nb)
        set_nonblock(fd, 0);
    return total;
}

/* SO_RCVTIMEO / SO_SNDTIMEO of ms milliseconds. */
static __attribute__((unused)) void set_timeo(int fd, int opt, long ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    if (setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv) != 0)
        fprintf(stderr, "setsockopt timeout: %s\n", strerror(errno));
}

/* SIGUSR1 arriving during a call: count_usr1(restart) installs a handler that counts deliveries in
 * usr1_count, with SA_RESTART or without. */
static __attribute__((unused)) int usr1_count;

static __attribute__((unused)) void on_usr1_count(int sig)
{
    (void)sig;
    ATOMIC_ADD(&usr1_count, 1);
}

static __attribute__((unused)) void count_usr1(int restart)
{
    set_signal_handler(SIGUSR1, on_usr1_count, restart ? SA_RESTART : 0);
}

/* A call made by another thread, so that a test sees whether it blocks, what wakes it and what it returns:
 * fn(arg) runs in a thread of its own with errno preset to 1234 (a call that leaves errno alone shows it),
 * and its result, errno afterwards and start and end times are recorded. Embed it in a struct that says
 * what to call (fn's arg). */
struct bg_call {
    ssize_t (*fn)(void *arg);
    void *arg;
    ssize_t rc;
    int err;
    int started, done;
    int64_t t0, t1;
    pthread_t th;
};

static __attribute__((unused)) void *bg_call_body(void *p)
{
    struct bg_call *c = (struct bg_call *)p;
    c->t0 = mono_ns();
    ATOMIC_STORE(&c->started, 1);
    errno = 1234;
    ssize_t rc = c->fn(c->arg);
    c->err = errno;
    c->rc = rc;
    c->t1 = mono_ns();
    ATOMIC_STORE(&c->done, 1);
    return NULL;
}

/* Starts fn(arg) in a new thread (exit status 3 when that fails) and returns once it has started and then
 * settle_ms have passed, time for it to block. */
static __attribute__((unused)) void bg_call_start(struct bg_call *c, ssize_t (*fn)(void *), void *arg, long settle_ms)
{
    memset(c, 0, sizeof *c);
    c->fn = fn;
    c->arg = arg;
    c->rc = -2;
    if (pthread_create(&c->th, NULL, bg_call_body, c) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        exit(3);
    }
    wait_at_least(&c->started, 1, 1, 10000);
    sleep_ms(settle_ms);
}

/* 1 while the call has not returned. */
static __attribute__((unused)) int bg_call_blocked(struct bg_call *c)
{
    return !ATOMIC_LOAD(&c->done);
}

/* Waits up to timeout_ms for the call to return: 1 when it did (and its thread is joined), 0 when not
 * (the thread is left running). */
static __attribute__((unused)) int bg_call_join(struct bg_call *c, long timeout_ms)
{
    if (!wait_at_least(&c->done, 1, 1, timeout_ms))
        return 0;
    pthread_join(c->th, NULL);
    return 1;
}

/* How long the returned call took, in milliseconds. */
static __attribute__((unused)) double bg_call_ms(struct bg_call *c)
{
    return (c->t1 - c->t0) / 1e6;
}

/* One case of an fd test. */
struct io_case {
    const char *name;
    void (*fn)(void);
};

/* The start of an fd test: stdout line-buffered, whether the shim runs it on stderr, SIGPIPE ignored (EPIPE
 * is a result), at least 2,048 fds when the hard limit allows; returns a buffer of `size` bytes of
 * pattern 0. */
static __attribute__((unused)) unsigned char *io_test_start(size_t size)
{
    test_init();
    fprintf(stderr, "under shim: %d, workers %d\n", under_shim(), shim_workers());
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 2048 && rl.rlim_max >= 2048) {
        rl.rlim_cur = 2048;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    unsigned char *buf = (unsigned char *)malloc(size);
    for (size_t i = 0; i < size; i++)
        buf[i] = pat(i, 0);
    return buf;
}

/* Runs the cases in order, each one's time on stderr. */
static __attribute__((unused)) void run_cases(const struct io_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int64_t t0 = mono_ns();
        cases[i].fn();
        fprintf(stderr, "== case %s: %.1f ms\n", cases[i].name, (mono_ns() - t0) / 1e6);
    }
}

#endif /* IO_UTIL_H */
