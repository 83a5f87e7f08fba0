//! How others reach the monitor thread without depending on it: whether it runs, and a doorbell that wakes
//! it early (a report asked for, a fault or a thread listing to serve). A leaf, so that the signal
//! handlers and `unwind` can ring it while the monitor itself imports them.

use crate::runtime::sys::{futex, time};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

static STARTED: AtomicBool = AtomicBool::new(false);
/// The monitor sleeps on this word; bumped to wake it early (report requested).
static WAKE: AtomicU32 = AtomicU32::new(0);

/// True once the monitor thread runs or is starting (async-signal-safe).
pub fn started() -> bool {
    let config = crate::config::get();
    STARTED.load(Ordering::Acquire) && (config.stall_ns != 0 || config.stats_signal.is_some())
}

/// Wakes the monitor now (async-signal-safe).
pub fn poke() {
    WAKE.fetch_add(1, Ordering::Release);
    futex::wake(&WAKE, 1);
}

/// True for the one caller that is to start the monitor thread (the first, or the first after a start
/// that failed).
#[inline]
pub(super) fn claim_start() -> bool {
    !STARTED.load(Ordering::Relaxed) && !STARTED.swap(true, Ordering::AcqRel)
}

/// The monitor thread could not be started: a later caller tries again.
pub(super) fn start_failed() {
    STARTED.store(false, Ordering::Release);
}

/// The monitor sleeps for `tick_ns`, or until poked.
pub(super) fn sleep(tick_ns: u64) {
    let word = WAKE.load(Ordering::Acquire);
    futex::wait(&WAKE, word, Some(time::monotonic_ns() + tick_ns));
}
