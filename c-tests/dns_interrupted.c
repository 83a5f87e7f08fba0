/* dns_interrupted.c — signals and cancellation for a thread waiting in a name lookup (issue 16). Natively a
 * handler interrupts a lookup where glibc's resolver waits (its poll), on the thread's own stack, and the
 * lookup goes on after it; a handler may leave the lookup by siglongjmp; pthread_cancel acts in the
 * resolver's wait. Under the shim the lookup runs on a helper thread into copies of its own, so the same
 * must hold, and nothing may be written into a frame a handler left.
 *
 * Like dns_offload.c, the test re-executes itself inside fresh network and mount namespaces (unshare
 * --net --mount; the tests run as root): its own loopback, a bind-mounted resolv.conf naming 127.0.0.1,
 * and a forked DNS server on 127.0.0.1:53 that answers, DELAY_MS after each query, an A record
 * 10.77.N/256.N%256 for hostN.asyncshim.test, a CNAME to hostN plus that A record for aliasN, a PTR record
 * hostN.asyncshim.test for 10.77.N/256.N%256, and nothing else. Nothing leaves the namespace.
 *
 * For every lookup entry point the shim hands to a helper (getaddrinfo, getnameinfo, gethostbyname,
 * gethostbyname2, gethostbyaddr and the three _r forms):
 *  - handlers that return: pthread_kill(SIGUSR1) to the thread in the lookup until two handlers ran; each
 *    ran in the thread (pthread_self) on its own stack (a local's address inside pthread_getattr_np's
 *    bounds); the lookup goes on and its result is right;
 *  - a handler that leaves by siglongjmp, 200 times in a row over the entry points (not the three that
 *    return static storage: natively they hold a lock a jump leaves held), each time while the
 *    lookup waits for its answer; afterwards the stack where those lookups had their frames, filled with a
 *    pattern, stays untouched while the abandoned answers arrive, and every entry point works again;
 *  - pthread_cancel of a thread waiting in getaddrinfo: its cleanup handler runs, the join gets
 *    PTHREAD_CANCELED before the answer would have come.
 * asyncshim-test: timeout=120 */
#include "test_util.h"
#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define DELAY_MS 300
#define JUMPS 200

static int lo_up(void)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    int ok = ioctl(s, SIOCGIFFLAGS, &ifr) == 0;
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    ok = ok && ioctl(s, SIOCSIFFLAGS, &ifr) == 0;
    close(s);
    return ok;
}

/* ---- The DNS server (a forked child: plain and single-threaded under the shim too). ---- */

static int put_name(unsigned char *at, const char *name)
{
    int n = 0;
    while (*name) {
        const char *dot = strchr(name, '.');
        int l = dot ? (int)(dot - name) : (int)strlen(name);
        at[n++] = (unsigned char)l;
        memcpy(at + n, name, l);
        n += l;
        name += l + (dot ? 1 : 0);
    }
    at[n++] = 0;
    return n;
}

static int put_rr(unsigned char *at, const unsigned char *owner, int owner_len, int type, const unsigned char *data,
                  int len)
{
    int n = owner_len;
    memcpy(at, owner, owner_len);
    unsigned char fixed[] = { 0, (unsigned char)type, 0, 1, 0, 0, 0, 60, (unsigned char)(len >> 8), (unsigned char)len };
    memcpy(at + n, fixed, sizeof fixed);
    n += sizeof fixed;
    memcpy(at + n, data, len);
    return n + len;
}

