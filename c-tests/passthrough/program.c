/* The program of scripts/test-passthrough.sh: what it prints must be the same natively and under a shim
 * that passes through. It makes threads (so a running shim would make coroutines), reports whether its
 * threads are coroutines, prints its environment (the shim must add no variable), and starts a shell whose
 * children start the program again (the pass-through notice must come once for the whole tree). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void *work(void *arg)
{
    long n = (long)arg, sum = 0;
    for (long i = 0; i <= n; i++)
        sum += i;
    int (*active)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "asyncshim_is_active");
    /* Under the shim in pass-through, or natively, no thread is a coroutine. */
    if (active && active())
        sum = -1;
    return (void *)sum;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, work, (void *)(1000 * (i + 1)));
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        printf("thread %d: %ld\n", i, (long)r);
    }
    /* The environment, sorted, without the variables the test (and its shell) set. */
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = malloc(n * sizeof *env);
    memcpy(env, environ, n * sizeof *env);
    qsort(env, n, sizeof *env, by_name);
    for (size_t i = 0; i < n; i++)
        if (strncmp(env[i], "LD_PRELOAD=", 11) && strncmp(env[i], "ASYNCSHIM_TEST_GLIBC=", 21) && strncmp(env[i], "_=", 2))
            printf("env %s\n", env[i]);
    free(env);
    fflush(stdout);
    if (argc > 1 && strcmp(argv[1], "tree") == 0) {
        /* A shell starting the program twice more, one of them through another shell. */
        char cmd[4096];
        snprintf(cmd, sizeof cmd, "'%s' leaf | head -1; /bin/sh -c \"'%s' leaf | tail -1\"", argv[0], argv[0]);
        int st = system(cmd);
        printf("tree: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    }
    return 3;
}
