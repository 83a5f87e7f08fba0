/* Signals and cancellation for a thread waiting in a call the shim hands to a helper thread: waitpid(-1),
 * wait(), waitid(P_ALL), waitpid(0) (its process group), system(), pclose(), fcntl(F_SETLKW),
 * lockf(F_LOCK), flock(LOCK_EX), splice() from an empty pipe, sendfile() to a full socket, and the
 * process-shared waits made without io_uring (a seccomp filter makes io_uring_setup fail with ENOSYS, as
 * on a kernel without it): a shared futex, sem_wait on a process-shared semaphore, pthread_mutex_lock of a
 * process-shared mutex. As natively:
 *  - a handler runs in the waiting thread, on its own stack, while the call waits;
 *  - a handler that leaves by siglongjmp abandons the call: the child a wait was waiting for is still
 *    there to reap afterwards (nothing else reaped it), the lock is not taken;
 *  - a handler that returns: the waits, the lock and the transfers fail with EINTR without SA_RESTART
 *    and go on with it; system(), pclose() and the mutex go on either way (glibc restarts their wait);
 *    nothing is moved twice or lost (the bytes left in the pipe, the socket, the file position say so);
 *  - pthread_cancel acts while the call waits (the join returns before what it waits for is released):
 *    the cleanup handler runs, the join gets PTHREAD_CANCELED; a wait's child is left to reap, system()'s
 *    child is killed and reaped, the lock is not taken.
 * Then regular-file reads that wait for the disk (the file's pages dropped from the page cache before each
 * pass), pread and fsync, while signals keep arriving: every read is whole and intact, a handler that
 * leaves by siglongjmp finds the file position at a chunk boundary (a read is never cut or made twice),
 * and the handler runs in the reader, on its own stack.
 * The signal is resent until it has done its work, so whether the first one found the thread already
 * waiting changes nothing in the output. Signals are sent with pthread_kill, and with kill() to the process
 * while the main thread blocks the signal.
 * asyncshim-test: timeout=240 */
#include "no_uring.h"
#include "test_util.h"
#include "waiter.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

enum kind {
    WAITPID_ANY, WAIT, WAITID_ALL, WAITPID_PGRP, SYSTEM, SETLKW, PCLOSE, LOCKF, FLOCK,
    SPLICE, SENDFILE, FUTEX, SEM, MUTEX, KINDS
};
static const char *kind_name[] = { "waitpid(-1)", "wait()", "waitid(P_ALL)", "waitpid(0)", "system()",
                                   "fcntl(F_SETLKW)", "pclose()", "lockf(F_LOCK)", "flock(LOCK_EX)",
                                   "splice(empty pipe)", "sendfile(full socket)", "FUTEX_WAIT (shared)",
                                   "sem_wait (process-shared)", "pthread_mutex_lock (process-shared)" };

static int is_lock(enum kind k) { return k == SETLKW || k == LOCKF || k == FLOCK; }
/* The waits with no child and no lock file: their own set-up, release and account. */
static int is_local(enum kind k) { return k >= SPLICE; }

static enum kind kind;
static long wait_result;
static int wait_errno, wait_status;

static pid_t child;        /* the child a wait waits for, the holder of the lock */
static int release_fd = -1; /* written to let the child (or system's shell) go on */
static int shell_fd = -1;   /* the read end system()'s shell reads from */
static int lock_fd = -1;
static char lock_path[64];

static int xfer_in = -1, xfer_out = -1, xfer_check = -1; /* splice's pipes; sendfile's file and socket */
static int sock_full = -1, sock_peer = -1;
static long sock_filled;                                 /* bytes the full socket holds before the release */
static int released;
/* The process-shared objects, in shared memory. */
static struct shared {
    int word;
    sem_t sem;
    pthread_mutex_t mutex;
} *shared;


static struct flock whole_file(short type)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    return fl;
}

/* The wait itself, made by the waiter. */
static FILE *popened;

