/* sync_cxx: the C++ standard library's synchronisation on top of the shim (C++17: the runner compiles
 * with plain `g++ -O2 -pthread`, g++ 12 defaults to C++17, so std::atomic<T>::wait/notify, latch,
 * barrier and counting_semaphore (C++20) are not available; raw futexes are tested by sync_futex.c).
 *  - std::mutex: 8 std::threads x 20,000 increments under std::lock_guard, std::this_thread::yield()
 *    inside every 1,000: exact and exclusive; std::recursive_mutex locked twice per iteration likewise;
 *  - std::scoped_lock of two mutexes taken in opposite orders by two threads x 20,000: no deadlock;
 *  - std::timed_mutex held by another thread: try_lock false; try_lock_for(100 ms) and try_lock_until
 *    (steady_clock and system_clock, +100 ms) false after at least 100 ms; try_lock_for(20 s) true once
 *    the holder lets go;
 *  - std::condition_variable: a queue of capacity 8, 4 producers and 8 consumers, 20,000 items, every
 *    item once (checksum); wait_for(100 ms) -> cv_status::timeout after at least 100 ms; wait_for with a
 *    false predicate -> false; wait_until (steady_clock and system_clock) -> timeout; notify_one before
 *    the deadline -> the predicate version returns true; notify_all wakes all of 50 waiters;
 *    std::condition_variable_any with a std::unique_lock<std::mutex> likewise times out and is notified;
 *  - std::shared_mutex: 6 readers and 3 writers keep a two-field record consistent; try_lock_shared is
 *    false while a writer holds it, try_lock false while a reader holds it; std::shared_timed_mutex
 *    try_lock_shared_for(100 ms) false while a writer holds it, try_lock_for(100 ms) false while a reader
 *    holds it;
 *  - std::call_once from 50 threads with an initialiser sleeping 200 ms: runs once, everyone waits;
 *  - std::promise/std::future: wait_for(50 ms) -> timeout, get() returns the value set after it;
 *    a std::shared_future waited on by 10 threads; std::async(std::launch::async) results.
 * asyncshim-test: timeout=60 */
#include "shim_probe.h"
#include "test_util.h"
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

static long ms_since(steady::time_point t0)
{
    return (long)std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0).count();
}

static bool at_least_100ms(steady::time_point t0)
{
    return steady::now() - t0 >= 99ms;
}

/* ---- mutexes ---- */

template <class M> static void counter_test(const char *label, int nested)
{
    M m;
    long counter = 0;
    std::atomic<int> inside{ 0 }, overlaps{ 0 };
    std::vector<std::thread> th;
    auto t0 = steady::now();
    for (int t = 0; t < 8; t++)
        th.emplace_back([&] {
            for (int i = 0; i < 20000; i++) {
                std::lock_guard<M> g(m);
                if (nested)
                    m.lock();
                if (++inside != 1)
                    ++overlaps;
                long v = counter;
                if (i % 1000 == 500)
                    std::this_thread::yield();
                std::atomic_signal_fence(std::memory_order_seq_cst);
                counter = v + 1;
                --inside;
                if (nested)
                    m.unlock();
            }
        });
    for (auto &t : th)
        t.join();
    fprintf(stderr, "%s: %ld in %ld ms, overlaps %d\n", label, counter, ms_since(t0), overlaps.load());
    char name[160];
    snprintf(name, sizeof name, "%s: 8 threads x 20000 increments with yields inside = 160000, exclusive", label);
    CHECK(counter == 160000 && overlaps == 0, name);
}

static void scoped_lock_test()
{
    std::mutex a, b;
    long n = 0;
    std::thread t1([&] {
        for (int i = 0; i < 20000; i++) {
            std::scoped_lock l(a, b);
            n++;
            if (i % 1000 == 0)
                std::this_thread::yield();
        }
    });
    std::thread t2([&] {
        for (int i = 0; i < 20000; i++) {
            std::scoped_lock l(b, a);
            n++;
            if (i % 1000 == 0)
                std::this_thread::yield();
        }
    });
    t1.join();
    t2.join();
    CHECK(n == 40000, "scoped_lock of two mutexes in opposite orders by two threads: no deadlock, 40000");
}

