/* pthread_cancel as glibc does it: a thread blocked in each cancellation point is cancelled (cleanup
 * handler run, join gives PTHREAD_CANCELED); pthread_testcancel; a condition variable's mutex is held again
 * when the first cleanup handler runs. Each case's thread says it is about to enter its point, then main
 * waits a little (so the thread is most likely parked there; if not, the request is pending at entry,
 * which must give the same result) and cancels it.
 * asyncshim-test: timeout=120 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/msg.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int pipe_r[2], pipe_w[2], sock[2], lsock, epfd, msq, full_lsock;
static int stdio_in[2], stdio_out[2];
static char junk_for_full[4096];
static FILE *in_file, *out_file; /* a pipe nothing is written to yet; a full pipe nothing reads */
static struct sockaddr_in full_addr;
static pid_t child;
static sem_t sem;
static pthread_mutex_t mtx;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static pthread_t forever;
static atomic_int ready;
static atomic_int cleanups;
static int mutex_held_in_cleanup;

static void cleanup(void *arg)
{
    (void)arg;
    atomic_fetch_add(&cleanups, 1);
}

static void unlock_cleanup(void *arg)
{
    (void)arg;
    /* An error-checking mutex: unlocking succeeds only if this thread holds it again. */
    mutex_held_in_cleanup = pthread_mutex_unlock(&mtx) == 0;
    atomic_fetch_add(&cleanups, 1);
}

static void close_fd(void *arg)
{
    close((int)(long)arg);
}

static struct timespec far_abs(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    ts.tv_sec += 3600;
    return ts;
}

static void *forever_main(void *arg)
{
    (void)arg;
    char c;
    ssize_t n = read(pipe_r[0], &c, 1);
    return (void *)(long)n;
}

static void point(const char *name)
{
    char buf[64];
    struct pollfd pfd = {pipe_r[0], POLLIN, 0};
    fd_set set;
    struct epoll_event ev;
    struct timespec ts = {3600, 0}, abs;
    sigset_t sigs;
    int sig;
    struct {
        long type;
        char text[8];
    } msg;

    atomic_store(&ready, 1);
    if (!strcmp(name, "read")) {
        read(pipe_r[0], buf, 1);
    } else if (!strcmp(name, "write")) {
        for (;;)
            write(pipe_w[1], buf, sizeof buf);
    } else if (!strcmp(name, "recv")) {
        recv(sock[1], buf, 1, 0);
    } else if (!strcmp(name, "send")) {
        for (;;)
            send(sock[1], buf, sizeof buf, 0);
    } else if (!strcmp(name, "connect")) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        pthread_cleanup_push(close_fd, (void *)(long)s);
        connect(s, (struct sockaddr *)&full_addr, sizeof full_addr);
        pthread_cleanup_pop(1);
    } else if (!strcmp(name, "accept")) {
        accept(lsock, NULL, NULL);
    } else if (!strcmp(name, "poll")) {
        poll(&pfd, 1, -1);
    } else if (!strcmp(name, "select")) {
        FD_ZERO(&set);
        FD_SET(pipe_r[0], &set);
        select(pipe_r[0] + 1, &set, NULL, NULL, NULL);
    } else if (!strcmp(name, "epoll_wait")) {
        epoll_wait(epfd, &ev, 1, -1);
    } else if (!strcmp(name, "sleep")) {
        sleep(3600);
    } else if (!strcmp(name, "usleep")) {
        for (;;)
            usleep(900000);
    } else if (!strcmp(name, "nanosleep")) {
        nanosleep(&ts, NULL);
    } else if (!strcmp(name, "clock_nanosleep")) {
        clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
    } else if (!strcmp(name, "pause")) {
        pause();
    } else if (!strcmp(name, "sigwait")) {
        sigemptyset(&sigs);
        sigaddset(&sigs, SIGUSR2);
        sigwait(&sigs, &sig);
    } else if (!strcmp(name, "sigtimedwait")) {
        sigemptyset(&sigs);
        sigaddset(&sigs, SIGUSR2);
        sigtimedwait(&sigs, NULL, &ts);
    } else if (!strcmp(name, "sigsuspend")) {
        sigemptyset(&sigs);
        sigsuspend(&sigs);
    } else if (!strcmp(name, "waitpid")) {
        waitpid(child, NULL, 0);
    } else if (!strcmp(name, "sem_wait")) {
        sem_wait(&sem);
    } else if (!strcmp(name, "sem_timedwait")) {
        abs = far_abs(CLOCK_REALTIME);
        sem_timedwait(&sem, &abs);
    } else if (!strcmp(name, "pthread_join")) {
        pthread_join(forever, NULL);
    } else if (!strcmp(name, "msgrcv")) {
        msgrcv(msq, &msg, sizeof msg.text, 0, 0);
    } else if (!strcmp(name, "fgets")) {
        fgets(buf, sizeof buf, in_file);
    } else if (!strcmp(name, "fread")) {
        fread(buf, 1, sizeof buf, in_file);
    } else if (!strcmp(name, "getline")) {
        char *line = NULL;
        size_t n = 0;
        getline(&line, &n, in_file);
    } else if (!strcmp(name, "fwrite")) {
        for (;;)
            fwrite(buf, 1, sizeof buf, out_file);
    } else if (!strcmp(name, "fprintf")) {
        for (;;)
            fprintf(out_file, "%s", "0123456789012345678901234567890123456789");
    } else if (!strcmp(name, "pthread_testcancel")) {
        for (;;)
            pthread_testcancel();
    }
}

