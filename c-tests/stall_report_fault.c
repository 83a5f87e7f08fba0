/* stall_report_fault.c — the shim's stall report must not kill the program it watches. With
 * ASYNCSHIM_STATS the monitor samples where a stalled coroutine waits by reading its stack and the code
 * around the addresses found there; a read that faults must end as an error, not as the program's death
 * (the monitor once blocked SIGSEGV, so such a fault killed the process: the installation probe died of
 * SIGSEGV about once in 500 runs under load).
 *
 * Part A (deterministic): a child blocks in a system call the shim cannot see (a raw nanosleep) for 300 ms
 * with the start of a loaded object on its stack, whose preceding page is unmapped: the monitor's look at
 * the code before that "return address" faults. Part B: many short-lived children with 50 threads each,
 * the statistics report on, run at once (start-up and exit while the monitor samples). Every child must
 * exit as natively (status 0). Natively ASYNCSHIM_STATS means nothing.
 *
 * asyncshim-test: timeout=120 */
#define _GNU_SOURCE
#include "shim_probe.h"
#include "test_util.h"
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

enum { SHORT_CHILDREN = 24, THREADS = 50 };

/* The first loaded object whose first page has an unmapped page right before it, that page reserved
 * (PROT_NONE) so nothing is mapped there meanwhile; 0 if none. */
static uintptr_t base_after_hole;

static int find_base(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size, (void)data;
    long page = sysconf(_SC_PAGESIZE);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        if (info->dlpi_phdr[i].p_type != PT_LOAD)
            continue;
        uintptr_t start = (info->dlpi_addr + info->dlpi_phdr[i].p_vaddr) & ~(uintptr_t)(page - 1);
        Dl_info dl;
        if (start <= (uintptr_t)page || !dladdr((void *)start, &dl))
            return 0;
        void *hole = mmap((void *)(start - page), page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (hole == (void *)(start - page)) {
            base_after_hole = start;
            return 1;
        }
        if (hole != MAP_FAILED)
            munmap(hole, page);
        return 0; /* only the first PT_LOAD starts the object */
    }
    return 0;
}

/* Blocks 300 ms in nanosleep made with the syscall instruction (no libc function the shim could see),
 * with the object start on the stack right above the stack pointer. */
static __attribute__((noinline)) long raw_sleep_with_address_on_stack(uintptr_t addr)
{
    volatile uintptr_t words[16];
    for (int i = 0; i < 16; i++)
        words[i] = addr;
    struct timespec ts = { 0, 300 * 1000000L };
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "0"((long)SYS_nanosleep), "D"(&ts), "S"(0L)
                     : "rcx", "r11", "memory");
    return ret + (long)(words[0] - addr);
}

static int started;

static void *sleeping_thread(void *arg)
{
    (void)arg;
    ATOMIC_ADD(&started, 1);
    usleep(1000);
    return NULL;
}

/* Part A's child: a second thread (so the runtime's monitor and spare workers are in play) sleeps in the
 * kernel, unseen, while the main thread joins it. */
static void *stalling_thread(void *arg)
{
    (void)arg;
    return (void *)raw_sleep_with_address_on_stack(base_after_hole);
}

static int child_stall(void)
{
    dl_iterate_phdr(find_base, NULL);
    if (!base_after_hole) {
        fprintf(stderr, "no loaded object with a hole before it\n");
        return 3;
    }
    pthread_t t;
    void *ret;
    pthread_create(&t, NULL, stalling_thread, NULL);
    pthread_join(t, &ret);
    return ret == NULL ? 0 : 4;
}

/* Part B's child: the installation probe's pattern. */
static int child_short(void)
{
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, sleeping_thread, NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    return ATOMIC_LOAD(&started) == THREADS ? 0 : 5;
}

static const char *self_exe(void)
{
    static char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = 0;
    return self;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "stall") == 0)
        return child_stall();
    if (argc > 1 && strcmp(argv[1], "short") == 0)
        return child_short();
    test_init();

    int status;
    long stalls = rerun_for_report("stall", NULL, NULL, 1, "others waited): ", &status);
    printf("stalled child with an address before a hole on its stack: exit %d\n", status);
    fprintf(stderr, "stalls in its report: %ld\n", stalls);

    char report[96];
    snprintf(report, sizeof report, "/tmp/asyncshim-report.%d.short", (int)getpid());
    pid_t pids[SHORT_CHILDREN];
    fflush(NULL);
    for (int i = 0; i < SHORT_CHILDREN; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            setenv("ASYNCSHIM_STATS", report, 1);
            execl(self_exe(), self_exe(), "short", (char *)NULL);
            _exit(127);
        }
    }
    int exited_zero = 0;
    for (int i = 0; i < SHORT_CHILDREN; i++) {
        int st;
        if (waitpid(pids[i], &st, 0) != pids[i])
            continue;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
            exited_zero++;
        else
            fprintf(stderr, "short child %d: %s %d\n", i, WIFEXITED(st) ? "exit" : "signal",
                    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    }
    unlink(report);
    printf("short-lived children that exited 0: %d of %d\n", exited_zero, SHORT_CHILDREN);
    return test_exit_status();
}
