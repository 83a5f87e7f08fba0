//! `aio_suspend` for a coroutine: glibc's waits on a futex word of its own stack that glibc's AIO
//! completion wakes (`__aio_notify`), with a system call made inside libc that no hook sees. Made on the
//! worker, it would hold it until a request completed, and a signal or a cancellation request for the
//! thread would wait as long.
//!
//! So the real `aio_suspend` runs on a helper thread while the coroutine parks (`offload::run_abortable`),
//! which keeps every wait reachable: a handled signal or a cancellation request ends the park, and the
//! helper's futex wait is ended by the abort signal (`sys::abortable::foreign`) — libc turns that EINTR
//! into `aio_suspend`'s -1 EINTR after taking its waiting-list entries out, as for a handler natively
//! (glibc 2.31's `futex_reltimed_wait` and 2.34+'s `__futex_abstimed_wait_cancelable64` both give EINTR,
//! and `AIO_MISC_WAIT` returns it as it is; a timeout gives EAGAIN). Only then does the coroutine run its
//! handlers, on its own stack (a `siglongjmp` out leaves nothing behind), and act on a cancellation.
//!
//! Waiting in the runtime instead would need glibc's request list (private, and locked by glibc's own
//! mutex) to learn of completions: glibc's AIO threads report to nothing but the waiting list and the
//! program's `sigevent` (from glibc 2.34 they are real threads, libc creating them with its internal
//! `pthread_create`; librt's in 2.31 calls the exported one, so there they are coroutines). The helper
//! works with either. The helper costs one thread per waiting coroutine, as each waiting thread of a
//! native program is one.
//!
//! What the kernel restarts, this restarts: an untimed wait interrupted by a handler with SA_RESTART goes
//! on (the kernel restarts an untimed futex wait then), a timed one fails with EINTR (a timed futex wait
//! is never restarted after a handler). The list and the timeout are read by the helper: the coroutine
//! runs nothing of its own until the helper is back.

use crate::runtime::offload::{self, Interrupted};
use crate::runtime::stats::Offload;
use crate::runtime::sys::abortable;

/// glibc's `aio_suspend` (`real` for the coroutine, on a helper), as the calling coroutine's own call
/// would end; returns its result and errno.
///
/// # Safety
/// `list` holds `nent` pointers to aiocbs (or nulls) and `timeout` is null or a timespec, all valid until
/// this returns; `real` is glibc's `aio_suspend`.
pub unsafe fn suspend(
    real: unsafe extern "C" fn(*const *const libc::aiocb, i32, *const libc::timespec) -> i32,
    list: *const *const libc::aiocb,
    nent: i32,
    timeout: *const libc::timespec,
) -> (i32, i32) {
    let (list_addr, timeout_addr) = (list as usize, timeout as usize);
    loop {
        let (r, how) = offload::run_abortable(Offload::Other, move |abort| {
            abortable::foreign(abort, || {
                // SAFETY: the caller's arguments, valid until this returns (see the module documentation).
                let r = unsafe {
                    real(list_addr as *const *const libc::aiocb, nent, timeout_addr as *const libc::timespec)
                };
                // SAFETY: the helper's own errno, read right after the call.
                (r, unsafe { *libc::__errno_location() })
            })
        });
        match (r, how) {
            // Aborted before the call began (it did nothing): a cancellation point fails with EINTR and
            // acts on its request; after a handler the call is made (as for a signal just before it).
            (None, Interrupted::Cancel) => return (-1, libc::EINTR),
            (None, _) => continue,
            (Some((-1, libc::EINTR)), Interrupted::Signal { restarts: true }) if timeout.is_null() => continue,
            (Some(r), _) => return r,
        }
    }
}

/// Offset of `__error_code` in glibc's `struct aiocb` (aio.h, the same from 2.31 on): the request's
/// state, EINPROGRESS until it is over, which glibc's `aio_suspend` and `aio_error` read.
const ERROR_CODE: usize = 112;

/// Whether glibc's `aio_suspend` would wait for this list: it has a request and every request in it is
/// in progress (glibc returns at once otherwise, with no cancellation point).
///
/// # Safety
/// `list` holds `nent` pointers to aiocbs or nulls, as for `aio_suspend`.
pub unsafe fn would_wait(list: *const *const libc::aiocb, nent: i32) -> bool {
    let mut any = false;
    for i in 0..nent.max(0) as usize {
        // SAFETY: per the contract.
        let cb = unsafe { *list.add(i) };
        if cb.is_null() {
            continue;
        }
        // SAFETY: a valid aiocb; the AIO thread writes the word, hence the volatile read.
        if unsafe { core::ptr::read_volatile((cb as *const u8).add(ERROR_CODE) as *const i32) } != libc::EINPROGRESS {
            return false;
        }
        any = true;
    }
    any
}
