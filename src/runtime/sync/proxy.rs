//! Robust mutexes and process-shared priority-inheritance mutexes held by coroutines, kept correct for the
//! kernel and for other processes through proxy owners: real OS threads, the keepers.
//!
//! The kernel reads such a mutex's lock word in two places. At a thread's death its robust-list walk marks
//! the mutexes whose word holds that thread's tid FUTEX_OWNER_DIED (so the next locker, perhaps in another
//! process, gets EOWNERDEAD), and its PI-state walk hands each PI mutex it owns to the top thread waiting
//! for it in the kernel; and FUTEX_LOCK_PI/UNLOCK_PI find the owner task by the tid in the word. A
//! coroutine's own tid is a fake one, and the worker running it changes, so when a coroutine takes one of
//! these mutexes the word gets a keeper's tid instead: a robust mutex goes on the keeper's robust list
//! (glibc's head in the keeper's descriptor, registered with the kernel, walked when the keeper or the
//! process dies — killed, or exiting from any thread), a contending PI locker elsewhere attaches to the
//! keeper as owner, and an unlock that finds kernel PI waiters is done by the keeper itself
//! (FUTEX_UNLOCK_PI must come from the owner). Which coroutine holds it is kept in the mutex's
//! `__list.__prev` word, free while the keeper's list (singly linked through `__next`, all the kernel
//! reads) holds the mutex; glibc's `__owner` keeps its usual meaning. A keeper's pending slot, which the
//! kernel also looks at, serves as the lock of its list.
//!
//! PI mutexes are held through a keeper of the holder's own, bound to the coroutine while it holds any (a
//! few idle keepers wait for the next holder; a program that never takes one has none). When a coroutine
//! ends holding some, its keeper's thread simply ends too, and the kernel releases them exactly as for any
//! thread that dies holding them: EOWNERDEAD for the next locker, or for a thread already waiting in the
//! kernel, to which the kernel hands the mutex ([`holder_ended`]). Robust mutexes that are not PI share one
//! keeper, whose list all workers use; a coroutine that ends holding one of those is released as the
//! kernel would release a thread's ([`release_held_by`]): their waiters wait with plain futex operations.
//!
//! Coroutines wait for a robust mutex that is not PI as glibc's threads do, in the kernel's futex queue
//! of its word with the waiters bit set ([`super::kernel_wait`]: the holder may be in another process,
//! and its unlock — or the kernel's release at its death — wakes them there), bound to no keeper
//! meanwhile. A PI one only its would-be owner may wait for in the kernel (FUTEX_LOCK_PI), and that
//! owner is to be the coroutine's keeper anyway: so the waiting coroutine binds its keeper, which makes
//! the FUTEX_LOCK_PI and blocks in the kernel as a real waiter (queued by priority, lending the owner its
//! priority, handed the mutex by the owner's FUTEX_UNLOCK_PI or by the kernel at the owner's death),
//! while the coroutine parks and is unparked when the call returns ([`Shared::lock_in_kernel`]). A
//! signal for the coroutine or its deadline aborts the keeper's call through `sys::abortable` (the kernel
//! only restarts an interrupted FUTEX_LOCK_PI, so an EINTR is the abort's and leaves the keeper no waiter
//! and no owner). Plain threads keep using glibc with their real tids.
//!
//! A coroutine's condition wait with such a mutex — on a process-private condition variable or a
//! process-shared one (`super::shared_cond`, glibc's protocol) — unlocks and relocks it here like any
//! other unlock and lock of the coroutine's.

