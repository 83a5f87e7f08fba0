//! Barriers in glibc's layout (`in`, `current_round`, `count`, `shared`, `out`): arrivals count up in
//! `in`; the last one resets it, starts the next round and wakes the others, who wait for the round to
//! change.

use super::super::park::{OnSignal, Wait, WaitReason};
use super::super::parking_lot;
use super::Unsupported;
use core::sync::atomic::{AtomicU32, Ordering};

pub struct Barrier {
    arrived: &'static AtomicU32,
    round: &'static AtomicU32,
    count: u32,
}

impl Barrier {
    /// # Safety
    /// `b` must point at a live `pthread_barrier_t` initialised by pthread_barrier_init.
    pub unsafe fn at(b: *mut libc::pthread_barrier_t) -> Result<Barrier, Unsupported> {
        let p = b as *mut u8;
        // SAFETY: aligned u32 fields inside the 32-byte object.
        let (arrived, round, count, shared) = unsafe {
            (
                &*(p as *const AtomicU32),
                &*(p.add(4) as *const AtomicU32),
                (*(p.add(8) as *const AtomicU32)).load(Ordering::Relaxed),
                (*(p.add(12) as *const AtomicU32)).load(Ordering::Relaxed),
            )
        };
        if shared != 0 || count == 0 {
            return Err(Unsupported);
        }
        Ok(Barrier { arrived, round, count })
    }

    /// Returns PTHREAD_BARRIER_SERIAL_THREAD for exactly one thread per round, 0 for the others.
    pub fn wait(&self) -> i32 {
        let round = self.round.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.count {
            self.arrived.store(0, Ordering::Relaxed);
            self.round.fetch_add(1, Ordering::Release);
            parking_lot::unpark_all(self.round as *const AtomicU32 as usize, 0);
            return libc::PTHREAD_BARRIER_SERIAL_THREAD;
        }
        let r = self.round;
        while self.round.load(Ordering::Acquire) == round {
            // Woken, or interrupted (a handler ran in this thread): the round decides.
            let key = r as *const AtomicU32 as usize;
            let wait = Wait::new(WaitReason::Barrier, key, OnSignal::Resume);
            parking_lot::park(key, 0, || r.load(Ordering::Acquire) == round, || {}, wait);
        }
        0
    }

    /// EBUSY while threads wait in the current round.
    pub fn busy(&self) -> bool {
        self.arrived.load(Ordering::Acquire) != 0
    }
}
