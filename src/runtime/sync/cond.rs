//! Condition variables. A waiter queues on the condition variable's address and only then unlocks the
//! mutex (under the parking lot's bucket lock ordering), so a signal sent after the unlock always finds
//! it: no lost wake-ups. Nothing is stored in the `pthread_cond_t` except what `pthread_cond_init` put
//! there (the clock and process-shared bits, which glibc keeps in `__wrefs`).
//!
//! ## Wait morphing (`ASYNCSHIM_COND_MORPH=1`, two or more workers)
//! A signal or broadcast sent while the waiters' mutex is locked (typically by the signaller) does not wake
//! them only to find it taken and park again: it moves them straight onto the mutex's queue in the
//! parking lot, and the unlock hands the mutex to them one at a time (`parking_lot::unpark_or_requeue`).
//! glibc's own condition variables cannot do this since 2.25; here the runtime owns both queues. Each
//! waiter says in its park token where it may be moved (a [`Waiter`] on its stack: its mutex's key, or
//! none for the kinds with protocols of their own), so a condition variable used with several mutexes
//! moves each waiter to its own, and the moved waiter learns it was moved. A moved waiter was signalled:
//! its wait returns 0 whenever its deadline passes (POSIX: a signalled wait returns 0 once it has the mutex
//! again), a handled signal runs and the wait goes on where it is, and a cancellation passes the signal on
//! to another waiter before the cleanup handlers run (as glibc's cancelled waiter does), so none is lost.
//! Off by default: it removes most such futile mutex waits (85% of a CPython GIL's) but costs every
//! hand-off a second trip through the mutex's queue (+29% for a mutex + condition-variable ping-pong on
//! two workers), and no program measured faster with it (bench/web/ANALYSIS.md, section 9). Off, waits,
//! signals and broadcasts read one flag set at start-up (`MORPHING`) and otherwise run the plain code:
//! token 0, no record on the stack, the mutex's own lock after the wake-up.

use super::super::park::{OnSignal, Wait, WaitReason};
use super::super::parking_lot::{self, Parked};
use super::mutex::Mutex;
use super::{Deadline, Unsupported};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

const WREFS_SHARED: u32 = 1;
const WREFS_CLOCK_MONOTONIC: u32 = 2;

pub struct Cond {
    key: usize,
    wrefs: u32,
}

impl Cond {
    /// # Safety
    /// `c` must point at a live, initialised `pthread_cond_t`.
    pub unsafe fn at(c: *mut libc::pthread_cond_t) -> Result<Cond, Unsupported> {
        // `__wrefs` of glibc's `struct __pthread_cond_s` (byte 36, 28 since 2.41 and in some 2.38-2.40 builds).
        let at = super::super::identity::cond_wrefs_offset();
        // SAFETY: an aligned u32 inside the 48-byte object.
        let wrefs = unsafe { (*((c as *const u8).add(at) as *const AtomicU32)).load(Ordering::Relaxed) };
        if wrefs & WREFS_SHARED != 0 {
            return Err(Unsupported);
        }
        Ok(Cond { key: c as usize, wrefs })
    }

    /// The clock `pthread_cond_timedwait` measures its absolute time on (set by pthread_condattr_setclock).
    pub fn clock(&self) -> libc::clockid_t {
        if self.wrefs & WREFS_CLOCK_MONOTONIC != 0 { libc::CLOCK_MONOTONIC } else { libc::CLOCK_REALTIME }
    }

    /// Waits for a signal (or `deadline`), with `m` unlocked meanwhile and locked again on return.
    /// Returns 0, ETIMEDOUT, or EPERM for an errorcheck/recursive mutex the caller does not own.
    pub fn wait(&self, m: &Mutex, deadline: Deadline) -> i32 {
        if MORPHING.load(Ordering::Relaxed) {
            return self.wait_morphable(m, deadline);
        }
        if m.not_owned_checked() {
            return libc::EPERM;
        }
        self.wait_with(
            || {
                m.unlock();
            },
            || m.lock(None, None),
            deadline,
        )
    }

    /// The wait itself, for any mutex the caller holds: `unlock` runs once the caller is queued (so no
    /// signal sent after it is missed), `relock` after the wake-up; an error of the relock (EOWNERDEAD of a
    /// robust mutex) is the wait's result, as in glibc. Its waiters are never moved (their token is 0).
    pub fn wait_with(&self, unlock: impl FnOnce(), relock: impl FnOnce() -> i32, deadline: Deadline) -> i32 {
        let r = self.park(0, unlock, deadline);
        relocked(r, relock())
    }

