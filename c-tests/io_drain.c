/* io_drain: blocking reads after a short read. Under the shim a short read of a TCP socket lets the next
 * blocking read park without a try until the netpoller reports the socket again; every case here is one
 * where a short read does NOT mean "nothing more until new data", or where a try must still be made:
 *  1. data and FIN sent together before the first read: "hello", then EOF (0) at once;
 *  2. the same while the reader is already parked (its fd registered): "ab", then "cd" and FIN: "cd", 0;
 *  3. urgent data: "ab", MSG_OOB "X", "cd": the read stops at the urgent mark ("ab"), the next gives "cd";
 *  4. a reset after a short read: the next read fails with ECONNRESET;
 *  5. a short read, then the program makes the socket non-blocking: EAGAIN with nothing sent, and data sent
 *     just before the read is returned (a non-blocking read is always tried);
 *  6. recv(MSG_PEEK) returning short leaves the data for the next read;
 *  7. UDP: two datagrams queued, each read returns one (a short read of a datagram says nothing of the rest);
 *     an AF_UNIX stream: a message carrying an fd (SCM_RIGHTS) stops a read, the next gets the rest;
 *  8. 2,000 ping-pong rounds between two threads, message sizes 1..3,000 through a 1,024-byte read buffer
 *     (short and full reads mixed), every byte checked.
 * asyncshim-test: timeout=60 */
#include "io_util.h"
#include <pthread.h>
#include <sys/ioctl.h>

static int stage; /* reader progress, for the writer to wait on (atomics) */

static void readn_print(const char *label, int fd, size_t cap)
{
    char buf[128];
    errno = 0;
    ssize_t n = read(fd, buf, cap);
    int e = errno;
    if (n > 0)
        say(label, "%zd \"%.*s\"", n, (int)n, buf);
    else
        say(label, "%s", res(n, e));
}

/* Case 2's reader: parks in its first read, then reads until EOF. */
static void *parked_reader(void *arg)
{
    int fd = *(int *)arg;
    readn_print("parked: first read", fd, 64);
    ATOMIC_STORE(&stage, 1);
    readn_print("parked: second read", fd, 64);
    readn_print("parked: third read", fd, 64);
    return NULL;
}

static void case_fin_with_data(void)
{
    int c, s;
    tcp_pair(&c, &s);
    write(c, "hello", 5);
    shutdown(c, SHUT_WR);
    sleep_ms(50);
    readn_print("fin with data: read", s, 64);
    readn_print("fin with data: read again", s, 64);
    close(c);
    close(s);
}

static void case_fin_while_parked(void)
{
    int c, s;
    tcp_pair(&c, &s);
    pthread_t t;
    pthread_create(&t, NULL, parked_reader, &s);
    sleep_ms(50); /* the reader parks (or, natively, blocks) in its first read */
    write(c, "ab", 2);
    wait_at_least(&stage, 1, 1, 10000);
    sleep_ms(20); /* it is in its second read: a short read came before it */
    write(c, "cd", 2);
    shutdown(c, SHUT_WR);
    pthread_join(t, NULL);
    close(c);
    close(s);
}

static void *urgent_reader(void *arg)
{
    int fd = *(int *)arg;
    readn_print("urgent: first read", fd, 64);
    readn_print("urgent: second read", fd, 64);
    return NULL;
}

static void case_urgent(void)
{
    int c, s;
    tcp_pair(&c, &s);
    pthread_t t;
    pthread_create(&t, NULL, urgent_reader, &s);
    sleep_ms(50); /* parked, so the netpoller reports the urgent data */
    send(c, "ab", 2, 0);
    send(c, "X", 1, MSG_OOB);
    send(c, "cd", 2, 0);
    pthread_join(t, NULL);
    close(c);
    close(s);
}

static void case_reset(void)
{
    int c, s;
    tcp_pair(&c, &s);
    write(c, "xy", 2);
    sleep_ms(20);
    readn_print("reset: read", s, 64);
    struct linger lg = { 1, 0 };
    setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(c);
    readn_print("reset: read after the peer's reset", s, 64);
    close(s);
}