static void do_wait(void)
{
    siginfo_t si;
    struct flock fl;
    char cmd[64];
    int st = 0;
    errno = 0;
    switch (kind) {
    case WAITPID_ANY:
        wait_result = waitpid(-1, &st, 0);
        break;
    case WAIT:
        wait_result = wait(&st);
        break;
    case WAITID_ALL:
        memset(&si, 0, sizeof si);
        wait_result = waitid(P_ALL, 0, &si, WEXITED);
        if (wait_result == 0) {
            wait_result = si.si_pid;
            st = si.si_status << 8;
        }
        break;
    case WAITPID_PGRP:
        wait_result = waitpid(0, &st, 0);
        break;
    case SYSTEM:
        snprintf(cmd, sizeof cmd, "read x <&%d; exit 3", shell_fd);
        wait_result = system(cmd);
        st = (int)wait_result;
        break;
    case SETLKW:
        fl = whole_file(F_WRLCK);
        wait_result = fcntl(lock_fd, F_SETLKW, &fl);
        break;
    case PCLOSE:
        wait_result = pclose(popened);
        st = (int)wait_result;
        break;
    case LOCKF:
        wait_result = lockf(lock_fd, F_LOCK, 0);
        break;
    case FLOCK:
        wait_result = flock(lock_fd, LOCK_EX);
        break;
    case SPLICE:
        wait_result = splice(xfer_in, NULL, xfer_out, NULL, 64, 0);
        break;
    case SENDFILE:
        wait_result = sendfile(sock_full, xfer_in, NULL, 100);
        break;
    case FUTEX:
        wait_result = syscall(SYS_futex, &shared->word, FUTEX_WAIT, 0, NULL, NULL, 0);
        break;
    case SEM:
        wait_result = sem_wait(&shared->sem);
        break;
    case MUTEX:
        wait_result = pthread_mutex_lock(&shared->mutex);
        break;
    default:
        break;
    }
    wait_errno = errno;
    wait_status = st;
}

/* The wait, then the lock it took given back. */
static void wait_and_unlock(void)
{
    do_wait();
    if (kind == SETLKW && wait_result == 0) {
        struct flock fl = whole_file(F_UNLCK);
        fcntl(lock_fd, F_SETLK, &fl);
    }
    if (kind == LOCKF && wait_result == 0)
        lockf(lock_fd, F_ULOCK, 0);
    if (kind == FLOCK && wait_result == 0)
        flock(lock_fd, LOCK_UN);
    if (kind == MUTEX && wait_result == 0)
        pthread_mutex_unlock(&shared->mutex);
}

static void *waiter_body(void *arg)
{
    (void)arg;
    wait_in_waiter(wait_and_unlock, NULL);
    return NULL;
}

/* The pipes, the full socket or the shared object a local wait waits on. */
static void setup_local(void)
{
    int p[2], q[2], sv[2];
    child = -1;
    switch (kind) {
    case SPLICE:
        /* splice waits for data in the first pipe, whose write end main keeps until the release. */
        if (pipe(p) != 0 || pipe(q) != 0)
            exit(3);
        xfer_in = p[0];
        release_fd = p[1];
        xfer_out = q[1];
        xfer_check = q[0];
        break;
    case SENDFILE: {
        /* sendfile waits for room in a socket filled to the brim; the release reads what filled it. */
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
            exit(3);
        sock_full = sv[0];
        sock_peer = sv[1];
        char fill[4096];
        memset(fill, 'f', sizeof fill);
        fcntl(sock_full, F_SETFL, O_NONBLOCK);
        sock_filled = 0;
        for (;;) {
            ssize_t n = write(sock_full, fill, sizeof fill);
            if (n <= 0)
                break;
            sock_filled += n;
        }
        fcntl(sock_full, F_SETFL, 0);
        char path[] = "/tmp/asyncshim-sendfileXXXXXX";
        xfer_in = mkstemp(path);
        if (xfer_in < 0)
            exit(3);
        unlink(path);
        char data[100];
        memset(data, 'd', sizeof data);
        if (write(xfer_in, data, sizeof data) != sizeof data)
            exit(3);
        lseek(xfer_in, 0, SEEK_SET);
        break;
    }
    case FUTEX:
        shared->word = 0;
        break;
    case SEM:
        sem_init(&shared->sem, 1, 0);
        break;
    case MUTEX: {
        pthread_mutexattr_t a;
        pthread_mutexattr_init(&a);
        pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
        pthread_mutex_init(&shared->mutex, &a);
        pthread_mutexattr_destroy(&a);
        pthread_mutex_lock(&shared->mutex);
        break;
    }
    default:
        break;
    }
}

