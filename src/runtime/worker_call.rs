//! System calls a coroutine makes on its own worker although they may wait in the kernel for something
//! nothing can poll for: the open of a FIFO (which waits for the other end), `tcdrain`, a POSIX message
//! queue's receive or send. Almost every such call returns at once (an open of a regular file is the hot
//! path: it must cost what glibc's costs), so the call is made in place, through `sys::abortable` with
//! the task's own handle (`Task::worker_call`: the worker's tid while the call may be under way, and the
//! abort flag), which costs no system call more than glibc's.
//!
//! Whoever must end the wait aborts it ([`abort`]): a cancellation request (`cancel::request`), a signal
//! for the thread (`signals::routing`), the monitor when the worker has been kept too long while other
//! coroutines wait (`monitor`). An aborted call either never began or was interrupted in the kernel before
//! it completed (a completed one keeps its result), and `sys::abortable::call_or_skip` tells which:
//! - never began: as natively for a signal or a request that came just before the call — a pending
//!   cancellation request is acted on, the handlers run here, on the thread's own stack (a handler may
//!   `siglongjmp` out), and the call is then made; only the monitor's abort sends it to a helper thread;
//! - interrupted: a cancellation request is acted on; the handlers run here and the call fails with EINTR,
//!   or, if the first handler has SA_RESTART, is made again, as the kernel restarts it. The monitor's abort
//!   and a restart (a call that waited once) make it again on a helper thread that the coroutine can abort
//!   in turn (`offload::syscall`), the coroutine parked there, reachable as in any other wait.
//!
//! A process-directed signal the kernel gives the worker while the call is under way runs its handler
//! there at once ([`handler_ran`]): a call it caught before the `syscall` instruction is then made, one it
//! interrupted fails with EINTR (a handler with SA_RESTART lets the kernel restart it).

use super::cancel_state::actionable;
use super::offload;
use super::park::{self, OnSignal};
use super::scheduler;
use super::signals::handlers;
use super::stats::Offload;
use super::sys::abortable;
use super::sys::syscall::Errno;
use super::task::TaskRef;
use core::sync::atomic::Ordering;

/// Makes system call `nr` with `args` for the calling coroutine `me` (see the module documentation).
///
/// # Safety
/// `me` is the calling coroutine, inside the cancellation point of its hook; the arguments must be valid
/// for system call `nr` until it returns.
pub unsafe fn call(me: TaskRef, nr: libc::c_long, args: [usize; 6]) -> Result<usize, Errno> {
    let h = &me.worker_call;
    // The worker running it (the one that last switched to it).
    let Some(w) = scheduler::get().workers.get(me.last_worker.load(Ordering::Relaxed)) else {
        // SAFETY: per the contract.
        return unsafe { on_helper(nr, args) };
    };
    // Ordered before the tid by the tid's (releasing) store: an abort that sees the tid finds the flag
    // clear, and its own store wins.
    h.flag.store(0, Ordering::Relaxed);
    h.tid.store(w.os_tid.load(Ordering::Relaxed), Ordering::SeqCst);
    // After the tid is published: a request or a signal that came before it is seen here, one that comes
    // after it aborts the call.
    let r = if must_leave(me) {
        None
    } else {
        // SAFETY: per the contract.
        unsafe { abortable::call_or_skip(&h.flag, nr, args) }
    };
    // A late abort that still sees the tid sends a signal that finds no call in the window: harmless.
    h.tid.store(0, Ordering::Release);
    match r {
        Some(r) if h.flag.load(Ordering::Relaxed) == 0 => r,
        // SAFETY: per the contract.
        r => unsafe { aborted(me, r, nr, args) },
    }
}

