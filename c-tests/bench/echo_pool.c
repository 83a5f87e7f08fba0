/* Thread-pool echo server: one acceptor, a FIFO of connections on a mutex + condition variable, and
 * THREADS workers. A worker takes a connection, serves one request (a blocking read() and the
 * write() of what it read) and puts the connection back at the tail, so a fixed pool serves any number
 * of persistent connections. (A worker that kept its connection until it closes would leave all but
 * THREADS connections unserved.) A worker blocks in read() when its connection has nothing to say yet;
 * under closed-loop load the request has long arrived by the time the connection comes round again.
 *
 * Usage: echo_pool [PORT [BACKLOG [SECONDS [THREADS]]]]    THREADS default 16 (see echo_common.h)
 * Build: gcc -O2 -pthread echo_pool.c -o echo_pool
 */
#include "echo_common.h"
#include <pthread.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t nonempty = PTHREAD_COND_INITIALIZER;
static int *q;           /* ring of fds; capacity cap, never full: each fd is in it at most once */
static size_t cap, head, len;

static void push(int fd) {
    pthread_mutex_lock(&mu);
    q[(head + len) % cap] = fd;
    len++;
    pthread_cond_signal(&nonempty);
    pthread_mutex_unlock(&mu);
}

static int pop(void) {
    pthread_mutex_lock(&mu);
    while (len == 0) pthread_cond_wait(&nonempty, &mu);
    int fd = q[head];
    head = (head + 1) % cap;
    len--;
    pthread_mutex_unlock(&mu);
    return fd;
}

static void *worker(void *arg) {
    (void)arg;
    char buf[ECHO_BUF];
    for (;;) {
        int fd = pop();
        ssize_t n;
        do n = read(fd, buf, sizeof buf); while (n < 0 && errno == EINTR);
        if (n <= 0 || echo_write_all(fd, buf, (size_t)n) < 0) close(fd);
        else push(fd);
    }
    return NULL;
}

int main(int argc, char **argv) {
    long port = echo_arg(argc, argv, 1, 0), backlog = echo_arg(argc, argv, 2, 65535);
    echo_setup(echo_arg(argc, argv, 3, 600));
    long nthreads = echo_arg(argc, argv, 4, 16);
    if (nthreads < 1) nthreads = 1;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    cap = rl.rlim_cur == RLIM_INFINITY ? 1u << 20 : (size_t)rl.rlim_cur;
    q = calloc(cap, sizeof *q);
    if (!q) { perror("calloc"); return 1; }
    int lfd = echo_listen(port, backlog, 0);
    for (long i = 0; i < nthreads; i++) {
        pthread_t t;
        int rc = pthread_create(&t, NULL, worker, NULL);
        if (rc != 0) { fprintf(stderr, "pthread_create: %s\n", strerror(rc)); return 1; }
    }
    for (;;)
        push(echo_accept(lfd));
}
