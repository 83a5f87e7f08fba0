//! The cancellation state the park paths read and write (a leaf): a coroutine's, in its task record
//! ([`CancelState`]), and a plain thread's waits inside a cancellation point ([`plain`]).
//!
//! `cancel` holds the policy (pthread_cancel, cancellation points, glibc's unwinding) and acts on this
//! state; the scheduler core only arms and notes parks through it ([`CancelState::on_park`],
//! [`CancelState::after_park`]), so the core does not call up into the policy.

use core::cell::Cell;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Cancellation disabled (pthread_setcancelstate).
pub const DISABLED: u32 = 1;
/// Asynchronous cancellation type.
pub const ASYNC: u32 = 2;
/// Cancellation was requested.
pub const REQUESTED: u32 = 4;
/// The thread is exiting (pthread_exit, or a cancellation being acted on): no further request is acted on.
pub const EXITING: u32 = 8;

/// In [`CancelState::park`] (park generation + 1 in the low 32 bits): a request claimed this park to end it.
const CLAIMED: u64 = 1 << 32;

/// glibc's PTHREAD_CANCEL_ENABLE, _DISABLE, _DEFERRED, _ASYNCHRONOUS (pthread.h).
pub const CANCEL_ENABLE: i32 = 0;
pub const CANCEL_DISABLE: i32 = 1;
pub const CANCEL_DEFERRED: i32 = 0;
pub const CANCEL_ASYNCHRONOUS: i32 = 1;

/// Whether a request is to be acted on at a cancellation point now.
#[inline]
pub fn actionable(c: u32) -> bool {
    c & (DISABLED | REQUESTED | EXITING) == REQUESTED
}

/// Whether a request is to be acted on at once, anywhere (asynchronous type).
#[inline]
pub fn actionable_async(c: u32) -> bool {
    actionable(c) && c & ASYNC != 0
}

/// A coroutine's pthread cancellation state, in its task record.
///
/// A request and a park begun inside a cancellation point meet by a Dekker handshake: the parker publishes
/// its park in `park` and then reads `word`; the requester sets REQUESTED in `word` and then reads `park`
/// (both sequentially consistent). At least one of them sees the other's write, so either the requester
/// claims and ends the park, or the parker sees the request and ends its own park as soon as it begins.
pub struct CancelState {
    /// pthread cancellation state and request (DISABLED, ASYNC, REQUESTED, EXITING).
    pub word: AtomicU32,
    /// Park generation + 1 of the task's last park if it began inside a cancellation point, else 0; with
    /// a bit a request sets to claim it.
    pub park: AtomicU64,
    /// A request ended a park of the task's current cancellation point.
    pub point_cancelled: Cell<bool>,
    /// The task is inside a cancellation point (set by the point's hook).
    pub at_point: Cell<bool>,
}

impl CancelState {
    pub const fn new() -> CancelState {
        CancelState {
            word: AtomicU32::new(0),
            park: AtomicU64::new(0),
            point_cancelled: Cell::new(false),
            at_point: Cell::new(false),
        }
    }

    /// Resets the state for a new thread on a (possibly reused) task record.
    pub fn reset(&self) {
        self.word.store(0, Ordering::SeqCst);
        self.park.store(0, Ordering::SeqCst);
        self.at_point.set(false);
        self.point_cancelled.set(false);
    }

    /// Called for every park a coroutine begins (generation `park`): inside a cancellation point, the park
    /// can be ended by a request. Returns true if one is already pending: the caller ends the park at once
    /// (`park::interrupt_park` with `Interruption::Cancel`). Once a request ended a park of the point, the
    /// point's later parks (a condition variable re-locking its mutex) are not ended again: the point
    /// returns and acts.
    #[inline]
    pub fn on_park(&self, park: u32) -> bool {
        if !self.at_point.get() || self.point_cancelled.get() {
            self.park.store(0, Ordering::Relaxed);
            return false;
        }
        self.park.store(park as u64 + 1, Ordering::SeqCst);
        if !actionable(self.word.load(Ordering::SeqCst)) {
            return false;
        }
        // A request came between the entry check and now: the park ends as soon as it begins.
        self.park.store((park as u64 + 1) | CLAIMED, Ordering::SeqCst);
        true
    }

    /// Called when a park of the coroutine ends (it runs again, `interrupted` if the park ended so): if a
    /// request claimed the park and it ended as interrupted, the current cancellation point is cancelled
    /// (a signal may have won the race to end the park; the request is pending all the same, so acting
    /// on it is right).
    #[inline]
    pub fn after_park(&self, interrupted: bool) {
        if self.at_point.get() && self.park.load(Ordering::SeqCst) & CLAIMED != 0 && interrupted {
            self.point_cancelled.set(true);
        }
    }

    /// For a request: claims the park the task waits in inside a cancellation point, if any and not
    /// claimed yet. Returns its generation, which the caller ends. A park begun after the look checks the
    /// request itself (see [`CancelState::on_park`]).
    pub fn claim_park(&self) -> Option<u32> {
        let p = self.park.load(Ordering::SeqCst);
        if p == 0 || p & CLAIMED != 0 {
            return None;
        }
        self.park.compare_exchange(p, p | CLAIMED, Ordering::SeqCst, Ordering::SeqCst).ok().map(|_| (p - 1) as u32)
    }

