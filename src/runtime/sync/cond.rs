//! Condition variables. A waiter queues on the condition variable's address and only then unlocks the
//! mutex (under the parking lot's bucket lock ordering), so a signal sent after the unlock always finds
//! it: no lost wake-ups. Nothing is stored in the `pthread_cond_t` except what `pthread_cond_init` put
//! there (the clock and process-shared bits, which glibc keeps in `__wrefs`).

use super::super::park::{OnSignal, Wait, WaitReason};
use super::super::parking_lot::{self, Parked};
use super::mutex::Mutex;
use super::{Deadline, Unsupported};
use core::sync::atomic::{AtomicU32, Ordering};

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
    /// robust mutex) is the wait's result, as in glibc.
    pub fn wait_with(&self, unlock: impl FnOnce(), relock: impl FnOnce() -> i32, deadline: Deadline) -> i32 {
        // A handler that ran in this thread meanwhile returned with the waiter still queued, as glibc's
        // waiter stays counted in its group: the wait went on.
        let wait = Wait::new(WaitReason::Cond, self.key, OnSignal::ResumeInPlace).until(deadline);
        let r = parking_lot::park(self.key, 0, || true, unlock, wait);
        match relock() {
            0 if r == Parked::TimedOut => libc::ETIMEDOUT,
            e => e,
        }
    }

    pub fn signal(&self) {
        parking_lot::unpark_one(self.key, |_| 0);
    }

    pub fn broadcast(&self) {
        parking_lot::unpark_all(self.key, 0);
    }
}
