//! How others reach the monitor thread without depending on it: starting it, whether it runs, and a
//! doorbell that wakes it early (a report asked for, a fault or a thread listing to serve). A leaf, so that
//! thread creation, cancellation, the signal handlers and `unwind` can reach the monitor while the monitor
//! itself imports them (it runs the report, judges stalls with the scheduler, asks for preemptions).
//!
//! The seam: the monitor thread's body is the monitor module's, which this leaf cannot name, so
//! [`set_entry`] gives it once at start-up, before any thread could start the monitor.

use crate::runtime::os_thread::{self, StartFn};
use crate::runtime::sys::{futex, time};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

static STARTED: AtomicBool = AtomicBool::new(false);
/// The monitor sleeps on this word; bumped to wake it early (report requested).
static WAKE: AtomicU32 = AtomicU32::new(0);

/// The monitor thread's body (a `StartFn`; 0 until [`set_entry`]).
static ENTRY: AtomicUsize = AtomicUsize::new(0);

/// Gives the monitor thread's body, once at start-up.
pub fn set_entry(entry: StartFn) {
    ENTRY.store(entry as usize, Ordering::Release);
}

/// Starts the monitor once the program has a second thread (a lone coroutine can stall nothing).
#[inline]
pub fn ensure_started() {
    if !STARTED.load(Ordering::Relaxed) && !STARTED.swap(true, Ordering::AcqRel) {
        let config = crate::config::get();
        // ASYNCSHIM_STALL_MS=0 turns stall detection off; the thread is then only there for the report signal.
        if config.stall_ns == 0 && config.slice_ns == 0 && config.stats_signal.is_none() {
            return;
        }
        let entry = match ENTRY.load(Ordering::Acquire) {
            0 => None,
            // SAFETY: a nonzero ENTRY was stored from a `StartFn` by `set_entry`.
            e => Some(unsafe { core::mem::transmute::<usize, StartFn>(e) }),
        };
        // SAFETY: the monitor takes no argument and lives for the process.
        if !entry.is_some_and(|f| unsafe { os_thread::start(f, core::ptr::null_mut()) }) {
            STARTED.store(false, Ordering::Release);
        }
    }
}

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

/// The monitor sleeps for `tick_ns`, or until poked.
pub(super) fn sleep(tick_ns: u64) {
    let word = WAKE.load(Ordering::Acquire);
    futex::wait(&WAKE, word, Some(time::monotonic_ns() + tick_ns));
}
