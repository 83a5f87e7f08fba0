"""PyMySQL from 50 Python threads, each on its own connection; helper of python_pymysql.sh.

stdout must be identical natively and under the shim: per-thread results in thread order, error codes,
bound checks as ok/FAILED. Timings and thread counts go to stderr. Server from MARIADB_* environment."""
import ctypes
import hashlib
import os
import sys
import threading
import time

import pymysql

N = int(sys.argv[1]) if len(sys.argv) > 1 else 50
SLEEP = 0.4
cfg = dict(host=os.environ["MARIADB_HOST"], port=int(os.environ["MARIADB_PORT"]),
           user=os.environ["MARIADB_USER"], password=os.environ["MARIADB_PASSWORD"],
           database=os.environ["MARIADB_DB"])
failed = 0


def check(ok, what):
    global failed
    print(f"{what}: {'ok' if ok else 'FAILED'}")
    if not ok:
        failed += 1


def shim_active():
    try:
        return ctypes.CDLL(None).asyncshim_is_active() == 1
    except AttributeError:
        return False


def shim_workers():
    try:
        return ctypes.CDLL(None).asyncshim_worker_count()
    except AttributeError:
        return 0


def os_threads():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return -1


results = [None] * N
ready = threading.Barrier(N + 1)
in_sleep = [0]
count_lock = threading.Lock()


def worker(i):
    try:
        # Half the connections use a socket timeout (CPython then polls a non-blocking socket), half
        # plain blocking sockets.
        extra = {"read_timeout": 30} if i % 2 else {}
        conn = pymysql.connect(**cfg, **extra)
        with conn.cursor() as cur:
            cur.execute("CREATE TEMPORARY TABLE t (k INT PRIMARY KEY, v VARCHAR(40))")
            rows = [(k, f"t{i}-{k}-" + "z" * (k % 11)) for k in range(1, 101)]
            cur.executemany("INSERT INTO t (k, v) VALUES (%s, %s)", rows)
            cur.execute("SELECT k, v FROM t WHERE k > %s ORDER BY k", (10 + i,))
            got = cur.fetchall()
            digest = hashlib.sha256(repr(got).encode()).hexdigest()[:16]
            ok_rows = list(got) == [r for r in rows if r[0] > 10 + i]
            ready.wait(timeout=60)
            with count_lock:
                in_sleep[0] += 1
            cur.execute("SELECT SLEEP(%s), %s", (SLEEP, i))
            slept = cur.fetchone()
            results[i] = f"thread {i}: {len(got)} rows {'match' if ok_rows else 'DIFFER'} {digest}, " \
                         f"sleep row {slept[0]} {slept[1]}"
        conn.close()
    except Exception as e:  # reported as a differing line, never swallowed
        results[i] = f"thread {i}: {type(e).__name__} {e}"
        try:
            ready.abort()
        except Exception:
            pass


threads = [threading.Thread(target=worker, args=(i,)) for i in range(N)]
for t in threads:
    t.start()
ready.wait(timeout=60)
t0 = time.monotonic()
deadline = t0 + 10
while in_sleep[0] < N and time.monotonic() < deadline:
    time.sleep(0.005)
time.sleep(SLEEP / 3)
sampled = os_threads()
for t in threads:
    t.join(timeout=60)
phase = time.monotonic() - t0
for r in results:
    print(r)
print("threads still alive:", sum(t.is_alive() for t in threads))

try:
    pymysql.connect(**{**cfg, "password": "nope"})
    print("bad password: accepted")
except pymysql.err.OperationalError as e:
    print("bad password:", e.args[0], e.args[1])
conn = pymysql.connect(**cfg)
with conn.cursor() as cur:
    try:
        cur.execute("SELECT * FROM no_such_table")
    except pymysql.err.ProgrammingError as e:
        print("missing table:", e.args[0], e.args[1])
    cur.execute("SELECT SUM(seq), COUNT(*) FROM seq_1_to_200000")
    print("aggregate:", cur.fetchone())
conn.close()

print(f"sleep phase {phase:.3f} s, OS threads in flight {sampled}, shim {shim_active()}, "
      f"workers {shim_workers()}", file=sys.stderr)
# N sleeps of SLEEP seconds overlapped: serialised they would take N * SLEEP.
check(SLEEP <= phase < 2 * SLEEP + 1.5, "sleeps overlap")
if shim_active():
    check(0 < sampled <= shim_workers() + 8, "OS threads in flight bounded")
else:
    check(sampled >= N, "OS threads in flight bounded")
sys.exit(1 if failed else 0)
