//! Reader-writer locks on the `pthread_rwlock_t`'s memory: the first word holds the state (a writer bit
//! and the reader count), a second counts writers waiting (which new readers let pass when the lock
//! prefers writers), a third counts parked threads so an unlock without waiters touches no queue, and
//! `__cur_writer` records the writing thread as glibc does (EDEADLK on relocking). The kind and
//! process-shared flag are read from where `pthread_rwlock_init` and the static initialisers put them.

use super::super::park::{OnSignal, Wait, WaitReason};
use super::super::parking_lot::{self, Filter, Parked};
use super::{Deadline, Unsupported, my_tid};
use core::sync::atomic::{AtomicI32, AtomicU32, Ordering};

const WRITER: u32 = 1 << 31;
const READERS: u32 = WRITER - 1;
const PREFER_WRITER_NONRECURSIVE: u32 = 2;
const TOKEN_READER: usize = 1;
const TOKEN_WRITER: usize = 2;

pub struct RwLock {
    state: &'static AtomicU32,
    writers_waiting: &'static AtomicU32,
    parked: &'static AtomicU32,
    cur_writer: &'static AtomicI32,
    prefer_writer: bool,
}

impl RwLock {
    /// # Safety
    /// `l` must point at a live, initialised `pthread_rwlock_t`.
    pub unsafe fn at(l: *mut libc::pthread_rwlock_t) -> Result<RwLock, Unsupported> {
        let p = l as *mut u8;
        // SAFETY: aligned fields of glibc's 56-byte `struct __pthread_rwlock_arch_t`.
        let (state, writers_waiting, parked, cur_writer, shared, flags) = unsafe {
            (
                &*(p as *const AtomicU32),
                &*(p.add(4) as *const AtomicU32),
                &*(p.add(16) as *const AtomicU32),
                &*(p.add(24) as *const AtomicI32),
                (*(p.add(28) as *const AtomicI32)).load(Ordering::Relaxed),
                (*(p.add(48) as *const AtomicU32)).load(Ordering::Relaxed),
            )
        };
        if shared != 0 {
            return Err(Unsupported);
        }
        Ok(RwLock { state, writers_waiting, parked, cur_writer, prefer_writer: flags == PREFER_WRITER_NONRECURSIVE })
    }

    fn key(&self) -> usize {
        self.state as *const AtomicU32 as usize
    }

    fn reader_may_enter(&self, s: u32) -> bool {
        s & WRITER == 0 && !(self.prefer_writer && self.writers_waiting.load(Ordering::Relaxed) != 0)
    }

    pub fn try_read(&self) -> i32 {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if !self.reader_may_enter(s) {
                return libc::EBUSY;
            }
            if s & READERS == READERS {
                return libc::EAGAIN;
            }
            match self.state.compare_exchange_weak(s, s + 1, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return 0,
                Err(now) => s = now,
            }
        }
    }

    pub fn try_write(&self) -> i32 {
        match self.state.compare_exchange(0, WRITER, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => {
                self.cur_writer.store(my_tid(), Ordering::Relaxed);
                0
            }
            Err(_) => libc::EBUSY,
        }
    }

    /// Parks a reader or a writer (`token`) while `blocked`. The waiter counts are taken back before a
    /// handler runs in the waiter (which may leave by longjmp); a writer's `writers_waiting`, counted by
    /// the caller, with them.
    fn park(&self, token: usize, blocked: impl Fn() -> bool, deadline: Deadline) -> Parked {
        // Counted with a read-modify-write that an unlocker's (in `wake`) is ordered against: see `wake`.
        self.parked.fetch_add(1, Ordering::AcqRel);
        let wait = Wait::new(WaitReason::RwLock, self.key(), OnSignal::Resume).until(deadline);
        let left = |r: Parked| {
            self.parked.fetch_sub(1, Ordering::Relaxed);
            if token == TOKEN_WRITER {
                self.writer_left(matches!(r, Parked::TimedOut | Parked::Interrupted));
            }
        };
        let r = parking_lot::park_then(self.key(), token, blocked, || {}, wait, left);
        if r == Parked::Invalid {
            left(r);
        }
        r
    }

    /// A waiting writer stops waiting (`gave_up`: timed out, or a handler is to run in it). Readers held
    /// back for it may go when it was the last and gave up.
    fn writer_left(&self, gave_up: bool) {
        let left = self.writers_waiting.fetch_sub(1, Ordering::Relaxed) - 1;
        if left == 0 && self.prefer_writer && gave_up {
            self.wake(false);
        }
    }

    pub fn read(&self, deadline: Deadline, deadline_error: Option<i32>) -> i32 {
        if self.cur_writer.load(Ordering::Relaxed) == my_tid() && self.state.load(Ordering::Relaxed) & WRITER != 0 {
            return libc::EDEADLK;
        }
        loop {
            match self.try_read() {
                libc::EBUSY => {}
                r => return r,
            }
            if let Some(e) = deadline_error {
                return e;
            }
            let blocked = || !self.reader_may_enter(self.state.load(Ordering::Relaxed));
            if self.park(TOKEN_READER, blocked, deadline) == Parked::TimedOut {
                return libc::ETIMEDOUT;
            }
        }
    }

    pub fn write(&self, deadline: Deadline, deadline_error: Option<i32>) -> i32 {
        if self.cur_writer.load(Ordering::Relaxed) == my_tid() && self.state.load(Ordering::Relaxed) & WRITER != 0 {
            return libc::EDEADLK;
        }
        loop {
            if self.try_write() == 0 {
                return 0;
            }
            if let Some(e) = deadline_error {
                return e;
            }
            self.writers_waiting.fetch_add(1, Ordering::Relaxed);
            if self.park(TOKEN_WRITER, || self.state.load(Ordering::Relaxed) != 0, deadline) == Parked::TimedOut {
                return libc::ETIMEDOUT;
            }
        }
    }

    pub fn unlock(&self) -> i32 {
        let s = self.state.load(Ordering::Relaxed);
        if s & WRITER != 0 {
            self.cur_writer.store(0, Ordering::Relaxed);
            self.state.store(0, Ordering::Release);
            self.wake(true);
        } else if s & READERS != 0 && self.state.fetch_sub(1, Ordering::Release) == 1 {
            self.wake(true);
        }
        0
    }

    /// Wakes the readers and one writer (`with_writer`) after the lock became free; they race for it and
    /// the losers park again.
    fn wake(&self, with_writer: bool) {
        // A read-modify-write, not a load: the unlocker stored the free state and now looks for waiters,
        // while a waiter counted itself and then looks at the state (in `blocked`, under the bucket lock).
        // With a plain load each could miss the other's store (x86 lets a load pass an earlier store), the
        // waiter would sleep on a free lock and the wake-up be lost (a writer parked until its 30 s
        // deadline in sync_rwlock). Two RMWs on `parked` are ordered: if ours reads 0, the waiter's comes
        // later and acquires our release, so its check sees the lock free and it does not park.
        if self.parked.fetch_add(0, Ordering::AcqRel) == 0 {
            return;
        }
        let mut writer_taken = !with_writer;
        parking_lot::unpark_filter(
            self.key(),
            |token| match token {
                TOKEN_WRITER if writer_taken => Filter::Skip,
                TOKEN_WRITER => {
                    writer_taken = true;
                    Filter::Unpark
                }
                _ => Filter::Unpark,
            },
            |_| 0,
        );
    }
}