static int answer(const unsigned char *q, int qlen, unsigned char *r)
{
    char name[256] = "";
    int at = 12, nl = 0;
    while (at < qlen && q[at] != 0) {
        int l = q[at++];
        if (at + l > qlen || nl + l + 2 > (int)sizeof name)
            return -1;
        if (nl)
            name[nl++] = '.';
        memcpy(name + nl, q + at, l);
        nl += l;
        at += l;
    }
    name[nl] = 0;
    at++;
    if (qlen < 17 || at + 4 > qlen)
        return -1;
    int qtype = q[at] << 8 | q[at + 1];
    int qend = at + 4;
    memcpy(r, q, qend);
    r[2] = 0x80 | (q[2] & 0x01);
    r[3] = 0x80;
    r[6] = r[7] = r[8] = r[9] = r[10] = r[11] = 0;
    unsigned n, a, b, c, d;
    char tail[64], target[80];
    int len = qend, answers = 0;
    const unsigned char qname_ptr[2] = { 0xc0, 0x0c };
    if (sscanf(name, "host%u.%63s", &n, tail) == 2 && strcmp(tail, "asyncshim.test") == 0) {
        if (qtype == 1) {
            unsigned char ip[4] = { 10, 77, (unsigned char)(n / 256), (unsigned char)(n % 256) };
            len += put_rr(r + len, qname_ptr, 2, 1, ip, 4);
            answers = 1;
        }
    } else if (sscanf(name, "alias%u.%63s", &n, tail) == 2 && strcmp(tail, "asyncshim.test") == 0) {
        if (qtype == 1) {
            unsigned char data[80];
            snprintf(target, sizeof target, "host%u.asyncshim.test", n);
            int dl = put_name(data, target);
            int target_at = len + 2 + 10; /* where the CNAME's data (the target name) lands */
            len += put_rr(r + len, qname_ptr, 2, 5, data, dl);
            unsigned char ip[4] = { 10, 77, (unsigned char)(n / 256), (unsigned char)(n % 256) };
            unsigned char target_ptr[2] = { (unsigned char)(0xc0 | target_at >> 8), (unsigned char)target_at };
            len += put_rr(r + len, target_ptr, 2, 1, ip, 4);
            answers = 2;
        }
    } else if (sscanf(name, "%u.%u.%u.%u.%63s", &d, &c, &b, &a, tail) == 5 && strcmp(tail, "in-addr.arpa") == 0 &&
               a == 10 && b == 77) {
        if (qtype == 12) {
            unsigned char data[80];
            snprintf(target, sizeof target, "host%u.asyncshim.test", c * 256 + d);
            len += put_rr(r + len, qname_ptr, 2, 12, data, put_name(data, target));
            answers = 1;
        }
    } else {
        r[3] = 0x83; /* NXDOMAIN */
    }
    r[7] = (unsigned char)answers;
    return len;
}

struct pending {
    int64_t due;
    struct sockaddr_in to;
    unsigned char msg[512];
    int len;
};

static void dns_server(int fd)
{
    static struct pending p[4096];
    int np = 0;
    for (;;) {
        int64_t now = mono_ns();
        int timeout = 100;
        for (int i = 0; i < np;) {
            if (p[i].due <= now) {
                sendto(fd, p[i].msg, p[i].len, 0, (struct sockaddr *)&p[i].to, sizeof p[i].to);
                p[i] = p[--np];
                continue;
            }
            int ms = (int)((p[i].due - now) / 1000000) + 1;
            if (ms < timeout)
                timeout = ms;
            i++;
        }
        struct pollfd pfd = { fd, POLLIN, 0 };
        if (poll(&pfd, 1, timeout) <= 0)
            continue;
        unsigned char q[512];
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        int n = (int)recvfrom(fd, q, sizeof q, 0, (struct sockaddr *)&from, &fl);
        if (n <= 0 || np == 4096)
            continue;
        int len = answer(q, n, p[np].msg);
        if (len < 0)
            continue;
        p[np].len = len;
        p[np].to = from;
        p[np].due = mono_ns() + DELAY_MS * 1000000LL;
        np++;
    }
}

/* ---- The lookups: each entry point, its result as text. ---- */

enum kind { GAI, GNI, GHBN, GHBN2, GHBA, GHBN_R, GHBN2_R, GHBA_R, KINDS };
static const char *kind_name[] = { "getaddrinfo", "getnameinfo", "gethostbyname", "gethostbyname2", "gethostbyaddr",
                                   "gethostbyname_r", "gethostbyname2_r", "gethostbyaddr_r" };