use super::super::lock::Lock;
use super::super::sys::{self, futex, time};
use super::super::task::{Task, TaskRef};
use super::{Deadline, my_tid};
use core::cell::Cell;
use core::sync::atomic::{AtomicI32, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use super::mutex::{KIND_ERRORCHECK, KIND_PI, KIND_PP, KIND_PSHARED, KIND_RECURSIVE, KIND_ROBUST, KIND_TYPE_MASK};

use futex::{FUTEX_OWNER_DIED, FUTEX_TID_MASK, FUTEX_WAITERS, RobustHead};
/// A bound on walks of a keeper's list, against a corrupted (cyclic) list. It is not the kernel's
/// ROBUST_LIST_LIMIT (2,048 entries of one thread's list): the shared keeper's list holds the robust
/// mutexes of every coroutine that locked one through it, so it may legitimately be much longer.
const KEEPER_LIST_WALK_LIMIT: usize = 1_000_000;
const OWNER_INCONSISTENT: i32 = i32::MAX;
const OWNER_NOTRECOVERABLE: i32 = i32::MAX - 1;

/// Offsets in glibc's x86-64 `struct __pthread_mutex_s`.
const OFF_COUNT: usize = 4;
const OFF_OWNER: usize = 8;
const OFF_NUSERS: usize = 12;
const OFF_KIND: usize = 16;
const OFF_LIST_PREV: usize = 24;
const OFF_LIST_NEXT: usize = 32;

const KEEPER_NONE: u8 = 0;
const KEEPER_STARTING: u8 = 1;
const KEEPER_READY: u8 = 2;
const KEEPER_FAILED: u8 = 3;

/// Work for a keeper, done in order.
enum Request {
    /// A PI futex operation it makes as the owner: the word, FUTEX_UNLOCK_PI or FUTEX_TRYLOCK_PI, and where
    /// to put the result (0 or an errno), if anywhere.
    Futex { word: usize, op: i32, result: *const AtomicI32 },
    /// FUTEX_LOCK_PI on `word` for the bound coroutine, which parks meanwhile: made through
    /// `sys::abortable` with flag `abort`, so that the coroutine can end it for a signal or its deadline.
    /// The result: 0 (the keeper owns the word), an errno, or [`NOT_MADE`] (aborted before it began).
    Lock { word: usize, abort: *const AtomicU32, result: *const AtomicI32 },
    /// Ends the keeper's thread, after the requests queued before it, without unlocking what it holds.
    Exit,
}

// SAFETY: `result` (and `abort`) point at a requester's atomics, alive until `served` passes its ticket.
unsafe impl Send for Request {}

/// A [`Request::Lock`] aborted before its system call began.
const NOT_MADE: i32 = -1;

/// A keeper: a real OS thread whose tid goes in the lock words of the mutexes it keeps, whose robust list
/// (glibc's head in its own descriptor, registered with the kernel) holds the robust ones among them, and
/// which makes the PI futex operations the kernel accepts only from the owner.
struct Keeper {
    state: AtomicU8,
    tid: AtomicI32,
    /// Address of its robust-list head.
    head: AtomicUsize,
    /// Operations for it, in order; `served` counts those done.
    requests: Lock<Vec<Request>>,
    requested: AtomicU64,
    served: AtomicU64,
    wake: AtomicU32,
    /// A holder's keeper: how many PI mutexes its coroutine holds through it.
    held: AtomicU32,
    /// A holder's keeper: its `pthread_t`, joined when it ends.
    thread: AtomicUsize,
}

impl Keeper {
    const fn new(state: u8) -> Keeper {
        Keeper {
            state: AtomicU8::new(state),
            tid: AtomicI32::new(0),
            head: AtomicUsize::new(0),
            requests: Lock::new(Vec::new()),
            requested: AtomicU64::new(0),
            served: AtomicU64::new(0),
            wake: AtomicU32::new(0),
            held: AtomicU32::new(0),
            thread: AtomicUsize::new(0),
        }
    }

    fn tid(&self) -> u32 {
        self.tid.load(Ordering::Relaxed) as u32
    }

    fn head(&self) -> &RobustHead {
        // SAFETY: set before the keeper became ready; the head lives in the keeper thread's descriptor for
        // as long as anyone uses the keeper.
        unsafe { &*(self.head.load(Ordering::Relaxed) as *const RobustHead) }
    }

    /// Has the keeper make PI futex operation `op` on `word` as its owner, and if `wait`, waits until it has
    /// (an unlock must be complete before the caller returns: the mutex may then be freed). Returns the
    /// operation's result (0 or an errno) when waited for.
    fn op(&self, word: usize, op: i32, wait: bool) -> i32 {
        let result = AtomicI32::new(0);
        let ticket = self.request(Request::Futex { word, op, result: if wait { &result } else { core::ptr::null() } });
        let served = &self.served;
        while wait && served.load(Ordering::Acquire) < ticket {
            // The keeper unparks the waiters of `served` after each request (a plain thread sleeps). It
            // writes the result into this frame: the wait cannot be left early.
            let key = served as *const AtomicU64 as usize;
            let how = super::super::park::Wait::new(
                super::super::park::WaitReason::Mutex,
                word,
                super::super::park::OnSignal::Deferred,
            );
            super::super::parking_lot::park(key, 0, || served.load(Ordering::Acquire) < ticket, || {}, how);
        }
        result.load(Ordering::Relaxed)
    }

    /// Queues `req` for the keeper and wakes it; returns its ticket (see `served`).
    fn request(&self, req: Request) -> u64 {
        let ticket = {
            let mut q = self.requests.lock();
            q.push(req);
            self.requested.fetch_add(1, Ordering::Relaxed) + 1
        };
        self.wake.fetch_add(1, Ordering::Release);
        futex::wake(&self.wake, 1);
        ticket
    }
}

/// The keeper robust mutexes that are not PI share: only its tid and its list are used (the owner-death of
/// a coroutine holding one is done by [`release_held_by`], as the kernel would).
static SHARED_KEEPER: Keeper = Keeper::new(KEEPER_NONE);

/// First and longest pause while waiting for a keeper thread to start.
const PAUSE_MIN_NS: u64 = 20_000;
const PAUSE_MAX_NS: u64 = 2_000_000;

fn sleep_a_while(pause: &mut u64) {
    super::super::stats::count(&super::super::stats::get().poll_retries);
    super::super::park::sleep_until(time::monotonic_ns() + *pause);
    *pause = (*pause * 2).min(PAUSE_MAX_NS);
}

extern "C" fn keeper_main(arg: *mut libc::c_void) -> *mut libc::c_void {
    // SAFETY: `arg` is the keeper's record, alive until this thread has been joined (the shared one: for
    // ever).
    let k = unsafe { &*(arg as *const Keeper) };
    // A plain thread for the hooks (GS 0); no process signal may land here instead of in the program (it
    // was created with the runtime threads' mask, which leaves faults and glibc's set*id signal open).
    // SAFETY: clearing our own GS base.
    unsafe { sys::fsgs::set_gs_base(0) };
    // The list is glibc's head in this thread's descriptor, which glibc leaves alone (this thread locks
    // no mutex through glibc) and which outlives the kernel's walk of it when the thread ends.
    let head = super::super::identity::robust_head_here();
    // SAFETY: the head is this thread's own, 24 bytes at an aligned address; nobody else knows of it yet.
    let registered = unsafe {
        let h = &*(head as *const RobustHead);
        h.list.store(head, Ordering::Relaxed);
        h.pending.store(0, Ordering::Relaxed);
        (head as *mut isize).add(1).write(-(OFF_LIST_NEXT as isize));
        futex::set_robust_list(head, size_of::<RobustHead>())
    };
    if registered.is_err() {
        k.state.store(KEEPER_FAILED, Ordering::Release);
        return core::ptr::null_mut();
    }
    k.head.store(head, Ordering::Relaxed);
    k.tid.store(sys::gettid(), Ordering::Relaxed);
    k.state.store(KEEPER_READY, Ordering::Release);
    loop {
        let seen = k.wake.load(Ordering::Acquire);
        let batch = core::mem::take(&mut *k.requests.lock());
        if batch.is_empty() {
            futex::wait(&k.wake, seen, None);
            continue;
        }
        let mut exit = false;
        for req in batch {
            match req {
                Request::Exit => exit = true,
                Request::Lock { word, abort, result } => {
                    // Shared futex operations, as glibc's for robust and process-shared PI mutexes. A
                    // signal interrupts FUTEX_LOCK_PI only to restart it: it returns EINTR only when
                    // aborted, and then the kernel has taken the keeper off the mutex's waiters without
                    // giving it the mutex (a lock got just before the abort returns 0 and stands).
                    // SAFETY: the requester waits for `served` (an abort included), so the word, the flag
                    // and the result are alive; FUTEX_LOCK_PI without a timeout reads only the word.
                    let r = unsafe {
                        sys::abortable::call_or_skip(
                            &*abort,
                            libc::SYS_futex,
                            [word, libc::FUTEX_LOCK_PI as usize, 0, 0, 0, 0],
                        )
                    };
                    // SAFETY: see Request.
                    unsafe {
                        (*result).store(r.map_or(NOT_MADE, |r| r.map_or_else(|e| e.0, |_| 0)), Ordering::Relaxed)
                    };
                }
                Request::Futex { word, op, result } => {
                    // SAFETY: the requester waits for `served` (or the mutex is one its coroutine released
                    // and still relocks), so the word is alive.
                    let r = unsafe { futex::futex_raw(word, op, 0, 0, 0, 0) };
                    if !result.is_null() {
                        // SAFETY: see Request.
                        unsafe { (*result).store(r.map_or_else(|e| e.0, |_| 0), Ordering::Relaxed) };
                    }
                }
            }
            k.served.fetch_add(1, Ordering::Release);
            super::super::parking_lot::unpark_all(&k.served as *const AtomicU64 as usize, 0);
        }
        if exit {
            return core::ptr::null_mut();
        }
    }
}

/// The shared keeper, starting it at first use; None if it cannot run (then the caller goes to glibc as
/// before).
#[inline]
fn shared_keeper() -> Option<&'static Keeper> {
    if SHARED_KEEPER.state.load(Ordering::Acquire) == KEEPER_READY {
        return Some(&SHARED_KEEPER);
    }
    start_shared_keeper()
}

