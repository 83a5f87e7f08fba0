/* preempt_soak.c — preemption under a mix of everything (issue 14): 100 threads compute (integer and
 * floating point), malloc and free, format with stdio and write to a shared FILE inside flockfile
 * sections, take a shared mutex, echo bytes through their own socket pair, sort with qsort (a comparator
 * glibc calls back), and take SIGUSR1 sent to the process by main (its handler computes too). The program runs
 * itself again with ASYNCSHIM_SLICE_MS=1, so that under the shim coroutines are preempted (or refused)
 * everywhere. Every thread's result is deterministic and the totals are printed; they must be native's.
 * asyncshim-test: timeout=120 */
#include "shim_probe.h"
#include "test_util.h"
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define THREADS 100
#define ROUNDS 40
static int rounds = ROUNDS;

static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long shared_sum;
static FILE *shared_file;
static atomic_int finished;
static atomic_long signals_handled;
static volatile double handler_sink;

static void on_usr1(int sig)
{
    (void)sig;
    double x = 1.0;
    for (int i = 0; i < 20000; i++)
        x = x * 1.0000001 + 1e-9;
    handler_sink = x;
    atomic_fetch_add(&signals_handled, 1);
}

static int cmp_ulong(const void *a, const void *b)
{
    unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;
    /* Some work inside the callback, so that preemption meets it there. */
    volatile unsigned long spin = x ^ y;
    for (int i = 0; i < 50; i++)
        spin = spin * 31 + 7;
    return x < y ? -1 : x > y;
}

static unsigned long compute(unsigned long seed, int n)
{
    unsigned long x = seed;
    double d = (double)(seed % 1000) / 7.0;
    for (int i = 0; i < n; i++) {
        x = x * 6364136223846793005UL + 1442695040888963407UL;
        d = d * 0.999999 + (double)(x >> 40) * 1e-12;
    }
    unsigned long bits;
    memcpy(&bits, &d, sizeof bits);
    return x ^ bits;
}

static void *worker(void *arg)
{
    long id = (long)arg;
    unsigned long acc = (unsigned long)id * 977;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return (void *)-1L;
    for (int r = 0; r < rounds; r++) {
        acc ^= compute(acc + (unsigned long)r, 300000);

        size_t len = 1000 + (acc % 50000);
        unsigned char *p = malloc(len);
        for (size_t i = 0; i < len; i++)
            p[i] = (unsigned char)(acc >> (i % 56));
        unsigned long sum = 0;
        for (size_t i = 0; i < len; i++)
            sum = sum * 131 + p[i];
        free(p);
        acc += sum;

        char line[128];
        int n = snprintf(line, sizeof line, "thread %ld round %d value %lx %.6f\n", id, r, acc, (double)(acc % 100000) / 3.0);
        flockfile(shared_file);
        for (int i = 0; i < n; i++)
            putc_unlocked(line[i], shared_file);
        funlockfile(shared_file);

        pthread_mutex_lock(&shared_lock);
        shared_sum += acc % 1000003;
        pthread_mutex_unlock(&shared_lock);

        unsigned char msg[64], back[64];
        for (int i = 0; i < 64; i++)
            msg[i] = (unsigned char)(acc >> (i % 8 * 8));
        size_t got = 0;
        if (write(sv[0], msg, sizeof msg) != sizeof msg)
            return (void *)-2L;
        while (got < sizeof back) {
            ssize_t k = read(sv[1], back + got, sizeof back - got);
            if (k <= 0)
                return (void *)-3L;
            got += (size_t)k;
        }
        acc += memcmp(msg, back, sizeof msg) == 0 ? 1 : 1000;

        unsigned long arr[300];
        unsigned long x = acc;
        for (int i = 0; i < 300; i++) {
            x = x * 2862933555777941757UL + 3037000493UL;
            arr[i] = x >> 16;
        }
        qsort(arr, 300, sizeof arr[0], cmp_ulong);
        acc += arr[0] ^ arr[150] ^ arr[299];
    }
    close(sv[0]);
    close(sv[1]);
    atomic_fetch_add(&finished, 1);
    return (void *)(acc & 0x7fffffffffffffffUL);
}

int main(int argc, char **argv)
{
    (void)argc;
    rerun_with_env(argv, "PREEMPT_SOAK_RERUN", (const char *const[]){ "ASYNCSHIM_SLICE_MS", "1", NULL });
    test_init();
    /* PREEMPT_SOAK_ROUNDS=N soaks longer by hand (40 rounds take about 3 s natively). */
    if (getenv("PREEMPT_SOAK_ROUNDS"))
        rounds = atoi(getenv("PREEMPT_SOAK_ROUNDS"));
    set_signal_handler(SIGUSR1, on_usr1, SA_RESTART);
    shared_file = tmpfile();
    CHECK(shared_file != NULL, "tmpfile");
    pthread_t t[THREADS];
    int64_t t0 = mono_ns();
    for (long i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, worker, (void *)i);
    /* Signals to the whole process while the threads run: the kernel (or the shim) picks a thread. */
    int sent = 0;
    while (atomic_load(&finished) < THREADS / 2 && sent < 200 * (rounds / ROUNDS + 1)) {
        kill(getpid(), SIGUSR1);
        sent++;
        sleep_ms(5);
    }
    unsigned long total = 0;
    int ok = 1;
    for (long i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        if ((long)r < 0)
            ok = 0;
        total ^= (unsigned long)r * (unsigned long)(i + 1);
    }
    fprintf(stderr, "%.1f ms; %d signals sent, %ld handled\n", (mono_ns() - t0) / 1e6, sent,
            atomic_load(&signals_handled));
    CHECK(ok, "every thread's I/O worked");
    long bytes = ftell(shared_file);
    rewind(shared_file);
    char line[256];
    int lines = 0, well_formed = 1;
    while (fgets(line, sizeof line, shared_file)) {
        lines++;
        if (strncmp(line, "thread ", 7) != 0 || line[strlen(line) - 1] != '\n')
            well_formed = 0;
    }
    CHECK(well_formed, "no line of the shared FILE was torn");
    printf("results: %lx, shared sum %lu, %d lines, %ld bytes\n", total, shared_sum, lines, bytes);
    CHECK(atomic_load(&signals_handled) > 0, "SIGUSR1 handled");
    return test_exit_status();
}