static void timed_mutex_test()
{
    std::timed_mutex m;
    std::atomic<int> held{ 0 }, release{ 0 }, released{ 0 };
    std::thread h([&] {
        m.lock();
        held = 1;
        while (!release)
            std::this_thread::sleep_for(2ms);
        std::this_thread::sleep_for(100ms);
        released = 1;
        m.unlock();
    });
    while (!held)
        std::this_thread::sleep_for(1ms);
    bool t = m.try_lock();
    auto t0 = steady::now();
    bool f = m.try_lock_for(100ms);
    bool f_ok = at_least_100ms(t0);
    t0 = steady::now();
    bool u = m.try_lock_until(steady::now() + 100ms);
    bool u_ok = at_least_100ms(t0);
    t0 = steady::now();
    bool s = m.try_lock_until(std::chrono::system_clock::now() + 100ms);
    bool s_ok = at_least_100ms(t0);
    printf("timed_mutex held elsewhere: try_lock %d, try_lock_for(100ms) %d, try_lock_until(steady) %d, "
           "try_lock_until(system) %d\n",
           t, f, u, s);
    CHECK(!t, "timed_mutex: try_lock while another thread holds it -> false");
    CHECK(!f && f_ok, "timed_mutex: try_lock_for(100ms) -> false after at least 100 ms");
    CHECK(!u && u_ok, "timed_mutex: try_lock_until(steady_clock + 100ms) -> false after at least 100 ms");
    CHECK(!s && s_ok, "timed_mutex: try_lock_until(system_clock + 100ms) -> false after at least 100 ms");
    release = 1;
    bool g = m.try_lock_for(20s);
    bool rel = released.load();
    if (g)
        m.unlock();
    h.join();
    CHECK(g && rel, "timed_mutex: try_lock_for(20s) -> true once the holder unlocks");
}

/* ---- condition variables ---- */

static void queue_test()
{
    std::mutex m;
    std::condition_variable not_empty, not_full;
    int q[8], head = 0, count = 0, producers_left = 4;
    const int per_producer = 5000;
    std::vector<unsigned char> seen(4 * per_producer + 1);
    std::atomic<long long> sum{ 0 };
    std::atomic<int> dups{ 0 }, total{ 0 };
    std::vector<std::thread> th;
    auto t0 = steady::now();
    for (int c = 0; c < 8; c++)
        th.emplace_back([&] {
            for (;;) {
                std::unique_lock<std::mutex> l(m);
                not_empty.wait(l, [&] { return count > 0 || producers_left == 0; });
                if (count == 0)
                    return;
                int v = q[head];
                head = (head + 1) % 8;
                count--;
                not_full.notify_one();
                l.unlock();
                if (seen[v]++)
                    ++dups;
                sum += v;
                ++total;
            }
        });
    for (int p = 0; p < 4; p++)
        th.emplace_back([&, p] {
            for (int i = 1; i <= per_producer; i++) {
                int v = p * per_producer + i;
                std::unique_lock<std::mutex> l(m);
                not_full.wait(l, [&] { return count < 8; });
                q[(head + count) % 8] = v;
                count++;
                not_empty.notify_one();
                l.unlock();
                if (i % 1000 == 0)
                    std::this_thread::yield();
            }
            std::lock_guard<std::mutex> l(m);
            if (--producers_left == 0)
                not_empty.notify_all();
        });
    for (auto &t : th)
        t.join();
    long long n = 4LL * per_producer;
    fprintf(stderr, "cv queue: %d items in %ld ms, dups %d\n", total.load(), ms_since(t0), dups.load());
    CHECK(total == n && dups == 0 && sum == n * (n + 1) / 2,
          "condition_variable queue: 4 producers, 8 consumers, 20000 items each consumed once");
}

