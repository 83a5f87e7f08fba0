/* waiter.h — a thread (`waiter`) waiting in one call while the main thread interrupts it, for the tests of
 * interrupted waits (signals_parked_waits.c, helper_waits_interrupted.c, kernel_waits_interrupted.c):
 *  - waiter_handler(), the signal handler: notes that it ran, whether in the waiter and on the waiter's own
 *    stack (note_waiter_stack() records it), and leaves by siglongjmp(env) when handler_longjmps is set;
 *  - wait_in_waiter(): the waiter's part: takes the process-directed SIGUSR2 that the main thread blocks,
 *    says it is armed, makes its call (or comes back by siglongjmp), says it is done;
 *  - send_to_waiter(), interrupt_waiter(): sends signals until they have done their work, says where the
 *    handler ran; print_if_interrupted(): the call's end when the handler jumped out or it failed;
 *  - start_waiter(), signal_scenario(): the main thread's part of a scenario;
 *  - waiter_cleanup() and join_cancelled(): a cancelled waiter's cleanup handler and join.
 * Include after test_util.h. */
#ifndef WAITER_H
#define WAITER_H

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static pthread_t waiter;
static sigjmp_buf env;
static int armed, handled, on_own_stack, in_waiter, jumped, wait_done, cleanup_ran;
static int handler_longjmps;
/* Signals go to the process (kill, SIGUSR2: the main thread blocks it) rather than the waiter (SIGUSR1). */
static int signal_process_wide;

/* The ways a scenario sends the signal and what its handler does, for tests that go through them all. */
enum mode { LONGJMP, RETURN, RESTART, PROCESS_LONGJMP, PROCESS_RETURN, MODES };
static __attribute__((unused)) const char *mode_name[] = {
    "handler longjmps", "handler returns", "handler returns, SA_RESTART", "kill() to the process, handler longjmps",
    "kill() to the process, handler returns"};
static __attribute__((unused)) enum mode mode;

/* Sets `mode`, and handler_longjmps and signal_process_wide as it says. */
static __attribute__((unused)) void set_mode(enum mode m)
{
    mode = m;
    handler_longjmps = m == LONGJMP || m == PROCESS_LONGJMP;
    signal_process_wide = m == PROCESS_LONGJMP || m == PROCESS_RETURN;
}
static char *stack_lo, *stack_hi;

static __attribute__((unused)) void waiter_handler(int sig)
{
    (void)sig;
    char here;
    ATOMIC_ADD(&handled, 1);
    if (pthread_equal(pthread_self(), waiter))
        ATOMIC_STORE(&in_waiter, 1);
    if (&here > stack_lo && &here < stack_hi)
        ATOMIC_STORE(&on_own_stack, 1);
    if (handler_longjmps)
        siglongjmp(env, 1);
}

/* Called by the waiter: where its stack is, for the handler's check. */
static __attribute__((unused)) void note_waiter_stack(void)
{
    void *addr = NULL;
    size_t size = 0;
    own_stack(&addr, &size);
    stack_lo = addr;
    stack_hi = (char *)addr + size;
}

/* SIGUSR2 blocked in `how` (SIG_BLOCK in the main thread: a kill() to the process goes to the waiter;
 * SIG_UNBLOCK in the waiter). */
static __attribute__((unused)) void mask_usr2(int how)
{
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    pthread_sigmask(how, &usr2, NULL);
}

/* The waiter's body: `call` makes the wait; `after_jump` (if any) runs when a handler left it by siglongjmp. */
static __attribute__((unused)) void wait_in_waiter(void (*call)(void), void (*after_jump)(void))
{
    note_waiter_stack();
    mask_usr2(SIG_UNBLOCK);
    if (sigsetjmp(env, 1) == 0) {
        ATOMIC_STORE(&armed, 1);
        call();
    } else {
        ATOMIC_STORE(&jumped, 1);
        if (after_jump)
            after_jump();
    }
    ATOMIC_STORE(&wait_done, 1);
}

static __attribute__((unused)) void send_to_waiter(void)
{
    if (signal_process_wide)
        kill(getpid(), SIGUSR2);
    else
        pthread_kill(waiter, SIGUSR1);
}

/* Prints how the call ended if a handler left it by siglongjmp or it returned -1 (then 1), else 0. */
static __attribute__((unused)) int print_if_interrupted(long result, int err)
{
    if (ATOMIC_LOAD(&jumped)) {
        printf("  left by siglongjmp\n");
        return 1;
    }
    if (result == -1) {
        printf("  returned -1, errno %s\n", errname(err));
        return 1;
    }
    return 0;
}

