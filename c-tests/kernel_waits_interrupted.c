/* Signals and cancellation for a thread waiting in the kernel in a call that has nothing to poll and that
 * glibc makes without any of the calls the shim sees: the open of a FIFO that has no other end (open for
 * reading, openat for writing, creat), mq_receive/mq_timedreceive on an empty POSIX message queue,
 * mq_send/mq_timedsend on a full one, and sigpause. As natively:
 *  - a handler runs in the waiting thread, on its own stack, while the call waits;
 *  - a handler that leaves by siglongjmp abandons the call (no FIFO opened, no message taken or sent);
 *  - a handler that returns: the call fails with EINTR without SA_RESTART and goes on with it (sigpause
 *    fails with EINTR either way);
 *  - pthread_cancel acts while the call waits (the join returns before what it waits for is released):
 *    the cleanup handler runs, the join gets PTHREAD_CANCELED; a request made while cancellation was
 *    disabled is acted on as the call is entered, before it does anything;
 *  - not interrupted, the call completes once its other end arrives.
 * tcdrain on a pseudo-terminal (whose driver keeps no output to wait for) returns at once, and a pending
 * cancellation request is acted on as it is entered; so is one at msync. Last, in a copy of the program run with the shim's
 * stall monitor off (ASYNCSHIM_STALL_MS=0, which moves a call that keeps its worker to a helper thread),
 * the first handled process-directed signal ends a FIFO open with EINTR: the kernel may give it to the
 * worker that makes the call, where the handler runs at once and the shim's own SA_RESTART must not
 * restart the call. Signals are sent with pthread_kill, and with kill()
 * to the process while the main thread blocks the signal; they are resent until they have done their work.
 * asyncshim-test: timeout=240 */
#include "test_util.h"
#include "glibc_compat.h"
#include "waiter.h"
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

enum kind { OPEN_READ, OPENAT_WRITE, CREAT, MQ_RECEIVE, MQ_TIMEDRECEIVE, MQ_SEND, MQ_TIMEDSEND, SIGPAUSE, KINDS };
static const char *kind_name[] = { "open(FIFO, O_RDONLY)", "openat(FIFO, O_WRONLY)", "creat(FIFO)", "mq_receive",
                                   "mq_timedreceive", "mq_send", "mq_timedsend", "sigpause" };

static enum kind kind;
static long wait_result;
static int wait_errno;
static char got[16];

static char fifo_path[64];
static mqd_t queue = (mqd_t)-1;

static int is_fifo(enum kind k) { return k <= CREAT; }
static int is_mq(enum kind k) { return k >= MQ_RECEIVE && k <= MQ_TIMEDSEND; }
static int mq_sends(enum kind k) { return k == MQ_SEND || k == MQ_TIMEDSEND; }

static struct timespec an_hour_from_now(void)
{
    return deadline_in(CLOCK_REALTIME, 3600 * 1000L);
}

/* The call itself, made by the waiter. */
static void do_wait(void)
{
    struct timespec limit = an_hour_from_now();
    errno = 0;
    switch (kind) {
    case OPEN_READ:
        wait_result = open(fifo_path, O_RDONLY);
        break;
    case OPENAT_WRITE:
        wait_result = openat(AT_FDCWD, fifo_path, O_WRONLY);
        break;
    case CREAT:
        wait_result = creat(fifo_path, 0600);
        break;
    case MQ_RECEIVE:
        wait_result = mq_receive(queue, got, sizeof got, NULL);
        break;
    case MQ_TIMEDRECEIVE:
        wait_result = mq_timedreceive(queue, got, sizeof got, NULL, &limit);
        break;
    case MQ_SEND:
        wait_result = mq_send(queue, "sent", 4, 0);
        break;
    case MQ_TIMEDSEND:
        wait_result = mq_timedsend(queue, "sent", 4, 0, &limit);
        break;
    case SIGPAUSE:
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
        wait_result = sigpause(SIGINT);
#pragma GCC diagnostic pop
        break;
    default:
        break;
    }
    wait_errno = errno;
}

