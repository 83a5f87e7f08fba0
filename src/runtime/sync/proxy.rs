//! Robust mutexes and process-shared priority-inheritance mutexes held by coroutines, kept correct for the
//! kernel and for other processes through a proxy owner: one real OS thread, the keeper.
//!
//! The kernel reads such a mutex's lock word in two places. At a thread's death its robust-list walk marks
//! the mutexes whose word holds that thread's tid FUTEX_OWNER_DIED (so the next locker, perhaps in another
//! process, gets EOWNERDEAD); and FUTEX_LOCK_PI/UNLOCK_PI find the owner task by the tid in the word. A
//! coroutine's own tid is a fake one, and the worker running it changes, so when a coroutine takes one of
//! these mutexes the word gets the keeper's tid instead: the mutex goes on the keeper's robust list
//! (registered with the kernel, walked when the process dies — killed, or exiting from any thread), a
//! contending PI locker elsewhere attaches to the keeper as owner, and an unlock that finds kernel PI
//! waiters is done by the keeper itself (FUTEX_UNLOCK_PI must come from the owner). Which coroutine holds
//! it is kept in the mutex's `__list.__prev` word, free while the keeper's list (singly linked through
//! `__next`, all the kernel reads) holds the mutex; glibc's `__owner` keeps its usual meaning. All workers
//! share that list: its pending slot, which the kernel also looks at, serves as its lock.
//!
//! Coroutines wait for these mutexes by retrying with short sleeps (the holder may be in another
//! process). Plain threads keep using glibc with their real tids. A coroutine that ends holding one is
//! released as the kernel would release a thread's ([`release_held_by`]).

use super::super::lock::Lock;
use super::super::sys::{self, futex, syscall, time};
use super::{Deadline, my_tid};
use core::sync::atomic::{AtomicI32, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};

const KIND_TYPE_MASK: i32 = 3;
const KIND_RECURSIVE: i32 = 1;
const KIND_ERRORCHECK: i32 = 2;
const KIND_ROBUST: i32 = 16;
const KIND_PI: i32 = 32;
const KIND_PP: i32 = 64;
const KIND_PSHARED: i32 = 128;

const FUTEX_WAITERS: u32 = 0x8000_0000;
const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
const OWNER_INCONSISTENT: i32 = i32::MAX;
const OWNER_NOTRECOVERABLE: i32 = i32::MAX - 1;

/// Offsets in glibc's x86-64 `struct __pthread_mutex_s`.
const OFF_COUNT: usize = 4;
const OFF_OWNER: usize = 8;
const OFF_NUSERS: usize = 12;
const OFF_KIND: usize = 16;
const OFF_LIST_PREV: usize = 24;
const OFF_LIST_NEXT: usize = 32;

/// The kernel's `struct robust_list_head`, for the keeper.
#[repr(C)]
struct RobustHead {
    list: AtomicUsize,
    futex_offset: isize,
    pending: AtomicUsize,
}

static HEAD: RobustHead =
    RobustHead { list: AtomicUsize::new(0), futex_offset: -(OFF_LIST_NEXT as isize), pending: AtomicUsize::new(0) };

const KEEPER_NONE: u8 = 0;
const KEEPER_STARTING: u8 = 1;
const KEEPER_READY: u8 = 2;
const KEEPER_FAILED: u8 = 3;
static KEEPER_STATE: AtomicU8 = AtomicU8::new(KEEPER_NONE);
static KEEPER_TID: AtomicI32 = AtomicI32::new(0);
/// A PI futex operation the keeper makes as the owner: the word, FUTEX_UNLOCK_PI or FUTEX_TRYLOCK_PI, and
/// where to put the result (0 or an errno), if anywhere.
struct Request {
    word: usize,
    op: i32,
    result: *const AtomicI32,
}

// SAFETY: `result` points at a requester's AtomicI32, alive until SERVED passes its ticket.
unsafe impl Send for Request {}

/// Operations for the keeper, in order; `SERVED` counts those done.
static REQUESTS: Lock<Vec<Request>> = Lock::new(Vec::new());
static REQUESTED: AtomicU64 = AtomicU64::new(0);
static SERVED: AtomicU64 = AtomicU64::new(0);
static KEEPER_WAKE: AtomicU32 = AtomicU32::new(0);

/// First and longest pause between attempts of a waiting coroutine.
const PAUSE_MIN_NS: u64 = 20_000;
const PAUSE_MAX_NS: u64 = 2_000_000;

