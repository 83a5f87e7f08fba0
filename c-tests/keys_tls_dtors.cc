// keys_tls_dtors: C++ thread_local objects with destructors across 1,000 threads.
// Each thread touches two thread_local objects (constructed lazily, in order A then B) and leaves a third
// untouched; at thread exit B's destructor runs before A's (reverse construction order), both run in
// the exiting thread (pthread_self, a plain __thread int) and before the thread's pthread key
// destructors (glibc runs __call_tls_dtors first). The untouched object is never constructed or
// destroyed. The main thread's thread_local is destroyed at exit, and its destructor prints.
#include "shim_probe.h"
#include "test_util.h"
#include <atomic>
#include <pthread.h>
#include <sched.h>
#include <vector>

static const int NTHREADS = 1000;
static std::atomic<int> a_ctor{0}, a_dtor{0}, b_ctor{0}, b_dtor{0}, c_ctor{0}, c_dtor{0};
static std::atomic<int> bad_order{0}, bad_context{0}, key_dtor_calls{0}, key_before_tls{0}, bad_values{0};
static __thread int my_id = -1;
static __thread int seq;           // per-thread event counter
static __thread int b_dtor_seq;
static pthread_key_t key;
static std::atomic<int> arrived{0};
static std::atomic<bool> gate{false};

struct Tracked {
    std::atomic<int> &ctors, &dtors;
    int owner;
    pthread_t self;
    int value;
    int which;
    Tracked(std::atomic<int> &c, std::atomic<int> &d, int w)
        : ctors(c), dtors(d), owner(my_id), self(pthread_self()), value(my_id * 10 + w), which(w)
    {
        ctors++;
    }
    ~Tracked()
    {
        dtors++;
        if (owner != my_id || !pthread_equal(self, pthread_self()))
            bad_context++;
        if (owner >= 0) {
            int now = ++seq;
            if (which == 2)
                b_dtor_seq = now;
            else if (which == 1 && (b_dtor_seq == 0 || b_dtor_seq > now))
                bad_order++; // A (constructed first) must be destroyed after B
        }
    }
};

// Function-local thread_locals are constructed on first use (namespace-scope ones of a translation unit
// are all initialised together on the first access to any of them).
static Tracked &tls_a()
{
    static thread_local Tracked t(a_ctor, a_dtor, 1);
    return t;
}
static Tracked &tls_b()
{
    static thread_local Tracked t(b_ctor, b_dtor, 2);
    return t;
}
static __attribute__((noinline, unused)) Tracked &tls_c()
{
    static thread_local Tracked t(c_ctor, c_dtor, 3);
    return t;
}

struct MainOnly {
    int touched = 0;
    ~MainOnly()
    {
        if (touched)
            printf("main thread_local destroyed at exit\n");
    }
};
static thread_local MainOnly main_only;

static void key_dtor(void *p)
{
    key_dtor_calls++;
    if (p != &my_id)
        bad_context++;
    // thread_local destructors already ran in this thread?
    if (b_dtor_seq == 0)
        key_before_tls++;
}

static void *worker(void *arg)
{
    my_id = (int)(intptr_t)arg;
    pthread_setspecific(key, &my_id);
    if (tls_a().value != my_id * 10 + 1) // constructs A
        bad_values++;
    arrived++;
    while (!gate.load())
        sleep_ms(20);
    sched_yield();
    if (tls_b().value != my_id * 10 + 2) // constructs B
        bad_values++;
    usleep(100);
    if (tls_a().value != my_id * 10 + 1 || tls_b().owner != my_id)
        bad_values++;
    return nullptr;
}

int main()
{
    test_init();
    pthread_key_create(&key, key_dtor);
    std::vector<pthread_t> th(NTHREADS);
    int created = 0;
    for (int i = 0; i < NTHREADS; i++) {
        if (pthread_create(&th[i], nullptr, worker, (void *)(intptr_t)i) != 0)
            break;
        created++;
    }
    CHECK(created == NTHREADS, "create 1000 threads");
    while (arrived.load() < created)
        sleep_ms(5);
    gate = true;
    for (int i = 0; i < created; i++)
        pthread_join(th[i], nullptr);

    printf("constructed: A %d, B %d, C %d\n", a_ctor.load(), b_ctor.load(), c_ctor.load());
    printf("destroyed:   A %d, B %d, C %d\n", a_dtor.load(), b_dtor.load(), c_dtor.load());
    CHECK(a_ctor == NTHREADS && b_ctor == NTHREADS && a_dtor == NTHREADS && b_dtor == NTHREADS,
          "one construction and one destruction per thread");
    CHECK(c_ctor == 0 && c_dtor == 0, "untouched thread_local never constructed");
    CHECK(bad_order == 0, "thread_local destructors in reverse construction order");
    CHECK(bad_context == 0, "destructors run in the exiting thread");
    CHECK(bad_values == 0, "thread_local values per thread");
    CHECK(key_dtor_calls == NTHREADS, "pthread key destructor once per thread");
    CHECK(key_before_tls == 0, "thread_local destructors run before key destructors");
    main_only.touched = 1;
    return test_exit_status();
}