/* Lets a local wait complete. */
static void release_local(void)
{
    switch (kind) {
    case SENDFILE: {
        char b[4096];
        for (long left = sock_filled; left > 0;) {
            ssize_t n = read(sock_peer, b, left < (long)sizeof b ? (size_t)left : sizeof b);
            if (n <= 0)
                break;
            left -= n;
        }
        break;
    }
    case FUTEX:
        ATOMIC_STORE(&shared->word, 1);
        syscall(SYS_futex, &shared->word, FUTEX_WAKE, 1, NULL, NULL, 0);
        break;
    case SEM:
        sem_post(&shared->sem);
        break;
    case MUTEX:
        pthread_mutex_unlock(&shared->mutex);
        break;
    default:
        break;
    }
}

/* How many bytes `fd` holds unread (it is drained). */
static long drain(int fd)
{
    char b[4096];
    long total = 0;
    fcntl(fd, F_SETFL, O_NONBLOCK);
    for (;;) {
        ssize_t n = read(fd, b, sizeof b);
        if (n <= 0)
            return total;
        total += n;
    }
}

/* After a local wait: where the bytes are, what the shared object holds. */
static void finish_local(void)
{
    int v = -1;
    switch (kind) {
    case SPLICE:
        printf("  bytes moved: %ld, left in the source pipe: %ld\n", drain(xfer_check), drain(xfer_in));
        close(xfer_in);
        close(xfer_out);
        close(xfer_check);
        break;
    case SENDFILE:
        printf("  bytes sent: %ld, file position: %ld\n", drain(sock_peer), (long)lseek(xfer_in, 0, SEEK_CUR));
        close(sock_full);
        close(sock_peer);
        close(xfer_in);
        break;
    case SEM:
        sem_getvalue(&shared->sem, &v);
        printf("  semaphore value afterwards: %d\n", v);
        sem_destroy(&shared->sem);
        break;
    case MUTEX:
        v = pthread_mutex_trylock(&shared->mutex);
        printf("  mutex free afterwards: %s\n", v == 0 ? "yes" : errname(v));
        if (v == 0)
            pthread_mutex_unlock(&shared->mutex);
        pthread_mutex_destroy(&shared->mutex);
        break;
    default:
        break;
    }
    xfer_in = xfer_out = xfer_check = sock_full = sock_peer = -1;
}

