/* asyncshim benchmark tool: where the memory of one idle connection goes.
 *
 * Starts N threads (default 5,000), each blocked in read() on its own socketpair end after one 64-byte
 * echo round trip, the way c-tests/bench/echo_threads.c holds an idle connection (a BUF-byte buffer on
 * the thread's stack, default 16 KiB like ECHO_BUF). With all of them idle it reports, per thread:
 *   - the growth of VmRSS and VmPTE (page tables) since before the threads were created;
 *   - the growth of each mapping's Rss (/proc/self/smaps) that grew by 16 bytes per thread or more
 *     (thread stacks, the heap, the shim's fd table ...);
 *   - for three threads, which 4 KiB pages around pthread_self() (the TCB, at the top of the stack as
 *     glibc and the shim place it) are present (/proc/self/pagemap), as offsets in KiB from the TCB's page;
 *   - how many threads have a malloc thread cache (glibc 2.36's libc TLS layout: the tcache pointer lies
 *     0x38 bytes past errno);
 *   - with DEPTH=1 in the environment: how deep below its own frame each thread's stack went while it
 *     blocked (the read() call chain, the hook and the context switch under the shim). The thread fills
 *     12 KiB below its stack pointer with a pattern first, so this mode touches three more pages.
 * Kernel memory (the 16 KiB kernel stack of each OS thread) is not in these figures.
 *
 * Prints key=value lines and indented detail lines on stdout.
 * Usage: idle_breakdown [N [BUF]]     Build: gcc -O2 -pthread idle_breakdown.c -o idle_breakdown
 * Compare: ./idle_breakdown; LD_PRELOAD=target/release/libasyncshim.so ./idle_breakdown;
 *          ASYNCSHIM_STACK_SIZE=64K LD_PRELOAD=... ./idle_breakdown
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PAINT 12288
#define PAINT_SKIP 256 /* left unpainted just below the stack pointer (red zone and the memset call) */
#define MSG 64

struct conn {
    pthread_t thread;
    int peer, fd;
    uintptr_t sp; /* the thread's stack pointer in its own frame, DEPTH mode */
};

static struct conn *conns;
static long buf_size = 16384;
static int depth_mode;
static atomic_int started;

static long status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, n) && line[n] == ':') { v = atol(line + n + 1); break; }
    if (f) fclose(f);
    return v;
}

static __attribute__((noinline)) void paint_below(uintptr_t sp) {
    memset((void *)(sp - PAINT), 0xAA, PAINT - PAINT_SKIP);
}

static void *serve(void *arg) {
    struct conn *c = arg;
    char buf[buf_size];
    if (depth_mode) {
        uintptr_t sp;
        __asm__ volatile("mov %%rsp, %0" : "=r"(sp));
        c->sp = sp;
        paint_below(sp);
    }
    atomic_fetch_add(&started, 1);
    for (;;) {
        ssize_t n = read(c->fd, buf, (size_t)buf_size);
        if (n <= 0 || write(c->fd, buf, (size_t)n) != n) break;
    }
    close(c->fd);
    return NULL;
}

struct map {
    unsigned long lo, hi;
    long rss_kb;
    char name[96];
};

static int read_maps(struct map *m, int max) {
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int n = -1;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char perms[8], name[96] = "";
        char *dash = strchr(line, '-'), *space = strchr(line, ' ');
        if (dash && space && dash < space && sscanf(line, "%lx-%lx %7s %*s %*s %*s %95[^\n]", &lo, &hi, perms, name) >= 3) {
            if (n + 1 >= max) break;
            n++;
            m[n] = (struct map){lo, hi, 0, ""};
            snprintf(m[n].name, sizeof m[n].name, "%s %s", perms, name);
        } else if (n >= 0 && !strncmp(line, "Rss:", 4)) {
            m[n].rss_kb = atol(line + 4);
        }
    }
    if (f) fclose(f);
    return n + 1;
}

static struct map before[8192], after[8192];

