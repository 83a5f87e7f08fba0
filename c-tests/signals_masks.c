/* Signal masks mean what they mean natively. main blocks SIGUSR1 before creating any thread, so every
 * thread starts with it blocked, and:
 * 1. the race-free waits (pselect, ppoll, epoll_pwait, epoll_pwait2, sigsuspend) with an empty mask
 *    take a process-directed (kill) or thread-directed (pthread_kill) SIGUSR1: the handler runs once, in
 *    the waiting thread, and the call returns -1/EINTR; a signal that arrived before the wait ends it at
 *    once;
 * 2. a process-directed signal that every thread blocks stays pending (sigpending shows it, no handler)
 *    until a thread unblocks it (pthread_sigmask, sigprocmask) and then runs in that thread; sigwait,
 *    sigwaitinfo and sigtimedwait take it exactly once; raise() of a blocked signal leaves it pending on
 *    the raising thread only;
 * 3. only a waiter whose mask lets the signal through is interrupted; with SA_RESTART its read() goes
 *    on, its poll() ends with EINTR;
 * 4. the same with 100 readers that block the signal and one thread that does not;
 * 5. when no thread blocks it, a process-directed signal goes to the main thread (Linux's first pick), even
 *    while another thread runs: main's nanosleep or pause ends with EINTR, the handler runs in main;
 *    and while main waits in pthread_join (the handler runs in main, the join goes on); a thread waiting
 *    for a mutex that accepts it runs the handler too, and goes on waiting;
 *    SIGPIPE from a write stays with the writing thread although main accepts it too;
 * 6. the sigwait pattern: every thread blocks SIGTERM (default action: terminate) and one takes it with
 *    sigwait; a SIGTERM sent meanwhile or before stays pending and never kills the process; the same with
 *    a thread reading a signalfd.
 * asyncshim-test: timeout=120 */
#include "test_util.h"
#include "glibc_compat.h"
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

static int handled;
static pthread_t handled_by;

static void on_usr1(int sig)
{
    (void)sig;
    handled_by = pthread_self();
    ATOMIC_ADD(&handled, 1);
}

static const char *yes(int b)
{
    return b ? "yes" : "no";
}

/* Joins within a bound; a thread that does not end in time is a failure (and the test stops). */
static void join_bounded(pthread_t t, const char *what)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10;
    if (pthread_timedjoin_np(t, NULL, &dl) != 0) {
        printf("%s: thread did not end\n", what);
        fflush(stdout);
        _exit(1);
    }
}

static void usr1_mask(int how)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    pthread_sigmask(how, &s, NULL);
}

static int usr1_pending(void)
{
    sigset_t p;
    sigemptyset(&p);
    sigpending(&p);
    return sigismember(&p, SIGUSR1);
}

/* ---- 1. race-free waits ---- */

enum kind { K_PSELECT, K_PPOLL, K_EPOLL_PWAIT, K_EPOLL_PWAIT2, K_SIGSUSPEND, K_COUNT };
static const char *kind_name[] = { "pselect", "ppoll", "epoll_pwait", "epoll_pwait2", "sigsuspend" };

struct waiter {
    int kind;
    int early;      /* the signal is sent before the wait starts */
    int ready, go;  /* handshake */
    int r, err, handled_before;
    int64_t elapsed_ns;
    pthread_t self;
};

static int wait_with_empty_mask(int kind, int rfd, int epfd)
{
    sigset_t empty;
    sigemptyset(&empty);
    struct timespec ts = { 3, 0 };
    switch (kind) {
    case K_PSELECT: {
        fd_set r;
        FD_ZERO(&r);
        FD_SET(rfd, &r);
        return pselect(rfd + 1, &r, NULL, NULL, &ts, &empty);
    }
    case K_PPOLL: {
        struct pollfd p = { rfd, POLLIN, 0 };
        return ppoll(&p, 1, &ts, &empty);
    }
    case K_EPOLL_PWAIT: {
        struct epoll_event ev;
        return epoll_pwait(epfd, &ev, 1, 3000, &empty);
    }
    case K_EPOLL_PWAIT2: {
        struct epoll_event ev;
        return epoll_pwait2(epfd, &ev, 1, &ts, &empty);
    }
    default:
        return sigsuspend(&empty);
    }
}

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    int p[2];
    if (pipe(p) != 0)
        return NULL;
    int epfd = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = p[0] };
    epoll_ctl(epfd, EPOLL_CTL_ADD, p[0], &ev);
    w->self = pthread_self();
    ATOMIC_STORE(&w->ready, 1);
    if (w->early) {
        while (!ATOMIC_LOAD(&w->go))
            sleep_ms(5);
        w->handled_before = ATOMIC_LOAD(&handled);
    }
    int64_t t0 = mono_ns();
    w->r = wait_with_empty_mask(w->kind, p[0], epfd);
    w->err = errno;
    w->elapsed_ns = mono_ns() - t0;
    close(p[0]);
    close(p[1]);
    close(epfd);
    return NULL;
}

