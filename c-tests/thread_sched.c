/* Scheduling attributes per thread: pthread_setschedparam/getschedparam/setschedprio, sched_setscheduler/
 * getscheduler/setparam/getparam with a thread's tid, setpriority/getpriority (a thread's nice value),
 * pthread_setaffinity_np/getaffinity_np and sched_setaffinity/getaffinity: each thread keeps its own,
 * others are unaffected, a new thread inherits its creator's (reset-on-fork aside), bad values are
 * EINVAL, and whether a change is permitted is the kernel's verdict for this process (root here, or an
 * unprivileged user: the same answers natively and under the shim). Priority-protect mutexes: a
 * SCHED_OTHER thread's lock is EINVAL, as glibc answers. */
#include "test_util.h"
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static const char *pol(int p)
{
    switch (p & ~SCHED_RESET_ON_FORK) {
    case SCHED_OTHER: return p & SCHED_RESET_ON_FORK ? "OTHER|RESET_ON_FORK" : "OTHER";
    case SCHED_FIFO: return p & SCHED_RESET_ON_FORK ? "FIFO|RESET_ON_FORK" : "FIFO";
    case SCHED_RR: return p & SCHED_RESET_ON_FORK ? "RR|RESET_ON_FORK" : "RR";
    case SCHED_BATCH: return "BATCH";
    case SCHED_IDLE: return "IDLE";
    default: return "?";
    }
}

static void show(const char *what, pthread_t t)
{
    int p = -1;
    struct sched_param sp = { -1 };
    int r = pthread_getschedparam(t, &p, &sp);
    printf("%s: %s %s %d\n", what, errname(r), pol(p), sp.sched_priority);
}

static void set(const char *what, pthread_t t, int policy, int prio)
{
    struct sched_param sp = { prio };
    printf("%s: %s\n", what, errname(pthread_setschedparam(t, policy, &sp)));
}

static pid_t tid_of_peer;
static int peer_ready, peer_stop;

static void *peer(void *arg)
{
    (void)arg;
    tid_of_peer = (pid_t)syscall(SYS_gettid);
    ATOMIC_STORE(&peer_ready, 1);
    while (!ATOMIC_LOAD(&peer_stop))
        sleep_ms(2);
    return NULL;
}

/* What a thread created now starts with. */
static int child_policy, child_prio, child_nice, child_cpus;
static void *report_child(void *arg)
{
    (void)arg;
    struct sched_param sp;
    child_policy = sched_getscheduler(0);
    sched_getparam(0, &sp);
    child_prio = sp.sched_priority;
    errno = 0;
    child_nice = getpriority(PRIO_PROCESS, 0);
    cpu_set_t s;
    CPU_ZERO(&s);
    sched_getaffinity(0, sizeof s, &s);
    child_cpus = CPU_COUNT(&s);
    return NULL;
}

static void show_child(const char *what)
{
    pthread_t c;
    pthread_create(&c, NULL, report_child, NULL);
    pthread_join(c, NULL);
    printf("%s: %s %d nice %d cpus %s\n", what, pol(child_policy), child_prio, child_nice,
           child_cpus == 1 ? "1" : "all");
}

