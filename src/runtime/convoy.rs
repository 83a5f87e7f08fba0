//! Lock convoys: when one lock serialises a program, a second worker makes it slower, so it steps aside.
//!
//! CPython's GIL is the common case: every thread takes it between system calls. On one worker the
//! coroutines run in turn and each finds the GIL free. On two, the second worker resumes coroutine after
//! coroutine only to see each block on the GIL at once (the lock's holder runs on the first worker): a
//! switch in, a park, a timed wait (CPython's switch interval) and a switch out for nothing, and the GIL's condition variable
//! gathers thousands of waiters whose timeouts then force extra hand-offs: the bench's CPython echo server
//! served fewer round trips on two workers than on one (README, Lock convoys, has the figures).
//!
//! So a worker that has seen 64 (`ASYNCSHIM_CONVOY_STREAK`) coroutines in a row come back from some other
//! wait (I/O, a sleep) and block on a lock (mutex, condition variable, rwlock, futex), each within
//! [`QUICK_NS`] of the one before, while it still has coroutines queued and another worker is running one,
//! *sits out*: it hands its queue to that worker and sleeps for a while ([`SIT_OUT_MIN_NS`], doubling while
//! convoys recur within [`RECUR_WINDOW_NS`], up to [`SIT_OUT_MAX_NS`]), then competes again. A coroutine woken from a lock wait that waits for a
//! lock again (a thread pool's workers finding the queue empty, a herd woken by a broadcast) shows
//! contention among waiters, not a convoy, and neither counts nor breaks a streak; a worker that computes
//! between lock waits breaks it, and a worker with nothing else queued never sits out. At least one worker
//! always stays (a sit-out is refused when it would leave none), the monitor calls sitting-out workers back
//! when a worker stalls, and a process signal waiting to be routed ends a sit-out. Nothing about a program's
//! results depends on it: only which worker runs what, and when.
//!
//! This module is the detector: each worker's streak and sit-out lengths ([`Detector`], a leaf the worker
//! record holds) and the count of workers sitting out. Sitting out itself (handing the queue over,
//! sleeping in `Sleep::SittingOut`, being called back) is the scheduler's, as retiring a spare is.

use crate::runtime::sys::time;
use core::cell::Cell;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Longest gap between two lock parks of a streak.
const QUICK_NS: u64 = 50_000;
const SIT_OUT_MIN_NS: u64 = 1_000_000;
const SIT_OUT_MAX_NS: u64 = 64_000_000;
/// A convoy this long after the last sit-out ended starts again from the shortest sit-out.
const RECUR_WINDOW_NS: u64 = 1_000_000_000;

/// Workers sitting out now.
static SITTING: AtomicUsize = AtomicUsize::new(0);

/// How many workers sit out now (they take no coroutines meanwhile).
pub fn sitting() -> usize {
    SITTING.load(Ordering::Acquire)
}

/// A worker's convoy detector; touched by the worker's own thread only.
pub struct Detector {
    streak: Cell<u32>,
    last_lock_park: Cell<u64>,
    sit_out_ns: Cell<u64>,
    last_sit_out_end: Cell<u64>,
}

impl Detector {
    pub const fn new() -> Detector {
        Detector {
            streak: Cell::new(0),
            last_lock_park: Cell::new(0),
            sit_out_ns: Cell::new(0),
            last_sit_out_end: Cell::new(0),
        }
    }

    /// The worker has just seen a coroutine park; `lock`: for a lock, `lock_waited_last`: its park before
    /// was one too. Returns the time now (monotonic ns) when this park completes a convoy streak: the
    /// worker is then to sit out if it has coroutines queued and another worker runs one.
    ///
    /// Only a lock wait that follows some other kind of wait (I/O, a sleep) counts: a coroutine that came
    /// back with work of its own and found the lock taken. One woken from a lock wait that waits for a
    /// lock again (a thread pool's workers finding the queue empty, a herd woken by a broadcast) is
    /// contention among waiters, which a second worker does not make worse: such parks neither count nor
    /// break a streak.
    #[inline]
    pub fn lock_park(&self, lock: bool, lock_waited_last: bool) -> Option<u64> {
        // The configuration only after the park's kind: most parks (I/O) are not lock waits, and its
        // look-up (a once-cell's state, then the value) came first at every park.
        if lock_waited_last || !lock {
            return None;
        }
        let streak = crate::config::get().convoy_streak;
        if streak == 0 {
            return None;
        }
        let now = time::monotonic_ns();
        let quick = now.saturating_sub(self.last_lock_park.get()) <= QUICK_NS;
        self.last_lock_park.set(now);
        self.streak.set(if quick { self.streak.get() + 1 } else { 1 });
        (self.streak.get() >= streak).then_some(now)
    }

    /// The worker sits out from `now`, counted among the workers sitting out, unless `unstalled` (the
    /// workers taking coroutines, counted after this one is taken off) says none would be left. Returns
    /// how long it sits out: the shortest sit-out, doubled while convoys recur within a second.
    pub fn begin_sit_out(&self, now: u64, unstalled: impl FnOnce() -> usize) -> Option<u64> {
        // Never the last worker taking coroutines (the count of those excludes the workers sitting out,
        // this one included once counted).
        SITTING.fetch_add(1, Ordering::AcqRel);
        if unstalled() == 0 {
            SITTING.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        self.streak.set(0);
        let length = if now.saturating_sub(self.last_sit_out_end.get()) > RECUR_WINDOW_NS {
            SIT_OUT_MIN_NS
        } else {
            (self.sit_out_ns.get() * 2).clamp(SIT_OUT_MIN_NS, SIT_OUT_MAX_NS)
        };
        self.sit_out_ns.set(length);
        Some(length)
    }

    /// The sit-out begun with [`Self::begin_sit_out`] ended at `end`.
    pub fn end_sit_out(&self, end: u64) {
        self.last_sit_out_end.set(end);
        SITTING.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Default for Detector {
    fn default() -> Self {
        Detector::new()
    }
}
