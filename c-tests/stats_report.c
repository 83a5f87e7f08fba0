/* stats_report.c — ASYNCSHIM_STATS (issue 7): under the shim the program re-executes itself with
 * ASYNCSHIM_STATS=stderr and ASYNCSHIM_STATS_SIGNAL=USR2, blocks a thread in fscanf("%ms") on an fdopen'd
 * socket (glibc's internal read; scanf with an allocating conversion is left to glibc, so it stalls its
 * worker), asks for a report with SIGUSR2 (the program's own SIGUSR2 handler must still run) and exits; the report must name the stall's place (stats_report.shim-stderr). Natively the same
 * program runs without the report; stdout is the same either way.
 * asyncshim-test: timeout=30 */
#include "shim_probe.h"
#include "test_util.h"
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>

static volatile sig_atomic_t handled;

static void on_usr2(int sig)
{
    (void)sig;
    handled++;
}

static void *stdio_reader(void *arg)
{
    FILE *in = arg;
    char *line = NULL;
    int r = fscanf(in, "%ms", &line);
    int ok = r == 1 && strcmp(line, "hello") == 0;
    free(line);
    return ok ? (void *)1 : NULL;
}

static void *sleeper(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20; i++)
        sleep_ms(5);
    return (void *)1;
}

int main(int argc, char **argv)
{
    if (under_shim() && !(argc > 1 && strcmp(argv[1], "--inside") == 0)) {
        setenv("ASYNCSHIM_STATS", "stderr", 1);
        setenv("ASYNCSHIM_STATS_SIGNAL", "USR2", 1);
        char self[4096];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0)
            return 2;
        self[n] = 0;
        execl(self, argv[0], "--inside", (char *)NULL);
        perror("exec");
        return 2;
    }
    test_init();
    signal(SIGUSR2, on_usr2);
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
    FILE *in = fdopen(sv[0], "r");
    pthread_t r, s;
    pthread_create(&r, NULL, stdio_reader, in);
    pthread_create(&s, NULL, sleeper, NULL);
    void *slept;
    pthread_join(s, &slept);
    CHECK(slept != NULL, "a sleeping thread ran while another sat in fscanf");
    raise(SIGUSR2);
    sleep_ms(100); /* the report is written by the shim's monitor thread */
    CHECK(handled == 1, "the program's own SIGUSR2 handler ran once");
    CHECK(write(sv[1], "hello\n", 6) == 6, "line sent");
    void *got;
    pthread_join(r, &got);
    CHECK(got != NULL, "fscanf returned the word");
    fclose(in);
    close(sv[1]);
    return test_exit_status();
}
