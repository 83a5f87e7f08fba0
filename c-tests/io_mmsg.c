/* io_mmsg.c — recvmmsg and sendmmsg on blocking sockets behave as the kernel's blocking calls (issue 3):
 * recvmmsg waits for all vlen datagrams (or one with MSG_WAITFORONE), honours its timeout the kernel's
 * way (checked after each datagram) and writes the time left back; sendmmsg on a stream socket to a slow
 * reader sends every message whole; MSG_DONTWAIT gives EAGAIN; errors are the kernel's.
 * asyncshim-test: timeout=60 */
#include "test_util.h"
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>

static int udp_pair(int *rx, int *tx)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t l = sizeof a;
    *rx = socket(AF_INET, SOCK_DGRAM, 0);
    *tx = socket(AF_INET, SOCK_DGRAM, 0);
    if (bind(*rx, (struct sockaddr *)&a, sizeof a) || getsockname(*rx, (struct sockaddr *)&a, &l) ||
        connect(*tx, (struct sockaddr *)&a, sizeof a))
        return 0;
    return 1;
}

struct sender {
    int fd, count, delay_ms;
};

static void *slow_sender(void *arg)
{
    struct sender *s = arg;
    for (int i = 0; i < s->count; i++) {
        sleep_ms(s->delay_ms);
        char msg[16];
        int n = snprintf(msg, sizeof msg, "dgram %d", i);
        send(s->fd, msg, n, 0);
    }
    return NULL;
}

#define V 4
static char bufs[V][64];
static struct iovec iovs[V];
static struct mmsghdr msgs[V];

