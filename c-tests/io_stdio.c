/* io_stdio.c — stdio reads on fdopen'd sockets (socketpair, TCP on 127.0.0.1) and pipes: fgets, getline,
 * getdelim, fread, getc, getc_unlocked, getchar while the peer sends in small pieces with pauses; long lines
 * over the FILE buffer; EOF mid-line; a peer's reset (ECONNRESET); a signal during the wait, with and without
 * SA_RESTART; a FILE on a fd the program made O_NONBLOCK. Every result is printed, so the shim's must equal
 * the native ones byte for byte. Last, 1,000 threads each wait in fgets on its own socket while a ticker
 * ticks: under the shim they must sit on at most workers + a few OS threads; then each gets its line and
 * replies.
 * asyncshim-test: timeout=120 */
#include "shim_probe.h"
#include "test_util.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

enum kind { SOCKPAIR, PIPE, TCP, FIFO, KINDS };
static const char *kind_name[KINDS] = { "socketpair", "pipe", "tcp", "fifo" };

static void die(const char *what)
{
    perror(what);
    exit(2);
}

/* A connected pair: *r is what the FILE reads, *w the peer's end. */
static void make_pair(enum kind k, int *r, int *w)
{
    int sv[2];
    if (k == SOCKPAIR) {
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
            die("socketpair");
        *r = sv[0], *w = sv[1];
    } else if (k == PIPE) {
        if (pipe(sv) != 0)
            die("pipe");
        *r = sv[0], *w = sv[1];
    } else if (k == FIFO) {
        char path[64];
        snprintf(path, sizeof path, "/tmp/io_stdio_fifo.%d", (int)getpid());
        unlink(path);
        if (mkfifo(path, 0600) != 0)
            die("mkfifo");
        *r = open(path, O_RDONLY | O_NONBLOCK);
        *w = open(path, O_WRONLY);
        if (*r < 0 || *w < 0)
            die("open fifo");
        fcntl(*r, F_SETFL, 0);
        unlink(path);
    } else {
        int l = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = 0 };
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof sa;
        if (bind(l, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(l, 1) != 0 ||
            getsockname(l, (struct sockaddr *)&sa, &len) != 0)
            die("listen");
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(c, (struct sockaddr *)&sa, sizeof sa) != 0)
            die("connect");
        int a = accept(l, NULL, NULL);
        if (a < 0)
            die("accept");
        close(l);
        *r = a, *w = c;
    }
}

/* The peer: sends `data` in pieces of `chunk` bytes with `gap_ms` pauses, signalling `target` with SIGUSR1
 * (100 ms after the last piece, 100 ms before the next) before it sends byte `signal_at` (-1: never), then
 * closes its end (then=1), resets it (then=2, SO_LINGER 0) or leaves it open (then=0). */
struct feed {
    int fd;
    const char *data;
    size_t len, chunk;
    long signal_at;
    int gap_ms, then;
    pthread_t target, thread;
};