fn sleep_a_while(pause: &mut u64, deadline: Deadline) {
    let now = time::monotonic_ns();
    super::super::sleep_until(deadline.map_or(now + *pause, |d| d.min(now + *pause)));
    *pause = (*pause * 2).min(PAUSE_MAX_NS);
}

extern "C" fn keeper_main(_: *mut libc::c_void) -> *mut libc::c_void {
    // A plain thread for the hooks (GS 0); no process signal may land here instead of in the program.
    // SAFETY: clearing our own GS base; blocking signals in our own thread.
    unsafe { sys::fsgs::set_gs_base(0) };
    let _ = sys::sigmask(Some(!0));
    HEAD.list.store(&HEAD.list as *const AtomicUsize as usize, Ordering::Relaxed);
    // SAFETY: HEAD is static, so it outlives the thread, as the kernel requires.
    let registered = unsafe {
        syscall::syscall2(libc::SYS_set_robust_list, &HEAD as *const RobustHead as usize, size_of::<RobustHead>())
    };
    if registered.is_err() {
        KEEPER_STATE.store(KEEPER_FAILED, Ordering::Release);
        return core::ptr::null_mut();
    }
    KEEPER_TID.store(sys::gettid(), Ordering::Relaxed);
    KEEPER_STATE.store(KEEPER_READY, Ordering::Release);
    loop {
        let seen = KEEPER_WAKE.load(Ordering::Acquire);
        let batch = core::mem::take(&mut *REQUESTS.lock());
        if batch.is_empty() {
            futex::wait(&KEEPER_WAKE, seen, None);
            continue;
        }
        for req in batch {
            // SAFETY: the requester waits for SERVED (or the mutex is one a dead coroutine held), so the
            // word is alive.
            let r = unsafe { syscall::syscall4(libc::SYS_futex, req.word, req.op as usize, 0, 0) };
            if !req.result.is_null() {
                // SAFETY: see Request.
                unsafe { (*req.result).store(r.map_or_else(|e| e.0, |_| 0), Ordering::Relaxed) };
            }
            SERVED.fetch_add(1, Ordering::Release);
        }
    }
}

/// The keeper's tid, starting the keeper at first use; None if it cannot run (then the caller goes to
/// glibc as before).
#[inline]
fn keeper_tid() -> Option<u32> {
    if KEEPER_STATE.load(Ordering::Acquire) == KEEPER_READY {
        return Some(KEEPER_TID.load(Ordering::Relaxed) as u32);
    }
    start_keeper()
}

