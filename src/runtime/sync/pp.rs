//! Priority-protect (priority-ceiling) mutexes taken by a coroutine. glibc's own code cannot serve a
//! coroutine: to raise the thread to the mutex's ceiling it calls `sched_getparam`/`sched_setscheduler`
//! on the thread's tid from inside libc, and the kernel knows no coroutine's tid (ESRCH). So the lock
//! protocol (glibc's: the ceiling in the lock word's high bits, 1 locked, 2 locked with waiters, owner,
//! count, users) and glibc's ceiling bookkeeping (`__pthread_tpp_change_priority`: a count per ceiling
//! held, the highest one the thread is raised to) are made here, on the coroutine's own scheduling
//! attributes (`sched_attr`), whose every change the kernel judges. The answers are glibc's, quirks
//! included: a SCHED_OTHER thread cannot be raised to a ceiling (the kernel refuses a priority under a
//! fair policy: EINVAL), and glibc has recorded the new highest ceiling before that refusal, so the next
//! lock of a mutex with the same ceiling succeeds without trying again.
//!
//! A coroutine waits for a mutex someone else holds as glibc's threads do, in the kernel's futex queue of
//! the lock word (through `kernel_wait`, without blocking its worker): the holder may be a plain thread
//! in glibc, which wakes waiters in the kernel only. Plain threads use glibc.

use super::super::sched_attr::{self, Change};
use super::super::task::TaskRef;
use super::{Deadline, my_tid};
use crate::runtime::sys::syscall::Errno;
use core::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use super::mutex::{
    KIND_ELISION_FLAGS, KIND_ERRORCHECK, KIND_PI, KIND_PP, KIND_PSHARED, KIND_RECURSIVE, KIND_ROBUST, KIND_TYPE_MASK,
};
const CEILING_MASK: i32 = 0xfff8_0000u32 as i32;
const CEILING_SHIFT: u32 = 19;
pub use super::super::sched_attr::state::{FIFO_MAX, FIFO_MIN, Tpp};

/// View of a priority-protect `pthread_mutex_t` (glibc's x86-64 layout).
pub struct PpMutex {
    lock: &'static AtomicI32,
    count: &'static AtomicU32,
    owner: &'static AtomicI32,
    nusers: &'static AtomicU32,
    kind: i32,
    pshared: bool,
}

impl PpMutex {
    /// The mutex if it is priority-protect (and neither robust nor PI, which glibc refuses anyway).
    ///
    /// # Safety
    /// `m` must point at a live, initialised `pthread_mutex_t`.
    pub unsafe fn at(m: *mut libc::pthread_mutex_t) -> Option<PpMutex> {
        let p = m as *mut u8;
        // SAFETY: aligned ints at glibc's offsets inside the 40-byte object.
        let kind = unsafe { (*(p.add(16) as *const AtomicI32)).load(Ordering::Relaxed) } & !KIND_ELISION_FLAGS;
        if kind & KIND_PP == 0 || kind & (KIND_ROBUST | KIND_PI) != 0 {
            return None;
        }
        // SAFETY: as above.
        unsafe {
            Some(PpMutex {
                lock: &*(p as *const AtomicI32),
                count: &*(p.add(4) as *const AtomicU32),
                owner: &*(p.add(8) as *const AtomicI32),
                nusers: &*(p.add(12) as *const AtomicU32),
                kind: kind & KIND_TYPE_MASK,
                pshared: kind & KIND_PSHARED != 0,
            })
        }
    }

    /// pthread_mutex_trylock, as glibc's for this kind.
    pub fn trylock(&self, me: &TaskRef) -> i32 {
        self.attempt(me, 1)
    }

    /// One attempt at the lock, as glibc's trylock; taken, the word's low bits are `taken` (1, or 2 —
    /// glibc's "locked, maybe waiters" — for a waiter that slept, since others may sleep beside it).
    fn attempt(&self, me: &TaskRef, taken: i32) -> i32 {
        let id = my_tid();
        if self.owner.load(Ordering::Relaxed) == id {
            match self.kind {
                KIND_ERRORCHECK => return libc::EDEADLK,
                KIND_RECURSIVE => {
                    let c = self.count.load(Ordering::Relaxed);
                    if c.wrapping_add(1) == 0 {
                        return libc::EAGAIN;
                    }
                    self.count.store(c + 1, Ordering::Relaxed);
                    return 0;
                }
                _ => {}
            }
        }
        let mut oldval = self.lock.load(Ordering::Relaxed);
        let mut oldprio = -1;
        loop {
            let ceiling = (oldval & CEILING_MASK) >> CEILING_SHIFT;
            if current_priority(me) > ceiling {
                if oldprio != -1 {
                    let _ = change_priority(me, oldprio, -1);
                }
                return libc::EINVAL;
            }
            if let Err(e) = change_priority(me, oldprio, ceiling) {
                return e.0;
            }
            let ceilval = ceiling << CEILING_SHIFT;
            oldprio = ceiling;
            match self.lock.compare_exchange(ceilval, ceilval | taken, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => oldval = now,
            }
            if oldval & CEILING_MASK == ceilval {
                let _ = change_priority(me, oldprio, -1);
                return libc::EBUSY;
            }
        }
        self.owner.store(id, Ordering::Relaxed);
        self.nusers.fetch_add(1, Ordering::Relaxed);
        self.count.store(1, Ordering::Relaxed);
        0
    }

