/* Signals and cancellation for a thread waiting in a call that glibc makes inside itself, with a system
 * call no hook sees: aio_suspend (a futex wait inside glibc, for an aio_read of an empty pipe; untimed and
 * with a timeout), fopen/fopen64 of a FIFO that has no other end and freopen of a stream onto one (glibc's
 * internal open). As natively:
 *  - a handler runs in the waiting thread, on its own stack, while the call waits;
 *  - a handler that leaves by siglongjmp abandons the call (no FILE made; the AIO request goes on);
 *  - a handler that returns: the call fails with EINTR without SA_RESTART; with SA_RESTART an untimed
 *    aio_suspend and fopen go on waiting, a timed aio_suspend fails with EINTR (the kernel never restarts
 *    a timed futex wait after a handler);
 *  - pthread_cancel acts while the call waits (the cleanup handler runs, the join gets PTHREAD_CANCELED),
 *    also for a request made while cancellation was disabled; aio_suspend whose request is already over
 *    returns 0 without acting on a pending request (glibc's point is its wait);
 *  - not interrupted, the call completes once its other end arrives, and the data goes through;
 *  - aio_suspend's timeout gives EAGAIN.
 * Then fopen's modes on a regular file (flags, position, close-on-exec, errno, freopen's close-on-exec),
 * and, in a copy run with one worker and the shim's stall monitor off, aio_suspend waits that the main
 * thread must end: under the shim they end only if the waiting thread does not keep the one worker (an
 * open of a FIFO does keep it until the monitor moves it, so fopen is not in the copy).
 * asyncshim-test: timeout=240 */
#include "test_util.h"
#include "glibc_compat.h"
#include "waiter.h"
#include <aio.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <wchar.h>

enum kind { AIO, AIO_TIMED, FOPEN_READ, FOPEN64_WRITE, FREOPEN_READ, KINDS };
static const char *kind_name[] = { "aio_suspend", "aio_suspend(timeout 1 h)", "fopen(FIFO, \"r\")",
                                   "fopen64(FIFO, \"we\")", "freopen(FIFO, \"r\", a stream of /dev/null)" };

static enum kind kind;
static long wait_result;
static int wait_errno;
static char got[32];
static int fd_cloexec = -1;

static char fifo_path[64];
static int pipe_fds[2] = { -1, -1 };
static struct aiocb cb;
static char aio_buf[32];

static int is_aio(enum kind k) { return k <= AIO_TIMED; }

static void do_wait(void)
{
    const struct aiocb *list[2] = { NULL, &cb };
    struct timespec hour = { 3600, 0 };
    FILE *f;
    errno = 0;
    switch (kind) {
    case AIO:
    case AIO_TIMED:
        wait_result = aio_suspend(list, 2, kind == AIO_TIMED ? &hour : NULL);
        wait_errno = errno;
        break;
    case FOPEN_READ:
    case FREOPEN_READ:
        if (kind == FOPEN_READ) {
            f = fopen(fifo_path, "r");
        } else {
            f = fopen("/dev/null", "r");
            f = f ? freopen(fifo_path, "r", f) : NULL;
        }
        wait_errno = errno;
        wait_result = f ? 0 : -1;
        if (f) {
            if (!fgets(got, sizeof got, f))
                strcpy(got, "(nothing)");
            fclose(f);
        }
        break;
    case FOPEN64_WRITE:
        f = fopen64(fifo_path, "we");
        wait_errno = errno;
        wait_result = f ? 0 : -1;
        if (f) {
            fd_cloexec = (fcntl(fileno(f), F_GETFD) & FD_CLOEXEC) != 0;
            fputs("written\n", f);
            fclose(f);
        }
        break;
    default:
        break;
    }
}

/* An AIO read of an empty pipe, or a FIFO with no other end. */
static void setup(void)
{
    wait_result = -99;
    wait_errno = 0;
    memset(got, 0, sizeof got);
    memset(aio_buf, 0, sizeof aio_buf);
    fd_cloexec = -1;
    if (is_aio(kind)) {
        if (pipe(pipe_fds) != 0)
            exit(3);
        memset(&cb, 0, sizeof cb);
        cb.aio_fildes = pipe_fds[0];
        cb.aio_buf = aio_buf;
        cb.aio_nbytes = sizeof aio_buf - 1;
        cb.aio_sigevent.sigev_notify = SIGEV_NONE;
        if (aio_read(&cb) != 0) {
            printf("aio_read: %s\n", errname(errno));
            exit(3);
        }
    } else {
        snprintf(fifo_path, sizeof fifo_path, "/tmp/asyncshim-libcfifo-%d", (int)getpid());
        unlink(fifo_path);
        if (mkfifo(fifo_path, 0600) != 0)
            exit(3);
    }
}