static void cv_timeout_test()
{
    std::mutex m;
    std::condition_variable cv;
    std::unique_lock<std::mutex> l(m);
    auto t0 = steady::now();
    auto st = cv.wait_for(l, 100ms);
    bool a = st == std::cv_status::timeout && at_least_100ms(t0);
    t0 = steady::now();
    bool p = cv.wait_for(l, 100ms, [] { return false; });
    bool b = !p && at_least_100ms(t0);
    t0 = steady::now();
    auto st2 = cv.wait_until(l, steady::now() + 100ms);
    bool c = st2 == std::cv_status::timeout && at_least_100ms(t0);
    t0 = steady::now();
    auto st3 = cv.wait_until(l, std::chrono::system_clock::now() + 100ms);
    bool d = st3 == std::cv_status::timeout && at_least_100ms(t0);
    bool owned = l.owns_lock();
    l.unlock();
    CHECK(a, "condition_variable::wait_for(100ms) -> timeout after at least 100 ms");
    CHECK(b, "condition_variable::wait_for(100ms, false predicate) -> false after at least 100 ms");
    CHECK(c, "condition_variable::wait_until(steady_clock + 100ms) -> timeout");
    CHECK(d, "condition_variable::wait_until(system_clock + 100ms) -> timeout");
    CHECK(owned && m.try_lock(), "condition_variable: the lock is owned after the waits and free after unlock");
    m.unlock();

    /* notified before the deadline */
    bool flag = false;
    std::atomic<int> waiting{ 0 };
    bool got = false;
    std::thread w([&] {
        std::unique_lock<std::mutex> l2(m);
        waiting = 1;
        got = cv.wait_for(l2, 20s, [&] { return flag; });
    });
    while (!waiting)
        std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(100ms);
    {
        std::lock_guard<std::mutex> g(m);
        flag = true;
    }
    cv.notify_one();
    w.join();
    CHECK(got, "condition_variable::wait_for(20s, predicate) notified after 100 ms -> true");

    /* notify_all to 50 waiters */
    bool go = false;
    int nwaiting = 0, woken = 0;
    std::vector<std::thread> th;
    for (int i = 0; i < 50; i++)
        th.emplace_back([&] {
            std::unique_lock<std::mutex> l2(m);
            nwaiting++;
            cv.wait(l2, [&] { return go; });
            woken++;
        });
    for (;;) {
        std::unique_lock<std::mutex> l2(m);
        if (nwaiting == 50)
            break;
        l2.unlock();
        std::this_thread::sleep_for(2ms);
    }
    {
        std::lock_guard<std::mutex> g(m);
        go = true;
    }
    cv.notify_all();
    for (auto &t : th)
        t.join();
    CHECK(woken == 50, "condition_variable::notify_all wakes all of 50 waiters");

    /* condition_variable_any */
    std::condition_variable_any cva;
    std::unique_lock<std::mutex> l3(m);
    t0 = steady::now();
    auto st4 = cva.wait_for(l3, 100ms);
    CHECK(st4 == std::cv_status::timeout && at_least_100ms(t0),
          "condition_variable_any::wait_for(100ms) -> timeout after at least 100 ms");
    l3.unlock();
    flag = false;
    waiting = 0;
    got = false;
    std::thread w2([&] {
        std::unique_lock<std::mutex> l4(m);
        waiting = 1;
        got = cva.wait_for(l4, 20s, [&] { return flag; });
    });
    while (!waiting)
        std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(100ms);
    {
        std::lock_guard<std::mutex> g(m);
        flag = true;
    }
    cva.notify_all();
    w2.join();
    CHECK(got, "condition_variable_any::wait_for(20s, predicate) notified after 100 ms -> true");
}

/* ---- shared mutexes ---- */

static void shared_mutex_test()
{
    std::shared_mutex sm;
    std::atomic<long> a{ 0 }, b{ 0 };
    std::atomic<int> readers{ 0 }, writers{ 0 }, violations{ 0 }, torn{ 0 }, max_readers{ 0 };
    long writes = 0;
    std::vector<std::thread> th;
    for (int r = 0; r < 6; r++)
        th.emplace_back([&] {
            for (int i = 0; i < 10000; i++) {
                std::shared_lock<std::shared_mutex> l(sm);
                int n = ++readers;
                int mx = max_readers.load();
                while (n > mx && !max_readers.compare_exchange_weak(mx, n))
                    ;
                if (writers)
                    ++violations;
                long x = a.load(std::memory_order_relaxed);
                if (i % 500 == 0)
                    std::this_thread::yield();
                if (x != b.load(std::memory_order_relaxed))
                    ++torn;
                --readers;
            }
        });
    for (int w = 0; w < 3; w++)
        th.emplace_back([&] {
            for (int i = 0; i < 3000; i++) {
                std::unique_lock<std::shared_mutex> l(sm);
                if (++writers != 1 || readers)
                    ++violations;
                long x = ++writes;
                a.store(x, std::memory_order_relaxed);
                if (i % 300 == 0)
                    std::this_thread::yield();
                b.store(x, std::memory_order_relaxed);
                --writers;
            }
        });
    for (auto &t : th)
        t.join();
    fprintf(stderr, "shared_mutex: writes %ld, violations %d, torn %d, max readers at once %d\n", writes,
            violations.load(), torn.load(), max_readers.load());
    CHECK(violations == 0 && torn == 0 && writes == 9000 && a == 9000 && b == 9000,
          "shared_mutex: 6 readers, 3 writers: exclusive writers, consistent reads");

    /* try_lock_shared / try_lock while held elsewhere */
    std::atomic<int> held{ 0 }, release{ 0 };
    auto hold = [&](bool exclusive) {
        return std::thread([&, exclusive] {
            if (exclusive)
                sm.lock();
            else
                sm.lock_shared();
            held = 1;
            while (!release)
                std::this_thread::sleep_for(2ms);
            if (exclusive)
                sm.unlock();
            else
                sm.unlock_shared();
        });
    };
    held = release = 0;
    std::thread h = hold(true);
    while (!held)
        std::this_thread::sleep_for(1ms);
    bool ts = sm.try_lock_shared(), tx = sm.try_lock();
    release = 1;
    h.join();
    CHECK(!ts && !tx, "shared_mutex held exclusively elsewhere: try_lock_shared and try_lock -> false");
    held = release = 0;
    h = hold(false);
    while (!held)
        std::this_thread::sleep_for(1ms);
    bool ts2 = sm.try_lock_shared();
    if (ts2)
        sm.unlock_shared();
    bool tx2 = sm.try_lock();
    release = 1;
    h.join();
    CHECK(ts2 && !tx2, "shared_mutex held shared elsewhere: try_lock_shared -> true, try_lock -> false");

    std::shared_timed_mutex stm;
    held = release = 0;
    std::thread h2([&] {
        stm.lock();
        held = 1;
        while (!release)
            std::this_thread::sleep_for(2ms);
        stm.unlock();
    });
    while (!held)
        std::this_thread::sleep_for(1ms);
    auto t0 = steady::now();
    bool r1 = stm.try_lock_shared_for(100ms);
    bool ok1 = at_least_100ms(t0);
    release = 1;
    h2.join();
    held = release = 0;
    std::thread h3([&] {
        stm.lock_shared();
        held = 1;
        while (!release)
            std::this_thread::sleep_for(2ms);
        stm.unlock_shared();
    });
    while (!held)
        std::this_thread::sleep_for(1ms);
    t0 = steady::now();
    bool r2 = stm.try_lock_for(100ms);
    bool ok2 = at_least_100ms(t0);
    release = 1;
    h3.join();
    bool r3 = stm.try_lock_for(100ms);
    if (r3)
        stm.unlock();
    CHECK(!r1 && ok1, "shared_timed_mutex: try_lock_shared_for(100ms) while a writer holds it -> false");
    CHECK(!r2 && ok2, "shared_timed_mutex: try_lock_for(100ms) while a reader holds it -> false");
    CHECK(r3, "shared_timed_mutex: try_lock_for once free -> true");
}