/// The call was aborted (or `must_leave` saw why it would be: `r` None), with what it returned.
///
/// # Safety
/// As [`call`].
#[cold]
#[inline(never)]
unsafe fn aborted(
    me: TaskRef,
    r: Option<Result<usize, Errno>>,
    nr: libc::c_long,
    args: [usize; 6],
) -> Result<usize, Errno> {
    let flag = me.worker_call.flag.load(Ordering::Relaxed);
    match r {
        // Completed (or failed by itself): the result stands; the signal that aborted it runs its handler
        // now, as the kernel runs it when the call returns.
        Some(r) if !matches!(r, Err(Errno(libc::EINTR))) => {
            park::resumed(&me);
            r
        }
        // SAFETY: per the contract.
        Some(_) => unsafe { interrupted(me, flag, nr, args) },
        // Never began: made after what stopped it (see `skipped`), here or on a helper thread.
        // SAFETY: per the contract.
        None if skipped(me, flag) => unsafe { call(me, nr, args) },
        // SAFETY: per the contract.
        None => unsafe { on_helper(nr, args) },
    }
}

/// The call was aborted before it began (`flag`: by whom, 0 when `must_leave` saw why first): a pending
/// cancellation request is acted on (the hook's point; natively the request is acted on before the call);
/// handlers of pending signals run here, on the thread's own stack, and the call is then made (true) as
/// natively after a signal that came just before it; a handler that already ran in place (HANDLED) leaves
/// nothing to do but the call. Otherwise (the monitor's abort) false: the call goes to a helper thread.
fn skipped(me: TaskRef, flag: u32) -> bool {
    if actionable(me.cancel.word.load(Ordering::SeqCst)) && me.cancel.at_point.get() {
        me.cancel.act();
    }
    if me.signals.deliverable().is_some() {
        // Nothing delivered (a temporary mask holds it back): the helper's wait, which the signal ends.
        return super::worker::deliver_pending(&me);
    }
    flag == HANDLED
}

/// The call was interrupted in the kernel by an abort (`flag`): a handler without SA_RESTART that ran in
/// place makes it fail with EINTR; a cancellation request is acted on; the handlers of pending signals run
/// here and the call fails with EINTR or, if the first of them has SA_RESTART, is made again on a helper
/// thread (it waited once already), as the kernel restarts it; the monitor's abort moves it there as well.
///
/// # Safety
/// As [`call`].
unsafe fn interrupted(me: TaskRef, flag: u32, nr: libc::c_long, args: [usize; 6]) -> Result<usize, Errno> {
    if flag == HANDLED {
        return Err(Errno(libc::EINTR));
    }
    if actionable(me.cancel.word.load(Ordering::SeqCst)) && me.cancel.at_point.get() {
        me.cancel.act();
    }
    if let Some(sig) = me.signals.deliverable() {
        let restarts = handlers::restarts(sig);
        if super::worker::deliver_pending(&me) && !restarts {
            return Err(Errno(libc::EINTR));
        }
    }
    // SAFETY: per the contract.
    unsafe { on_helper(nr, args) }
}

/// The handle's flag: the call goes on on a helper thread.
const ABORTED: u32 = 1;
/// The handle's flag: a handler without SA_RESTART ran in the thread on its worker; the call fails with
/// EINTR (unless it completed first, or had not begun: then it is made).
const HANDLED: u32 = 2;

/// Whether the coroutine has a cancellation request to act on or a signal it accepts pending.
fn must_leave(me: TaskRef) -> bool {
    actionable(me.cancel.word.load(Ordering::SeqCst))
        || me.signals.pending.load(Ordering::SeqCst) & !me.signals.delivery_mask.load(Ordering::SeqCst) != 0
}

/// The call, made on a helper thread while the coroutine parks, until it completes, fails, or is
/// interrupted by a cancellation request or a handler without SA_RESTART (EINTR); one aborted before the
/// helper began it is made after the handlers (`offload::syscall`).
///
/// # Safety
/// As [`call`].
unsafe fn on_helper(nr: libc::c_long, args: [usize; 6]) -> Result<usize, Errno> {
    // SAFETY: the caller's arguments, valid until this returns (the coroutine runs nothing of its own until
    // the helper is back).
    unsafe { offload::syscall(Offload::Other, OnSignal::FailUnlessRestart, nr, args) }
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
