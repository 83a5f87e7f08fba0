/* glibc_compat.h — lets a test that calls a libc function newer than glibc 2.31 build with 2.31's headers,
 * and tells a test which glibc it runs on (glibc_at_least).
 *
 * scripts/glibc-matrix.sh builds every test once, on the oldest glibc the suite runs on (Debian 11's 2.31),
 * and runs those programs on every newer one. With headers of a glibc that has the function, this file
 * adds nothing and the call binds to libc as usual. With older headers it defines the function here, and
 * the definition looks the name up at run time in the global scope, where a call from a program built on a
 * newer glibc would bind: the shim's hook when the shim is preloaded, libc's function on a newer glibc.
 * With neither (natively on an older glibc) it makes the system call glibc's own wrapper makes, so the
 * native reference still exercises the kernel's behaviour (the timer functions, in librt before 2.34, are
 * looked up there). x86-64 system call numbers. */
#ifndef GLIBC_COMPAT_H
#define GLIBC_COMPAT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <features.h>
#include <gnu/libc-version.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

/* True when the glibc this program runs on (not the one it was built with) is at least major.minor: for
 * the few native results that changed between glibc versions. */
static __attribute__((unused)) int glibc_at_least(int major, int minor)
{
    int ma = 0, mi = 0;
    sscanf(gnu_get_libc_version(), "%d.%d", &ma, &mi);
    return ma > major || (ma == major && mi >= minor);
}

/* The function NAME as a program linked against a newer glibc would reach it, or NULL. */
#define COMPAT_LOOKUP(name) dlsym(RTLD_DEFAULT, name)

#if !__GLIBC_PREREQ(2, 34)
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
static __attribute__((unused)) int close_range(unsigned int first, unsigned int last, int flags)
{
    int (*fn)(unsigned int, unsigned int, int) = (int (*)(unsigned int, unsigned int, int))COMPAT_LOOKUP("close_range");
    return fn ? fn(first, last, flags) : (int)syscall(SYS_close_range, first, last, flags);
}

static __attribute__((unused)) void closefrom(int low)
{
    void (*fn)(int) = (void (*)(int))COMPAT_LOOKUP("closefrom");
    if (fn)
        fn(low);
    else
        syscall(SYS_close_range, (unsigned int)low, ~0U, 0);
}
#endif

#if !__GLIBC_PREREQ(2, 35)
#include <sys/epoll.h>
#ifndef SYS_epoll_pwait2
#define SYS_epoll_pwait2 441
#endif
static __attribute__((unused)) int epoll_pwait2(int epfd, struct epoll_event *events, int maxevents,
                                                const struct timespec *timeout, const sigset_t *sigmask)
{
    int (*fn)(int, struct epoll_event *, int, const struct timespec *, const sigset_t *) =
        (int (*)(int, struct epoll_event *, int, const struct timespec *, const sigset_t *))COMPAT_LOOKUP("epoll_pwait2");
    /* glibc passes the kernel's sigset size, _NSIG / 8 */
    return fn ? fn(epfd, events, maxevents, timeout, sigmask)
              : (int)syscall(SYS_epoll_pwait2, epfd, events, maxevents, timeout, sigmask, 8);
}
#endif

#if !__GLIBC_PREREQ(2, 32)
/* glibc's abbreviations of the standard signals; NULL for others, as sigabbrev_np. */
static __attribute__((unused)) const char *sigabbrev_np(int sig)
{
    static const char *const names[] = {
        NULL,   "HUP",  "INT",  "QUIT", "ILL",  "TRAP",   "ABRT", "BUS",   "FPE",   "KILL", "USR1",
        "SEGV", "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT",  "STOP",  "TSTP", "TTIN",
        "TTOU", "URG",  "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "POLL", "PWR",   "SYS",
    };
    const char *(*fn)(int) = (const char *(*)(int))COMPAT_LOOKUP("sigabbrev_np");
    if (fn)
        return fn(sig);
    return sig > 0 && sig < (int)(sizeof names / sizeof names[0]) ? names[sig] : NULL;
}
#endif

#if !__GLIBC_PREREQ(2, 34)
/* Before 2.34 the POSIX timer functions live in librt, which the tests do not link: they are looked up
 * where a program linked with -lrt would reach them (the shim's hooks when preloaded), else in librt. */
#include <time.h>
#include <signal.h>
static __attribute__((unused)) void *compat_rt(const char *name)
{
    void *f = COMPAT_LOOKUP(name);
    if (!f) {
        void *h = dlopen("librt.so.1", RTLD_NOW | RTLD_GLOBAL);
        f = h ? dlsym(h, name) : NULL;
    }
    return f;
}
static __attribute__((unused)) int compat_timer_create(clockid_t c, struct sigevent *e, timer_t *t)
{
    return ((int (*)(clockid_t, struct sigevent *, timer_t *))compat_rt("timer_create"))(c, e, t);
}
static __attribute__((unused)) int compat_timer_settime(timer_t t, int f, const struct itimerspec *n,
                                                        struct itimerspec *o)
{
    return ((int (*)(timer_t, int, const struct itimerspec *, struct itimerspec *))compat_rt("timer_settime"))(t, f,
                                                                                                             n, o);
}
static __attribute__((unused)) int compat_timer_gettime(timer_t t, struct itimerspec *c)
{
    return ((int (*)(timer_t, struct itimerspec *))compat_rt("timer_gettime"))(t, c);
}
static __attribute__((unused)) int compat_timer_getoverrun(timer_t t)
{
    return ((int (*)(timer_t))compat_rt("timer_getoverrun"))(t);
}
static __attribute__((unused)) int compat_timer_delete(timer_t t)
{
    return ((int (*)(timer_t))compat_rt("timer_delete"))(t);
}
#define timer_create compat_timer_create
#define timer_settime compat_timer_settime
#define timer_gettime compat_timer_gettime
#define timer_getoverrun compat_timer_getoverrun
#define timer_delete compat_timer_delete
#endif

