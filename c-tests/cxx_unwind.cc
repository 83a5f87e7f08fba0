// cxx_unwind: C++ unwinding on thread stacks.
//  - 200 std::threads each throw an exception 50 frames deep and catch it at the top; the destructors
//    of the frames' locals run (and switch threads: sched_yield / usleep inside the destructors);
//  - pthread_exit from inside a C++ call chain unwinds it (glibc's forced unwinding): the locals'
//    destructors run, catch (...) sees abi::__forced_unwind and must rethrow, the join gets the value;
//  - an exception captured with std::current_exception in a thread is rethrown in main;
//  - thread_local std::string values are per thread.
// Threads synchronise only by join and atomics.
#include "shim_probe.h"
#include "test_util.h"
#include <atomic>
#include <cxxabi.h>
#include <exception>
#include <pthread.h>
#include <sched.h>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

static std::atomic<long> dtors{0}, caught{0}, wrong{0};
static thread_local std::string tls_name;

struct Guard {
    int depth;
    explicit Guard(int d) : depth(d) {}
    ~Guard()
    {
        dtors++;
        if (depth % 10 == 0)
            sched_yield();
        if (depth % 25 == 0)
            usleep(50);
    }
};

struct Boom : std::runtime_error {
    int id;
    Boom(int i) : std::runtime_error("boom"), id(i) {}
};

static int dive(int id, int depth)
{
    Guard g(depth);
    volatile char pad[128];
    pad[0] = (char)depth;
    if (depth == 0)
        throw Boom(id);
    return dive(id, depth - 1) + pad[0];
}

static void thrower(int id)
{
    tls_name = "thread-" + std::to_string(id);
    try {
        dive(id, 50);
        wrong++;
    } catch (const Boom &b) {
        if (b.id == id && tls_name == "thread-" + std::to_string(id))
            caught++;
        else
            wrong++;
    }
}

static std::atomic<int> forced_seen{0}, exit_dtors{0};
struct ExitGuard {
    ~ExitGuard() { exit_dtors++; }
};

static void exit_deep(int depth)
{
    ExitGuard g;
    if (depth < 0)
        return;
    if (depth == 0)
        pthread_exit((void *)0x1234);
    try {
        exit_deep(depth - 1);
    } catch (abi::__forced_unwind &) {
        forced_seen++;
        throw;
    }
}

static void *exiter(void *)
{
    exit_deep(10);
    return nullptr;
}

int main()
{
    test_init();
    std::vector<std::thread> ts;
    for (int i = 0; i < 200; i++)
        ts.emplace_back(thrower, i);
    for (auto &t : ts)
        t.join();
    printf("caught %ld exceptions, %ld destructor runs\n", caught.load(), dtors.load());
    CHECK(caught == 200 && wrong == 0, "each thread catches its own exception");
    CHECK(dtors == 200 * 51, "destructors of all 51 frames ran during unwinding");

    pthread_t t;
    void *res = nullptr;
    pthread_create(&t, nullptr, exiter, nullptr);
    pthread_join(t, &res);
    printf("pthread_exit unwinding: %d destructors, %d catch(...) sightings\n", exit_dtors.load(),
           forced_seen.load());
    CHECK(res == (void *)0x1234, "pthread_exit value reaches join");
    CHECK(exit_dtors == 11, "pthread_exit runs the destructors of the 11 frames");
    CHECK(forced_seen == 10, "abi::__forced_unwind seen by the 10 enclosing frames");

    std::exception_ptr ep;
    std::thread([&ep] {
        try {
            dive(7, 5);
        } catch (...) {
            ep = std::current_exception();
        }
    }).join();
    int rethrown = 0;
    try {
        if (ep)
            std::rethrow_exception(ep);
    } catch (const Boom &b) {
        rethrown = b.id == 7;
    }
    CHECK(rethrown, "exception captured in a thread is rethrown in main");
    CHECK(tls_name.empty(), "main's thread_local string untouched by the threads");
    return test_exit_status();
}