/* Lets the call complete: bytes for the AIO read, the FIFO's other end (with a line for a reader). */
static int release_fd = -1;

static void release(void)
{
    if (is_aio(kind) && pipe_fds[1] >= 0) {
        if (write(pipe_fds[1], "released", 8) != 8)
            exit(3);
        close(pipe_fds[1]);
        pipe_fds[1] = -1;
    }
    if ((kind == FOPEN_READ || kind == FREOPEN_READ) && release_fd < 0) {
        release_fd = open(fifo_path, O_RDWR | O_NONBLOCK);
        if (write(release_fd, "released\n", 9) != 9)
            exit(3);
    }
    if (kind == FOPEN64_WRITE && release_fd < 0)
        release_fd = open(fifo_path, O_RDONLY | O_NONBLOCK);
}

/* After the scenario: the AIO request ends (released if it was not) and what it read; what the FIFO's
 * reader got. */
static void finish(void)
{
    if (is_aio(kind)) {
        release();
        const struct aiocb *list[1] = { &cb };
        while (aio_error(&cb) == EINPROGRESS)
            aio_suspend(list, 1, NULL);
        ssize_t n = aio_return(&cb);
        printf("  the AIO read: %zd \"%s\"\n", n, aio_buf);
        close(pipe_fds[0]);
        pipe_fds[0] = -1;
        return;
    }
    if (kind == FOPEN64_WRITE && release_fd >= 0) {
        char buf[32] = { 0 };
        ssize_t n = read(release_fd, buf, sizeof buf - 1);
        printf("  the FIFO's reader got: %s\n", n > 0 ? buf : n == 0 ? "end of file" : errname(errno));
    }
    if (release_fd >= 0)
        close(release_fd);
    release_fd = -1;
    unlink(fifo_path);
}

static void print_result(void)
{
    if (print_if_interrupted(wait_result, wait_errno))
        return;
    printf("  returned %ld\n", wait_result);
    if (kind == FOPEN_READ || kind == FREOPEN_READ)
        printf("  read: %s", got);
    if (kind == FOPEN64_WRITE)
        printf("  close-on-exec: %d\n", fd_cloexec);
}

static void select_kind(int k) { kind = (enum kind)k; }

/* A timed aio_suspend fails after a handler even with SA_RESTART. */
static void run_signal(int k, enum mode m)
{
    signal_scenario(m == RESTART, m == RESTART && k != AIO_TIMED, signalled_waiter_body, release);
}

static const struct waiter_steps steps = { setup, release, print_result, finish, NULL, NULL };

/* aio_suspend whose request is over, called with a cancellation request pending: returns 0, and the
 * request is acted on at the next cancellation point. */
static int returned_before_point = -99;

static void *over_body(void *arg)
{
    (void)arg;
    const struct aiocb *list[1] = { &cb };
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    pthread_cleanup_push(waiter_cleanup, NULL);
    ATOMIC_STORE(&armed, 1);
    wait_at_least(&may_enter, 1, 1, 60000);
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
    ATOMIC_STORE(&returned_before_point, aio_suspend(list, 1, NULL));
    pthread_testcancel();
    pthread_cleanup_pop(0);
    return NULL;
}

static void run_over_with_request(void)
{
    kind = AIO;
    setup();
    release();
    const struct aiocb *list[1] = { &cb };
    while (aio_error(&cb) == EINPROGRESS)
        aio_suspend(list, 1, NULL);
    cleanup_ran = may_enter = 0;
    start_waiter(over_body, NULL, 0);
    pthread_cancel(waiter);
    ATOMIC_STORE(&may_enter, 1);
    void *value = NULL;
    pthread_join(waiter, &value);
    printf("aio_suspend of a request that is over, with a cancellation request pending: returned %d, then "
           "joined: %s, cleanup handler ran: %s\n", ATOMIC_LOAD(&returned_before_point),
           value == PTHREAD_CANCELED ? "PTHREAD_CANCELED" : "a value", ATOMIC_LOAD(&cleanup_ran) ? "yes" : "no");
    finish();
}

