/* Thread-per-connection echo server: the program asyncshim is for. The acceptor starts one detached
 * thread per connection, which echoes with blocking read()/write() until the peer closes.
 *
 * Usage: echo_threads [PORT [BACKLOG [SECONDS]]]    (see echo_common.h)
 * Build: gcc -O2 -pthread echo_threads.c -o echo_threads
 */
#include "echo_common.h"
#include <pthread.h>

static void *serve(void *arg) {
    int fd = (int)(long)arg;
    char buf[ECHO_BUF];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0 || echo_write_all(fd, buf, (size_t)n) < 0) break;
    }
    close(fd);
    return NULL;
}

int main(int argc, char **argv) {
    long port = echo_arg(argc, argv, 1, 0), backlog = echo_arg(argc, argv, 2, 65535);
    echo_setup(echo_arg(argc, argv, 3, 600));
    int lfd = echo_listen(port, backlog, 0);

    /* Default attributes (stack size from RLIMIT_STACK) on purpose: that is what such programs do. */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (;;) {
        int fd = echo_accept(lfd);
        pthread_t t;
        int rc = pthread_create(&t, &attr, serve, (void *)(long)fd);
        if (rc != 0) {
            fprintf(stderr, "pthread_create: %s\n", strerror(rc));
            close(fd);
        }
    }
}
