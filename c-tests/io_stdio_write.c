/* io_stdio_write.c — stdio output on sockets, pipes and stdout as a pipe: fprintf, printf, fputs, puts,
 * fwrite, fputc/putc/putchar (locked and _unlocked), fflush, fclose, dprintf, in every buffering mode
 * (full, line, none, a buffer under 128 bytes), with the exact native results: return values, what the
 * reader sees after each call (so when glibc writes and how much), EPIPE with SIGPIPE ignored or handled,
 * fclose/fflush failures, a FILE opened for both reading and writing on a socket with unread input, and
 * formatted output longer than any buffer.
 *
 * Last, 1,000 threads each write 12 KiB of lines in one of those ways to its own socket (send buffer ~4 KiB)
 * whose reader thread reads slowly. Under the shim the run is made with ASYNCSHIM_MAX_SPARES=0 (the program
 * runs itself again): if a stdio write held its worker OS thread, the readers on that worker could never
 * run and the test would hang, so finishing shows the writes park. Every byte is checked.
 * asyncshim-test: timeout=150 */
#include "shim_probe.h"
#include "test_util.h"
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>

static void die(const char *what)
{
    perror(what);
    exit(2);
}

/* Everything the peer can read right now (non-blocking), as a printable string. */
static const char *drain(int fd)
{
    static char out[8192];
    size_t len = 0;
    for (;;) {
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0 && errno == ENOTSOCK) {
            int fl = fcntl(fd, F_GETFL);
            fcntl(fd, F_SETFL, fl | O_NONBLOCK);
            n = read(fd, buf, sizeof buf);
            fcntl(fd, F_SETFL, fl);
        }
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n && len + 4 < sizeof out; i++)
            out[len++] = buf[i] == '\n' ? '|' : buf[i];
    }
    out[len] = '\0';
    return out;
}

static const char *ename(int e)
{
    return e == EPIPE ? "EPIPE" : e == ESPIPE ? "ESPIPE" : errname(e);
}

static void sockpair(int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
        die("socketpair");
}

/* --- Part B: semantics, one call at a time ------------------------------------------------------- */

static void buffering_modes(void)
{
    static const struct { const char *name; int mode; size_t size; } modes[] = {
        { "full", _IOFBF, 0 }, { "full64", _IOFBF, 64 }, { "line", _IOLBF, 0 }, { "none", _IONBF, 0 },
    };
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        int sv[2];
        sockpair(sv);
        FILE *f = fdopen(sv[0], "w");
        if (!f)
            die("fdopen");
        static char small_buffer[64]; /* glibc keeps its own default buffer when given NULL */
        setvbuf(f, modes[m].size ? small_buffer : NULL, modes[m].mode, modes[m].size);
        const char *n = modes[m].name;
        /* A buffer under 128 bytes makes glibc write every piece that does not fit straight away, and
         * vfprintf puts a format in pieces (split differently by each glibc release): there, only the
         * unformatted calls show the same writes at the same points. */
        int tiny = modes[m].size != 0;
        int r = tiny ? fputs("a1\nb", f) : fprintf(f, "a%d\nb", 1);
        printf("%s fprintf=%d sees [%s]\n", n, r, drain(sv[1]));
        r = fputs("cd", f);
        printf("%s fputs=%d sees [%s]\n", n, r, drain(sv[1]));
        r = fputc('\n', f);
        printf("%s fputc=%d sees [%s]\n", n, r, drain(sv[1]));
        char big[300];
        for (size_t i = 0; i < sizeof big; i++)
            big[i] = (char)('a' + i % 26);
        big[99] = '\n';
        size_t w = fwrite(big, 3, 100, f);
        printf("%s fwrite=%zu sees %zu bytes\n", n, w, strlen(drain(sv[1])));
        r = putc_unlocked('x', f);
        int r2 = fputc_unlocked('\n', f);
        printf("%s putc_unlocked=%d,%d sees [%s]\n", n, r, r2, drain(sv[1]));
        w = fwrite_unlocked("yz", 1, 2, f);
        r = fputs_unlocked("!", f);
        printf("%s fwrite_unlocked=%zu fputs_unlocked=%d sees [%s]\n", n, w, r, drain(sv[1]));
        r = fflush(f);
        printf("%s fflush=%d sees [%s]\n", n, r, drain(sv[1]));
        char longer[5000];
        memset(longer, 'L', sizeof longer - 1);
        longer[sizeof longer - 1] = '\0';
        int count = 0;
        if (tiny) {
            char text[sizeof longer + 8];
            snprintf(text, sizeof text, "<%s>%n%d", longer, &count, 42);
            r = fputs(text, f) == 1 ? (int)strlen(text) : -1;
        } else {
            r = fprintf(f, "<%s>%n%d", longer, &count, 42);
        }
        printf("%s long fprintf=%d %%n=%d sees %zu bytes\n", n, r, count, strlen(drain(sv[1])));
        r = fclose(f);
        printf("%s fclose=%d sees %zu bytes\n", n, r, strlen(drain(sv[1])));
        close(sv[1]);
    }
}

