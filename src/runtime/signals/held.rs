//! The held set: process-directed signals a worker took in its own context, waiting to be routed to a
//! coroutine that accepts them (see `routing`). They stay here while no coroutine accepts them, as a
//! blocked signal stays pending in the kernel's shared queue, and like there each instance of a real-time
//! signal is kept with its siginfo, in order (entries of the `queued` pool owned by the process), while a
//! standard signal merges with one already held. A thread that takes a held signal takes its oldest
//! instance, siginfo and all; routing gives one instance at a time, each to the thread that takes it best
//! then.
//!
//! The pool is bounded: an instance that finds it full is kept without its siginfo (the `BARE` set, where
//! such instances of one signal merge) and delivered after the kept ones as tgkill's, and the statistics
//! report counts it.
//!
//! A leaf: atomics and the lock-free pool, async-signal-safe, so the wrapper can hold a signal from signal
//! context and the scheduler core can ask whether routing is due and run it between coroutines. Routing
//! itself needs the thread registry (policy above the core), so it is reached through one seam,
//! [`set_router`], filled once at start-up by `signals::install`: the worker loop is the only place that
//! may route (signal context cannot take the registry's lock) and must not import the policy.

use super::handlers::Step;
use super::queued::{self, PROCESS, queues_each};
use super::set::{bit, signals_in};
use super::state::TaskSignals;
use crate::runtime::sys;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

/// Process-directed signals a worker took in its own context, not yet routed to a coroutine (bit n-1 for
/// signal n): those with an entry in the pool or a bare instance.
static HELD: AtomicU64 = AtomicU64::new(0);
/// Held signals with an instance whose siginfo the full pool could not keep.
static BARE: AtomicU64 = AtomicU64::new(0);
/// Instances held without their siginfo, for the statistics report.
static UNRECORDED: AtomicU64 = AtomicU64::new(0);
/// A signal was held since the last routing.
static ROUTE_NEEDED: AtomicBool = AtomicBool::new(false);
/// Routes one held instance of a signal (`routing::route_process_signal`; false when no thread takes it
/// now), set once at start-up.
static ROUTER: OnceLock<fn(i32) -> bool> = OnceLock::new();

/// One held instance, taken out of the held set.
pub enum Instance {
    /// With the siginfo it came with.
    Info(libc::siginfo_t),
    /// Its siginfo entry moved to the taking thread's queue (see [`take_one`]).
    Given,
    /// Held without its siginfo (the pool was full).
    Bare,
}

/// Adds an instance of `sig` to the held set with its siginfo and marks routing as due (the caller wakes a
/// worker to do it). Async-signal-safe.
pub(super) fn hold(sig: i32, info: &libc::siginfo_t) {
    let b = bit(sig);
    if queued::push(PROCESS, sig, info).is_err() && (queues_each(sig) || !queued::has(PROCESS, sig)) {
        BARE.fetch_or(b, Ordering::AcqRel);
        UNRECORDED.fetch_add(1, Ordering::Relaxed);
    }
    HELD.fetch_or(b, Ordering::AcqRel);
    ROUTE_NEEDED.store(true, Ordering::Release);
}

/// The held signals now.
pub(super) fn held() -> u64 {
    HELD.load(Ordering::Acquire)
}

/// Instances held without their siginfo since the start (the pool was full).
pub fn unrecorded() -> u64 {
    UNRECORDED.load(Ordering::Relaxed)
}

/// A held signal waits to be routed (checked by workers before they sleep).
pub fn routing_needed() -> bool {
    ROUTE_NEEDED.load(Ordering::Acquire)
}

/// Sets the function that routes one held instance (once, at start-up).
pub(super) fn set_router(route: fn(i32) -> bool) {
    let _ = ROUTER.set(route);
}

/// Routes the held signals (from a worker's scheduling loop), lowest first, one instance at a time: each
/// goes to a coroutine that accepts it; one that no coroutine accepts stays held.
pub fn route_held() {
    let Some(route) = ROUTER.get() else { return };
    if !ROUTE_NEEDED.swap(false, Ordering::AcqRel) {
        return;
    }
    for sig in signals_in(HELD.load(Ordering::Acquire)) {
        while HELD.load(Ordering::Acquire) & bit(sig) != 0 && route(sig) {}
    }
}