static void race_free_wait(int kind, int directed, int early)
{
    char name[160];
    struct waiter w;
    memset(&w, 0, sizeof w);
    w.kind = kind;
    w.early = early;
    ATOMIC_STORE(&handled, 0);
    handled_by = 0;
    pthread_t t;
    pthread_create(&t, NULL, waiter_main, &w);
    wait_at_least(&w.ready, 1, 2, 5000);
    if (!early)
        sleep_ms(150);
    if (directed)
        pthread_kill(t, SIGUSR1);
    else
        kill(getpid(), SIGUSR1);
    if (early) {
        sleep_ms(50);
        ATOMIC_STORE(&w.go, 1);
    }
    snprintf(name, sizeof name, "%s, %s sent %s: ", kind_name[kind], directed ? "pthread_kill" : "kill",
             early ? "before the wait" : "during the wait");
    join_bounded(t, name);
    size_t n = strlen(name);
    if (early) {
        snprintf(name + n, sizeof name - n, "no handler before the wait");
        CHECK(w.handled_before == 0, name);
        name[n] = 0;
    }
    printf("%sreturned %d/%s, handler ran %d time(s), same thread: %s\n", name, w.r, errname(w.err),
           ATOMIC_LOAD(&handled), yes(pthread_equal(handled_by, w.self)));
    fprintf(stderr, "%s%.1f ms\n", name, w.elapsed_ns / 1e6);
    snprintf(name + n, sizeof name - n, "returned promptly");
    CHECK(w.elapsed_ns < 2000000000LL, name);
}

/* ---- 2. pending while every thread blocks it ---- */

struct unblocker {
    int how; /* 0: pthread_sigmask, 1: sigprocmask */
    int go, pending_seen, handled_after;
    pthread_t self;
};

static void *unblocker_main(void *arg)
{
    struct unblocker *u = arg;
    u->self = pthread_self();
    while (!ATOMIC_LOAD(&u->go))
        sleep_ms(5);
    u->pending_seen = usr1_pending();
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    if (u->how == 0)
        pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    else
        sigprocmask(SIG_UNBLOCK, &s, NULL);
    u->handled_after = ATOMIC_LOAD(&handled);
    return NULL;
}

static void pending_until_unblocked(int how)
{
    const char *via = how == 0 ? "pthread_sigmask" : "sigprocmask";
    char name[160];
    ATOMIC_STORE(&handled, 0);
    handled_by = 0;
    struct unblocker u;
    memset(&u, 0, sizeof u);
    u.how = how;
    pthread_t t;
    pthread_create(&t, NULL, unblocker_main, &u);
    kill(getpid(), SIGUSR1);
    sleep_ms(150);
    snprintf(name, sizeof name, "all block (%s case): no handler while blocked", via);
    CHECK(ATOMIC_LOAD(&handled) == 0, name);
    snprintf(name, sizeof name, "all block (%s case): sigpending in main shows it", via);
    CHECK(usr1_pending(), name);
    ATOMIC_STORE(&u.go, 1);
    join_bounded(t, via);
    snprintf(name, sizeof name, "all block (%s case): sigpending in the thread shows it", via);
    CHECK(u.pending_seen, name);
    printf("unblocked with %s: handler ran %d time(s) before it returned, %d in all, same thread: %s\n", via,
           u.handled_after, ATOMIC_LOAD(&handled), yes(pthread_equal(handled_by, u.self)));
    snprintf(name, sizeof name, "after %s unblocked it: nothing pending", via);
    CHECK(!usr1_pending(), name);
}

