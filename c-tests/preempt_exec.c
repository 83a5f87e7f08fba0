/* preempt_exec.c — exec while threads compute (issue 14): a preemption signal pending when the new
 * program starts would kill it (SIGCANCEL's action is reset to the default, termination), so the shim's
 * exec hooks hold preemption off first. Each generation starts two spinners, runs 20 fork+exec children
 * of /bin/true, and then, while the spinners still spin, a thread execs the program itself (execl and
 * execv alternately) for the next generation; the last one reports. ASYNCSHIM_WORKERS=1 and
 * ASYNCSHIM_MAX_SPARES=0 so that the spinners are preempted, not moved to spare workers.
 * asyncshim-test: timeout=90 */
#include "shim_probe.h"
#include "test_util.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#define GENERATIONS 6

static atomic_int stop;
static int generation;
static char self[4096];

static void *spinner(void *arg)
{
    unsigned long x = (unsigned long)arg;
    while (!atomic_load(&stop))
        for (int i = 0; i < 100000; i++)
            x = x * 6364136223846793005UL + 1442695040888963407UL;
    return (void *)(x | 1);
}

static void *execer(void *arg)
{
    (void)arg;
    sleep_ms(30);
    char next[16];
    snprintf(next, sizeof next, "%d", generation + 1);
    if (generation % 2)
        execl(self, self, next, (char *)NULL);
    else {
        char *args[] = { self, next, NULL };
        execv(self, args);
    }
    perror("exec");
    exit(1);
}

int main(int argc, char **argv)
{
    rerun_with_env(argv, "PREEMPT_EXEC_RERUN", (const char *const[]){ "ASYNCSHIM_WORKERS", "1", "ASYNCSHIM_MAX_SPARES", "0", NULL });
    test_init();
    generation = argc > 1 ? atoi(argv[1]) : 0;
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = 0;
    pthread_t s1, s2;
    pthread_create(&s1, NULL, spinner, (void *)1);
    pthread_create(&s2, NULL, spinner, (void *)2);
    int children_ok = 1;
    for (int i = 0; i < 20; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            execl("/bin/true", "true", (char *)NULL);
            _exit(127);
        }
        int st = -1;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            children_ok = 0;
    }
    if (!children_ok)
        printf("generation %d: a fork+exec child failed\n", generation);
    if (generation < GENERATIONS) {
        pthread_t e;
        pthread_create(&e, NULL, execer, NULL);
        pthread_join(e, NULL);
        return 1;
    }
    atomic_store(&stop, 1);
    void *r1, *r2;
    pthread_join(s1, &r1);
    pthread_join(s2, &r2);
    CHECK(r1 && r2, "spinners of the last generation finished");
    CHECK(children_ok, "fork+exec children of the last generation exited 0");
    printf("reached generation %d\n", generation);
    return test_exit_status();
}