#if !__GLIBC_PREREQ(2, 34)
/* The POSIX message queue functions too (librt before 2.34). */
#include <mqueue.h>
static __attribute__((unused)) mqd_t compat_mq_open(const char *name, int flags, mode_t mode, struct mq_attr *attr)
{
    return ((mqd_t(*)(const char *, int, mode_t, struct mq_attr *))compat_rt("mq_open"))(name, flags, mode, attr);
}
static __attribute__((unused)) int compat_mq_unlink(const char *name)
{
    return ((int (*)(const char *))compat_rt("mq_unlink"))(name);
}
static __attribute__((unused)) ssize_t compat_mq_timedreceive(mqd_t q, char *m, size_t n, unsigned *p,
                                                              const struct timespec *t)
{
    return ((ssize_t(*)(mqd_t, char *, size_t, unsigned *, const struct timespec *))compat_rt("mq_timedreceive"))(
        q, m, n, p, t);
}
static __attribute__((unused)) ssize_t compat_mq_receive(mqd_t q, char *m, size_t n, unsigned *p)
{
    return ((ssize_t(*)(mqd_t, char *, size_t, unsigned *))compat_rt("mq_receive"))(q, m, n, p);
}
static __attribute__((unused)) int compat_mq_timedsend(mqd_t q, const char *m, size_t n, unsigned p,
                                                       const struct timespec *t)
{
    return ((int (*)(mqd_t, const char *, size_t, unsigned, const struct timespec *))compat_rt("mq_timedsend"))(
        q, m, n, p, t);
}
static __attribute__((unused)) int compat_mq_send(mqd_t q, const char *m, size_t n, unsigned p)
{
    return ((int (*)(mqd_t, const char *, size_t, unsigned))compat_rt("mq_send"))(q, m, n, p);
}
#define mq_open compat_mq_open
#define mq_unlink compat_mq_unlink
#define mq_timedreceive compat_mq_timedreceive
#define mq_receive compat_mq_receive
#define mq_timedsend compat_mq_timedsend
#define mq_send compat_mq_send
#endif

#if !__GLIBC_PREREQ(2, 34)
/* The POSIX AIO functions too (librt before 2.34). */
#include <aio.h>
static __attribute__((unused)) int compat_aio_read(struct aiocb *cb)
{
    return ((int (*)(struct aiocb *))compat_rt("aio_read"))(cb);
}
static __attribute__((unused)) int compat_aio_error(const struct aiocb *cb)
{
    return ((int (*)(const struct aiocb *))compat_rt("aio_error"))(cb);
}
static __attribute__((unused)) ssize_t compat_aio_return(struct aiocb *cb)
{
    return ((ssize_t(*)(struct aiocb *))compat_rt("aio_return"))(cb);
}
static __attribute__((unused)) int compat_aio_suspend(const struct aiocb *const list[], int n,
                                                      const struct timespec *t)
{
    return ((int (*)(const struct aiocb *const[], int, const struct timespec *))compat_rt("aio_suspend"))(list, n, t);
}
#define aio_read compat_aio_read
#define aio_error compat_aio_error
#define aio_return compat_aio_return
#define aio_suspend compat_aio_suspend
#endif

#if __GLIBC_PREREQ(2, 36)
#include <sys/pidfd.h>
#else
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
static __attribute__((unused)) int pidfd_open(pid_t pid, unsigned int flags)
{
    int (*fn)(pid_t, unsigned int) = (int (*)(pid_t, unsigned int))COMPAT_LOOKUP("pidfd_open");
    return fn ? fn(pid, flags) : (int)syscall(SYS_pidfd_open, pid, flags);
}

#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
static __attribute__((unused)) int pidfd_send_signal(int fd, int sig, siginfo_t *info, unsigned int flags)
{
    int (*fn)(int, int, siginfo_t *, unsigned int) =
        (int (*)(int, int, siginfo_t *, unsigned int))COMPAT_LOOKUP("pidfd_send_signal");
    return fn ? fn(fd, sig, info, flags) : (int)syscall(SYS_pidfd_send_signal, fd, sig, info, flags);
}

#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
static __attribute__((unused)) int pidfd_getfd(int fd, int target, unsigned int flags)
{
    int (*fn)(int, int, unsigned int) = (int (*)(int, int, unsigned int))COMPAT_LOOKUP("pidfd_getfd");
    return fn ? fn(fd, target, flags) : (int)syscall(SYS_pidfd_getfd, fd, target, flags);
}
#endif

#endif /* GLIBC_COMPAT_H */