static void hostent_text(const struct hostent *h, char *out, size_t n)
{
    if (!h) {
        snprintf(out, n, "NULL");
        return;
    }
    char ip[32] = "";
    if (h->h_addr_list[0])
        inet_ntop(AF_INET, h->h_addr_list[0], ip, sizeof ip);
    int aliases = 0;
    char first_alias[128] = "-";
    for (char **a = h->h_aliases; *a; a++)
        if (aliases++ == 0)
            snprintf(first_alias, sizeof first_alias, "%s", *a);
    snprintf(out, n, "%s %s aliases %d (%s)", h->h_name, ip, aliases, first_alias);
}

/* Makes lookup `k` of thread number `id` (names alias<id>, addresses 10.77.0.<id>) and writes its result.
 * Not inlined: its frame (with the buffers of the _r forms) is the one a handler leaves. */
static __attribute__((noinline)) void lookup(enum kind k, int id, char *out, size_t n)
{
    char name[64];
    snprintf(name, sizeof name, "alias%d.asyncshim.test", id);
    struct in_addr a;
    a.s_addr = htonl((10u << 24) | (77u << 16) | (unsigned)id);
    struct hostent he, *r = NULL;
    char buf[2048];
    int herr = 0, rc;
    switch (k) {
    case GAI: {
        struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM, .ai_flags = AI_CANONNAME }, *res = NULL;
        rc = getaddrinfo(name, "80", &hints, &res);
        char ip[32] = "";
        if (rc == 0)
            inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, ip, sizeof ip);
        snprintf(out, n, "%d %s %s port %d", rc, rc == 0 ? res->ai_canonname : "-", ip,
                 rc == 0 ? ntohs(((struct sockaddr_in *)res->ai_addr)->sin_port) : 0);
        if (rc == 0)
            freeaddrinfo(res);
        break;
    }
    case GNI: {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(8080), .sin_addr = a };
        char host[NI_MAXHOST], serv[NI_MAXSERV];
        rc = getnameinfo((struct sockaddr *)&sa, sizeof sa, host, sizeof host, serv, sizeof serv, NI_NUMERICSERV);
        snprintf(out, n, "%d %s %s", rc, rc == 0 ? host : "-", rc == 0 ? serv : "-");
        break;
    }
    case GHBN:
        hostent_text(gethostbyname(name), out, n);
        break;
    case GHBN2:
        hostent_text(gethostbyname2(name, AF_INET), out, n);
        break;
    case GHBA:
        hostent_text(gethostbyaddr(&a, sizeof a, AF_INET), out, n);
        break;
    case GHBN_R:
        rc = gethostbyname_r(name, &he, buf, sizeof buf, &r, &herr);
        hostent_text(rc == 0 ? r : NULL, out, n);
        break;
    case GHBN2_R:
        rc = gethostbyname2_r(name, AF_INET, &he, buf, sizeof buf, &r, &herr);
        hostent_text(rc == 0 ? r : NULL, out, n);
        break;
    default:
        rc = gethostbyaddr_r(&a, sizeof a, AF_INET, &he, buf, sizeof buf, &r, &herr);
        hostent_text(rc == 0 ? r : NULL, out, n);
        break;
    }
}

/* ---- The thread in the lookup, its handler. ---- */

static pthread_t waiter;
static char *stack_lo, *stack_hi;
static sigjmp_buf env;
static int handled, in_waiter, on_own_stack, longjmps, armed, done;

static void handler(int sig)
{
    (void)sig;
    char here;
    ATOMIC_ADD(&handled, 1);
    if (pthread_equal(pthread_self(), waiter))
        ATOMIC_STORE(&in_waiter, 1);
    if (&here > stack_lo && &here < stack_hi)
        ATOMIC_STORE(&on_own_stack, 1);
    if (ATOMIC_LOAD(&longjmps))
        siglongjmp(env, 1);
}

static void note_stack(void)
{
    void *lo = NULL;
    size_t size = 0;
    own_stack(&lo, &size);
    stack_lo = lo;
    stack_hi = (char *)lo + size;
}

struct job {
    enum kind kind;
    int id;
    char result[256];
};

