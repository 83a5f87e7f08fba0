/* Thread ids: gettid() (and syscall(SYS_gettid)) is unique per thread, the main thread's is the process
 * id, and the tid-taking calls reach the thread it names: tgkill/tkill run the handler in that thread,
 * sched_getscheduler/sched_getaffinity answer for it, pthread_gettid_np (glibc 2.42) agrees, and a tid
 * whose thread ended is ESRCH. Under the shim every thread is a coroutine with a tid of its own.
 * The tid numbers themselves go to stderr. */
#include "test_util.h"
#include "glibc_compat.h"
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>

#define N 11

static pid_t tids[N];
static pid_t tids_raw[N];
static pthread_t handles[N];
static int started, release_all;
static __thread int my_index = -1;
static int handled_by[N];
static pid_t handler_tid[N];

static void on_usr1(int sig)
{
    (void)sig;
    if (my_index >= 0) {
        handler_tid[my_index] = gettid();
        ATOMIC_ADD(&handled_by[my_index], 1);
    }
}

/* What /proc says of thread tid: its comm, and the pid and name in its stat line. */
static int proc_ok[N];

static int read_file(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    return (int)n;
}

static void check_proc(int i, pid_t tid)
{
    char path[96], buf[1024], want[32];
    snprintf(want, sizeof want, "tids-%d", i);
    pthread_setname_np(pthread_self(), want);
    int ok = 1;
    snprintf(path, sizeof path, "/proc/self/task/%d/comm", tid);
    if (read_file(path, buf, sizeof buf) <= 0 || strncmp(buf, want, strlen(want)) != 0 || buf[strlen(want)] != '\n')
        ok = 0;
    snprintf(path, sizeof path, "/proc/%d/task/%d/stat", getpid(), tid);
    char name[64] = "";
    int pid = 0;
    if (read_file(path, buf, sizeof buf) <= 0 || sscanf(buf, "%d (%63[^)])", &pid, name) != 2 || pid != tid ||
        strcmp(name, want) != 0)
        ok = 0;
    FILE *f = fopen(path, "re");
    if (!f || !fgets(buf, sizeof buf, f) || sscanf(buf, "%d", &pid) != 1 || pid != tid)
        ok = 0;
    if (f)
        fclose(f);
    snprintf(path, sizeof path, "/proc/self/task/%d/status", tid);
    if (read_file(path, buf, sizeof buf) <= 0)
        ok = 0;
    proc_ok[i] = ok;
}

static void *worker(void *arg)
{
    int i = (int)(intptr_t)arg;
    my_index = i;
    tids[i] = gettid();
    tids_raw[i] = (pid_t)syscall(SYS_gettid);
    check_proc(i, tids[i]);
    ATOMIC_ADD(&started, 1);
    /* Sleep in pieces until main lets go: a signal ends a piece early. */
    while (!ATOMIC_LOAD(&release_all))
        sleep_ms(5);
    return NULL;
}

typedef pid_t (*gettid_np_fn)(pthread_t);

static void *record_tid(void *arg)
{
    *(pid_t *)arg = gettid();
    return NULL;
}