static void *case_main(void *arg)
{
    const char *name = arg;
    pthread_cleanup_push(cleanup, NULL);
    point(name);
    pthread_cleanup_pop(0);
    return (void *)"returned";
}

static void *cond_main(void *arg)
{
    const char *name = arg;
    struct timespec abs;
    pthread_mutex_lock(&mtx);
    pthread_cleanup_push(unlock_cleanup, NULL);
    atomic_store(&ready, 1);
    for (;;) {
        if (!strcmp(name, "pthread_cond_wait")) {
            pthread_cond_wait(&cv, &mtx);
        } else if (!strcmp(name, "pthread_cond_timedwait")) {
            abs = far_abs(CLOCK_REALTIME);
            pthread_cond_timedwait(&cv, &mtx, &abs);
        } else {
            abs = far_abs(CLOCK_MONOTONIC);
            pthread_cond_clockwait(&cv, &mtx, CLOCK_MONOTONIC, &abs);
        }
    }
    pthread_cleanup_pop(0);
    return NULL;
}

static void run(const char *name, void *(*fn)(void *))
{
    pthread_t t;
    void *res = NULL;
    atomic_store(&ready, 0);
    atomic_store(&cleanups, 0);
    mutex_held_in_cleanup = -1;
    pthread_create(&t, NULL, fn, (void *)name);
    while (!atomic_load(&ready))
        usleep(1000);
    usleep(20000);
    int rc = pthread_cancel(t);
    int jr = pthread_join(t, &res);
    printf("%-22s cancel=%d join=%d canceled=%d cleanups=%d", name, rc, jr, res == PTHREAD_CANCELED,
           atomic_load(&cleanups));
    if (mutex_held_in_cleanup != -1)
        printf(" mutex_held_in_cleanup=%d", mutex_held_in_cleanup);
    printf("\n");
    fflush(stdout);
}

