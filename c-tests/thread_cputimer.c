/* POSIX timers on a thread's CPU-time clock (CLOCK_THREAD_CPUTIME_ID, made by the thread itself, or
 * pthread_getcpuclockid of another thread): SIGEV_THREAD_ID to the computing thread runs its handler in
 * it once its CPU time reaches the value (si_code SI_TIMER, the timer id, the value); SIGEV_SIGNAL goes
 * to the process; a periodic timer expires again and again while the thread computes and never after
 * timer_delete; SIGEV_NONE counts down (0 once a one-shot expired, the next period for a periodic one);
 * TIMER_ABSTIME in the past expires at once (before timer_settime returns, for a signal to oneself);
 * SIGEV_THREAD runs the function in another thread with the value; timer_gettime counts down as the thread
 * computes and not while it sleeps; the same through syscall(); bad values are EINVAL, a timer whose
 * thread ended is ESRCH for timer_settime and reads 0. A process CPU-time timer is the kernel's as before.
 * CPU amounts go to stderr.
 * asyncshim-test: timeout=180 */
#include "test_util.h"
#include "glibc_compat.h"
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>

#define MS 1000000LL

static pid_t a_tid;
static int fired, fired_in_a, fired_code, fired_value, fired_timerid, fired_overrun;
static int64_t fired_cpu;
static int proc_fired, proc_in_main, proc_code, proc_value;
static pid_t main_tid;
static int thread_fn_count, thread_fn_value, thread_fn_other;

static int64_t cpu_now(void)
{
    return now_ns(CLOCK_THREAD_CPUTIME_ID);
}

static int64_t spin_until(int *flag, int target, int64_t max_cpu)
{
    int64_t start = cpu_now();
    volatile unsigned x = 0;
    while (ATOMIC_LOAD(flag) < target && cpu_now() - start < max_cpu)
        for (int i = 0; i < 2000; i++)
            x += i;
    return cpu_now() - start;
}

static void spin(int64_t ns)
{
    int never = 0;
    spin_until(&never, 1, ns);
}

static void on_usr1(int sig, siginfo_t *si, void *ctx)
{
    (void)sig;
    (void)ctx;
    fired_in_a = gettid() == a_tid;
    fired_code = si->si_code;
    fired_value = si->si_value.sival_int;
    fired_timerid = si->si_timerid;
    fired_overrun = si->si_overrun;
    fired_cpu = cpu_now();
    ATOMIC_ADD(&fired, 1);
}

static void on_usr2(int sig, siginfo_t *si, void *ctx)
{
    (void)sig;
    (void)ctx;
    proc_in_main = gettid() == main_tid;
    fprintf(stderr, "usr2 in %d (main %d, a %d)\n", gettid(), main_tid, a_tid);
    proc_code = si->si_code;
    proc_value = si->si_value.sival_int;
    ATOMIC_ADD(&proc_fired, 1);
}

static void notify_fn(union sigval v)
{
    thread_fn_value = v.sival_int;
    thread_fn_other = gettid() != a_tid;
    ATOMIC_ADD(&thread_fn_count, 1);
}

/* Prints a call's result and errno (read after the call). */
static void show(const char *what, int r)
{
    printf("%s: %d %s\n", what, r, r ? errname(errno) : "");
}

static const char *code_name(int c)
{
    return c == SI_TIMER ? "SI_TIMER" : c == SI_QUEUE ? "SI_QUEUE" : "other";
}

static struct itimerspec its(int64_t value, int64_t interval)
{
    struct itimerspec t = { { interval / 1000000000LL, interval % 1000000000LL },
                            { value / 1000000000LL, value % 1000000000LL } };
    return t;
}

static int64_t left(timer_t t)
{
    struct itimerspec cur;
    if (timer_gettime(t, &cur) != 0)
        return -1;
    return ts_ns(&cur.it_value);
}

static clockid_t a_clock;
static int a_stage, main_stage;