static void *returns_body(void *arg)
{
    struct job *j = arg;
    note_stack();
    ATOMIC_STORE(&armed, 1);
    lookup(j->kind, j->id, j->result, sizeof j->result);
    ATOMIC_STORE(&done, 1);
    return NULL;
}

/* The stack below the caller, filled with a pattern; returns how many bytes of it changed after `ms`. */
static __attribute__((noinline)) int untouched_below(long ms)
{
    volatile unsigned char area[16384];
    for (size_t i = 0; i < sizeof area; i++)
        area[i] = 0xa5;
    sleep_ms(ms);
    int changed = 0;
    for (size_t i = 0; i < sizeof area; i++)
        changed += area[i] != 0xa5;
    return changed;
}

static int jumped_out, changed_after;
/* Not gethostbyname, gethostbyname2 nor gethostbyaddr: natively they hold a process-wide lock around the
 * lookup, which a handler leaving by siglongjmp keeps held (the next such call would wait for ever). */
static const enum kind jump_kinds[5] = { GAI, GNI, GHBN_R, GHBN2_R, GHBA_R };

static void *jumps_body(void *arg)
{
    (void)arg;
    note_stack();
    char result[256];
    for (int i = 0; i < JUMPS; i++) {
        if (sigsetjmp(env, 1) == 0) {
            ATOMIC_STORE(&armed, i + 1);
            lookup(jump_kinds[i % 5], 1 + i % 50, result, sizeof result);
            ATOMIC_STORE(&done, i + 1); /* the lookup ended before the signal: not expected */
        } else {
            jumped_out++;
        }
    }
    /* The abandoned lookups' answers come in meanwhile: nothing may land in their old frames. */
    changed_after = untouched_below(DELAY_MS * 2);
    return NULL;
}

static int cleanup_ran;
static void cleanup(void *arg)
{
    (void)arg;
    ATOMIC_STORE(&cleanup_ran, 1);
}

static void *cancelled_body(void *arg)
{
    struct job *j = arg;
    pthread_cleanup_push(cleanup, NULL);
    ATOMIC_STORE(&armed, 1);
    lookup(GAI, j->id, j->result, sizeof j->result);
    pthread_cleanup_pop(0);
    return NULL;
}

