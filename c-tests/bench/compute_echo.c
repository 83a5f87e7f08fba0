/* compute_echo: a thread-per-connection echo server where 1% of the requests compute for 20 ms, and what
 * that does to the latency of the other 99% (issue 14: preemption). Natively the kernel time-slices the
 * computing threads; under the shim a coroutine that computes past its slice is preempted.
 *
 * Usage: compute_echo [CONNS=50] [SECONDS=4] [COMPUTE_MS=20]
 * The load generator is a forked child (so under the shim it runs in pass-through, as plain threads): one
 * thread per connection, closed loop, 8-byte requests of which every 100th asks for the computation.
 * Prints key=value lines: p50_us, p99_us and p999_us of the ordinary requests, requests (ordinary ones
 * answered), os_threads (the server's most OS threads, sampled every 20 ms), shim_active. */
#include "bench_common.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static long compute_ns;
static atomic_int running = 1;

static int read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, (char *)buf + got, n - got);
        if (k <= 0)
            return -1;
        got += (size_t)k;
    }
    return 0;
}

static void *serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    uint64_t req;
    while (read_full(fd, &req, sizeof req) == 0) {
        if (req & 1) {
            long long end = bench_now_ns() + compute_ns;
            volatile uint64_t x = req;
            while (bench_now_ns() < end)
                for (int i = 0; i < 20000; i++)
                    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        }
        if (write(fd, &req, sizeof req) != sizeof req)
            break;
    }
    close(fd);
    return NULL;
}

static void *acceptor(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_t t;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        pthread_create(&t, &a, serve, (void *)(intptr_t)fd);
        pthread_attr_destroy(&a);
    }
    return NULL;
}

static long max_threads;

static void *sampler(void *arg)
{
    (void)arg;
    while (atomic_load(&running)) {
        long n = bench_status("Threads");
        if (n > max_threads)
            max_threads = n;
        usleep(20000);
    }
    return NULL;
}

/* --- the load generator (forked child) --- */
struct conn {
    int fd, index;
    long long until;
    long *lat_us;
    long n, cap;
};

static void *drive(void *arg)
{
    struct conn *c = arg;
    for (uint64_t i = 0; bench_now_ns() < c->until; i++) {
        uint64_t req = ((i + (uint64_t)c->index) % 100 == 0) ? 1 : 2;
        long long t0 = bench_now_ns();
        if (write(c->fd, &req, sizeof req) != sizeof req || read_full(c->fd, &req, sizeof req) != 0)
            break;
        if (!(req & 1) && c->n < c->cap)
            c->lat_us[c->n++] = (bench_now_ns() - t0) / 1000;
    }
    return NULL;
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

static void load(int port, int conns, int seconds)
{
    struct conn *cs = calloc((size_t)conns, sizeof *cs);
    pthread_t *ts = calloc((size_t)conns, sizeof *ts);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    long long until = bench_now_ns() + (long long)seconds * 1000000000LL;
    for (int i = 0; i < conns; i++) {
        cs[i].fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(cs[i].fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            perror("connect");
            _exit(1);
        }
        int one = 1;
        setsockopt(cs[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        cs[i].index = i;
        cs[i].until = until;
        cs[i].cap = 1 << 20;
        cs[i].lat_us = malloc(sizeof(long) * (size_t)cs[i].cap);
    }
    for (int i = 0; i < conns; i++)
        pthread_create(&ts[i], NULL, drive, &cs[i]);
    long total = 0;
    for (int i = 0; i < conns; i++) {
        pthread_join(ts[i], NULL);
        total += cs[i].n;
    }
    long *all = malloc(sizeof(long) * (size_t)(total ? total : 1));
    long k = 0;
    for (int i = 0; i < conns; i++)
        for (long j = 0; j < cs[i].n; j++)
            all[k++] = cs[i].lat_us[j];
    qsort(all, (size_t)total, sizeof(long), cmp_long);
    if (total == 0) {
        fprintf(stderr, "no request answered\n");
        _exit(1);
    }
    printf("p50_us=%ld\np99_us=%ld\np999_us=%ld\nrequests=%ld\n", all[total / 2], all[total * 99 / 100],
           all[total * 999 / 1000], total);
    fflush(stdout);
    _exit(0);
}

int main(int argc, char **argv)
{
    int conns = (int)bench_arg(argc, argv, 1, 50);
    int seconds = (int)bench_arg(argc, argv, 2, 4);
    compute_ns = bench_arg(argc, argv, 3, 20) * 1000000L;
    signal(SIGPIPE, SIG_IGN);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = { .sin_family = AF_INET };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 1024) != 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &len) != 0) {
        perror("listen");
        return 1;
    }
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        close(lfd);
        load(ntohs(sa.sin_port), conns, seconds);
    }
    pthread_t a, s;
    pthread_create(&a, NULL, acceptor, (void *)(intptr_t)lfd);
    pthread_create(&s, NULL, sampler, NULL);
    int st = 0;
    waitpid(child, &st, 0);
    atomic_store(&running, 0);
    pthread_join(s, NULL);
    printf("os_threads=%ld\nshim_active=%d\n", max_threads, bench_shim_active());
    fflush(stdout);
    _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
}
