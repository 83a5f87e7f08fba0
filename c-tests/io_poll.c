/* io_poll: the fd calls that wait on readiness or on other processes — poll, ppoll, select, pselect,
 * epoll_wait, epoll_pwait, epoll_pwait2, and waitpid/system, sendfile, splice — behave as natively, and park
 * rather than block their worker: with one worker (shim-w1) a thread in poll must still let the thread that
 * makes its fd ready run. Everything on 127.0.0.1, pipes and AF_UNIX socket pairs.
 *  P1 each of the 7 waits on one fd: timeout 0 (0 at once), 150 ms (0 after >= 150 ms), 3 s woken by data
 *     written 100 ms later by another thread, POLLOUT at once; select's timeout updated (0 after expiry);
 *  P2 details: POLLNVAL for a closed fd, negative fds ignored, nfds = 0 and select with no fds as sleeps,
 *     POLLHUP, POLLRDHUP, a listener's POLLIN woken by a connect, POLLOUT woken when the peer drains a full
 *     socket, select/epoll errors (EBADF, EINVAL), epoll level/edge-triggered/EPOLLONESHOT/maxevents, an
 *     epoll fd inside an epoll fd, poll/ppoll/epoll on fd 1500;
 *  P3 signals: a handled signal (even with SA_RESTART) ends poll, select and epoll_wait with EINTR; ppoll,
 *     pselect and epoll_pwait with a mask that unblocks a pending signal return EINTR at once;
 *  P4 many waiters: 16 threads in poll on 16 pipes, 8 threads in poll on one pipe, 4 threads in epoll_wait
 *     on one epoll fd, all woken by data;
 *  P5 waitpid/system/sendfile/splice with a peer that is a thread of this program (a child whose input a
 *     thread writes later; system("wc -c") reading from a thread; sendfile of 4 MiB to a slowly read
 *     socket; splice between a socket and a pipe), bounded by timeouts so that blocking shows as wrong
 *     results instead of a hang;
 *  P6 infinite timeouts: each of the 7 waits with no timeout, woken by data 100 ms later;
 *  P7 the program's own event loops: an epoll loop thread (non-blocking listener and connections, a
 *     timerfd, an eventfd to stop it, EPOLLOUT for partial writes) and a poll() loop thread, each serving 8
 *     client threads that exchange 40 messages of 1 B to 32 KiB with blocking calls.
 * Cases that block forever when a call blocks the worker come last (P6, P7).
 * asyncshim-test: timeout=120 */
#include "shim_probe.h"
#include "test_util.h"
#include "glibc_compat.h"
#include "io_util.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

#define MS 1000000LL

/* ------------------------------------------------------------------ helpers */

/* Poll/epoll event bits by name (POLLIN == EPOLLIN etc. on Linux). */
static const char *evname(int ev)
{
    static char bufs[8][96];
    static int k;
    char *b = bufs[k++ % 8];
    b[0] = 0;
    static const struct {
        int bit;
        const char *name;
    } names[] = { { POLLIN, "IN" },   { POLLPRI, "PRI" },     { POLLOUT, "OUT" },    { POLLERR, "ERR" },
                  { POLLHUP, "HUP" }, { POLLNVAL, "NVAL" },   { POLLRDNORM, "RDNORM" }, { POLLWRNORM, "WRNORM" },
                  { POLLRDHUP, "RDHUP" } };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (ev & names[i].bit) {
            if (b[0])
                strcat(b, "|");
            strcat(b, names[i].name);
        }
    if (!b[0])
        strcpy(b, "none");
    return b;
}

static void drain_fd(int fd)
{
    char buf[4096];
    set_nonblock(fd, 1);
    while (read(fd, buf, sizeof buf) > 0)
        ;
    set_nonblock(fd, 0);
}

static struct timespec ts_of(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    return ts;
}

/* ------------------------------------------------------------------ the seven waits on one fd */

enum pk { PK_POLL, PK_PPOLL, PK_SELECT, PK_PSELECT, PK_EPOLL_WAIT, PK_EPOLL_PWAIT, PK_EPOLL_PWAIT2, PK_COUNT };
static const char *pk_name[PK_COUNT] = { "poll", "ppoll", "select", "pselect", "epoll_wait", "epoll_pwait",
                                         "epoll_pwait2" };

/* Waits for `events` (POLLIN/POLLOUT) on fd with kind; timeout_ms < 0: none. Sets *rev; returns the result
 * with errno as the call left it. */
static int pwait(int kind, int fd, int events, long timeout_ms, int *rev)
{
    int rc = -1, e = 0;
    *rev = 0;
    switch (kind) {
    case PK_POLL:
    case PK_PPOLL: {
        struct pollfd p = { fd, (short)events, 0 };
        if (kind == PK_POLL) {
            rc = poll(&p, 1, (int)timeout_ms);
        } else {
            struct timespec ts = ts_of(timeout_ms);
            rc = ppoll(&p, 1, timeout_ms < 0 ? NULL : &ts, NULL);
        }
        e = errno;
        *rev = p.revents;
        break;
    }
    case PK_SELECT:
    case PK_PSELECT: {
        fd_set r, w;
        FD_ZERO(&r);
        FD_ZERO(&w);
        if (events & POLLIN)
            FD_SET(fd, &r);
        if (events & POLLOUT)
            FD_SET(fd, &w);
        if (kind == PK_SELECT) {
            struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
            rc = select(fd + 1, &r, &w, NULL, timeout_ms < 0 ? NULL : &tv);
        } else {
            struct timespec ts = ts_of(timeout_ms);
            rc = pselect(fd + 1, &r, &w, NULL, timeout_ms < 0 ? NULL : &ts, NULL);
        }
        e = errno;
        if (rc > 0)
            *rev = (FD_ISSET(fd, &r) ? POLLIN : 0) | (FD_ISSET(fd, &w) ? POLLOUT : 0);
        break;
    }
    default: {
        int ep = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = { .events = (uint32_t)events, .data.fd = fd }, out[2];
        memset(out, 0, sizeof out);
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            e = errno;
            close(ep);
            errno = e;
            return -1;
        }
        if (kind == PK_EPOLL_WAIT) {
            rc = epoll_wait(ep, out, 2, (int)timeout_ms);
        } else if (kind == PK_EPOLL_PWAIT) {
            rc = epoll_pwait(ep, out, 2, (int)timeout_ms, NULL);
        } else {
            struct timespec ts = ts_of(timeout_ms);
            rc = epoll_pwait2(ep, out, 2, timeout_ms < 0 ? NULL : &ts, NULL);
        }
        e = errno;
        if (rc > 0)
            *rev = (int)out[0].events;
        close(ep);
        break;
    }
    }
    errno = e;
    return rc;
}