static void *subject(void *arg)
{
    (void)arg;
    pthread_t me = pthread_self();
    pid_t tid = (pid_t)syscall(SYS_gettid);
    show("initial", me);
    printf("sched_getscheduler(0): %s\n", pol(sched_getscheduler(0)));

    /* Bad values. */
    set("OTHER priority 5", me, SCHED_OTHER, 5);
    set("FIFO priority 0", me, SCHED_FIFO, 0);
    set("FIFO priority 100", me, SCHED_FIFO, 100);
    set("policy 77", me, 77, 0);
    set("FIFO priority -1", me, SCHED_FIFO, -1);
    int r, e;
    errno = 0;
    r = sched_getparam(-1, NULL);
    printf("sched_getparam(-1): %d %s\n", r, errname(errno));
    errno = 0;
    r = sched_getparam(0, NULL);
    printf("sched_getparam(0, NULL): %d %s\n", r, errname(errno));
    errno = 0;
    r = sched_setscheduler(0, -1, &(struct sched_param){ 0 });
    printf("sched_setscheduler(0, -1): %d %s\n", r, errname(errno));
    errno = 0;
    r = sched_setscheduler(0, SCHED_OTHER, NULL);
    printf("sched_setscheduler(0, OTHER, NULL): %d %s\n", r, errname(errno));
    show("after bad values", me);

    /* Real-time: allowed to root, EPERM to others (RLIMIT_RTPRIO 0), as the kernel says. */
    set("FIFO 10", me, SCHED_FIFO, 10);
    show("after FIFO 10", me);
    printf("setschedprio 20: %s\n", errname(pthread_setschedprio(me, 20)));
    show("after setschedprio 20", me);
    struct sched_param sp = { 0 };
    printf("sched_getparam(tid): %d %d\n", sched_getparam(tid, &sp), sp.sched_priority);
    printf("peer still: %s\n", pol(sched_getscheduler(tid_of_peer)));
    show_child("child of a FIFO thread");
    struct timespec rr = { -1, -1 };
    r = sched_rr_get_interval(0, &rr);
    printf("rr interval under FIFO: %ld %ld\n", (long)rr.tv_sec, rr.tv_nsec);
    set("RR 5", me, SCHED_RR, 5);
    rr.tv_sec = -1;
    r = sched_rr_get_interval(0, &rr);
    printf("rr interval: %d %s\n", r, r == 0 && (rr.tv_sec > 0 || rr.tv_nsec > 0) ? "positive" : "zero");
    set("FIFO|RESET_ON_FORK 3", me, SCHED_FIFO | SCHED_RESET_ON_FORK, 3);
    show("after FIFO|RESET_ON_FORK", me);
    printf("sched_getscheduler: %s\n", pol(sched_getscheduler(0)));
    show_child("child of a reset-on-fork FIFO thread");
    set("back to OTHER", me, SCHED_OTHER, 0);
    show("after OTHER", me);

    /* BATCH and IDLE (anyone may), and the way back from IDLE (RLIMIT_NICE decides for others). */
    r = sched_setscheduler(tid, SCHED_BATCH, &(struct sched_param){ 0 });
    printf("sched_setscheduler(tid, BATCH): %d; now %s\n", r, pol(sched_getscheduler(tid)));
    show_child("child of a BATCH thread");
    r = sched_setscheduler(0, SCHED_IDLE, &(struct sched_param){ 0 });
    printf("sched_setscheduler(0, IDLE): %d; now %s\n", r, pol(sched_getscheduler(0)));
    errno = 0;
    r = sched_setscheduler(0, SCHED_OTHER, &(struct sched_param){ 0 });
    e = errno;
    printf("IDLE back to OTHER: %d %s; now %s\n", r, errname(e), pol(sched_getscheduler(0)));
    printf("sched_setparam(0, 0): %d\n", sched_setparam(0, &(struct sched_param){ 0 }));
    errno = 0;
    r = sched_setparam(0, &(struct sched_param){ 4 });
    printf("sched_setparam(0, 4): %d %s\n", r, errname(errno));

    /* Nice values are per thread. */
    errno = 0;
    r = setpriority(PRIO_PROCESS, tid, 5);
    e = errno;
    int now = getpriority(PRIO_PROCESS, 0), peer_nice = getpriority(PRIO_PROCESS, tid_of_peer);
    long raw = syscall(SYS_getpriority, PRIO_PROCESS, 0);
    printf("setpriority(tid, 5): %d %s; now %d; peer %d; raw %ld\n", r, errname(e), now, peer_nice, raw);
    show_child("child of a nice 5 thread");
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        errno = 0;
        printf("forked child of a nice 5 thread: nice %d\n", getpriority(PRIO_PROCESS, 0));
        _exit(0);
    }
    waitpid(child, NULL, 0);
    errno = 0;
    r = setpriority(PRIO_PROCESS, 0, 30);
    e = errno;
    printf("setpriority(0, 30): %d %s; now %d\n", r, errname(e), getpriority(PRIO_PROCESS, 0));
    errno = 0;
    r = setpriority(PRIO_PROCESS, 0, -3);
    e = errno;
    printf("setpriority(0, -3): %d %s; now %d\n", r, errname(e), getpriority(PRIO_PROCESS, 0));

    /* Affinity. */
    cpu_set_t all, one, got;
    CPU_ZERO(&all);
    pthread_getaffinity_np(me, sizeof all, &all);
    int first = -1;
    for (int c = 0; c < CPU_SETSIZE && first < 0; c++)
        if (CPU_ISSET(c, &all))
            first = c;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    printf("pthread_setaffinity_np(one cpu): %s\n", errname(pthread_setaffinity_np(me, sizeof one, &one)));
    CPU_ZERO(&got);
    pthread_getaffinity_np(me, sizeof got, &got);
    CHECK(CPU_EQUAL(&got, &one), "the thread's mask is the one cpu");
    CPU_ZERO(&got);
    sched_getaffinity(tid_of_peer, sizeof got, &got);
    CHECK(CPU_EQUAL(&got, &all), "the peer's mask is unchanged");
    show_child("child of a one-cpu thread");
    cpu_set_t none;
    CPU_ZERO(&none);
    printf("empty mask: %s\n", errname(pthread_setaffinity_np(me, sizeof none, &none)));
    CPU_ZERO(&none);
    CPU_SET(1000, &none);
    printf("cpu 1000 only: %s\n", errname(pthread_setaffinity_np(me, sizeof none, &none)));
    printf("get with 3 bytes: %s\n", errname(pthread_getaffinity_np(me, 3, &got)));
    errno = 0;
    r = sched_getaffinity(0, 3, &got);
    e = errno;
    printf("sched_getaffinity with 3 bytes: %d %s\n", r, errname(e));
    memset(&got, 0, sizeof got);
    memset(&got, 0xff, 64);
    r = pthread_getaffinity_np(me, 64, &got);
    CHECK(r == 0 && CPU_COUNT(&got) == 1, "a 64-byte get gives the mask and zeroes the rest");
    printf("sched_setaffinity(tid, all): %d\n", sched_setaffinity(tid, sizeof all, &all));
    CPU_ZERO(&got);
    sched_getaffinity(0, sizeof got, &got);
    CHECK(CPU_EQUAL(&got, &all), "the thread's mask is all cpus again");

    return NULL;
}

