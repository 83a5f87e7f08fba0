//! pthread mutexes (normal, recursive, errorcheck, adaptive; static initialisers or `pthread_mutex_init`)
//! in glibc's own layout and lock protocol: lock word 0 free / 1 locked / 2 locked with waiters, owner
//! tid, recursion count, user count. Waiters park in the parking lot keyed by the mutex address.
//! Process-private, non-robust priority-inheritance mutexes are run here too, with glibc's PI word (see
//! [`super::pi`]). Process-shared mutexes (not robust, not PI) are run here too, in the same protocol with
//! the kernel's futex queue instead of the parking lot, since their waiters and wakers may be in other
//! processes running glibc's code: contended waits are [`super::kernel_wait`]'s, unlocks wake in the
//! kernel. Robust and priority-protect mutexes are left to glibc (or the proxies of [`super::proxy`]).

use super::super::park::{OnSignal, Wait, WaitReason};
use super::super::parking_lot::{self, Parked};
use super::{Deadline, Unsupported, my_tid};
use core::sync::atomic::{AtomicI32, AtomicU32, Ordering};

// The bits of glibc's `__kind` (nptl's PTHREAD_MUTEX_*), for every lock path of `sync`.
pub(super) const KIND_TYPE_MASK: i32 = 3;
const KIND_NORMAL: i32 = 0;
pub(super) const KIND_RECURSIVE: i32 = 1;
pub(super) const KIND_ERRORCHECK: i32 = 2;
const KIND_ADAPTIVE: i32 = 3;
pub(super) const KIND_ROBUST: i32 = 16;
pub(super) const KIND_PI: i32 = 32;
pub(super) const KIND_PP: i32 = 64;
pub(super) const KIND_PSHARED: i32 = 128;
/// The bits a mutex the runtime runs may have: its type, and priority inheritance or process-shared (not
/// both: see `at`). Anything else (robust 16 — with which glibc also sets the process-shared bit —,
/// priority-protect 64) goes to glibc.
const KIND_RUNTIME: i32 = KIND_TYPE_MASK | KIND_PI | KIND_PSHARED;
/// glibc's lock-elision hints, which change nothing here.
pub(super) const KIND_ELISION_FLAGS: i32 = 256 | 512;
const SPINS: u32 = 100;

/// View of a `pthread_mutex_t` (glibc x86-64 `struct __pthread_mutex_s`).
pub struct Mutex {
    pub(super) lock: &'static AtomicI32,
    pub(super) count: &'static AtomicU32,
    pub(super) owner: &'static AtomicI32,
    pub(super) nusers: &'static AtomicU32,
    /// The type bits (normal, recursive, errorcheck, adaptive).
    pub(super) kind: i32,
    /// Priority inheritance: glibc's PI word protocol, in [`super::pi`].
    pi: bool,
    /// Process-shared: waiters wait in the kernel's futex queue (see the module doc).
    shared: bool,
}

impl Mutex {
    /// # Safety
    /// `m` must point at a live, initialised `pthread_mutex_t`.
    #[inline(always)]
    pub unsafe fn at(m: *mut libc::pthread_mutex_t) -> Result<Mutex, Unsupported> {
        let p = m as *mut u8;
        // SAFETY: the fields are aligned ints at glibc's offsets inside the 40-byte object.
        let (lock, count, owner, nusers, kind) = unsafe {
            (
                &*(p as *const AtomicI32),
                &*(p.add(4) as *const AtomicU32),
                &*(p.add(8) as *const AtomicI32),
                &*(p.add(12) as *const AtomicU32),
                (*(p.add(16) as *const AtomicI32)).load(Ordering::Relaxed) & !KIND_ELISION_FLAGS,
            )
        };
        // A process-shared PI mutex needs a real owner for the kernel: the proxies' (or glibc's).
        if kind & !KIND_RUNTIME != 0 || kind & (KIND_PI | KIND_PSHARED) == KIND_PI | KIND_PSHARED {
            return Err(Unsupported);
        }
        Ok(Mutex {
            lock,
            count,
            owner,
            nusers,
            kind: kind & KIND_TYPE_MASK,
            pi: kind & KIND_PI != 0,
            shared: kind & KIND_PSHARED != 0,
        })
    }

    pub(super) fn key(&self) -> usize {
        self.lock as *const AtomicI32 as usize
    }

    #[inline(always)]
    fn acquired(&self, tid: i32) {
        self.owner.store(tid, Ordering::Relaxed);
        if self.kind == KIND_RECURSIVE {
            self.count.store(1, Ordering::Relaxed);
        }
        // Only the holder changes the user count, as in glibc: no atomic read-modify-write needed.
        self.nusers.store(self.nusers.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    }

    /// Owner checks before taking the lock; Some(result) ends the call.
    fn reentry(&self, tid: i32) -> Option<i32> {
        if self.owner.load(Ordering::Relaxed) != tid {
            return None;
        }
        self.relock_by_owner()
    }

    /// The owner locks again: a recursive mutex counts (EAGAIN at the limit), an errorcheck one says
    /// EDEADLK; None for the other kinds (the caller goes on as glibc does).
    pub(super) fn relock_by_owner(&self) -> Option<i32> {
        match self.kind {
            KIND_RECURSIVE => {
                let c = self.count.load(Ordering::Relaxed);
                if c == u32::MAX {
                    return Some(libc::EAGAIN);
                }
                self.count.store(c + 1, Ordering::Relaxed);
                Some(0)
            }
            KIND_ERRORCHECK => Some(libc::EDEADLK),
            _ => None,
        }
    }

    pub fn trylock(&self) -> i32 {
        if self.pi {
            return self.pi_trylock();
        }
        let tid = my_tid();
        if self.kind == KIND_RECURSIVE
            && let Some(r) = self.reentry(tid)
        {
            return r;
        }
        if self.lock.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            self.acquired(tid);
            return 0;
        }
        libc::EBUSY
    }