/* A wait of kind `kind` made by another thread; rev is the events it reported. */
struct waiter {
    struct bg_call bg; /* the thread, result, errno and times */
    int kind, fd, events;
    long timeout_ms;
    int rev;
};

static ssize_t waiter_call(void *arg)
{
    struct waiter *w = arg;
    return pwait(w->kind, w->fd, w->events, w->timeout_ms, &w->rev);
}

static void waiter_start(struct waiter *w, int kind, int fd, int events, long timeout_ms, long settle_ms)
{
    memset(w, 0, sizeof *w);
    w->kind = kind;
    w->fd = fd;
    w->events = events;
    w->timeout_ms = timeout_ms;
    bg_call_start(&w->bg, waiter_call, w, settle_ms);
}

/* Joins the waiter if it returns within timeout_ms; 0 (thread left behind) if not. */
static int waiter_join(struct waiter *w, long timeout_ms)
{
    return bg_call_join(&w->bg, timeout_ms);
}

static double waiter_ms(struct waiter *w)
{
    return bg_call_ms(&w->bg);
}

/* ------------------------------------------------------------------ P1: timeouts */

static void case_timeouts(void)
{
    char label[160];
    for (int k = 0; k < PK_COUNT; k++) {
        int p[2], rev;
        mkpipe(p);

        int64_t t0 = mono_ns();
        errno = 1234;
        int rc = pwait(k, p[0], POLLIN, 0, &rev);
        double ms = (mono_ns() - t0) / 1e6;
        snprintf(label, sizeof label, "P1 %s, empty pipe, timeout 0", pk_name[k]);
        say(label, "%s at once: %s", res(rc, errno), yesno(ms < 100));

        t0 = mono_ns();
        errno = 1234;
        rc = pwait(k, p[0], POLLIN, 150, &rev);
        int e = errno;
        ms = (mono_ns() - t0) / 1e6;
        fprintf(stderr, "%s timeout 150: %.1f ms\n", pk_name[k], ms);
        snprintf(label, sizeof label, "P1 %s, empty pipe, timeout 150 ms", pk_name[k]);
        say(label, "%s after >= 150 ms: %s, within 2 s: %s", res(rc, e), yesno(ms >= 149.5), yesno(ms < 2000));

        struct waiter w;
        waiter_start(&w, k, p[0], POLLIN, 3000, 100);
        int was = !ATOMIC_LOAD(&w.bg.done);
        int64_t tw = mono_ns();
        write(p[1], "x", 1);
        int ok = waiter_join(&w, 6000);
        fprintf(stderr, "%s woken by data: %.1f ms after start, %.1f after the write\n", pk_name[k], waiter_ms(&w),
                (w.bg.t1 - tw) / 1e6);
        snprintf(label, sizeof label, "P1 %s, timeout 3 s, data written 100 ms later by another thread", pk_name[k]);
        say(label, "waiting: %s; %s %s, woken by the data (not the timeout): %s; errno %s", yesno(was),
            ok ? res(w.bg.rc, w.bg.err) : "still waiting", evname(w.rev), yesno(ok && w.bg.t1 - tw < 1500 * MS),
            ok ? en(w.bg.err) : "-");
        if (!ok)
            waiter_join(&w, 5000);
        drain_fd(p[0]);

        t0 = mono_ns();
        rc = pwait(k, p[1], POLLOUT, 3000, &rev);
        e = errno;
        snprintf(label, sizeof label, "P1 %s, POLLOUT on an empty pipe's write end", pk_name[k]);
        say(label, "%s %s at once: %s", res(rc, e), evname(rev), yesno(mono_ns() - t0 < 100 * MS));
        close(p[0]);
        close(p[1]);
    }

    /* select updates its timeout: 0 after expiry, what was left after an early return */
    int p[2];
    mkpipe(p);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct timeval tv = { 0, 150000 };
    int rc = select(p[0] + 1, &r, NULL, NULL, &tv);
    say("P1 select's timeout after it expired", "rc %d, timeval now %ld.%06ld", rc, (long)tv.tv_sec, (long)tv.tv_usec);
    write(p[1], "x", 1);
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    tv = (struct timeval){ 2, 0 };
    rc = select(p[0] + 1, &r, NULL, NULL, &tv);
    say("P1 select with data there, timeout 2 s", "rc %d, timeval left between 1.9 and 2 s: %s", rc,
        yesno(tv.tv_sec * 1000000L + tv.tv_usec > 1900000 && tv.tv_sec * 1000000L + tv.tv_usec <= 2000000));
    close(p[0]);
    close(p[1]);
}

/* ------------------------------------------------------------------ P2: details */