static pthread_mutex_t pp_mutex(int ceiling, int type)
{
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, type);
    pthread_mutexattr_setprotocol(&ma, PTHREAD_PRIO_PROTECT);
    pthread_mutexattr_setprioceiling(&ma, ceiling);
    pthread_mutex_t m;
    pthread_mutex_init(&m, &ma);
    pthread_mutexattr_destroy(&ma);
    return m;
}

static void show_kernel(const char *what)
{
    struct sched_param sp = { -1 };
    sched_getparam(0, &sp);
    printf("%s: kernel %s %d\n", what, pol(sched_getscheduler(0)), sp.sched_priority);
}

/* The kernel's struct sched_attr (version 1). */
struct attr {
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t priority;
    uint64_t runtime, deadline, period;
    uint32_t util_min, util_max;
};

static void show_attr(const char *what, pid_t tid)
{
    struct attr a;
    memset(&a, 0xa5, sizeof a);
    errno = 0;
    long r = syscall(SYS_sched_getattr, tid, &a, sizeof a, 0);
    int e = errno;
    if (r != 0)
        printf("%s: sched_getattr %ld %s\n", what, r, errname(e));
    else
        printf("%s: size %u %s flags %llu nice %d priority %u dl %llu/%llu/%llu\n", what, a.size, pol((int)a.policy),
               (unsigned long long)a.flags, a.nice, a.priority, (unsigned long long)a.runtime,
               (unsigned long long)a.deadline, (unsigned long long)a.period);
}

static void set_attr(const char *what, struct attr a, unsigned flags)
{
    errno = 0;
    long r = syscall(SYS_sched_setattr, 0, &a, flags);
    int e = errno;
    printf("%s: %ld %s; size field now %u\n", what, r, errname(e), a.size);
}

/* sched_setattr/sched_getattr (the system calls; glibc 2.41 wraps them). */
static void *attr_subject(void *arg)
{
    (void)arg;
    pid_t tid = (pid_t)syscall(SYS_gettid);
    show_attr("sched_getattr initial", 0);
    show_attr("sched_getattr of the peer", tid_of_peer);
    struct attr a;
    errno = 0;
    long r = syscall(SYS_sched_getattr, 0, &a, 40, 0);
    printf("sched_getattr size 40: %ld %s\n", r, errname(errno));
    errno = 0;
    r = syscall(SYS_sched_getattr, 0, &a, sizeof a, 1);
    printf("sched_getattr flags 1: %ld %s\n", r, errname(errno));
    memset(&a, 0, sizeof a);
    a.size = 48;
    a.policy = SCHED_BATCH;
    a.nice = 3;
    set_attr("sched_setattr BATCH nice 3", a, 0);
    show_attr("after it", tid);
    errno = 0;
    printf("sched_getscheduler %s, nice %d\n", pol(sched_getscheduler(0)), getpriority(PRIO_PROCESS, 0));
    a.size = 20;
    set_attr("sched_setattr size 20", a, 0);
    a.size = 48;
    set_attr("sched_setattr flags 1", a, 1);
    a.policy = 77;
    set_attr("sched_setattr policy 77", a, 0);
    memset(&a, 0, sizeof a);
    a.size = 48;
    a.policy = 6; /* SCHED_DEADLINE */
    a.runtime = 2000000;
    a.deadline = 30000000;
    a.period = 30000000;
    set_attr("sched_setattr DEADLINE 2/30/30 ms", a, 0);
    show_attr("after it", 0);
    memset(&a, 0, sizeof a);
    a.size = 56;
    a.policy = SCHED_OTHER;
    set_attr("sched_setattr OTHER", a, 0);
    show_attr("at the end", 0);
    return NULL;
}

/* Priority-protect mutexes: glibc raises the locking thread to the ceiling with sched_setscheduler under
 * its own policy. A SCHED_OTHER thread cannot be raised (EINVAL) — but glibc has recorded the ceiling
 * by then, so a second lock with the same ceiling succeeds. A SCHED_FIFO thread (where permitted) is
 * raised while it holds the mutex and put back at unlock; one above the ceiling gets EINVAL. */
