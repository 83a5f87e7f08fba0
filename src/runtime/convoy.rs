//! Lock convoys: when one lock serialises a program, a second worker makes it slower, so it steps aside.
//!
//! CPython's GIL is the common case: every thread takes it between system calls. On one worker the
//! coroutines run in turn and each finds the GIL free. On two, the second worker resumes coroutine after
//! coroutine only to see each block on the GIL at once (the lock's holder runs on the first worker): a
//! switch in, a park, a timed wait (CPython's switch interval) and a switch out for nothing, and the GIL's condition variable
//! gathers thousands of waiters whose timeouts then force extra hand-offs: the bench's CPython echo server
//! served fewer round trips on two workers than on one (README, Lock convoys, has the figures).
//!
//! So a worker that sees a convoy *sits out*: it hands its queue (if any) to another worker that is
//! running a coroutine and sleeps for a while ([`SIT_OUT_MIN_NS`], doubling while convoys recur within
//! [`RECUR_WINDOW_NS`], up to [`SIT_OUT_MAX_NS`]), then competes again. A *convoy park* is a coroutine that
//! comes back from some other wait (I/O, a sleep) and blocks on a lock (mutex, condition variable, rwlock,
//! futex). Two rules find a convoy in them: the *rate* (at least `ASYNCSHIM_CONVOY_SHARE` percent, default
//! 12, of the last [`WINDOW`] parks the worker saw were convoy parks: it sits out at its next one), and the
//! *streak* (64, `ASYNCSHIM_CONVOY_STREAK`, convoy parks in a row, each within [`QUICK_NS`] of the one
//! before). The streak alone almost never fires behind a lock some resumes find free (CPython's GIL is
//! dropped and taken around every system call, so a web app's second worker runs Python now and then and
//! breaks every streak, while 16-25% of its parks are convoy parks: bench/web/ANALYSIS.md, section 10).
//! A coroutine woken from a lock wait that waits for a lock again (a thread pool's workers finding the
//! queue empty, a herd woken by a broadcast) shows contention among waiters, not a convoy, and neither
//! counts nor breaks a streak; threads that compute between lock waits make no convoy parks. At least one
//! worker always stays (a sit-out is refused when it would leave none), the monitor calls sitting-out
//! workers back when a worker stalls, and a process signal waiting to be routed ends a sit-out. Nothing
//! about a program's results depends on it: only which worker runs what, and when.
//!
//! One worker alone gets one CPU at most, and only while the kernel gives it one: on a machine with fewer
//! CPUs free than workers, two OS threads get twice one's share. So when the worker left alone waited for
//! a CPU for more than half of a sit-out ([`Detector::end_sit_out`], from the kernel's schedstat), the
//! rate rule pauses for a second.
//!
//! A program whose threads take one contended lock right after I/O and still have more work outside it
//! than one worker can do (a server with a hot mutex and heavy parsing) would lose its second worker to
//! the rate rule for as long as the contention lasts; `ASYNCSHIM_CONVOY_SHARE=0` turns it off.
//!
//! This module is the detector: each worker's streak and sit-out lengths ([`Detector`], a leaf the worker
//! record holds) and the count of workers sitting out. Sitting out itself (handing the queue over,
//! sleeping in `Sleep::SittingOut`, being called back) is the scheduler's, as retiring a spare is.

use crate::runtime::monitor::kernel_view;
use crate::runtime::sys::time;
use core::cell::Cell;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Longest gap between two lock parks of a streak.
const QUICK_NS: u64 = 50_000;
const SIT_OUT_MIN_NS: u64 = 1_000_000;
const SIT_OUT_MAX_NS: u64 = 256_000_000;
/// A convoy this long after the last sit-out ended starts again from the shortest sit-out.
const RECUR_WINDOW_NS: u64 = 1_000_000_000;

/// The share of a sit-out (percent) the worker left alone may wait for a CPU before the rate rule pauses.
const LOADED_PERCENT: u64 = 50;

/// Workers sitting out now.
static SITTING: AtomicUsize = AtomicUsize::new(0);

/// How many workers sit out now (they take no coroutines meanwhile).
pub fn sitting() -> usize {
    SITTING.load(Ordering::Acquire)
}

/// Parks per window of the rate rule (see [`Detector::lock_park`]).
pub const WINDOW: u32 = 64;

/// A worker's convoy detector; touched by the worker's own thread only.
pub struct Detector {
    streak: Cell<u32>,
    last_lock_park: Cell<u64>,
    sit_out_ns: Cell<u64>,
    last_sit_out_end: Cell<u64>,
    /// Parks seen in the rate rule's current window, and the convoy parks among them.
    window_parks: Cell<u32>,
    window_convoy: Cell<u32>,
    /// The last complete window held at least the configured share of convoy parks.
    convoyed: Cell<bool>,
    /// The sit-out in progress: the OS thread of the worker that took the queue over and how long it had
    /// waited for a CPU when it began (see [`Detector::end_sit_out`]).
    took_over: Cell<(i32, Option<u64>)>,
    /// The rate rule is paused until then (monotonic ns): the worker left alone did not get a CPU.
    rate_paused_until: Cell<u64>,
}