static void case_details(void)
{
    int p[2], q[2], rc;
    char b[64];
    mkpipe(p);

    int closed_fd = 1777;
    say("P2 fd 1777 is not open", "%s", yesno(fcntl(closed_fd, F_GETFD) == -1 && errno == EBADF));
    struct pollfd f[3] = { { closed_fd, POLLIN, 0 }, { p[0], POLLIN, 0 } };
    int64_t t0 = mono_ns();
    rc = poll(f, 2, 1000);
    say("P2 poll on a closed fd and an empty pipe, timeout 1 s", "%d at once: %s; revents %s, %s", rc,
        yesno(mono_ns() - t0 < 500 * MS), evname(f[0].revents), evname(f[1].revents));

    write(p[1], "x", 1);
    struct pollfd g[3] = { { -1, POLLIN, 0 }, { p[0], POLLIN, 0 }, { -5, POLLIN | POLLOUT, 0 } };
    rc = poll(g, 3, 1000);
    say("P2 poll with fds -1 and -5 around a readable pipe", "%d; revents %s, %s, %s", rc, evname(g[0].revents),
        evname(g[1].revents), evname(g[2].revents));
    drain_fd(p[0]);
    struct pollfd neg = { -1, POLLIN, 0 };
    t0 = mono_ns();
    rc = poll(&neg, 1, 150);
    double ms = (mono_ns() - t0) / 1e6;
    say("P2 poll with only fd -1, timeout 150 ms", "%d after >= 150 ms: %s", rc, yesno(ms >= 149.5));
    t0 = mono_ns();
    rc = poll(NULL, 0, 150);
    ms = (mono_ns() - t0) / 1e6;
    say("P2 poll(NULL, 0, 150)", "%d after >= 150 ms: %s, within 2 s: %s", rc, yesno(ms >= 149.5), yesno(ms < 2000));
    struct timeval tv = { 0, 150000 };
    t0 = mono_ns();
    rc = select(0, NULL, NULL, NULL, &tv);
    ms = (mono_ns() - t0) / 1e6;
    say("P2 select(0, NULL, NULL, NULL, 150 ms)", "%d after >= 150 ms: %s, within 2 s: %s", rc, yesno(ms >= 149.5),
        yesno(ms < 2000));
    struct timespec ts = ts_of(150);
    t0 = mono_ns();
    rc = ppoll(NULL, 0, &ts, NULL);
    ms = (mono_ns() - t0) / 1e6;
    say("P2 ppoll(NULL, 0, 150 ms)", "%d after >= 150 ms: %s", rc, yesno(ms >= 149.5));

    /* a just-closed number (select ignores numbers beyond the fd table's current size) */
    mkpipe(q);
    int low_closed = q[0];
    close(q[0]);
    close(q[1]);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(low_closed, &r);
    tv = (struct timeval){ 1, 0 };
    errno = 0;
    t0 = mono_ns();
    rc = select(low_closed + 1, &r, NULL, NULL, &tv);
    say("P2 select on a just-closed fd", "%s at once: %s", res(rc, errno), yesno(mono_ns() - t0 < 500 * MS));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN }, out[4];
    errno = 0;
    rc = epoll_ctl(ep, EPOLL_CTL_ADD, closed_fd, &ev);
    say("P2 epoll_ctl ADD of a closed fd", "%s", res(rc, errno));
    int dfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int regfile = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    errno = 0;
    rc = epoll_ctl(ep, EPOLL_CTL_ADD, regfile, &ev);
    say("P2 epoll_ctl ADD of a /proc file", "%s", res(rc, errno));
    errno = 0;
    rc = epoll_wait(dfd, out, 4, 100);
    say("P2 epoll_wait on /dev/null (not an epoll fd)", "%s", res(rc, errno));
    errno = 0;
    rc = epoll_wait(closed_fd, out, 4, 100);
    say("P2 epoll_wait on a closed fd", "%s", res(rc, errno));
    errno = 0;
    rc = epoll_wait(ep, out, 0, 100);
    say("P2 epoll_wait with maxevents 0", "%s", res(rc, errno));
    close(regfile);
    struct pollfd nf = { dfd, POLLIN | POLLOUT, 0 };
    rc = poll(&nf, 1, 1000);
    say("P2 poll on /dev/null", "%d %s", rc, evname(nf.revents));
    close(dfd);

    /* POLLHUP: the writer closed; with data still there too */
    mkpipe(q);
    close(q[1]);
    struct pollfd h = { q[0], POLLIN, 0 };
    rc = poll(&h, 1, 1000);
    say("P2 poll on a pipe whose writer closed", "%d %s", rc, evname(h.revents));
    close(q[0]);
    mkpipe(q);
    write(q[1], "y", 1);
    close(q[1]);
    h = (struct pollfd){ q[0], POLLIN, 0 };
    rc = poll(&h, 1, 1000);
    say("P2 poll on a pipe with data whose writer closed", "%d %s", rc, evname(h.revents));
    close(q[0]);
    mkpipe(q);
    close(q[0]);
    h = (struct pollfd){ q[1], POLLOUT, 0 };
    rc = poll(&h, 1, 1000);
    say("P2 poll for POLLOUT on a pipe whose reader closed", "%d %s", rc, evname(h.revents));
    close(q[1]);

    /* POLLRDHUP after the peer's shutdown(SHUT_WR), woken while waiting */
    int c, s;
    tcp_pair(&c, &s);
    struct waiter w;
    waiter_start(&w, PK_POLL, c, POLLIN | POLLRDHUP, 3000, 100);
    shutdown(s, SHUT_WR);
    int ok = waiter_join(&w, 6000);
    say("P2 poll(POLLIN|POLLRDHUP) on TCP, the peer shuts down writing 100 ms later", "%s %s, woken by it: %s",
        ok ? res(w.bg.rc, w.bg.err) : "still waiting", evname(w.rev), yesno(ok && waiter_ms(&w) < 1500));
    if (!ok)
        waiter_join(&w, 5000);
    close(c);
    close(s);

    /* a listener's POLLIN when a connection arrives */
    struct sockaddr_in a;
    int l = make_listener(&a, 0, 16);
    waiter_start(&w, PK_POLL, l, POLLIN, 3000, 100);
    int cl = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    connect(cl, (struct sockaddr *)&a, sizeof a);
    ok = waiter_join(&w, 6000);
    say("P2 poll on a listener, a connect 100 ms later", "%s %s, woken by it: %s",
        ok ? res(w.bg.rc, w.bg.err) : "still waiting", evname(w.rev), yesno(ok && waiter_ms(&w) < 1500));
    if (!ok)
        waiter_join(&w, 5000);
    close(cl);
    close(l);

    /* POLLOUT on a full socket, woken when the peer drains it */
    int sv[2];
    unix_pair(sv, 0);
    long filled = fill(sv[0], 1);
    rc = poll(&(struct pollfd){ sv[0], POLLOUT, 0 }, 1, 0);
    say("P2 poll(POLLOUT, 0) on a full socket pair", "%d", rc);
    waiter_start(&w, PK_POLL, sv[0], POLLOUT, 3000, 100);
    char *buf = malloc((size_t)filled);
    long got = 0;
    while (got < filled) {
        ssize_t r = recv(sv[1], buf, (size_t)(filled - got), MSG_DONTWAIT);
        if (r <= 0)
            break;
        got += r;
    }
    free(buf);
    ok = waiter_join(&w, 6000);
    say("P2 poll(POLLOUT) on a full socket pair, the peer drains it 100 ms later", "%s %s, woken by it: %s",
        ok ? res(w.bg.rc, w.bg.err) : "still waiting", evname(w.rev), yesno(ok && waiter_ms(&w) < 1500));
    if (!ok)
        waiter_join(&w, 5000);
    close(sv[0]);
    close(sv[1]);

    /* epoll: level-triggered, edge-triggered, one-shot, maxevents */
    int lt[2], et[2], os[2];
    mkpipe(lt);
    mkpipe(et);
    mkpipe(os);
    struct epoll_event e1 = { .events = EPOLLIN, .data.u32 = 1 }, e2 = { .events = EPOLLIN | EPOLLET, .data.u32 = 2 },
                       e3 = { .events = EPOLLIN | EPOLLONESHOT, .data.u32 = 3 };
    epoll_ctl(ep, EPOLL_CTL_ADD, lt[0], &e1);
    epoll_ctl(ep, EPOLL_CTL_ADD, et[0], &e2);
    epoll_ctl(ep, EPOLL_CTL_ADD, os[0], &e3);
    write(lt[1], "a", 1);
    write(et[1], "b", 1);
    write(os[1], "c", 1);
    int seen[3][4];
    memset(seen, 0, sizeof seen);
    for (int round = 0; round < 3; round++) {
        memset(out, 0, sizeof out);
        rc = epoll_wait(ep, out, 4, round == 0 ? 1000 : 0);
        for (int i = 0; i < rc; i++)
            if (out[i].data.u32 >= 1 && out[i].data.u32 <= 3)
                seen[round][out[i].data.u32]++;
        seen[round][0] = rc;
        if (round == 1) { /* new data on all three */
            write(lt[1], "a", 1);
            write(et[1], "b", 1);
            write(os[1], "c", 1);
        }
    }
    say("P2 epoll, one level-triggered, one EPOLLET and one EPOLLONESHOT pipe with data",
        "1st wait: %d (LT %d, ET %d, ONESHOT %d); 2nd: %d (%d, %d, %d); after more data: %d (%d, %d, %d)",
        seen[0][0], seen[0][1], seen[0][2], seen[0][3], seen[1][0], seen[1][1], seen[1][2], seen[1][3], seen[2][0],
        seen[2][1], seen[2][2], seen[2][3]);
    e3.events = EPOLLIN | EPOLLONESHOT;
    epoll_ctl(ep, EPOLL_CTL_MOD, os[0], &e3);
    rc = epoll_wait(ep, out, 1, 1000);
    say("P2 epoll, maxevents 1 with three ready (after re-arming the one-shot)", "%d", rc);
    close(lt[0]);
    close(lt[1]);
    close(et[0]);
    close(et[1]);
    close(os[0]);
    close(os[1]);

    /* edge-triggered wait woken by new data from another thread */
    mkpipe(q);
    int ep2 = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event e4 = { .events = EPOLLIN | EPOLLET, .data.u32 = 4 };
    epoll_ctl(ep2, EPOLL_CTL_ADD, q[0], &e4);
    write(q[1], "1", 1);
    int r1 = epoll_wait(ep2, out, 4, 1000);
    int r2 = epoll_wait(ep2, out, 4, 0);
    /* another thread writes after 100 ms; this thread waits on the epoll fd (nested in nothing) */
    struct waiter ww;
    waiter_start(&ww, PK_POLL, ep2, POLLIN, 3000, 0); /* poll on the epoll fd itself */
    sleep_ms(100);
    int was = !ATOMIC_LOAD(&ww.bg.done);
    write(q[1], "2", 1);
    ok = waiter_join(&ww, 6000);
    int r3 = epoll_wait(ep2, out, 4, 0);
    say("P2 EPOLLET pipe: wait, wait again, then poll on the epoll fd until new data",
        "%d, %d; poll on the epoll fd waiting: %s, then %s %s; epoll_wait %d", r1, r2, yesno(was),
        ok ? res(ww.bg.rc, ww.bg.err) : "still waiting", evname(ww.rev), r3);
    if (!ok)
        waiter_join(&ww, 5000);

    /* an epoll fd inside an epoll fd, woken by data */
    int outer = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event eo = { .events = EPOLLIN, .data.u32 = 9 };
    epoll_ctl(outer, EPOLL_CTL_ADD, ep2, &eo);
    drain_fd(q[0]);
    rc = epoll_wait(outer, out, 4, 0);
    fprintf(stderr, "outer epoll before data: %d\n", rc);
    waiter_start(&ww, PK_EPOLL_WAIT, outer, POLLIN, 3000, 100);
    write(q[1], "3", 1);
    ok = waiter_join(&ww, 6000);
    say("P2 epoll_wait on an epoll fd that holds an epoll fd, data 100 ms later", "%s %s, woken by it: %s",
        ok ? res(ww.bg.rc, ww.bg.err) : "still waiting", evname(ww.rev), yesno(ok && waiter_ms(&ww) < 1500));
    if (!ok)
        waiter_join(&ww, 5000);
    close(outer);
    close(ep2);
    close(q[0]);
    close(q[1]);
    close(ep);

    /* fd 1500 */
    int hi = dup3(p[0], 1500, O_CLOEXEC);
    say("P2 dup3 of a pipe's read end onto fd 1500", "%s", res(hi, errno));
    if (hi == 1500) {
        for (int k = 0; k < PK_COUNT; k++) {
            if (k == PK_SELECT || k == PK_PSELECT)
                continue; /* FD_SETSIZE is 1024 */
            struct waiter w2;
            waiter_start(&w2, k, 1500, POLLIN, 3000, 100);
            write(p[1], "h", 1);
            ok = waiter_join(&w2, 6000);
            char label[120];
            snprintf(label, sizeof label, "P2 %s on fd 1500, data 100 ms later", pk_name[k]);
            say(label, "%s %s, woken by it: %s", ok ? res(w2.bg.rc, w2.bg.err) : "still waiting", evname(w2.rev),
                yesno(ok && waiter_ms(&w2) < 1500));
            if (!ok)
                waiter_join(&w2, 5000);
            rc = (int)read(1500, b, sizeof b);
        }
        close(1500);
    }
    close(p[0]);
    close(p[1]);
}