int main(void)
{
    test_init();
    set_signal_handler(SIGUSR1, on_usr1, 0);

    CHECK(gettid() == getpid(), "main thread's gettid is the process id");
    CHECK(syscall(SYS_gettid) == getpid(), "main thread's SYS_gettid is the process id");
    for (int i = 0; i < N; i++)
        pthread_create(&handles[i], NULL, worker, (void *)(intptr_t)i);
    CHECK(wait_at_least(&started, N, 1, 20000), "all threads started");

    int distinct = 1, same_raw = 1, positive = 1;
    for (int i = 0; i < N; i++) {
        fprintf(stderr, "thread %d: tid %d\n", i, tids[i]);
        if (tids[i] != tids_raw[i])
            same_raw = 0;
        if (tids[i] <= 0 || tids[i] == getpid())
            positive = 0;
        for (int j = 0; j < i; j++)
            if (tids[j] == tids[i])
                distinct = 0;
    }
    printf("threads: %d, distinct tids: %s\n", N, distinct ? "yes" : "no");
    CHECK(same_raw, "gettid() and syscall(SYS_gettid) agree in every thread");
    int proc_all = 1;
    for (int i = 0; i < N; i++)
        proc_all &= proc_ok[i];
    CHECK(proc_all, "each thread's /proc/self/task/TID: comm, stat (pid, name), status");
    CHECK(positive, "every thread's tid is positive and not the process id");

    if (glibc_at_least(2, 42)) {
        gettid_np_fn f = (gettid_np_fn)COMPAT_LOOKUP("pthread_gettid_np");
        int agree = f != NULL;
        for (int i = 0; f && i < N; i++)
            if (f(handles[i]) != tids[i])
                agree = 0;
        CHECK(agree && f(pthread_self()) == getpid(), "pthread_gettid_np agrees with gettid");
    } else {
        CHECK(1, "pthread_gettid_np agrees with gettid");
    }

    /* Signals by tid reach exactly the thread named. */
    CHECK(syscall(SYS_tgkill, getpid(), tids[3], 0) == 0, "tgkill signal 0 to a live thread");
    CHECK(syscall(SYS_tgkill, getpid(), tids[3], SIGUSR1) == 0, "tgkill SIGUSR1 to thread 3");
    CHECK(tgkill(getpid(), tids[5], SIGUSR1) == 0, "libc tgkill SIGUSR1 to thread 5");
    CHECK(syscall(SYS_tkill, tids[7], SIGUSR1) == 0, "tkill SIGUSR1 to thread 7");
    int ok = wait_at_least(&handled_by[3], 1, 1, 20000) && wait_at_least(&handled_by[5], 1, 1, 20000) &&
             wait_at_least(&handled_by[7], 1, 1, 20000);
    CHECK(ok, "handlers ran");
    CHECK(handler_tid[3] == tids[3] && handler_tid[5] == tids[5] && handler_tid[7] == tids[7],
          "each handler ran in the thread its tid names (gettid inside it)");
    int others = 0;
    for (int i = 0; i < N; i++)
        if (i != 3 && i != 5 && i != 7)
            others += ATOMIC_LOAD(&handled_by[i]);
    CHECK(others == 0, "no other thread got a signal");

    errno = 0;
    int r = syscall(SYS_tgkill, getpid(), tids[3], 65);
    printf("tgkill bad signal: %d %s\n", r, errname(errno));
    errno = 0;
    r = syscall(SYS_tgkill, getpid(), -1, 0);
    printf("tgkill tid -1: %d %s\n", r, errname(errno));
    errno = 0;
    r = syscall(SYS_tgkill, 1, tids[3], 0);
    printf("tgkill wrong process: %d %s\n", r, errname(errno));

    /* The scheduling calls answer for the thread the tid names. */
    printf("sched_getscheduler(tid): %d\n", sched_getscheduler(tids[2]));
    cpu_set_t mine, theirs;
    CPU_ZERO(&mine);
    CPU_ZERO(&theirs);
    sched_getaffinity(0, sizeof mine, &mine);
    r = sched_getaffinity(tids[2], sizeof theirs, &theirs);
    CHECK(r == 0 && CPU_EQUAL(&mine, &theirs), "sched_getaffinity(tid) is the thread's (inherited) mask");
    struct sched_param sp = { .sched_priority = 7 };
    r = sched_getparam(tids[2], &sp);
    printf("sched_getparam(tid): %d priority %d\n", r, sp.sched_priority);

    ATOMIC_STORE(&release_all, 1);
    for (int i = 0; i < N; i++)
        pthread_join(handles[i], NULL);

    /* A tid whose thread ended names nothing. */
    errno = 0;
    r = syscall(SYS_tgkill, getpid(), tids[3], 0);
    printf("tgkill ended thread: %d %s\n", r, errname(errno));
    errno = 0;
    r = sched_getscheduler(tids[3]);
    printf("sched_getscheduler ended thread: %d %s\n", r, errname(errno));
    char path[64], buf[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/comm", tids[3]);
    r = read_file(path, buf, sizeof buf);
    printf("/proc/self/task/TID/comm of an ended thread: %s\n", r < 0 ? errname(-r) : "opened");
    /* A thread alive while 5,000 others come and go is still found by its tid. */
    static pid_t short_tid;
    ATOMIC_STORE(&release_all, 0);
    pthread_t longer;
    pthread_create(&longer, NULL, worker, (void *)(intptr_t)1);
    CHECK(wait_at_least(&started, N + 1, 1, 20000), "a long-lived thread started");
    int distinct_from_long = 1;
    for (int i = 0; i < 5000; i++) {
        pthread_t t2;
        pthread_create(&t2, NULL, record_tid, &short_tid);
        pthread_join(t2, NULL);
        if (short_tid == tids[1])
            distinct_from_long = 0;
    }
    CHECK(distinct_from_long, "5,000 threads that came and went never had its tid");
    CHECK(syscall(SYS_tgkill, getpid(), tids[1], 0) == 0, "tgkill signal 0 still finds the long-lived thread");
    errno = 0;
    r = sched_getscheduler(tids[1]);
    printf("sched_getscheduler of the long-lived thread: %d %s\n", r, errname(errno));
    ATOMIC_STORE(&release_all, 1);
    pthread_join(longer, NULL);
    started = N;

    /* A new thread gets a tid of its own, different from the main thread's. */
    pthread_t t;
    pthread_create(&t, NULL, worker, (void *)(intptr_t)0);
    CHECK(wait_at_least(&started, N + 1, 1, 20000), "one more thread started");
    CHECK(tids[0] != getpid() && tids[0] > 0, "its tid is its own");
    pthread_join(t, NULL);
    return test_exit_status();
}