struct raiser {
    int pending_after_raise, handled_after_raise, handled_after_unblock, go;
    pthread_t self;
};

static void *raiser_main(void *arg)
{
    struct raiser *r = arg;
    r->self = pthread_self();
    raise(SIGUSR1);
    r->pending_after_raise = usr1_pending();
    r->handled_after_raise = ATOMIC_LOAD(&handled);
    while (!ATOMIC_LOAD(&r->go))
        sleep_ms(5);
    usr1_mask(SIG_UNBLOCK);
    r->handled_after_unblock = ATOMIC_LOAD(&handled);
    return NULL;
}

static void *pending_looker_main(void *arg)
{
    int *seen = arg;
    *seen = usr1_pending();
    return NULL;
}

static void raise_blocked(void)
{
    ATOMIC_STORE(&handled, 0);
    handled_by = 0;
    struct raiser r;
    memset(&r, 0, sizeof r);
    pthread_t t, o;
    int other_saw = -1;
    pthread_create(&t, NULL, raiser_main, &r);
    sleep_ms(100);
    pthread_create(&o, NULL, pending_looker_main, &other_saw);
    join_bounded(o, "raise");
    ATOMIC_STORE(&r.go, 1);
    join_bounded(t, "raise");
    printf("raise of a blocked signal: pending in the raiser: %s, in another thread: %s, handler before unblock %d, "
           "after %d, in the raiser: %s\n",
           yes(r.pending_after_raise), yes(other_saw), r.handled_after_raise, r.handled_after_unblock,
           yes(pthread_equal(handled_by, r.self)));
}

enum { W_SIGWAIT, W_SIGWAITINFO, W_SIGTIMEDWAIT, W_SIGTIMEDWAIT_TIMEOUT };
static const char *sigwait_name[] = { "sigwait", "sigwaitinfo", "sigtimedwait", "sigtimedwait (no signal)" };

struct sigwaiter {
    int how, early, ready, go;
    int r, err, sig, code, from_me;
    int64_t elapsed_ns;
};

static void *sigwaiter_main(void *arg)
{
    struct sigwaiter *s = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    siginfo_t info;
    memset(&info, 0, sizeof info);
    struct timespec ts = { s->how == W_SIGTIMEDWAIT_TIMEOUT ? 0 : 3, s->how == W_SIGTIMEDWAIT_TIMEOUT ? 200000000 : 0 };
    ATOMIC_STORE(&s->ready, 1);
    if (s->early)
        while (!ATOMIC_LOAD(&s->go))
            sleep_ms(5);
    int64_t t0 = mono_ns();
    switch (s->how) {
    case W_SIGWAIT:
        s->r = sigwait(&set, &s->sig);
        s->err = s->r;
        info.si_signo = s->sig;
        info.si_code = SI_USER;
        info.si_pid = getpid();
        break;
    case W_SIGWAITINFO:
        s->r = sigwaitinfo(&set, &info);
        s->err = errno;
        break;
    default:
        s->r = sigtimedwait(&set, &info, &ts);
        s->err = errno;
        break;
    }
    s->elapsed_ns = mono_ns() - t0;
    s->sig = info.si_signo;
    s->code = info.si_code;
    s->from_me = info.si_pid == getpid();
    return NULL;
}

static void sigwait_case(int how, int early)
{
    char name[160];
    ATOMIC_STORE(&handled, 0);
    struct sigwaiter s;
    memset(&s, 0, sizeof s);
    s.how = how;
    s.early = early;
    pthread_t t;
    pthread_create(&t, NULL, sigwaiter_main, &s);
    wait_at_least(&s.ready, 1, 2, 5000);
    if (how != W_SIGTIMEDWAIT_TIMEOUT) {
        if (!early)
            sleep_ms(150);
        kill(getpid(), SIGUSR1);
    }
    if (early) {
        sleep_ms(50);
        ATOMIC_STORE(&s.go, 1);
    }
    snprintf(name, sizeof name, "%s, kill sent %s", sigwait_name[how], early ? "before" : "during the wait");
    join_bounded(t, name);
    if (how == W_SIGTIMEDWAIT_TIMEOUT)
        printf("%s: returned %d/%s\n", name, s.r, errname(s.err));
    else
        printf("%s: returned %d (%s), signal %d, si_code %d, from this process: %s\n", name, s.r,
               s.r < 0 ? errname(s.err) : "ok", s.sig, s.code, yes(s.from_me));
    printf("%s: handler ran %d time(s), still pending: %s\n", name, ATOMIC_LOAD(&handled), yes(usr1_pending()));
    fprintf(stderr, "%s: %.1f ms\n", name, s.elapsed_ns / 1e6);
}