#[cold]
#[inline(never)]
fn start_shared_keeper() -> Option<&'static Keeper> {
    let k = &SHARED_KEEPER;
    let mut pause = PAUSE_MIN_NS;
    loop {
        match k.state.load(Ordering::Acquire) {
            KEEPER_READY => return Some(k),
            KEEPER_FAILED => return None,
            KEEPER_NONE => {
                if k.state
                    .compare_exchange(KEEPER_NONE, KEEPER_STARTING, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                    // SAFETY: the record is static.
                    && !unsafe {
                        super::super::os_thread::start(keeper_main, k as *const Keeper as *mut libc::c_void)
                    }
                {
                    k.state.store(KEEPER_FAILED, Ordering::Release);
                    return None;
                }
            }
            _ => sleep_a_while(&mut pause),
        }
    }
}

/// Holders' keepers not bound to a coroutine, ready for the next one: the last one given back, in a slot
/// taken and filled with one atomic operation (a coroutine that locks and unlocks one PI mutex at a time
/// rebinds the same keeper cheaply), and at most [`IDLE_MAX`] more; more end.
static SPARE: AtomicUsize = AtomicUsize::new(0);
static IDLE: Lock<Vec<usize>> = Lock::new(Vec::new());
const IDLE_MAX: usize = 4;
/// Holders' keepers told to end by a coroutine, which does not block its worker to join them: joined
/// (when done) and freed at the next binding.
static ENDING: Lock<Vec<usize>> = Lock::new(Vec::new());
static ENDING_COUNT: AtomicUsize = AtomicUsize::new(0);