impl Detector {
    pub const fn new() -> Detector {
        Detector {
            streak: Cell::new(0),
            last_lock_park: Cell::new(0),
            sit_out_ns: Cell::new(0),
            last_sit_out_end: Cell::new(0),
            window_parks: Cell::new(0),
            window_convoy: Cell::new(0),
            convoyed: Cell::new(false),
            took_over: Cell::new((0, None)),
            rate_paused_until: Cell::new(0),
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
    ///
    /// Two rules, either of which completes a convoy: the *streak* (`ASYNCSHIM_CONVOY_STREAK` convoy parks
    /// in a row, each within [`QUICK_NS`] of the one before), and the *rate*: a worker whose last window
    /// of [`WINDOW`] parks held at least `ASYNCSHIM_CONVOY_SHARE` percent of convoy parks sits out at its
    /// next one. The streak needs every resume to be futile and almost never fires behind a lock that
    /// some resumes find free (CPython's GIL, dropped and taken around every system call: a web app's
    /// windows hold 16-25% of convoy parks, bench/web/ANALYSIS.md); the rate does, while programs whose
    /// threads run in parallel (computing threads, a thread pool fed through a condition variable, a
    /// server without a big lock) make no convoy parks at all.
    #[inline]
    pub fn lock_park(&self, lock: bool, lock_waited_last: bool) -> Option<u64> {
        let parks = self.window_parks.get() + 1;
        let convoy = lock && !lock_waited_last;
        if parks < WINDOW {
            self.window_parks.set(parks);
            if !convoy {
                return None;
            }
            self.window_convoy.set(self.window_convoy.get() + 1);
        } else {
            self.end_window(convoy);
            if !convoy {
                return None;
            }
        }
        // The configuration only after the park's kind: most parks (I/O) are not lock waits, and its
        // look-up (a once-cell's state, then the value) came first at every park.
        let config = crate::config::get();
        if self.convoyed.get() && config.convoy_share != 0 {
            let now = time::monotonic_ns();
            if now >= self.rate_paused_until.get() {
                return Some(now);
            }
        }
        let streak = config.convoy_streak;
        if streak == 0 {
            return None;
        }
        let now = time::monotonic_ns();
        let quick = now.saturating_sub(self.last_lock_park.get()) <= QUICK_NS;
        self.last_lock_park.set(now);
        self.streak.set(if quick { self.streak.get() + 1 } else { 1 });
        (self.streak.get() >= streak).then_some(now)
    }

    /// A window of the rate rule is complete with this park (`convoy`: a convoy park).
    #[cold]
    #[inline(never)]
    fn end_window(&self, convoy: bool) {
        let n = self.window_convoy.get() + convoy as u32;
        let share = crate::config::get().convoy_share;
        self.convoyed.set(share != 0 && n * 100 >= share * WINDOW);
        self.window_parks.set(0);
        self.window_convoy.set(0);
    }

    /// The worker sits out from `now`, counted among the workers sitting out, unless `unstalled` (the
    /// workers taking coroutines, counted after this one is taken off) says none would be left. Returns
    /// how long it sits out: the shortest sit-out, doubled while convoys recur within a second.
    ///
    /// `took_over` is the OS thread of the worker that takes the queue over: [`Self::end_sit_out`] looks
    /// at how long it waited for a CPU meanwhile.
    pub fn begin_sit_out(&self, now: u64, took_over: i32, unstalled: impl FnOnce() -> usize) -> Option<u64> {
        // Never the last worker taking coroutines (the count of those excludes the workers sitting out,
        // this one included once counted).
        SITTING.fetch_add(1, Ordering::AcqRel);
        if unstalled() == 0 {
            SITTING.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        self.streak.set(0);
        // Back from the sit-out, a new window decides again.
        self.convoyed.set(false);
        self.window_parks.set(0);
        self.window_convoy.set(0);
        let length = if now.saturating_sub(self.last_sit_out_end.get()) > RECUR_WINDOW_NS {
            SIT_OUT_MIN_NS
        } else {
            (self.sit_out_ns.get() * 2).clamp(SIT_OUT_MIN_NS, SIT_OUT_MAX_NS)
        };
        self.sit_out_ns.set(length);
        self.took_over.set((took_over, kernel_view::run_delay_ns(took_over)));
        Some(length)
    }

    /// The sit-out begun with [`Self::begin_sit_out`] at `start` ended at `end`. If the worker that took
    /// the queue over waited for a CPU for more than [`LOADED_PERCENT`] of that time, the machine has
    /// fewer CPUs free than workers: one worker alone then gets less CPU than two (each OS thread gets its
    /// share from the kernel) and the coroutines' latency suffers from every time slice it loses, so the
    /// rate rule pauses for [`RECUR_WINDOW_NS`]. Returns whether it did.
    pub fn end_sit_out(&self, start: u64, end: u64) -> bool {
        self.last_sit_out_end.set(end);
        SITTING.fetch_sub(1, Ordering::AcqRel);
        let (tid, before) = self.took_over.replace((0, None));
        let waited = before.zip(kernel_view::run_delay_ns(tid)).map_or(0, |(b, a)| a.saturating_sub(b));
        let loaded = waited * 100 > end.saturating_sub(start) * LOADED_PERCENT;
        if loaded {
            self.rate_paused_until.set(end + RECUR_WINDOW_NS);
        }
        loaded
    }
}

impl Default for Detector {
    fn default() -> Self {
        Detector::new()
    }
}