/* ------------------------------------------------------------------ P3: signals */

struct masked_waiter {
    int kind, fd;
    int rc, err, ready, go, done, handled_before;
    int64_t t0, t1;
    pthread_t th;
};

/* Blocks SIGUSR1, waits until main has sent it, then waits with a mask that unblocks it. */
static void *masked_body(void *arg)
{
    struct masked_waiter *m = arg;
    sigset_t block, empty;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigemptyset(&empty);
    pthread_sigmask(SIG_BLOCK, &block, NULL);
    ATOMIC_STORE(&m->ready, 1);
    while (!ATOMIC_LOAD(&m->go))
        sleep_ms(1);
    m->handled_before = ATOMIC_LOAD(&usr1_count);
    m->t0 = mono_ns();
    errno = 1234;
    struct pollfd p = { m->fd, POLLIN, 0 };
    struct timespec ts = ts_of(3000);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(m->fd, &r);
    struct epoll_event ev = { .events = EPOLLIN }, out;
    int ep = -1;
    switch (m->kind) {
    case PK_PPOLL: m->rc = ppoll(&p, 1, &ts, &empty); break;
    case PK_PSELECT: m->rc = pselect(m->fd + 1, &r, NULL, NULL, &ts, &empty); break;
    case PK_EPOLL_PWAIT:
    case PK_EPOLL_PWAIT2:
        ep = epoll_create1(EPOLL_CLOEXEC);
        epoll_ctl(ep, EPOLL_CTL_ADD, m->fd, &ev);
        m->rc = m->kind == PK_EPOLL_PWAIT ? epoll_pwait(ep, &out, 1, 3000, &empty)
                                          : epoll_pwait2(ep, &out, 1, &ts, &empty);
        break;
    }
    m->err = errno;
    m->t1 = mono_ns();
    if (ep >= 0)
        close(ep);
    pthread_sigmask(SIG_UNBLOCK, &block, NULL);
    ATOMIC_STORE(&m->done, 1);
    return NULL;
}