    /// [`Cond::wait`] with wait morphing on: the park token points at a [`Waiter`] on this frame, which
    /// says where a signal may move the waiter and whether one did.
    #[cold]
    #[inline(never)]
    fn wait_morphable(&self, m: &Mutex, deadline: Deadline) -> i32 {
        if m.not_owned_checked() {
            return libc::EPERM;
        }
        let me = Waiter { mutex: m.morph_key().unwrap_or(0), moved: AtomicBool::new(false) };
        let r = self.park(
            &me as *const Waiter as usize,
            || {
                m.unlock();
            },
            deadline,
        );
        if !me.moved.load(Ordering::Acquire) {
            return relocked(r, m.lock(None, None));
        }
        let relocked = match r {
            // The unlock handed the mutex on to us: lock it as its queue's waiters do.
            Parked::Unparked(more) => m.lock_moved(more != 0),
            // Left the mutex's queue, signalled (the deadline no longer counts), or cancelled.
            Parked::TimedOut | Parked::Invalid | Parked::Interrupted => m.lock(None, None),
        };
        // Cancelled with the signal in hand (the call returns only to act on the request): another waiter
        // gets it, as glibc's cancelled waiter passes on a signal it may have consumed.
        if r == Parked::Interrupted || cancelled() {
            self.signal();
        }
        relocked
    }

    fn park(&self, token: usize, unlock: impl FnOnce(), deadline: Deadline) -> Parked {
        // A handler that ran in this thread meanwhile returned with the waiter still queued, as glibc's
        // waiter stays counted in its group: the wait went on.
        let wait = Wait::new(WaitReason::Cond, self.key, OnSignal::ResumeInPlace).until(deadline);
        parking_lot::park(self.key, token, || true, unlock, wait)
    }

    pub fn signal(&self) {
        if !parking_lot::may_have_waiters(self.key) {
            return;
        }
        if MORPHING.load(Ordering::Relaxed) {
            self.wake_or_move(1);
            return;
        }
        parking_lot::unpark_one(self.key, |_| 0);
    }

    pub fn broadcast(&self) {
        if !parking_lot::may_have_waiters(self.key) {
            return;
        }
        if MORPHING.load(Ordering::Relaxed) {
            self.wake_or_move(usize::MAX);
            return;
        }
        parking_lot::unpark_all(self.key, 0);
    }

    /// Wakes up to `limit` waiters, or moves them onto their mutex's queue while it is locked (wait
    /// morphing on).
    #[cold]
    #[inline(never)]
    fn wake_or_move(&self, limit: usize) {
        parking_lot::unpark_or_requeue(
            self.key,
            limit,
            |token| match token {
                // A waiter that is never moved, or one a signal handler may have left for good
                // (`parking_lot::forget_token`).
                0 => None,
                // SAFETY: the lot reads the tokens of queued waiters only, whose `Waiter`s live until they
                // leave the queue (under the lock the lot holds) or forget their token.
                _ => match unsafe { (*(token as *const Waiter)).mutex } {
                    0 => None,
                    key => Some(key),
                },
            },
            // SAFETY: the key of a queued waiter's mutex, which it will lock again: alive.
            |key| unsafe { super::mutex::mark_waiters_if_locked(key) },
            // SAFETY: as for the first closure (the waiter is being moved under the lot's locks).
            |token| unsafe { (*(token as *const Waiter)).moved.store(true, Ordering::Release) },
        );
    }
}

/// Wait morphing (`ASYNCSHIM_COND_MORPH=1`) with two or more workers: set once at start-up, read by every
/// wait, signal and broadcast (one load: with it off, they are the plain wake-up's code and nothing more).
/// With one worker, never: a woken coroutine cannot run before its waker switches out, which it does (in
/// its own condition wait, or past its unlock) almost always with the mutex free, so the move would cost a
/// second trip through the mutex's queue and save nothing (counted: +27% instructions per hand-off of a
/// mutex + condition variable ping-pong).
static MORPHING: AtomicBool = AtomicBool::new(false);

/// At start-up, before any coroutine runs: whether condition variables morph their waits.
pub fn init(cond_morph: bool, workers: usize) {
    MORPHING.store(cond_morph && workers > 1, Ordering::Relaxed);
}

/// A wait's result from its park's and its relock's.
fn relocked(r: Parked, relocked: i32) -> i32 {
    match relocked {
        0 if r == Parked::TimedOut => libc::ETIMEDOUT,
        e => e,
    }
}

/// A cancellation request ended the calling coroutine's wait (or came while it was woken): its point
/// acts on it as the wait returns.
fn cancelled() -> bool {
    super::super::worker::current_task().is_some_and(|me| me.cancel.point_cancelled())
}

/// A waiter's park token points at this, on its stack: where a signal may move it (its mutex's key; 0:
/// nowhere) and whether one did.
struct Waiter {
    mutex: usize,
    moved: AtomicBool,
}