static void *pp_subject(void *arg)
{
    (void)arg;
    pthread_t me = pthread_self();
    pthread_mutex_t m = pp_mutex(20, PTHREAD_MUTEX_NORMAL);
    printf("PP lock by a SCHED_OTHER thread: %s\n", errname(pthread_mutex_lock(&m)));
    printf("PP trylock after that: %s\n", errname(pthread_mutex_trylock(&m)));
    printf("PP trylock again (held): %s\n", errname(pthread_mutex_trylock(&m)));
    printf("PP unlock: %s\n", errname(pthread_mutex_unlock(&m)));
    show("after PP unlock", me);

    int fifo = 0;
    struct sched_param sp = { 10 };
    int r = pthread_setschedparam(me, SCHED_FIFO, &sp);
    printf("FIFO 10 for the PP part: %s\n", errname(r));
    fifo = r == 0;
    pthread_mutex_t e = pp_mutex(30, PTHREAD_MUTEX_ERRORCHECK);
    printf("PP errorcheck lock (ceiling 30): %s\n", errname(pthread_mutex_lock(&e)));
    show("holding ceiling 30", me);
    show_kernel("holding ceiling 30");
    printf("PP errorcheck relock: %s\n", errname(pthread_mutex_lock(&e)));
    pthread_mutex_t rec = pp_mutex(40, PTHREAD_MUTEX_RECURSIVE);
    printf("PP recursive lock (ceiling 40): %s\n", errname(pthread_mutex_lock(&rec)));
    printf("PP recursive lock again: %s\n", errname(pthread_mutex_lock(&rec)));
    show_kernel("holding ceilings 30 and 40");
    sp.sched_priority = 15;
    printf("setschedparam FIFO 15 while raised: %s\n", errname(pthread_setschedparam(me, SCHED_FIFO, &sp)));
    show("after setschedparam 15", me);
    show_kernel("after setschedparam 15");
    printf("PP recursive unlock: %s\n", errname(pthread_mutex_unlock(&rec)));
    printf("PP recursive unlock: %s\n", errname(pthread_mutex_unlock(&rec)));
    printf("PP recursive unlock (not held): %s\n", errname(pthread_mutex_unlock(&rec)));
    show_kernel("holding ceiling 30 only");
    printf("PP errorcheck unlock: %s\n", errname(pthread_mutex_unlock(&e)));
    printf("PP errorcheck unlock (not held): %s\n", errname(pthread_mutex_unlock(&e)));
    show_kernel("holding none");
    pthread_mutex_t low = pp_mutex(5, PTHREAD_MUTEX_NORMAL);
    printf("PP lock with a ceiling below the thread's priority: %s\n", errname(pthread_mutex_lock(&low)));
    struct timespec past = { 0, 0 };
    printf("PP timedlock (free, past deadline): %s\n", errname(pthread_mutex_timedlock(&e, &past)));
    printf("PP timedlock (held, past deadline): %s\n", errname(pthread_mutex_timedlock(&e, &past)));
    pthread_mutex_unlock(&e);
    if (fifo) {
        sp.sched_priority = 0;
        pthread_setschedparam(me, SCHED_OTHER, &sp);
    }
    show_kernel("at the end");
    return NULL;
}

int main(int argc, char **argv)
{
    test_init();
    if (argc == 3 && strcmp(argv[1], "--after-exec") == 0) {
        /* The program the main thread exec'd: it keeps that thread's nice value. */
        errno = 0;
        printf("after exec: nice %d\n", getpriority(PRIO_PROCESS, 0));
        return atoi(argv[2]);
    }
    pthread_t p, s;
    pthread_create(&p, NULL, peer, NULL);
    wait_at_least(&peer_ready, 1, 1, 20000);
    pthread_create(&s, NULL, subject, NULL);
    pthread_join(s, NULL);
    pthread_create(&s, NULL, pp_subject, NULL);
    pthread_join(s, NULL);
    pthread_create(&s, NULL, attr_subject, NULL);
    pthread_join(s, NULL);
    ATOMIC_STORE(&peer_stop, 1);
    pthread_join(p, NULL);
    show("main at the end", pthread_self());
    errno = 0;
    printf("getpriority(main): %d\n", getpriority(PRIO_PROCESS, 0));
    printf("main's setpriority(0, +2): %d\n", setpriority(PRIO_PROCESS, 0, getpriority(PRIO_PROCESS, 0) + 2));
    char status[16];
    snprintf(status, sizeof status, "%d", test_exit_status());
    fflush(stdout);
    execl("/proc/self/exe", argv[0], "--after-exec", status, (char *)NULL);
    perror("execl");
    return 1;
}