static void case_signals(void)
{
    char label[160];
    for (int restart = 0; restart < 2; restart++) {
        for (int k = 0; k < PK_COUNT; k++) {
            int p[2];
            mkpipe(p);
            count_usr1(restart);
            ATOMIC_STORE(&usr1_count, 0);
            struct waiter w;
            waiter_start(&w, k, p[0], POLLIN, 3000, 100);
            int was = !ATOMIC_LOAD(&w.bg.done);
            pthread_kill(w.bg.th, SIGUSR1);
            int ok = waiter_join(&w, 6000);
            snprintf(label, sizeof label, "P3 %s (timeout 3 s), a signal with%s SA_RESTART 100 ms in", pk_name[k],
                     restart ? "" : "out");
            say(label, "waiting: %s; %s, at the signal: %s; handler ran %d time(s)", yesno(was),
                ok ? res(w.bg.rc, w.bg.err) : "still waiting", yesno(ok && waiter_ms(&w) < 1500), ATOMIC_LOAD(&usr1_count));
            if (!ok)
                waiter_join(&w, 5000);
            close(p[0]);
            close(p[1]);
        }
    }
    /* a pending blocked signal, unblocked by the call's mask */
    static const int kinds[] = { PK_PPOLL, PK_PSELECT, PK_EPOLL_PWAIT, PK_EPOLL_PWAIT2 };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        int p[2];
        mkpipe(p);
        count_usr1(1);
        ATOMIC_STORE(&usr1_count, 0);
        struct masked_waiter m = { .kind = kinds[i], .fd = p[0] };
        pthread_create(&m.th, NULL, masked_body, &m);
        wait_at_least(&m.ready, 1, 1, 5000);
        pthread_kill(m.th, SIGUSR1);
        sleep_ms(50);
        int before = ATOMIC_LOAD(&usr1_count);
        ATOMIC_STORE(&m.go, 1);
        int ok = wait_at_least(&m.done, 1, 1, 6000);
        if (ok)
            pthread_join(m.th, NULL);
        snprintf(label, sizeof label, "P3 %s with a mask unblocking a pending SIGUSR1", pk_name[kinds[i]]);
        say(label, "handler ran before: %d; %s at once: %s; handler ran %d time(s)", before,
            ok ? res(m.rc, m.err) : "still waiting", yesno(ok && m.t1 - m.t0 < 1500 * MS), ATOMIC_LOAD(&usr1_count));
        close(p[0]);
        close(p[1]);
    }
    signal(SIGUSR1, SIG_IGN);
}

/* ------------------------------------------------------------------ P4: many waiters */

static void case_many(void)
{
    enum { N = 16, SAME = 8, EPW = 4 };
    int p[N][2];
    struct waiter w[N];
    for (int i = 0; i < N; i++) {
        mkpipe(p[i]);
        waiter_start(&w[i], i % 2 ? PK_EPOLL_WAIT : PK_POLL, p[i][0], POLLIN, 3000, 0);
    }
    sleep_ms(100);
    int waiting = 0;
    for (int i = 0; i < N; i++)
        waiting += !ATOMIC_LOAD(&w[i].bg.done);
    for (int i = N - 1; i >= 0; i--)
        write(p[i][1], "m", 1);
    int woke = 0, ready = 0;
    for (int i = 0; i < N; i++) {
        if (waiter_join(&w[i], 6000)) {
            woke += waiter_ms(&w[i]) < 1500;
            ready += w[i].bg.rc == 1 && (w[i].rev & POLLIN);
        }
    }
    say("P4 16 threads in poll/epoll_wait (3 s) on 16 pipes, written in reverse order",
        "waiting: %d; returned 1 with IN: %d; woken by the data: %d", waiting, ready, woke);
    for (int i = 0; i < N; i++) {
        close(p[i][0]);
        close(p[i][1]);
    }

    int q[2];
    mkpipe(q);
    for (int i = 0; i < SAME; i++)
        waiter_start(&w[i], i % 3 == 2 ? PK_SELECT : PK_POLL, q[0], POLLIN, 3000, 0);
    sleep_ms(100);
    waiting = 0;
    for (int i = 0; i < SAME; i++)
        waiting += !ATOMIC_LOAD(&w[i].bg.done);
    write(q[1], "s", 1);
    woke = ready = 0;
    for (int i = 0; i < SAME; i++) {
        if (waiter_join(&w[i], 6000)) {
            woke += waiter_ms(&w[i]) < 1500;
            ready += w[i].bg.rc == 1 && (w[i].rev & POLLIN);
        }
    }
    say("P4 8 threads in poll/select (3 s) on one pipe, one byte written", "waiting: %d; returned 1 with IN: %d; "
        "woken by the data: %d",
        waiting, ready, woke);
    close(q[0]);
    close(q[1]);

    /* 4 threads in epoll_wait on one epoll fd (level-triggered), one byte written */
    mkpipe(q);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN };
    epoll_ctl(ep, EPOLL_CTL_ADD, q[0], &ev);
    for (int i = 0; i < EPW; i++)
        waiter_start(&w[i], PK_POLL, ep, POLLIN, 3000, 0);
    sleep_ms(100);
    waiting = 0;
    for (int i = 0; i < EPW; i++)
        waiting += !ATOMIC_LOAD(&w[i].bg.done);
    write(q[1], "e", 1);
    woke = ready = 0;
    for (int i = 0; i < EPW; i++) {
        if (waiter_join(&w[i], 6000)) {
            woke += waiter_ms(&w[i]) < 1500;
            ready += w[i].bg.rc == 1 && (w[i].rev & POLLIN);
        }
    }
    say("P4 4 threads in poll (3 s) on one epoll fd, one byte written to its pipe",
        "waiting: %d; returned 1 with IN: %d; woken by the data: %d", waiting, ready, woke);
    close(ep);
    close(q[0]);
    close(q[1]);
}

/* ------------------------------------------------------------------ P5: waitpid, system, sendfile, splice */

#define BIG (4u << 20)
static unsigned char *big;

struct feeder {
    int fd, delay_ms, chunks;
    size_t chunk;
    long wrote;
    int done;
    pthread_t th;
};

static void *feeder_body(void *arg)
{
    struct feeder *f = arg;
    for (int k = 0; k < f->chunks; k++) {
        sleep_ms(f->delay_ms);
        ssize_t w = write(f->fd, big + (size_t)k * f->chunk, f->chunk);
        if (w > 0)
            f->wrote += w;
    }
    close(f->fd);
    ATOMIC_STORE(&f->done, 1);
    return NULL;
}

struct sink {
    int fd;
    size_t chunk;
    long want, got;
    int bad, done, delay_ms;
    pthread_t th;
};