static int inside(void)
{
    test_init();
    CHECK(lo_up(), "loopback up in the test's own network namespace");
    char conf[] = "/tmp/asyncshim-resolv-XXXXXX";
    int cfd = mkstemp(conf);
    const char text[] = "nameserver 127.0.0.1\noptions timeout:30 attempts:1\n";
    int wrote = cfd >= 0 && write(cfd, text, sizeof text - 1) == (ssize_t)(sizeof text - 1);
    close(cfd);
    int mounted = wrote && mount(conf, "/etc/resolv.conf", NULL, MS_BIND, NULL) == 0;
    unlink(conf);
    CHECK(mounted, "private resolv.conf naming 127.0.0.1 in the test's own mount namespace");
    /* Only DNS answers names and addresses here (no /etc/hosts entry can interfere). */
    char nss[] = "/tmp/asyncshim-nss-XXXXXX";
    int nfd = mkstemp(nss);
    const char nss_text[] = "hosts: dns\nservices: files\n";
    wrote = nfd >= 0 && write(nfd, nss_text, sizeof nss_text - 1) == (ssize_t)(sizeof nss_text - 1);
    close(nfd);
    CHECK(wrote && mount(nss, "/etc/nsswitch.conf", NULL, MS_BIND, NULL) == 0, "private nsswitch.conf");
    unlink(nss);

    int dfd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(53) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(dfd, (struct sockaddr *)&sa, sizeof sa) == 0, "DNS server bound to 127.0.0.1:53");
    fflush(stdout);
    pid_t server = fork();
    if (server == 0) {
        dns_server(dfd);
        _exit(0);
    }
    close(dfd);
    set_signal_handler(SIGUSR1, handler, 0);

    /* Handlers that return: the lookup goes on. */
    printf("handlers that return while the thread waits in the lookup:\n");
    for (int k = 0; k < KINDS; k++) {
        struct job j = { .kind = (enum kind)k, .id = 7 };
        ATOMIC_STORE(&armed, 0);
        ATOMIC_STORE(&done, 0);
        ATOMIC_STORE(&handled, 0);
        ATOMIC_STORE(&in_waiter, 0);
        ATOMIC_STORE(&on_own_stack, 0);
        pthread_create(&waiter, NULL, returns_body, &j);
        while (!ATOMIC_LOAD(&armed))
            sleep_ms(1);
        sleep_ms(20);
        while (ATOMIC_LOAD(&handled) < 2 && !ATOMIC_LOAD(&done)) {
            pthread_kill(waiter, SIGUSR1);
            sleep_ms(20);
        }
        int waiting = !ATOMIC_LOAD(&done);
        pthread_join(waiter, NULL);
        printf("  %s: handlers ran while it waited: %s, in the thread: %s, on its own stack: %s; result %s\n",
               kind_name[k], waiting ? "yes" : "no", ATOMIC_LOAD(&in_waiter) ? "yes" : "no",
               ATOMIC_LOAD(&on_own_stack) ? "yes" : "no", j.result);
    }

    /* Handlers that leave by siglongjmp, JUMPS times in a row. */
    ATOMIC_STORE(&armed, 0);
    ATOMIC_STORE(&done, 0);
    ATOMIC_STORE(&in_waiter, 0);
    ATOMIC_STORE(&on_own_stack, 0);
    ATOMIC_STORE(&longjmps, 1);
    int64_t t0 = mono_ns();
    pthread_create(&waiter, NULL, jumps_body, NULL);
    for (int i = 1; i <= JUMPS; i++) {
        while (ATOMIC_LOAD(&armed) < i)
            sleep_ms(1);
        sleep_ms(5);
        pthread_kill(waiter, SIGUSR1);
    }
    pthread_join(waiter, NULL);
    ATOMIC_STORE(&longjmps, 0);
    fprintf(stderr, "%d lookups left by siglongjmp in %.0f ms\n", JUMPS, (mono_ns() - t0) / 1e6);
    printf("handlers that leave by siglongjmp: left %d of %d lookups (%d ended first), in the thread: %s, on its "
           "own stack: %s; bytes changed in their old frames afterwards: %d\n",
           jumped_out, JUMPS, ATOMIC_LOAD(&done) ? 1 : 0, ATOMIC_LOAD(&in_waiter) ? "yes" : "no",
           ATOMIC_LOAD(&on_own_stack) ? "yes" : "no", changed_after);

    printf("after them:\n");
    for (int k = 0; k < KINDS; k++) {
        char result[256];
        lookup((enum kind)k, 9, result, sizeof result);
        printf("  %s: %s\n", kind_name[k], result);
    }

    /* pthread_cancel while the thread waits in getaddrinfo. */
    struct job j = { .kind = GAI, .id = 11 };
    ATOMIC_STORE(&armed, 0);
    pthread_t t;
    pthread_create(&t, NULL, cancelled_body, &j);
    while (!ATOMIC_LOAD(&armed))
        sleep_ms(1);
    sleep_ms(50);
    int64_t c0 = mono_ns();
    pthread_cancel(t);
    void *ret = NULL;
    pthread_join(t, &ret);
    int64_t took = mono_ns() - c0;
    fprintf(stderr, "join of the cancelled thread after %.0f ms\n", took / 1e6);
    printf("pthread_cancel in getaddrinfo: cancelled %s, cleanup ran %s, joined before the answer: %s\n",
           ret == PTHREAD_CANCELED ? "yes" : "no", ATOMIC_LOAD(&cleanup_ran) ? "yes" : "no",
           took < (DELAY_MS - 100) * 1000000LL ? "yes" : "no");

    kill(server, SIGKILL);
    waitpid(server, NULL, 0);
    return test_exit_status();
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--inside") == 0)
        return inside();
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return 2;
    self[n] = 0;
    execl("/usr/bin/unshare", "unshare", "--net", "--mount", "--propagation", "private", "--", self, "--inside",
          (char *)NULL);
    perror("exec unshare");
    return 2;
}