/* Sends a signal with `send` until the wait has ended, or, when the call `goes_on` after a handler that
 * returns, until two handlers ran (so that at least one found the call waiting), then says whether it
 * still waits; then prints where the handler ran. Gives up after 60 s. */
static __attribute__((unused)) void interrupt_waiter(void (*send)(void), int goes_on)
{
    int64_t give_up = mono_ns() + 60LL * 1000000000;
    if (!goes_on) {
        while (!ATOMIC_LOAD(&wait_done) && mono_ns() < give_up) {
            send();
            sleep_ms(20);
        }
    } else {
        while (ATOMIC_LOAD(&handled) < 2 && mono_ns() < give_up) {
            send();
            sleep_ms(20);
        }
        sleep_ms(30);
        printf("  still waiting after the handlers: %s\n", ATOMIC_LOAD(&wait_done) ? "no" : "yes");
    }
    printf("  handler ran in the waiter: %s, on its own stack: %s\n", ATOMIC_LOAD(&in_waiter) ? "yes" : "no",
           ATOMIC_LOAD(&on_own_stack) ? "yes" : "no");
}

/* Starts the waiter with `body(arg)` and lets it get into its call (30 ms after it said it is armed,
 * when `settle`). */
static __attribute__((unused)) void start_waiter(void *(*body)(void *), void *arg, int settle)
{
    ATOMIC_STORE(&armed, 0);
    pthread_create(&waiter, NULL, body, arg);
    while (!ATOMIC_LOAD(&armed))
        sleep_ms(1);
    if (settle)
        sleep_ms(30);
}

/* A signal scenario (the handler set with SA_RESTART when `restart`): the waiter started with `body`, the
 * signals sent (see interrupt_waiter), `release` (if any) called, the waiter joined; exits if the wait does
 * not end within a minute of the release. */
static __attribute__((unused)) void signal_scenario(int restart, int goes_on, void *(*body)(void *),
                                                    void (*release)(void))
{
    handled = on_own_stack = in_waiter = jumped = wait_done = 0;
    set_signal_handler(SIGUSR1, waiter_handler, restart ? SA_RESTART : 0);
    set_signal_handler(SIGUSR2, waiter_handler, restart ? SA_RESTART : 0);
    start_waiter(body, NULL, 1);
    interrupt_waiter(send_to_waiter, goes_on);
    if (release)
        release();
    if (!wait_at_least(&wait_done, 1, 2, 60000)) {
        printf("  the wait did not end\n");
        exit(1);
    }
    pthread_join(waiter, NULL);
}

static __attribute__((unused)) void waiter_cleanup(void *arg)
{
    (void)arg;
    ATOMIC_STORE(&cleanup_ran, 1);
}

/* Joins the waiter after its pthread_cancel: within 60 s (else says so, calls `release` and joins), then
 * prints what the join gave and whether the cleanup handler ran. Returns the thread's value. */
static __attribute__((unused)) void *join_cancelled(void (*release)(void))
{
    struct timespec limit = deadline_in(CLOCK_REALTIME, 60000);
    void *value = NULL;
    int r = pthread_timedjoin_np(waiter, &value, &limit);
    if (r != 0) {
        printf("  the join did not return before the release: %s\n", errname(r));
        release();
        pthread_join(waiter, &value);
    }
    printf("  joined: %s, cleanup handler ran: %s\n", value == PTHREAD_CANCELED ? "PTHREAD_CANCELED" : "a value",
           ATOMIC_LOAD(&cleanup_ran) ? "yes" : "no");
    return value;
}

/* The wait a cancelled or plain waiter makes (cancelled_waiter_body(), plain_waiter_body()), and the flag
 * that lets a waiter whose request was made while it had cancellation disabled enter it. */
static void (*waiter_call)(void);
static int may_enter;

/* A waiter to cancel: its cleanup handler pushed, it makes waiter_call(); with `arg` non-zero (the request
 * is made while it has cancellation disabled) it enables cancellation just before the call, once
 * may_enter is set. */
static __attribute__((unused)) void *cancelled_waiter_body(void *arg)
{
    int pending = (int)(long)arg;
    note_waiter_stack();
    if (pending)
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    pthread_cleanup_push(waiter_cleanup, NULL);
    ATOMIC_STORE(&armed, 1);
    if (pending) {
        wait_at_least(&may_enter, 1, 1, 60000);
        pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
    }
    waiter_call();
    pthread_cleanup_pop(0);
    ATOMIC_STORE(&wait_done, 1);
    return NULL;
}

