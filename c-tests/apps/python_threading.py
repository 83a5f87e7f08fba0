# CPython threading under the shim (run by python_threading.sh). Every check prints "name: ok" or
# "name: FAILED" (details on stderr); timing measurements are checked against bounds here and printed
# only on stderr. Exit status 1 if any check failed.
import concurrent.futures
import os
import queue
import socket
import subprocess
import sys
import threading
import time

failures = 0
SLACK = float(os.environ.get("TIMING_SLACK", "0.5"))  # seconds of lateness tolerated (2 loaded cores)


def check(cond, name, detail=""):
    global failures
    if cond:
        print("%s: ok" % name)
    else:
        failures += 1
        print("%s: FAILED" % name)
        print("%s: FAILED %s" % (name, detail), file=sys.stderr)
    sys.stdout.flush()


def timed(name, expected, fn):
    """Run fn, check it took between expected and expected + SLACK seconds; returns fn's result."""
    t0 = time.monotonic()
    r = fn()
    dt = time.monotonic() - t0
    print("  %s took %.4f s (expected %.3f)" % (name, dt, expected), file=sys.stderr)
    check(expected - 0.002 <= dt <= expected + SLACK, name + " timing", "took %.4f s, expected %.3f" % (dt, expected))
    return r


def run_threads(n, target, *args):
    ts = [threading.Thread(target=target, args=(i,) + args) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    return all(not t.is_alive() for t in ts)


def t_lock():
    lock = threading.Lock()
    box = [0]

    def work(i):
        for _ in range(2000):
            with lock:
                v = box[0]
                if _ % 97 == 0:
                    time.sleep(0)  # give the GIL away while holding the lock
                box[0] = v + 1
    done = run_threads(16, work)
    check(done and box[0] == 32000, "Lock: 16 threads x 2000 increments", str(box[0]))
    check(lock.acquire(timeout=0.1) and not lock.acquire(blocking=False), "Lock: acquire/non-blocking")
    r = timed("Lock: acquire(timeout=0.2) on a held lock", 0.2, lambda: lock.acquire(timeout=0.2))
    check(r is False, "Lock: timed out acquire returns False")
    lock.release()
    try:
        lock.release()
        check(False, "Lock: release of unlocked raises RuntimeError")
    except RuntimeError:
        check(True, "Lock: release of unlocked raises RuntimeError")


def t_rlock():
    rl = threading.RLock()
    order = []

    def work(i):
        for _ in range(200):
            with rl:
                with rl:
                    with rl:
                        order.append(i)
    done = run_threads(8, work)
    check(done and len(order) == 1600 and all(order.count(i) == 200 for i in range(8)),
          "RLock: nested acquire in 8 threads")
    rl.acquire()
    res = []
    t = threading.Thread(target=lambda: res.append(rl.acquire(timeout=0.1)))
    t.start()
    t.join()
    rl.release()
    check(res == [False], "RLock: other thread cannot take a held RLock")
    try:
        rl.release()
        check(False, "RLock: release of unowned raises RuntimeError")
    except RuntimeError:
        check(True, "RLock: release of unowned raises RuntimeError")


def t_condition():
    cond = threading.Condition()
    items = []
    got = []

    def consumer(i):
        while True:
            with cond:
                cond.wait_for(lambda: items, timeout=10)
                if not items:
                    return
                x = items.pop(0)
            if x is None:
                return
            got.append(x)

    cs = [threading.Thread(target=consumer, args=(i,)) for i in range(6)]
    for c in cs:
        c.start()
    for k in range(600):
        with cond:
            items.append(k)
            cond.notify()
        if k % 50 == 0:
            time.sleep(0.001)
    with cond:
        items.extend([None] * 6)
        cond.notify_all()
    for c in cs:
        c.join(30)
    check(sorted(got) == list(range(600)), "Condition: 600 items to 6 consumers", "%d items" % len(got))
    with cond:
        r = timed("Condition: wait(0.15) without notify", 0.15, lambda: cond.wait(0.15))
    check(r is False, "Condition: timed out wait returns False")
    # notify_all wakes every waiter
    woke = []
    flag = [False]

    def waiter(i):
        with cond:
            cond.wait_for(lambda: flag[0], timeout=10)
            woke.append(i)
    ws = [threading.Thread(target=waiter, args=(i,)) for i in range(20)]
    for w in ws:
        w.start()
    time.sleep(0.05)
    with cond:
        flag[0] = True
        cond.notify_all()
    for w in ws:
        w.join(10)
    check(sorted(woke) == list(range(20)), "Condition: notify_all wakes 20 waiters")


def t_event():
    ev = threading.Event()
    res = []

    def waiter(i):
        res.append(ev.wait(10))
    ts = [threading.Thread(target=waiter, args=(i,)) for i in range(30)]
    for t in ts:
        t.start()
    time.sleep(0.05)
    ev.set()
    for t in ts:
        t.join(10)
    check(res == [True] * 30, "Event: set wakes 30 waiters")
    ev.clear()
    r = timed("Event: wait(0.2) unset", 0.2, lambda: ev.wait(0.2))
    check(r is False, "Event: timed out wait returns False")


def t_semaphores():
    sem = threading.Semaphore(3)
    lock = threading.Lock()
    cur = [0, 0]

    def work(i):
        for _ in range(5):
            with sem:
                with lock:
                    cur[0] += 1
                    cur[1] = max(cur[1], cur[0])
                time.sleep(0.005)
                with lock:
                    cur[0] -= 1
    done = run_threads(12, work)
    check(done and cur[1] == 3, "Semaphore(3): at most 3 holders, 3 reached", str(cur[1]))
    s0 = threading.Semaphore(0)
    r = timed("Semaphore: acquire(timeout=0.1) at 0", 0.1, lambda: s0.acquire(timeout=0.1))
    check(r is False, "Semaphore: timed out acquire returns False")
    bs = threading.BoundedSemaphore(2)
    bs.acquire()
    bs.release()
    try:
        bs.release()
        check(False, "BoundedSemaphore: over-release raises ValueError")
    except ValueError:
        check(True, "BoundedSemaphore: over-release raises ValueError")


def t_barrier():
    n = 10
    b = threading.Barrier(n)
    idx = []
    rounds = []

    def work(i):
        for r in range(5):
            k = b.wait(10)
            idx.append((r, k))
        rounds.append(i)
    done = run_threads(n, work)
    ok = done and all(sorted(k for (r, k) in idx if r == rr) == list(range(n)) for rr in range(5))
    check(ok and len(rounds) == n, "Barrier: 10 threads x 5 rounds, distinct indices")
    b2 = threading.Barrier(3)
    errs = []

    def waiter(i):
        try:
            b2.wait(10)
        except threading.BrokenBarrierError:
            errs.append(i)
    ts = [threading.Thread(target=waiter, args=(i,)) for i in range(2)]
    for t in ts:
        t.start()
    time.sleep(0.05)
    b2.abort()
    for t in ts:
        t.join(10)
    check(sorted(errs) == [0, 1], "Barrier: abort breaks waiters")
    b3 = threading.Barrier(2)

    def lone():
        try:
            b3.wait(0.15)
            return "passed"
        except threading.BrokenBarrierError:
            return "broken"
    check(timed("Barrier: wait(0.15) alone", 0.15, lone) == "broken", "Barrier: timeout breaks it")


def t_queue():
    q = queue.Queue(maxsize=10)
    out = queue.Queue()
    NP, NC, PER = 5, 4, 400

    def producer(i):
        for k in range(PER):
            q.put(i * PER + k)

    def consumer(i):
        s = 0
        c = 0
        while True:
            x = q.get()
            q.task_done()
            if x is None:
                break
            s += x
            c += 1
        out.put((s, c))
    cs = [threading.Thread(target=consumer, args=(i,)) for i in range(NC)]
    ps = [threading.Thread(target=producer, args=(i,)) for i in range(NP)]
    for t in cs + ps:
        t.start()
    for t in ps:
        t.join(30)
    for _ in range(NC):
        q.put(None)
    q.join()
    for t in cs:
        t.join(30)
    total = sum(out.get()[0] for _ in range(NC))
    n = NP * PER
    check(total == n * (n - 1) // 2, "Queue(maxsize=10): 5 producers, 4 consumers, sum", str(total))
    e = queue.Queue()

    def get_empty():
        try:
            e.get(timeout=0.2)
            return "item"
        except queue.Empty:
            return "empty"
    check(timed("Queue: get(timeout=0.2) empty", 0.2, get_empty) == "empty", "Queue: get timeout raises Empty")
    f = queue.Queue(1)
    f.put(1)

    def put_full():
        try:
            f.put(2, timeout=0.1)
            return "put"
        except queue.Full:
            return "full"
    check(timed("Queue: put(timeout=0.1) full", 0.1, put_full) == "full", "Queue: put timeout raises Full")
    lq = queue.LifoQueue()
    pq = queue.PriorityQueue()
    for x in (3, 1, 2):
        lq.put(x)
        pq.put(x)
    check([lq.get() for _ in range(3)] == [2, 1, 3] and [pq.get() for _ in range(3)] == [1, 2, 3],
          "LifoQueue/PriorityQueue order")


def t_sleep():
    for d in (0.001, 0.01, 0.05, 0.2):
        timed("time.sleep(%g)" % d, d, lambda: time.sleep(d))
    res = []

    def sleeper(i):
        t0 = time.monotonic()
        time.sleep(0.3)
        res.append(time.monotonic() - t0)
    t0 = time.monotonic()
    done = run_threads(200, sleeper)
    total = time.monotonic() - t0
    print("  200 threads sleeping 0.3 s: %.3f s, min %.4f max %.4f" % (total, min(res), max(res)), file=sys.stderr)
    check(done and len(res) == 200 and min(res) >= 0.298, "time.sleep(0.3) in 200 threads: none early")
    check(total <= 0.3 + 1.5, "time.sleep(0.3) in 200 threads: concurrent", "%.3f s" % total)


def t_sockets():
    a, b = socket.socketpair()
    a.settimeout(0.2)

    def recv():
        try:
            a.recv(10)
            return "data"
        except socket.timeout as e:
            return "timeout:%s:%s" % (type(e).__name__, e)
    check(timed("socketpair recv timeout 0.2", 0.2, recv) == "timeout:TimeoutError:timed out",
          "socketpair: recv with settimeout raises TimeoutError('timed out')")
    # data arriving from another thread before the timeout
    threading.Timer(0.05, lambda: b.sendall(b"hello")).start()
    a.settimeout(5)
    check(a.recv(10) == b"hello", "socketpair: recv gets data sent 50 ms later")
    # sendall into a full buffer times out
    a.settimeout(0.2)

    def fill():
        try:
            a.sendall(b"x" * (8 << 20))
            return "sent"
        except socket.timeout:
            return "timeout"
    check(timed("socketpair sendall timeout 0.2", 0.2, fill) == "timeout", "socketpair: sendall to a full peer times out")
    a.close()
    b.close()
    # accept timeout, then a real connection with makefile I/O
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.15)

    def acc():
        try:
            srv.accept()
            return "accepted"
        except TimeoutError:
            return "timeout"
    check(timed("accept timeout 0.15", 0.15, acc) == "timeout", "listening socket: accept times out")
    port = srv.getsockname()[1]
    srv.settimeout(10)
    total = []

    def serve():
        c, _ = srv.accept()
        with c, c.makefile("rwb") as f:
            for line in f:
                f.write(b"%d\n" % (int(line) * 2))
                f.flush()
    st = threading.Thread(target=serve)
    st.start()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c, c.makefile("rwb") as f:
        for k in range(300):
            f.write(b"%d\n" % k)
            f.flush()
            total.append(int(f.readline()))
    st.join(10)
    check(sum(total) == 300 * 299, "TCP: 300 request/response round trips through makefile")
    srv.close()
    # connection refused on a closed port
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    try:
        socket.create_connection(("127.0.0.1", p), timeout=5)
        check(False, "connect to a closed port: ConnectionRefusedError")
    except ConnectionRefusedError as e:
        check(e.errno == 111, "connect to a closed port: ConnectionRefusedError")


def t_subprocess():
    results = [None] * 20

    def run(i):
        p = subprocess.run(["/bin/sh", "-c", 'read x; echo "out $0 $x"; echo "err $0" >&2; sleep 0.1; exit $(($0 % 4))', str(i)],
                           input=b"in%d\n" % i, capture_output=True, timeout=30)
        results[i] = (p.returncode, p.stdout, p.stderr)
    t0 = time.monotonic()
    done = run_threads(20, run)
    dt = time.monotonic() - t0
    print("  20 concurrent subprocess.run: %.3f s" % dt, file=sys.stderr)
    ok = done and all(results[i] == (i % 4, b"out %d in%d\n" % (i, i), b"err %d\n" % i) for i in range(20))
    check(ok, "subprocess.run from 20 threads: output, stderr, exit codes", repr(results[:3]))
    p = subprocess.run(["sha256sum"], input=b"y" * (1 << 20), capture_output=True, timeout=30)
    print("sha256sum of 1 MiB of 'y' through a pipe: %s" % p.stdout.split()[0].decode())
    try:
        subprocess.run(["sleep", "5"], timeout=0.2)
        check(False, "subprocess.run timeout kills the child")
    except subprocess.TimeoutExpired:
        check(True, "subprocess.run timeout kills the child")
    with subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE) as p:
        out, _ = p.communicate(b"z" * 300000)
    check(out == b"z" * 300000 and p.returncode == 0, "Popen.communicate 300 kB through cat")


