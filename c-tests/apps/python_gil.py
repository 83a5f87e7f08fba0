# CPU-bound CPython threads contending for the GIL, next to I/O threads (run by python_gil.sh).
# stdout: only results (sums, counts, yes/no of bounds); stderr: timings and the GIL hand-off rate.
#
# 1. Fixed work: 4 CPU threads (pure Python arithmetic, each counting how often the GIL moved to it from
#    another thread) + 2 socketpair ping-pong threads + a sleeping heartbeat thread. Sums checked.
# 2. Stop flag: (a) alone, (b) with I/O: 2 threads spin `while not stop.is_set()` until main, sleeping meanwhile, sets the flag;
#    an I/O thread must make progress while they spin. A runtime that never takes the worker back from
#    a spinning thread never wakes main: the script then hangs (python_gil.sh bounds it with timeout).
import socket
import sys
import threading
import time

failures = 0


def check(cond, name, detail=""):
    global failures
    print("%s: %s" % (name, "yes" if cond else "NO"))
    if not cond:
        failures += 1
        print("%s: FAILED %s" % (name, detail), file=sys.stderr)
    sys.stdout.flush()


handoff = {"last": None, "switches": 0}


def cpu(i, n, out):
    s = 0
    h = handoff
    for k in range(n):
        s += (k * k + i) % 1009
        if k & 255 == 0 and h["last"] != i:
            h["last"] = i
            h["switches"] += 1
    out[i] = s


def pingpong(i, rounds, out):
    a, b = socket.socketpair()
    a.settimeout(30)
    b.settimeout(30)

    def echo():
        for _ in range(rounds):
            b.sendall(b.recv(64)[::-1])
    t = threading.Thread(target=echo)
    t.start()
    total = 0
    for k in range(rounds):
        msg = b"%d-%d" % (i, k)
        a.sendall(msg)
        r = a.recv(64)
        total += r == msg[::-1]
    t.join()
    a.close()
    b.close()
    out[i] = total


def heartbeat(beats, out, key):
    t0 = time.monotonic()
    n = 0
    for _ in range(beats):
        time.sleep(0.01)
        n += 1
    out[key] = (n, time.monotonic() - t0)


def part1():
    N = 400_000
    cpu_out = {}
    io_out = {}
    hb = {}
    t0 = time.monotonic()
    ts = [threading.Thread(target=cpu, args=(i, N, cpu_out)) for i in range(4)]
    ts += [threading.Thread(target=pingpong, args=(i, 300, io_out)) for i in range(2)]
    ts.append(threading.Thread(target=heartbeat, args=(30, hb, "hb")))
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.monotonic() - t0
    expect = [sum((k * k + i) % 1009 for k in range(N)) for i in range(4)]
    print("cpu sums: %s" % [cpu_out.get(i) for i in range(4)])
    check([cpu_out.get(i) for i in range(4)] == expect, "cpu sums correct")
    print("ping-pong round trips: %s" % [io_out.get(i) for i in range(2)])
    print("heartbeats: %d" % hb["hb"][0])
    check(dt < 30, "part 1 finished in bounded time", "%.2f s" % dt)
    print("part 1: %.2f s, heartbeat 30 x 10 ms took %.3f s, GIL moved between CPU threads %d times (%.0f/s)"
          % (dt, hb["hb"][1], handoff["switches"], handoff["switches"] / dt), file=sys.stderr)


def spin(i, stop, out):
    n = 0
    x = 0
    while not stop.is_set():
        x = (x * 31 + n) % 1000003
        n += 1
    out[i] = n


def part2():
    # 2a. Nothing but the spinners and a sleeping main thread.
    stop = threading.Event()
    spins = {}
    ts = [threading.Thread(target=spin, args=(i, stop, spins)) for i in range(2)]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    time.sleep(0.3)
    slept = time.monotonic() - t0
    stop.set()
    for t in ts:
        t.join(20)
    dt = time.monotonic() - t0
    print("part 2a: main slept 0.3 s in %.3f s, all done in %.3f s, spins %s" % (slept, dt, spins), file=sys.stderr)
    check(not any(t.is_alive() for t in ts) and all(spins.get(i, 0) > 0 for i in range(2)),
          "spinning threads saw the stop flag of a sleeping main")
    check(slept < 5, "main woke from its sleep while 2 threads spin", "%.3f s" % slept)
    # 2b. The same with an I/O thread that must make progress while they spin.
    stop = threading.Event()
    spins = {}
    io = {}
    ts = [threading.Thread(target=spin, args=(i, stop, spins)) for i in range(2)]
    io_t = threading.Thread(target=pingpong, args=(9, 50, io))
    t0 = time.monotonic()
    for t in ts:
        t.start()
    io_t.start()
    time.sleep(0.3)   # main sleeps while the spinners hold the GIL in turn
    slept = time.monotonic() - t0
    io_t.join(20)
    stop.set()
    for t in ts:
        t.join(20)
    dt = time.monotonic() - t0
    print("part 2b: main slept 0.3 s in %.3f s, all done in %.3f s, spins %s" % (slept, dt, spins), file=sys.stderr)
    check(not any(t.is_alive() for t in ts) and all(spins.get(i, 0) > 0 for i in range(2)),
          "spinning threads saw the stop flag (with I/O)")
    check(io.get(9) == 50, "I/O thread made progress next to spinning threads", str(io))
    check(slept < 5, "main woke from its sleep while threads spin (with I/O)", "%.3f s" % slept)


t0 = time.monotonic()
part1()
part2()
print("total %.2f s" % (time.monotonic() - t0), file=sys.stderr)
sys.exit(1 if failures else 0)