/* A waiter for a signal scenario: wait_in_waiter() with waiter_call(). */
static __attribute__((unused)) void *signalled_waiter_body(void *arg)
{
    (void)arg;
    wait_in_waiter(waiter_call, NULL);
    return NULL;
}

/* A waiter that makes waiter_call() and nothing else. */
static __attribute__((unused)) void *plain_waiter_body(void *arg)
{
    (void)arg;
    ATOMIC_STORE(&armed, 1);
    waiter_call();
    ATOMIC_STORE(&wait_done, 1);
    return NULL;
}

/* A test's steps around a waiter's call, for cancel_scenario() and plain_scenario(): make what the call
 * waits for (`setup`), let it complete (`release`), print how it ended (`print_result`), print what it
 * left and clean up (`finish`); `before_start` (if any) runs after `setup` in a cancel scenario whose
 * request is made while cancellation is disabled, `after_join` (if any) after a plain scenario's join. */
struct waiter_steps {
    void (*setup)(void), (*release)(void), (*print_result)(void), (*finish)(void);
    void (*before_start)(void), (*after_join)(void);
};

/* `name`, pthread_cancel: the waiter cancelled while it waits, or with the request made while it had
 * cancellation disabled (`pending`; it enables it just before the call); the join and what it gave. */
static __attribute__((unused)) void cancel_scenario(const struct waiter_steps *s, const char *name, int pending)
{
    set_mode(RETURN);
    wait_done = cleanup_ran = may_enter = 0;
    printf("%s, pthread_cancel%s:\n", name, pending ? " made while disabled" : "");
    s->setup();
    if (pending && s->before_start)
        s->before_start();
    start_waiter(cancelled_waiter_body, (void *)(long)pending, !pending);
    pthread_cancel(waiter);
    ATOMIC_STORE(&may_enter, 1);
    if (join_cancelled(s->release) != PTHREAD_CANCELED)
        s->print_result();
    s->finish();
}

/* `name`, not interrupted: the call waits until released, then completes. */
static __attribute__((unused)) void plain_scenario(const struct waiter_steps *s, const char *name)
{
    wait_done = jumped = 0;
    printf("%s, not interrupted:\n", name);
    s->setup();
    start_waiter(plain_waiter_body, NULL, 1);
    printf("  waiting before the release: %s\n", ATOMIC_LOAD(&wait_done) ? "no" : "yes");
    s->release();
    pthread_join(waiter, NULL);
    s->print_result();
    if (s->after_join)
        s->after_join();
    s->finish();
}

/* Runs this program again with argument `arg`, the shim's stall monitor off and `workers` workers (for
 * scenarios in which a thread may keep its worker); says so if the copy does not exit with 0. */
static __attribute__((unused)) void run_copy_monitor_off(const char *arg, const char *workers)
{
    static char workers_env[64];
    snprintf(workers_env, sizeof workers_env, "ASYNCSHIM_WORKERS=%s", workers);
    const char *const env[] = {"ASYNCSHIM_STALL_MS=0", workers_env, NULL};
    run_self_copy(arg, env, "with the monitor off");
}

/* Every kind's scenarios, the main thread blocking the process-directed signal: for each signal mode,
 * the steps around `run_signal(k, m)` (a signal_scenario()), then pthread_cancel while the call waits and made while disabled, and not interrupted
 * (unless `never_completes(k)`). `select_kind(k)` makes k the kind the steps work on. */
static __attribute__((unused)) void all_scenarios(const struct waiter_steps *s, const char *const names[], int kinds,
                                                  void (*select_kind)(int), void (*run_signal)(int, enum mode),
                                                  int (*never_completes)(int))
{
    mask_usr2(SIG_BLOCK);
    for (int k = 0; k < kinds; k++)
        for (int m = 0; m < MODES; m++) {
            printf("%s, %s:\n", names[k], mode_name[m]);
            select_kind(k);
            set_mode((enum mode)m);
            s->setup();
            run_signal(k, (enum mode)m);
            s->print_result();
            s->finish();
        }
    for (int k = 0; k < kinds; k++) {
        select_kind(k);
        cancel_scenario(s, names[k], 0);
        cancel_scenario(s, names[k], 1);
        if (!never_completes || !never_completes(k))
            plain_scenario(s, names[k]);
    }
}

#endif