    /// Whether a cancellation request ended a park of the current cancellation point.
    #[inline]
    pub fn point_cancelled(&self) -> bool {
        self.point_cancelled.get()
    }
}

impl Default for CancelState {
    fn default() -> Self {
        CancelState::new()
    }
}

/// Cancellation of plain threads (real OS threads the shim does not run as coroutines) stays glibc's: its
/// requests, state and unwinding. Only the waits the runtime makes for them inside a cancellation point
/// (a condition variable or semaphore the runtime runs) are not glibc's, so glibc's request, which sends no
/// signal to a thread with deferred cancellation, would not end them: `pthread_cancel` pokes such a wait
/// (its futex word goes from 0 to [`POKE`]); the waiter, if its cancellation is enabled, ends the wait with
/// cancellation disabled for a moment and the hook then lets glibc act (`pthread_testcancel`).
pub mod plain {
    use crate::runtime::cancel_state::{CANCEL_DISABLE, CANCEL_ENABLE};
    use crate::runtime::lock::Lock;
    use crate::runtime::sys::futex;
    use core::cell::Cell;
    use core::sync::atomic::{AtomicU32, Ordering};

    /// The value a poke leaves in a parked plain thread's futex word (an unpark stores 1).
    const POKE: u32 = 2;

    /// Plain threads parked by the runtime inside a cancellation point: (pthread_t, futex word address).
    static PARKED: Lock<Vec<(usize, usize)>> = Lock::new(Vec::new());

    // Plain threads only (never read on a coroutine, whose FS names its own TLS): whether the thread is
    // inside a cancellation point, and whether a wait of the point was ended for a request.
    thread_local! {
        static AT_POINT: Cell<bool> = const { Cell::new(false) };
        static TAKEN: Cell<bool> = const { Cell::new(false) };
    }

    fn self_id() -> usize {
        // SAFETY: pthread_self has no preconditions.
        unsafe { libc::pthread_self() as usize }
    }

    /// Point entry of a plain thread: glibc acts on a pending request; returns the outer point flag.
    pub fn enter() -> bool {
        // SAFETY: glibc's own check on the calling plain thread, as its cancellation points make.
        unsafe { crate::real::pthread_testcancel() };
        AT_POINT.with(|a| a.replace(true))
    }

    /// Point exit of a plain thread: if a wait ended for a request, enable cancellation again and let
    /// glibc act on it.
    pub fn leave(outer: bool) {
        AT_POINT.with(|a| a.set(outer));
        if TAKEN.with(|t| t.replace(false)) {
            // SAFETY: glibc's calls on the calling plain thread; testcancel unwinds it (glibc's request).
            unsafe {
                crate::real::pthread_setcancelstate(CANCEL_ENABLE, core::ptr::null_mut());
                crate::real::pthread_testcancel();
            }
        }
    }

    /// A plain thread parks on `word` (0 until unparked): registered for pokes if inside a point. Only
    /// for plain threads (the parking lot's thread parker): a coroutine's FS names its own TLS.
    pub fn parking(word: &AtomicU32) -> bool {
        if !AT_POINT.with(|a| a.get()) {
            return false;
        }
        PARKED.lock().push((self_id(), word as *const AtomicU32 as usize));
        true
    }

    /// Whether a poke asks the parked plain thread to end its wait: only if its cancellation is enabled,
    /// which is then disabled until the point's hook lets glibc act ([`leave`]).
    pub fn poked(word: &AtomicU32) -> bool {
        if word.compare_exchange(POKE, 0, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return false;
        }
        let mut old = 0;
        // SAFETY: glibc's call on the calling plain thread; disabling never acts on a request.
        unsafe { crate::real::pthread_setcancelstate(CANCEL_DISABLE, &mut old) };
        if old != CANCEL_ENABLE {
            // Disabled: the request waits for the thread to enable it; the wait goes on.
            return false;
        }
        TAKEN.with(|t| t.set(true));
        true
    }

    /// The parked plain thread's wait ended: no more pokes, and none left in its word.
    pub fn parked(word: &AtomicU32) {
        let addr = word as *const AtomicU32 as usize;
        let mut p = PARKED.lock();
        p.retain(|&(_, w)| w != addr);
        let _ = word.compare_exchange(POKE, 0, Ordering::AcqRel, Ordering::Acquire);
    }

    /// After glibc's pthread_cancel of plain thread `t`: pokes its wait if it is parked in a point.
    pub fn poke(t: libc::pthread_t) {
        let p = PARKED.lock();
        for &(id, w) in p.iter().filter(|&&(id, _)| id == t as usize) {
            let _ = id;
            // SAFETY: registered words stay alive until their thread deregisters them under this lock.
            let word = unsafe { &*(w as *const AtomicU32) };
            if word.compare_exchange(0, POKE, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                futex::wake(word, 1);
            }
        }
    }
}