/* The child a wait (or the lock) waits for: it blocks until released, holding the lock for SETLKW. */
static void setup(void)
{
    released = 0;
    if (is_local(kind)) {
        setup_local();
        return;
    }
    int go[2], ready[2];
    if (pipe(go) != 0 || pipe(ready) != 0)
        exit(3);
    if (kind == SYSTEM || kind == PCLOSE) {
        /* The shell reads a line from go[0]; only the read end goes to it. */
        fcntl(go[1], F_SETFD, FD_CLOEXEC);
        shell_fd = go[0];
        release_fd = go[1];
        close(ready[0]);
        close(ready[1]);
        child = -1;
        if (kind == PCLOSE) {
            char cmd[64];
            snprintf(cmd, sizeof cmd, "read x <&%d; exit 3", shell_fd);
            popened = popen(cmd, "r");
            if (!popened)
                exit(3);
        }
        return;
    }
    if (is_lock(kind)) {
        strcpy(lock_path, "/tmp/asyncshim-lockXXXXXX");
        lock_fd = mkstemp(lock_path);
        if (lock_fd < 0)
            exit(3);
    }
    child = fork();
    if (child == 0) {
        close(go[1]);
        close(ready[0]);
        if (kind == SETLKW || kind == LOCKF) {
            struct flock fl = whole_file(F_WRLCK);
            if (fcntl(lock_fd, F_SETLK, &fl) != 0)
                _exit(9);
        }
        if (kind == FLOCK) {
            /* A BSD lock belongs to the open file description: the child's own. */
            int own = open(lock_path, O_RDWR);
            if (own < 0 || flock(own, LOCK_EX | LOCK_NB) != 0)
                _exit(9);
        }
        char c;
        if (write(ready[1], "r", 1) != 1)
            _exit(9);
        while (read(go[0], &c, 1) < 0 && errno == EINTR)
            ;
        _exit(5);
    }
    close(go[0]);
    close(ready[1]);
    char c;
    if (read(ready[0], &c, 1) != 1)
        exit(3);
    close(ready[0]);
    release_fd = go[1];
}

/* Lets the wait complete. */
static void release(void)
{
    if (is_local(kind) && !released)
        release_local();
    released = 1;
    if (release_fd >= 0) {
        if (write(release_fd, "go\n", 3) != 3)
            printf("  release failed: %s\n", errname(errno));
        close(release_fd);
        release_fd = -1;
    }
}

