/* asyncshim benchmark: cost of a hooked I/O call that does not block (the common case in a busy server).
 *
 * Each iteration writes 1 byte and reads it back on the same thread, so every call finds its fd ready and
 * nothing ever parks: the figure is the hook's own overhead (the non-blocking attempt, the readiness
 * bookkeeping) on top of the system call. Done on a pipe (the shim tries it with RWF_NOWAIT) and on a
 * Unix socketpair (MSG_DONTWAIT), in the main thread (a coroutine under the shim).
 *
 * Prints key=value lines: pipe_ns_per_call, socket_ns_per_call (one call = a read or a write).
 * Usage: ready_fd [ITERATIONS]     Build: gcc -O2 -pthread ready_fd.c -o ready_fd -ldl
 */
#include "bench_common.h"
#include <sys/socket.h>
#include <unistd.h>

static double per_call(int rfd, int wfd, long iters) {
    char c = 'x';
    for (long i = 0; i < iters / 10; i++) { /* warm-up: first-use registration and caches */
        if (write(wfd, &c, 1) != 1 || read(rfd, &c, 1) != 1) { perror("warm-up"); exit(1); }
    }
    long long t0 = bench_now_ns();
    for (long i = 0; i < iters; i++) {
        if (write(wfd, &c, 1) != 1 || read(rfd, &c, 1) != 1) { perror("ready_fd"); exit(1); }
    }
    return (double)(bench_now_ns() - t0) / (2.0 * iters);
}

int main(int argc, char **argv) {
    long iters = bench_arg(argc, argv, 1, 1000000);
    int p[2], s[2];
    if (pipe(p) < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, s) < 0) { perror("pipe/socketpair"); return 1; }
    double pipe_ns = per_call(p[0], p[1], iters);
    double sock_ns = per_call(s[0], s[1], iters);
    printf("benchmark=ready_fd\n");
    printf("shim_active=%d\n", bench_shim_active());
    printf("iterations=%ld\n", iters);
    printf("pipe_ns_per_call=%.1f\n", pipe_ns);
    printf("socket_ns_per_call=%.1f\n", sock_ns);
    return 0;
}
