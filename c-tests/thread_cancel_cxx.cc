// Thread cancellation through C++ frames: destructors of objects on the cancelled thread's stack run,
// and a catch (abi::__forced_unwind&) that rethrows sees the unwind, as with glibc natively.
// asyncshim-test: timeout=60
#include <atomic>
#include <cstdio>
#include <cxxabi.h>
#include <pthread.h>
#include <unistd.h>

static std::atomic<int> ready;
static int pfd[2];

struct Noisy {
    const char *name;
    ~Noisy() { std::printf("destructor %s\n", name); }
};

static void inner()
{
    Noisy b{"inner"};
    char c;
    ready = 1;
    read(pfd[0], &c, 1);
}

static void *thread_main(void *)
{
    Noisy a{"outer"};
    try {
        inner();
    } catch (abi::__forced_unwind &) {
        std::printf("caught __forced_unwind, rethrowing\n");
        throw;
    }
    return nullptr;
}

int main()
{
    if (pipe(pfd))
        return 1;
    pthread_t t;
    pthread_create(&t, nullptr, thread_main, nullptr);
    while (!ready)
        usleep(1000);
    usleep(20000);
    int rc = pthread_cancel(t);
    void *res = nullptr;
    int jr = pthread_join(t, &res);
    std::printf("cancel=%d join=%d canceled=%d\n", rc, jr, res == PTHREAD_CANCELED);
    return 0;
}