/* After the scenario: what is left of its child, and nothing left behind. */
static void finish(int waiter_reaped)
{
    int st = 0;
    if (is_local(kind)) {
        finish_local();
        return;
    }
    if (kind == SYSTEM || kind == PCLOSE) {
        /* The shell is gone or reaped (an abandoned system() leaves it natively to whoever waits next). */
        while (waitpid(-1, &st, 0) > 0)
            ;
        close(shell_fd);
        shell_fd = -1;
        return;
    }
    pid_t r = waitpid(child, &st, 0);
    if (waiter_reaped)
        printf("  main's waitpid for the child: %s\n", r == -1 ? errname(errno) : "got it (reaped twice?)");
    else
        printf("  main's waitpid for the child: %s, exit status %d\n", r == child ? "got it" : r == -1 ? errname(errno) : "other",
               WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    if (is_lock(kind)) {
        if (kind == FLOCK) {
            /* Another description: free unless the abandoned call took the lock for ours. */
            int other = open(lock_path, O_RDWR);
            printf("  lock free afterwards: %s\n", flock(other, LOCK_EX | LOCK_NB) == 0 ? "yes" : errname(errno));
            close(other);
        } else {
            struct flock fl = whole_file(F_WRLCK);
            printf("  lock free afterwards: %s\n", fcntl(lock_fd, F_SETLK, &fl) == 0 ? "yes" : errname(errno));
            fl = whole_file(F_UNLCK);
            fcntl(lock_fd, F_SETLK, &fl);
        }
        close(lock_fd);
        lock_fd = -1;
        unlink(lock_path);
    }
}

static void print_result(void)
{
    if (print_if_interrupted(wait_result, wait_errno))
        return;
    switch (kind) {
    case SYSTEM:
    case PCLOSE:
        printf("  returned exit status %d\n", WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1);
        break;
    case SETLKW:
    case LOCKF:
    case FLOCK:
        printf("  returned %ld (the lock)\n", wait_result);
        break;
    case SPLICE:
    case SENDFILE:
        printf("  returned %ld (bytes)\n", wait_result);
        break;
    case FUTEX:
    case SEM:
    case MUTEX:
        printf("  returned %ld\n", wait_result);
        break;
    default:
        printf("  returned %s, exit status %d\n", wait_result == child ? "the child" : "another pid",
               WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1);
    }
}

static void run_signal(enum kind k, enum mode m)
{
    kind = k;
    set_mode(m);
    wait_result = -99;
    wait_errno = 0;
    printf("%s, %s:\n", kind_name[k], mode_name[m]);
    fflush(stdout);
    int restart = m == RESTART;
    setup();
    /* system(), pclose() and a mutex go on after a handler that returns, whatever SA_RESTART says. */
    signal_scenario(restart, !handler_longjmps && (restart || k == SYSTEM || k == PCLOSE || k == MUTEX), waiter_body,
                    release);
    print_result();
    finish(!ATOMIC_LOAD(&jumped) && wait_result == child && !is_lock(k));
    fflush(stdout);
}

static void *cancelled_body(void *arg)
{
    (void)arg;
    note_waiter_stack();
    pthread_cleanup_push(waiter_cleanup, NULL);
    ATOMIC_STORE(&armed, 1);
    do_wait();
    pthread_cleanup_pop(0);
    ATOMIC_STORE(&wait_done, 1);
    return NULL;
}

/* Starts the waiter in `body`, cancels it once it waits, and joins it for up to a minute; the join's
 * result, the thread's value in *value. */
static int cancel_waiter(void *(*body)(void *), void **value)
{
    pthread_create(&waiter, NULL, body, NULL);
    while (!ATOMIC_LOAD(&armed))
        sleep_ms(1);
    sleep_ms(30);
    pthread_cancel(waiter);
    struct timespec limit = deadline_in(CLOCK_REALTIME, 60000);
    return pthread_timedjoin_np(waiter, value, &limit);
}

/* The file reader's start: its stack noted, the process-directed signal (which main blocks) let through. */
static void ready_for_signals(void)
{
    note_waiter_stack();
    mask_usr2(SIG_UNBLOCK);
}

static void run_cancel(enum kind k)
{
    kind = k;
    set_mode(RETURN);
    wait_done = cleanup_ran = 0;
    wait_result = -99;
    printf("%s, pthread_cancel:\n", kind_name[k]);
    fflush(stdout);
    setup();
    start_waiter(cancelled_body, NULL, 1);
    pthread_cancel(waiter);
    join_cancelled(release);
    if (k == SYSTEM) {
        int st = 0;
        pid_t left = waitpid(-1, &st, WNOHANG);
        printf("  system()'s child left to reap: %s\n", left == -1 ? errname(errno) : left == 0 ? "one, running" : "one, ended");
    }
    release();
    finish(0);
    fflush(stdout);
}

/* Many threads in wait() for any child at once, the children ending together: each child is reaped
 * exactly once, each waiter gets one. */
#define MANY 16
static pid_t many_got[MANY];

static void *many_waiter(void *arg)
{
    int i = (int)(long)arg;
    int st = 0;
    many_got[i] = wait(&st);
    if (many_got[i] > 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 6))
        many_got[i] = -2;
    return NULL;
}

static void run_many(void)
{
    int go[2];
    if (pipe(go) != 0)
        exit(3);
    pid_t kids[MANY];
    for (int i = 0; i < MANY; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            close(go[1]);
            char c;
            while (read(go[0], &c, 1) < 0 && errno == EINTR)
                ;
            _exit(6);
        }
    }
    close(go[0]);
    pthread_t t[MANY];
    for (int i = 0; i < MANY; i++)
        pthread_create(&t[i], NULL, many_waiter, (void *)(long)i);
    sleep_ms(30);
    close(go[1]); /* every child reads EOF and ends */
    for (int i = 0; i < MANY; i++)
        pthread_join(t[i], NULL);
    int distinct = 0;
    for (int i = 0; i < MANY; i++) {
        int ours = 0, dup = 0;
        for (int j = 0; j < MANY; j++)
            ours |= many_got[i] == kids[j];
        for (int j = 0; j < i; j++)
            dup |= many_got[j] == many_got[i];
        distinct += ours && !dup;
    }
    errno = 0;
    pid_t left = waitpid(-1, NULL, WNOHANG);
    printf("%d threads in wait() for %d children: %d reaped once each (exit status 6), then waitpid: %s\n", MANY,
           MANY, distinct, left == -1 ? errname(errno) : "a child left");
}

