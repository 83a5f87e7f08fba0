/* dns_offload.c — name resolution must not stall the other threads (issue 7). glibc's resolver uses its
 * own internal socket calls, so under the shim a lookup runs on a helper thread while its thread parks.
 *
 * The test re-executes itself inside fresh network and mount namespaces (unshare --net --mount; needs
 * root, as the tests run): there it brings up its own loopback, bind-mounts a resolv.conf naming
 * 127.0.0.1, and forks a small DNS server on 127.0.0.1:53 that answers every A query for
 * hostN.asyncshim.test with 10.77.N/256.N%256 after 50 ms, and NXDOMAIN for other names. Nothing leaves
 * the namespace. Then 100 threads resolve at once (getaddrinfo, gethostbyname_r, gethostbyname,
 * getnameinfo): the server holds every answer back until it has all 100 queries and main, told so through
 * a pipe, says go. Under the shim the run is made with ASYNCSHIM_MAX_SPARES=0, so if a lookup held its
 * worker OS thread, main could never say go and the lookups would time out: they all come back right
 * only if they wait elsewhere (on helper threads). Every answer and error is checked.
 * asyncshim-test: timeout=60 */
#include "shim_probe.h"
#include "test_util.h"
#include "private_dns.h"
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#define LOOKUPS 100
#define DELAY_MS 50

/* The DNS server (a forked child: plain and single-threaded under the shim too). */
static int answer(const unsigned char *q, int qlen, unsigned char *r)
{
    char name[256];
    int qtype, qend = dns_question(q, qlen, name, sizeof name, &qtype, r);
    if (qend < 0)
        return -1;
    unsigned n;
    char tail[64];
    if (sscanf(name, "host%u.%63s", &n, tail) == 2 && strcmp(tail, "asyncshim.test") == 0) {
        if (qtype != 1)
            return qend; /* no AAAA and friends: empty answer */
        unsigned char *a = r + qend;
        r[7] = 1;
        unsigned char rr[] = { 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 77, (unsigned char)(n / 256), (unsigned char)(n % 256) };
        memcpy(a, rr, sizeof rr);
        return qend + (int)sizeof rr;
    }
    r[3] = 0x83; /* NXDOMAIN */
    return qend;
}

/* Serves on `fd`. Holding: answers wait until LOOKUPS queries came (then a byte goes to `told`) and a
 * byte arrives on `go`; after that every answer goes out DELAY_MS after its query. */
static void dns_server(int fd, int told, int go)
{
    static struct dns_queue d;
    int holding = 1, queries = 0;
    for (;;) {
        int timeout = holding ? 100 : dns_send_due(fd, &d);
        struct pollfd pfd[2] = { { fd, POLLIN, 0 }, { go, holding ? POLLIN : 0, 0 } };
        if (poll(pfd, 2, timeout) <= 0)
            continue;
        if (pfd[1].revents) {
            char c;
            if (read(go, &c, 1) == 1) {
                holding = 0;
                for (int i = 0; i < d.n; i++)
                    d.a[i].due = 0;
            }
            continue;
        }
        if (dns_take_query(fd, &d, answer, DELAY_MS) && holding && ++queries == LOOKUPS && write(told, "q", 1) != 1)
            _exit(3);
    }
}

struct lookup {
    int id;
    int ok;
};

static void *resolver(void *arg)
{
    struct lookup *l = arg;
    char name[64], want[32];
    snprintf(name, sizeof name, "host%d.asyncshim.test", l->id);
    snprintf(want, sizeof want, "10.77.%d.%d", l->id / 256, l->id % 256);
    char got[32] = "";
    switch (l->id % 3) {
    case 0: {
        struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res = NULL;
        if (getaddrinfo(name, "80", &hints, &res) == 0 && res) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, got, sizeof got);
            freeaddrinfo(res);
        }
        break;
    }
    case 1: {
        struct hostent he, *r = NULL;
        char buf[1024];
        int herr = 0;
        if (gethostbyname_r(name, &he, buf, sizeof buf, &r, &herr) == 0 && r)
            inet_ntop(AF_INET, r->h_addr_list[0], got, sizeof got);
        break;
    }
    default: {
        struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_DGRAM }, *res = NULL;
        if (getaddrinfo(name, NULL, &hints, &res) == 0 && res) {
            char host[NI_MAXHOST];
            if (getnameinfo(res->ai_addr, res->ai_addrlen, host, sizeof host, NULL, 0, NI_NUMERICHOST) == 0)
                snprintf(got, sizeof got, "%s", host);
            freeaddrinfo(res);
        }
    }
    }
    l->ok = strcmp(got, want) == 0;
    if (!l->ok)
        fprintf(stderr, "lookup %s: got '%s', want '%s'\n", name, got, want);
    return NULL;
}