static void *sink_body(void *arg)
{
    struct sink *s = arg;
    char *buf = malloc(65536);
    while (s->got < s->want) {
        ssize_t r = read(s->fd, buf, s->chunk ? s->chunk : 65536);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r; i++)
            if ((unsigned char)buf[i] != pat((size_t)(s->got + i), 0)) {
                s->bad++;
                break;
            }
        s->got += r;
        if (s->delay_ms)
            sleep_ms(s->delay_ms);
    }
    free(buf);
    ATOMIC_STORE(&s->done, 1);
    return NULL;
}

static const char *status_str(int st)
{
    static char buf[64];
    if (WIFEXITED(st))
        snprintf(buf, sizeof buf, "exit %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, sizeof buf, "signal %d", WTERMSIG(st));
    else
        snprintf(buf, sizeof buf, "status %#x", st);
    return buf;
}

static void case_processes_and_copies(void)
{
    /* waitpid on a child that first needs 64 KiB from a thread of ours (written 100 ms later) */
    int p[2];
    mkpipe(p);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        /* the child gives up after 3 s (exit 99), so that a parent blocked in waitpid shows as a wrong status */
        long got = 0;
        char buf[4096];
        int64_t deadline = mono_ns() + 3000 * MS;
        while (got < 65536) {
            struct pollfd f = { p[0], POLLIN, 0 };
            long left = (deadline - mono_ns()) / MS;
            if (left <= 0 || poll(&f, 1, (int)left) <= 0)
                _exit(99);
            ssize_t r = read(p[0], buf, sizeof buf);
            if (r <= 0)
                _exit(98);
            got += r;
        }
        _exit(42);
    }
    close(p[0]);
    struct feeder f = { .fd = p[1], .delay_ms = 100, .chunks = 4, .chunk = 16384 };
    pthread_create(&f.th, NULL, feeder_body, &f);
    int st = 0;
    int64_t t0 = mono_ns();
    pid_t w = waitpid(pid, &st, 0);
    double ms = (mono_ns() - t0) / 1e6;
    wait_at_least(&f.done, 1, 2, 5000);
    pthread_join(f.th, NULL);
    fprintf(stderr, "P5 waitpid: %.1f ms\n", ms);
    say("P5 waitpid on a child that reads 64 KiB a thread writes in 4 pieces 100 ms apart", "child %s (42: got it "
        "all)",
        w == pid ? status_str(st) : "not reaped");

    /* system("wc -c") whose stdin a thread writes slowly; `timeout 5` so that it cannot hang */
    mkpipe(p);
    int saved = fcntl(0, F_DUPFD_CLOEXEC, 10);
    dup2(p[0], 0);
    close(p[0]);
    struct feeder g = { .fd = p[1], .delay_ms = 5, .chunks = 16, .chunk = 16384 };
    pthread_create(&g.th, NULL, feeder_body, &g);
    fflush(stdout);
    st = system("n=$(timeout 5 wc -c); echo \"P5 system(wc -c) with stdin written slowly by a thread: read $n "
                "bytes\"");
    dup2(saved, 0);
    close(saved);
    int fed = wait_at_least(&g.done, 1, 2, 10000);
    if (fed)
        pthread_join(g.th, NULL);
    say("P5 system(wc -c)", "%s; the thread wrote %ld", status_str(st), g.wrote);

    /* sendfile of 4 MiB from a file to a socket read slowly (SO_SNDTIMEO 5 s bounds a blocked worker) */
    char path[] = "/tmp/asyncshim-io-poll-XXXXXX";
    int tf = mkstemp(path);
    if (tf >= 0) {
        unlink(path);
        size_t off = 0;
        while (off < BIG) {
            ssize_t wr = write(tf, big + off, BIG - off);
            if (wr <= 0)
                break;
            off += (size_t)wr;
        }
        int c, s;
        tcp_pair(&c, &s);
        struct timeval tv = { 5, 0 };
        setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        struct sink sk = { .fd = s, .want = BIG, .delay_ms = 1, .chunk = 16384 };
        pthread_create(&sk.th, NULL, sink_body, &sk);
        off_t fo = 0;
        t0 = mono_ns();
        errno = 1234;
        ssize_t rc = sendfile(c, tf, &fo, BIG);
        int e = errno;
        ms = (mono_ns() - t0) / 1e6;
        int done = wait_at_least(&sk.done, 1, 2, 10000);
        if (!done) {
            shutdown(s, SHUT_RDWR);
            wait_at_least(&sk.done, 1, 2, 5000);
        }
        pthread_join(sk.th, NULL);
        fprintf(stderr, "P5 sendfile: %.1f ms\n", ms);
        say("P5 sendfile of 4 MiB from a file to a TCP socket read slowly by a thread (SO_SNDTIMEO 5 s)",
            "%s, offset now %ld, within 3 s: %s, the reader got every byte: %s", res(rc, e), (long)fo,
            yesno(ms < 3000), yesno(sk.got == BIG && !sk.bad));
        close(c);
        close(s);
        close(tf);
    }

    /* splice: socket -> pipe waits for data a thread sends 100 ms later; pipe -> socket read by a thread */
    int c, s, q[2];
    tcp_pair(&c, &s);
    struct timeval tv = { 3, 0 };
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    mkpipe(q);
    struct feeder h = { .fd = dup(c), .delay_ms = 100, .chunks = 1, .chunk = 1000 };
    pthread_create(&h.th, NULL, feeder_body, &h);
    t0 = mono_ns();
    errno = 1234;
    ssize_t rc = splice(s, NULL, q[1], NULL, 4096, 0);
    int e = errno;
    ms = (mono_ns() - t0) / 1e6;
    wait_at_least(&h.done, 1, 2, 5000);
    pthread_join(h.th, NULL);
    char buf[4096];
    ssize_t r = rc > 0 ? read(q[0], buf, sizeof buf) : 0;
    say("P5 splice from a TCP socket (SO_RCVTIMEO 3 s) into a pipe, data sent 100 ms later by a thread",
        "%s after the data (< 2 s): %s; the pipe holds it: %s", res(rc, e), yesno(ms < 2000),
        yesno(r == 1000 && memcmp(buf, big, 1000) == 0));
    close(c);
    close(s);

    /* the pipe is written by a child process (not a thread of ours: a pipe has no timeout), the socket is
     * read slowly by a thread (SO_SNDTIMEO 5 s bounds a blocked worker) */
    close(q[1]);
    close(q[0]);
    mkpipe(q);
    fflush(stdout);
    pid_t writer = fork();
    if (writer == 0) {
        close(q[0]);
        size_t off = 0;
        while (off < BIG) {
            ssize_t wr = write(q[1], big + off, BIG - off > 65536 ? 65536 : BIG - off);
            if (wr <= 0)
                _exit(1);
            off += (size_t)wr;
        }
        _exit(0);
    }
    close(q[1]);
    tcp_pair(&c, &s);
    tv = (struct timeval){ 5, 0 };
    setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sink sk = { .fd = s, .want = BIG, .delay_ms = 1, .chunk = 16384 };
    pthread_create(&sk.th, NULL, sink_body, &sk);
    long moved = 0;
    int splice_err = 0;
    t0 = mono_ns();
    while (moved < (long)BIG) {
        ssize_t n = splice(q[0], NULL, c, NULL, BIG - (size_t)moved, SPLICE_F_MORE);
        if (n <= 0) {
            splice_err = n < 0 ? errno : 0;
            break;
        }
        moved += n;
    }
    ms = (mono_ns() - t0) / 1e6;
    int ok = wait_at_least(&sk.done, 1, 2, 10000);
    if (!ok)
        shutdown(s, SHUT_RDWR);
    wait_at_least(&sk.done, 1, 2, 5000);
    pthread_join(sk.th, NULL);
    close(q[0]); /* a writer left with unread data gets EPIPE and ends */
    int wst = 0;
    pid_t wr = waitpid(writer, &wst, 0);
    fprintf(stderr, "P5 splice pipe->socket: %.1f ms\n", ms);
    say("P5 splice of 4 MiB from a pipe (written by a child) into a TCP socket (read slowly by a thread)",
        "moved %ld, error %s, within 3 s: %s; the reader got every byte: %s; writer %s", moved, en(splice_err),
        yesno(ms < 3000), yesno(sk.got == BIG && !sk.bad), wr == writer ? status_str(wst) : "not reaped");
    close(c);
    close(s);
}

