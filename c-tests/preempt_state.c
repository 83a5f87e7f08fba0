/* preempt_state.c — a preempted thread resumes with every register as it was: general registers, flags,
 * x87, SSE and AVX (issue 14). Spinners keep values in vector and x87 registers across long loops with no
 * calls (so under the shim they are preempted in the middle), one with a non-default rounding mode and
 * flush-to-zero in MXCSR (which must not leak into the others).
 * Their results must be those of a run without interruption: computed again at the end by main alone
 * and compared, and printed (identical natively).
 *
 * ASYNCSHIM_WORKERS=1 and ASYNCSHIM_MAX_SPARES=0 (the program runs itself again with them) so that the
 * spinners share one worker and are preempted many times. asyncshim-test: timeout=60 */
#include "shim_probe.h"
#include "test_util.h"
#include <immintrin.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <xmmintrin.h>

#define ROUNDS 40
#define INNER 2000000

static atomic_int preempt_seen;

/* SSE2 doubles in xmm registers, with the rounding mode towards zero and FTZ/DAZ on: a preemption that
 * lost MXCSR or an xmm register changes the bits of the result. */
__attribute__((noinline)) static void sse_work(int seed, double out[2])
{
    __m128d a = _mm_set_pd(1.0 + seed * 1e-9, 0.5 + seed * 1e-7);
    __m128d m = _mm_set_pd(1.0000001, 0.9999999);
    __m128d c = _mm_set_pd(1e-310, 3.3e-12);
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < INNER; i++) {
            a = _mm_add_pd(_mm_mul_pd(a, m), c);
            a = _mm_sub_pd(a, _mm_mul_pd(c, a));
        }
        __asm__ volatile("" : "+x"(a));
    }
    _mm_storeu_pd(out, a);
}

/* AVX (ymm, upper halves included) when the CPU has it, with an x87 long double accumulator beside it. */
__attribute__((noinline, target("avx"))) static void avx_work(int seed, double out[4], long double *x87)
{
    __m256d a = _mm256_set_pd(1.0 + seed, 2.0 + seed, 3.0 + seed, 4.0 + seed);
    __m256d m = _mm256_set1_pd(0.999999999);
    __m256d c = _mm256_set_pd(1e-3, 2e-3, 3e-3, 4e-3);
    long double acc = seed;
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < INNER; i++) {
            a = _mm256_add_pd(_mm256_mul_pd(a, m), c);
            acc = acc * 1.0000000001L + 1e-12L;
        }
        __asm__ volatile("" : "+x"(a), "+t"(acc));
    }
    _mm256_storeu_pd(out, a);
    *x87 = acc;
}

/* General registers only: many live values in a loop the compiler keeps in registers. */
__attribute__((noinline)) static unsigned long int_work(unsigned long seed)
{
    unsigned long a = seed, b = seed ^ 0x9e3779b97f4a7c15UL, c = 1, d = 7, e = 11, f = 13, g = 17, h = 19;
    for (long i = 0; i < (long)ROUNDS * INNER; i++) {
        a += b ^ (c << 3);
        b = (b >> 7) | (b << 57);
        c += d * 3 + a;
        d ^= e + (c >> 11);
        e += f ^ g;
        f = (f << 13) | (f >> 51);
        g += h + (e & 0xffff);
        h ^= a + g;
    }
    return a ^ b ^ c ^ d ^ e ^ f ^ g ^ h;
}

struct job {
    int kind, seed;
    double d[4];
    long double x;
    unsigned long u;
};

static int have_avx;

static void run_job(struct job *j)
{
    switch (j->kind) {
    case 0: {
        unsigned csr = _mm_getcsr();
        _mm_setcsr(csr | 0x6000 | 0x8040); /* rounding towards zero, FTZ and DAZ */
        sse_work(j->seed, j->d);
        _mm_setcsr(csr);
        break;
    }
    case 1:
        if (have_avx)
            avx_work(j->seed, j->d, &j->x);
        break;
    default:
        j->u = int_work((unsigned long)j->seed);
        break;
    }
}

static void *worker(void *arg)
{
    run_job(arg);
    return NULL;
}

int main(int argc, char **argv)
{
    (void)argc;
    rerun_with_env(argv, "PREEMPT_STATE_RERUN", (const char *const[]){ "ASYNCSHIM_WORKERS", "1", "ASYNCSHIM_MAX_SPARES", "0", NULL });
    test_init();
    __builtin_cpu_init();
    have_avx = __builtin_cpu_supports("avx");
    enum { N = 6 };
    struct job jobs[N], again[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].kind = i % 3;
        jobs[i].seed = i + 1;
        again[i] = jobs[i];
    }
    int64_t t0 = mono_ns();
    for (int i = 0; i < N; i++)
        pthread_create(&t[i], NULL, worker, &jobs[i]);
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    fprintf(stderr, "threads took %.1f ms\n", (mono_ns() - t0) / 1e6);
    /* The same work by main alone, one job at a time (under the shim: no other coroutine to switch to). */
    for (int i = 0; i < N; i++)
        run_job(&again[i]);
    int same = 1;
    for (int i = 0; i < N; i++) {
        int eq = memcmp(jobs[i].d, again[i].d, sizeof jobs[i].d) == 0 && jobs[i].u == again[i].u &&
                 memcmp(&jobs[i].x, &again[i].x, 10) == 0;
        if (!eq)
            fprintf(stderr, "job %d differs: %a %a %a %a %La %lx / %a %a %a %a %La %lx\n", i, jobs[i].d[0],
                    jobs[i].d[1], jobs[i].d[2], jobs[i].d[3], jobs[i].x, jobs[i].u, again[i].d[0], again[i].d[1],
                    again[i].d[2], again[i].d[3], again[i].x, again[i].u);
        same &= eq;
    }
    CHECK(same, "every thread's result equals the uninterrupted computation");
    for (int i = 0; i < N; i += 3)
        printf("sse job %d: %a %a\n", i, jobs[i].d[0], jobs[i].d[1]);
    for (int i = 2; i < N; i += 3)
        printf("int job %d: %lx\n", i, jobs[i].u);
    CHECK((_mm_getcsr() & 0xe040) == 0, "main's MXCSR rounding mode and FTZ/DAZ unchanged");
    return test_exit_status();
}