/* A FIFO with no other end, or a queue that is empty (receives) or full (sends: one message at most). */
static void setup(void)
{
    wait_result = -99;
    wait_errno = 0;
    memset(got, 0, sizeof got);
    if (is_fifo(kind)) {
        snprintf(fifo_path, sizeof fifo_path, "/tmp/asyncshim-fifo-%d", (int)getpid());
        unlink(fifo_path);
        if (mkfifo(fifo_path, 0600) != 0)
            exit(3);
    }
    if (is_mq(kind)) {
        char name[64];
        struct mq_attr attr;
        memset(&attr, 0, sizeof attr);
        attr.mq_maxmsg = 1;
        attr.mq_msgsize = sizeof got;
        snprintf(name, sizeof name, "/asyncshim-mq-%d", (int)getpid());
        queue = mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &attr);
        if (queue == (mqd_t)-1) {
            printf("mq_open: %s\n", errname(errno));
            exit(3);
        }
        mq_unlink(name);
        if (mq_sends(kind) && mq_send(queue, "full", 4, 0) != 0)
            exit(3);
    }
}

/* Lets the call complete: the FIFO's other end opens (and closes again once the call is over), a message
 * arrives in the empty queue or one leaves the full one (kept to print). */
static int release_fd = -1;
static char taken[16];

static void release(void)
{
    if (is_fifo(kind) && release_fd < 0)
        release_fd = open(fifo_path, O_RDWR | O_NONBLOCK);
    if (is_mq(kind) && !mq_sends(kind))
        mq_send(queue, "released", 8, 0);
    if (is_mq(kind) && mq_sends(kind) && !taken[0])
        mq_receive(queue, taken, sizeof taken, NULL);
}

/* After the scenario: what the call left, and nothing left behind. */
static void finish(void)
{
    if (is_fifo(kind)) {
        if (release_fd >= 0)
            close(release_fd);
        release_fd = -1;
        unlink(fifo_path);
    }
    if (is_mq(kind)) {
        char rest[16] = {0};
        struct timespec now = deadline_in(CLOCK_REALTIME, 0);
        ssize_t n = mq_timedreceive(queue, rest, sizeof rest, NULL, &now);
        printf("  left in the queue: %s\n", n >= 0 ? rest : errname(errno));
        close(queue);
        queue = (mqd_t)-1;
    }
    memset(taken, 0, sizeof taken);
}

static void print_result(void)
{
    if (print_if_interrupted(wait_result, wait_errno))
        return;
    if (is_fifo(kind)) {
        printf("  returned a descriptor: %s\n", wait_result >= 0 ? "yes" : "no");
        close((int)wait_result);
    } else if (is_mq(kind) && !mq_sends(kind)) {
        printf("  returned %ld: \"%s\"\n", wait_result, got);
    } else {
        printf("  returned %ld\n", wait_result);
    }
}

static void select_kind(int k) { kind = (enum kind)k; }
static int is_sigpause(int k) { return k == SIGPAUSE; }

/* sigpause fails with EINTR whatever SA_RESTART says (and nothing else ends it). */
static void run_signal(int k, enum mode m)
{
    signal_scenario(m == RESTART, m == RESTART && k != SIGPAUSE, signalled_waiter_body, k == SIGPAUSE ? NULL : release);
}

/* A receive would not wait when the request is made while cancellation is disabled: the request is
 * acted on first. */
static void queue_one(void)
{
    if (is_mq(kind) && !mq_sends(kind))
        mq_send(queue, "queued", 6, 0);
}

static void print_taken(void)
{
    if (is_mq(kind) && mq_sends(kind))
        printf("  taken to make room: \"%s\"\n", taken);
}

static const struct waiter_steps steps = { setup, release, print_result, finish, queue_one, print_taken };

/* tcdrain: on a pseudo-terminal it returns at once; on a pipe ENOTTY; a pending request acts at entry.
 * msync (which waits for the write-back, uninterruptibly): a pending request acts at entry. */
static int pty_fd = -1;
static char *mapped;

static void call_tcdrain(void) { tcdrain(pty_fd); }
static void call_msync(void) { msync(mapped, 4096, MS_SYNC); }