    /// Locks, waiting until `deadline` (ETIMEDOUT after it). A timed lock whose deadline could not be read
    /// passes the error in `deadline_error`, returned only when it would have to wait, as glibc does.
    #[inline(always)]
    pub fn lock(&self, deadline: Deadline, deadline_error: Option<i32>) -> i32 {
        if self.pi {
            return self.pi_lock(deadline, deadline_error);
        }
        let tid = my_tid();
        if self.kind != KIND_NORMAL
            && let Some(r) = self.reentry(tid)
        {
            return r;
        }
        if self.lock.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            self.acquired(tid);
            return 0;
        }
        self.lock_contended(tid, deadline, deadline_error)
    }

    #[cold]
    #[inline(never)]
    fn lock_contended(&self, tid: i32, deadline: Deadline, deadline_error: Option<i32>) -> i32 {
        if let Some(e) = deadline_error {
            return e;
        }
        let spins = if self.kind == KIND_ADAPTIVE { SPINS * 10 } else { SPINS };
        for _ in 0..spins {
            core::hint::spin_loop();
            if self.lock.load(Ordering::Relaxed) == 0
                && self.lock.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed).is_ok()
            {
                self.acquired(tid);
                return 0;
            }
        }
        self.lock_queued(tid, deadline)
    }

    /// Takes the lock as a waiter does: marked "locked with waiters" (the unlock that wakes one wakes only
    /// one, so others may still be queued).
    #[inline(always)]
    fn lock_queued(&self, tid: i32, deadline: Deadline) -> i32 {
        loop {
            if self.lock.swap(2, Ordering::Acquire) == 0 {
                self.acquired(tid);
                return 0;
            }
            let lock = self.lock;
            if self.shared {
                // glibc's __lll_lock_wait: sleep while the word says "locked with waiters".
                match super::kernel_wait::wait(self.key(), 2, u32::MAX, false, deadline, OnSignal::Resume) {
                    Err(e) if e.0 == libc::ETIMEDOUT => return libc::ETIMEDOUT,
                    _ => continue,
                }
            }
            // Woken, or interrupted (a handler ran in this thread, as glibc's lock goes on after one): retry.
            let wait = Wait::new(WaitReason::Mutex, self.key(), OnSignal::Resume).until(deadline);
            match parking_lot::park(self.key(), 0, || lock.load(Ordering::Relaxed) == 2, || {}, wait) {
                Parked::TimedOut => return libc::ETIMEDOUT,
                _ => continue,
            }
        }
    }

    /// How a condition variable's waiter moved onto this mutex's queue (`Cond`'s wait morphing) locks once
    /// an unlock woke it: `more` is the unlock's token (see `more_waiters`). If nobody else was left in the
    /// queue, a plain lock (1) does, as a waiter that queues later marks the word itself, and the next
    /// unlock need not look for waiters; else as a queued waiter (2).
    pub(super) fn lock_moved(&self, more: bool) -> i32 {
        let tid = my_tid();
        if !more && self.lock.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            self.acquired(tid);
            return 0;
        }
        self.lock_queued(tid, None)
    }

    #[inline(always)]
    pub fn unlock(&self) -> i32 {
        if self.pi {
            return self.pi_unlock();
        }
        match self.kind {
            KIND_RECURSIVE => {
                if self.owner.load(Ordering::Relaxed) != my_tid() {
                    return libc::EPERM;
                }
                let c = self.count.load(Ordering::Relaxed);
                if c > 1 {
                    self.count.store(c - 1, Ordering::Relaxed);
                    return 0;
                }
                self.count.store(0, Ordering::Relaxed);
            }
            KIND_ERRORCHECK
                if self.owner.load(Ordering::Relaxed) != my_tid() || self.lock.load(Ordering::Relaxed) == 0 =>
            {
                return libc::EPERM;
            }
            _ => {}
        }
        self.owner.store(0, Ordering::Relaxed);
        self.nusers.store(self.nusers.load(Ordering::Relaxed).wrapping_sub(1), Ordering::Relaxed);
        if self.lock.swap(0, Ordering::Release) == 2 {
            self.wake_one();
        }
        0
    }

    #[cold]
    #[inline(never)]
    fn wake_one(&self) {
        if self.shared {
            super::kernel_wait::wake(self.key(), 1, false);
            return;
        }
        parking_lot::unpark_one(self.key(), more_waiters);
    }

    /// The key a condition variable's waiter may be moved to while this mutex is held (wait morphing, see
    /// `Cond`), once the caller — who holds it — has unlocked it for the wait: None for the kinds with
    /// protocols of their own (priority inheritance, process-shared) and for a recursive mutex locked more
    /// than once (the wait leaves it locked by the waiter itself, who must not wait behind its own lock).
    pub fn morph_key(&self) -> Option<usize> {
        let once = self.kind != KIND_RECURSIVE || self.count.load(Ordering::Relaxed) <= 1;
        (!self.pi && !self.shared && once).then(|| self.key())
    }

    /// Process-shared: glibc must make a condition wait with it itself (see `glibc_cond`).
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// For condition variables: true when the caller may not wait with this mutex (errorcheck or
    /// recursive, not owned by the caller: EPERM, as glibc's unlock inside pthread_cond_wait reports).
    pub fn not_owned_checked(&self) -> bool {
        if self.pi {
            return self.pi_not_owned();
        }
        (self.kind == KIND_ERRORCHECK || self.kind == KIND_RECURSIVE) && self.owner.load(Ordering::Relaxed) != my_tid()
    }
}

