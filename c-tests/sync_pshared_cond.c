/* A condition wait on a private condition variable with a process-shared priority-inheritance mutex that
 * a process elsewhere is blocked on (in the kernel): the wait hands the mutex over, the other process
 * takes it, releases it, and the timed wait ends with ETIMEDOUT and the mutex held again, as natively.
 *
 * asyncshim-test: timeout=30 */
#define _GNU_SOURCE
#include "sync_util.h"
#include "test_util.h"
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct shared {
    pthread_mutex_t m;
    int child_got;
};

int main(void)
{
    test_init();
    struct shared *sh = shared_area(sizeof *sh);
    init_mutex(&sh->m, PTHREAD_MUTEX_DEFAULT, 1, 0, 1);
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

    for (int round = 0; round < 3; round++) {
        sh->child_got = 0;
        int r = pthread_mutex_lock(&sh->m);
        pid_t pid = fork();
        if (pid == 0) {
            /* blocks in the kernel until the parent's wait hands the mutex over */
            if (pthread_mutex_lock(&sh->m) == 0) {
                __atomic_store_n(&sh->child_got, 1, __ATOMIC_SEQ_CST);
                usleep(50 * 1000);
                pthread_mutex_unlock(&sh->m);
            }
            _exit(0);
        }
        usleep(100 * 1000); /* the child is now blocked on the mutex */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 300 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        int w = pthread_cond_timedwait(&cv, &sh->m, &ts);
        int got = __atomic_load_n(&sh->child_got, __ATOMIC_SEQ_CST);
        int u = pthread_mutex_unlock(&sh->m);
        int st = 0;
        waitpid(pid, &st, 0);
        printf("round %d: lock %d, timedwait %s, the other process had the mutex meanwhile: %s, unlock %d, "
               "child exit %d\n",
               round, r, w == ETIMEDOUT ? "ETIMEDOUT" : w == 0 ? "0" : "other", got ? "yes" : "no", u,
               WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    }
    return test_exit_status();
}