static void *feeder(void *arg)
{
    struct feed *f = arg;
    size_t off = 0;
    sleep_ms(f->gap_ms);
    while (off < f->len) {
        if ((long)off == f->signal_at) {
            sleep_ms(100);
            pthread_kill(f->target, SIGUSR1);
            sleep_ms(100);
        }
        size_t n = f->len - off < f->chunk ? f->len - off : f->chunk;
        if (write(f->fd, f->data + off, n) != (ssize_t)n)
            die("feed write");
        off += n;
        sleep_ms(f->gap_ms);
    }
    if (f->then == 2) {
        struct linger lg = { 1, 0 };
        setsockopt(f->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    if (f->then)
        close(f->fd);
    return NULL;
}

static void feed_signal(struct feed *f, int fd, const char *data, size_t len, size_t chunk, int gap_ms, int then,
                        long signal_at)
{
    memset(f, 0, sizeof *f);
    f->fd = fd, f->data = data, f->len = len, f->chunk = chunk, f->gap_ms = gap_ms, f->then = then;
    f->signal_at = signal_at;
    f->target = pthread_self();
    pthread_create(&f->thread, NULL, feeder, f);
}

static void feed_start(struct feed *f, int fd, const char *data, size_t len, size_t chunk, int gap_ms, int then)
{
    feed_signal(f, fd, data, len, chunk, gap_ms, then, -1);
}

static void feed_end(struct feed *f)
{
    pthread_join(f->thread, NULL);
}

static FILE *open_read(enum kind k, int *w)
{
    int r;
    make_pair(k, &r, w);
    FILE *in = fdopen(r, "r");
    if (!in)
        die("fdopen");
    return in;
}

/* Prints a read's outcome: the bytes (escaped, shortened) or NULL/EOF, errno name, eof/error flags. */
static void show(const char *what, enum kind k, const char *got, long n, int err, FILE *f)
{
    printf("%s [%s]: ", what, kind_name[k]);
    if (!got)
        printf("NULL");
    else {
        putchar('"');
        for (long i = 0; i < n && i < 40; i++)
            if (got[i] == '\n')
                printf("\\n");
            else
                putchar(got[i]);
        if (n > 40)
            printf("...(%ld bytes)", n);
        putchar('"');
    }
    printf(" errno=%s eof=%d error=%d\n", err ? errname(err) : "-", feof(f) != 0, ferror(f) != 0);
}

static void lines_in_pieces(enum kind k, int mode)
{
    int w;
    FILE *in = open_read(k, &w);
    if (mode != _IOFBF)
        setvbuf(in, NULL, mode, 0);
    static const char text[] = "hello, world\nsecond line\npartial";
    struct feed fd;
    feed_start(&fd, w, text, sizeof text - 1, 1, 2, 1);
    char line[64];
    const char *what = mode == _IOFBF ? "fgets byte by byte" : mode == _IOLBF ? "fgets byte by byte, line-buffered FILE"
                                                                               : "fgets byte by byte, unbuffered FILE";
    for (int i = 0; i < 4; i++) {
        errno = 0;
        char *r = fgets(line, sizeof line, in);
        show(what, k, r, r ? (long)strlen(r) : 0, r ? 0 : errno, in);
    }
    feed_end(&fd);
    fclose(in);
}

/* One FILE opened "r+" on a socket: a request written and flushed, then the answer read, in turns. */
static void *upper_echo(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[256];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] >= 'a' && buf[i] <= 'z')
                buf[i] -= 32;
        sleep_ms(3);
        for (ssize_t i = 0; i < n; i++) /* byte by byte */
            if (write(fd, buf + i, 1) != 1)
                return NULL;
    }
    close(fd);
    return NULL;
}

static void read_write_file(enum kind k)
{
    int r, w;
    make_pair(k, &r, &w);
    pthread_t th;
    pthread_create(&th, NULL, upper_echo, (void *)(intptr_t)w);
    FILE *f = fdopen(r, "r+");
    char line[64];
    int good = 0;
    for (int i = 0; i < 5; i++) {
        char want[64];
        fprintf(f, "request %d\n", i);
        fflush(f);
        snprintf(want, sizeof want, "REQUEST %d\n", i);
        good += fgets(line, sizeof line, f) && strcmp(line, want) == 0;
    }
    shutdown(r, SHUT_WR);
    char *end = fgets(line, sizeof line, f);
    printf("r+ FILE [%s]: %d of 5 answers right, then %s eof=%d\n", kind_name[k], good, end ? "a line" : "NULL",
           feof(f) != 0);
    pthread_join(th, NULL);
    fclose(f);
}

static void long_lines(enum kind k)
{
    int w;
    FILE *in = open_read(k, &w);
    size_t big = 10000;
    char *text = malloc(2 * big + 16);
    for (size_t i = 0; i < big; i++)
        text[i] = 'a' + i % 26;
    text[big] = '\n';
    for (size_t i = 0; i < big; i++)
        text[big + 1 + i] = 'A' + i % 26;
    strcpy(text + 2 * big + 1, "\ntail\n");
    struct feed fd;
    feed_start(&fd, w, text, strlen(text), 999, 3, 1);
    char *line = malloc(20000);
    char *r = fgets(line, 20000, in);
    CHECK(r && strlen(r) == big + 1 && memcmp(r, text, big + 1) == 0, "fgets takes a 10,000-byte line sent in pieces");
    show("fgets long line", k, r, r ? (long)strlen(r) : 0, 0, in);
    for (int i = 0; i < 4; i++) {
        r = fgets(line, 4096, in);
        show("fgets 4096 of a long line", k, r, r ? (long)strlen(r) : 0, r ? 0 : errno, in);
    }
    feed_end(&fd);
    free(line);
    free(text);
    fclose(in);
}