/// The keeper bound to coroutine `task`, if any.
fn bound_keeper(task: TaskRef) -> Option<&'static Keeper> {
    let bound = task.keeper.get();
    // SAFETY: a bound keeper's record lives until it is unbound and its thread joined.
    (bound != 0).then(|| unsafe { &*(bound as *const Keeper) })
}

/// The calling coroutine's own keeper for PI mutexes, binding one (idle, or a new one) if it has none;
/// None if none can run.
fn own_keeper(task: TaskRef) -> Option<&'static Keeper> {
    if let Some(k) = bound_keeper(task) {
        return Some(k);
    }
    let k = bind_keeper()?;
    task.keeper.set(k as *const Keeper as usize);
    Some(k)
}

fn bind_keeper() -> Option<&'static Keeper> {
    match SPARE.swap(0, Ordering::Acquire) {
        0 => bind_another_keeper(),
        // SAFETY: idle keepers' records are alive (see own_keeper).
        k => Some(unsafe { &*(k as *const Keeper) }),
    }
}

#[cold]
#[inline(never)]
fn bind_another_keeper() -> Option<&'static Keeper> {
    reap_ended();
    if let Some(k) = IDLE.lock().pop() {
        // SAFETY: idle keepers' records are alive (see own_keeper).
        return Some(unsafe { &*(k as *const Keeper) });
    }
    let k: &'static Keeper = Box::leak(Box::new(Keeper::new(KEEPER_STARTING)));
    // SAFETY: the record lives until the thread is joined.
    let Some(thread) =
        (unsafe { super::super::os_thread::start_joinable(keeper_main, k as *const Keeper as *mut libc::c_void) })
    else {
        // SAFETY: no thread knows of the record.
        drop(unsafe { Box::from_raw(k as *const Keeper as *mut Keeper) });
        return None;
    };
    k.thread.store(thread as usize, Ordering::Relaxed);
    let mut pause = PAUSE_MIN_NS;
    loop {
        match k.state.load(Ordering::Acquire) {
            KEEPER_READY => return Some(k),
            KEEPER_FAILED => {
                end_later(k);
                return None;
            }
            _ => sleep_a_while(&mut pause),
        }
    }
}

/// A holder's keeper its coroutine no longer needs (it holds nothing through it): idle, or ended if enough
/// are; `join_now` (not from a coroutine) joins it at once.
fn put_back(k: &'static Keeper, join_now: bool) {
    let addr = k as *const Keeper as usize;
    if SPARE.compare_exchange(0, addr, Ordering::Release, Ordering::Relaxed).is_ok() {
        return;
    }
    {
        let mut idle = IDLE.lock();
        if idle.len() < IDLE_MAX {
            idle.push(addr);
            return;
        }
    }
    k.request(Request::Exit);
    if join_now {
        join_and_free(k);
    } else {
        end_later(k);
    }
}

fn end_later(k: &'static Keeper) {
    ENDING.lock().push(k as *const Keeper as usize);
    ENDING_COUNT.fetch_add(1, Ordering::Relaxed);
}

/// Waits for an ending keeper's thread to be gone — the kernel has then released what it held — and
/// frees its record.
fn join_and_free(k: &'static Keeper) {
    let thread = k.thread.load(Ordering::Relaxed) as libc::pthread_t;
    // SAFETY: the keeper's thread is joinable and joined only here; after the join nothing uses the record.
    unsafe {
        crate::real::pthread_join(thread, core::ptr::null_mut());
        drop(Box::from_raw(k as *const Keeper as *mut Keeper));
    }
}

