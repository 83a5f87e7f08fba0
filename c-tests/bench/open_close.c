/* asyncshim benchmark: cost of open+close of a regular file (a hot call for many programs; under the shim
 * a coroutine's open goes through runtime::worker_call, since the open of a FIFO may wait in the kernel).
 *
 * Prints open_close_ns (best of 8 rounds of ITERATIONS). For instructions, run it twice under callgrind
 * with two counts and divide the difference (the start-up cancels out):
 *   ASYNCSHIM_WORKERS=1 ASYNCSHIM_NO_FSGSBASE=1 LD_PRELOAD=$PWD/target/release/libasyncshim.so \
 *     valgrind --tool=callgrind --callgrind-out-file=N.out c-tests/build/bench/open_close N 1
 * Usage: open_close [ITERATIONS [ROUNDS]]     Build: gcc -O2 -pthread open_close.c -o open_close -ldl
 */
#include "bench_common.h"
#include <fcntl.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long iters = bench_arg(argc, argv, 1, 200000);
    long rounds = bench_arg(argc, argv, 2, 8);
    char path[] = "/tmp/asyncshim-open-bench-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) { perror("mkstemp"); return 1; }
    close(fd);
    double best = 1e18;
    for (long r = 0; r < rounds; r++) {
        long long t0 = bench_now_ns();
        for (long i = 0; i < iters; i++) {
            fd = open(path, O_RDONLY);
            if (fd < 0) { perror("open"); unlink(path); return 1; }
            close(fd);
        }
        double ns = (double)(bench_now_ns() - t0) / iters;
        if (ns < best) best = ns;
    }
    unlink(path);
    printf("open_close_ns=%.1f\n", best);
    return 0;
}