static void fread_sizes(enum kind k)
{
    int w;
    FILE *in = open_read(k, &w);
    size_t len = 6234;
    char *text = malloc(len);
    for (size_t i = 0; i < len; i++)
        text[i] = (char)(i * 7 + 3);
    struct feed fd;
    feed_start(&fd, w, text, len, 700, 3, 1);
    char *buf = malloc(len);
    size_t n1 = fread(buf, 100, 50, in);
    int ok1 = n1 == 50 && memcmp(buf, text, 5000) == 0;
    size_t n2 = fread(buf, 1000, 2, in);
    int ok2 = n2 == 1 && memcmp(buf, text + 5000, 1000) == 0;
    int ok2b = memcmp(buf + 1000, text + 6000, 234) == 0;
    size_t n3 = fread(buf, 1, 100, in);
    int ok3 = n3 == 0 && ok2b;
    printf("fread [%s]: %zu items of 100, %zu of 1000, %zu of 1; eof=%d error=%d\n", kind_name[k], n1, n2, n3,
           feof(in) != 0, ferror(in) != 0);
    CHECK(ok1 && ok2 && ok3, "fread returns the exact bytes sent in pieces");
    feed_end(&fd);
    free(buf);
    free(text);
    fclose(in);
}

static void getline_getdelim(enum kind k)
{
    int w;
    FILE *in = open_read(k, &w);
    static const char text[] = "alpha\nbeta;gamma;delta";
    struct feed fd;
    feed_start(&fd, w, text, sizeof text - 1, 1, 2, 1);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, in);
    show("getline", k, n >= 0 ? line : NULL, n, 0, in);
    n = getdelim(&line, &cap, ';', in);
    show("getdelim ;", k, n >= 0 ? line : NULL, n, 0, in);
    n = getdelim(&line, &cap, ';', in);
    show("getdelim ;", k, n >= 0 ? line : NULL, n, 0, in);
    n = getline(&line, &cap, in);
    show("getline at EOF mid-line", k, n >= 0 ? line : NULL, n, 0, in);
    n = getline(&line, &cap, in);
    show("getline at EOF", k, n >= 0 ? line : NULL, n, 0, in);
    printf("getline capacity [%s]: %zu\n", kind_name[k], cap);
    free(line);
    feed_end(&fd);
    fclose(in);
}

static void chars(enum kind k)
{
    int w;
    FILE *in = open_read(k, &w);
    static const char text[] = "abc\nxyz\n";
    struct feed fd;
    feed_start(&fd, w, text, sizeof text - 1, 1, 3, 1);
    char got[16];
    int n = 0, c;
    while ((c = getc(in)) != '\n' && c != EOF)
        got[n++] = (char)c;
    flockfile(in);
    while ((c = getc_unlocked(in)) != '\n' && c != EOF)
        got[n++] = (char)c;
    funlockfile(in);
    c = fgetc(in);
    show("getc, getc_unlocked", k, got, n, 0, in);
    printf("fgetc at EOF [%s]: %d eof=%d\n", kind_name[k], c, feof(in) != 0);
    feed_end(&fd);
    fclose(in);
}

/* The other entry points a program reaches: the _unlocked and fortified forms, getc_unlocked as a function. */
extern char *__fgets_chk(char *buf, size_t size, int n, FILE *f);
extern char *__fgets_unlocked_chk(char *buf, size_t size, int n, FILE *f);
extern size_t __fread_chk(void *p, size_t plen, size_t size, size_t n, FILE *f);
extern size_t __fread_unlocked_chk(void *p, size_t plen, size_t size, size_t n, FILE *f);
extern int _IO_getc(FILE *f);