/// Joins and frees the keepers of [`ENDING`] whose threads are gone.
fn reap_ended() {
    if ENDING_COUNT.load(Ordering::Relaxed) == 0 {
        return;
    }
    ENDING.lock().retain(|&k| {
        // SAFETY: the records of ending keepers are alive until joined here.
        let thread = unsafe { (*(k as *const Keeper)).thread.load(Ordering::Relaxed) } as libc::pthread_t;
        // SAFETY: a joinable thread joined only here; pthread_tryjoin_np does not block.
        if unsafe { crate::real::pthread_tryjoin_np(thread, core::ptr::null_mut()) } != 0 {
            return true;
        }
        // SAFETY: the thread is gone; nothing else refers to the record.
        drop(unsafe { Box::from_raw(k as *mut Keeper) });
        ENDING_COUNT.fetch_sub(1, Ordering::Relaxed);
        false
    });
}

/// The right to change a keeper's list: its pending slot, claimed with the entry being locked or
/// unlocked (one atomic operation for both: the slot is what the kernel looks at if the process dies in
/// the middle) and cleared when done. Only raw stores happen while it is held: nothing yields.
struct ListGuard<'a>(&'a RobustHead);

fn claim(head: &RobustHead, entry: usize) -> ListGuard<'_> {
    let mut spins = 0u32;
    while head.pending.compare_exchange_weak(0, entry, Ordering::Acquire, Ordering::Relaxed).is_err() {
        spins += 1;
        if spins < 100 {
            core::hint::spin_loop();
        } else {
            // The holder's worker was preempted: let it run.
            sys::sched_yield();
        }
    }
    ListGuard(head)
}

impl Drop for ListGuard<'_> {
    fn drop(&mut self) {
        self.0.pending.store(0, Ordering::Release);
    }
}

/// A stand-in pending entry for list walks that concern no single mutex: a lock word of 0, which the
/// kernel passes over (at most a futex wake nobody waits for).
static NO_ENTRY: [AtomicUsize; 5] = [const { AtomicUsize::new(0) }; 5];

/// Puts `entry` (a mutex's `__list.__next`) at the front of the keeper's list; bit 0 marks a PI futex.
fn enqueue(g: &ListGuard, entry: usize, pi: bool) {
    // SAFETY: the entry is a mutex the keeper now owns; nobody else touches its list words.
    unsafe { (entry as *mut usize).write(g.0.list.load(Ordering::Relaxed)) };
    g.0.list.store(entry | pi as usize, Ordering::Release);
}