/* ---- call_once ---- */

static void call_once_test()
{
    std::once_flag flag;
    std::atomic<int> runs{ 0 }, done{ 0 }, early{ 0 }, gate{ 0 };
    std::vector<std::thread> th;
    for (int i = 0; i < 50; i++)
        th.emplace_back([&] {
            while (!gate)
                std::this_thread::sleep_for(2ms);
            std::call_once(flag, [&] {
                ++runs;
                std::this_thread::sleep_for(200ms);
                done = 1;
            });
            if (!done)
                ++early;
        });
    std::this_thread::sleep_for(20ms);
    gate = 1;
    for (auto &t : th)
        t.join();
    printf("call_once: initialiser runs: %d\n", runs.load());
    CHECK(runs == 1 && early == 0, "call_once from 50 threads: a 200 ms initialiser runs once, everyone waits");
}

/* ---- futures ---- */

static void future_test()
{
    std::promise<int> p;
    std::future<int> f = p.get_future();
    // The setter waits until the timed wait is over (not a fixed 200 ms, which a loaded machine can
    // outlast between the waiter's timeout and its return), then sets the value a little later.
    std::promise<void> timed_wait_over;
    std::thread setter([&] {
        timed_wait_over.get_future().wait();
        std::this_thread::sleep_for(100ms);
        p.set_value(42);
    });
    auto t0 = steady::now();
    auto st = f.wait_for(50ms);
    bool timed_ok = st == std::future_status::timeout && steady::now() - t0 >= 49ms;
    timed_wait_over.set_value();
    int v = f.get();
    setter.join();
    CHECK(timed_ok, "future::wait_for(50ms) before the value is set -> timeout");
    CHECK(v == 42, "future::get returns the value set later");

    std::promise<int> p2;
    std::shared_future<int> sf = p2.get_future().share();
    std::atomic<int> ready{ 0 }, sum{ 0 };
    std::vector<std::thread> th;
    for (int i = 0; i < 10; i++)
        th.emplace_back([&] {
            ++ready;
            sum += sf.get();
        });
    while (ready < 10)
        std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(100ms);
    p2.set_value(7);
    for (auto &t : th)
        t.join();
    CHECK(sum == 70, "shared_future: 10 waiting threads all get the value");

    std::vector<std::future<long>> fs;
    for (int i = 0; i < 20; i++)
        fs.push_back(std::async(std::launch::async, [i] {
            std::this_thread::sleep_for(10ms);
            long s = 0;
            for (int k = 0; k <= i; k++)
                s += k;
            return s;
        }));
    long total = 0;
    for (auto &x : fs)
        total += x.get();
    CHECK(total == 1330, "std::async x 20: results");
}

int main()
{
    test_init();
    fprintf(stderr, "under shim: %d, workers %d\n", under_shim(), shim_workers());
    counter_test<std::mutex>("std::mutex", 0);
    counter_test<std::recursive_mutex>("std::recursive_mutex", 1);
    scoped_lock_test();
    timed_mutex_test();
    queue_test();
    cv_timeout_test();
    shared_mutex_test();
    call_once_test();
    future_test();
    return test_exit_status();
}