/// Takes the oldest held instance of `sig`: its siginfo returned, or with `to` (an owner in `queued`) moved
/// to that thread's queue, keeping its place. None when none is held. The signal stays in the held set
/// until [`settle`] (so a newer instance that arrives meanwhile queues behind it; see
/// `routing::program_handler`): the caller makes it pending where it went first.
pub fn take_one(sig: i32, to: Option<usize>) -> Option<Instance> {
    let b = bit(sig);
    if HELD.load(Ordering::Acquire) & b == 0 {
        return None;
    }
    let kept = match to {
        Some(owner) => (queued::give(PROCESS, owner, sig, false) != 0).then_some(Instance::Given),
        None => queued::take(PROCESS, sig).map(Instance::Info),
    };
    match kept {
        // A standard signal's bare instance merges with the kept one.
        Some(i) if !queues_each(sig) => {
            BARE.fetch_and(!b, Ordering::AcqRel);
            Some(i)
        }
        Some(i) => Some(i),
        None => (BARE.fetch_and(!b, Ordering::AcqRel) & b != 0).then_some(Instance::Bare),
    }
}

/// After [`take_one`]: `sig` leaves the held set unless instances of it remain (then it is marked for
/// routing; the caller wakes a worker if it may sleep).
pub fn settle(sig: i32) {
    // Cleared first and set again while instances remain, so a hold meanwhile is never lost.
    HELD.fetch_and(!bit(sig), Ordering::AcqRel);
    rehold_if_left(sig);
}

/// Sets `sig` held again if instances of it remain (after a taker cleared it).
fn rehold_if_left(sig: i32) {
    let b = bit(sig);
    if queued::has(PROCESS, sig) || BARE.load(Ordering::Acquire) & b != 0 {
        HELD.fetch_or(b, Ordering::AcqRel);
        ROUTE_NEEDED.store(true, Ordering::Release);
    }
}

/// Moves every held instance of the signals in `accept` to a thread (its queue and pending set): it is
/// about to take them itself. Returns the signals it got.
pub fn claim_held(task: &TaskSignals, accept: u64) -> u64 {
    let owner = task as *const TaskSignals as usize;
    let mut got = 0;
    for sig in signals_in(HELD.load(Ordering::Acquire) & accept) {
        let b = bit(sig);
        // Pending on the thread before the signal leaves the held set (see `take_one`).
        let given = queued::give(PROCESS, owner, sig, true);
        let bare = BARE.fetch_and(!b, Ordering::AcqRel) & b != 0;
        if bare && queues_each(sig) {
            task.bare.fetch_or(b, Ordering::AcqRel);
        }
        if bare || given != 0 {
            mark_routed(task, sig);
            got |= b;
        }
        settle(sig);
    }
    got
}

/// Makes a held instance of `sig` just moved to `task` pending there, remembering for a standard signal
/// that only the process's instance made it pending (see [`give_back`]).
pub fn mark_routed(task: &TaskSignals, sig: i32) {
    let b = bit(sig);
    if task.pending.fetch_or(b, Ordering::AcqRel) & b == 0 && !queues_each(sig) {
        task.routed.fetch_or(b, Ordering::AcqRel);
    }
}

