/* Installation probe for scripts/test-install.sh and scripts/test-package.sh (not a differential test:
 * the runners do not build subdirectories). Says whether this process runs under asyncshim, with which
 * library file, and whether its threads are coroutines:
 *
 *   library: PATH             the file asyncshim_is_active comes from (dladdr), or "none"
 *   active in main: 0|1       asyncshim_is_active() in main
 *   active in threads: N/T    how many of T threads saw asyncshim_is_active() return 1
 *   os threads: N             OS threads of the process (/proc/self/status) while the T threads live
 *
 * The scripts judge the values (natively: none, 0, 0/T, T+1). Exit status 0 unless something failed.
 * Build: gcc -O2 -pthread active_probe.c -o active_probe -ldl   (-ldl for glibc before 2.34)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define THREADS 50

static int (*is_active)(void);
static atomic_int started, active_threads, release_threads;

static int active(void) { return is_active != NULL && is_active() == 1; }

static void *thread_main(void *arg) {
    (void)arg;
    if (active()) atomic_fetch_add(&active_threads, 1);
    atomic_fetch_add(&started, 1);
    while (!atomic_load(&release_threads)) usleep(1000);  /* a sleep parks a coroutine */
    return NULL;
}

static long os_threads(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long n = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "Threads:", 8) == 0) n = strtol(line + 8, NULL, 10);
    if (f) fclose(f);
    return n;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    is_active = (int (*)(void))dlsym(RTLD_DEFAULT, "asyncshim_is_active");
    Dl_info info;
    const char *library = "none";
    if (is_active != NULL && dladdr((void *)is_active, &info) && info.dli_fname != NULL) library = info.dli_fname;
    printf("library: %s\n", library);
    printf("active in main: %d\n", active());

    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) {
        int rc = pthread_create(&threads[i], NULL, thread_main, NULL);
        if (rc != 0) {
            fprintf(stderr, "pthread_create: %s\n", strerror(rc));
            return 1;
        }
    }
    while (atomic_load(&started) < THREADS) usleep(1000);
    long os = os_threads();
    atomic_store(&release_threads, 1);
    for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    printf("active in threads: %d/%d\n", atomic_load(&active_threads), THREADS);
    printf("os threads: %ld\n", os);
    return 0;
}
