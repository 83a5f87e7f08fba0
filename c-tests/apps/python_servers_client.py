# Client side of python_servers.sh, always run natively (the clients are the server's peers).
#   python3 python_servers_client.py http PORT DOCROOT SERVER_PID NCLIENTS
#   python3 python_servers_client.py echo PORT SERVER_PID NCLIENTS
# NCLIENTS threads each keep one connection open for all their requests (keep-alive). Once every client
# has been served once, all of them wait at a barrier while the server's OS thread count is read: natively
# there is a thread per connection (>= NCLIENTS), under the shim at most workers + 8. Only deterministic
# results go to stdout; measurements go to stderr.
import hashlib
import http.client
import os
import socket
import sys
import threading
import time


def shim_workers():
    env = os.environ.get("SHIM_ENV", "")
    if not env:
        return 0
    for word in env.split():
        if word.startswith("ASYNCSHIM_WORKERS="):
            return int(word.split("=", 1)[1])
    return os.cpu_count()


def os_threads(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return -1


class Run:
    def __init__(self, nclients, server_pid):
        self.n = nclients
        self.pid = server_pid
        self.lock = threading.Lock()
        self.ok = 0
        self.bad = []
        self.gate1 = threading.Barrier(nclients + 1, timeout=30)
        self.gate2 = threading.Barrier(nclients + 1, timeout=30)

    def good(self, k=1):
        with self.lock:
            self.ok += k

    def fail(self, what):
        with self.lock:
            self.bad.append(what)

    def meet(self):
        """Client side of the two barriers around the thread-count measurement."""
        self.gate1.wait()
        self.gate2.wait()

    def measure(self):
        """Main side: wait until every client has been served once, count the server's threads."""
        try:
            self.gate1.wait()
        except threading.BrokenBarrierError:
            print("clients did not all connect", file=sys.stderr)
            self.gate2.abort()
            return None
        n = os_threads(self.pid)
        self.gate2.wait()
        return n

    def bound(self, threads):
        w = shim_workers()
        print("server OS threads with %d clients connected: %s (shim workers: %d)"
              % (self.n, threads, w), file=sys.stderr)
        if threads is None:
            return False
        if w == 0:
            return threads >= self.n
        return threads <= w + 8


def http_client(run, cid, port, files, expect, listing, connect_gate):
    conn = None
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        names = sorted(files)
        plan = [names[(cid + k) % len(names)] for k in range(4)]
        local = None

        def get(path):
            conn.request("GET", path, headers={"X-Client": str(cid)})
            r = conn.getresponse()
            return r.status, r.getheader("Content-Type"), r.read()

        # First request with at most a few connections not yet accepted: http.server listens with a
        # backlog of 5, beyond which the kernel drops SYNs and the client retries only after a second.
        with connect_gate:
            status, ctype, body = get("/" + plan[0])
            local = conn.sock.getsockname()
        if status == 200 and body == expect[plan[0]]:
            run.good()
        else:
            run.fail("client %d: %s -> %s (%d bytes)" % (cid, plan[0], status, len(body)))
        run.meet()
        for name in plan[1:]:
            status, ctype, body = get("/" + name)
            if status == 200 and body == expect[name] and conn.sock.getsockname() == local:
                run.good()
            else:
                run.fail("client %d: %s -> %s (%d bytes)" % (cid, name, status, len(body)))
        status, ctype, body = get("/")
        if status == 200 and ctype.startswith("text/html") and hashlib.sha256(body).hexdigest() == listing \
                and conn.sock.getsockname() == local:
            run.good()
        else:
            run.fail("client %d: listing -> %s" % (cid, status))
        # http.server answers errors with "Connection: close".
        status, ctype, body = get("/missing-%d" % cid)
        if status == 404 and b"File not found" in body:
            run.good()
        else:
            run.fail("client %d: missing -> %s" % (cid, status))
    except Exception as e:  # noqa: BLE001 - every failure is counted
        run.fail("client %d: %r" % (cid, e))
        try:
            run.gate1.abort()
        except Exception:
            pass
    finally:
        if conn is not None:
            conn.close()


def main_http(port, docroot, pid, n):
    files = {}
    for name in os.listdir(docroot):
        with open(os.path.join(docroot, name), "rb") as f:
            files[name] = f.read()
    # Expected listing: fetched once before the load, checked for every file name.
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/")
    r = c.getresponse()
    body = r.read()
    c.close()
    listed = all(("href=\"%s\"" % name).encode() in body for name in files)
    print("http: listing status %d, lists every file: %s" % (r.status, listed))
    listing = hashlib.sha256(body).hexdigest()
    run = Run(n, pid)
    gate = threading.Semaphore(3)
    t0 = time.monotonic()
    threads = [threading.Thread(target=http_client, args=(run, i, port, files, files, listing, gate))
               for i in range(n)]
    for t in threads:
        t.start()
    tc = run.measure()
    for t in threads:
        t.join()
    print("http: %d clients, correct responses %d/%d" % (n, run.ok, n * 6))
    print("threads bounded: %s" % ("yes" if run.bound(tc) else "no"))
    for b in run.bad[:10]:
        print("  " + b)
    print("http load took %.2f s" % (time.monotonic() - t0), file=sys.stderr)


def payload(cid, k):
    size = [0, 1, 10, 100, 1000, 65536, 150000][(cid * 7 + k) % 7] if k % 5 == 0 else (cid * 31 + k * 17) % 300
    base = b"%d:%d:" % (cid, k)
    data = (base * (size // len(base) + 1))[:size]
    return data.replace(b"\n", b"_")


def recv_line(f):
    line = f.readline()
    if not line.endswith(b"\n"):
        raise EOFError("connection closed")
    return line[:-1]


def echo_client(run, cid, port, lines):
    sock = None
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        f = sock.makefile("rb")
        # One line first, then the barrier (every connection is open and served once).
        p = payload(cid, 0)
        sock.sendall(b"ECHO " + p + b"\n")
        if recv_line(f) == b"%d %s" % (len(p), p[::-1]):
            run.good()
        else:
            run.fail("client %d line 0" % cid)
        run.meet()
        # Lock-step lines, some large (partial reads and writes on the server side)...
        half = lines // 2
        for k in range(1, half):
            p = payload(cid, k)
            sock.sendall(b"ECHO " + p + b"\n")
            if recv_line(f) == b"%d %s" % (len(p), p[::-1]):
                run.good()
            else:
                run.fail("client %d line %d" % (cid, k))
        # ...then small lines pipelined in one write.
        batch = [payload(cid, k)[:200] for k in range(half, lines)]
        sock.sendall(b"".join(b"ECHO " + p + b"\n" for p in batch))
        for k, p in zip(range(half, lines), batch):
            if recv_line(f) == b"%d %s" % (len(p), p[::-1]):
                run.good()
            else:
                run.fail("client %d line %d" % (cid, k))
        f.close()
    except Exception as e:  # noqa: BLE001
        run.fail("client %d: %r" % (cid, e))
        try:
            run.gate1.abort()
        except Exception:
            pass
    finally:
        if sock is not None:
            sock.close()


def main_echo(port, pid, n):
    lines = 20
    run = Run(n, pid)
    t0 = time.monotonic()
    threads = [threading.Thread(target=echo_client, args=(run, i, port, lines)) for i in range(n)]
    for t in threads:
        t.start()
    tc = run.measure()
    for t in threads:
        t.join()
    print("echo: %d clients, correct responses %d/%d" % (n, run.ok, n * lines))
    print("threads bounded: %s" % ("yes" if run.bound(tc) else "no"))
    for b in run.bad[:10]:
        print("  " + b)
    print("echo load took %.2f s" % (time.monotonic() - t0), file=sys.stderr)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        f = s.makefile("rb")
        s.sendall(b"STATS\nBOGUS\nSHUTDOWN\n")
        print("echo: stats %s" % recv_line(f).decode())
        print("echo: bogus -> %s" % recv_line(f).decode())
        print("echo: shutdown -> %s" % recv_line(f).decode())
        f.close()


def main():
    kind = sys.argv[1]
    if kind == "http":
        main_http(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        main_echo(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))


main()