/* ---- 3 and 4. only a thread that lets the signal through is interrupted ---- */

enum { C_READ, C_POLL, C_SLEEP };
static const char *call_name[] = { "read", "poll", "nanosleep" };

struct blocked_reader {
    int fd, ready, r, err;
};

static void *blocked_reader_main(void *arg)
{
    struct blocked_reader *b = arg;
    char c;
    ATOMIC_ADD(&b->ready, 1);
    b->r = (int)read(b->fd, &c, 1);
    b->err = errno;
    return NULL;
}

struct taker {
    int call, fd, ready, r, err;
    pthread_t self;
};

static void *taker_main(void *arg)
{
    struct taker *k = arg;
    k->self = pthread_self();
    usr1_mask(SIG_UNBLOCK);
    ATOMIC_STORE(&k->ready, 1);
    char c;
    struct pollfd p = { k->fd, POLLIN, 0 };
    struct timespec ts = { 3, 0 };
    switch (k->call) {
    case C_READ:
        k->r = (int)read(k->fd, &c, 1);
        break;
    case C_POLL:
        k->r = poll(&p, 1, 3000);
        break;
    default:
        k->r = nanosleep(&ts, NULL);
        break;
    }
    k->err = errno;
    return NULL;
}

static void only_the_unblocked(int readers, int call, int restart)
{
    char name[200];
    set_signal_handler(SIGUSR1, on_usr1, restart ? SA_RESTART : 0);
    ATOMIC_STORE(&handled, 0);
    handled_by = 0;
    int (*pipes)[2] = calloc((size_t)readers + 1, sizeof *pipes);
    struct blocked_reader *br = calloc((size_t)readers, sizeof *br);
    pthread_t *bt = calloc((size_t)readers, sizeof *bt);
    for (int i = 0; i <= readers; i++)
        if (pipe(pipes[i]) != 0)
            return;
    for (int i = 0; i < readers; i++) {
        br[i].fd = pipes[i][0];
        pthread_create(&bt[i], NULL, blocked_reader_main, &br[i]);
    }
    struct taker k;
    memset(&k, 0, sizeof k);
    k.call = call;
    k.fd = pipes[readers][0];
    pthread_t kt;
    pthread_create(&kt, NULL, taker_main, &k);
    for (int i = 0; i < readers; i++)
        wait_at_least(&br[i].ready, 1, 2, 5000);
    wait_at_least(&k.ready, 1, 2, 5000);
    sleep_ms(200);
    kill(getpid(), SIGUSR1);
    sleep_ms(200);
    snprintf(name, sizeof name, "%d blocked reader(s) + one %s%s", readers, call_name[call],
             restart ? " (SA_RESTART)" : "");
    /* The taker's read goes on after a restarting handler: give it its byte. */
    if (call == C_READ && restart)
        (void)!write(pipes[readers][1], "k", 1);
    join_bounded(kt, name);
    for (int i = 0; i < readers; i++)
        (void)!write(pipes[i][1], "x", 1);
    int got_byte = 0, interrupted = 0;
    for (int i = 0; i < readers; i++) {
        join_bounded(bt[i], name);
        got_byte += br[i].r == 1;
        interrupted += br[i].r < 0 && br[i].err == EINTR;
    }
    printf("%s: the %s returned %d%s%s, handler ran %d time(s), in it: %s; readers with their byte %d, "
           "interrupted %d\n",
           name, call_name[call], k.r, k.r < 0 ? "/" : "", k.r < 0 ? errname(k.err) : "", ATOMIC_LOAD(&handled),
           yes(pthread_equal(handled_by, k.self)), got_byte, interrupted);
    for (int i = 0; i <= readers; i++) {
        close(pipes[i][0]);
        close(pipes[i][1]);
    }
    free(pipes);
    free(br);
    free(bt);
    set_signal_handler(SIGUSR1, on_usr1, 0);
}

