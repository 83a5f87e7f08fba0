/* Hand-written epoll echo server: the reference for what the kernel path allows. THREADS event loops
 * (default: online CPUs, the shim's default worker count, so both use the same number of OS threads),
 * each with its own epoll instance; all watch the non-blocking listening socket with EPOLLEXCLUSIVE so a
 * new connection wakes one loop, which then owns it. Level-triggered; a reply that does not fit in the
 * socket buffer is kept and finished on EPOLLOUT before the connection is read again.
 *
 * scripts/bench.sh runs it twice per connection count, with one loop per core and with THREADS=1 (one
 * loop, no cross-core wake-ups or cache-line traffic: faster when the load generator shares the cores),
 * and takes the better of the two as the reference.
 *
 * Usage: echo_epoll [PORT [BACKLOG [SECONDS [THREADS]]]]    (see echo_common.h)
 * Build: gcc -O2 -pthread echo_epoll.c -o echo_epoll
 */
#include "echo_common.h"
#include <pthread.h>
#include <stdint.h>
#include <sys/epoll.h>

struct conn {
    int fd;
    size_t off, len;      /* pending reply: buf[off..len) */
    uint32_t watching;    /* EPOLLIN or EPOLLOUT: what the epoll registration waits for */
    char buf[ECHO_BUF];
};

static int lfd;

static void drop(int ep, struct conn *c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
}

static void *loop(void *arg) {
    (void)arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) { perror("epoll_create1"); exit(1); }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = NULL};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) { perror("epoll_ctl listen"); exit(1); }
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("epoll_wait");
            exit(1);
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c == NULL) { /* the listening socket: take what is queued */
                for (;;) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0) {
                        if (errno == EMFILE || errno == ENFILE) perror("accept4");
                        break;
                    }
                    echo_nodelay(fd);
                    struct conn *nc = malloc(sizeof *nc);
                    if (!nc) { close(fd); continue; }
                    nc->fd = fd;
                    nc->off = nc->len = 0;
                    nc->watching = EPOLLIN;
                    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = nc};
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev) < 0) { close(fd); free(nc); }
                }
                continue;
            }
            if (c->off == c->len) { /* nothing pending: read a request */
                ssize_t r = read(c->fd, c->buf, sizeof c->buf);
                if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) { drop(ep, c); continue; }
                if (r < 0) continue;
                c->off = 0;
                c->len = (size_t)r;
            }
            while (c->off < c->len) {
                ssize_t w = write(c->fd, c->buf + c->off, c->len - c->off);
                if (w < 0) break;
                c->off += (size_t)w;
            }
            if (c->off < c->len && errno != EAGAIN && errno != EINTR) { drop(ep, c); continue; }
            /* Wait for room while a reply is pending, for a request otherwise. */
            uint32_t want = c->off < c->len ? EPOLLOUT : EPOLLIN;
            if (want != c->watching) {
                struct epoll_event cev = {.events = want, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &cev);
                c->watching = want;
            }
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    long port = echo_arg(argc, argv, 1, 0), backlog = echo_arg(argc, argv, 2, 65535);
    echo_setup(echo_arg(argc, argv, 3, 600));
    long nthreads = echo_arg(argc, argv, 4, sysconf(_SC_NPROCESSORS_ONLN));
    if (nthreads < 1) nthreads = 1;
    lfd = echo_listen(port, backlog, 1);
    for (long i = 1; i < nthreads; i++) {
        pthread_t t;
        int rc = pthread_create(&t, NULL, loop, NULL);
        if (rc != 0) { fprintf(stderr, "pthread_create: %s\n", strerror(rc)); return 1; }
    }
    loop(NULL);
    return 0;
}