int main(void)
{
    static const char *points[] = {"read", "write", "recv", "send", "connect", "accept", "poll", "select", "epoll_wait",
                                   "sleep", "usleep", "nanosleep", "clock_nanosleep", "pause", "sigwait",
                                   "sigtimedwait", "sigsuspend", "waitpid", "sem_wait", "sem_timedwait",
                                   "pthread_join", "msgrcv", "fgets", "fread", "getline", "fwrite",
                                   "fprintf", "pthread_testcancel"};
    static const char *conds[] = {"pthread_cond_wait", "pthread_cond_timedwait", "pthread_cond_clockwait"};
    pthread_mutexattr_t ma;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct epoll_event ev = {.events = EPOLLIN};
    sigset_t usr2;

    /* SIGUSR2 stays blocked so that sigwait waits for it; no one sends it. */
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &usr2, NULL);
    if (pipe(pipe_r) || pipe(pipe_w) || socketpair(AF_UNIX, SOCK_STREAM, 0, sock) || pipe(stdio_in) ||
        pipe(stdio_out))
        return 1;
    signal(SIGPIPE, SIG_IGN);
    in_file = fdopen(stdio_in[0], "r");
    out_file = fdopen(stdio_out[1], "w");
    fcntl(stdio_out[1], F_SETFL, O_NONBLOCK);
    while (write(stdio_out[1], junk_for_full, sizeof junk_for_full) > 0)
        ;
    fcntl(stdio_out[1], F_SETFL, 0);
    /* Fill the write pipe and the socket so that writes block. */
    fcntl(pipe_w[1], F_SETFL, O_NONBLOCK);
    fcntl(sock[1], F_SETFL, O_NONBLOCK);
    char junk[4096] = {0};
    while (write(pipe_w[1], junk, sizeof junk) > 0)
        ;
    while (send(sock[1], junk, sizeof junk, 0) > 0)
        ;
    fcntl(pipe_w[1], F_SETFL, 0);
    fcntl(sock[1], F_SETFL, 0);
    lsock = socket(AF_INET, SOCK_STREAM, 0);
    if (bind(lsock, (struct sockaddr *)&sa, sizeof sa) || listen(lsock, 4))
        return 1;
    /* A listener whose accept queue is full: a further connect waits for an answer that does not come. */
    full_lsock = socket(AF_INET, SOCK_STREAM, 0);
    full_addr = sa;
    socklen_t alen = sizeof full_addr;
    if (bind(full_lsock, (struct sockaddr *)&full_addr, sizeof full_addr) || listen(full_lsock, 0) ||
        getsockname(full_lsock, (struct sockaddr *)&full_addr, &alen))
        return 1;
    for (int i = 0; i < 4; i++) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(s, (struct sockaddr *)&full_addr, sizeof full_addr);
    }
    usleep(50000);
    epfd = epoll_create1(0);
    ev.data.fd = pipe_r[0];
    epoll_ctl(epfd, EPOLL_CTL_ADD, pipe_r[0], &ev);
    sem_init(&sem, 0, 0);
    msq = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&mtx, &ma);
    pthread_create(&forever, NULL, forever_main, NULL);

    for (size_t i = 0; i < sizeof points / sizeof *points; i++)
        run(points[i], case_main);
    for (size_t i = 0; i < sizeof conds / sizeof *conds; i++)
        run(conds[i], cond_main);

    /* The FILEs the cancelled stdio calls waited on: no error marked, unlocked, and nothing lost. */
    int in_free = ftrylockfile(in_file) == 0, out_free = ftrylockfile(out_file) == 0;
    if (in_free)
        funlockfile(in_file);
    if (out_free)
        funlockfile(out_file);
    printf("after stdio cancellations: error flags %d %d, unlocked %d %d\n", ferror(in_file), ferror(out_file), in_free,
           out_free);
    char got[32] = "";
    write(stdio_in[1], "a line\n", 7);
    printf("then fgets: %s", fgets(got, sizeof got, in_file) ? got : "NULL\n");

    /* The thread joined by the cancelled joiner is still joinable. */
    write(pipe_r[1], "x", 1);
    void *res;
    int jr = pthread_join(forever, &res);
    printf("joined after cancelled joiner: join=%d value=%ld\n", jr, (long)res);

    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    /* What the cancelled writers left in out_file's buffer goes nowhere (its reader is closed: EPIPE). */
    close(stdio_out[0]);
    fclose(out_file);
    fclose(in_file);
    close(stdio_in[1]);
    if (msq >= 0)
        msgctl(msq, IPC_RMID, NULL);
    printf("done\n");
    return 0;
}
