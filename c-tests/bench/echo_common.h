/* Shared by the echo servers of the asyncshim benchmarks (echo_threads.c, echo_pool.c, echo_epoll.c).
 *
 * Command line of every server:  PROG [PORT [BACKLOG [SECONDS [THREADS]]]]
 *   PORT     TCP port on 127.0.0.1 (0: the kernel picks one)           default 0
 *   BACKLOG  listen() backlog (the kernel caps it at net.core.somaxconn) default 65535
 *   SECONDS  the server exits by itself after this long (a bound, so a forgotten server cannot linger)
 *                                                                       default 600
 *   THREADS  worker threads, where the server has any (pool: workers; epoll: event loops)
 * The server prints "listening PORT" on stdout (flushed) once it accepts connections, and exits with
 * status 0 on SIGTERM, SIGINT or when SECONDS have passed.
 */
#ifndef ASYNCSHIM_ECHO_COMMON_H
#define ASYNCSHIM_ECHO_COMMON_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define ECHO_BUF 16384

static inline long echo_arg(int argc, char **argv, int i, long dflt) {
    if (argc <= i) return dflt;
    char *end;
    long v = strtol(argv[i], &end, 10);
    if (*argv[i] == '\0' || *end != '\0' || v < 0) {
        fprintf(stderr, "%s: bad argument '%s' (expected a non-negative integer)\n", argv[0], argv[i]);
        exit(2);
    }
    return v;
}

/* _exit is async-signal-safe; a clean process exit is all the bench needs (it ends the connections). */
static inline void echo_quit(int sig) { (void)sig; _exit(0); }

/* Raises RLIMIT_NOFILE to the hard limit (one fd per connection), installs the exit handlers and arms
 * the time bound. */
static inline void echo_setup(long seconds) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = echo_quit;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
    /* A peer that resets while we write must not kill the server. */
    signal(SIGPIPE, SIG_IGN);
    if (seconds > 0) alarm((unsigned)seconds);
}

/* Listening socket on 127.0.0.1:PORT; prints "listening PORT". Exits on failure. */
static inline int echo_listen(long port, long backlog, int nonblock) {
    int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0) { perror("socket"); exit(1); }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    /* Loopback only: the bench never serves anything off this machine. 127.0.0.1 accepts connections
     * from every 127.0.0.x source address the load generator spreads its connections over. */
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((unsigned short)port);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) { perror("bind"); exit(1); }
    if (listen(fd, (int)backlog) < 0) { perror("listen"); exit(1); }
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    printf("listening %d\n", ntohs(a.sin_port));
    fflush(stdout);
    return fd;
}

/* Ping-pong traffic: small messages must leave at once, not wait for Nagle. */
static inline void echo_nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* The next connection of a blocking listener, with TCP_NODELAY. EMFILE and friends back off 10 ms instead
 * of spinning (the load generator sees the refusal). */
static inline int echo_accept(int lfd) {
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd >= 0) {
            echo_nodelay(fd);
            return fd;
        }
        if (errno == EINTR || errno == ECONNABORTED) continue;
        perror("accept");
        usleep(10000);
    }
}

/* Blocking write of all n bytes; 0 on success, -1 on error. */
static inline int echo_write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

#endif
