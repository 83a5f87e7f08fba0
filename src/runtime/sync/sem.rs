//! Unnamed process-private semaphores in glibc's layout: a 64-bit word whose low half is the value and
//! whose high half counts waiters (glibc's own sem_post, used in a forked child, then still wakes them),
//! and a `private` flag. Named and process-shared semaphores are left to glibc.

use super::super::park::{OnSignal, Wait, WaitReason};
use super::super::parking_lot::{self, Parked};
use super::super::sys::Errno;
use super::{Deadline, Unsupported, restarts};
use core::sync::atomic::{AtomicI32, AtomicU64, Ordering};

const VALUE_MASK: u64 = 0xffff_ffff;
const ONE_WAITER: u64 = 1 << 32;
const SEM_VALUE_MAX: u64 = i32::MAX as u64;
/// `private` holds glibc's LLL_PRIVATE (0) for process-private semaphores and LLL_SHARED (128) for
/// process-shared and named ones.
const PRIVATE: i32 = 0;

pub struct Sem {
    data: &'static AtomicU64,
}

impl Sem {
    /// # Safety
    /// `s` must point at a live, initialised `sem_t`.
    pub unsafe fn at(s: *mut libc::sem_t) -> Result<Sem, Unsupported> {
        let p = s as *mut u8;
        // SAFETY: an aligned u64 and an int inside the 32-byte object.
        let (data, private) =
            unsafe { (&*(p as *const AtomicU64), (*(p.add(8) as *const AtomicI32)).load(Ordering::Relaxed)) };
        if private != PRIVATE {
            return Err(Unsupported);
        }
        Ok(Sem { data })
    }

    fn key(&self) -> usize {
        self.data as *const AtomicU64 as usize
    }

    pub fn try_wait(&self) -> bool {
        let mut d = self.data.load(Ordering::Relaxed);
        while d & VALUE_MASK > 0 {
            match self.data.compare_exchange_weak(d, d - 1, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(now) => d = now,
            }
        }
        false
    }

    /// Waits for a unit. Err(EINTR) when a handled signal interrupts it, Err(ETIMEDOUT) after `deadline`.
    pub fn wait(&self, deadline: Deadline) -> Result<(), Errno> {
        loop {
            if self.try_wait() {
                return Ok(());
            }
            self.data.fetch_add(ONE_WAITER, Ordering::Relaxed);
            let data = self.data;
            // glibc's sem_wait is a futex wait: a handler with SA_RESTART restarts an untimed one.
            let wait = Wait::new(WaitReason::Semaphore, self.key(), OnSignal::FailUnlessRestart).until(deadline);
            // The waiter count is taken back before a handler runs (it may leave by longjmp).
            let gone = |_| {
                data.fetch_sub(ONE_WAITER, Ordering::Relaxed);
            };
            let r = parking_lot::park_then(
                self.key(),
                0,
                || data.load(Ordering::Relaxed) & VALUE_MASK == 0,
                || {},
                wait,
                gone,
            );
            if r == Parked::Invalid {
                self.data.fetch_sub(ONE_WAITER, Ordering::Relaxed);
            }
            match r {
                Parked::TimedOut if !self.try_wait() => return Err(Errno(libc::ETIMEDOUT)),
                Parked::Interrupted if restarts() => {}
                Parked::Interrupted => return Err(Errno(libc::EINTR)),
                Parked::TimedOut => return Ok(()),
                _ => {}
            }
        }
    }

    pub fn post(&self) -> Result<(), Errno> {
        let mut d = self.data.load(Ordering::Relaxed);
        loop {
            if d & VALUE_MASK == SEM_VALUE_MAX {
                return Err(Errno(libc::EOVERFLOW));
            }
            match self.data.compare_exchange_weak(d, d + 1, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => d = now,
            }
        }
        if d >> 32 != 0 {
            parking_lot::unpark_one(self.key(), |_| 0);
        }
        Ok(())
    }
}
