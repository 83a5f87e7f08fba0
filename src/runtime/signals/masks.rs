//! Signal masks. A coroutine's mask is its own: the worker running it has it in the kernel (so a signal
//! the kernel gives that worker is one the coroutine accepts), and carries it with the coroutine when it
//! switches. pthread_sigmask changes it on the worker and records it for the task ([`change_mask`]); a
//! wait with a temporary mask (ppoll, pselect, epoll_pwait, sigsuspend) puts that one in force for
//! delivery while it lasts ([`TempMask`]).
//!
//! Every change of a live coroutine's delivery mask is counted in the accepted set (see `accepted`): idle
//! workers block exactly what no coroutine accepts, so such a signal stays pending in the kernel as when
//! every thread blocks it. This module wakes the idle workers when that set changes, and waits for them
//! when a signal whose default action would act left it.

use super::accepted;
use super::handlers::wrapped_signals;
use super::held::{self, claim_held};
use super::set::{DEFAULT_IGNORED, sanitize_mask};
use super::state::TaskSignals;
use crate::runtime::task::{Task, TaskRef};
use crate::runtime::{lifecycle, park, scheduler, sys, worker};
use core::sync::atomic::{AtomicPtr, Ordering};

/// The main thread's task (set when it starts): a process-directed signal goes to it first when it
/// accepts it (`routing`).
static MAIN_TASK: AtomicPtr<Task> = AtomicPtr::new(core::ptr::null_mut());

/// The main thread's task, once it started. Async-signal-safe.
pub fn main_task() -> Option<TaskRef> {
    core::ptr::NonNull::new(MAIN_TASK.load(Ordering::Acquire)).map(TaskRef)
}

/// A thread starts with `mask` (its creator's, or the kernel's for the main thread) and nothing pending:
/// it accepts signals from now on.
pub fn thread_starts(task: TaskRef, mask: u64) {
    if task.is_main {
        MAIN_TASK.store(task.0.as_ptr(), Ordering::Release);
    }
    let sigs = &task.signals;
    sigs.mask.set(mask);
    sigs.pending.store(0, Ordering::Relaxed);
    sigs.waited_for.store(0, Ordering::Relaxed);
    sigs.bare.store(0, Ordering::Relaxed);
    sigs.routed.store(0, Ordering::Relaxed);
    sigs.delivery_mask.store(mask, Ordering::Release);
    delivery_mask_changed(None, Some(mask));
}

/// An ending thread takes no more signals (those sent to it alone are dropped, as by the kernel). No
/// waiting for idle workers here: the ending coroutine must not switch (they were woken).
pub fn thread_ends(task: &Task) {
    let mask = task.signals.delivery_mask.swap(u64::MAX, Ordering::AcqRel);
    let _ = accepted_set_changed(Some(mask), None);
    // Process-directed instances routed to it and not taken go back to the process, as in the kernel they
    // never left its queue; the rest die with the thread.
    if held::thread_gone(&task.signals) != 0 && lifecycle::running() {
        scheduler::get().wake_sleeper();
    }
}

/// Gives the process back what was routed to `task` of `sigs` and not taken ([`held::give_back`]) and
/// has a worker route it (no waiting: callers may be unable to switch).
pub(super) fn give_back(task: &TaskSignals, sigs: u64) {
    if held::give_back(task, sigs) != 0 && lifecycle::running() {
        scheduler::get().wake_sleeper();
    }
}

/// A live coroutine's delivery mask changes from `old` to `new` (None: the coroutine starts or ends).
/// Keeps the set of signals some coroutine accepts, which idle workers let through. When it grows, an idle
/// worker is woken to let the new ones through (a signal only a parked coroutine takes must not wait in
/// the kernel); when signals without a handler leave it, every idle worker is woken to block them (their
/// default action must not happen while every thread blocks them).
fn delivery_mask_changed(old: Option<u64>, new: Option<u64>) {
    if let Some(generation) = accepted_set_changed(old, new) {
        settle_idle_workers(generation);
    }
}

/// [`delivery_mask_changed`] without waiting: for callers that must not switch (a coroutine starting or
/// ending inside the scheduler). Returns the generation idle workers must reach when signals whose
/// default action would act left the accepted set.
fn accepted_set_changed(old: Option<u64>, new: Option<u64>) -> Option<u64> {
    let (before, after, generation) = accepted::update(old, new)?;
    if before == after || !lifecycle::running() {
        return None;
    }
    let sched = scheduler::get();
    if (before & !after) & !wrapped_signals() & !DEFAULT_IGNORED != 0 {
        wake_all_sleepers();
        return Some(generation);
    }
    if after & !before != 0 {
        sched.wake_sleeper();
    }
    None
}