/* ---- 5. main first ---- */

static int main_done;

static void *spinner_main(void *arg)
{
    (void)arg;
    int64_t end = mono_ns() + 5LL * 1000000000;
    while (!ATOMIC_LOAD(&main_done) && mono_ns() < end)
        sched_yield();
    return NULL;
}

static void *delayed_kill_main(void *arg)
{
    sleep_ms(200);
    kill(getpid(), (int)(intptr_t)arg);
    return NULL;
}

static void main_first(int use_pause)
{
    const char *call = use_pause ? "pause" : "nanosleep";
    ATOMIC_STORE(&handled, 0);
    ATOMIC_STORE(&main_done, 0);
    handled_by = 0;
    usr1_mask(SIG_UNBLOCK);
    pthread_t sp, k;
    pthread_create(&sp, NULL, spinner_main, NULL);
    pthread_create(&k, NULL, delayed_kill_main, (void *)(intptr_t)SIGUSR1);
    struct timespec ts = { 3, 0 };
    int64_t t0 = mono_ns();
    int r = use_pause ? pause() : nanosleep(&ts, NULL);
    int e = errno;
    int64_t took = mono_ns() - t0;
    usr1_mask(SIG_BLOCK);
    ATOMIC_STORE(&main_done, 1);
    join_bounded(sp, call);
    join_bounded(k, call);
    printf("nobody blocks, main in %s, another thread running: returned %d/%s, handler ran %d time(s), in main: "
           "%s\n",
           call, r, errname(e), ATOMIC_LOAD(&handled), yes(pthread_equal(handled_by, pthread_self())));
    fprintf(stderr, "main in %s: %.1f ms\n", call, took / 1e6);
}

static void *sleep_300(void *arg)
{
    (void)arg;
    sleep_ms(300);
    return (void *)7;
}

static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t locker_self;
static int locker_got;

static void *locker_main(void *arg)
{
    (void)arg;
    locker_self = pthread_self();
    usr1_mask(SIG_UNBLOCK);
    pthread_mutex_lock(&held_lock);
    ATOMIC_STORE(&locker_got, 1);
    pthread_mutex_unlock(&held_lock);
    return NULL;
}

static void parked_takers(void)
{
    /* main, waiting in pthread_join, is the only thread that accepts SIGUSR1. */
    ATOMIC_STORE(&handled, 0);
    handled_by = 0;
    pthread_t sl, k;
    pthread_create(&sl, NULL, sleep_300, NULL);
    pthread_create(&k, NULL, delayed_kill_main, (void *)(intptr_t)SIGUSR1);
    usr1_mask(SIG_UNBLOCK);
    void *ret = NULL;
    int r = pthread_join(sl, &ret);
    usr1_mask(SIG_BLOCK);
    join_bounded(k, "join");
    printf("main in pthread_join takes it: join returned %d with %ld, handler ran %d time(s), in main: %s\n", r,
           (long)(intptr_t)ret, ATOMIC_LOAD(&handled), yes(pthread_equal(handled_by, pthread_self())));

    /* A thread waiting for a mutex main holds is the only one that accepts it. */
    ATOMIC_STORE(&handled, 0);
    handled_by = 0;
    pthread_t lk;
    pthread_mutex_lock(&held_lock);
    pthread_create(&lk, NULL, locker_main, NULL);
    sleep_ms(150);
    kill(getpid(), SIGUSR1);
    sleep_ms(150);
    int got_before = ATOMIC_LOAD(&locker_got);
    pthread_mutex_unlock(&held_lock);
    join_bounded(lk, "mutex");
    printf("a thread waiting for a mutex takes it: handler ran %d time(s), in it: %s; it kept waiting: %s, then "
           "locked: %s\n",
           ATOMIC_LOAD(&handled), yes(pthread_equal(handled_by, locker_self)), yes(!got_before),
           yes(ATOMIC_LOAD(&locker_got)));
}

static int pipe_handled;
static pthread_t pipe_handled_by;

static void on_pipe(int sig)
{
    (void)sig;
    pipe_handled_by = pthread_self();
    ATOMIC_ADD(&pipe_handled, 1);
}

