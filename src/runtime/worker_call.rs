//! System calls a coroutine makes on its own worker although they may wait in the kernel for something
//! nothing can poll for: the open of a FIFO (which waits for the other end), `tcdrain`, a POSIX message
//! queue's receive or send. Almost every such call returns at once (an open of a regular file is the hot
//! path: it must cost what glibc's costs), so the call is made in place, through `sys::abortable` with
//! the task's own handle (`Task::worker_call`: the worker's tid while the call may be under way, and the
//! abort flag), which costs no system call more than glibc's.
//!
//! Whoever must end the wait aborts it ([`abort`]): a cancellation request (`cancel::request`), a signal
//! for the thread (`signals::routing`), the monitor when the worker has been kept too long while other
//! coroutines wait (`monitor`). An aborted call never completed (a completed one keeps its result), so it
//! is made again on a helper thread that the coroutine can abort in turn (`offload::run_abortable`): the
//! coroutine parks there, reachable as in any other wait — a pending cancellation request is acted on by
//! the hook's cancellation point, a handler runs on the thread's own stack (so it may `siglongjmp` out) and
//! the call then fails with EINTR or, under SA_RESTART, waits again, as the kernel's would. Making an
//! interrupted call again is what the kernel itself does with these calls under SA_RESTART.

use super::cancel_state::actionable;
use super::offload::{self, Interrupted};
use super::scheduler;
use super::stats::Offload;
use super::sys::abortable;
use super::sys::syscall::Errno;
use super::task::TaskRef;
use core::sync::atomic::Ordering;

/// Makes system call `nr` with `args` for the calling coroutine `me` (see the module documentation).
///
/// # Safety
/// `me` is the calling coroutine; the arguments must be valid for system call `nr` until it returns.
pub unsafe fn call(me: TaskRef, nr: libc::c_long, args: [usize; 6]) -> Result<usize, Errno> {
    let h = &me.worker_call;
    // The worker running it (the one that last switched to it).
    let Some(w) = scheduler::get().workers.get(me.last_worker.load(Ordering::Relaxed)) else {
        return on_helper(nr, args);
    };
    h.flag.store(0, Ordering::SeqCst);
    h.tid.store(w.os_tid.load(Ordering::Relaxed), Ordering::SeqCst);
    // After the tid is published: a request or a signal that came before it is seen here, one that comes
    // after it aborts the call.
    let r = if must_leave(me) {
        None
    } else {
        // SAFETY: per the contract.
        Some(unsafe { abortable::call(&h.flag, nr, args) })
    };
    h.tid.store(0, Ordering::SeqCst);
    match r {
        Some(Err(Errno(libc::EINTR))) if h.flag.load(Ordering::SeqCst) == ABORTED => on_helper(nr, args),
        Some(r) => r,
        None => on_helper(nr, args),
    }
}

/// The handle's flag: the call goes on on a helper thread.
const ABORTED: u32 = 1;
/// The handle's flag: a handler without SA_RESTART ran in the thread on its worker; the call fails with
/// EINTR (unless it completed first).
const HANDLED: u32 = 2;

/// Whether the coroutine has a cancellation request to act on or a signal it accepts pending.
fn must_leave(me: TaskRef) -> bool {
    actionable(me.cancel.word.load(Ordering::SeqCst))
        || me.signals.pending.load(Ordering::SeqCst) & !me.signals.delivery_mask.load(Ordering::SeqCst) != 0
}

/// The call, made again on a helper thread while the coroutine parks, until it completes, fails, or is
/// interrupted by a cancellation request or a handler without SA_RESTART (EINTR).
fn on_helper(nr: libc::c_long, args: [usize; 6]) -> Result<usize, Errno> {
    loop {
        let (r, how) = offload::run_abortable(Offload::Other, move |abort| {
            // SAFETY: the caller's arguments, valid until this returns (the coroutine runs nothing of its
            // own until the helper is back).
            unsafe { abortable::call(abort, nr, args) }
        });
        match (r, how) {
            (Err(Errno(libc::EINTR)), Interrupted::Signal { restarts: true }) => continue,
            (r, _) => return r,
        }
    }
}

/// Aborts the call `target` makes on its worker, if it makes one now (see the module documentation).
/// Async-signal-safe.
pub fn abort(target: TaskRef) {
    let h = &target.worker_call;
    if h.tid.load(Ordering::SeqCst) == 0 {
        return;
    }
    if h.flag.compare_exchange(0, ABORTED, Ordering::SeqCst, Ordering::SeqCst).is_err() {
        return;
    }
    // Still in the call (or in a later one, which then goes to a helper too: harmless).
    let tid = h.tid.load(Ordering::SeqCst);
    if tid != 0 {
        super::preempt::signal::send_abort(tid);
    }
}

/// A handler of the program without SA_RESTART has just run in `target` on its worker, interrupting the
/// code of context `ctx` (a process-directed signal the kernel gave that worker): if that was the call
/// `target` makes on its worker, the call fails with EINTR, as the kernel's would (the shim's own
/// handlers ask the kernel to restart calls). Async-signal-safe.
///
/// # Safety
/// `ctx` is the context the kernel passed to the handler now running on `target`'s worker.
pub unsafe fn handler_ran(target: TaskRef, ctx: *mut libc::c_void) {
    let h = &target.worker_call;
    if h.tid.load(Ordering::SeqCst) == 0 {
        return;
    }
    h.flag.store(HANDLED, Ordering::SeqCst);
    // SAFETY: per the contract.
    unsafe { abortable::abort_in_context(ctx as *mut libc::ucontext_t) };
}