static void case_nonblocking(void)
{
    int c, s;
    tcp_pair(&c, &s);
    write(c, "abc", 3);
    sleep_ms(20);
    readn_print("nonblocking: blocking read", s, 64);
    set_nonblock(s, 1);
    readn_print("nonblocking: read with nothing sent", s, 64);
    write(c, "z", 1);
    readn_print("nonblocking: read right after a send", s, 64);
    set_nonblock(s, 0);
    write(c, "w", 1);
    readn_print("nonblocking: blocking again", s, 64);
    close(c);
    close(s);
}

static void case_peek(void)
{
    int c, s;
    tcp_pair(&c, &s);
    write(c, "a", 1);
    sleep_ms(20);
    readn_print("peek: read", s, 64);
    write(c, "pq", 2);
    sleep_ms(20);
    char buf[64];
    ssize_t n = recv(s, buf, sizeof buf, MSG_PEEK);
    say("peek: recv(MSG_PEEK)", "%zd \"%.*s\"", n, (int)(n > 0 ? n : 0), buf);
    n = recv(s, buf, sizeof buf, 0);
    say("peek: recv", "%zd \"%.*s\"", n, (int)(n > 0 ? n : 0), buf);
    close(c);
    close(s);
}

static void case_udp_and_unix(void)
{
    int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), v = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof a;
    if (u < 0 || v < 0 || bind(u, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(u, (struct sockaddr *)&a, &al) != 0) {
        fprintf(stderr, "udp: %s\n", strerror(errno));
        exit(3);
    }
    sendto(v, "one", 3, 0, (struct sockaddr *)&a, sizeof a);
    sendto(v, "two", 3, 0, (struct sockaddr *)&a, sizeof a);
    sleep_ms(20);
    readn_print("udp: read", u, 64);
    readn_print("udp: read again", u, 64);
    close(u);
    close(v);

    int sv[2];
    unix_pair(sv, 0);
    write(sv[0], "first", 5);
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct iovec iov = { "F", 1 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    int passed = 1;
    memcpy(CMSG_DATA(cm), &passed, sizeof passed);
    sendmsg(sv[0], &m, 0);
    write(sv[0], "last", 4);
    sleep_ms(20);
    /* Reads until all 10 bytes came: how they split is the kernel's, and the same with the shim. */
    readn_print("unix: read", sv[1], 64);
    readn_print("unix: read again", sv[1], 64);
    close(sv[0]);
    close(sv[1]);
}

#define ROUNDS 2000
static unsigned char out[3000], in[3000];
static int pp_errors;

static void *echo_peer(void *arg)
{
    int fd = *(int *)arg;
    char buf[1024];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(fd, buf + off, (size_t)(n - off));
            if (w <= 0)
                return NULL;
            off += w;
        }
    }
    return NULL;
}

static void case_ping_pong(void)
{
    int c, s;
    tcp_pair(&c, &s);
    pthread_t t;
    pthread_create(&t, NULL, echo_peer, &s);
    for (int r = 0; r < ROUNDS; r++) {
        size_t len = 1 + (size_t)(r * 7919) % sizeof out;
        for (size_t i = 0; i < len; i++)
            out[i] = pat(i + (size_t)r, 7);
        if (write(c, out, len) != (ssize_t)len) {
            pp_errors++;
            break;
        }
        size_t got = 0;
        while (got < len) {
            ssize_t n = read(c, in + got, 1024 < len - got ? 1024 : len - got);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        if (got != len || memcmp(in, out, len) != 0) {
            pp_errors++;
            break;
        }
    }
    shutdown(c, SHUT_WR);
    pthread_join(t, NULL);
    CHECK(pp_errors == 0, "ping-pong: 2000 rounds echoed byte for byte");
    close(c);
    close(s);
}

int main(void)
{
    test_init();
    signal(SIGPIPE, SIG_IGN);
    case_fin_with_data();
    case_fin_while_parked();
    case_urgent();
    case_reset();
    case_nonblocking();
    case_peek();
    case_udp_and_unix();
    case_ping_pong();
    return test_exit_status();
}