static void *thread_a(void *arg)
{
    (void)arg;
    a_tid = gettid();
    pthread_getcpuclockid(pthread_self(), &a_clock);

    /* 1: SIGEV_THREAD_ID to itself, 20 ms of its CPU time. */
    struct sigevent se;
    memset(&se, 0, sizeof se);
    se.sigev_notify = SIGEV_THREAD_ID;
    se.sigev_signo = SIGUSR1;
    se.sigev_value.sival_int = 7;
    se._sigev_un._tid = gettid();
    timer_t t;
    CHECK(timer_create(CLOCK_THREAD_CPUTIME_ID, &se, &t) == 0, "create SIGEV_THREAD_ID on own clock");
    struct itimerspec v = its(20 * MS, 0);
    int64_t armed_at = cpu_now();
    CHECK(timer_settime(t, 0, &v, NULL) == 0, "arm 20 ms relative");
    int64_t l1 = left(t);
    spin(2 * MS);
    int64_t l2 = left(t);
    CHECK(l1 > 0 && l1 <= 20 * MS && l2 < l1, "timer_gettime counts down as the thread computes");
    int64_t l3 = left(t);
    sleep_ms(20);
    int64_t l4 = left(t);
    CHECK(l4 <= l3 && l3 - l4 < 10 * MS, "and hardly at all while it sleeps");
    fprintf(stderr, "left %lld %lld / sleep %lld %lld\n", (long long)l1, (long long)l2, (long long)l3, (long long)l4);
    int64_t used = spin_until(&fired, 1, 20000 * MS);
    CHECK(ATOMIC_LOAD(&fired) == 1, "expired while computing");
    CHECK(fired_in_a, "handler ran in the thread");
    /* Before glibc 2.34 a timer_t is librt's pointer, not the kernel's id that si_timerid carries. */
    printf("siginfo: %s value=%d timerid matches=%d\n", code_name(fired_code), fired_value,
           !glibc_at_least(2, 34) || fired_timerid == (int)(intptr_t)t);
    CHECK(fired_cpu - armed_at >= 20 * MS, "not before its CPU time reached the value");
    fprintf(stderr, "fired after %lld ns of CPU (spun %lld)\n", (long long)(fired_cpu - armed_at), (long long)used);
    CHECK(left(t) == 0, "a one-shot is disarmed once expired");

    /* 2: periodic, 5 ms; deleted while computing. */
    ATOMIC_STORE(&fired, 0);
    v = its(5 * MS, 5 * MS);
    timer_settime(t, 0, &v, NULL);
    spin_until(&fired, 3, 20000 * MS);
    CHECK(ATOMIC_LOAD(&fired) >= 3, "periodic: expires again and again");
    CHECK(timer_getoverrun(t) >= 0, "timer_getoverrun");
    struct itimerspec cur;
    timer_gettime(t, &cur);
    CHECK(ts_ns(&cur.it_interval) == 5 * MS && ts_ns(&cur.it_value) > 0 && ts_ns(&cur.it_value) <= 5 * MS,
          "periodic: interval kept, next expiry within it");
    CHECK(timer_delete(t) == 0, "timer_delete");
    int after_delete = ATOMIC_LOAD(&fired);
    spin(30 * MS);
    CHECK(ATOMIC_LOAD(&fired) == after_delete, "no expiry after timer_delete");
    struct itimerspec none;
    errno = 0;
    CHECK(timer_gettime(t, &none) == -1 && errno == EINVAL, "deleted id: EINVAL");
    errno = 0;
    CHECK(timer_delete(t) == -1 && errno == EINVAL, "deleted twice: EINVAL");

    /* 3: TIMER_ABSTIME in the past: at once, before timer_settime returns. */
    ATOMIC_STORE(&fired, 0);
    timer_create(CLOCK_THREAD_CPUTIME_ID, &se, &t);
    v = its(1000, 0);
    CHECK(timer_settime(t, TIMER_ABSTIME, &v, NULL) == 0 && ATOMIC_LOAD(&fired) == 1,
          "TIMER_ABSTIME passed: handled before timer_settime returns");
    /* in the future: when reached */
    v = its(cpu_now() + 10 * MS, 0);
    timer_settime(t, TIMER_ABSTIME, &v, NULL);
    spin_until(&fired, 2, 20000 * MS);
    CHECK(ATOMIC_LOAD(&fired) == 2, "TIMER_ABSTIME ahead: expires when reached");
    /* old value */
    v = its(50 * MS, 3 * MS);
    timer_settime(t, 0, &v, NULL);
    struct itimerspec old;
    v = its(0, 0);
    CHECK(timer_settime(t, 0, &v, &old) == 0 && ts_ns(&old.it_value) > 0 && ts_ns(&old.it_value) <= 50 * MS &&
              ts_ns(&old.it_interval) == 3 * MS,
          "old value: what was left, and the interval");
    CHECK(left(t) == 0, "value 0 disarms");
    timer_delete(t);

    /* 4: SIGEV_NONE. */
    se.sigev_notify = SIGEV_NONE;
    timer_create(CLOCK_THREAD_CPUTIME_ID, &se, &t);
    v = its(5 * MS, 0);
    timer_settime(t, 0, &v, NULL);
    int64_t n1 = left(t);
    spin(8 * MS);
    CHECK(n1 > 0 && left(t) == 0, "SIGEV_NONE one-shot: counts down to 0");
    v = its(5 * MS, 3 * MS);
    timer_settime(t, 0, &v, NULL);
    spin(12 * MS);
    int64_t n2 = left(t);
    CHECK(n2 > 0 && n2 <= 3 * MS, "SIGEV_NONE periodic: the next period");
    timer_delete(t);

    /* 5: through syscall(). */
    ATOMIC_STORE(&fired, 0);
    se.sigev_notify = SIGEV_THREAD_ID;
    int kid = 0;
    CHECK(syscall(SYS_timer_create, CLOCK_THREAD_CPUTIME_ID, &se, &kid) == 0, "syscall timer_create");
    v = its(5 * MS, 0);
    CHECK(syscall(SYS_timer_settime, kid, 0, &v, NULL) == 0, "syscall timer_settime");
    CHECK(syscall(SYS_timer_gettime, kid, &cur) == 0 && ts_ns(&cur.it_value) > 0, "syscall timer_gettime");
    spin_until(&fired, 1, 20000 * MS);
    CHECK(ATOMIC_LOAD(&fired) == 1 && fired_timerid == kid, "syscall timer expires, its id in siginfo");
    CHECK(syscall(SYS_timer_getoverrun, kid) == 0, "syscall timer_getoverrun");
    CHECK(syscall(SYS_timer_delete, kid) == 0, "syscall timer_delete");

    /* 6: main's timers on this thread's clock (SIGEV_SIGNAL, SIGEV_THREAD). */
    ATOMIC_STORE(&a_stage, 1);
    wait_at_least(&main_stage, 1, 1, 60000);
    spin_until(&proc_fired, 1, 20000 * MS);
    spin_until(&thread_fn_count, 1, 20000 * MS);
    ATOMIC_STORE(&a_stage, 2);
    wait_at_least(&main_stage, 2, 1, 60000);
    return NULL;
}