static volatile sig_atomic_t sigpipes;
static void on_sigpipe(int sig)
{
    (void)sig;
    sigpipes++;
}

static void broken_pipe(void)
{
    for (int handled = 0; handled < 2; handled++) {
        set_signal_handler(SIGPIPE, handled ? on_sigpipe : SIG_IGN, 0);
        sigpipes = 0;
        const char *how = handled ? "handled" : "ignored";
        int sv[2];
        sockpair(sv);
        FILE *f = fdopen(sv[0], "w");
        close(sv[1]);
        int r = fprintf(f, "hello %s\n", how);
        printf("epipe %s: fprintf=%d ferror=%d\n", how, r, ferror(f));
        errno = 0;
        r = fflush(f);
        printf("epipe %s: fflush=%d errno=%s ferror=%d\n", how, r, ename(errno), ferror(f));
        clearerr(f);
        char big[10000];
        memset(big, 'x', sizeof big);
        errno = 0;
        size_t w = fwrite(big, 1, sizeof big, f);
        printf("epipe %s: fwrite=%zu errno=%s ferror=%d\n", how, w, ename(errno), ferror(f));
        clearerr(f);
        errno = 0;
        r = fputs("line\n", f);
        int p = printf("%s", "");
        printf("epipe %s: fputs=%d (empty printf=%d)\n", how, r, p);
        errno = 0;
        r = fclose(f);
        printf("epipe %s: fclose=%d errno=%s sigpipes=%d\n", how, r, ename(errno), (int)sigpipes);
        int q[2];
        if (pipe(q))
            die("pipe");
        close(q[0]);
        errno = 0;
        r = dprintf(q[1], "to nobody %d\n", 7);
        printf("epipe %s: dprintf=%d errno=%s sigpipes=%d\n", how, r, ename(errno), (int)sigpipes);
        close(q[1]);
    }
    signal(SIGPIPE, SIG_DFL);
}

/* A FILE for reading and writing on one socket: glibc seeks back over unread input before writing,
 * which a socket refuses. */
static void read_then_write(void)
{
    int sv[2];
    sockpair(sv);
    if (write(sv[1], "hello\n", 6) != 6)
        die("write");
    FILE *f = fdopen(sv[0], "r+");
    int c = fgetc(f);
    int r = fputs("reply\n", f);
    errno = 0;
    int fl = fflush(f);
    int e = errno;
    printf("r+ socket: fgetc=%c fputs=%d fflush=%d errno=%s ferror=%d sees [%s]\n", c, r, fl, ename(e), ferror(f),
           drain(sv[1]));
    fclose(f);
    close(sv[1]);
}

struct collector {
    int fd;
    char data[65536];
    size_t len;
};

static void *collect(void *arg)
{
    struct collector *c = arg;
    ssize_t n;
    while ((n = read(c->fd, c->data + c->len, sizeof c->data - 1 - c->len)) > 0)
        c->len += (size_t)n;
    c->data[c->len] = '\0';
    return NULL;
}

