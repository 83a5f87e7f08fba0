/* private_dns.h — the name-lookup tests' own network: the test re-executes itself inside fresh network and
 * mount namespaces (private_network_main(), from main; unshare --net --mount: the tests run as root),
 * where private_resolver() brings up its loopback, bind-mounts a resolv.conf naming 127.0.0.1 (and, when
 * asked, an nsswitch.conf with DNS alone for hosts) and binds the UDP socket of a DNS server on
 * 127.0.0.1:53, which the test serves itself (in a forked child) with the pieces below: dns_question()
 * reads a query and starts its answer, dns_take_query() queues the answer for later, dns_send_due() sends
 * those whose time came. Nothing leaves the namespace. Include after test_util.h. */
#ifndef PRIVATE_DNS_H
#define PRIVATE_DNS_H

#include <arpa/inet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>

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

/* Bind-mounts a file holding `text` over `path` (in the test's own mount namespace). */
static int mount_text(const char *text, const char *path)
{
    char tmp[] = "/tmp/asyncshim-etc-XXXXXX";
    int fd = mkstemp(tmp);
    size_t n = strlen(text);
    int wrote = fd >= 0 && write(fd, text, n) == (ssize_t)n;
    close(fd);
    int mounted = wrote && mount(tmp, path, NULL, MS_BIND, NULL) == 0;
    unlink(tmp);
    return mounted;
}

#include <sys/wait.h>

/* Ends the DNS server child `pid`, and returns the test's exit status. */
static __attribute__((unused)) int stop_dns_server(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return test_exit_status();
}

/* Sets up the namespace (see above; `dns_only`: hosts are looked up in DNS alone) and returns the DNS
 * server's socket, bound to 127.0.0.1:53 (-1 if that failed). */
static __attribute__((unused)) int private_resolver(int dns_only)
{
    CHECK(lo_up(), "loopback up in the test's own network namespace");
    CHECK(mount_text("nameserver 127.0.0.1\noptions timeout:30 attempts:1\n", "/etc/resolv.conf"),
          "private resolv.conf naming 127.0.0.1 in the test's own mount namespace");
    if (dns_only)
        CHECK(mount_text("hosts: dns\nservices: files\n", "/etc/nsswitch.conf"), "private nsswitch.conf");
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(53) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (!CHECK(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "DNS server bound to 127.0.0.1:53")) {
        close(fd);
        return -1;
    }
    return fd;
}

/* main's part: `inside` in the program run again with the argument --inside, in new network and mount
 * namespaces (they are per OS thread and must be entered before any thread exists). */
static __attribute__((unused)) int private_network_main(int argc, char **argv, int (*inside)(void))
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

/* The question of DNS query `q` (`qlen` bytes): its name as dotted text in `name` and its type in `qtype`.
 * The answer `r` starts as the query's header and question, flagged as a response without records.
 * Returns the answer's length so far, or -1 for a query that is not one. */
static __attribute__((unused)) int dns_question(const unsigned char *q, int qlen, char *name, size_t size, int *qtype,
                                                unsigned char *r)
{
    if (qlen < 17)
        return -1;
    int at = 12, nl = 0;
    while (at < qlen && q[at] != 0) {
        int l = q[at++];
        if (at + l > qlen || nl + l + 2 > (int)size)
            return -1;
        if (nl)
            name[nl++] = '.';
        memcpy(name + nl, q + at, l);
        nl += l;
        at += l;
    }
    name[nl] = 0;
    at++; /* the root label */
    if (at + 4 > qlen)
        return -1;
    *qtype = q[at] << 8 | q[at + 1];
    int qend = at + 4;
    memcpy(r, q, qend);
    r[2] = 0x80 | (q[2] & 0x01); /* QR, keep RD */
    r[3] = 0x80;                 /* RA, rcode 0 */
    r[6] = r[7] = r[8] = r[9] = r[10] = r[11] = 0;
    return qend;
}

/* Answers waiting for their time. */
#define DNS_QUEUED 4096
struct dns_queue {
    int n;
    struct {
        int64_t due;
        struct sockaddr_in to;
        unsigned char msg[512];
        int len;
    } a[DNS_QUEUED];
};

/* Sends the queued answers whose time came; returns the poll timeout (ms) until the next one (at most 100). */
static __attribute__((unused)) int dns_send_due(int fd, struct dns_queue *d)
{
    int64_t now = mono_ns();
    int timeout = 100;
    for (int i = 0; i < d->n;) {
        if (d->a[i].due <= now) {
            sendto(fd, d->a[i].msg, d->a[i].len, 0, (struct sockaddr *)&d->a[i].to, sizeof d->a[i].to);
            d->a[i] = d->a[--d->n];
            continue;
        }
        int ms = (int)((d->a[i].due - now) / 1000000) + 1;
        if (ms < timeout)
            timeout = ms;
        i++;
    }
    return timeout;
}

/* Receives a query on `fd` and queues the answer `answer` makes of it (its length, -1 for none) to go out
 * `delay_ms` later. Returns 1 if an answer was queued. */
static __attribute__((unused)) int dns_take_query(int fd, struct dns_queue *d,
                                                  int (*answer)(const unsigned char *q, int qlen, unsigned char *r),
                                                  int delay_ms)
{
    unsigned char q[512];
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    int n = (int)recvfrom(fd, q, sizeof q, 0, (struct sockaddr *)&from, &fl);
    if (n <= 0 || d->n == DNS_QUEUED)
        return 0;
    int len = answer(q, n, d->a[d->n].msg);
    if (len < 0)
        return 0;
    d->a[d->n].len = len;
    d->a[d->n].to = from;
    d->a[d->n].due = mono_ns() + delay_ms * 1000000LL;
    d->n++;
    return 1;
}

#endif