def t_timer():
    fired = []
    ev = threading.Event()
    t0 = time.monotonic()
    t = threading.Timer(0.1, lambda: (fired.append(time.monotonic() - t0), ev.set()))
    t.start()
    c = threading.Timer(0.05, lambda: fired.append("cancelled one fired"))
    c.start()
    c.cancel()
    ev.wait(5)
    t.join(5)
    c.join(5)
    print("  Timer(0.1) fired after %s" % fired, file=sys.stderr)
    check(len(fired) == 1 and 0.098 <= fired[0] <= 0.1 + SLACK, "threading.Timer fires once, cancel works")


def t_local():
    loc = threading.local()
    bad = []

    def work(i):
        loc.v = i
        loc.l = [i] * 3
        for _ in range(20):
            time.sleep(0.001)
            if loc.v != i or loc.l != [i] * 3:
                bad.append(i)
    done = run_threads(50, work)
    check(done and not bad and not hasattr(loc, "v"), "threading.local: 50 threads keep their own values")


def t_native_id():
    """threading.get_native_id() (the kernel tid, syscall(SYS_gettid)) is each thread's own; time.thread_time()
    (CLOCK_THREAD_CPUTIME_ID) counts each thread's own CPU time from zero."""
    ids = {}
    cpu = {}
    go = threading.Barrier(11)

    def work(i):
        go.wait(30)  # all 11 alive at once, so no tid can be a finished thread's
        ids[i] = threading.get_native_id()
        start = time.thread_time()
        n = 0
        while time.thread_time() - start < 0.02:
            n += 1
        cpu[i] = (start, time.thread_time())
        go.wait(30)
    done = run_threads(11, work)
    print("  native ids: %s" % sorted(ids.values()), file=sys.stderr)
    check(done and len(set(ids.values())) == 11, "threading.get_native_id() distinct in 11 threads")
    check(threading.get_native_id() == os.getpid(), "main thread's native id is the process id")
    starts = [s for s, _ in cpu.values()]
    print("  thread_time at start: max %.4f s; main's %.4f s" % (max(starts), time.thread_time()), file=sys.stderr)
    check(len(cpu) == 11 and all(e - s >= 0.02 for s, e in cpu.values()),
          "time.thread_time() advances with the thread's own work")