static int present(int pagemap, uintptr_t addr) {
    uint64_t e;
    return pread(pagemap, &e, sizeof e, (off_t)(addr / 4096 * 8)) == (ssize_t)sizeof e && (e >> 63);
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 5000;
    if (argc > 2) buf_size = atol(argv[2]);
    if (n < 3 || buf_size < MSG) { fprintf(stderr, "usage: idle_breakdown [N>=3 [BUF>=64]]\n"); return 2; }
    depth_mode = getenv("DEPTH") != NULL;
    conns = calloc((size_t)n, sizeof *conns);
    if (!conns) { perror("calloc"); return 1; }

    int nb = read_maps(before, 8192);
    long rss0 = status_kb("VmRSS"), pte0 = status_kb("VmPTE");
    for (long i = 0; i < n; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) { perror("socketpair"); return 1; }
        conns[i].peer = sv[0];
        conns[i].fd = sv[1];
        int rc = pthread_create(&conns[i].thread, NULL, serve, &conns[i]);
        if (rc) { fprintf(stderr, "pthread_create: %s\n", strerror(rc)); return 1; }
    }
    while (atomic_load(&started) < n) usleep(1000);
    char msg[MSG];
    memset(msg, 'x', sizeof msg);
    for (long i = 0; i < n; i++)
        if (write(conns[i].peer, msg, MSG) != MSG) { perror("write"); return 1; }
    for (long i = 0; i < n; i++) {
        char r[MSG];
        for (size_t got = 0; got < MSG;) {
            ssize_t k = read(conns[i].peer, r + got, MSG - got);
            if (k <= 0) { perror("read"); return 1; }
            got += (size_t)k;
        }
    }
    usleep(200 * 1000);
    long rss1 = status_kb("VmRSS"), pte1 = status_kb("VmPTE");
    int na = read_maps(after, 8192);

    printf("threads=%ld\nbuf_bytes=%ld\n", n, buf_size);
    printf("rss_bytes_per_thread=%.0f\n", (rss1 - rss0) * 1024.0 / n);
    printf("pte_bytes_per_thread=%.0f\n", (pte1 - pte0) * 1024.0 / n);
    printf("bytes_per_thread=%.0f\n", ((rss1 - rss0) + (pte1 - pte0)) * 1024.0 / n);
    for (int i = 0; i < na; i++) {
        long prev = 0;
        for (int j = 0; j < nb; j++)
            if (before[j].lo == after[i].lo) { prev = before[j].rss_kb; break; }
        long d = after[i].rss_kb - prev;
        if (d * 1024 / n >= 16)
            printf("  mapping %lx-%lx (%lu KiB) %s: +%ld KiB = %.0f B/thread\n", after[i].lo, after[i].hi,
                   (after[i].hi - after[i].lo) >> 10, after[i].name, d, d * 1024.0 / n);
    }

    int pm = open("/proc/self/pagemap", O_RDONLY);
    for (long t = n / 2; pm >= 0 && t < n / 2 + 3; t++) {
        uintptr_t tcb = (uintptr_t)conns[t].thread, page = tcb & ~(uintptr_t)4095;
        printf("  thread %ld: TCB at page offset 0x%lx; pages present (KiB from the TCB's page):", t,
               (unsigned long)(tcb & 4095));
        for (long k = -((buf_size + PAINT) / 4096 + 8); k <= 1; k++)
            if (present(pm, page + (uintptr_t)(k * 4096))) printf(" %+ld", k * 4);
        printf("\n");
    }
    if (pm >= 0) close(pm);

    long errno_from_tp = (long)((char *)&errno - (char *)pthread_self()), with_tcache = 0;
    for (long i = 0; i < n; i++)
        if (*(void **)((char *)conns[i].thread + errno_from_tp + 0x38)) with_tcache++;
    printf("threads_with_malloc_cache=%ld\n", with_tcache);

    if (depth_mode) {
        long max = 0, sum = 0;
        for (long i = 0; i < n; i++) {
            unsigned char *p = (unsigned char *)(conns[i].sp - PAINT);
            long k = 0;
            while (k < PAINT - PAINT_SKIP && p[k] == 0xAA) k++;
            long d = (long)(conns[i].sp - (uintptr_t)(p + k));
            if (d > max) max = d;
            sum += d;
        }
        printf("stack_below_frame_max=%ld\nstack_below_frame_mean=%ld\n", max, sum / n);
    }

    for (long i = 0; i < n; i++) close(conns[i].peer);
    for (long i = 0; i < n; i++) pthread_join(conns[i].thread, NULL);
    free(conns);
    return 0;
}