/// Takes `entry` off the keeper's list.
fn dequeue(g: &ListGuard, entry: usize) {
    let head = &g.0.list as *const AtomicUsize as usize;
    let mut link = head;
    let mut n = 0;
    // SAFETY: every link is the head or the `__next` word of a mutex on the list (owned by the keeper).
    unsafe {
        loop {
            let next = (link as *const usize).read();
            if next & !1 == head || n > KEEPER_LIST_WALK_LIMIT {
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

/// A mutex taken that is not recoverable: the taker gives it back and fails with ENOTRECOVERABLE.
struct NotRecoverable;

/// How a wait for a PI mutex in the kernel ([`Shared::lock_in_kernel`]) ended.
enum KernelLock {
    /// Taken, with glibc's answer.
    Got(Result<i32, NotRecoverable>),
    /// Not taken: interrupted or timed out.
    NotTaken,
    /// FUTEX_LOCK_PI's error.
    Failed(i32),
}

/// A robust or process-shared PI mutex, seen by a coroutine.
pub struct Shared {
    /// The `pthread_mutex_t`, live and initialised (see [`Shared::at`]).
    base: usize,
    kind: i32,
    pi: bool,
    robust: bool,
    /// A PI one: the calling coroutine's own keeper, bound when it takes the mutex (None until it has
    /// one); otherwise the shared one.
    keeper: Cell<Option<&'static Keeper>>,
    task: TaskRef,
}

impl Shared {
    /// The proxied view of `m` when the caller is a coroutine and `m` is robust or a process-shared PI
    /// mutex (not priority-protect) and, if not PI, the shared keeper runs; None otherwise.
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
        let task = super::super::worker::current_task()?;
        let keeper = if pi { bound_keeper(task) } else { Some(shared_keeper()?) };
        Some(Shared { base: m as usize, kind: kind & KIND_TYPE_MASK, pi, robust, keeper: Cell::new(keeper), task })
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

    fn keeper(&self) -> Option<&'static Keeper> {
        self.keeper.get()
    }

    /// The keeper to take the mutex through, binding one to the calling coroutine for a PI mutex.
    fn bind(&self) -> Option<&'static Keeper> {
        if let Some(k) = self.keeper.get() {
            return Some(k);
        }
        let k = own_keeper(self.task);
        self.keeper.set(k);
        k
    }

    /// Gives back a PI mutex's keeper when the calling coroutine holds nothing through it any more.
    fn settle(&self) {
        if let Some(k) = self.keeper.get()
            && self.pi
            && k.held.load(Ordering::Relaxed) == 0
        {
            self.keeper.set(None);
            if self.task.keeper.get() == k as *const Keeper as usize {
                self.task.keeper.set(0);
                put_back(k, false);
            }
        }
    }

    /// Claims keeper `k`'s list for an operation on this mutex.
    fn claim(&self, k: &'static Keeper) -> ListGuard<'static> {
        claim(k.head(), self.entry() | self.pi as usize)
    }

    /// One more (or, `-1`, one fewer) PI mutex held through `k`, the calling coroutine's own keeper.
    fn count_held(&self, k: &Keeper, n: i32) {
        if self.pi {
            // Only the coroutine bound to the keeper changes the count.
            k.held.store(k.held.load(Ordering::Relaxed).wrapping_add(n as u32), Ordering::Relaxed);
        }
    }

    fn entry(&self) -> usize {
        self.base + OFF_LIST_NEXT
    }

    fn word_addr(&self) -> usize {
        self.base
    }

    /// True when the calling coroutine holds the mutex through the keeper.
    fn held_by_me(&self, me: i32) -> bool {
        self.keeper().is_some_and(|k| {
            self.word().load(Ordering::Relaxed) & FUTEX_TID_MASK == k.tid()
                && self.holder().load(Ordering::Relaxed) == me as usize
        })
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
        loop {
            match self.take() {
                Ok(Some(prev)) => return self.acquired(me, prev),
                Ok(None) => {}
                Err(e) => return e,
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
            if !self.pi {
                self.wait_for_release(deadline);
                continue;
            }
            let Some(k) = self.bind() else { return libc::EAGAIN };
            match self.lock_in_kernel(k, me, deadline) {
                KernelLock::Got(Ok(r)) => return r,
                KernelLock::Got(Err(NotRecoverable)) => {
                    self.release(true);
                    return libc::ENOTRECOVERABLE;
                }
                // Interrupted (its handlers have run) or timed out: look again. A handler may have given
                // the keeper back (it locked and unlocked a PI mutex of its own): bind afresh.
                KernelLock::NotTaken => self.rebind(),
                // The keeper holds it already (a plain mutex relocked by its holder) or its owner is gone
                // without a robust list's release: glibc then waits for ever, or until the deadline.
                KernelLock::Failed(libc::EDEADLK | libc::ESRCH) => return self.wait_for_ever(deadline),
                KernelLock::Failed(e) => return e,
            }
        }
    }

    /// Waits for the mutex in the kernel: the calling coroutine's keeper `k` makes FUTEX_LOCK_PI for it
    /// while it parks, so the kernel queues a real thread as a waiter (by priority, lending the owner its
    /// priority) and hands the mutex to it at the owner's unlock or death, as to any thread. A handled
    /// signal or the deadline aborts the keeper's call before anything else runs in the coroutine (its
    /// handlers run after, on its own stack, and may leave by `siglongjmp`); the mutex is then either not
    /// taken, or taken already and kept (the call completed first, as natively when a signal comes just
    /// after the lock), with its bookkeeping done before the handlers run.
    fn lock_in_kernel(&self, k: &'static Keeper, me: i32, deadline: Deadline) -> KernelLock {
        use super::super::park::{OnSignal, Wait, WaitReason};
        use super::super::parking_lot::{self, Parked};
        let abort = AtomicU32::new(0);
        let result = AtomicI32::new(NOT_MADE);
        // While the kernel may make the keeper the owner, its pending slot names the mutex (glibc's
        // `list_op_pending`): the keeper's list is claimed until the mutex is on it or the wait is over.
        let mut list = self.robust.then(|| self.claim(k));
        let ticket = k.request(Request::Lock { word: self.word_addr(), abort: &abort, result: &result });
        let served = &k.served;
        let key = served as *const AtomicU64 as usize;
        let mut outcome = None;
        while outcome.is_none() {
            let how = Wait::new(WaitReason::Mutex, self.word_addr(), OnSignal::Resume).until(deadline);
            let ended = parking_lot::park_then(
                key,
                0,
                || served.load(Ordering::Acquire) < ticket,
                || {},
                how,
                |p| {
                    if matches!(p, Parked::Interrupted | Parked::TimedOut) && served.load(Ordering::Acquire) < ticket {
                        super::super::offload::abort_call(
                            &abort,
                            || k.tid() as i32,
                            || served.load(Ordering::Acquire) >= ticket,
                        );
                    }
                    if served.load(Ordering::Acquire) >= ticket {
                        outcome = Some(self.kernel_answered(k, me, result.load(Ordering::Relaxed), list.take()));
                    }
                },
            );
            if ended == Parked::Invalid {
                outcome = Some(self.kernel_answered(k, me, result.load(Ordering::Relaxed), list.take()));
            }
        }
        outcome.unwrap_or(KernelLock::NotTaken)
    }

    /// The keeper's FUTEX_LOCK_PI answered `r`: when it got the mutex, the bookkeeping of a lock (off
    /// the pending slot `list` onto the keeper's list, held by the calling coroutine). Runs before any
    /// handler of the coroutine's: it cannot park.
    fn kernel_answered(&self, k: &'static Keeper, me: i32, r: i32, list: Option<ListGuard<'static>>) -> KernelLock {
        match r {
            0 => {
                let died = self.owned_from_kernel(k, list);
                KernelLock::Got(self.note_acquired(me, died))
            }
            NOT_MADE | libc::EINTR => KernelLock::NotTaken,
            e => KernelLock::Failed(e),
        }
    }

    /// The keeper's last binding, after a wait a handler may have run in (see [`Self::lock`]).
    fn rebind(&self) {
        if self.pi
            && self.keeper.get().map(|k| k as *const Keeper as usize)
                != bound_keeper(self.task).map(|k| k as *const Keeper as usize)
        {
            self.keeper.set(None);
        }
        self.settle();
    }

    /// glibc's answer for a PI lock the kernel refused as a deadlock or for a vanished owner: wait for
    /// ever (signal handlers run meanwhile), or until the deadline, then ETIMEDOUT.
    fn wait_for_ever(&self, deadline: Deadline) -> i32 {
        self.settle();
        loop {
            // An hour at a time when there is no deadline.
            super::super::park::sleep_until(deadline.unwrap_or_else(|| time::monotonic_ns() + 3_600_000_000_000));
            if deadline.is_some_and(|d| d <= time::monotonic_ns()) {
                return libc::ETIMEDOUT;
            }
        }
    }

    /// glibc's wait for a robust mutex that is not PI: mark the word as having waiters (so its holder's
    /// unlock, or the kernel's release at the holder's death, makes a FUTEX_WAKE) and wait in the kernel
    /// while it holds that value. Returns early whenever the word changed; the caller tries again.
    fn wait_for_release(&self, deadline: Deadline) {
        let cur = self.word().load(Ordering::Relaxed);
        if cur & FUTEX_TID_MASK == 0 {
            // No owner (free, or its owner died): take it.
            return;
        }
        let want = cur | FUTEX_WAITERS;
        if cur != want && self.word().compare_exchange(cur, want, Ordering::Relaxed, Ordering::Relaxed).is_err() {
            return;
        }
        // Robust mutexes use shared futex operations whatever their kind (the kernel wakes them so).
        let _ = super::kernel_wait::wait(
            self.word_addr(),
            want,
            u32::MAX,
            false,
            deadline,
            super::super::park::OnSignal::Resume,
        );
    }

    /// One attempt: takes the word for the keeper if it has no owner (free, or its owner died — for a PI
    /// word only while the kernel has no waiters on it, which it hands over itself). Ok(Some(previous
    /// word)) when taken; Err(EAGAIN) when no keeper thread can run.
    fn take(&self) -> Result<Option<u32>, i32> {
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
            return Ok(None);
        }
        let k = self.bind().ok_or(libc::EAGAIN)?;
        // A non-PI word keeps its waiters bit (they wait with FUTEX_WAIT and need the wake at unlock).
        let new = k.tid() | if self.pi { 0 } else { cur & FUTEX_WAITERS };
        let list = self.robust.then(|| self.claim(k));
        let won = self.word().compare_exchange(cur, new, Ordering::Acquire, Ordering::Relaxed).is_ok();
        if let Some(g) = &list
            && won
        {
            enqueue(g, self.entry(), self.pi);
        }
        drop(list);
        if won {
            self.count_held(k, 1);
        }
        Ok(won.then_some(cur))
    }

    /// A PI word with no owner but the kernel's waiters bit (left by a waiter that timed out, or being
    /// handed on by the kernel): only the kernel may give it out, so the keeper asks with FUTEX_TRYLOCK_PI.
    fn take_from_kernel(&self) -> Result<Option<u32>, i32> {
        let k = self.bind().ok_or(libc::EAGAIN)?;
        if k.op(self.word_addr(), libc::FUTEX_TRYLOCK_PI, true) != 0 {
            return Ok(None);
        }
        Ok(Some(self.owned_from_kernel(k, None)))
    }

    /// The kernel made keeper `k` the owner of the PI word: the owner-died bit it kept there is taken off
    /// (and returned, as glibc reads it), the mutex goes on the keeper's list (claimed already, `list`, or
    /// now) and counts as held through it.
    fn owned_from_kernel(&self, k: &'static Keeper, list: Option<ListGuard<'static>>) -> u32 {
        let prev = self.word().fetch_and(!FUTEX_OWNER_DIED, Ordering::Acquire);
        if self.robust {
            let g = list.unwrap_or_else(|| self.claim(k));
            enqueue(&g, self.entry(), true);
        }
        self.count_held(k, 1);
        debug_assert_eq!(prev & FUTEX_TID_MASK, k.tid());
        prev & FUTEX_OWNER_DIED
    }

    fn acquired(&self, me: i32, prev: u32) -> i32 {
        self.note_acquired(me, prev).unwrap_or_else(|NotRecoverable| {
            self.release(true);
            libc::ENOTRECOVERABLE
        })
    }

    /// glibc's bookkeeping of a lock just taken (`prev`: the word's owner-died bit before it), without
    /// parking: Err when the mutex is not recoverable, which the caller must give back.
    fn note_acquired(&self, me: i32, prev: u32) -> Result<i32, NotRecoverable> {
        self.holder().store(me as usize, Ordering::Relaxed);
        if prev & FUTEX_OWNER_DIED != 0 {
            self.count().store(1, Ordering::Relaxed);
            self.owner().store(OWNER_INCONSISTENT, Ordering::Relaxed);
            return Ok(libc::EOWNERDEAD);
        }
        if self.robust && self.owner().load(Ordering::Relaxed) == OWNER_NOTRECOVERABLE {
            self.count().store(0, Ordering::Relaxed);
            return Err(NotRecoverable);
        }
        self.count().store(1, Ordering::Relaxed);
        self.owner().store(me, Ordering::Relaxed);
        self.nusers().store(self.nusers().load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        Ok(0)
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
        // The caller holds the mutex, so it has a keeper.
        let Some(k) = self.keeper() else { return };
        self.holder().store(0, Ordering::Relaxed);
        let list = self.robust.then(|| self.claim(k));
        if let Some(g) = &list {
            dequeue(g, self.entry());
        }
        let keeper_must_unlock = release_word(self.word(), self.pi);
        drop(list);
        self.count_held(k, -1);
        if keeper_must_unlock {
            k.op(self.word_addr(), libc::FUTEX_UNLOCK_PI, wait);
        }
    }
}

/// Releases a word the keeper holds: a non-PI one is set to 0 and one FUTEX_WAIT waiter woken if it had the
/// waiters bit; a PI one without kernel waiters is set to 0. True when the kernel has PI waiters, so only
/// the keeper's FUTEX_UNLOCK_PI may hand it on.
fn release_word(word: &AtomicU32, pi: bool) -> bool {
    if !pi {
        if word.swap(0, Ordering::Release) & FUTEX_WAITERS != 0 {
            futex::wake_shared(word, 1);
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

/// A coroutine thread ended: the robust mutexes (not PI) it held through the shared keeper get
/// FUTEX_OWNER_DIED, as the kernel does for a dying thread's, and come off the keeper's list; one waiter
/// is woken. (Its PI mutexes are its own keeper's: see [`holder_ended`].)
pub fn release_held_by(tid: i32) {
    if SHARED_KEEPER.state.load(Ordering::Acquire) != KEEPER_READY {
        return;
    }
    let list = SHARED_KEEPER.head();
    let head = &list.list as *const AtomicUsize as usize;
    let g = claim(list, &NO_ENTRY[OFF_LIST_NEXT / 8] as *const AtomicUsize as usize);
    let mut link = head;
    // SAFETY: links are the head or `__next` words of mutexes the keeper owns.
    unsafe {
        loop {
            let entry = (link as *const usize).read() & !1;
            if entry == head || entry == 0 {
                break;
            }
            let base = entry - OFF_LIST_NEXT;
            let holder = &*((base + OFF_LIST_PREV) as *const AtomicUsize);
            if holder.load(Ordering::Relaxed) != tid as usize {
                link = entry;
                continue;
            }
            holder.store(0, Ordering::Relaxed);
            dequeue(&g, entry);
            futex::mark_owner_died(&*(base as *const AtomicU32), None);
        }
    }
}

/// A coroutine thread ended (its coroutine is gone; the caller is its worker, not a coroutine). If it
/// still held PI mutexes through its own keeper, that keeper's thread ends without unlocking them, so the
/// kernel releases them exactly as for any thread that dies holding them: the robust ones get
/// FUTEX_OWNER_DIED (EOWNERDEAD for the next locker), and each is handed to the top thread waiting for
/// it in the kernel, if any (which then gets EOWNERDEAD too, or 0 for one that is not robust). The
/// thread is joined before the ended thread's joiner hears of the end, as natively. A keeper holding
/// nothing goes back to the idle ones.
pub fn holder_ended(task: &Task) {
    let bound = task.keeper.replace(0);
    if bound == 0 {
        return;
    }
    // SAFETY: a bound keeper's record lives until its thread is joined.
    let k: &'static Keeper = unsafe { &*(bound as *const Keeper) };
    if k.held.load(Ordering::Relaxed) == 0 {
        put_back(k, true);
        return;
    }
    k.request(Request::Exit);
    join_and_free(k);
}

impl Drop for Shared {
    /// A coroutine's own keeper through which it holds nothing any more goes back to the idle ones.
    fn drop(&mut self) {
        self.settle();
    }
}
