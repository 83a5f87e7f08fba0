//! Priority-inheritance mutexes that are not process-shared or robust (plain, recursive, errorcheck). glibc
//! hands contended PI mutexes to the kernel (FUTEX_LOCK_PI/UNLOCK_PI), which finds the owner by the tid in
//! the lock word; a coroutine's tid is a fake one the kernel does not know, so a real thread contending
//! with a coroutine owner would get ESRCH (glibc then blocks forever, or asserts for robust ones). Every
//! call on a process-private mutex in this process reaches the hooks, so the runtime runs these mutexes
//! itself: glibc's PI word (owner tid, FUTEX_WAITERS) and owner/count/user fields, with waiters in the
//! parking lot instead of the kernel's PI chain.
//!
//! Priority boosting is not done: between coroutines of one worker it is moot (the worker runs one at a
//! time and a waiting coroutine does not hold the CPU), and a real-time OS thread waiting for a coroutine
//! owner is not lent its priority.
//!
//! Robust PI mutexes stay with glibc: glibc marks every robust mutex process-shared in its kind, so a
//! private one cannot be told from one in shared memory, which must stay kernel-correct.

use super::super::park::{OnSignal, Wait, WaitReason};
use super::super::parking_lot::{self, Parked};
use super::mutex::{KIND_RECURSIVE, Mutex};
use super::{Deadline, my_tid};
use core::sync::atomic::Ordering;

const FUTEX_WAITERS: i32 = 0x8000_0000u32 as i32;
const FUTEX_TID_MASK: i32 = 0x3fff_ffff;

impl Mutex {
    /// Relocking by the owner: Some(result) ends the call.
    fn pi_reentry(&self, tid: i32, trying: bool) -> Option<i32> {
        if self.lock.load(Ordering::Relaxed) & FUTEX_TID_MASK != tid {
            return None;
        }
        // A plain PI mutex relocked by its owner: trylock says busy; lock deadlocks, as natively.
        self.relock_by_owner().or(if trying { Some(libc::EBUSY) } else { None })
    }

    /// Takes the word if it is free, setting the waiters bit when `waiters` (the caller has parked, so
    /// others may still be parked too).
    fn pi_take(&self, tid: i32, waiters: bool) -> Result<(), i32> {
        let new = if waiters { tid | FUTEX_WAITERS } else { tid };
        match self.lock.compare_exchange(0, new, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => Ok(()),
            Err(cur) => Err(cur),
        }
    }

    pub(super) fn pi_trylock(&self) -> i32 {
        let tid = my_tid();
        if let Some(r) = self.pi_reentry(tid, true) {
            return r;
        }
        match self.pi_take(tid, false) {
            Ok(()) => self.pi_acquired(tid),
            Err(_) => libc::EBUSY,
        }
    }

    pub(super) fn pi_lock(&self, deadline: Deadline, deadline_error: Option<i32>) -> i32 {
        let tid = my_tid();
        if let Some(r) = self.pi_reentry(tid, false) {
            return r;
        }
        if self.pi_take(tid, false).is_err()
            && let Err(e) = self.pi_wait(tid, deadline, deadline_error)
        {
            return e;
        }
        self.pi_acquired(tid)
    }

    #[cold]
    fn pi_wait(&self, tid: i32, deadline: Deadline, deadline_error: Option<i32>) -> Result<(), i32> {
        let mut parked = false;
        loop {
            let cur = match self.pi_take(tid, parked) {
                Ok(()) => return Ok(()),
                Err(cur) => cur,
            };
            if let Some(e) = deadline_error {
                return Err(e);
            }
            let marked = cur | FUTEX_WAITERS;
            if cur != marked && self.lock.compare_exchange(cur, marked, Ordering::Relaxed, Ordering::Relaxed).is_err() {
                continue;
            }
            let lock = self.lock;
            let wait = Wait::new(WaitReason::Mutex, self.key(), OnSignal::Resume).until(deadline);
            let r = parking_lot::park(self.key(), 0, || lock.load(Ordering::Relaxed) == marked, || {}, wait);
            if r == Parked::TimedOut {
                return Err(libc::ETIMEDOUT);
            }
            parked = true;
        }
    }

    /// glibc's bookkeeping once the word is ours.
    fn pi_acquired(&self, tid: i32) -> i32 {
        self.count.store(1, Ordering::Relaxed);
        self.owner.store(tid, Ordering::Relaxed);
        self.nusers.store(self.nusers.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        0
    }

    pub(super) fn pi_unlock(&self) -> i32 {
        let tid = my_tid();
        if self.kind == KIND_RECURSIVE {
            if self.owner.load(Ordering::Relaxed) != tid {
                return libc::EPERM;
            }
            let c = self.count.load(Ordering::Relaxed);
            self.count.store(c.wrapping_sub(1), Ordering::Relaxed);
            if c > 1 {
                return 0;
            }
        } else if self.lock.load(Ordering::Relaxed) & FUTEX_TID_MASK != tid {
            return libc::EPERM;
        }
        self.owner.store(0, Ordering::Relaxed);
        self.nusers.store(self.nusers.load(Ordering::Relaxed).wrapping_sub(1), Ordering::Relaxed);
        if self.lock.swap(0, Ordering::Release) & FUTEX_WAITERS != 0 {
            parking_lot::unpark_one(self.key(), |_| 0);
        }
        0
    }

    /// For condition variables: a PI mutex not owned by the caller cannot be waited with (EPERM).
    pub(super) fn pi_not_owned(&self) -> bool {
        if self.kind == KIND_RECURSIVE {
            self.owner.load(Ordering::Relaxed) != my_tid()
        } else {
            self.lock.load(Ordering::Relaxed) & FUTEX_TID_MASK != my_tid()
        }
    }
}