int main(void)
{
    test_init();
    main_tid = gettid();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sa.sa_sigaction = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_sigaction = on_usr2;
    sigaction(SIGUSR2, &sa, NULL);

    /* The process-directed one goes to main: thread a blocks it. */
    sigset_t s2;
    sigemptyset(&s2);
    sigaddset(&s2, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &s2, NULL);
    pthread_t a;
    pthread_create(&a, NULL, thread_a, NULL);
    pthread_sigmask(SIG_UNBLOCK, &s2, NULL);

    if (!wait_at_least(&a_stage, 1, 1, 120000))
        printf("thread a did not reach stage 1\n");
    struct sigevent se;
    memset(&se, 0, sizeof se);
    se.sigev_notify = SIGEV_SIGNAL;
    se.sigev_signo = SIGUSR2;
    se.sigev_value.sival_int = 9;
    timer_t tp, tt;
    CHECK(timer_create(a_clock, &se, &tp) == 0, "SIGEV_SIGNAL on another thread's clock");
    memset(&se, 0, sizeof se);
    se.sigev_notify = SIGEV_THREAD;
    se.sigev_notify_function = notify_fn;
    se.sigev_value.sival_int = 11;
    CHECK(timer_create(a_clock, &se, &tt) == 0, "SIGEV_THREAD on another thread's clock");
    struct itimerspec v = its(5 * MS, 0);
    timer_settime(tp, 0, &v, NULL);
    ATOMIC_STORE(&main_stage, 1);
    if (!wait_at_least(&proc_fired, 1, 1, 120000))
        printf("no SIGEV_SIGNAL expiry\n");
    /* Armed only now: before glibc 2.34 a SIGEV_THREAD notification thread unblocks every signal, so
     * natively the process-directed SIGUSR2 could go to it instead of main. */
    timer_settime(tt, 0, &v, NULL);
    if (!wait_at_least(&thread_fn_count, 1, 1, 120000))
        printf("no SIGEV_THREAD expiry\n");
    printf("SIGEV_SIGNAL: in main %d, %s value=%d\n", proc_in_main, code_name(proc_code), proc_value);
    printf("SIGEV_THREAD: count %d value=%d other thread=%d\n", thread_fn_count, thread_fn_value, thread_fn_other);
    wait_at_least(&a_stage, 2, 1, 120000);

    /* Bad values. */
    struct sigevent bad;
    memset(&bad, 0, sizeof bad);
    timer_t tb;
    bad.sigev_notify = SIGEV_SIGNAL;
    bad.sigev_signo = 99;
    show("bad signal", timer_create(a_clock, &bad, &tb));
    bad.sigev_signo = SIGUSR1;
    bad.sigev_notify = 77;
    show("bad notify", timer_create(a_clock, &bad, &tb));
    bad.sigev_notify = SIGEV_THREAD_ID;
    bad._sigev_un._tid = 1;
    show("SIGEV_THREAD_ID elsewhere", timer_create(a_clock, &bad, &tb));
    struct itimerspec badv = its(5 * MS, 0);
    badv.it_value.tv_nsec = 1000000000L;
    show("bad nsec", timer_settime(tp, 0, &badv, NULL));
    badv = its(5 * MS, 0);
    badv.it_interval.tv_sec = -1;
    show("negative interval", timer_settime(tp, 0, &badv, NULL));

    /* The thread ends: its timers read 0 and cannot be set. */
    ATOMIC_STORE(&main_stage, 2);
    pthread_join(a, NULL);
    /* The kernel still knows a joined thread for a moment after glibc's join returns (natively its timers
     * can still be set then): wait until its clock is gone (at most 2 s), as thread_cpuclock does. */
    int64_t give_up = mono_ns() + 2000 * MS;
    for (struct timespec gone; clock_gettime(a_clock, &gone) == 0 && mono_ns() < give_up;)
        sleep_ms(1);
    errno = 0;
    show("ended thread: settime", timer_settime(tp, 0, &v, NULL));
    struct itimerspec cur;
    int r = timer_gettime(tp, &cur);
    printf("ended thread: gettime %d value %lld\n", r, (long long)ts_ns(&cur.it_value));
    printf("delete: %d %d\n", timer_delete(tp), timer_delete(tt));
    show("ended thread's clock", timer_create(a_clock, NULL, &tb));

    /* The process's CPU clock: the kernel's timers, as before. */
    memset(&se, 0, sizeof se);
    se.sigev_notify = SIGEV_NONE;
    timer_t tproc;
    CHECK(timer_create(CLOCK_PROCESS_CPUTIME_ID, &se, &tproc) == 0, "process CPU-time timer");
    v = its(200 * MS, 0);
    timer_settime(tproc, 0, &v, NULL);
    int64_t p1 = left(tproc);
    spin(3 * MS);
    CHECK(p1 > 0 && left(tproc) < p1, "process CPU-time timer counts down");
    CHECK(timer_delete(tproc) == 0, "process CPU-time timer deleted");
    /* A NULL sigevent: SIGALRM with the id as value (checked by creation only: SIGALRM would end us). */
    timer_t tn;
    CHECK(timer_create(CLOCK_THREAD_CPUTIME_ID, NULL, &tn) == 0 && timer_delete(tn) == 0, "NULL sigevent");
    return test_exit_status();
}
