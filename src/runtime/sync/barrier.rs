//! Barriers in glibc's layout (`in`, `current_round`, `count`, `shared`, `out`). A process-private one:
//! arrivals count up in `in`; the last one resets it, starts the next round and wakes the others, who
//! wait for the round to change, parked. A process-shared one, which threads of other processes use with
//! glibc's own code at the same time, follows glibc's algorithm exactly ([`SharedBarrier`]), its waits
//! made in the kernel's futex queues ([`super::kernel_wait`]).

use super::super::park::{OnSignal, Wait, WaitReason};
use super::super::parking_lot;
use super::Unsupported;
use core::sync::atomic::{AtomicU32, Ordering};

pub struct Barrier {
    arrived: &'static AtomicU32,
    round: &'static AtomicU32,
    count: u32,
}

/// glibc's BARRIER_IN_THRESHOLD: `in` is reset before it could overflow.
const IN_THRESHOLD: u32 = u32::MAX / 2;

/// A process-shared barrier: glibc's algorithm (`in` counts every arrival of every round until a reset;
/// round boundaries are multiples of `count`; whoever sees its round complete advances `current_round`
/// and wakes the round's waiters; the last of `max_in_before_reset` threads to leave resets the
/// counters), with the same memory orders and futex words, so it can share rounds with other processes.
pub struct SharedBarrier {
    input: &'static AtomicU32,
    round: &'static AtomicU32,
    count: u32,
    out: &'static AtomicU32,
}

impl SharedBarrier {
    /// # Safety
    /// `b` must point at a live `pthread_barrier_t` initialised by pthread_barrier_init.
    pub unsafe fn at(b: *mut libc::pthread_barrier_t) -> Option<SharedBarrier> {
        let p = b as *mut u8;
        // SAFETY: aligned u32 fields inside the 32-byte object.
        let (input, round, count, shared, out) = unsafe {
            (
                &*(p as *const AtomicU32),
                &*(p.add(4) as *const AtomicU32),
                (*(p.add(8) as *const AtomicU32)).load(Ordering::Relaxed),
                (*(p.add(12) as *const AtomicU32)).load(Ordering::Relaxed),
                &*(p.add(16) as *const AtomicU32),
            )
        };
        (shared != 0 && count != 0).then_some(SharedBarrier { input, round, count, out })
    }

    fn max_in_before_reset(&self) -> u32 {
        IN_THRESHOLD - IN_THRESHOLD % self.count
    }

    fn futex_wait(word: &AtomicU32, val: u32) {
        let addr = word as *const AtomicU32 as usize;
        let _ = super::kernel_wait::wait(addr, val, u32::MAX, false, None, OnSignal::Resume);
    }

    fn futex_wake_all(word: &AtomicU32) {
        super::kernel_wait::wake(word as *const AtomicU32 as usize, i32::MAX as u32, false);
    }

    /// Returns PTHREAD_BARRIER_SERIAL_THREAD for exactly one thread per round, 0 for the others.
    pub fn wait(&self) -> i32 {
        let max_in_before_reset = self.max_in_before_reset();
        let mut i;
        loop {
            i = self.input.fetch_add(1, Ordering::AcqRel).wrapping_add(1);
            if i <= max_in_before_reset {
                break;
            }
            // A reset is under way: wait for it (without helping earlier rounds), then enter again.
            while i > max_in_before_reset {
                Self::futex_wait(self.input, i);
                i = self.input.load(Ordering::Relaxed);
            }
        }
        let count = self.count;
        let mut cr = self.round.load(Ordering::Relaxed);
        let mut ready = false;
        // Complete earlier rounds and our own as far as our position allows.
        while cr.wrapping_add(count) <= i {
            let newcr = i - i % count;
            match self.round.compare_exchange_weak(cr, newcr, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => {
                    cr = newcr;
                    Self::futex_wake_all(self.round);
                    ready = i <= cr;
                    break;
                }
                Err(now) => cr = now,
            }
        }
        if !ready {
            while i > cr {
                Self::futex_wait(self.round, cr);
                cr = self.round.load(Ordering::Relaxed);
            }
            core::sync::atomic::fence(Ordering::Acquire);
        }
        let o = self.out.fetch_add(1, Ordering::Release).wrapping_add(1);
        if o == max_in_before_reset {
            // The last thread of the pre-reset ones to leave resets the barrier, `in` last.
            core::sync::atomic::fence(Ordering::Acquire);
            self.round.store(0, Ordering::Relaxed);
            self.out.store(0, Ordering::Relaxed);
            self.input.store(0, Ordering::Release);
            Self::futex_wake_all(self.input);
        }
        if i % count == 0 { libc::PTHREAD_BARRIER_SERIAL_THREAD } else { 0 }
    }

    /// glibc's destroy: waits until every thread that entered has left (by pretending the reset threshold
    /// was reached, so the last one to leave resets the barrier).
    pub fn destroy(&self) -> i32 {
        let max_in_before_reset = self.max_in_before_reset();
        let mut input = self.input.load(Ordering::Relaxed);
        if self.out.fetch_add(max_in_before_reset.wrapping_sub(input), Ordering::Relaxed) < input {
            while input != 0 {
                Self::futex_wait(self.input, input);
                input = self.input.load(Ordering::Relaxed);
            }
        }
        core::sync::atomic::fence(Ordering::Acquire);
        0
    }
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
