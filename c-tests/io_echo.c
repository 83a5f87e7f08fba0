/* io_echo: a thread-per-connection TCP echo server and 2,000 client threads in one process.
 *  - server: a listener on 127.0.0.1 (port 0, read back with getsockname), an accept loop thread that accepts
 *    exactly 2,000 connections and starts a detached handler thread for each; a handler echoes with
 *    read + write loops (16 KiB reads, so large messages come back in pieces) until read() gives 0, then
 *    closes and counts the bytes it echoed;
 *  - clients: 2,000 threads; each connects (blocking connect), waits until all 2,000 connections are open,
 *    then exchanges 20 messages of 1 B to 64 KiB (each client uses all 20 sizes, in its own rotation and
 *    with its own bytes), every reply checked byte for byte; the message is sent/received in turn with
 *    write/read loops, send + recv(MSG_WAITALL), and writev (two pieces) + readv loops; then it closes;
 *  - while all 2,000 connections are open (and all 4,000 threads alive) main counts OS threads: under the
 *    shim at most workers + 8, natively at least 4,000 (one check, bound chosen by mode);
 *  - RLIMIT_NOFILE's soft limit is raised to the hard limit first (4,001 descriptors are open at once).
 * stdout shows only totals; timings and thread counts go to stderr.
 * asyncshim-test: timeout=120 */
#include "io_util.h"
#include "shim_probe.h"
#include "test_util.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define CLIENTS 2000
#define MESSAGES 20
#define MAXMSG 65536

static const size_t sizes[MESSAGES] = { 1,    2,    5,    17,   64,    100,   256,   511,   1000,  1460,
                                        2048, 4095, 4096, 8193, 12000, 16384, 24000, 32768, 49152, 65536 };
static unsigned char pattern[2 * MAXMSG];
static struct sockaddr_in server_addr;
static int listen_fd;

/* counters (atomics) */
static int accepted, accept_errors, handlers_started, handlers_done, handler_errors;
static long long echoed_bytes;
static int connected, connect_errors, go, clients_done;
static int msgs_ok, msg_errors, mismatches;
static long long client_bytes;

static void set_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void *handler(void *arg)
{
    int fd = (int)(intptr_t)arg;
    unsigned char buf[16384];
    long long total = 0;
    int err = 0;
    ATOMIC_ADD(&handlers_started, 1);
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fprintf(stderr, "handler: read: %s\n", strerror(errno));
            err = 1;
            break;
        }
        if (r == 0)
            break;
        if (write_all(fd, buf, (size_t)r) != 0) {
            fprintf(stderr, "handler: write: %s\n", strerror(errno));
            err = 1;
            break;
        }
        total += r;
    }
    close(fd);
    __atomic_add_fetch(&echoed_bytes, total, __ATOMIC_SEQ_CST);
    if (err)
        ATOMIC_ADD(&handler_errors, 1);
    ATOMIC_ADD(&handlers_done, 1);
    return NULL;
}

static void *accept_loop(void *arg)
{
    (void)arg;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    while (ATOMIC_LOAD(&accepted) < CLIENTS) {
        int fd = accept(listen_fd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "accept: %s\n", strerror(errno));
            ATOMIC_ADD(&accept_errors, 1);
            if (ATOMIC_LOAD(&accept_errors) > 100)
                break;
            sleep_ms(10);
            continue;
        }
        set_nodelay(fd);
        ATOMIC_ADD(&accepted, 1);
        pthread_t t;
        int rc = pthread_create(&t, &attr, handler, (void *)(intptr_t)fd);
        if (rc != 0) {
            fprintf(stderr, "pthread_create(handler): %s\n", strerror(rc));
            ATOMIC_ADD(&handler_errors, 1);
            ATOMIC_ADD(&handlers_done, 1);
            close(fd);
        }
    }
    pthread_attr_destroy(&attr);
    return NULL;
}

