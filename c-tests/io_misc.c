/* Calls the other I/O tests do not reach: sendmsg with several iovecs to a slow reader (a blocking send
 * moves everything) and with an fd passed as SCM_RIGHTS, wait4 and waitid on a child that exits later
 * while another thread keeps ticking, and the _FORTIFY_SOURCE entry points (__read_chk, __pread_chk, __ppoll_chk, __recv_chk,
 * __recvfrom_chk, __poll_chk) that glibc's headers substitute when buffer sizes are known.
 * asyncshim-test: timeout=60 */
#define _FORTIFY_SOURCE 2
#include "test_util.h"
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define TOTAL (3 * 512 * 1024)

static char out[TOTAL], in[TOTAL];
/* Lengths the compiler cannot prove fit, so the fortified entry points are called. */
static volatile size_t vlen8 = 8, vlen64k = 65536;
static volatile nfds_t vone = 1;
static int ticks, stop_ticking;

struct reader {
    int fd;
    long got;
};

static void *slow_reader(void *arg)
{
    struct reader *r = arg;
    sleep_ms(100);
    while (r->got < TOTAL) {
        char buf[65536]; /* fortified: read -> __read_chk */
        ssize_t n = read(r->fd, buf, vlen64k);
        if (n <= 0)
            break;
        memcpy(in + r->got, buf, (size_t)n);
        r->got += n;
        if (r->got % (256 * 1024) < (long)sizeof buf)
            sleep_ms(5);
    }
    return NULL;
}

static void *ticker(void *arg)
{
    (void)arg;
    while (!ATOMIC_LOAD(&stop_ticking)) {
        sleep_ms(10);
        ATOMIC_ADD(&ticks, 1);
    }
    return NULL;
}

static void sendmsg_tests(void)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
    for (int i = 0; i < TOTAL; i++)
        out[i] = (char)(i * 7 + 3);
    struct reader r = { .fd = sv[1] };
    pthread_t t;
    pthread_create(&t, NULL, slow_reader, &r);
    struct iovec iov[3] = { { out, TOTAL / 3 }, { out + TOTAL / 3, TOTAL / 3 }, { out + 2 * (TOTAL / 3), TOTAL / 3 } };
    struct msghdr m = { .msg_iov = iov, .msg_iovlen = 3 };
    errno = 1234;
    ssize_t n = sendmsg(sv[0], &m, 0);
    int e = errno;
    pthread_join(t, NULL);
    printf("sendmsg of 3 iovecs, %d bytes, to a slow reader: %zd, errno %s\n", TOTAL, n, errname(e));
    CHECK(n == TOTAL && e == 1234, "a blocking sendmsg sends everything and leaves errno alone");
    CHECK(r.got == TOTAL && memcmp(in, out, TOTAL) == 0, "the reader got every byte in order");

    /* An fd passed with SCM_RIGHTS arrives once, with the data. */
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
    char one = 'x';
    struct iovec v = { &one, 1 };
    struct msghdr fm = { .msg_iov = &v, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
    struct cmsghdr *c = CMSG_FIRSTHDR(&fm);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &p[1], sizeof(int));
    CHECK(sendmsg(sv[0], &fm, 0) == 1, "sendmsg with SCM_RIGHTS sends its byte");
    char got = 0;
    char rbuf[CMSG_SPACE(sizeof(int))] = { 0 };
    struct iovec rv = { &got, 1 };
    struct msghdr rm = { .msg_iov = &rv, .msg_iovlen = 1, .msg_control = rbuf, .msg_controllen = sizeof rbuf };
    ssize_t rn = recvmsg(sv[1], &rm, 0);
    struct cmsghdr *rc = CMSG_FIRSTHDR(&rm);
    int passed = -1;
    if (rc && rc->cmsg_type == SCM_RIGHTS)
        memcpy(&passed, CMSG_DATA(rc), sizeof(int));
    CHECK(rn == 1 && got == 'x' && passed >= 0, "recvmsg gets the byte and the passed fd");
    if (passed >= 0) {
        CHECK(write(passed, "y", 1) == 1, "the passed fd writes into the pipe");
        char y = 0;
        CHECK(read(p[0], &y, 1) == 1 && y == 'y', "and the pipe's read end gets it");
        close(passed);
    }
    close(p[0]);
    close(p[1]);

    /* Fortified recv/recvfrom with a known buffer size. */
    char small[8];
    CHECK(send(sv[0], "abc", 3, 0) == 3, "send 3 bytes");
    CHECK(recv(sv[1], small, vlen8, 0) == 3 && memcmp(small, "abc", 3) == 0, "recv (fortified) gets them");
    CHECK(send(sv[0], "de", 2, 0) == 2, "send 2 bytes");
    CHECK(recvfrom(sv[1], small, vlen8, 0, NULL, NULL) == 2 && memcmp(small, "de", 2) == 0,
          "recvfrom (fortified) gets them");
    struct pollfd pf[1] = { { .fd = sv[1], .events = POLLIN } };
    CHECK(poll(pf, vone, 100) == 0, "poll (fortified) times out on an empty socket");
    struct timespec ppto = { 0, 50 * 1000000 };
    CHECK(ppoll(pf, vone, &ppto, NULL) == 0, "ppoll (fortified) times out on an empty socket");
    send(sv[0], "z", 1, 0);
    CHECK(ppoll(pf, vone, NULL, NULL) == 1 && (pf[0].revents & POLLIN), "ppoll (fortified) sees data arrive");
    char z;
    recv(sv[1], &z, 1, 0);
    int pfd = open("/dev/null", O_RDONLY);
    CHECK(pread(pfd, small, vlen8, 0) == 0, "pread (fortified) of /dev/null: 0");
    close(pfd);
    errno = 0;
    CHECK(read(-1, small, vlen8) == -1 && errno == EBADF, "read (fortified) of a bad fd: EBADF");
    close(sv[0]);
    close(sv[1]);
}

static void wait_tests(void)
{
    pthread_t t;
    ATOMIC_STORE(&ticks, 0);
    pthread_create(&t, NULL, ticker, NULL);
    pid_t pid = fork();
    if (pid == 0) {
        usleep(300000);
        _exit(12);
    }
    int st = 0;
    struct rusage ru;
    pid_t w = wait4(pid, &st, 0, &ru);
    printf("wait4: own child: %s, exit %d\n", w == pid ? "yes" : "no", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    CHECK(w == pid && WIFEXITED(st) && WEXITSTATUS(st) == 12, "wait4 returns the child and its status");
    CHECK(ATOMIC_LOAD(&ticks) >= 15, "another thread kept ticking while wait4 waited");

    ATOMIC_STORE(&ticks, 0);
    pid = fork();
    if (pid == 0) {
        usleep(300000);
        _exit(13);
    }
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r = waitid(P_PID, (id_t)pid, &si, WEXITED);
    printf("waitid: %d, code %s, status %d\n", r, si.si_code == CLD_EXITED ? "CLD_EXITED" : "other", si.si_status);
    CHECK(r == 0 && si.si_pid == pid && si.si_status == 13, "waitid reports the child's exit");
    CHECK(ATOMIC_LOAD(&ticks) >= 15, "another thread kept ticking while waitid waited");

    errno = 0;
    r = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG);
    printf("waitid on a reaped child: %d %s\n", r, errname(errno));
    CHECK(r == -1 && errno == ECHILD, "waitid on a reaped child: ECHILD");
    ATOMIC_STORE(&stop_ticking, 1);
    pthread_join(t, NULL);
}

int main(void)
{
    test_init();
    sendmsg_tests();
    wait_tests();
    return test_exit_status();
}