/// For wait morphing: if the mutex whose key (lock word address) is `key` is locked, marks it "locked with
/// waiters" — its unlock then wakes a waiter of its queue — and returns true; false if it is free. Called
/// with the mutex's bucket locked, before waiters are moved onto its queue: an unlock racing with the mark
/// either comes first (the word reads 0: nobody is moved) or finds the mark and wakes after the move.
///
/// # Safety
/// `key` must be the address of a live mutex's lock word (a queued waiter's, which will lock it again).
pub(super) unsafe fn mark_waiters_if_locked(key: usize) -> bool {
    // SAFETY: per the contract, an aligned int of a live mutex.
    let lock = unsafe { &*(key as *const AtomicI32) };
    let mut w = lock.load(Ordering::Relaxed);
    loop {
        match w {
            0 => return false,
            2 => return true,
            _ => match lock.compare_exchange_weak(w, 2, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(now) => w = now,
            },
        }
    }
}

/// The uncontended lock of a normal or adaptive process-private mutex, with no call and no frame: the
/// common case, kept as cheap as glibc's. None means "take the full path".
///
/// # Safety
/// `m` must point at a live, initialised `pthread_mutex_t`.
#[inline(always)]
pub unsafe fn lock_fast(m: *mut libc::pthread_mutex_t) -> Option<i32> {
    let p = m as *mut u8;
    // SAFETY: glibc's field offsets inside the 40-byte object, as in `Mutex::at`.
    unsafe {
        let kind = (*(p.add(16) as *const AtomicI32)).load(Ordering::Relaxed);
        if kind != KIND_NORMAL && kind != KIND_ADAPTIVE {
            return None;
        }
        let lock = &*(p as *const AtomicI32);
        if lock.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed).is_err() {
            return None;
        }
        (*(p.add(8) as *const AtomicI32)).store(my_tid(), Ordering::Relaxed);
        let nusers = &*(p.add(12) as *const AtomicU32);
        nusers.store(nusers.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    }
    Some(0)
}

/// The unlock of a normal or adaptive process-private mutex. None: take the full path. Nothing is checked
/// before the release: for these kinds the full path does the same stores whatever the word holds (glibc
/// does not check the owner either), and a word other than 1 — waiters, or not locked at all — goes to
/// [`release_contended`].
///
/// # Safety
/// `m` must point at a live, initialised `pthread_mutex_t`.
#[inline(always)]
pub unsafe fn unlock_fast(m: *mut libc::pthread_mutex_t) -> Option<i32> {
    let p = m as *mut u8;
    // SAFETY: as in `lock_fast`.
    unsafe {
        let kind = (*(p.add(16) as *const AtomicI32)).load(Ordering::Relaxed);
        let lock = &*(p as *const AtomicI32);
        if kind != KIND_NORMAL && kind != KIND_ADAPTIVE {
            return None;
        }
        (*(p.add(8) as *const AtomicI32)).store(0, Ordering::Relaxed);
        let nusers = &*(p.add(12) as *const AtomicU32);
        nusers.store(nusers.load(Ordering::Relaxed).wrapping_sub(1), Ordering::Relaxed);
        if lock.compare_exchange(1, 0, Ordering::Release, Ordering::Relaxed).is_err() {
            release_contended(lock);
        }
    }
    Some(0)
}

/// The word was not 1 at the release: 2 (waiters: release and wake one) or 0 (not locked: stays 0).
#[cold]
#[inline(never)]
fn release_contended(lock: &AtomicI32) {
    if lock.swap(0, Ordering::Release) == 2 {
        parking_lot::unpark_one(lock as *const AtomicI32 as usize, more_waiters);
    }
}

/// The token an unlock hands the waiter it wakes: 1 if others still wait (read by a condition variable's
/// waiter moved onto the queue, see `Mutex::lock_moved`; the mutex's own waiters lock as waiters anyway).
fn more_waiters(u: parking_lot::Unparking) -> usize {
    u.have_more as usize
}