static void run_timeout(void)
{
    kind = AIO;
    setup();
    const struct aiocb *list[1] = { &cb };
    struct timespec t = { 0, 50 * 1000000L };
    int64_t t0 = mono_ns();
    errno = 0;
    int r = aio_suspend(list, 1, &t);
    int e = errno;
    int64_t ms = (mono_ns() - t0) / 1000000;
    fprintf(stderr, "aio_suspend timeout after %lld ms\n", (long long)ms);
    printf("aio_suspend(timeout 50 ms), nothing arrives: %d %s, after at least 50 ms: %s\n", r, r ? errname(e) : "",
           ms >= 49 ? "yes" : "no");
    finish();
}

/* fopen's modes on a regular file: what glibc makes of each. */
static void run_modes(void)
{
    static const char *modes[] = { "r",  "r+", "w",   "w+",  "a",          "a+",  "rb",       "rbe", "re",
                                   "rm", "rx", "wx",  "ab+", "a,x",        "rc",  "r,e", "r,ccs=UTF-8e",  "r,ccs=UTF-8", "q", "",
                                   "rbbbbbbe", "rbbbbbe", "w+x", "ae" };
    char path[64];
    snprintf(path, sizeof path, "/tmp/asyncshim-fopen-%d", (int)getpid());
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || write(fd, "0123456789", 10) != 10)
            exit(3);
        close(fd);
        errno = 0;
        FILE *f = fopen(path, modes[i]);
        printf("fopen(file, \"%s\"): ", modes[i]);
        if (!f) {
            printf("NULL %s\n", errname(errno));
            continue;
        }
        int fl = fcntl(fileno(f), F_GETFL);
        int acc = fl & O_ACCMODE;
        printf("%s%s%s, close-on-exec %d, offset %lld, ftell %ld, fwide %d", acc == O_RDONLY ? "O_RDONLY" : acc == O_WRONLY ? "O_WRONLY" : "O_RDWR",
               fl & O_APPEND ? "|O_APPEND" : "", fl & O_NONBLOCK ? "|O_NONBLOCK" : "",
               (fcntl(fileno(f), F_GETFD) & FD_CLOEXEC) != 0, (long long)lseek(fileno(f), 0, SEEK_CUR), ftell(f),
               fwide(f, 0));
        if (acc != O_WRONLY && fwide(f, 0) <= 0)
            printf(", first byte '%c'", fgetc(f));
        if (acc != O_RDONLY && fwide(f, 0) <= 0) {
            fputs("X", f);
            fflush(f);
            struct stat st;
            fstat(fileno(f), &st);
            printf(", size after a byte %lld", (long long)st.st_size);
        }
        printf("\n");
        /* freopen of the stream with a mode without 'e' (glibc keeps the first mode's close-on-exec). */
        FILE *g = freopen(path, "r", f);
        printf("  freopen(\"r\"): %s, close-on-exec %d\n", g ? "the stream" : errname(errno),
               g ? (fcntl(fileno(g), F_GETFD) & FD_CLOEXEC) != 0 : -1);
        if (g)
            fclose(g);
    }
    unlink(path);
    errno = 0;
    FILE *f = fopen("/nonexistent/asyncshim", "r");
    printf("fopen(missing, \"r\"): %s %s\n", f ? "a stream" : "NULL", errname(errno));
    errno = 0;
    f = fopen("/proc/self/status", "r+x");
    printf("fopen(/proc/self/status, \"r+x\"): %s %s\n", f ? "a stream" : "NULL", f ? "" : errname(errno));
    if (f)
        fclose(f);
}

/* The copy's scenarios (see the top). */
static void main_must_release(void)
{
    kind = AIO;
    plain_scenario(&steps, kind_name[AIO]);
    kind = AIO_TIMED;
    plain_scenario(&steps, kind_name[AIO_TIMED]);
}

int main(int argc, char **argv)
{
    test_init();
    waiter_call = do_wait;
    if (argc > 1 && !strcmp(argv[1], "one-worker")) {
        printf("one worker, monitor off:\n");
        main_must_release();
        return test_exit_status();
    }
    all_scenarios(&steps, kind_name, KINDS, select_kind, run_signal, NULL);
    run_over_with_request();
    run_timeout();
    run_modes();
    run_copy_monitor_off("one-worker", "1");
    return test_exit_status();
}