static void *broken_writer_main(void *arg)
{
    int *r = arg;
    int p[2];
    if (pipe(p) != 0)
        return NULL;
    close(p[0]);
    r[0] = (int)write(p[1], "x", 1);
    r[1] = errno;
    r[2] = pthread_equal(pipe_handled_by, pthread_self());
    close(p[1]);
    return NULL;
}

static void sigpipe_stays(void)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_pipe;
    sigaction(SIGPIPE, &sa, &old);
    int r[3] = { 0, 0, 0 };
    pthread_t t;
    pthread_create(&t, NULL, broken_writer_main, r);
    sleep_ms(100);
    join_bounded(t, "sigpipe");
    printf("SIGPIPE: write returned %d/%s, handler ran %d time(s), in the writer: %s\n", r[0], errname(r[1]),
           ATOMIC_LOAD(&pipe_handled), yes(r[2]));
    sigaction(SIGPIPE, &old, NULL);
}

/* ---- 6. the sigwait pattern with a signal whose default action terminates ---- */

static void *term_waiter_main(void *arg)
{
    int *got = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    int sig = 0;
    int r = sigwait(&set, &sig);
    *got = r == 0 ? sig : -r;
    return NULL;
}

static void sigwait_pattern(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    int got1 = 0, got2 = 0;
    pthread_t t;
    pthread_create(&t, NULL, term_waiter_main, &got1);
    sleep_ms(150);
    kill(getpid(), SIGTERM);
    join_bounded(t, "sigwait SIGTERM");
    printf("sigwait pattern: the waiter got signal %d\n", got1);
    kill(getpid(), SIGTERM);
    sleep_ms(100);
    sigset_t p;
    sigemptyset(&p);
    sigpending(&p);
    printf("sigwait pattern: SIGTERM sent while nobody waits is pending: %s\n", yes(sigismember(&p, SIGTERM)));
    pthread_create(&t, NULL, term_waiter_main, &got2);
    join_bounded(t, "sigwait SIGTERM (pending)");
    printf("sigwait pattern: a later waiter got signal %d\n", got2);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

static void *signalfd_reader_main(void *arg)
{
    int *got = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    int fd = signalfd(-1, &set, SFD_CLOEXEC);
    struct signalfd_siginfo si;
    memset(&si, 0, sizeof si);
    ssize_t n = read(fd, &si, sizeof si);
    *got = n == (ssize_t)sizeof si ? (int)si.ssi_signo : -1;
    got[1] = n == (ssize_t)sizeof si && si.ssi_code == SI_USER && si.ssi_pid == (uint32_t)getpid();
    close(fd);
    return NULL;
}

static void signalfd_pattern(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    int got[2] = { 0, 0 };
    pthread_t t;
    pthread_create(&t, NULL, signalfd_reader_main, got);
    sleep_ms(150);
    kill(getpid(), SIGTERM);
    join_bounded(t, "signalfd");
    printf("signalfd pattern: the reader got signal %d, sent by kill from this process: %s\n", got[0], yes(got[1]));
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

int main(void)
{
    test_init();
    set_signal_handler(SIGUSR1, on_usr1, 0);
    usr1_mask(SIG_BLOCK);

    for (int kind = 0; kind < K_COUNT; kind++)
        for (int directed = 0; directed < 2; directed++)
            for (int early = 0; early < 2; early++)
                race_free_wait(kind, directed, early);

    pending_until_unblocked(0);
    pending_until_unblocked(1);
    raise_blocked();

    for (int how = W_SIGWAIT; how <= W_SIGTIMEDWAIT; how++)
        for (int early = 0; early < 2; early++)
            sigwait_case(how, early);
    sigwait_case(W_SIGTIMEDWAIT_TIMEOUT, 0);

    only_the_unblocked(1, C_SLEEP, 0);
    only_the_unblocked(1, C_POLL, 0);
    only_the_unblocked(1, C_READ, 0);
    only_the_unblocked(1, C_READ, 1);
    only_the_unblocked(1, C_POLL, 1);
    only_the_unblocked(100, C_READ, 0);
    only_the_unblocked(100, C_SLEEP, 1);

    main_first(0);
    main_first(1);
    parked_takers();
    sigpipe_stays();
    sigwait_pattern();
    signalfd_pattern();

    CHECK(!usr1_pending(), "nothing left pending");
    return test_exit_status();
}