static void reset(void)
{
    memset(bufs, 0, sizeof bufs);
    for (int i = 0; i < V; i++) {
        iovs[i].iov_base = bufs[i];
        iovs[i].iov_len = sizeof bufs[i];
        memset(&msgs[i], 0, sizeof msgs[i]);
        msgs[i].msg_hdr.msg_iov = &iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
}

#define STREAM_MSGS 3
#define STREAM_LEN (400 * 1024)
static char stream_out[STREAM_MSGS][STREAM_LEN];

static void *slow_stream_reader(void *arg)
{
    int fd = *(int *)arg;
    static char in[STREAM_MSGS * STREAM_LEN];
    long got = 0;
    sleep_ms(50);
    while (got < (long)sizeof in) {
        ssize_t n = read(fd, in + got, 65536);
        if (n <= 0)
            break;
        got += n;
    }
    int same = got == (long)sizeof in;
    for (int m = 0; same && m < STREAM_MSGS; m++)
        same = memcmp(in + (long)m * STREAM_LEN, stream_out[m], STREAM_LEN) == 0;
    return (void *)(intptr_t)same;
}

int main(void)
{
    test_init();
    int rx, tx;
    CHECK(udp_pair(&rx, &tx), "UDP sockets on 127.0.0.1");

    /* Blocking recvmmsg waits for all four datagrams, sent 20 ms apart. */
    reset();
    struct sender s = { tx, V, 20 };
    pthread_t t;
    pthread_create(&t, NULL, slow_sender, &s);
    int n = recvmmsg(rx, msgs, V, 0, NULL);
    pthread_join(t, NULL);
    printf("recvmmsg of 4 datagrams sent 20 ms apart: %d [%s|%s|%s|%s] lens %u %u %u %u\n", n, bufs[0], bufs[1],
           bufs[2], bufs[3], msgs[0].msg_len, msgs[1].msg_len, msgs[2].msg_len, msgs[3].msg_len);

    /* MSG_WAITFORONE: back after the first. */
    reset();
    s.count = 1;
    pthread_create(&t, NULL, slow_sender, &s);
    n = recvmmsg(rx, msgs, V, MSG_WAITFORONE, NULL);
    pthread_join(t, NULL);
    printf("recvmmsg MSG_WAITFORONE: %d [%s]\n", n, bufs[0]);

    /* Timeout, the kernel's way: it is looked at only after each datagram. Two come at once, the third
     * 300 ms later (after the 200 ms timeout): the call returns 3 then, with zero time left written back. */
    reset();
    send(tx, "a", 1, 0);
    send(tx, "b", 1, 0);
    struct sender late = { tx, 2, 300 };
    pthread_create(&t, NULL, slow_sender, &late);
    struct timespec to = { 0, 200 * 1000000 };
    int64_t t0 = mono_ns();
    n = recvmmsg(rx, msgs, V, 0, &to);
    int64_t took = mono_ns() - t0;
    printf("recvmmsg, 200 ms timeout, 2 datagrams now and 1 after 300 ms: %d [%s|%s|%s], left %ld.%09ld\n", n,
           bufs[0], bufs[1], bufs[2], (long)to.tv_sec, to.tv_nsec);
    CHECK(took >= 250LL * 1000000, "it waited for the third datagram");
    fprintf(stderr, "timeout case took %.1f ms\n", took / 1e6);
    pthread_join(t, NULL);
    reset();
    n = recvmmsg(rx, msgs, V, MSG_WAITFORONE, NULL);
    printf("the datagram after that: %d [%s]\n", n, bufs[0]);

    /* MSG_DONTWAIT on an empty socket, and errors. */
    errno = 0;
    n = recvmmsg(rx, msgs, V, MSG_DONTWAIT, NULL);
    printf("recvmmsg MSG_DONTWAIT on an empty socket: %d %s\n", n, errname(errno));
    errno = 0;
    n = recvmmsg(-1, msgs, V, 0, NULL);
    printf("recvmmsg on fd -1: %d %s\n", n, errno == EBADF ? "EBADF" : errname(errno));
    struct timespec bad = { 0, 2000000000 };
    errno = 0;
    n = recvmmsg(rx, msgs, V, 0, &bad);
    printf("recvmmsg with tv_nsec 2e9: %d %s\n", n, errname(errno));
    send(tx, "c", 1, 0);
    errno = 0;
    n = recvmmsg(rx, NULL, V, 0, NULL);
    printf("recvmmsg into NULL with a datagram waiting: %d %s\n", n, errname(errno));
    char c1[8];
    printf("the datagram is still there: %zd\n", recv(rx, c1, sizeof c1, MSG_DONTWAIT));

    /* sendmmsg of UDP datagrams. */
    reset();
    for (int i = 0; i < V; i++) {
        snprintf(bufs[i], sizeof bufs[i], "out %d", i);
        iovs[i].iov_len = strlen(bufs[i]);
    }
    n = sendmmsg(tx, msgs, V, 0);
    printf("sendmmsg of 4 datagrams: %d, lens %u %u %u %u\n", n, msgs[0].msg_len, msgs[1].msg_len, msgs[2].msg_len,
           msgs[3].msg_len);
    char got[64];
    int order = 1;
    for (int i = 0; i < V; i++) {
        ssize_t r = recv(rx, got, sizeof got, 0);
        char want[16];
        snprintf(want, sizeof want, "out %d", i);
        order &= r == (ssize_t)strlen(want) && memcmp(got, want, r) == 0;
    }
    CHECK(order, "they arrive in order");

    /* sendmmsg of three 400 KiB messages on a stream socket to a slow reader: all whole. */
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    struct iovec siov[STREAM_MSGS];
    struct mmsghdr smsg[STREAM_MSGS];
    memset(smsg, 0, sizeof smsg);
    for (int m = 0; m < STREAM_MSGS; m++) {
        for (int i = 0; i < STREAM_LEN; i++)
            stream_out[m][i] = (char)(i * 13 + m * 7);
        siov[m].iov_base = stream_out[m];
        siov[m].iov_len = STREAM_LEN;
        smsg[m].msg_hdr.msg_iov = &siov[m];
        smsg[m].msg_hdr.msg_iovlen = 1;
    }
    pthread_create(&t, NULL, slow_stream_reader, &sv[1]);
    errno = 0;
    n = sendmmsg(sv[0], smsg, STREAM_MSGS, 0);
    int e = errno;
    void *same;
    pthread_join(t, &same);
    printf("sendmmsg of 3 x 400 KiB to a slow stream reader: %d, lens %u %u %u, errno %s\n", n, smsg[0].msg_len,
           smsg[1].msg_len, smsg[2].msg_len, errname(e));
    CHECK(same != NULL, "the reader got every byte in order");
    close(sv[1]);
    errno = 0;
    n = sendmmsg(sv[0], smsg, 1, MSG_NOSIGNAL);
    printf("sendmmsg after the peer closed: %d %s\n", n, errno == EPIPE ? "EPIPE" : errname(errno));
    close(sv[0]);
    close(rx);
    close(tx);
    return test_exit_status();
}
