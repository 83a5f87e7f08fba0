//! Process-shared reader-writer locks: a coroutine's blocking read or write lock runs glibc's own
//! algorithm on the `pthread_rwlock_t`'s words, its futex waits made in the kernel's queue through
//! io_uring ([`kernel_wait`]) while it parks, so no OS thread is held per waiting coroutine.
//!
//! Other processes (and this process's plain threads) take the same lock with glibc's code, so every step
//! here is glibc's (`nptl/pthread_rwlock_common.c`, one version from 2.25 to 2.43 on x86-64: only its time
//! types changed): `__readers` (reader count << 3, and the bits write phase, write-locked, readers
//! waiting), `__writers` (waiting writers, with the hand-over bit), the futex words `__wrphase_futex` and
//! `__writers_futex` (with their "futex used" bit), `__cur_writer` (the writer's tid: glibc's unlock
//! tells a write unlock from a read unlock by it) and `__flags` (the preference). Only the blocking
//! acquisitions live here: glibc's unlock and trylocks never wait, and on a coroutine they record and
//! compare the coroutine's own tid, so the hooks call glibc for those.
//!
//! glibc spins in two places of its timeout paths, waiting for the thread that flipped the phase to
//! finish the store that follows its flip; here the spinning coroutine yields meanwhile, since that thread
//! may be a coroutine of the same worker.

use super::super::park::{OnSignal, yield_now};
use super::glibc_words::GlibcWords;
use super::{Deadline, kernel_wait, my_tid};
use core::sync::atomic::{AtomicI32, AtomicU32, Ordering::*, fence};

const WRPHASE: u32 = 1;
const WRLOCKED: u32 = 2;
const RWAITING: u32 = 4;
const READER_SHIFT: u32 = 3;
const READER_ONE: u32 = 1 << READER_SHIFT;
const READER_OVERFLOW: u32 = 1 << 31;
const WRHANDOVER: u32 = 1 << 31;
const FUTEX_USED: u32 = 2;

const PREFER_READER: u32 = 0;
const PREFER_WRITER_NONRECURSIVE: u32 = 2;

/// A process-shared rwlock (`__shared` set by `pthread_rwlockattr_setpshared`).
#[derive(Clone, Copy)]
pub struct SharedRwLock(GlibcWords<56>);

impl SharedRwLock {
    /// The process-shared rwlock at `l`, or None for a process-private one.
    ///
    /// # Safety
    /// `l` must point at a live, initialised `pthread_rwlock_t` that stays alive while the result is used.
    pub unsafe fn at(l: *mut libc::pthread_rwlock_t) -> Option<SharedRwLock> {
        // SAFETY: a live pthread_rwlock_t per the contract (56 bytes, 8-aligned).
        let rw = SharedRwLock(unsafe { GlibcWords::at(l) });
        // `__shared`.
        let shared = rw.0.i32_at(28).load(Relaxed);
        (shared != 0).then_some(rw)
    }

    fn word(&self, off: usize) -> &AtomicU32 {
        self.0.u32_at(off)
    }

    fn readers(&self) -> &AtomicU32 {
        self.word(0)
    }

    fn writers(&self) -> &AtomicU32 {
        self.word(4)
    }

    fn wrphase_futex(&self) -> &AtomicU32 {
        self.word(8)
    }

    fn writers_futex(&self) -> &AtomicU32 {
        self.word(12)
    }

    fn cur_writer(&self) -> &AtomicI32 {
        self.0.i32_at(24)
    }

    fn flags(&self) -> u32 {
        self.word(48).load(Relaxed)
    }

    fn private(&self) -> bool {
        self.word(28).load(Relaxed) == 0
    }

    /// A futex wait as glibc's `__futex_abstimed_wait64`: true when it timed out. A handler that runs in
    /// the waiting thread returns into the lock's wait, which goes on (glibc's waits loop on EINTR).
    fn wait(&self, word: &AtomicU32, val: u32, deadline: Deadline) -> bool {
        let addr = word as *const AtomicU32 as usize;
        matches!(kernel_wait::wait(addr, val, u32::MAX, self.private(), deadline, OnSignal::Resume), Err(e) if e.0 == libc::ETIMEDOUT)
    }

    fn wake(&self, word: &AtomicU32, n: u32) {
        kernel_wait::wake(word as *const AtomicU32 as usize, n, self.private());
    }