/* ------------------------------------------------------------------ P6: infinite timeouts */

static void case_infinite(void)
{
    char label[160];
    for (int k = 0; k < PK_COUNT; k++) {
        int p[2];
        mkpipe(p);
        struct waiter w;
        waiter_start(&w, k, p[0], POLLIN, -1, 100);
        int was = !ATOMIC_LOAD(&w.bg.done);
        write(p[1], "i", 1);
        int ok = waiter_join(&w, 10000);
        snprintf(label, sizeof label, "P6 %s with no timeout, data written 100 ms later by another thread", pk_name[k]);
        say(label, "waiting: %s; %s %s", yesno(was), ok ? res(w.bg.rc, w.bg.err) : "still waiting", evname(w.rev));
        if (!ok) /* cannot be woken otherwise; the process exits with it */
            continue;
        close(p[0]);
        close(p[1]);
    }
}

/* ------------------------------------------------------------------ P7: event loops */

#define LOOP_CLIENTS 8
#define LOOP_MSGS 40

static const size_t loop_sizes[] = { 1, 3, 64, 512, 1000, 4096, 8000, 16384, 20000, 32768 };
#define NSIZES (sizeof loop_sizes / sizeof loop_sizes[0])

struct conn {
    int fd;
    unsigned char *buf; /* bytes read and not yet echoed */
    size_t len, cap;
    int want_out;
};

struct loop {
    int use_epoll;
    int listen_fd, stop_fd, timer_fd;
    int accepted, closed, errors, wakeups, ticks, partial_writes;
    long long echoed;
    int done;
    pthread_t th;
};

/* Reads what is there and echoes what it can without blocking; 1 when the connection is finished. */
static int serve(struct loop *lp, struct conn *c)
{
    for (;;) {
        if (c->len == c->cap) {
            c->cap = c->cap ? c->cap * 2 : 65536;
            c->buf = realloc(c->buf, c->cap);
        }
        ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len);
        if (r > 0) {
            c->len += (size_t)r;
            continue;
        }
        if (r == 0) {
            if (c->len == 0)
                return 1;
            break;
        }
        if (errno == EAGAIN)
            break;
        if (errno == EINTR)
            continue;
        lp->errors++;
        return 1;
    }
    size_t off = 0;
    while (off < c->len) {
        ssize_t w = write(c->fd, c->buf + off, c->len - off);
        if (w > 0) {
            off += (size_t)w;
            lp->echoed += w;
            continue;
        }
        if (w < 0 && errno == EAGAIN) {
            lp->partial_writes++;
            break;
        }
        if (w < 0 && errno == EINTR)
            continue;
        lp->errors++;
        return 1;
    }
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
    c->want_out = c->len > 0;
    return 0;
}

static void *loop_body(void *arg)
{
    struct loop *lp = arg;
    struct conn *conns = calloc(4096, sizeof *conns); /* by fd */
    struct pollfd *pf = calloc(LOOP_CLIENTS + 8, sizeof *pf);
    int ep = -1;
    if (lp->use_epoll) {
        ep = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = lp->listen_fd };
        epoll_ctl(ep, EPOLL_CTL_ADD, lp->listen_fd, &ev);
        ev.data.fd = lp->stop_fd;
        epoll_ctl(ep, EPOLL_CTL_ADD, lp->stop_fd, &ev);
        ev.data.fd = lp->timer_fd;
        epoll_ctl(ep, EPOLL_CTL_ADD, lp->timer_fd, &ev);
    }
    int open_fds[LOOP_CLIENTS + 8], nopen = 0;
    for (int stop = 0; !stop;) {
        int ready[LOOP_CLIENTS + 8], nready = 0;
        if (lp->use_epoll) {
            struct epoll_event evs[LOOP_CLIENTS + 8];
            int n = epoll_wait(ep, evs, LOOP_CLIENTS + 8, -1);
            if (n < 0) {
                if (errno != EINTR)
                    lp->errors++;
                continue;
            }
            for (int i = 0; i < n; i++)
                ready[nready++] = evs[i].data.fd;
        } else {
            int n = 0;
            pf[n++] = (struct pollfd){ lp->listen_fd, POLLIN, 0 };
            pf[n++] = (struct pollfd){ lp->stop_fd, POLLIN, 0 };
            pf[n++] = (struct pollfd){ lp->timer_fd, POLLIN, 0 };
            for (int i = 0; i < nopen; i++)
                pf[n++] = (struct pollfd){ open_fds[i], (short)(POLLIN | (conns[open_fds[i]].want_out ? POLLOUT : 0)), 0 };
            int r = poll(pf, (nfds_t)n, -1);
            if (r < 0) {
                if (errno != EINTR)
                    lp->errors++;
                continue;
            }
            for (int i = 0; i < n; i++)
                if (pf[i].revents)
                    ready[nready++] = pf[i].fd;
        }
        lp->wakeups++;
        for (int i = 0; i < nready; i++) {
            int fd = ready[i];
            if (fd == lp->stop_fd) {
                stop = 1;
            } else if (fd == lp->timer_fd) {
                uint64_t exp;
                if (read(lp->timer_fd, &exp, sizeof exp) == sizeof exp)
                    lp->ticks += (int)exp;
            } else if (fd == lp->listen_fd) {
                for (;;) {
                    int a = accept4(lp->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (a < 0)
                        break;
                    if (a >= 4096 || nopen == LOOP_CLIENTS + 8) {
                        close(a);
                        lp->errors++;
                        continue;
                    }
                    lp->accepted++;
                    conns[a] = (struct conn){ .fd = a };
                    open_fds[nopen++] = a;
                    if (lp->use_epoll) {
                        struct epoll_event ev = { .events = EPOLLIN, .data.fd = a };
                        epoll_ctl(ep, EPOLL_CTL_ADD, a, &ev);
                    }
                }
            } else {
                struct conn *c = &conns[fd];
                int had_out = c->want_out;
                if (serve(lp, c)) {
                    if (lp->use_epoll)
                        epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
                    close(fd);
                    free(c->buf);
                    memset(c, 0, sizeof *c);
                    for (int j = 0; j < nopen; j++)
                        if (open_fds[j] == fd) {
                            open_fds[j] = open_fds[--nopen];
                            break;
                        }
                    lp->closed++;
                } else if (lp->use_epoll && had_out != c->want_out) {
                    struct epoll_event ev = { .events = EPOLLIN | (c->want_out ? EPOLLOUT : 0), .data.fd = fd };
                    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
                }
            }
        }
    }
    for (int j = 0; j < nopen; j++) {
        close(open_fds[j]);
        free(conns[open_fds[j]].buf);
    }
    if (ep >= 0)
        close(ep);
    free(conns);
    free(pf);
    ATOMIC_STORE(&lp->done, 1);
    return NULL;
}