/* One message: send sizes[..] bytes of the pattern in one of three ways, get them back, compare. */
static int exchange(int fd, int id, int j, unsigned char *rbuf)
{
    size_t n = sizes[(j + id) % MESSAGES];
    const unsigned char *src = pattern + ((size_t)id * 131 + (size_t)j * 4099) % MAXMSG;
    int how = (id + j) % 3;
    memset(rbuf, 0, n);
    if (how == 0) { /* write / read loops */
        if (write_all(fd, src, n) != 0)
            return -1;
        size_t got = 0;
        while (got < n) {
            ssize_t r = read(fd, rbuf + got, n - got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                return -1;
            got += (size_t)r;
        }
    } else if (how == 1) { /* send / recv(MSG_WAITALL) */
        size_t off = 0;
        while (off < n) {
            ssize_t w = send(fd, src + off, n - off, 0);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return -1;
            off += (size_t)w;
        }
        size_t got = 0;
        while (got < n) { /* MSG_WAITALL returns less only on a signal, error or EOF */
            ssize_t r = recv(fd, rbuf + got, n - got, MSG_WAITALL);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                return -1;
            if ((size_t)r != n - got)
                fprintf(stderr, "client %d: recv(MSG_WAITALL) gave %zd of %zu\n", id, r, n - got);
            got += (size_t)r;
        }
    } else { /* writev in two pieces / readv loops into two pieces */
        size_t half = n / 2;
        struct iovec wv[2] = { { (void *)src, half }, { (void *)(src + half), n - half } };
        size_t off = 0;
        while (off < n) {
            struct iovec v[2];
            int cnt = 0;
            for (int k = 0; k < 2; k++) {
                size_t start = k == 0 ? 0 : half, len = wv[k].iov_len;
                if (off >= start + len)
                    continue;
                size_t skip = off > start ? off - start : 0;
                v[cnt].iov_base = (char *)wv[k].iov_base + skip;
                v[cnt].iov_len = len - skip;
                cnt++;
            }
            ssize_t w = writev(fd, v, cnt);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return -1;
            off += (size_t)w;
        }
        size_t got = 0;
        while (got < n) {
            struct iovec v[2];
            int cnt = 0;
            if (got < half) {
                v[cnt].iov_base = rbuf + got;
                v[cnt].iov_len = half - got;
                cnt++;
                v[cnt].iov_base = rbuf + half;
                v[cnt].iov_len = n - half;
                cnt++;
            } else {
                v[cnt].iov_base = rbuf + got;
                v[cnt].iov_len = n - got;
                cnt++;
            }
            ssize_t r = readv(fd, v, cnt);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                return -1;
            got += (size_t)r;
        }
    }
    if (memcmp(rbuf, src, n) != 0) {
        ATOMIC_ADD(&mismatches, 1);
        fprintf(stderr, "client %d message %d (%zu bytes, way %d): reply differs\n", id, j, n, how);
        return 0;
    }
    __atomic_add_fetch(&client_bytes, (long long)n, __ATOMIC_SEQ_CST);
    ATOMIC_ADD(&msgs_ok, 1);
    return 0;
}

static void *client(void *arg)
{
    int id = (int)(intptr_t)arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        fprintf(stderr, "client %d: socket: %s\n", id, strerror(errno));
        ATOMIC_ADD(&connect_errors, 1);
        ATOMIC_ADD(&connected, 1);
        ATOMIC_ADD(&clients_done, 1);
        return NULL;
    }
    int rc;
    do
        rc = connect(fd, (struct sockaddr *)&server_addr, sizeof server_addr);
    while (rc < 0 && errno == EINTR);
    if (rc != 0) {
        fprintf(stderr, "client %d: connect: %s\n", id, strerror(errno));
        ATOMIC_ADD(&connect_errors, 1);
        ATOMIC_ADD(&connected, 1);
        ATOMIC_ADD(&clients_done, 1);
        close(fd);
        return NULL;
    }
    set_nodelay(fd);
    ATOMIC_ADD(&connected, 1);
    while (!ATOMIC_LOAD(&go))
        sleep_ms(20);
    unsigned char *rbuf = malloc(MAXMSG);
    for (int j = 0; j < MESSAGES; j++) {
        if (exchange(fd, id, j, rbuf) != 0) {
            fprintf(stderr, "client %d message %d: %s\n", id, j, errno ? strerror(errno) : "EOF");
            ATOMIC_ADD(&msg_errors, 1);
            break;
        }
    }
    free(rbuf);
    close(fd);
    ATOMIC_ADD(&clients_done, 1);
    return NULL;
}