static void other_forms(enum kind k)
{
    int w;
    FILE *in = open_read(k, &w);
    static const char text[] = "one\ntwo\nthree\nfour\n0123456789ABCDEFGHIJxyzw";
    struct feed fd;
    feed_start(&fd, w, text, sizeof text - 1, 1, 2, 1);
    char line[64], got[64];
    char *r = fgets_unlocked(line, sizeof line, in);
    show("fgets_unlocked", k, r, r ? (long)strlen(r) : 0, 0, in);
    r = __fgets_chk(line, sizeof line, 64, in);
    show("__fgets_chk", k, r, r ? (long)strlen(r) : 0, 0, in);
    r = __fgets_unlocked_chk(line, sizeof line, 64, in);
    show("__fgets_unlocked_chk", k, r, r ? (long)strlen(r) : 0, 0, in);
    size_t n = fread_unlocked(got, 1, 4, in);
    show("fread_unlocked", k, got, (long)n, 0, in);
    n = __fread_chk(got, sizeof got, 2, 5, in);
    show("__fread_chk", k, got, (long)n * 2, 0, in);
    n = __fread_unlocked_chk(got, sizeof got, 1, 10, in);
    show("__fread_unlocked_chk", k, got, (long)n, 0, in);
    int c[4];
    c[0] = (getc_unlocked)(in);
    c[1] = fgetc_unlocked(in);
    c[2] = _IO_getc(in);
    c[3] = (getc_unlocked)(in);
    printf("getc_unlocked, fgetc_unlocked, _IO_getc [%s]: %c%c%c then %d eof=%d\n", kind_name[k], c[0], c[1], c[2],
           c[3], feof(in) != 0);
    feed_end(&fd);
    fclose(in);
}

/* Two threads read lines from one FILE at once: every line goes whole to one of them. */
struct sharer {
    FILE *in;
    int lines, intact;
};

static void *share_reader(void *arg)
{
    struct sharer *sh = arg;
    char line[64];
    while (fgets(line, sizeof line, sh->in)) {
        int v;
        char tail;
        sh->lines++;
        sh->intact += sscanf(line, "line %d%c", &v, &tail) == 2 && tail == '\n';
    }
    return NULL;
}