/// Wakes every idle worker (ending convoy sit-outs too), so each sets its idle mask from the accepted set
/// again.
pub(super) fn wake_all_sleepers() {
    let sched = scheduler::get();
    sched.call_back_sitting_out();
    for _ in 0..sched.started() {
        if !sched.wake_sleeper() {
            break;
        }
    }
}

/// Waits until no idle worker still has a kernel mask older than `generation`: a signal every thread
/// now blocks, whose default action would end the process, must stay pending as natively, not land on
/// an idle worker that has not looked yet. The woken workers look within microseconds; the caller yields
/// meanwhile (a coroutine) or yields its CPU (a plain thread).
pub fn settle_idle_workers(generation: u64) {
    let sched = scheduler::get();
    for _ in 0..100_000 {
        let stale = sched.workers[..sched.started().min(sched.workers.len())].iter().any(|w| {
            let g = w.idle_mask_generation.load(Ordering::Acquire);
            g != worker::NOT_IDLE_MASK && g < generation
        });
        if !stale {
            return;
        }
        wake_all_sleepers();
        if worker::current_task().is_some() {
            park::yield_now();
        } else {
            sys::sched_yield();
        }
    }
}

/// A pthread_sigmask/sigprocmask call by the program (`call` makes the real one; `query_only` when it
/// only reads the mask). Signals pending in the kernel that the new mask lets through are delivered during
/// the call to this thread, as natively (not routed to the main thread).
pub fn change_mask(query_only: bool, call: impl FnOnce() -> i32) -> i32 {
    let w = if query_only { None } else { worker::current_task().and(worker::current_worker()) };
    let Some(w) = w else { return call() };
    w.directed_delivery.set(true);
    let r = call();
    w.directed_delivery.set(false);
    if r == 0 {
        mask_changed();
    }
    r
}

/// After the program changed the calling coroutine's signal mask on its worker: remember it for the task.
fn mask_changed() {
    if let (Some(me), Some(w)) = (worker::current_task(), worker::current_worker()) {
        let m = sys::sigmask(None);
        let old = me.signals.mask.replace(m);
        w.mask_changed(m);
        if old != m {
            me.signals.delivery_mask.store(m, Ordering::Release);
            delivery_mask_changed(Some(old), Some(m));
            // A process-directed signal held while every thread blocked it goes to this one now; one
            // routed here that it blocks now goes back to the process.
            claim_held(&me.signals, !m);
            give_back(&me.signals, m);
        }
        // Signals sent to this thread while blocked are delivered once unblocked.
        if me.signals.pending.load(Ordering::Relaxed) & !m != 0 {
            let _ = worker::deliver_pending(&me);
        }
    }
}

/// A wait with a temporary signal mask (ppoll, pselect, epoll_pwait, sigsuspend) by the calling coroutine:
/// while it lasts, the mask decides which signals may be delivered to the thread, parked or not (routing
/// and pthread_kill look at it), as the kernel's atomic mask switch would. Ends when dropped.
pub struct TempMask {
    pub(super) task: TaskRef,
    pub(super) mask: u64,
}

impl TempMask {
    /// Starts one for the calling coroutine (None for other callers). Held process-directed signals the
    /// mask lets through become this thread's.
    pub fn begin(mask: u64) -> Option<TempMask> {
        let task = worker::current_task()?;
        let mask = sanitize_mask(mask);
        let old = task.signals.delivery_mask.swap(mask, Ordering::AcqRel);
        delivery_mask_changed(Some(old), Some(mask));
        claim_held(&task.signals, !mask);
        Some(TempMask { task, mask })
    }

    pub fn mask(&self) -> u64 {
        self.mask
    }

    /// Runs the handlers of the signals pending for this thread that the mask lets through, with the mask
    /// in force, in one nesting (the first handler's return puts the thread's own mask back). True if any
    /// ran (the wait then ends with EINTR).
    pub fn deliver_pending(&self) -> bool {
        self.task.signals.pending.load(Ordering::Acquire) & !self.mask != 0
            && worker::deliver_pending_unblocked(&self.task, self.mask, self.task.signals.mask.get())
    }
}

impl Drop for TempMask {
    fn drop(&mut self) {
        let normal = self.task.signals.mask.get();
        let old = self.task.signals.delivery_mask.swap(normal, Ordering::AcqRel);
        delivery_mask_changed(Some(old), Some(normal));
        give_back(&self.task.signals, normal & !self.mask);
        // What came during the wait that its mask held back (or that did not end it: the call found fds
        // ready) and the thread's own mask lets through runs now, as natively once the call returned with
        // the thread's mask back.
        if self.task.signals.pending.load(Ordering::Acquire) & !normal != 0 {
            let _ = worker::deliver_pending(&self.task);
        }
    }
}
