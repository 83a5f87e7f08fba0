//! The held set: process-directed signals a worker took in its own context, with the siginfo each came
//! with, waiting to be routed to a coroutine that accepts it (see `routing`). They stay here while no
//! coroutine accepts them, as a blocked signal stays pending in the kernel.
//!
//! A leaf: atomics and a spin-free slot per signal, async-signal-safe, so the wrapper can hold a signal
//! from signal context and the scheduler core can ask whether routing is due and run it between
//! coroutines. Routing itself needs the thread registry (policy above the core), so it is reached through
//! one seam, [`set_router`], filled once at start-up by `signals::install`: the worker loop is the only
//! place that may route (signal context cannot take the registry's lock) and must not import the policy.

use super::set::{NSIG, bit, signals_in};
use super::state::TaskSignals;
use crate::runtime::sys;
use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

/// Process-directed signals a worker took in its own context, not yet routed to a coroutine (bit n-1 for
/// signal n).
static HELD: AtomicU64 = AtomicU64::new(0);
/// A signal was held since the last routing.
static ROUTE_NEEDED: AtomicBool = AtomicBool::new(false);
/// The siginfo a held signal came with, given to its handler when it is raised again in the coroutine
/// that takes it. `busy` guards the slot against two signal contexts (and a reader) at once.
struct InfoSlot {
    busy: AtomicBool,
    info: UnsafeCell<MaybeUninit<libc::siginfo_t>>,
}
// SAFETY: the slot's contents are only touched by whoever set `busy`.
unsafe impl Sync for InfoSlot {}
static INFO: [InfoSlot; NSIG] =
    [const { InfoSlot { busy: AtomicBool::new(false), info: UnsafeCell::new(MaybeUninit::uninit()) } }; NSIG];
/// Signals whose INFO slot holds the siginfo to raise them with.
static INFO_VALID: AtomicU64 = AtomicU64::new(0);
/// Routes one held signal (`routing::route_process_signal`), set once at start-up.
static ROUTER: OnceLock<fn(i32)> = OnceLock::new();

/// Adds `sig` to the held set with its siginfo and marks routing as due (the caller wakes a worker to do
/// it). Async-signal-safe.
pub(super) fn hold(sig: i32, info: &libc::siginfo_t) {
    let b = bit(sig);
    let slot = &INFO[sig as usize];
    // A standard signal already held merges with this one, as in the kernel's pending set.
    if HELD.load(Ordering::Acquire) & b == 0 && !slot.busy.swap(true, Ordering::Acquire) {
        // SAFETY: `busy` gives us the slot.
        unsafe { (*slot.info.get()).write(*info) };
        INFO_VALID.fetch_or(b, Ordering::AcqRel);
        slot.busy.store(false, Ordering::Release);
    }
    HELD.fetch_or(b, Ordering::AcqRel);
    ROUTE_NEEDED.store(true, Ordering::Release);
}

/// The held signals now.
pub(super) fn held() -> u64 {
    HELD.load(Ordering::Acquire)
}

/// A held signal waits to be routed (checked by workers before they sleep).
pub fn routing_needed() -> bool {
    ROUTE_NEEDED.load(Ordering::Acquire)
}

/// Sets the function that routes one held signal (once, at start-up).
pub(super) fn set_router(route: fn(i32)) {
    let _ = ROUTER.set(route);
}

/// Routes the held signals (from a worker's scheduling loop): each goes to a coroutine that accepts it;
/// one that no coroutine accepts stays held.
pub fn route_held() {
    let Some(route) = ROUTER.get() else { return };
    if !ROUTE_NEEDED.swap(false, Ordering::AcqRel) {
        return;
    }
    for sig in signals_in(HELD.load(Ordering::Acquire)) {
        route(sig);
    }
}

/// Takes `sig` out of the held set (true if this caller got it).
pub fn take_held(sig: i32) -> bool {
    HELD.fetch_and(!bit(sig), Ordering::AcqRel) & bit(sig) != 0
}

/// Moves the held signals in `accept` onto a thread's pending set (it is about to take them itself).
pub fn claim_held(task: &TaskSignals, accept: u64) -> u64 {
    let mut got = 0;
    for sig in signals_in(HELD.load(Ordering::Acquire) & accept) {
        if take_held(sig) {
            got |= bit(sig);
        }
    }
    if got != 0 {
        task.pending.fetch_or(got, Ordering::AcqRel);
    }
    got
}

/// The siginfo a held signal came with, if it is still recorded (it is given out once).
pub fn take_info(sig: i32) -> Option<libc::siginfo_t> {
    if INFO_VALID.fetch_and(!bit(sig), Ordering::AcqRel) & bit(sig) == 0 {
        return None;
    }
    let slot = &INFO[sig as usize];
    if slot.busy.swap(true, Ordering::Acquire) {
        return None;
    }
    // SAFETY: `busy` gives us the slot; INFO_VALID said it was written.
    let info = unsafe { (*slot.info.get()).assume_init() };
    slot.busy.store(false, Ordering::Release);
    Some(info)
}

/// Raises `sig` on the calling OS thread for the thread whose signal state is `task`: each instance queued
/// for it with its siginfo (see `queued`), in order, so the handler sees the sender's si_code, pid and
/// value; else with the siginfo it was held with when there is one; else as tgkill.
pub fn raise_here(sig: i32, task: &TaskSignals) {
    let (pid, tid) = (sys::getpid(), sys::gettid());
    let owner = task as *const TaskSignals as usize;
    let mut raised = false;
    while let Some(info) = super::queued::take(owner, sig) {
        // To the calling thread itself, which may pass any si_code.
        raised |= sys::signal::tgsigqueueinfo(pid, tid, sig, &info).is_ok();
    }
    if raised {
        return;
    }
    // To the calling thread itself, which may pass any si_code.
    if let Some(info) = take_info(sig)
        && sys::signal::tgsigqueueinfo(pid, tid, sig, &info).is_ok()
    {
        return;
    }
    let _ = sys::signal::tgkill(pid, tid, sig);
}