    /// pthread_mutex_lock/timedlock/clocklock: glibc's wait, the lock word marked 2 ("locked, maybe
    /// waiters") and waited on in the kernel's futex queue ([`super::kernel_wait`]: a holder that is a
    /// plain thread in glibc, perhaps in another process, wakes waiters only there), between attempts.
    /// `error` is a bad deadline, reported as glibc does once it would have to wait.
    pub fn lock(&self, me: &TaskRef, deadline: Deadline, error: Option<i32>) -> i32 {
        let mut taken = 1;
        loop {
            let r = self.attempt(me, taken);
            if r != libc::EBUSY {
                return r;
            }
            if let Some(e) = error {
                return e;
            }
            if deadline.is_some_and(|d| d <= super::super::sys::time::monotonic_ns()) {
                return libc::ETIMEDOUT;
            }
            let cur = self.lock.load(Ordering::Relaxed);
            if cur & !CEILING_MASK == 0 {
                continue;
            }
            let want = (cur & CEILING_MASK) | 2;
            if cur != want && self.lock.compare_exchange(cur, want, Ordering::Relaxed, Ordering::Relaxed).is_err() {
                continue;
            }
            // Woken, timed out, or interrupted (a handler ran): look again either way.
            let _ = super::kernel_wait::wait(
                self.lock as *const AtomicI32 as usize,
                want as u32,
                u32::MAX,
                !self.pshared,
                deadline,
                super::super::park::OnSignal::Resume,
            );
            taken = 2;
        }
    }

    /// pthread_mutex_unlock, as glibc's for this kind.
    pub fn unlock(&self, me: &TaskRef) -> i32 {
        let id = my_tid();
        match self.kind {
            KIND_ERRORCHECK
                if self.owner.load(Ordering::Relaxed) != id
                    || self.lock.load(Ordering::Relaxed) & !CEILING_MASK == 0 =>
            {
                return libc::EPERM;
            }
            KIND_RECURSIVE => {
                if self.owner.load(Ordering::Relaxed) != id {
                    return libc::EPERM;
                }
                let c = self.count.load(Ordering::Relaxed).wrapping_sub(1);
                self.count.store(c, Ordering::Relaxed);
                if c != 0 {
                    return 0;
                }
            }
            _ => {}
        }
        self.owner.store(0, Ordering::Relaxed);
        self.nusers.fetch_sub(1, Ordering::Relaxed);
        let mut oldval = self.lock.load(Ordering::Relaxed);
        let newval = loop {
            let newval = oldval & CEILING_MASK;
            match self.lock.compare_exchange_weak(oldval, newval, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => break newval,
                Err(now) => oldval = now,
            }
        };
        if oldval & !CEILING_MASK > 1 {
            // Waiters of glibc's (plain threads) sleep in the kernel.
            let word = self.lock as *const AtomicI32 as *const AtomicU32;
            // SAFETY: the lock word is a live, aligned int reinterpreted as the unsigned futex word.
            let word = unsafe { &*word };
            if self.pshared {
                super::super::sys::futex::wake_shared(word, 1);
            } else {
                super::super::sys::futex::wake(word, 1);
            }
        }
        change_priority(me, newval >> CEILING_SHIFT, -1).err().map_or(0, |e| e.0)
    }
}

/// glibc's `__pthread_current_priority`: the thread's own priority as glibc records it (the first time,
/// from the kernel; the boost of ceilings held is not part of it).
fn current_priority(me: &TaskRef) -> i32 {
    sched_attr::glibc_view(me).1
}

/// glibc's `__pthread_tpp_change_priority`: a hold at `new` begins (-1: none) and one at `previous` ends
/// (-1: none); when the highest ceiling held changes, the thread is raised to it (or back) under its own
/// policy, as the kernel allows. The new highest ceiling is recorded before the kernel is asked.
fn change_priority(me: &TaskRef, previous: i32, new: i32) -> Result<(), Errno> {
    let (priomax, newpriomax) = {
        let mut tpp = sched_attr::tpp(me);
        let priomax = tpp.priomax;
        let mut newpriomax = priomax;
        if new != -1 {
            let slot = &mut tpp.priomap[(new - FIFO_MIN) as usize];
            if slot.wrapping_add(1) == 0 {
                return Err(Errno(libc::EAGAIN));
            }
            *slot += 1;
            if new > priomax {
                newpriomax = new;
            }
        }
        if previous != -1 {
            let slot = &mut tpp.priomap[(previous - FIFO_MIN) as usize];
            *slot = slot.wrapping_sub(1);
            if *slot == 0 && priomax == previous && previous > new {
                let mut i = previous - 1;
                while i >= FIFO_MIN && tpp.priomap[(i - FIFO_MIN) as usize] == 0 {
                    i -= 1;
                }
                newpriomax = i;
            }
        }
        if priomax != newpriomax {
            tpp.priomax = newpriomax;
        }
        sched_attr::set_tpp(me, tpp);
        if priomax == newpriomax {
            return Ok(());
        }
        (priomax, newpriomax)
    };
    let (policy, mut priority) = sched_attr::glibc_view(me);
    if priority < newpriomax || priority < priomax {
        if priority < newpriomax {
            priority = newpriomax;
        }
        sched_attr::change(me, Change::Scheduler { policy, priority })?;
    }
    Ok(())
}