    /// glibc's `__pthread_rwlock_rdlock_full64` (the time already checked): 0, EDEADLK, EAGAIN, ETIMEDOUT.
    pub fn read(&self, deadline: Deadline) -> i32 {
        if self.cur_writer().load(Relaxed) == my_tid() {
            return libc::EDEADLK;
        }
        let readers = self.readers();
        if self.flags() == PREFER_WRITER_NONRECURSIVE {
            // Readers wait for the writers already waiting, unless a write phase already began.
            let mut r = readers.load(Relaxed);
            while r & WRPHASE == 0 && r & WRLOCKED != 0 && r >> READER_SHIFT > 0 {
                match readers.compare_exchange_weak(r, r | RWAITING, Relaxed, Relaxed) {
                    Ok(_) => loop {
                        r = readers.load(Relaxed);
                        if r & RWAITING == 0 {
                            break;
                        }
                        if self.wait(readers, r, deadline) {
                            return libc::ETIMEDOUT;
                        }
                    },
                    Err(now) => r = now,
                }
            }
        }
        let mut r = readers.fetch_add(READER_ONE, Acquire).wrapping_add(READER_ONE);
        while r >= READER_OVERFLOW {
            match readers.compare_exchange_weak(r, r - READER_ONE, Relaxed, Relaxed) {
                Ok(_) => return libc::EAGAIN,
                Err(now) => r = now,
            }
        }
        if r & WRPHASE == 0 {
            return 0;
        }
        // A write phase with no writer holding the lock: this reader may end it and start a read phase.
        while r & WRPHASE != 0 && r & WRLOCKED == 0 {
            match readers.compare_exchange_weak(r, r ^ WRPHASE, Acquire, Relaxed) {
                Ok(_) => {
                    if self.wrphase_futex().swap(0, Relaxed) & FUTEX_USED != 0 {
                        self.wake(self.wrphase_futex(), i32::MAX as u32);
                    }
                    return 0;
                }
                Err(now) => r = now,
            }
        }
        // Wait for the write phase to end; once it has, look at the futex word once more, which the
        // reader that ended the phase sets right after (glibc's `ready`).
        let wpf_word = self.wrphase_futex();
        let mut ready = false;
        loop {
            loop {
                let wpf = wpf_word.load(Relaxed);
                if wpf | FUTEX_USED != 1 | FUTEX_USED {
                    break;
                }
                if wpf & FUTEX_USED == 0
                    && wpf_word.compare_exchange_weak(wpf, wpf | FUTEX_USED, Relaxed, Relaxed).is_err()
                {
                    continue;
                }
                if self.wait(wpf_word, 1 | FUTEX_USED, deadline) {
                    // Timed out: leave, unless the phase changed meanwhile (then this reader is in).
                    let mut r = readers.load(Relaxed);
                    while r & WRPHASE != 0 {
                        match readers.compare_exchange_weak(r, r - READER_ONE, Relaxed, Relaxed) {
                            Ok(_) => return libc::ETIMEDOUT,
                            Err(now) => r = now,
                        }
                    }
                    fence(Acquire);
                    while wpf_word.load(Relaxed) | FUTEX_USED == 1 | FUTEX_USED {
                        yield_now();
                    }
                    return 0;
                }
            }
            if ready {
                return 0;
            }
            if readers.load(Acquire) & WRPHASE == 0 {
                ready = true;
            }
        }
    }

