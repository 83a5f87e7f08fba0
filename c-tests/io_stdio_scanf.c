/* io_stdio_scanf.c — the scanf family on sockets and pipes while the peer sends in pieces: a number split
 * across two sends, a conversion that needs exactly the bytes sent (%3c: no byte more may be waited for),
 * an end of file mid-format, a matching failure (the byte stays unread), %n, a peer's reset, a signal
 * without SA_RESTART during the wait (before and after a first conversion), scanf on stdin as a pipe,
 * vfscanf, an allocating conversion (%ms, glibc's own call) — every result, errno and ferror printed.
 * Last, 200 threads each wait in fscanf on its own socket; under the shim the run is made with
 * ASYNCSHIM_MAX_SPARES=0 (the program runs itself again), so a fscanf that held its worker would keep
 * main from ever sending their input: finishing shows the waits park.
 * asyncshim-test: timeout=90 */
#include "io_util.h"
#include "shim_probe.h"
#include "test_util.h"
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/socket.h>

static void die(const char *what)
{
    perror(what);
    exit(2);
}

static void send_str(int fd, const char *s)
{
    if (write(fd, s, strlen(s)) != (ssize_t)strlen(s))
        die("write");
}

struct scan_job {
    FILE *f;
    int r, a, b, err, ferr, done;
    char word[16];
};

