/* dns_interrupted.c — signals and cancellation for a thread waiting in a name lookup (issue 16). Natively a
 * handler interrupts a lookup where glibc's resolver waits (its poll), on the thread's own stack, and the
 * lookup goes on after it; a handler may leave the lookup by siglongjmp; pthread_cancel acts in the
 * resolver's wait. Under the shim the lookup runs on a helper thread into copies of its own, so the same
 * must hold, and nothing may be written into a frame a handler left.
 *
 * Like dns_offload.c, the test runs in its own network (lib/private_dns.h; hosts are looked up in DNS
 * alone), where a forked DNS server on 127.0.0.1:53 answers, DELAY_MS after each query, an A record
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
 *    PTHREAD_CANCELED before the answer would have come;
 *  - a request pending when a lookup starts is acted on inside it (not for the non-reentrant forms:
 *    natively that leaves their lock held), but not in a getnameinfo that looks nothing up.
 * asyncshim-test: timeout=120 */
#include "test_util.h"
#include "private_dns.h"
#include "waiter.h"
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#define DELAY_MS 300
#define JUMPS 200

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
    char name[256];
    int qtype, qend = dns_question(q, qlen, name, sizeof name, &qtype, r);
    if (qend < 0)
        return -1;
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

static void dns_server(int fd)
{
    static struct dns_queue d;
    for (;;) {
        struct pollfd pfd = { fd, POLLIN, 0 };
        if (poll(&pfd, 1, dns_send_due(fd, &d)) > 0)
            dns_take_query(fd, &d, answer, DELAY_MS);
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
        snprintf(out, n, "%d %.100s %.30s", rc, rc == 0 ? host : "-", rc == 0 ? serv : "-");
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

static int done;

struct job {
    enum kind kind;
    int id;
    char result[256];
};

static void *returns_body(void *arg)
{
    struct job *j = arg;
    note_waiter_stack();
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
    note_waiter_stack();
    char result[256];
    for (int i = 0; i < JUMPS; i++) {
        if (sigsetjmp(env, 1) == 0) {
            ATOMIC_STORE(&armed, i + 1);
            lookup(jump_kinds[i % 5], 1 + i % 50, result, sizeof result);
            ATOMIC_STORE(&done, i + 1); /* the lookup ended before the signal: not expected */
        } else {
            ATOMIC_STORE(&jumped, 1);
            jumped_out++;
        }
    }
    /* The abandoned lookups' answers come in meanwhile: nothing may land in their old frames. */
    changed_after = untouched_below(DELAY_MS * 2);
    return NULL;
}

static void *cancelled_body(void *arg)
{
    struct job *j = arg;
    pthread_cleanup_push(waiter_cleanup, NULL);
    ATOMIC_STORE(&armed, 1);
    lookup(GAI, j->id, j->result, sizeof j->result);
    pthread_cleanup_pop(0);
    return NULL;
}

/* A request made while cancellation is disabled, pending when the lookup starts. */
static int go_on, returned;
static void *pending_body(void *arg)
{
    struct job *j = arg;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    ATOMIC_STORE(&armed, 1);
    while (!ATOMIC_LOAD(&go_on))
        sleep_ms(1);
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
    pthread_cleanup_push(waiter_cleanup, NULL);
    if (j->kind == KINDS) {
        /* Numeric host and service: nothing is looked up (no cancellation point). */
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(80) };
        sa.sin_addr.s_addr = htonl(0x0a4d0007);
        char host[64], serv[32];
        getnameinfo((struct sockaddr *)&sa, sizeof sa, host, sizeof host, serv, sizeof serv,
                    NI_NUMERICHOST | NI_NUMERICSERV);
    } else {
        lookup(j->kind, j->id, j->result, sizeof j->result);
    }
    ATOMIC_STORE(&returned, 1);
    pthread_testcancel();
    pthread_cleanup_pop(0);
    return NULL;
}

static int inside(void)
{
    test_init();
    int dfd = private_resolver(1);
    if (dfd < 0)
        return test_exit_status();
    fflush(stdout);
    pid_t server = fork();
    if (server == 0) {
        dns_server(dfd);
        _exit(0);
    }
    close(dfd);
    set_signal_handler(SIGUSR1, waiter_handler, 0);

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
    ATOMIC_STORE(&handler_longjmps, 1);
    int64_t t0 = mono_ns();
    pthread_create(&waiter, NULL, jumps_body, NULL);
    for (int i = 1; i <= JUMPS; i++) {
        while (ATOMIC_LOAD(&armed) < i)
            sleep_ms(1);
        sleep_ms(5);
        pthread_kill(waiter, SIGUSR1);
    }
    pthread_join(waiter, NULL);
    ATOMIC_STORE(&handler_longjmps, 0);
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

    /* A request pending when the lookup starts: natively acted on inside it (glibc's own cancellable calls),
     * but for a getnameinfo that looks nothing up. */
    printf("a cancellation request pending when the lookup starts:\n");
    for (int k = 0; k <= KINDS; k++) {
        if (k == GHBN || k == GHBN2 || k == GHBA)
            continue; /* natively a cancellation there leaves their process-wide lock held */
        struct job pj = { .kind = (enum kind)k, .id = 12 };
        ATOMIC_STORE(&armed, 0);
        ATOMIC_STORE(&go_on, 0);
        ATOMIC_STORE(&returned, 0);
        ATOMIC_STORE(&cleanup_ran, 0);
        pthread_create(&t, NULL, pending_body, &pj);
        while (!ATOMIC_LOAD(&armed))
            sleep_ms(1);
        pthread_cancel(t);
        ATOMIC_STORE(&go_on, 1);
        pthread_join(t, &ret);
        printf("  %s: cancelled %s, cleanup ran %s, the call returned: %s\n",
               k == KINDS ? "getnameinfo (numeric)" : kind_name[k], ret == PTHREAD_CANCELED ? "yes" : "no",
               ATOMIC_LOAD(&cleanup_ran) ? "yes" : "no", ATOMIC_LOAD(&returned) ? "yes" : "no");
    }

    return stop_dns_server(server);
}

int main(int argc, char **argv)
{
    return private_network_main(argc, argv, inside);
}