def t_executor():
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as ex:
        squares = list(ex.map(lambda x: (time.sleep(0.001 * (x % 5)), x * x)[1], range(200)))
        check(squares == [x * x for x in range(200)], "ThreadPoolExecutor.map keeps order")
        futs = [ex.submit(pow, 2, k) for k in range(64)]
        s = sum(f.result() for f in concurrent.futures.as_completed(futs))
        check(s == 2 ** 64 - 1, "ThreadPoolExecutor as_completed sum")

        def boom():
            raise KeyError("boom")
        try:
            ex.submit(boom).result(10)
            check(False, "ThreadPoolExecutor propagates exceptions")
        except KeyError as e:
            check(e.args == ("boom",), "ThreadPoolExecutor propagates exceptions")
        f = ex.submit(time.sleep, 0.4)
        try:
            f.result(timeout=0.1)
            check(False, "Future.result(timeout) raises TimeoutError")
        except concurrent.futures.TimeoutError:
            check(True, "Future.result(timeout) raises TimeoutError")


def main():
    t0 = time.monotonic()
    for t in (t_lock, t_rlock, t_condition, t_event, t_semaphores, t_barrier, t_queue, t_sleep, t_sockets,
              t_subprocess, t_timer, t_local, t_native_id, t_executor):
        t1 = time.monotonic()
        t()
        print("  %s: %.3f s" % (t.__name__, time.monotonic() - t1), file=sys.stderr)
    print("threads alive at the end: %d" % threading.active_count())
    print("total %.3f s" % (time.monotonic() - t0), file=sys.stderr)
    sys.exit(1 if failures else 0)


main()
