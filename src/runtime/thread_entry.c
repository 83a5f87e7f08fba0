/* Runs a thread's start routine the way glibc's start_thread does: with an outermost cancellation buffer
 * in the TCB's cleanup_jmp_buf slot, so that glibc's own pthread_exit (a forced unwind that runs cleanup
 * handlers and C++ destructors) ends by jumping back here. Written in C because setjmp returns twice,
 * which Rust cannot express. */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stddef.h>

void *asyncshim_thread_entry(void *(*start)(void *), void *arg, void **cleanup_jmp_buf_slot, int *unwound)
{
    __pthread_unwind_buf_t buf;
    void **volatile slot = cleanup_jmp_buf_slot;
    int *volatile flag = unwound;

    if (__sigsetjmp((struct __jmp_buf_tag *)(void *)buf.__cancel_jmp_buf, 0)) {
        *flag = 1;
        return NULL;
    }
    /* glibc's private view of __pad: prev buffer, old-style cleanup chain, cancel type. */
    buf.__pad[0] = NULL;
    buf.__pad[1] = NULL;
    buf.__pad[2] = NULL;
    *slot = &buf;
    void *ret = start(arg);
    *slot = NULL;
    return ret;
}

/* pthread_once's initialiser under a cleanup handler, as glibc runs it: if the initialiser is cancelled
 * (or calls pthread_exit), glibc's forced unwind calls undo(arg), which resets the once object. */
void asyncshim_once_call(void (*init)(void), void (*undo)(void *), void *arg)
{
    pthread_cleanup_push(undo, arg);
    init();
    pthread_cleanup_pop(0);
}