/* stdout itself on a pipe (as under `prog | less`): printf, puts, putchar and their buffering. */
static void stdout_on_pipe(void)
{
    fflush(stdout);
    int saved = dup(1);
    int p[2];
    if (saved < 0 || pipe(p))
        die("pipe");
    static struct collector c;
    c.fd = p[0];
    pthread_t t;
    pthread_create(&t, NULL, collect, &c);
    dup2(p[1], 1);
    close(p[1]);
    int results[6];
    setvbuf(stdout, NULL, _IOFBF, 0);
    results[0] = printf("one %d\n", 1);
    results[1] = puts("two");
    results[2] = putchar('3');
    results[3] = putchar_unlocked('\n');
    results[4] = printf("%s", "");
    char big[9000];
    memset(big, 'b', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    results[5] = printf("%s\n", big);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    pthread_join(t, NULL);
    close(p[0]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("stdout pipe: printf=%d puts=%d putchar=%d,%d empty=%d big=%d got %zu bytes, starts [%.12s]\n",
           results[0], results[1], results[2], results[3], results[4], results[5], c.len, c.data);
}

/* --- Part A: many slow readers ------------------------------------------------------------------- */

#ifndef STREAMS
#define STREAMS 1000
#endif
#define LINES 256 /* of 48 bytes: 12 KiB per stream */
#define LINE_LEN 48

struct stream {
    char small_buffer[100];
    int wfd, rfd, way;
    unsigned long long sum;
    size_t got;
    int ok;
};
static struct stream streams[STREAMS];

static void make_line(char *line, int s, int i)
{
    /* 47 characters and a newline, different per stream and line. */
    snprintf(line, LINE_LEN + 1, "stream %04d line %04d %-25.25s\n", s, i, "abcdefghijklmnopqrstuvwxy" + (s + i) % 25);
}

static unsigned long long mix(unsigned long long h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h;
}

static void *writer(void *arg)
{
    struct stream *st = arg;
    int s = (int)(st - streams);
    char line[LINE_LEN + 1];
    FILE *f = NULL;
    if (st->way != 5) {
        f = fdopen(st->wfd, "w");
        if (!f)
            die("fdopen");
        if (st->way == 1)
            setvbuf(f, NULL, _IOLBF, 0);
        else if (st->way == 2)
            setvbuf(f, st->small_buffer, _IOFBF, sizeof st->small_buffer); /* under 128 bytes */
        else if (st->way == 3)
            setvbuf(f, NULL, _IONBF, 0);
    }
    for (int i = 0; i < LINES; i++) {
        make_line(line, s, i);
        switch (st->way) {
        case 0: fprintf(f, "stream %04d line %04d %-25.25s\n", s, i, "abcdefghijklmnopqrstuvwxy" + (s + i) % 25); break;
        case 1: for (int k = 0; k < LINE_LEN; k++) putc(line[k], f); break; /* written at each newline */
        case 2: fwrite(line, 1, LINE_LEN, f); break;
        case 3: fputs(line, f); break; /* unbuffered: one write per call */
        case 4:
            flockfile(f);
            for (int k = 0; k < LINE_LEN; k++)
                putc_unlocked(line[k], f);
            funlockfile(f);
            break;
        case 5: dprintf(st->wfd, "%s", line); break;
        }
    }
    if (f)
        fclose(f);
    else
        close(st->wfd);
    return NULL;
}

static void *reader(void *arg)
{
    struct stream *st = arg;
    int s = (int)(st - streams);
    char buf[1024];
    ssize_t n;
    unsigned long long h = 1469598103934665603ULL;
    int reads = 0;
    while ((n = read(st->rfd, buf, sizeof buf)) > 0) {
        h = mix(h, buf, (size_t)n);
        st->got += (size_t)n;
        if (++reads % 8 == 0)
            sleep_ms(1); /* a slow peer: the writer's socket fills up */
    }
    close(st->rfd);
    unsigned long long want = 1469598103934665603ULL;
    char line[LINE_LEN + 1];
    for (int i = 0; i < LINES; i++) {
        make_line(line, s, i);
        want = mix(want, line, LINE_LEN);
    }
    st->ok = st->got == (size_t)LINES * LINE_LEN && h == want;
    return NULL;
}

static void many_slow_readers(void)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    static pthread_t w[STREAMS], r[STREAMS];
    for (int s = 0; s < STREAMS; s++) {
        int sv[2];
        sockpair(sv);
        int small = 4096;
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        streams[s].wfd = sv[0];
        streams[s].rfd = sv[1];
#ifdef ONLY_WAY
        streams[s].way = ONLY_WAY;
#else
        streams[s].way = s % 6;
#endif
    }
    int peak = 0;
    for (int s = 0; s < STREAMS; s++) {
        if (pthread_create(&r[s], &attr, reader, &streams[s]) || pthread_create(&w[s], &attr, writer, &streams[s]))
            die("pthread_create");
    }
    int t = os_threads();
    if (t > peak)
        peak = t;
    for (int s = 0; s < STREAMS; s++) {
        pthread_join(w[s], NULL);
        pthread_join(r[s], NULL);
    }
    int ok = 0;
    size_t bytes = 0;
    for (int s = 0; s < STREAMS; s++) {
        ok += streams[s].ok;
        bytes += streams[s].got;
    }
    printf("slow readers: %d of %d streams complete and intact, %zu bytes\n", ok, STREAMS, bytes);
    fprintf(stderr, "OS threads after start: %d (workers %d)\n", peak, shim_workers());
    CHECK_FEW_OS_THREADS(peak, "slow readers: at most workers + a few OS threads");
}

int main(int argc, char **argv)
{
    (void)argc;
    /* No spare workers under the shim: a stdio write that blocked its worker would stop that worker's readers. */
    if (under_shim())
        rerun_with_env(argv, "IO_STDIO_WRITE_RERUN", (const char *const[]){ "ASYNCSHIM_MAX_SPARES", "0", NULL });
    test_init();
    buffering_modes();
    broken_pipe();
    read_then_write();
    stdout_on_pipe();
    many_slow_readers();
    return test_exit_status();
}