#[cold]
#[inline(never)]
fn start_keeper() -> Option<u32> {
    let mut pause = PAUSE_MIN_NS;
    loop {
        match KEEPER_STATE.load(Ordering::Acquire) {
            KEEPER_READY => return Some(KEEPER_TID.load(Ordering::Relaxed) as u32),
            KEEPER_FAILED => return None,
            KEEPER_NONE => {
                if KEEPER_STATE
                    .compare_exchange(KEEPER_NONE, KEEPER_STARTING, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                    // SAFETY: keeper_main takes no argument.
                    && !unsafe { super::super::thread::start_os_thread(keeper_main, core::ptr::null_mut()) }
                {
                    KEEPER_STATE.store(KEEPER_FAILED, Ordering::Release);
                    return None;
                }
            }
            _ => sleep_a_while(&mut pause, None),
        }
    }
}

/// Has the keeper make PI futex operation `op` on `word` as its owner, and if `wait`, waits until it has
/// (an unlock must be complete before the caller returns: the mutex may then be freed). Returns the
/// operation's result (0 or an errno) when waited for.
fn keeper_op(word: usize, op: i32, wait: bool) -> i32 {
    let result = AtomicI32::new(0);
    let ticket = {
        let mut q = REQUESTS.lock();
        q.push(Request { word, op, result: if wait { &result } else { core::ptr::null() } });
        REQUESTED.fetch_add(1, Ordering::Relaxed) + 1
    };
    KEEPER_WAKE.fetch_add(1, Ordering::Release);
    futex::wake(&KEEPER_WAKE, 1);
    let mut pause = PAUSE_MIN_NS;
    while wait && SERVED.load(Ordering::Acquire) < ticket {
        sleep_a_while(&mut pause, None);
    }
    result.load(Ordering::Relaxed)
}

/// The right to change the keeper's list: its pending slot, claimed with the entry being locked or
/// unlocked (one atomic operation for both: the slot is what the kernel looks at if the process dies in
/// the middle) and cleared when done. Only raw stores happen while it is held: nothing yields.
struct ListGuard;

fn claim(entry: usize) -> ListGuard {
    let mut spins = 0u32;
    while HEAD.pending.compare_exchange_weak(0, entry, Ordering::Acquire, Ordering::Relaxed).is_err() {
        spins += 1;
        if spins < 100 {
            core::hint::spin_loop();
        } else {
            // The holder's worker was preempted: let it run.
            // SAFETY: sched_yield has no arguments and no memory effects.
            let _ = unsafe { syscall::syscall0(libc::SYS_sched_yield) };
        }
    }
    ListGuard
}

impl Drop for ListGuard {
    fn drop(&mut self) {
        HEAD.pending.store(0, Ordering::Release);
    }
}

/// A stand-in pending entry for list walks that concern no single mutex: a lock word of 0, which the
/// kernel passes over (at most a futex wake nobody waits for).
static NO_ENTRY: [AtomicUsize; 5] = [const { AtomicUsize::new(0) }; 5];

/// Puts `entry` (a mutex's `__list.__next`) at the front of the keeper's list; bit 0 marks a PI futex.
fn enqueue(_: &ListGuard, entry: usize, pi: bool) {
    // SAFETY: the entry is a mutex the keeper now owns; nobody else touches its list words.
    unsafe { (entry as *mut usize).write(HEAD.list.load(Ordering::Relaxed)) };
    HEAD.list.store(entry | pi as usize, Ordering::Release);
}

/// Takes `entry` off the keeper's list.
fn dequeue(_: &ListGuard, entry: usize) {
    let head = &HEAD.list as *const AtomicUsize as usize;
    let mut link = head;
    let mut n = 0;
    // SAFETY: every link is the head or the `__next` word of a mutex on the list (owned by the keeper).
    unsafe {
        loop {
            let next = (link as *const usize).read();
            if next & !1 == head || n > 1_000_000 {
                return;
            }
            if next & !1 == entry {
                (link as *mut usize).write((entry as *const usize).read());
                (entry as *mut usize).write(0);
                return;
            }
            link = next & !1;
            n += 1;
        }
    }
}

/// A robust or process-shared PI mutex, seen by a coroutine.
pub struct Shared {
    /// The `pthread_mutex_t`, live and initialised (see [`Shared::at`]).
    base: usize,
    kind: i32,
    pi: bool,
    robust: bool,
    keeper: u32,
}

impl Shared {
    /// The proxied view of `m` when the caller is a coroutine and `m` is robust or a process-shared PI
    /// mutex (not priority-protect), with the keeper running; None otherwise.
    ///
    /// # Safety
    /// `m` must point at a live, initialised `pthread_mutex_t`.
    pub unsafe fn at(m: *mut libc::pthread_mutex_t) -> Option<Shared> {
        let p = m as *mut u8;
        // SAFETY: aligned fields at glibc's offsets inside the 40-byte object.
        let kind = unsafe { (*(p.add(OFF_KIND) as *const AtomicI32)).load(Ordering::Relaxed) };
        let robust = kind & KIND_ROBUST != 0;
        let pi = kind & KIND_PI != 0;
        if kind & KIND_PP != 0 || !(robust || (pi && kind & KIND_PSHARED != 0)) {
            return None;
        }
        super::super::worker::current_task()?;
        let keeper = keeper_tid()?;
        Some(Shared { base: m as usize, kind: kind & KIND_TYPE_MASK, pi, robust, keeper })
    }

    fn field<T>(&self, offset: usize) -> &T {
        // SAFETY: an aligned atomic field at glibc's offset inside the live mutex `at` was given.
        unsafe { &*((self.base + offset) as *const T) }
    }

    fn word(&self) -> &AtomicU32 {
        self.field(0)
    }

    fn count(&self) -> &AtomicU32 {
        self.field(OFF_COUNT)
    }

    fn owner(&self) -> &AtomicI32 {
        self.field(OFF_OWNER)
    }

    fn nusers(&self) -> &AtomicU32 {
        self.field(OFF_NUSERS)
    }

    /// Which coroutine holds it through the keeper (the `__list.__prev` word, unused meanwhile).
    fn holder(&self) -> &AtomicUsize {
        self.field(OFF_LIST_PREV)
    }

    /// Claims the keeper's list for an operation on this mutex.
    fn claim(&self) -> ListGuard {
        claim(self.entry() | self.pi as usize)
    }

    fn entry(&self) -> usize {
        self.base + OFF_LIST_NEXT
    }

    fn word_addr(&self) -> usize {
        self.base
    }

    /// True when the calling coroutine holds the mutex through the keeper.
    fn held_by_me(&self, me: i32) -> bool {
        self.word().load(Ordering::Relaxed) & FUTEX_TID_MASK == self.keeper
            && self.holder().load(Ordering::Relaxed) == me as usize
    }

    /// Locks (or only tries, `trying`), waiting until `deadline`. A timed lock whose time could not be read
    /// passes the error in `deadline_error`, returned only when it would have to wait.
    pub fn lock(&self, deadline: Deadline, deadline_error: Option<i32>, trying: bool) -> i32 {
        let me = my_tid();
        if self.held_by_me(me) {
            match self.kind {
                KIND_RECURSIVE => {
                    let c = self.count().load(Ordering::Relaxed);
                    if c == u32::MAX {
                        return libc::EAGAIN;
                    }
                    self.count().store(c + 1, Ordering::Relaxed);
                    return 0;
                }
                KIND_ERRORCHECK => return libc::EDEADLK,
                // A plain one relocked by its holder: busy for trylock; lock waits forever (or times out),
                // as natively.
                _ => {}
            }
        }
        if self.robust && !self.pi && self.owner().load(Ordering::Relaxed) == OWNER_NOTRECOVERABLE {
            return libc::ENOTRECOVERABLE;
        }
        let mut pause = PAUSE_MIN_NS;
        loop {
            if let Some(prev) = self.take() {
                return self.acquired(me, prev);
            }
            if trying {
                return libc::EBUSY;
            }
            if let Some(e) = deadline_error {
                return e;
            }
            if deadline.is_some_and(|d| d <= time::monotonic_ns()) {
                return libc::ETIMEDOUT;
            }
            sleep_a_while(&mut pause, deadline);
        }
    }

    /// One attempt: takes the word for the keeper if it has no owner (free, or its owner died — for a PI
    /// word only while the kernel has no waiters on it, which it hands over itself). Some(previous word).
    fn take(&self) -> Option<u32> {
        let keeper = self.keeper;
        let cur = self.word().load(Ordering::Relaxed);
        if self.pi && cur & FUTEX_TID_MASK == 0 && cur & FUTEX_WAITERS != 0 {
            return self.take_from_kernel();
        }
        let ownerless = cur == 0
            || (self.robust
                && cur & FUTEX_TID_MASK == 0
                && cur & FUTEX_OWNER_DIED != 0
                && !(self.pi && cur & FUTEX_WAITERS != 0));
        if !ownerless {
            return None;
        }
        // A non-PI word keeps its waiters bit (they wait with FUTEX_WAIT and need the wake at unlock).
        let new = keeper | if self.pi { 0 } else { cur & FUTEX_WAITERS };
        let list = self.robust.then(|| self.claim());
        let won = self.word().compare_exchange(cur, new, Ordering::Acquire, Ordering::Relaxed).is_ok();
        if let Some(g) = &list
            && won
        {
            enqueue(g, self.entry(), self.pi);
        }
        won.then_some(cur)
    }

    /// A PI word with no owner but the kernel's waiters bit (left by a waiter that timed out, or being
    /// handed on by the kernel): only the kernel may give it out, so the keeper asks with FUTEX_TRYLOCK_PI.
    fn take_from_kernel(&self) -> Option<u32> {
        if keeper_op(self.word_addr(), libc::FUTEX_TRYLOCK_PI, true) != 0 {
            return None;
        }
        let prev = self.word().fetch_and(!FUTEX_OWNER_DIED, Ordering::Acquire);
        if self.robust {
            enqueue(&self.claim(), self.entry(), true);
        }
        debug_assert_eq!(prev & FUTEX_TID_MASK, self.keeper);
        Some(prev & FUTEX_OWNER_DIED)
    }

    fn acquired(&self, me: i32, prev: u32) -> i32 {
        self.holder().store(me as usize, Ordering::Relaxed);
        if prev & FUTEX_OWNER_DIED != 0 {
            self.count().store(1, Ordering::Relaxed);
            self.owner().store(OWNER_INCONSISTENT, Ordering::Relaxed);
            return libc::EOWNERDEAD;
        }
        if self.robust && self.owner().load(Ordering::Relaxed) == OWNER_NOTRECOVERABLE {
            self.count().store(0, Ordering::Relaxed);
            self.release(true);
            return libc::ENOTRECOVERABLE;
        }
        self.count().store(1, Ordering::Relaxed);
        self.owner().store(me, Ordering::Relaxed);
        self.nusers().store(self.nusers().load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        0
    }

    /// Hands the mutex, which the calling coroutine holds, over to glibc's own bookkeeping (its fake tid in
    /// the word, the mutex on its own robust list) for a wait on a process-shared condition variable, which
    /// glibc runs and which unlocks and relocks the mutex inside glibc. False when that cannot be done: a PI
    /// word with kernel waiters, whose owner for the kernel must stay the keeper.
    pub fn hand_to_glibc(&self) -> bool {
        let keeper = self.keeper;
        let me = my_tid();
        let list = self.robust.then(|| self.claim());
        let cur = self.word().load(Ordering::Relaxed);
        if cur & FUTEX_TID_MASK != keeper || (self.pi && cur & FUTEX_WAITERS != 0) {
            return false;
        }
        let mine = (cur & !FUTEX_TID_MASK) | me as u32;
        if self.word().compare_exchange(cur, mine, Ordering::AcqRel, Ordering::Relaxed).is_err() {
            // Only a waiters bit can have been added meanwhile: look again.
            drop(list);
            return self.hand_to_glibc();
        }
        if let Some(g) = &list {
            dequeue(g, self.entry());
            super::super::identity::robust_enqueue(self.entry(), self.pi);
        }
        true
    }

    /// Takes back from glibc's bookkeeping a mutex the calling coroutine holds in its own name after the
    /// condition wait relocked it. Returns the wait's result, `r`, or the relock's if it had to redo it.
    ///
    /// A contended PI relock was done by the kernel for the worker thread (its real tid in the word). With
    /// no kernel waiters left the word simply becomes the keeper's; otherwise only the worker could hand
    /// it on, so it does (FUTEX_UNLOCK_PI) and the mutex is locked again through the keeper. The coroutine
    /// is still on that worker: nothing has run on it since glibc returned.
    pub fn take_from_glibc(&self, r: i32) -> i32 {
        let keeper = self.keeper;
        let me = my_tid() as u32;
        let worker = sys::gettid() as u32;
        let list = self.robust.then(|| self.claim());
        let mut cur = self.word().load(Ordering::Relaxed);
        loop {
            let tid = cur & FUTEX_TID_MASK;
            if tid != me && tid != worker {
                return r;
            }
            if tid == worker && self.pi && cur & FUTEX_WAITERS != 0 {
                if list.is_some() {
                    super::super::identity::robust_dequeue(self.entry());
                }
                drop(list);
                self.nusers().store(self.nusers().load(Ordering::Relaxed).wrapping_sub(1), Ordering::Relaxed);
                let owner = self.owner().load(Ordering::Relaxed);
                self.owner().store(0, Ordering::Relaxed);
                // SAFETY: the calling thread is the kernel's owner of this PI word.
                let _ = unsafe {
                    syscall::syscall4(libc::SYS_futex, self.word_addr(), libc::FUTEX_UNLOCK_PI as usize, 0, 0)
                };
                let relocked = self.lock(None, None, false);
                if relocked == 0 && owner == OWNER_INCONSISTENT {
                    self.owner().store(OWNER_INCONSISTENT, Ordering::Relaxed);
                }
                return if relocked != 0 { relocked } else { r };
            }
            let kept = (cur & !FUTEX_TID_MASK) | keeper;
            match self.word().compare_exchange(cur, kept, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        if let Some(g) = &list {
            super::super::identity::robust_dequeue(self.entry());
            enqueue(g, self.entry(), self.pi);
        }
        self.holder().store(me as usize, Ordering::Relaxed);
        r
    }

    /// True when the calling coroutine does not hold the mutex (a condition wait with it is EPERM).
    pub fn not_owned(&self) -> bool {
        !self.held_by_me(my_tid())
    }

    pub fn unlock(&self) -> i32 {
        self.unlock_waiting(true)
    }

    /// [`Self::unlock`] from inside a park (a condition wait's `before_sleep`), which must not park again: a
    /// hand-off the keeper must make is queued for it without waiting (the mutex outlives the wait, which
    /// relocks it).
    pub fn unlock_in_park(&self) -> i32 {
        self.unlock_waiting(false)
    }

    fn unlock_waiting(&self, wait: bool) -> i32 {
        if !self.held_by_me(my_tid()) {
            return libc::EPERM;
        }
        let inconsistent = self.robust && self.owner().load(Ordering::Relaxed) == OWNER_INCONSISTENT;
        if self.kind == KIND_RECURSIVE {
            let c = self.count().load(Ordering::Relaxed).wrapping_sub(1);
            self.count().store(c, Ordering::Relaxed);
            if c != 0 {
                return if inconsistent { libc::ENOTRECOVERABLE } else { 0 };
            }
        }
        self.owner().store(if inconsistent { OWNER_NOTRECOVERABLE } else { 0 }, Ordering::Relaxed);
        self.nusers().store(self.nusers().load(Ordering::Relaxed).wrapping_sub(1), Ordering::Relaxed);
        self.release(wait);
        0
    }

    /// Gives the word up (off the keeper's list first), waking a waiter as glibc's unlock would; `wait`:
    /// until the keeper has handed on a word the kernel has PI waiters for.
    fn release(&self, wait: bool) {
        self.holder().store(0, Ordering::Relaxed);
        let list = self.robust.then(|| self.claim());
        if let Some(g) = &list {
            dequeue(g, self.entry());
        }
        let keeper_must_unlock = release_word(self.word(), self.pi);
        drop(list);
        if keeper_must_unlock {
            keeper_op(self.word_addr(), libc::FUTEX_UNLOCK_PI, wait);
        }
    }
}

/// Releases a word the keeper holds: a non-PI one is set to 0 and one FUTEX_WAIT waiter woken if it had the
/// waiters bit; a PI one without kernel waiters is set to 0. True when the kernel has PI waiters, so only
/// the keeper's FUTEX_UNLOCK_PI may hand it on.
fn release_word(word: &AtomicU32, pi: bool) -> bool {
    if !pi {
        if word.swap(0, Ordering::Release) & FUTEX_WAITERS != 0 {
            wake_shared(word);
        }
        return false;
    }
    let mut cur = word.load(Ordering::Relaxed);
    loop {
        if cur & FUTEX_WAITERS != 0 {
            return true;
        }
        match word.compare_exchange_weak(cur, 0, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => return false,
            Err(now) => cur = now,
        }
    }
}

fn wake_shared(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE only uses the address as a key (shared: robust and process-shared mutexes wait so).
    let _ = unsafe { syscall::syscall4(libc::SYS_futex, word.as_ptr() as usize, libc::FUTEX_WAKE as usize, 1, 0) };
}

/// A coroutine thread ended: the robust mutexes it held through the keeper get FUTEX_OWNER_DIED, as the
/// kernel does for a dying thread's, and come off the keeper's list; a waiter is woken (one of a non-PI
/// mutex; a PI mutex with kernel waiters is handed on by the keeper, which the kernel does without
/// telling the new owner its predecessor died: a known difference).
pub fn release_held_by(tid: i32) {
    if KEEPER_STATE.load(Ordering::Acquire) != KEEPER_READY {
        return;
    }
    let head = &HEAD.list as *const AtomicUsize as usize;
    let mut handed = Vec::new();
    {
        let g = claim(&NO_ENTRY[OFF_LIST_NEXT / 8] as *const AtomicUsize as usize);
        let mut link = head;
        // SAFETY: links are the head or `__next` words of mutexes the keeper owns.
        unsafe {
            loop {
                let next = (link as *const usize).read();
                let entry = next & !1;
                if entry == head || entry == 0 {
                    break;
                }
                let base = entry - OFF_LIST_NEXT;
                let holder = &*((base + OFF_LIST_PREV) as *const AtomicUsize);
                if holder.load(Ordering::Relaxed) != tid as usize {
                    link = entry;
                    continue;
                }
                let word = &*(base as *const AtomicU32);
                let pi = next & 1 != 0;
                holder.store(0, Ordering::Relaxed);
                dequeue(&g, entry);
                let cur = word.load(Ordering::Relaxed);
                if pi && cur & FUTEX_WAITERS != 0 {
                    handed.push(base);
                } else if word
                    .compare_exchange(
                        cur,
                        (cur & FUTEX_WAITERS) | FUTEX_OWNER_DIED,
                        Ordering::Release,
                        Ordering::Relaxed,
                    )
                    .is_ok()
                    && cur & FUTEX_WAITERS != 0
                {
                    wake_shared(word);
                }
            }
        }
    }
    for word in handed {
        keeper_op(word, libc::FUTEX_UNLOCK_PI, false);
    }
}