static void shared_file(enum kind k)
{
    int w;
    FILE *in = open_read(k, &w);
    static char text[2000];
    size_t len = 0;
    for (int i = 0; i < 100; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "line %d\n", i);
    struct feed fd;
    feed_start(&fd, w, text, len, 3, 1, 1);
    struct sharer a = { in, 0, 0 }, b = { in, 0, 0 };
    pthread_t ta, tb;
    pthread_create(&ta, NULL, share_reader, &a);
    pthread_create(&tb, NULL, share_reader, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    printf("two threads on one FILE [%s]: %d lines, %d whole\n", kind_name[k], a.lines + b.lines, a.intact + b.intact);
    feed_end(&fd);
    fclose(in);
}

/* One thread holds the FILE's lock (flockfile) while it waits in getc_unlocked; another's fgets on the same
 * FILE waits for the lock, then gets the next line. */
struct holder {
    FILE *in;
    char got[16];
    int locked;
};

static void *lock_holder(void *arg)
{
    struct holder *h = arg;
    flockfile(h->in);
    ATOMIC_STORE(&h->locked, 1);
    int n = 0, c;
    while ((c = getc_unlocked(h->in)) != EOF && c != '\n' && n < 15)
        h->got[n++] = (char)c;
    h->got[n] = 0;
    funlockfile(h->in);
    return NULL;
}

static void lock_held_while_waiting(enum kind k)
{
    int w;
    FILE *in = open_read(k, &w);
    struct holder h = { in, { 0 }, 0 };
    pthread_t th;
    pthread_create(&th, NULL, lock_holder, &h);
    wait_at_least(&h.locked, 1, 1, 5000);
    struct feed fd;
    feed_start(&fd, w, "abc\nnext\n", 9, 1, 10, 1);
    char line[64];
    char *r = fgets(line, sizeof line, in);
    pthread_join(th, NULL);
    printf("flockfile holder got \"%s\" [%s]; ", h.got, kind_name[k]);
    show("fgets after it", k, r, r ? (long)strlen(r) : 0, 0, in);
    feed_end(&fd);
    fclose(in);
}

static void stdin_getchar(void)
{
    int r, w;
    make_pair(PIPE, &r, &w);
    int saved = dup(0);
    dup2(r, 0);
    close(r);
    struct feed fd;
    feed_start(&fd, w, "q!\n", 3, 1, 3, 1);
    char got[8];
    int n = 0, c;
    while ((c = getchar()) != EOF && n < 7)
        got[n++] = (char)c;
    show("getchar from a pipe", PIPE, got, n, 0, stdin);
    feed_end(&fd);
    clearerr(stdin);
    dup2(saved, 0);
    close(saved);
}

/* Reset by the peer while the reader waits: after some bytes of a line, and with nothing pending. */
static void reset(enum kind k)
{
    for (int pending = 1; pending >= 0; pending--) {
        int w;
        FILE *in = open_read(k, &w);
        struct feed fd;
        if (k == SOCKPAIR) {
            /* A unix socket closed with unread data in its own queue resets its peer. */
            if (write(fileno(in), "x", 1) != 1)
                die("write");
        }
        feed_start(&fd, w, "ab", pending ? 2 : 0, 2, 30, 2);
        char line[64];
        errno = 0;
        char *r = fgets(line, sizeof line, in);
        show(pending ? "fgets reset after 2 bytes" : "fgets reset", k, r, r ? (long)strlen(r) : 0, r ? 0 : errno, in);
        feed_end(&fd);
        fclose(in);
    }
    int w;
    FILE *in = open_read(k, &w);
    if (k == SOCKPAIR && write(fileno(in), "x", 1) != 1)
        die("write");
    struct feed fd;
    feed_start(&fd, w, "", 0, 1, 30, 2);
    errno = 0;
    int c = getc(in);
    printf("getc reset [%s]: %d errno=%s error=%d\n", kind_name[k], c, errname(errno), ferror(in) != 0);
    feed_end(&fd);
    fclose(in);
}

static volatile sig_atomic_t usr1;

static void on_usr1(int sig)
{
    (void)sig;
    usr1++;
}

/* A signal while a read waits: "ab" arrives, then SIGUSR1, then the rest. */
static void interrupted(enum kind k, int restart)
{
    set_signal_handler(SIGUSR1, on_usr1, restart ? SA_RESTART : 0);
    const char *how = restart ? "SA_RESTART" : "no SA_RESTART";
    for (int method = 0; method < 4; method++) {
        int w;
        FILE *in = open_read(k, &w);
        static const char text[] = "abcdefghij\n";
        struct feed fd;
        /* getc: the signal comes before anything arrives; the others have "ab" by then. */
        feed_signal(&fd, w, text, sizeof text - 1, 2, 20, 1, method == 3 ? 0 : 2);
        char buf[64] = { 0 }, *line = NULL;
        size_t cap = 0;
        long n = 0;
        char *got = NULL;
        usr1 = 0;
        errno = 0;
        const char *name = "";
        switch (method) {
        case 0:
            name = "fgets";
            got = fgets(buf, sizeof buf, in);
            n = got ? (long)strlen(got) : 0;
            break;
        case 1:
            name = "getline";
            n = getline(&line, &cap, in);
            got = n >= 0 ? line : NULL;
            break;
        case 2:
            name = "fread";
            n = (long)fread(buf, 1, 11, in);
            got = buf;
            break;
        case 3: {
            name = "getc";
            int c = getc(in);
            buf[0] = (char)c;
            got = c == EOF ? NULL : buf;
            n = 1;
            break;
        }
        }
        int e = !got || ferror(in) || feof(in) ? errno : 0;
        char title[64];
        snprintf(title, sizeof title, "%s, signal, %s", name, how);
        show(title, k, got, n, e, in);
        printf("  handler ran %d time(s)\n", (int)usr1);
        clearerr(in);
        char rest[64];
        char *r = fgets(rest, sizeof rest, in);
        show("  then fgets", k, r, r ? (long)strlen(r) : 0, r ? 0 : errno, in);
        free(line);
        feed_end(&fd);
        fclose(in);
    }
    signal(SIGUSR1, SIG_DFL);
}

static void nonblocking(enum kind k)
{
    int w;
    FILE *in = open_read(k, &w);
    fcntl(fileno(in), F_SETFL, fcntl(fileno(in), F_GETFL) | O_NONBLOCK);
    char line[64];
    errno = 0;
    char *r = fgets(line, sizeof line, in);
    show("fgets O_NONBLOCK, nothing sent", k, r, 0, r ? 0 : errno, in);
    clearerr(in);
    if (write(w, "ab", 2) != 2)
        die("write");
    errno = 0;
    r = fgets(line, sizeof line, in);
    show("fgets O_NONBLOCK, half a line", k, r, r ? (long)strlen(r) : 0, errno, in);
    clearerr(in);
    errno = 0;
    int c = getc(in);
    printf("getc O_NONBLOCK [%s]: %d errno=%s error=%d\n", kind_name[k], c, errname(errno), ferror(in) != 0);
    clearerr(in);
    if (write(w, "c\n", 2) != 2)
        die("write");
    r = fgets(line, sizeof line, in);
    show("fgets O_NONBLOCK, the rest", k, r, r ? (long)strlen(r) : 0, 0, in);
    close(w);
    fclose(in);
}

/* An interactive prompt: the program (this test re-executed with --prompt, on a pseudo-terminal) prints
 * "Name? " without a newline and waits in fgets on the terminal; glibc flushes the line-buffered stdout
 * before it reads a terminal, so the prompt must show before any input comes. */
static int prompt_child(void)
{
    char name[64];
    printf("Name? ");
    if (!fgets(name, sizeof name, stdin))
        return 1;
    name[strcspn(name, "\r\n")] = 0;
    printf("Hello %s\n", name);
    return 0;
}

/* Reads the terminal's output until `want` shows or `ms` pass; 1 when it showed. */
static int read_until(int master, char *buf, size_t size, size_t *len, const char *want, int ms)
{
    int64_t deadline = mono_ns() + ms * 1000000LL;
    while (!strstr(buf, want) && mono_ns() < deadline) {
        struct pollfd p = { master, POLLIN, 0 };
        if (poll(&p, 1, 10) == 1) {
            ssize_t n = read(master, buf + *len, size - 1 - *len);
            if (n <= 0)
                break;
            *len += (size_t)n;
            buf[*len] = 0;
        }
    }
    return strstr(buf, want) != NULL;
}

static void terminal_prompt(const char *self)
{
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0)
        die("posix_openpt");
    char slave_name[128];
    if (ptsname_r(master, slave_name, sizeof slave_name) != 0)
        die("ptsname");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        int s = open(slave_name, O_RDWR);
        if (s < 0)
            _exit(2);
        dup2(s, 0), dup2(s, 1), dup2(s, 2);
        if (s > 2)
            close(s);
        close(master);
        execl(self, self, "--prompt", (char *)NULL);
        _exit(2);
    }
    char out[256] = { 0 };
    size_t len = 0;
    int shown = read_until(master, out, sizeof out, &len, "Name? ", 3000);
    CHECK(shown, "a prompt without newline shows before fgets on a terminal gets input");
    if (write(master, "bob\n", 4) != 4)
        die("write");
    CHECK(read_until(master, out, sizeof out, &len, "Hello bob", 3000), "fgets on a terminal returns the typed line");
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the prompting program ended well");
    close(master);
}