static int inside(void)
{
    test_init();
    fprintf(stderr, "under shim: %d, workers %d\n", under_shim(), shim_workers());
    int dfd = private_resolver(0);
    if (dfd < 0)
        return test_exit_status();
    int told[2], go[2];
    if (pipe(told) || pipe(go))
        return 2;
    fflush(stdout);
    pid_t server = fork();
    if (server == 0) {
        dns_server(dfd, told[1], go[0]);
        _exit(0);
    }
    close(dfd);

    struct lookup l[LOOKUPS];
    pthread_t th[LOOKUPS];
    int64_t t0 = mono_ns();
    for (int i = 0; i < LOOKUPS; i++) {
        l[i].id = i + 1;
        l[i].ok = 0;
        pthread_create(&th[i], NULL, resolver, &l[i]);
    }
    char c;
    int all_waiting = read(told[0], &c, 1) == 1;
    int64_t waited = mono_ns() - t0;
    CHECK(all_waiting && write(go[1], "g", 1) == 1, "main ran while all 100 lookups waited for their answers");
    int right = 0;
    for (int i = 0; i < LOOKUPS; i++) {
        pthread_join(th[i], NULL);
        right += l[i].ok;
    }
    int64_t took = mono_ns() - t0;
    fprintf(stderr, "%d lookups in flight after %.0f ms, all answered after %.0f ms\n", LOOKUPS, waited / 1e6,
            took / 1e6);
    printf("lookups answered with the right address: %d of %d\n", right, LOOKUPS);

    /* Errors come back as natively: EAI_NONAME, and HOST_NOT_FOUND in h_errno. */
    struct addrinfo hints = { .ai_family = AF_INET }, *res = NULL;
    int e = getaddrinfo("missing.asyncshim.test", NULL, &hints, &res);
    printf("getaddrinfo of a missing name: %s\n", e == EAI_NONAME ? "EAI_NONAME" : gai_strerror(e));
    h_errno = 0;
    struct hostent *h = gethostbyname("missing.asyncshim.test");
    printf("gethostbyname of a missing name: %s, h_errno %s\n", h ? "found" : "NULL",
           h_errno == HOST_NOT_FOUND ? "HOST_NOT_FOUND" : "other");
    h = gethostbyname("host7.asyncshim.test");
    char got[32] = "";
    if (h)
        inet_ntop(AF_INET, h->h_addr_list[0], got, sizeof got);
    printf("gethostbyname host7: %s\n", got);

    /* The other entry points: gethostbyname2, gethostbyname2_r, reverse lookups (the server answers
     * NXDOMAIN to PTR queries), and a numeric address, which glibc parses without asking anyone. */
    h = gethostbyname2("host300.asyncshim.test", AF_INET);
    got[0] = 0;
    if (h)
        inet_ntop(AF_INET, h->h_addr_list[0], got, sizeof got);
    printf("gethostbyname2 host300: %s\n", got);
    struct hostent he, *hr = NULL;
    char hbuf[1024];
    int herr = 0;
    int rc = gethostbyname2_r("host9.asyncshim.test", AF_INET, &he, hbuf, sizeof hbuf, &hr, &herr);
    got[0] = 0;
    if (rc == 0 && hr)
        inet_ntop(AF_INET, hr->h_addr_list[0], got, sizeof got);
    printf("gethostbyname2_r host9: %d %s\n", rc, got);
    rc = gethostbyname2_r("missing.asyncshim.test", AF_INET, &he, hbuf, sizeof hbuf, &hr, &herr);
    printf("gethostbyname2_r of a missing name: %d, result %s, h_errno %s\n", rc, hr ? "set" : "NULL",
           herr == HOST_NOT_FOUND ? "HOST_NOT_FOUND" : "other");
    struct in_addr a7;
    inet_pton(AF_INET, "10.77.0.7", &a7);
    h_errno = 0;
    h = gethostbyaddr(&a7, sizeof a7, AF_INET);
    printf("gethostbyaddr 10.77.0.7: %s, h_errno %s\n", h ? "found" : "NULL",
           h_errno == HOST_NOT_FOUND ? "HOST_NOT_FOUND" : "other");
    rc = gethostbyaddr_r(&a7, sizeof a7, AF_INET, &he, hbuf, sizeof hbuf, &hr, &herr);
    printf("gethostbyaddr_r 10.77.0.7: result %s, h_errno %s\n", hr ? "set" : "NULL",
           herr == HOST_NOT_FOUND ? "HOST_NOT_FOUND" : "other");
    struct sockaddr_in s7 = { .sin_family = AF_INET, .sin_port = htons(8080), .sin_addr = a7 };
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    rc = getnameinfo((struct sockaddr *)&s7, sizeof s7, host, sizeof host, serv, sizeof serv, NI_NUMERICSERV);
    printf("getnameinfo 10.77.0.7:8080 (no PTR record): %d %s %s\n", rc, rc == 0 ? host : "-", rc == 0 ? serv : "-");
    rc = getnameinfo((struct sockaddr *)&s7, sizeof s7, host, sizeof host, NULL, 0, NI_NAMEREQD);
    printf("getnameinfo NI_NAMEREQD: %s\n", rc == EAI_NONAME ? "EAI_NONAME" : gai_strerror(rc));
    res = NULL;
    rc = getaddrinfo("127.0.0.1", "3306", &hints, &res);
    got[0] = 0;
    if (rc == 0 && res) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, got, sizeof got);
        printf("getaddrinfo of a numeric address: %s port %d\n", got, ntohs(((struct sockaddr_in *)res->ai_addr)->sin_port));
        freeaddrinfo(res);
    }
    rc = getaddrinfo("127.0.0.1", "no-such-service-name", &hints, &res);
    printf("getaddrinfo with an unknown service name: %s\n", rc == EAI_SERVICE ? "EAI_SERVICE" : gai_strerror(rc));

    return stop_dns_server(server);
}

int main(int argc, char **argv)
{
    /* No spare workers under the shim: a lookup that held its worker would then stop main too. */
    if (under_shim() && !getenv("ASYNCSHIM_MAX_SPARES"))
        setenv("ASYNCSHIM_MAX_SPARES", "0", 1);
    return private_network_main(argc, argv, inside);
}