    /// glibc's `__pthread_rwlock_wrlock_full64` (the time already checked): 0, EDEADLK, ETIMEDOUT.
    pub fn write(&self, deadline: Deadline) -> i32 {
        let me = my_tid();
        if self.cur_writer().load(Relaxed) == me {
            return libc::EDEADLK;
        }
        let readers = self.readers();
        let writers = self.writers();
        let wf_word = self.writers_futex();
        let mut may_share_futex_used_flag = false;
        let mut r = readers.fetch_or(WRLOCKED, Acquire);
        if r & WRLOCKED != 0 {
            let prefer_writer = self.flags() != PREFER_READER;
            if prefer_writer {
                writers.fetch_add(1, Relaxed);
            }
            loop {
                if r & WRLOCKED == 0 {
                    match readers.compare_exchange_weak(r, r | WRLOCKED, Acquire, Relaxed) {
                        Ok(_) => {
                            if prefer_writer {
                                writers.fetch_sub(1, Relaxed);
                            }
                            break;
                        }
                        Err(now) => {
                            r = now;
                            continue;
                        }
                    }
                }
                if prefer_writer {
                    // A writer handed the lock over to the waiting writers: take it.
                    let w = writers.load(Relaxed);
                    if w & WRHANDOVER != 0 {
                        if writers.compare_exchange_weak(w, w - WRHANDOVER - 1, Acquire, Relaxed).is_ok() {
                            r = readers.load(Relaxed);
                            break;
                        }
                        continue;
                    }
                }
                let wf = wf_word.load(Relaxed);
                if wf & !FUTEX_USED != 1
                    || (wf != 1 | FUTEX_USED
                        && wf_word.compare_exchange_weak(wf, 1 | FUTEX_USED, Relaxed, Relaxed).is_err())
                {
                    r = readers.load(Relaxed);
                    continue;
                }
                may_share_futex_used_flag = true;
                if self.wait(wf_word, 1 | FUTEX_USED, deadline) {
                    if prefer_writer {
                        // Stop counting as a waiting writer, unless a hand-over to this one came meanwhile.
                        let mut w = writers.load(Relaxed);
                        loop {
                            let new = if w == WRHANDOVER + 1 { 0 } else { w - 1 };
                            match writers.compare_exchange_weak(w, new, Acquire, Relaxed) {
                                Ok(_) => break,
                                Err(now) => w = now,
                            }
                        }
                        if w == WRHANDOVER + 1 {
                            r = readers.load(Relaxed);
                            break;
                        }
                    }
                    return libc::ETIMEDOUT;
                }
                r = readers.load(Relaxed);
            }
            r |= WRLOCKED;
        }
        wf_word.store(1 | if may_share_futex_used_flag { FUTEX_USED } else { 0 }, Relaxed);
        if r & WRPHASE == 0 {
            // No write phase yet: start one if no reader holds the lock, else wait for the readers to go.
            let mut started = false;
            while r & WRPHASE == 0 && r >> READER_SHIFT == 0 {
                match readers.compare_exchange_weak(r, r | WRPHASE, Acquire, Relaxed) {
                    Ok(_) => {
                        self.wrphase_futex().store(1, Relaxed);
                        started = true;
                        break;
                    }
                    Err(now) => r = now,
                }
            }
            if !started && let Some(e) = self.wait_for_write_phase(deadline) {
                return e;
            }
        }
        self.cur_writer().store(me, Relaxed);
        0
    }

    /// The writer holds WRLOCKED but readers still hold the lock: wait until the last of them starts the
    /// write phase. Some(ETIMEDOUT) when the wait timed out and the writer gave the lock up.
    fn wait_for_write_phase(&self, deadline: Deadline) -> Option<i32> {
        let readers = self.readers();
        let writers = self.writers();
        let wf_word = self.writers_futex();
        let wpf_word = self.wrphase_futex();
        // As for readers: once the phase began, the futex word is looked at once more.
        let mut ready = false;
        loop {
            loop {
                let wpf = wpf_word.load(Relaxed);
                if wpf | FUTEX_USED != FUTEX_USED {
                    break;
                }
                if wpf & FUTEX_USED == 0 && wpf_word.compare_exchange_weak(wpf, FUTEX_USED, Relaxed, Relaxed).is_err() {
                    continue;
                }
                if !self.wait(wpf_word, FUTEX_USED, deadline) {
                    continue;
                }
                // Timed out. With writers waiting (and not preferring readers), hand the lock over to them.
                if self.flags() != PREFER_READER {
                    let mut w = writers.load(Relaxed);
                    if w != 0 {
                        let wf = wf_word.swap(0, Relaxed);
                        while w != 0 {
                            match writers.compare_exchange_weak(w, w | WRHANDOVER, Release, Relaxed) {
                                Ok(_) => {
                                    if wf & FUTEX_USED != 0 {
                                        self.wake(wf_word, 1);
                                    }
                                    return Some(libc::ETIMEDOUT);
                                }
                                Err(now) => w = now,
                            }
                        }
                        wf_word.store(wf, Relaxed);
                    }
                }
                // Otherwise give the lock up, unless the write phase began meanwhile.
                let mut r = readers.load(Relaxed);
                if r & WRPHASE == 0 {
                    let wf = wf_word.swap(0, Relaxed);
                    while r & WRPHASE == 0 {
                        match readers.compare_exchange_weak(r, (r ^ WRLOCKED) & !RWAITING, Release, Relaxed) {
                            Ok(_) => {
                                if wf & FUTEX_USED != 0 {
                                    self.wake(wf_word, 1);
                                }
                                if r & RWAITING != 0 {
                                    self.wake(readers, i32::MAX as u32);
                                }
                                return Some(libc::ETIMEDOUT);
                            }
                            Err(now) => r = now,
                        }
                    }
                    wf_word.store(wf, Relaxed);
                }
                // The phase began: this writer holds the lock once the reader that began it is done.
                fence(Acquire);
                while wpf_word.load(Relaxed) | FUTEX_USED == FUTEX_USED {
                    yield_now();
                }
                return None;
            }
            if ready {
                return None;
            }
            if readers.load(Acquire) & WRPHASE != 0 {
                ready = true;
            }
        }
    }
}