/* The acceptance case: 1,000 threads in fgets on their own sockets. */
#define MANY 1000
static int many_got, many_started;
static int ticks, ticker_stop;

/* Ticks every 10 ms until told to stop: the probe for "the other threads keep running". */
static void *ticking(void *arg)
{
    (void)arg;
    while (!ATOMIC_LOAD(&ticker_stop)) {
        sleep_ms(10);
        ATOMIC_ADD(&ticks, 1);
    }
    return NULL;
}

struct conn {
    int fd, id, ok;
    pthread_t th;
};

static void *many_reader(void *arg)
{
    struct conn *c = arg;
    FILE *in = fdopen(c->fd, "r");
    ATOMIC_ADD(&many_started, 1);
    char line[64], want[64];
    snprintf(want, sizeof want, "request %d\n", c->id);
    char *r = fgets(line, sizeof line, in);
    ATOMIC_ADD(&many_got, 1);
    c->ok = r && strcmp(line, want) == 0;
    char reply[64];
    int n = snprintf(reply, sizeof reply, "reply %d\n", c->id);
    if (write(c->fd, reply, (size_t)n) != n)
        c->ok = 0;
    fclose(in);
    return NULL;
}

static void many(void)
{
    static struct conn conns[MANY];
    static int peers[MANY];
    for (int i = 0; i < MANY; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
            die("socketpair");
        conns[i].fd = sv[0];
        conns[i].id = i;
        peers[i] = sv[1];
    }
    pthread_t tk;
    pthread_create(&tk, NULL, ticking, NULL);
    for (int i = 0; i < MANY; i++)
        if (pthread_create(&conns[i].th, NULL, many_reader, &conns[i]) != 0)
            die("pthread_create");
    CHECK(wait_at_least(&many_started, MANY, 5, 30000), "1,000 readers started");
    sleep_ms(200);
    int threads = os_threads();
    fprintf(stderr, "1,000 threads in fgets: OS threads %d (workers %d)\n", threads, shim_workers());
    if (under_shim())
        CHECK(threads <= shim_workers() + 8, "1,000 threads blocked in fgets use at most workers + 8 OS threads");
    else
        CHECK(threads > MANY, "1,000 threads blocked in fgets use at most workers + 8 OS threads");
    CHECK(ATOMIC_LOAD(&many_got) == 0, "no fgets returned before its line was sent");
    /* Judged by events, not by time: with all 1,000 readers waiting, the ticker still makes 20 more ticks (a
     * loaded machine makes that slower, never impossible). */
    int before = ATOMIC_LOAD(&ticks);
    CHECK(wait_at_least(&ticks, before + 20, 5, 30000), "a ticker kept ticking meanwhile");
    ATOMIC_STORE(&ticker_stop, 1);
    pthread_join(tk, NULL);
    for (int i = 0; i < MANY; i++) {
        char req[64];
        int n = snprintf(req, sizeof req, "request %d\n", i);
        if (write(peers[i], req, (size_t)n) != n)
            die("write");
    }
    int replies = 0, ok = 0;
    for (int i = 0; i < MANY; i++) {
        char buf[64], want[64];
        int n = snprintf(want, sizeof want, "reply %d\n", i);
        ssize_t got = 0;
        while (got < n) {
            ssize_t r = read(peers[i], buf + got, (size_t)(n - got));
            if (r <= 0)
                break;
            got += r;
        }
        replies += got == n && memcmp(buf, want, (size_t)n) == 0;
    }
    for (int i = 0; i < MANY; i++) {
        pthread_join(conns[i].th, NULL);
        ok += conns[i].ok;
        close(peers[i]);
    }
    CHECK(ok == MANY, "every fgets returned its own line");
    CHECK(replies == MANY, "every reply arrived");
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--prompt") == 0)
        return prompt_child();
    test_init();
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 2 * MANY + 100) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    fprintf(stderr, "under shim: %d, workers %d\n", under_shim(), shim_workers());
    for (int k = 0; k < KINDS; k++) {
        lines_in_pieces(k, _IOFBF);
        lines_in_pieces(k, _IOLBF);
        lines_in_pieces(k, _IONBF);
        if (k == SOCKPAIR || k == TCP)
            read_write_file(k);
        long_lines(k);
        fread_sizes(k);
        getline_getdelim(k);
        chars(k);
        other_forms(k);
        shared_file(k);
        lock_held_while_waiting(k);
    }
    stdin_getchar();
    reset(SOCKPAIR);
    reset(TCP);
    for (int k = 0; k < KINDS; k++) {
        interrupted(k, 0);
        interrupted(k, 1);
        nonblocking(k);
    }
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = 0;
        terminal_prompt(self);
    }
    many();
    return test_exit_status();
}
