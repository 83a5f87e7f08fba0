//! Semaphores in glibc's layout: a 64-bit word whose low half is the value and whose high half counts
//! waiters (glibc's own sem_post, used in a forked child or another process, then still wakes them), and
//! a `private` flag. Waiters on a process-private one park in the parking lot; on a process-shared or
//! named one, whose posters may be other processes running glibc's code, they wait in the kernel's futex
//! queue of the value word ([`super::kernel_wait`]), and posts wake there, as glibc's do.

use super::super::park::{OnSignal, Wait, WaitReason};
use super::super::parking_lot::{self, Parked};
use super::super::sys::Errno;
use super::{Deadline, Unsupported};
use core::sync::atomic::{AtomicI32, AtomicU64, Ordering};

const VALUE_MASK: u64 = 0xffff_ffff;
const ONE_WAITER: u64 = 1 << 32;
const SEM_VALUE_MAX: u64 = i32::MAX as u64;
/// `private` holds glibc's LLL_PRIVATE (0) for process-private semaphores and LLL_SHARED (128) for
/// process-shared and named ones.
const PRIVATE: i32 = 0;
const SHARED: i32 = 128;

pub struct Sem {
    data: &'static AtomicU64,
    shared: bool,
}

impl Sem {
    /// # Safety
    /// `s` must point at a live, initialised `sem_t`.
    pub unsafe fn at(s: *mut libc::sem_t) -> Result<Sem, Unsupported> {
        let p = s as *mut u8;
        // SAFETY: an aligned u64 and an int inside the 32-byte object.
        let (data, private) =
            unsafe { (&*(p as *const AtomicU64), (*(p.add(8) as *const AtomicI32)).load(Ordering::Relaxed)) };
        if private != PRIVATE && private != SHARED {
            return Err(Unsupported);
        }
        Ok(Sem { data, shared: private == SHARED })
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
            if self.shared {
                // glibc's do_futex_wait: sleep while the value (the low half, first in memory) is 0.
                let how = super::futex_interrupt(deadline);
                let r = super::kernel_wait::wait(self.key(), 0, u32::MAX, false, deadline, how);
                self.data.fetch_sub(ONE_WAITER, Ordering::Relaxed);
                match r {
                    Err(Errno(libc::ETIMEDOUT)) if !self.try_wait() => return Err(Errno(libc::ETIMEDOUT)),
                    Err(Errno(libc::EINTR)) => return Err(Errno(libc::EINTR)),
                    Err(Errno(libc::ETIMEDOUT)) => return Ok(()),
                    _ => continue,
                }
            }
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
                // An untimed wait whose handler has SA_RESTART goes on, as the kernel restarts glibc's.
                Parked::Interrupted if super::interrupted_wait_restarts() => {}
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
            if self.shared {
                super::kernel_wait::wake(self.key(), 1, false);
            } else {
                parking_lot::unpark_one(self.key(), |_| 0);
            }
        }
        Ok(())
    }
}