int main(void)
{
    test_init();
    int shim = under_shim();
    int workers = shim_workers();
    fprintf(stderr, "under shim: %d, workers %d\n", shim, workers);
    int64_t t0 = mono_ns();

    struct rlimit rl;
    int rl_ok = getrlimit(RLIMIT_NOFILE, &rl) == 0;
    if (rl_ok) {
        rl.rlim_cur = rl.rlim_max;
        rl_ok = setrlimit(RLIMIT_NOFILE, &rl) == 0;
    }
    fprintf(stderr, "RLIMIT_NOFILE soft %llu hard %llu\n", (unsigned long long)rl.rlim_cur,
            (unsigned long long)rl.rlim_max);
    CHECK(rl_ok && rl.rlim_cur >= 2 * CLIENTS + 100, "RLIMIT_NOFILE soft limit raised to the hard limit (enough fds)");

    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = (unsigned char)(i * 7 + (i >> 8) * 13 + (i >> 16) + 1);

    listen_fd = make_listener(&server_addr, 0, 4096);
    int ok = listen_fd >= 0 && server_addr.sin_port != 0;
    CHECK(ok, "listener on 127.0.0.1, port 0 read back with getsockname");
    if (!ok)
        return test_exit_status();
    fprintf(stderr, "port %d\n", ntohs(server_addr.sin_port));

    pthread_t acceptor;
    pthread_create(&acceptor, NULL, accept_loop, NULL);

    pthread_t *t = calloc(CLIENTS, sizeof *t);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    int created = 0;
    for (int i = 0; i < CLIENTS; i++) {
        int rc = pthread_create(&t[i], &attr, client, (void *)(intptr_t)i);
        if (rc != 0) {
            fprintf(stderr, "pthread_create(client %d): %s\n", i, strerror(rc));
            break;
        }
        created++;
    }
    pthread_attr_destroy(&attr);
    CHECK(created == CLIENTS, "2000 client threads created");

    /* All connections open, every handler started: count OS threads. */
    int all_open = wait_at_least(&connected, created, 5, 60000) && wait_at_least(&accepted, created, 5, 60000) &&
                   wait_at_least(&handlers_started, created, 5, 60000);
    int threads = os_threads();
    int64_t t1 = mono_ns();
    fprintf(stderr, "all open after %.1f ms: connected %d (errors %d), accepted %d, handlers %d; OS threads %d\n",
            (t1 - t0) / 1e6, ATOMIC_LOAD(&connected), ATOMIC_LOAD(&connect_errors), ATOMIC_LOAD(&accepted),
            ATOMIC_LOAD(&handlers_started), threads);
    CHECK(all_open && ATOMIC_LOAD(&connect_errors) == 0, "all 2000 connections open at once, each accepted");
    int bound_ok = shim ? (threads > 0 && threads <= workers + 8) : threads >= 2 * CLIENTS;
    CHECK(bound_ok, "OS threads while all connections are open: shim <= workers + 8 (natively one per thread)");

    ATOMIC_STORE(&go, 1);
    for (int i = 0; i < created; i++)
        pthread_join(t[i], NULL);
    free(t);
    int64_t t2 = mono_ns();
    int handlers_finished = wait_at_least(&handlers_done, ATOMIC_LOAD(&accepted), 5, 60000);
    pthread_join(acceptor, NULL);
    close(listen_fd);
    int64_t t3 = mono_ns();
    fprintf(stderr, "exchange %.1f ms, handlers finished %.1f ms later; total %.1f ms\n", (t2 - t1) / 1e6,
            (t3 - t2) / 1e6, (t3 - t0) / 1e6);

    long long per_client = 0;
    for (int j = 0; j < MESSAGES; j++)
        per_client += (long long)sizes[j];
    printf("connections accepted: %d\n", ATOMIC_LOAD(&accepted));
    printf("messages echoed and verified: %d\n", ATOMIC_LOAD(&msgs_ok));
    printf("bytes verified by clients: %lld\n", __atomic_load_n(&client_bytes, __ATOMIC_SEQ_CST));
    printf("bytes echoed by handlers: %lld\n", __atomic_load_n(&echoed_bytes, __ATOMIC_SEQ_CST));
    printf("handlers that saw EOF and closed: %d\n", ATOMIC_LOAD(&handlers_done));
    CHECK(ATOMIC_LOAD(&msgs_ok) == CLIENTS * MESSAGES && ATOMIC_LOAD(&mismatches) == 0 &&
              ATOMIC_LOAD(&msg_errors) == 0,
          "every message came back byte for byte");
    CHECK(__atomic_load_n(&client_bytes, __ATOMIC_SEQ_CST) == per_client * CLIENTS &&
              __atomic_load_n(&echoed_bytes, __ATOMIC_SEQ_CST) == per_client * CLIENTS,
          "byte totals match on both sides");
    CHECK(handlers_finished && ATOMIC_LOAD(&handler_errors) == 0 && ATOMIC_LOAD(&accept_errors) == 0,
          "every handler ended on EOF without errors");
    return test_exit_status();
}