struct loop_client {
    struct sockaddr_in addr;
    int id, ok_msgs, bad, done;
    long long bytes;
    pthread_t th;
};

static void *loop_client_body(void *arg)
{
    struct loop_client *cl = arg;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(fd, (struct sockaddr *)&cl->addr, sizeof cl->addr) != 0) {
        cl->bad++;
        close(fd);
        ATOMIC_STORE(&cl->done, 1);
        return NULL;
    }
    unsigned char *rbuf = malloc(32768);
    for (int j = 0; j < LOOP_MSGS; j++) {
        size_t n = loop_sizes[(size_t)(j + cl->id) % NSIZES];
        const unsigned char *src = big + ((size_t)cl->id * 7919 + (size_t)j * 4099) % (BIG - 32768);
        size_t off = 0;
        while (off < n) {
            ssize_t w = send(fd, src + off, n - off, 0);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        ssize_t r = recv(fd, rbuf, n, MSG_WAITALL);
        if (off != n || r != (ssize_t)n || memcmp(rbuf, src, n) != 0) {
            fprintf(stderr, "loop client %d message %d: sent %zu, got %zd\n", cl->id, j, off, r);
            cl->bad++;
            break;
        }
        cl->ok_msgs++;
        cl->bytes += (long long)n;
    }
    free(rbuf);
    close(fd);
    ATOMIC_STORE(&cl->done, 1);
    return NULL;
}

static void run_loop(int use_epoll)
{
    const char *label = use_epoll ? "P7 epoll loop thread (timerfd, eventfd stop, EPOLLOUT), 8 client threads"
                                  : "P7 poll loop thread (timerfd, eventfd stop, POLLOUT), 8 client threads";
    struct loop lp;
    memset(&lp, 0, sizeof lp);
    lp.use_epoll = use_epoll;
    struct sockaddr_in a;
    lp.listen_fd = make_listener(&a, SOCK_NONBLOCK, 64);
    lp.stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    lp.timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct itimerspec its = { { 0, 50 * 1000000L }, { 0, 50 * 1000000L } };
    timerfd_settime(lp.timer_fd, 0, &its, NULL);
    int64_t t0 = mono_ns();
    pthread_create(&lp.th, NULL, loop_body, &lp);
    struct loop_client cl[LOOP_CLIENTS];
    for (int i = 0; i < LOOP_CLIENTS; i++) {
        cl[i] = (struct loop_client){ .addr = a, .id = i };
        pthread_create(&cl[i].th, NULL, loop_client_body, &cl[i]);
    }
    int all = 1;
    for (int i = 0; i < LOOP_CLIENTS; i++) {
        if (wait_at_least(&cl[i].done, 1, 2, 30000))
            pthread_join(cl[i].th, NULL);
        else
            all = 0;
    }
    /* let the loop see every close, and at least a few timer ticks */
    int64_t deadline = mono_ns() + 5000 * MS;
    while ((ATOMIC_LOAD(&lp.closed) < LOOP_CLIENTS || ATOMIC_LOAD(&lp.ticks) < 3) && mono_ns() < deadline)
        sleep_ms(5);
    double ms = (mono_ns() - t0) / 1e6;
    uint64_t one = 1;
    write(lp.stop_fd, &one, sizeof one);
    int stopped = wait_at_least(&lp.done, 1, 2, 5000);
    if (stopped)
        pthread_join(lp.th, NULL);
    int msgs = 0, bad = 0;
    long long bytes = 0;
    for (int i = 0; i < LOOP_CLIENTS; i++) {
        msgs += cl[i].ok_msgs;
        bad += cl[i].bad;
        bytes += cl[i].bytes;
    }
    fprintf(stderr, "%s: %.1f ms, %d wakeups, %d ticks, %d partial writes, echoed %lld\n", label, ms, lp.wakeups,
            lp.ticks, lp.partial_writes, lp.echoed);
    say(label, "clients done: %s; messages verified %d of %d, bytes %lld; loop accepted %d, saw %d closes, "
        "errors %d, echoed %lld; timer ticked (>= 3): %s; stopped by the eventfd: %s",
        yesno(all), msgs, LOOP_CLIENTS * LOOP_MSGS, bytes, lp.accepted, lp.closed, lp.errors + bad, lp.echoed,
        yesno(lp.ticks >= 3), yesno(stopped));
    close(lp.listen_fd);
    close(lp.stop_fd);
    close(lp.timer_fd);
}

/* P7: the epoll loop, then the poll loop */
static void case_event_loops(void)
{
    run_loop(1);
    run_loop(0);
}

/* ------------------------------------------------------------------ main */

int main(void)
{
    big = io_test_start(BIG);

    static const struct io_case cases[] = {
        { "P1", case_timeouts }, { "P2", case_details },  { "P3", case_signals },
        { "P4", case_many },     { "P5", case_processes_and_copies }, { "P6", case_infinite },
        { "P7", case_event_loops },
    };
    run_cases(cases, sizeof cases / sizeof cases[0]);
    return test_exit_status();
}
