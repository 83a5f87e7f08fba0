/* idle_memory: what an idle thread blocked in read() keeps, natively and under the shim.
 *
 * 2,000 threads each hold one end of a socketpair and a 16 KiB buffer on their stack, echo one message,
 * and block in read() again (as c-tests/bench/echo_threads.c holds an idle connection). With all of them
 * idle it checks, identically in every mode:
 *   - no idle thread has a malloc thread cache: none of them called malloc, and natively glibc creates a
 *     thread's cache only at its first malloc/free (the shim's own allocations on a coroutine, such as a
 *     parking-lot queue growing, must not create one either: 0x290 bytes per thread);
 *   - each idle thread has at most 4 pages present in the 64 KiB below its TCB (/proc/self/pagemap): the
 *     TCB's page, the entry frames' page and the buffer's page, plus one if a call chain crosses a page
 *     boundary (a large frame on the shim's park path would show here).
 * The probe for the cache is the tcache pointer in libc's TLS block, at a distance from errno that depends
 * on the glibc the test runs on (tcache_from_errno); a thread has a cache when it points outside libc
 * (2.43 points a thread without one at a dummy inside libc instead of NULL). It is checked first on a
 * thread that does call malloc. Per-thread RSS and page-table growth go to stderr.
 *
 * asyncshim-test: timeout=60
 */
#include "shim_probe.h"
#include "test_util.h"
#include "glibc_compat.h"
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>

#define NTHREADS 2000
#define BUF 16384
#define MSG 64

struct conn {
    pthread_t thread;
    int peer, fd;
};

static struct conn conns[NTHREADS];
static int started;
static long errno_from_tp;

/* Where libc's TLS block keeps the thread's tcache pointer, relative to errno (measured on glibc 2.31,
 * 2.35, 2.36, 2.39, 2.41, 2.42 and 2.43: libc's TLS words moved in 2.34, 2.41 and 2.43). */
static long tcache_from_errno(void)
{
    if (glibc_at_least(2, 43))
        return -0x10;
    if (glibc_at_least(2, 41))
        return 0x20;
    if (glibc_at_least(2, 34))
        return 0x38;
    return 0x30;
}

/* Whether thread t has a malloc thread cache: its tcache pointer is set and points outside libc. */
static int has_malloc_cache(pthread_t t)
{
    void *cache = *(void **)((char *)t + errno_from_tp + tcache_from_errno());
    Dl_info info;
    if (cache == NULL)
        return 0;
    return !(dladdr(cache, &info) != 0 && info.dli_fname != NULL && strstr(info.dli_fname, "libc.so") != NULL);
}

static void *serve(void *arg)
{
    struct conn *c = arg;
    char buf[BUF];
    ATOMIC_ADD(&started, 1);
    for (;;) {
        ssize_t n = read(c->fd, buf, sizeof buf);
        if (n <= 0 || write(c->fd, buf, (size_t)n) != n)
            break;
    }
    close(c->fd);
    return NULL;
}

static void *allocating(void *arg)
{
    (void)arg;
    void *volatile p = malloc(100); /* volatile: the compiler may not drop the malloc/free pair */
    free(p);
    return (void *)(intptr_t)has_malloc_cache(pthread_self());
}

int main(void)
{
    test_init();
    errno_from_tp = (long)((char *)&errno - (char *)pthread_self());

    /* Its own stack size: under the shim an ended thread's TCB is reused, malloc cache included (kept
     * rather than freed), by the next thread of the same stack size class. */
    pthread_t t;
    pthread_attr_t attr;
    void *cache = NULL; /* 1 when the allocating thread has a cache */
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1 << 20);
    int rc = pthread_create(&t, &attr, allocating, NULL);
    pthread_attr_destroy(&attr);
    if (rc == 0)
        pthread_join(t, &cache);
    CHECK(rc == 0 && cache != NULL, "a thread that calls malloc has a malloc thread cache (probe works)");

    long rss0 = proc_status_field("VmRSS"), pte0 = proc_status_field("VmPTE");
    int created = 0;
    for (int i = 0; i < NTHREADS; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
            break;
        conns[i].peer = sv[0];
        conns[i].fd = sv[1];
        if (pthread_create(&conns[i].thread, NULL, serve, &conns[i]) != 0) {
            close(sv[0]);
            close(sv[1]);
            break;
        }
        created++;
    }
    CHECK(created == NTHREADS, "2000 threads each blocked in read() on a socketpair");
    for (int i = 0; i < 20000 && ATOMIC_LOAD(&started) < created; i++)
        usleep(1000);

    char msg[MSG];
    memset(msg, 'm', sizeof msg);
    int echoed = 0;
    for (int i = 0; i < created; i++)
        if (write(conns[i].peer, msg, MSG) != MSG)
            break;
    for (int i = 0; i < created; i++) {
        char r[MSG];
        size_t got = 0;
        while (got < MSG) {
            ssize_t k = read(conns[i].peer, r + got, MSG - got);
            if (k <= 0)
                break;
            got += (size_t)k;
        }
        echoed += got == MSG && memcmp(r, msg, MSG) == 0;
    }
    CHECK(echoed == created, "every thread echoed one message and blocks in read() again");
    usleep(100 * 1000);

    long rss1 = proc_status_field("VmRSS"), pte1 = proc_status_field("VmPTE");
    int with_cache = 0, over_pages = 0, max_pages = 0;
    int pm = open("/proc/self/pagemap", O_RDONLY);
    for (int i = 0; i < created; i++) {
        if (has_malloc_cache(conns[i].thread))
            with_cache++;
        uintptr_t page = (uintptr_t)conns[i].thread & ~(uintptr_t)4095;
        int pages = 0;
        for (int k = -16; k <= 0 && pm >= 0; k++) {
            uint64_t e;
            uintptr_t a = page + (uintptr_t)((intptr_t)k * 4096);
            if (pread(pm, &e, sizeof e, (off_t)(a / 4096 * 8)) == (ssize_t)sizeof e && (e >> 63))
                pages++;
        }
        if (pages > max_pages)
            max_pages = pages;
        over_pages += pages > 4;
    }
    if (pm >= 0)
        close(pm);
    CHECK(pm >= 0, "/proc/self/pagemap readable");
    CHECK(with_cache == 0, "no idle thread has a malloc thread cache");
    CHECK(over_pages == 0, "each idle thread has at most 4 pages present below its TCB");
    fprintf(stderr, "idle_memory: shim=%d: %d threads with a malloc cache, at most %d pages near a TCB, "
                    "%.0f B RSS + %.0f B page tables per thread\n",
            under_shim(), with_cache, max_pages, (rss1 - rss0) * 1024.0 / created,
            (pte1 - pte0) * 1024.0 / created);

    for (int i = 0; i < created; i++)
        close(conns[i].peer);
    for (int i = 0; i < created; i++)
        pthread_join(conns[i].thread, NULL);
    return test_exit_status();
}