static void *entry_cancelled(void *arg)
{
    void (*call)(void) = (void (*)(void))arg;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    pthread_cleanup_push(waiter_cleanup, NULL);
    ATOMIC_STORE(&armed, 1);
    wait_at_least(&may_enter, 1, 1, 60000);
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
    call();
    pthread_cleanup_pop(0);
    return NULL;
}

/* `call` made by a thread with a cancellation request made while it had cancellation disabled. */
static void run_entry_cancelled(const char *name, void (*call)(void))
{
    armed = may_enter = cleanup_ran = 0;
    pthread_t t;
    pthread_create(&t, NULL, entry_cancelled, (void *)call);
    while (!ATOMIC_LOAD(&armed))
        sleep_ms(1);
    pthread_cancel(t);
    ATOMIC_STORE(&may_enter, 1);
    void *value = NULL;
    pthread_join(t, &value);
    printf("%s, pthread_cancel made while disabled: joined: %s, cleanup handler ran: %s\n", name,
           value == PTHREAD_CANCELED ? "PTHREAD_CANCELED" : "a value", ATOMIC_LOAD(&cleanup_ran) ? "yes" : "no");
}

static void run_tcdrain(void)
{
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0)
        exit(3);
    pty_fd = open(ptsname(master), O_RDWR | O_NOCTTY);
    if (pty_fd < 0)
        exit(3);
    if (write(pty_fd, "unread output\n", 14) != 14)
        exit(3);
    errno = 0;
    int r = tcdrain(pty_fd);
    printf("tcdrain(pty with unread output): %d %s\n", r, r ? errname(errno) : "");
    int p[2];
    if (pipe(p) != 0)
        exit(3);
    errno = 0;
    r = tcdrain(p[0]);
    printf("tcdrain(pipe): %d %s\n", r, r ? errname(errno) : "");
    close(p[0]);
    close(p[1]);
    run_entry_cancelled("tcdrain", call_tcdrain);
    close(pty_fd);
    close(master);
    char path[] = "/tmp/asyncshim-msyncXXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || ftruncate(fd, 4096) != 0)
        exit(3);
    unlink(path);
    mapped = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mapped == MAP_FAILED)
        exit(3);
    mapped[0] = 'x';
    printf("msync: %d\n", msync(mapped, 4096, MS_SYNC));
    run_entry_cancelled("msync", call_msync);
    munmap(mapped, 4096);
    close(fd);
}

/* The copy's scenario (see the top): signals sent one at a time until the open ends. */
static void first_signal(void)
{
    set_mode(PROCESS_RETURN);
    kind = OPEN_READ;
    setup();
    mask_usr2(SIG_BLOCK);
    set_signal_handler(SIGUSR2, waiter_handler, 0);
    start_waiter(signalled_waiter_body, NULL, 1);
    int sent = 0;
    while (!ATOMIC_LOAD(&wait_done) && sent < 100) {
        kill(getpid(), SIGUSR2);
        sent++;
        sleep_ms(20);
    }
    if (!ATOMIC_LOAD(&wait_done))
        release();
    pthread_join(waiter, NULL);
    fprintf(stderr, "first signal: %d sent, %d handled\n", sent, ATOMIC_LOAD(&handled));
    printf("open(FIFO, O_RDONLY), kill() to the process, handler returns, monitor off: ended by the first "
           "handled signal: %s\n", ATOMIC_LOAD(&handled) == 1 ? "yes" : "no");
    print_result();
    finish();
}

int main(int argc, char **argv)
{
    test_init();
    waiter_call = do_wait;
    if (argc > 1 && !strcmp(argv[1], "first-signal")) {
        first_signal();
        return test_exit_status();
    }
    /* sigpause only ends for a handler. */
    all_scenarios(&steps, kind_name, KINDS, select_kind, run_signal, is_sigpause);
    run_tcdrain();
    /* Two workers in the copy, so that the main thread runs while the waiter keeps one. */
    run_copy_monitor_off("first-signal", "2");
    return test_exit_status();
}
