/* The rarer calls that name a thread by tid, for threads other than the main one: ioprio_set/ioprio_get
 * (IOPRIO_WHO_PROCESS) act on the thread the tid names, and 0 on the caller — another thread's priority is
 * not changed, a new thread has its creator's, one derived from the nice value follows it; bad values are
 * EINVAL and an ended thread's tid ESRCH. pidfd_open of a thread that leads no thread group is EINVAL
 * (bad flags too, an ended thread's tid ESRCH), of the process a pidfd; the glibc wrapper and syscall()
 * agree. The kernel's own values (which depend on its release) are printed as they come: the runs agree.
 * asyncshim-test: timeout=120 */
#include "test_util.h"
#include "glibc_compat.h"
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#define WHO_PROCESS 1
#define WHO_PGRP 2
#define PRIO(class, data) (((class) << 13) | (data))

static int ioprio_set(int which, int who, int prio)
{
    return (int)syscall(SYS_ioprio_set, which, who, prio);
}

static int ioprio_get(int which, int who)
{
    return (int)syscall(SYS_ioprio_get, which, who);
}

static const char *res(int r)
{
    static __thread char buf[8][48];
    static __thread int k;
    char *b = buf[k++ % 8];
    if (r < 0)
        snprintf(b, 48, "-1 %s", errname(errno));
    else
        snprintf(b, 48, "%d", r);
    return b;
}

static pid_t tid_a, tid_b, tid_child;
static int stage_a, stage_main, done;
static char out_a[6][96], out_child[96];

static void *child(void *arg)
{
    (void)arg;
    tid_child = gettid();
    snprintf(out_child, sizeof out_child, "child of a: own %s", res(ioprio_get(WHO_PROCESS, 0)));
    return NULL;
}

static void *thread_a(void *arg)
{
    (void)arg;
    tid_a = gettid();
    snprintf(out_a[0], 96, "a at start: own %s by tid %s", res(ioprio_get(WHO_PROCESS, 0)),
             res(ioprio_get(WHO_PROCESS, gettid())));
    ATOMIC_STORE(&stage_a, 1);
    wait_at_least(&stage_main, 1, 1, 60000);
    /* main set ours */
    snprintf(out_a[1], 96, "a after main set it: own %s", res(ioprio_get(WHO_PROCESS, 0)));
    snprintf(out_a[2], 96, "a sets idle on itself: %s, own %s", res(ioprio_set(WHO_PROCESS, 0, PRIO(3, 0))),
             res(ioprio_get(WHO_PROCESS, 0)));
    snprintf(out_a[3], 96, "a sets be/2 on itself: %s", res(ioprio_set(WHO_PROCESS, gettid(), PRIO(2, 2))));
    pthread_t c;
    pthread_create(&c, NULL, child, NULL);
    pthread_join(c, NULL);
    ATOMIC_STORE(&stage_a, 2);
    while (!ATOMIC_LOAD(&done))
        sleep_ms(1);
    return NULL;
}

static void *thread_b(void *arg)
{
    (void)arg;
    tid_b = gettid();
    /* A thread whose nice value changed: its I/O priority follows (derived while none is set). */
    int r = setpriority(PRIO_PROCESS, 0, 7);
    snprintf(out_a[4], 96, "b nice 7: %s, own %s", res(r), res(ioprio_get(WHO_PROCESS, 0)));
    ATOMIC_STORE(&stage_a, 3);
    while (!ATOMIC_LOAD(&done))
        sleep_ms(1);
    return NULL;
}

static void *ends_at_once(void *arg)
{
    *(pid_t *)arg = gettid();
    return NULL;
}

int main(void)
{
    test_init();
    int main_before = ioprio_get(WHO_PROCESS, 0);
    printf("main at start: %s\n", res(main_before));
    pthread_t a, b;
    pthread_create(&a, NULL, thread_a, NULL);
    wait_at_least(&stage_a, 1, 1, 60000);
    printf("%s\n", out_a[0]);
    printf("main reads a: %s\n", res(ioprio_get(WHO_PROCESS, tid_a)));
    printf("main sets be/5 on a: %s\n", res(ioprio_set(WHO_PROCESS, tid_a, PRIO(2, 5))));
    printf("main reads a: %s, own: %s\n", res(ioprio_get(WHO_PROCESS, tid_a)), res(ioprio_get(WHO_PROCESS, 0)));
    printf("bad class: %s\n", res(ioprio_set(WHO_PROCESS, tid_a, PRIO(5, 0))));
    printf("bad level: %s\n", res(ioprio_set(WHO_PROCESS, tid_a, PRIO(2, 9))));
    printf("bad which: %s %s\n", res(ioprio_set(9, tid_a, PRIO(2, 1))), res(ioprio_get(9, tid_a)));
    printf("real-time class: %s\n", res(ioprio_set(WHO_PROCESS, tid_a, PRIO(1, 4))));
    printf("a still: %s\n", res(ioprio_get(WHO_PROCESS, tid_a)));
    ATOMIC_STORE(&stage_main, 1);
    wait_at_least(&stage_a, 2, 1, 60000);
    for (int i = 1; i < 4; i++)
        printf("%s\n", out_a[i]);
    printf("%s\n", out_child);
    printf("main reads a: %s, own: %s\n", res(ioprio_get(WHO_PROCESS, tid_a)), res(ioprio_get(WHO_PROCESS, 0)));
    pthread_create(&b, NULL, thread_b, NULL);
    wait_at_least(&stage_a, 3, 1, 60000);
    printf("%s\n", out_a[4]);
    printf("main reads b: %s, own: %s\n", res(ioprio_get(WHO_PROCESS, tid_b)), res(ioprio_get(WHO_PROCESS, 0)));

    /* An ended thread's tid. */
    pthread_t e;
    pid_t tid_e = 0;
    pthread_create(&e, NULL, ends_at_once, &tid_e);
    pthread_join(e, NULL);
    printf("ended: get %s set %s set bad class %s\n", res(ioprio_get(WHO_PROCESS, tid_e)),
           res(ioprio_set(WHO_PROCESS, tid_e, PRIO(2, 1))), res(ioprio_set(WHO_PROCESS, tid_e, PRIO(5, 1))));

    /* pidfd_open. */
    int fd = pidfd_open(getpid(), 0);
    printf("pidfd_open process: %s\n", fd >= 0 ? "fd" : res(fd));
    if (fd >= 0)
        close(fd);
    printf("pidfd_open thread: %s\n", res(pidfd_open(tid_a, 0)));
    printf("pidfd_open thread nonblock: %s\n", res(pidfd_open(tid_a, O_NONBLOCK)));
    printf("pidfd_open thread bad flags: %s\n", res(pidfd_open(tid_a, 1)));
    printf("pidfd_open ended thread: %s\n", res(pidfd_open(tid_e, 0)));
    printf("pidfd_open 0: %s\n", res(pidfd_open(0, 0)));
    printf("syscall pidfd_open thread: %s\n", res((int)syscall(SYS_pidfd_open, tid_b, 0)));
    printf("syscall pidfd_open ended thread: %s\n", res((int)syscall(SYS_pidfd_open, tid_e, 0)));

    ATOMIC_STORE(&done, 1);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    printf("main at end: %s (unchanged: %d)\n", res(ioprio_get(WHO_PROCESS, 0)),
           ioprio_get(WHO_PROCESS, 0) == main_before);
    return test_exit_status();
}