/* Regular-file reads that wait for the disk while signals keep arriving. */
#define CHUNK (256 * 1024)
#define CHUNKS 16
#define PASSES 6
static int file_fd = -1;
static int reading, file_done, file_handled, file_off_stack, file_elsewhere, file_jumps;
static int short_reads, bad_bytes, misplaced, bad_preads, bad_fsyncs;
static unsigned char chunk_buf[CHUNK];

static unsigned char pattern(long at) { return (unsigned char)(at * 7 + at / 4093); }

static void on_file_signal(int sig)
{
    (void)sig;
    char here;
    ATOMIC_ADD(&file_handled, 1);
    if (!pthread_equal(pthread_self(), waiter))
        ATOMIC_ADD(&file_elsewhere, 1);
    if (!(&here > stack_lo && &here < stack_hi))
        ATOMIC_ADD(&file_off_stack, 1);
    if (handler_longjmps && ATOMIC_LOAD(&reading))
        siglongjmp(env, 1);
}

static int intact(const unsigned char *b, long at, long n)
{
    for (long i = 0; i < n; i++)
        if (b[i] != pattern(at + i))
            return 0;
    return 1;
}

static void *file_reader(void *arg)
{
    (void)arg;
    ready_for_signals();
    ATOMIC_STORE(&armed, 1);
    for (int pass = 0; pass < PASSES; pass++) {
        /* Out of the page cache: the reads wait for the disk. */
        posix_fadvise(file_fd, 0, 0, POSIX_FADV_DONTNEED);
        lseek(file_fd, 0, SEEK_SET);
        for (;;) {
            long pos = (long)lseek(file_fd, 0, SEEK_CUR);
            if (pos % CHUNK != 0) {
                misplaced++;
                break;
            }
            if (pos == (long)CHUNK * CHUNKS)
                break;
            if (sigsetjmp(env, 1) != 0) {
                ATOMIC_STORE(&reading, 0);
                file_jumps++;
                continue;
            }
            ATOMIC_STORE(&reading, 1);
            ssize_t n = read(file_fd, chunk_buf, CHUNK);
            ATOMIC_STORE(&reading, 0);
            if (n != CHUNK)
                short_reads++;
            else if (!intact(chunk_buf, pos, CHUNK))
                bad_bytes++;
        }
        unsigned char b[4096];
        long at = (long)CHUNK * (CHUNKS - 1) + 12345;
        posix_fadvise(file_fd, 0, 0, POSIX_FADV_DONTNEED);
        if (pread(file_fd, b, sizeof b, at) != (ssize_t)sizeof b || !intact(b, at, sizeof b))
            bad_preads++;
        if (fsync(file_fd) != 0)
            bad_fsyncs++;
    }
    ATOMIC_STORE(&file_done, 1);
    return NULL;
}

/* The file the readers read: CHUNKS chunks of the pattern, written back to the disk. */
static void make_chunk_file(void)
{
    char path[] = "/tmp/asyncshim-readsXXXXXX";
    file_fd = mkstemp(path);
    if (file_fd < 0)
        exit(3);
    unlink(path);
    /* No read-ahead: every chunk's read waits for the disk itself. */
    posix_fadvise(file_fd, 0, 0, POSIX_FADV_RANDOM);
    for (long c = 0; c < CHUNKS; c++) {
        for (long i = 0; i < CHUNK; i++)
            chunk_buf[i] = pattern(c * CHUNK + i);
        if (write(file_fd, chunk_buf, CHUNK) != CHUNK)
            exit(3);
    }
    /* Written back, so that dropping the pages really drops them. */
    fsync(file_fd);
}