static void *scan_two_numbers(void *arg)
{
    struct scan_job *j = arg;
    errno = 0;
    j->r = fscanf(j->f, "%d %d", &j->a, &j->b);
    j->err = errno;
    j->ferr = ferror(j->f);
    __atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void *scan_three_chars(void *arg)
{
    struct scan_job *j = arg;
    j->r = fscanf(j->f, "%3c", j->word);
    __atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void pieces(int use_pipe)
{
    const char *kind = use_pipe ? "pipe" : "socket";
    int fds[2];
    if (use_pipe) {
        if (pipe(fds))
            die("pipe");
    } else {
        unix_pair(fds, 0);
    }
    struct scan_job j = { 0 };
    FILE *first = j.f = fdopen(dup(fds[0]), "r");
    pthread_t t;
    pthread_create(&t, NULL, scan_two_numbers, &j);
    send_str(fds[1], "12");
    sleep_ms(30);
    send_str(fds[1], "3 ");
    sleep_ms(30);
    send_str(fds[1], "45\nrest");
    pthread_join(t, NULL);
    printf("%s: split number: r=%d a=%d b=%d\n", kind, j.r, j.a, j.b);
    fclose(first); /* with "rest" in its buffer */

    /* Exactly three bytes, and the peer waits for an answer: the call must not wait for a fourth. */
    memset(&j, 0, sizeof j);
    j.f = fdopen(dup(fds[0]), "r");
    pthread_create(&t, NULL, scan_three_chars, &j);
    sleep_ms(20);
    send_str(fds[1], "abc");
    pthread_join(t, NULL);
    j.word[3] = '\0';
    printf("%s: %%3c on exactly 3 bytes: r=%d word=%s\n", kind, j.r, j.word);
    fclose(j.f);

    /* End of file after the first conversion. */
    send_str(fds[1], " 77 ");
    close(fds[1]);
    memset(&j, 0, sizeof j);
    j.f = fdopen(fds[0], "r");
    scan_two_numbers(&j);
    printf("%s: eof mid-format: r=%d a=%d ferror=%d feof=%d\n", kind, j.r, j.a, j.ferr, feof(j.f));
    fclose(j.f);
}

static void matching_and_count(void)
{
    int sv[2];
    unix_pair(sv, 0);
    FILE *f = fdopen(sv[0], "r");
    send_str(sv[1], "key=41 x");
    int v = 0, n = 0;
    int r = fscanf(f, "key=%d%n y", &v, &n);
    int next = fgetc(f);
    printf("matching failure: r=%d v=%d n=%d next=%c\n", r, v, n, next);
    send_str(sv[1], "hello world\n");
    char *word = NULL;
    r = fscanf(f, "%ms", &word);
    printf("allocating %%ms: r=%d word=%s\n", r, word ? word : "(null)");
    free(word);
    fclose(f);
    close(sv[1]);
}

static int scan_v(FILE *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vfscanf(f, fmt, ap);
    va_end(ap);
    return r;
}

static void vfscanf_and_stdin(void)
{
    int sv[2];
    unix_pair(sv, 0);
    FILE *f = fdopen(sv[0], "r");
    send_str(sv[1], "3.5 word 0x1f\n");
    double d = 0;
    char w[8] = "";
    unsigned x = 0;
    int r = scan_v(f, "%lf %7s %x", &d, w, &x);
    printf("vfscanf: r=%d d=%.2f w=%s x=%u\n", r, d, w, x);
    fclose(f);
    close(sv[1]);

    int p[2];
    if (pipe(p))
        die("pipe");
    int saved = dup(0);
    dup2(p[0], 0);
    close(p[0]);
    send_str(p[1], "  99");
    close(p[1]);
    int v = 0;
    r = scanf("%d", &v);
    printf("scanf on stdin pipe: r=%d v=%d\n", r, v);
    dup2(saved, 0);
    close(saved);
    clearerr(stdin);
}

static void peer_reset(void)
{
    int c, s;
    tcp_pair(&c, &s);
    FILE *f = fdopen(s, "r");
    struct scan_job j = { 0 };
    j.f = f;
    pthread_t t;
    pthread_create(&t, NULL, scan_two_numbers, &j);
    send_str(c, "8 ");
    sleep_ms(30);
    struct linger lg = { 1, 0 };
    setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(c); /* RST */
    pthread_join(t, NULL);
    printf("peer reset: r=%d a=%d errno=%s ferror=%d\n", j.r, j.a, en(j.err), j.ferr);
    fclose(f);
}

static void on_usr1(int sig)
{
    (void)sig;
}

static void interrupted(void)
{
    set_signal_handler(SIGUSR1, on_usr1, 0); /* no SA_RESTART: the wait ends with EINTR */
    for (int partial = 0; partial < 2; partial++) {
        int sv[2];
        unix_pair(sv, 0);
        struct scan_job j = { 0 };
        j.f = fdopen(sv[0], "r");
        if (partial)
            send_str(sv[1], "5 ");
        pthread_t t;
        pthread_create(&t, NULL, scan_two_numbers, &j);
        /* Signal until the call returns: the first signal that finds it waiting ends it. */
        while (!__atomic_load_n(&j.done, __ATOMIC_ACQUIRE)) {
            sleep_ms(30);
            if (!__atomic_load_n(&j.done, __ATOMIC_ACQUIRE))
                pthread_kill(t, SIGUSR1);
        }
        pthread_join(t, NULL);
        printf("signal without SA_RESTART (%s): r=%d a=%d errno=%s ferror=%d\n", partial ? "after 1 conversion" : "nothing read",
               j.r, j.a, en(j.err), j.ferr);
        fclose(j.f);
        close(sv[1]);
    }
    signal(SIGUSR1, SIG_DFL);
}

#define WAITERS 200
static void *waiter(void *arg)
{
    struct scan_job *j = arg;
    j->r = fscanf(j->f, "%d %15s", &j->a, j->word);
    return NULL;
}

static void many_waiters(void)
{
    static struct scan_job jobs[WAITERS];
    static int peers[WAITERS];
    static pthread_t t[WAITERS];
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    for (int i = 0; i < WAITERS; i++) {
        int sv[2];
        unix_pair(sv, 0);
        jobs[i].f = fdopen(sv[0], "r");
        peers[i] = sv[1];
        if (pthread_create(&t[i], &attr, waiter, &jobs[i]))
            die("pthread_create");
    }
    sleep_ms(50);
    int threads = os_threads();
    for (int i = 0; i < WAITERS; i++) {
        char msg[32];
        snprintf(msg, sizeof msg, "%d", i);
        send_str(peers[i], msg);
    }
    sleep_ms(10);
    for (int i = 0; i < WAITERS; i++)
        send_str(peers[i], " word\n");
    int right = 0;
    for (int i = 0; i < WAITERS; i++) {
        pthread_join(t[i], NULL);
        right += jobs[i].r == 2 && jobs[i].a == i && strcmp(jobs[i].word, "word") == 0;
        fclose(jobs[i].f);
        close(peers[i]);
    }
    printf("many waiters: %d of %d fscanf calls returned their own input\n", right, WAITERS);
    fprintf(stderr, "OS threads while %d threads waited in fscanf: %d (workers %d)\n", WAITERS, threads, shim_workers());
    CHECK_FEW_OS_THREADS(threads, "many waiters: at most workers + a few OS threads");
}

int main(int argc, char **argv)
{
    (void)argc;
    /* No spare workers under the shim: a fscanf that blocked its worker would stop main on that worker. */
    if (under_shim())
        rerun_with_env(argv, "IO_STDIO_SCANF_RERUN", (const char *const[]){ "ASYNCSHIM_MAX_SPARES", "0", NULL });
    test_init();
    signal(SIGPIPE, SIG_IGN);
    pieces(0);
    pieces(1);
    matching_and_count();
    vfscanf_and_stdin();
    peer_reset();
    interrupted();
    many_waiters();
    return test_exit_status();
}