/// Gives the process back the instances of the signals `sigs` routed to the thread `task` and not taken
/// by it: it blocks them now, or it ends. In the kernel a process-directed signal stays in the process's
/// queue until a thread dequeues it, so another thread that accepts it takes it, or a later unblock. Only
/// the thread itself or its ending calls this (while it could take them, taking races with this).
/// Returns the signals given back; routing is then due (the caller wakes a worker).
pub fn give_back(task: &TaskSignals, sigs: u64) -> u64 {
    let owner = task as *const TaskSignals as usize;
    let mut back = 0;
    for sig in signals_in(sigs & task.pending.load(Ordering::Acquire)) {
        let b = bit(sig);
        let entries = queued::return_to_process(owner, sig);
        // Routed without a siginfo (the pool was full): back as a bare instance.
        let (bare, only_routed) = if queues_each(sig) {
            let bare = task.bare.fetch_and(!b, Ordering::AcqRel) & b != 0;
            (bare, !queued::has(owner, sig))
        } else {
            let routed = task.routed.fetch_and(!b, Ordering::AcqRel) & b != 0;
            (routed && entries == 0, routed)
        };
        if entries == 0 && !bare {
            continue;
        }
        if bare {
            BARE.fetch_or(b, Ordering::AcqRel);
        }
        if only_routed {
            task.pending.fetch_and(!b, Ordering::AcqRel);
        }
        back |= b;
    }
    if back != 0 {
        HELD.fetch_or(back, Ordering::AcqRel);
        ROUTE_NEEDED.store(true, Ordering::Release);
    }
    back
}

/// The thread `task` ended: what was routed to it from the process and not taken goes back to the process
/// (entries with their siginfo, bare instances as bare ones), the rest of its queue dies with it. Returns
/// the signals that went back; routing is then due (the caller wakes a worker).
pub fn thread_gone(task: &TaskSignals) -> u64 {
    let pending = task.pending.load(Ordering::Acquire);
    let mut back = queued::forget(task as *const TaskSignals as usize);
    // Pending without an entry: real-time ones bare, standard ones routed (a pthread_kill clears that).
    let bare = (task.bare.swap(0, Ordering::AcqRel) | task.routed.swap(0, Ordering::AcqRel) & !back) & pending;
    if bare != 0 {
        BARE.fetch_or(bare, Ordering::AcqRel);
        back |= bare;
    }
    if back != 0 {
        HELD.fetch_or(back, Ordering::AcqRel);
        ROUTE_NEEDED.store(true, Ordering::Release);
    }
    back
}

/// Raises `step.count` instances of `step.sig` (see `handlers::nesting_order`) on the calling OS thread for
/// the thread whose signal state is `task`: the oldest queued for it with their siginfo (see `queued`: sent
/// to it, or held for the process and routed to it), in order, so the handler sees the sender's si_code,
/// pid and value; else (none queued) as tgkill. Returns the last siginfo raised (None: as tgkill, or
/// nothing).
///
/// Each instance is raised while the signal is let through, so its handler runs before the next is
/// raised, as the kernel runs them when the handler blocks the signal. Stacked instances (a handler that
/// does not block its signal) are raised while the signal is blocked and then let through together: the
/// kernel sets up their frames itself, the newest on top, which runs first (none waits in it once a
/// handler runs).
pub fn raise_here(step: Step, task: &TaskSignals) -> Option<libc::siginfo_t> {
    let (pid, tid) = (sys::getpid(), sys::gettid());
    let owner = task as *const TaskSignals as usize;
    let sig = step.sig;
    let unblocked = step.stacked.then(|| sys::sigmask(None)).filter(|mask| mask & bit(sig) == 0);
    if let Some(mask) = unblocked {
        sys::sigmask(Some(mask | bit(sig)));
    }
    let mut raised = None;
    let mut n = 0;
    while n < step.count
        && let Some(info) = super::queued::take(owner, sig)
    {
        n += 1;
        // To the calling thread itself, which may pass any si_code.
        if sys::signal::tgsigqueueinfo(pid, tid, sig, &info).is_ok() {
            raised = Some(info);
        }
    }
    if n < step.count && task.take_bare(sig) {
        let _ = sys::signal::tgkill(pid, tid, sig);
    }
    if let Some(mask) = unblocked {
        sys::sigmask(Some(mask));
    }
    raised
}

/// Raises `sig` once more on the calling OS thread, with `info` if it had one (see
/// `Worker::raise_directed`).
pub fn raise_again(sig: i32, info: Option<libc::siginfo_t>) {
    let (pid, tid) = (sys::getpid(), sys::gettid());
    let _ = match info {
        Some(info) => sys::signal::tgsigqueueinfo(pid, tid, sig, &info),
        None => sys::signal::tgkill(pid, tid, sig),
    };
}