static void run_file_reads(enum mode m)
{
    mode = m;
    file_done = file_handled = file_off_stack = file_elsewhere = file_jumps = 0;
    short_reads = bad_bytes = misplaced = bad_preads = bad_fsyncs = 0;
    printf("regular-file reads waiting for the disk, %s:\n", mode_name[m]);
    set_signal_handler(SIGUSR1, on_file_signal, m == RESTART ? SA_RESTART : 0);
    set_signal_handler(SIGUSR2, on_file_signal, m == RESTART ? SA_RESTART : 0);
    make_chunk_file();
    armed = 0;
    pthread_create(&waiter, NULL, file_reader, NULL);
    while (!ATOMIC_LOAD(&armed))
        sleep_ms(1);
    int64_t give_up = mono_ns() + 120LL * 1000000000;
    while (!ATOMIC_LOAD(&file_done) && mono_ns() < give_up) {
        send_to_waiter();
        usleep(300);
    }
    pthread_join(waiter, NULL);
    close(file_fd);
    printf("  every read whole and intact: %s, positions at chunk boundaries: %s, pread intact: %s, fsync 0: %s\n",
           short_reads || bad_bytes ? "no" : "yes", misplaced ? "no" : "yes", bad_preads ? "no" : "yes",
           bad_fsyncs ? "no" : "yes");
    printf("  handled: %s, always in the reader on its own stack: %s\n", file_handled ? "yes" : "no",
           file_elsewhere || file_off_stack ? "no" : "yes");
    fprintf(stderr, "  %d signals handled, %d siglongjmps, %d short reads, %d bad chunks\n", file_handled,
            file_jumps, short_reads, bad_bytes);
    fflush(stdout);
}

/* A thread reading cold chunks of a file until cancelled (read is a cancellation point). */
static void *cancelled_reader(void *arg)
{
    (void)arg;
    pthread_cleanup_push(waiter_cleanup, NULL);
    ATOMIC_STORE(&armed, 1);
    for (;;) {
        posix_fadvise(file_fd, 0, 0, POSIX_FADV_DONTNEED);
        lseek(file_fd, 0, SEEK_SET);
        for (int c = 0; c < CHUNKS; c++)
            if (read(file_fd, chunk_buf, CHUNK) != CHUNK)
                short_reads++;
    }
    pthread_cleanup_pop(0);
    return NULL;
}

static void run_file_cancel(void)
{
    printf("regular-file reads waiting for the disk, pthread_cancel:\n");
    armed = cleanup_ran = short_reads = 0;
    make_chunk_file();
    void *value = NULL;
    int r = cancel_waiter(cancelled_reader, &value);
    printf("  joined: %s, cleanup handler ran: %s, short reads: %d\n",
           r != 0 ? errname(r) : value == PTHREAD_CANCELED ? "PTHREAD_CANCELED" : "a value",
           ATOMIC_LOAD(&cleanup_ran) ? "yes" : "no", short_reads);
    if (r != 0)
        exit(1);
    close(file_fd);
    fflush(stdout);
}

int main(void)
{
    test_init();
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* The main thread never takes the process-directed signal. */
    mask_usr2(SIG_BLOCK);
    /* The shim's process-shared waits then go through helper threads, as without io_uring. */
    if (forbid_io_uring(ENOSYS) != 0) {
        perror("seccomp");
        return 3;
    }
    shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED)
        return 3;
    for (int k = 0; k < KINDS; k++)
        for (int m = 0; m < MODES; m++)
            run_signal((enum kind)k, (enum mode)m);
    /* pclose() is not a cancellation point to rely on; flock(), splice(), sendfile(), the futex call
     * and pthread_mutex_lock are none. */
    for (int k = 0; k < KINDS; k++)
        if (k != PCLOSE && k != FLOCK && k != SPLICE && k != SENDFILE && k != FUTEX && k != MUTEX)
            run_cancel((enum kind)k);
    for (int m = 0; m < MODES; m++)
        run_file_reads((enum mode)m);
    run_file_cancel();
    run_many();
    return test_exit_status();
}
