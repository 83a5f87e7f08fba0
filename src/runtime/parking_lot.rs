//! The address-keyed parking lot (the shape of `parking_lot_core`): any 32-bit word in the program's own
//! memory — a pthread mutex, condition variable, semaphore, futex — can have a queue of waiters without
//! the runtime storing anything in it. Waiters are coroutines (parked on their worker, woken by
//! generation) or plain OS threads (asleep on a futex word of their own), so coroutines and threads the
//! runtime did not create can wait on and wake each other.
//!
//! A waiter is queued under its bucket's lock after `validate` (run under that lock) confirms it should
//! sleep, and `before_sleep` (for example: unlock the mutex of a condition variable) runs once it is
//! queued, so a wake-up between the two cannot be lost. Queues are FIFO per key, linked through nodes in
//! the waiters themselves (see [`WaitNode`]), so neither a timeout nor a wake-up copies the queue.
//!
//! ## The parker seam
//! The lot is a leaf: it keeps the queues and knows nothing of coroutines. How a waiter sleeps and is
//! woken is a [`Parker`]'s business — "park me until unparked, timed out or interrupted" and "wake this
//! waiter" (its [`Waker`], kept in its queue node). There are two: the task parker (a coroutine, which
//! parks on its worker: `park::TaskParker`, with the scheduler core) and the [`ThreadParker`] here (a
//! plain OS thread, asleep on a futex word). Which one waits is the wait's choice ([`Waiting`]): the
//! runtime's `park::Wait` hands out the task parker when the caller is a coroutine, and a plain thread
//! waits with the thread parker.

use super::cancel_state::plain;
use super::lock::Lock;
use super::sys::futex;
use core::cell::Cell;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

const BUCKETS: usize = 1024;

/// How a park ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parked {
    /// Woken by an unpark, which handed over this token.
    Unparked(usize),
    /// `validate` said not to sleep.
    Invalid,
    TimedOut,
    /// `park::interrupt` ended the wait (a handler ran in the waiter, or it is cancelled): the waiter is
    /// out of the queue; its caller fails with EINTR or parks again, as its `OnSignal` says.
    Interrupted,
}

/// What an unpark decides per waiter, given the token the waiter parked with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    Unpark,
    Skip,
    Stop,
}

/// Facts given to an unpark's callback, run under the bucket lock before anyone is woken.
#[derive(Clone, Copy, Debug)]
pub struct Unparking {
    pub woken: usize,
    /// Waiters left on the same key.
    pub have_more: bool,
}

/// A wait, as the parking lot sees it, and the seam to the waiter's parker: the parker of the calling
/// coroutine if the caller is one, else the lot's own [`ThreadParker`] with what it needs of the wait.
pub trait Waiting: Copy {
    type CoroutineParker: Parker;
    /// The calling coroutine's parker (None: the caller is a plain OS thread). Called before the bucket
    /// lock is taken.
    fn coroutine_parker(self) -> Option<Self::CoroutineParker>;
    /// Until when the wait lasts (absolute CLOCK_MONOTONIC ns).
    fn deadline(&self) -> Option<u64>;
    /// Whether a handled signal that interrupts a plain thread's sleep (and that the kernel does not
    /// restart) ends the wait, as it ends the call the wait emulates with EINTR.
    fn signal_ends(&self) -> bool;
}

/// The parker seam: how one waiter sleeps in the lot. The lot queues [`Parker::node`] under the bucket
/// lock (after `validate`, with the [`Waker`] [`Parker::begin`] returns) and then calls
/// [`Parker::sleep`].
pub trait Parker {
    /// The waiter's queue node; it stays where it is until the park is over.
    fn node(&self) -> &WaitNode;
    /// Under the bucket lock, once `validate` said to sleep: begins the park; returns how an unpark wakes
    /// this waiter.
    fn begin(&mut self) -> Waker;
    /// Sleeps until an unpark, the deadline or an interruption ends the park; leaves the queue if no unpark
    /// took the waiter out ([`leave_queue`]); runs `after` with the outcome (see [`park_then`] for when)
    /// and returns the outcome.
    fn sleep(&mut self, after: impl FnOnce(Parked)) -> Parked;
}

/// How an unpark wakes a waiter, set by its parker when it queues: `wake(node, park)` runs after the
/// bucket lock is released, with the waiter's queue node (whose owner the parker knows: it queued the
/// node) and the park it names. A waiter that left the queue meanwhile must not be hurt by a late wake
/// (a coroutine's park generation, a plain thread that waits for its wake before it returns).
#[derive(Clone, Copy)]
pub struct Waker {
    wake: fn(*const WaitNode, u32),
    park: u32,
}

impl Waker {
    pub const fn new(wake: fn(*const WaitNode, u32), park: u32) -> Waker {
        Waker { wake, park }
    }
}

/// The waker of a node that waits nowhere.
fn no_waiter(_: *const WaitNode, _: u32) {}

/// A waiter's place in its bucket's queue: a link of an intrusive doubly linked list, so joining, leaving
/// (a timeout, from anywhere in the queue) and waking the first waiter cost the same with 5,000 waiters
/// on one key (the GIL of a threaded CPython server) as with one. It lives in the waiter itself — a task
/// record (a task waits on one key at a time) or a plain thread's stack frame — and every field but the
/// two atomics is touched only under the lock of the bucket the node is queued in.
pub struct WaitNode {
    /// The key the node is queued on (a requeue moves it): written under the bucket lock, read without
    /// one by the waiter to find the bucket to lock (and checked again under it).
    key: AtomicUsize,
    /// The token the waiter parked with.
    token: Cell<usize>,
    /// The token handed over by whoever unparked the waiter (written under the bucket lock).
    unpark_token: AtomicUsize,
    waker: Cell<Waker>,
    prev: Cell<*const WaitNode>,
    next: Cell<*const WaitNode>,
    queued: Cell<bool>,
}

impl WaitNode {
    pub const fn new() -> WaitNode {
        WaitNode {
            key: AtomicUsize::new(0),
            token: Cell::new(0),
            unpark_token: AtomicUsize::new(0),
            waker: Cell::new(Waker::new(no_waiter, 0)),
            prev: Cell::new(core::ptr::null()),
            next: Cell::new(core::ptr::null()),
            queued: Cell::new(false),
        }
    }

    /// The token the unpark that took this waiter out handed over.
    #[inline]
    pub fn unpark_token(&self) -> usize {
        self.unpark_token.load(Ordering::Acquire)
    }
}

impl Default for WaitNode {
    fn default() -> Self {
        WaitNode::new()
    }
}

/// One key's FIFO of wait nodes, linked through the nodes.
struct KeyQueue {
    key: usize,
    head: *const WaitNode,
    tail: *const WaitNode,
}

/// A bucket's waiters: a small array of the keys that hash to it and have waiters, each with its own
/// list. Finding a key reads the array, not the nodes (which lie in task records all over the heap: with
/// 10,000 fds waited on, walking one list of every key's nodes made each readiness wake-up several cache
/// misses); within a key, joining, leaving and taking the first waiter are O(1).
struct Queue {
    keys: Vec<KeyQueue>,
}

// SAFETY: the nodes are reached only under the bucket lock, and each stays where it is (a task record, or
// a thread's frame that does not return) while queued.
unsafe impl Send for Queue {}

impl Queue {
    const fn new() -> Queue {
        Queue { keys: Vec::new() }
    }

    fn index(&self, key: usize) -> Option<usize> {
        self.keys.iter().position(|k| k.key == key)
    }

    /// Appends `n` to the list of its key; `n` is not queued anywhere.
    fn push_back(&mut self, n: &WaitNode) {
        n.next.set(core::ptr::null());
        n.queued.set(true);
        let Some(i) = self.index(n.key.load(Ordering::Relaxed)) else {
            n.prev.set(core::ptr::null());
            self.keys.push(KeyQueue { key: n.key.load(Ordering::Relaxed), head: n, tail: n });
            return;
        };
        let kq = &mut self.keys[i];
        n.prev.set(kq.tail);
        // SAFETY: the tail is a queued node (see Queue).
        unsafe { (*kq.tail).next.set(n) };
        kq.tail = n;
    }

    /// Unlinks `n`, which is queued here; its key leaves the array with its last waiter.
    fn unlink(&mut self, n: &WaitNode) {
        let i = self.index(n.key.load(Ordering::Relaxed)).expect("a queued node's key is in its bucket");
        let kq = &mut self.keys[i];
        let (prev, next) = (n.prev.get(), n.next.get());
        if prev.is_null() {
            kq.head = next;
        } else {
            // SAFETY: neighbours of a queued node are queued nodes.
            unsafe { (*prev).next.set(next) };
        }
        if next.is_null() {
            kq.tail = prev;
        } else {
            // SAFETY: as above.
            unsafe { (*next).prev.set(prev) };
        }
        n.queued.set(false);
        if kq.head.is_null() {
            self.keys.swap_remove(i);
        }
    }

    /// The first node waiting on `key` after `from` (a node of that key), or its first if `from` is null.
    fn find(&self, key: usize, from: *const WaitNode) -> *const WaitNode {
        if from.is_null() {
            return self.index(key).map_or(core::ptr::null(), |i| self.keys[i].head);
        }
        // SAFETY: `from` is a queued node of `key`'s list.
        unsafe { (*from).next.get() }
    }
}

/// One hash bucket: the queue of waiters on every key that hashes here, and how many there are.
///
/// The count lets [`unpark_all`] skip the lock when nobody waits (the netpoller notifies both directions
/// of every ready fd; the write side almost never has a waiter). It is changed only by read-modify-writes,
/// with the lock held: a parker adds itself before `validate` reads the state it waits on, and a waker
/// reads the count with a read-modify-write after changing that state. Either the waker's read comes after
/// the parker's increment (it sees a waiter and takes the lock), or the parker's increment reads from it
/// and so sees the state change, and does not sleep.
struct Bucket {
    queue: Lock<Queue>,
    waiters: AtomicUsize,
}

static TABLE: [Bucket; BUCKETS] =
    [const { Bucket { queue: Lock::new(Queue::new()), waiters: AtomicUsize::new(0) } }; BUCKETS];

fn bucket(key: usize) -> &'static Bucket {
    // Fibonacci hashing of the address; the low bits of aligned addresses carry little.
    let h = (key >> 2).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - 10);
    &TABLE[h]
}

/// Parks the caller on `key` unless `validate` (under the bucket lock) returns false. `wait` says why
/// (a coroutine's park carries it, see `park`), until when, and what a handled signal does to the wait;
/// it also chooses the parker (see [`Waiting`]).
pub fn park<W: Waiting>(
    key: usize,
    token: usize,
    validate: impl FnOnce() -> bool,
    before_sleep: impl FnOnce(),
    wait: W,
) -> Parked {
    park_then(key, token, validate, before_sleep, wait, |_| {})
}

/// [`park`], with `after` run once the park is over (not when `validate` refused it) and before any
/// signal handler runs in the waiter: for bookkeeping of its own the caller did around the park (waiter
/// counts), which a handler leaving the wait by `siglongjmp` must not leave behind. Not for
/// `OnSignal::ResumeInPlace` waits (their handlers run with the waiter still queued).
pub fn park_then<W: Waiting>(
    key: usize,
    token: usize,
    validate: impl FnOnce() -> bool,
    before_sleep: impl FnOnce(),
    wait: W,
    after: impl FnOnce(Parked),
) -> Parked {
    match wait.coroutine_parker() {
        Some(mut parker) => park_with(&mut parker, key, token, validate, before_sleep, after),
        None => {
            let mut parker = ThreadParker::new(wait.deadline(), wait.signal_ends());
            park_with(&mut parker, key, token, validate, before_sleep, after)
        }
    }
}

/// The lot's half of every park: queue the parker's node if `validate` agrees, then let it sleep.
#[inline(always)]
fn park_with<P: Parker>(
    parker: &mut P,
    key: usize,
    token: usize,
    validate: impl FnOnce() -> bool,
    before_sleep: impl FnOnce(),
    after: impl FnOnce(Parked),
) -> Parked {
    {
        let bk = bucket(key);
        let mut q = bk.queue.lock();
        bk.waiters.fetch_add(1, Ordering::AcqRel);
        if !validate() {
            bk.waiters.fetch_sub(1, Ordering::AcqRel);
            return Parked::Invalid;
        }
        let waker = parker.begin();
        enqueue(&mut q, parker.node(), key, token, waker);
    }
    before_sleep();
    parker.sleep(after)
}

/// Queues `node` for `key` (the bucket `q` belongs to).
fn enqueue(q: &mut Queue, node: &WaitNode, key: usize, token: usize, waker: Waker) {
    node.key.store(key, Ordering::Relaxed);
    node.token.set(token);
    node.waker.set(waker);
    q.push_back(node);
}

/// Takes the caller's own `node` out of the queue of the key it is on now (read from the node, which a
/// requeue may change while we look). Returns false if it was no longer queued (an unpark took it out:
/// then that counted it as woken, and so must its owner). The caller holds no bucket lock.
pub fn leave_queue(node: &WaitNode) -> bool {
    loop {
        let k = node.key.load(Ordering::Acquire);
        let bk = bucket(k);
        let mut q = bk.queue.lock();
        if node.key.load(Ordering::Acquire) != k {
            continue;
        }
        if !node.queued.get() {
            return false;
        }
        q.unlink(node);
        bk.waiters.fetch_sub(1, Ordering::AcqRel);
        return true;
    }
}

/// Under the lock of the bucket the caller's own `node` is queued in now, if it still is: `begin` starts a
/// new park of the waiter, which keeps its place in the queue (an interrupted `OnSignal::ResumeInPlace`
/// wait that goes on), and the node takes the waker it returns. None if an unpark took the node out
/// meanwhile (the wait is over).
pub fn park_again_in_place<R>(node: &WaitNode, begin: impl FnOnce() -> (R, Waker)) -> Option<R> {
    loop {
        let k = node.key.load(Ordering::Acquire);
        let _q = bucket(k).queue.lock();
        if node.key.load(Ordering::Acquire) != k {
            continue;
        }
        if !node.queued.get() {
            return None;
        }
        let (r, waker) = begin();
        node.waker.set(waker);
        return Some(r);
    }
}

/// Under the lock of the bucket the caller's own `node` is queued in now, if it still is: its park token
/// becomes 0. For a waiter whose token points into its own frame (a condition variable's, see
/// `sync::cond`), before a signal handler that may leave that frame by `siglongjmp` runs while the node
/// stays queued: no unpark then reads through the token.
#[cold]
#[inline(never)]
pub fn forget_token(node: &WaitNode) {
    // Only the node's owner (the caller) sets its token: 0 already (nothing to read through), nothing to do.
    if node.token.get() == 0 {
        return;
    }
    loop {
        let k = node.key.load(Ordering::Acquire);
        let _q = bucket(k).queue.lock();
        if node.key.load(Ordering::Acquire) != k {
            continue;
        }
        if node.queued.get() {
            node.token.set(0);
        }
        return;
    }
}

/// A place for one waiter on one key, beside the lot: an fd's readiness side, which almost always has one
/// coroutine waiting on it (a thread-per-connection server's reader). Entering and waking it are one
/// atomic read-modify-write each, without the bucket, its lock and its queue; a second waiter on the same
/// key waits in the lot as before, so a waker wakes both ([`Slot::wake`], then [`unpark_all`]).
///
/// The word holds the waiting node's address (0: empty). Both sides change it with a read-modify-write,
/// so no wake-up is lost: a waker changes the state its waiters validate, then swaps the word; a waiter
/// swaps itself in, then validates. Either the waker's swap comes later in the word's order (it finds the
/// waiter), or the waiter's exchange reads from it and so sees the state change. Whoever takes the node
/// out of the word (a waker, or the waiter leaving after a timeout or a signal) owns the wake-up: a waker
/// hands over its token ([`WaitNode::unpark_token`], + 1 so that 0 means "not yet") and then wakes the
/// park the node's waker names; a waiter that finds itself taken waits for that token ([`Slot::leave`]).
/// All-zero bytes are an empty slot (it lives in the fd table's zero-filled mapping).
pub struct Slot {
    node: AtomicUsize,
}

impl Slot {
    pub const fn new() -> Slot {
        Slot { node: AtomicUsize::new(0) }
    }

    /// Whether no waiter is in the slot now (a hint: the caller then tries [`Slot::enter`]).
    #[inline(always)]
    pub fn is_free(&self) -> bool {
        self.node.load(Ordering::Relaxed) == 0
    }

    /// Puts the caller's own `node` in the slot, to be woken through `waker`; false if another waiter is
    /// in it. The caller validates the state it waits on after this, and sleeps.
    #[inline(always)]
    pub fn enter(&self, node: &WaitNode, waker: Waker) -> bool {
        // The node is the caller's and in no queue: its cells are its own until it is published here.
        node.waker.set(waker);
        node.unpark_token.store(0, Ordering::Relaxed);
        self.node.compare_exchange(0, node as *const WaitNode as usize, Ordering::AcqRel, Ordering::Relaxed).is_ok()
    }

    /// The caller's `node` leaves the slot it entered: true if it was still there (no waker took it).
    #[inline(always)]
    pub fn leave(&self, node: &WaitNode) -> bool {
        let me = node as *const WaitNode as usize;
        self.node.load(Ordering::Relaxed) == me
            && self.node.compare_exchange(me, 0, Ordering::AcqRel, Ordering::Relaxed).is_ok()
    }

    /// The token of the waker that took `node` out of the slot, once handed over (None until then: the
    /// waker is between its swap and its hand-over).
    #[inline(always)]
    pub fn handed(node: &WaitNode) -> Option<usize> {
        node.unpark_token.load(Ordering::Acquire).checked_sub(1)
    }

    /// Wakes the slot's waiter, if there is one, handing it `token`. The caller has changed the state the
    /// waiter validates first. Returns how many were woken (0 or 1).
    #[inline(always)]
    pub fn wake(&self, token: usize) -> usize {
        // A read-modify-write even when empty: see the type's documentation.
        let n = self.node.swap(0, Ordering::AcqRel);
        if n == 0 {
            return 0;
        }
        // SAFETY: a node in the slot is its waiter's, which stays put until its token is handed over.
        let node = unsafe { &*(n as *const WaitNode) };
        let waker = node.waker.get();
        // After this store the waiter may go on and park elsewhere: the waker was read before.
        node.unpark_token.store(token.wrapping_add(1), Ordering::Release);
        (waker.wake)(node, waker.park);
        1
    }
}

impl Default for Slot {
    fn default() -> Self {
        Slot::new()
    }
}

/// The thread parker: a plain OS thread (one the runtime does not run as a coroutine) waits on a futex word
/// of its own, on its stack.
pub struct ThreadParker {
    /// 0 while it waits; 1 once an unpark woke it (or a cancellation poke, see `cancel_state::plain`).
    woken: AtomicU32,
    node: WaitNode,
    deadline: Option<u64>,
    signal_ends: bool,
}

impl ThreadParker {
    fn new(deadline: Option<u64>, signal_ends: bool) -> ThreadParker {
        ThreadParker { woken: AtomicU32::new(0), node: WaitNode::new(), deadline, signal_ends }
    }

    /// The [`Waker`] of a plain thread's node.
    fn wake(node: *const WaitNode, _park: u32) {
        // SAFETY: thread parkers queue only their own `node` field, so the parker is at the node's address
        // less the field's offset; it stays on its thread's stack until `woken` is 1 (after this store the
        // waiter may return and its frame go away; the futex wake uses the address only as a key).
        let word = unsafe { &(*node.byte_sub(core::mem::offset_of!(ThreadParker, node)).cast::<ThreadParker>()).woken };
        word.store(1, Ordering::Release);
        futex::wake(word, 1);
    }
}

impl Parker for ThreadParker {
    fn node(&self) -> &WaitNode {
        &self.node
    }

    fn begin(&mut self) -> Waker {
        Waker::new(ThreadParker::wake, 0)
    }

    fn sleep(&mut self, after: impl FnOnce(Parked)) -> Parked {
        let tw = &*self;
        let mut why = Parked::TimedOut;
        // Inside a cancellation point, a request (glibc's own, for a plain thread) pokes the wait (see
        // `cancel_state::plain`).
        let poke = plain::parking(&tw.woken);
        while tw.woken.load(Ordering::Acquire) != 1 {
            if poke && plain::poked(&tw.woken) {
                why = Parked::Interrupted;
                break;
            }
            match futex::wait_interruptible(&tw.woken, 0, tw.deadline) {
                futex::WaitEnd::TimedOut => break,
                // The kernel interrupted our futex wait, and did not restart it (it restarts an untimed one
                // itself when the handler has SA_RESTART): end the call as it would.
                futex::WaitEnd::Interrupted if tw.signal_ends => {
                    why = Parked::Interrupted;
                    break;
                }
                _ => {}
            }
        }
        if poke {
            plain::parked(&tw.woken);
        }
        // No poke can come now (and none is left in the word): 0 until an unpark makes it 1.
        let r = 'ended: {
            if tw.woken.load(Ordering::Acquire) == 0 {
                if leave_queue(&tw.node) {
                    break 'ended why;
                }
                // An unpark took us out of the queue and is about to mark us woken: wait for it, since the
                // parker is ours.
                while tw.woken.load(Ordering::Acquire) == 0 {
                    futex::wait(&tw.woken, 0, None);
                }
            }
            Parked::Unparked(tw.node.unpark_token())
        };
        after(r);
        r
    }
}

/// Wakes waiters on `key` in FIFO order as `filter` decides from their park tokens. `callback` runs under
/// the bucket lock after the choice and before any wake, and returns the token handed to each woken
/// waiter. Returns how many were woken.
pub fn unpark_filter(
    key: usize,
    mut filter: impl FnMut(usize) -> Filter,
    callback: impl FnOnce(Unparking) -> usize,
) -> usize {
    let mut woken = Woken::new();
    let bk = bucket(key);
    let mut q = bk.queue.lock();
    let mut have_more = false;
    let mut at = q.find(key, core::ptr::null());
    while !at.is_null() {
        // SAFETY: `find` returns queued nodes, which stay put while we hold the bucket lock.
        let n = unsafe { &*at };
        let next = q.find(key, at);
        match filter(n.token.get()) {
            Filter::Unpark => {
                q.unlink(n);
                woken.push(n);
            }
            Filter::Skip => have_more = true,
            Filter::Stop => {
                have_more = true;
                break;
            }
        }
        at = next;
    }
    if woken.len() > 0 {
        bk.waiters.fetch_sub(woken.len(), Ordering::AcqRel);
    }
    let token = callback(Unparking { woken: woken.len(), have_more });
    woken.each(|w| w.set_token(token));
    drop(q);
    woken.each(Wakeup::wake);
    woken.len()
}

/// A waiter an unpark took out of its queue: its node and its waker, copied under the bucket lock (once
/// the lock is released, a waiter that timed out meanwhile may park again and change its node).
#[derive(Clone, Copy)]
struct Wakeup {
    node: *const WaitNode,
    waker: Waker,
}

impl Wakeup {
    /// Hands the waiter `token`; under the bucket lock.
    fn set_token(self, token: usize) {
        // SAFETY: the node was queued under the lock still held; its owner waits for this wake (a thread
        // parker) or lives for the process (a task record).
        unsafe { (*self.node).unpark_token.store(token, Ordering::Release) };
    }

    /// Wakes the waiter; after the bucket lock is released.
    fn wake(self) {
        (self.waker.wake)(self.node, self.waker.park);
    }
}

/// The waiters one unpark takes out of their bucket. Almost always one or a few: kept on the stack, so a
/// wake-up does not cost a heap allocation (that was 13% of a round trip's instructions in the echo bench).
struct Woken {
    /// The first `len.min(INLINE)` slots are initialised (left uninitialised, not zeroed, at creation).
    inline: [core::mem::MaybeUninit<Wakeup>; Woken::INLINE],
    len: usize,
    spill: Vec<Wakeup>,
}

impl Woken {
    const INLINE: usize = 8;
    fn new() -> Woken {
        Woken { inline: [const { core::mem::MaybeUninit::uninit() }; Woken::INLINE], len: 0, spill: Vec::new() }
    }
    /// Takes `n` (just unlinked, under the bucket lock) with its waker.
    fn push(&mut self, n: &WaitNode) {
        let w = Wakeup { node: n, waker: n.waker.get() };
        if self.len < Self::INLINE {
            self.inline[self.len].write(w);
        } else {
            self.spill.push(w);
        }
        self.len += 1;
    }
    fn len(&self) -> usize {
        self.len
    }
    fn each(&self, mut f: impl FnMut(Wakeup)) {
        for slot in &self.inline[..self.len.min(Self::INLINE)] {
            // SAFETY: push initialised every slot below len (Wakeup is Copy: nothing to drop).
            f(unsafe { slot.assume_init() });
        }
        self.spill.iter().for_each(|w| f(*w));
    }
}

/// Wakes the first waiter on `key`; `callback` (under the bucket lock) learns whether one was woken and
/// whether others remain.
pub fn unpark_one(key: usize, callback: impl FnOnce(Unparking) -> usize) -> usize {
    let mut taken = false;
    unpark_filter(
        key,
        |_| {
            if taken {
                Filter::Stop
            } else {
                taken = true;
                Filter::Unpark
            }
        },
        callback,
    )
}

/// Wakes every waiter on `key`. The caller has changed the state its waiters validate first (see [`Bucket`]).
/// Inlined: almost always nobody waits (an fd's waiter is in its slot), which costs the check alone.
#[inline(always)]
pub fn unpark_all(key: usize, token: usize) -> usize {
    // A read-modify-write, not a load: see `Bucket` for why that keeps a concurrent park from being missed.
    let bk = bucket(key);
    if bk.waiters.fetch_add(0, Ordering::AcqRel) == 0 {
        return 0;
    }
    unpark_all_queued(bk, key, token)
}

/// [`unpark_all`] once the bucket has waiters.
#[inline(never)]
fn unpark_all_queued(bk: &Bucket, key: usize, token: usize) -> usize {
    // Every waiter on the key goes, so its whole list leaves the bucket at once: one look-up of the key
    // instead of one per node to unlink it (this is the netpoller's wake-up of an fd's waiters, once per
    // round trip of a server).
    let mut woken = Woken::new();
    let mut q = bk.queue.lock();
    let Some(i) = q.index(key) else {
        return 0;
    };
    let mut at = q.keys.swap_remove(i).head;
    while !at.is_null() {
        // SAFETY: the list's nodes are queued nodes, which stay put while we hold the bucket lock.
        let n = unsafe { &*at };
        at = n.next.get();
        n.queued.set(false);
        woken.push(n);
    }
    bk.waiters.fetch_sub(woken.len(), Ordering::AcqRel);
    woken.each(|w| w.set_token(token));
    drop(q);
    woken.each(Wakeup::wake);
    woken.len()
}

/// Whether anyone may wait on `key`'s bucket: false means nobody waits on `key` (for a waker that has
/// changed the state its waiters validate first, see [`Bucket`]), and no lock need be taken.
#[inline(always)]
pub fn may_have_waiters(key: usize) -> bool {
    // A read-modify-write, not a load: see `Bucket`.
    bucket(key).waiters.fetch_add(0, Ordering::AcqRel) != 0
}

/// Wait morphing (a condition variable's signal or broadcast while its waiters' mutex is held): takes up
/// to `limit` waiters off `from` in FIFO order and, instead of waking them only to find the mutex taken,
/// moves them onto the queue of the key `target` names for the first of them (behind its waiters), where
/// an unpark of that key wakes them later. `target` reads a waiter's token: the key it may be moved to, or
/// None (it is woken, as an unpark would). `take` runs with both buckets locked, once, before anything
/// moves: false (the mutex is free after all) wakes them all instead; `moved` runs under the same locks
/// for each waiter moved. Moving is never needed for correctness, so a target bucket that cannot be
/// locked in the lock order without waiting is given up for a plain wake. Returns (woken, moved). For a
/// caller that found [`may_have_waiters`] true (a signal with nobody waiting takes no lock).
#[inline(never)]
pub fn unpark_or_requeue(
    from: usize,
    limit: usize,
    target: impl Fn(usize) -> Option<usize>,
    take: impl FnOnce(usize) -> bool,
    mut moved: impl FnMut(usize),
) -> (usize, usize) {
    let bk = bucket(from);
    let mut q = bk.queue.lock();
    let mut at = q.find(from, core::ptr::null());
    if at.is_null() {
        return (0, 0);
    }
    // SAFETY: `find` returns queued nodes, which stay put while we hold the bucket lock.
    let to = target(unsafe { (*at).token.get() });
    // The target's bucket: this one, or another taken in address order (the order `requeue` keeps), or
    // tried without waiting when it comes first.
    let (to, mut other) = match to {
        Some(t) if core::ptr::eq(bucket(t), bk) => (Some(t), None),
        Some(t) => {
            let bt = bucket(t);
            let g = if (bt as *const Bucket as usize) > (bk as *const Bucket as usize) {
                Some(bt.queue.lock())
            } else {
                bt.queue.try_lock()
            };
            (g.is_some().then_some(t), g)
        }
        None => (None, None),
    };
    let to = to.filter(|&t| take(t));
    let mut woken = Woken::new();
    let mut n_moved = 0;
    while !at.is_null() && woken.len() + n_moved < limit {
        let next = q.find(from, at);
        // SAFETY: as above.
        let n = unsafe { &*at };
        q.unlink(n);
        let token = n.token.get();
        match to {
            Some(t) if target(token) == Some(t) => {
                n.key.store(t, Ordering::Release);
                match other.as_mut() {
                    Some(g) => g.push_back(n),
                    None => q.push_back(n),
                }
                moved(token);
                n_moved += 1;
            }
            _ => woken.push(n),
        }
        at = next;
    }
    // Counted on the target first, so that neither count ever reads less than its queue holds.
    if let Some(t) = to {
        bucket(t).waiters.fetch_add(n_moved, Ordering::AcqRel);
    }
    bk.waiters.fetch_sub(woken.len() + n_moved, Ordering::AcqRel);
    woken.each(|w| w.set_token(0));
    drop(other);
    drop(q);
    woken.each(Wakeup::wake);
    (woken.len(), n_moved)
}

/// FUTEX_REQUEUE / FUTEX_CMP_REQUEUE: wakes up to `wake` waiters on `from` and moves up to `requeue` of
/// the others to `to` (behind its own waiters), unless `check` (run with both queues locked) fails.
/// Returns (woken, moved), or None if `check` failed.
pub fn requeue(
    from: usize,
    to: usize,
    wake: usize,
    requeue: usize,
    check: impl FnOnce() -> bool,
) -> Option<(usize, usize)> {
    let (bk1, bk2) = (bucket(from), bucket(to));
    let (b1, b2) = (&bk1.queue, &bk2.queue);
    let same = core::ptr::eq(b1, b2);
    // Lock in address order so two requeues cannot deadlock.
    let (first, second) = if (b1 as *const _ as usize) <= (b2 as *const _ as usize) { (b1, b2) } else { (b2, b1) };
    let mut g1 = first.lock();
    let mut g2 = if same { None } else { Some(second.lock()) };
    if !check() {
        return None;
    }
    let mut woken = Woken::new();
    let mut moved: Vec<*const WaitNode> = Vec::new();
    {
        let src: &mut Queue = if core::ptr::eq(first, b1) { &mut g1 } else { g2.as_mut().expect("two buckets") };
        let mut at = src.find(from, core::ptr::null());
        while !at.is_null() && (woken.len() < wake || moved.len() < requeue) {
            let next = src.find(from, at);
            // SAFETY: a queued node, stable under the lock.
            let n = unsafe { &*at };
            src.unlink(n);
            if woken.len() < wake {
                woken.push(n);
            } else {
                moved.push(at);
            }
            at = next;
        }
    }
    let n_moved = moved.len();
    if woken.len() > 0 || n_moved > 0 {
        bk2.waiters.fetch_add(n_moved, Ordering::AcqRel);
        bk1.waiters.fetch_sub(woken.len() + n_moved, Ordering::AcqRel);
    }
    {
        let dst: &mut Queue = if core::ptr::eq(first, b2) { &mut g1 } else { g2.as_mut().expect("two buckets") };
        for &at in &moved {
            // SAFETY: unlinked just now under the same locks; its owner still waits (it is not woken).
            let n = unsafe { &*at };
            n.key.store(to, Ordering::Release);
            dst.push_back(n);
        }
    }
    woken.each(|w| w.set_token(0));
    drop(g1);
    drop(g2);
    woken.each(Wakeup::wake);
    Some((woken.len(), n_moved))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;
    use std::time::{Duration, Instant};

    static WORDS: [AtomicU32; 512] = [const { AtomicU32::new(0) }; 512];

    fn bucket_index(key: usize) -> usize {
        (bucket(key) as *const Bucket as usize - TABLE.as_ptr() as usize) / size_of::<Bucket>()
    }

    /// A word whose bucket no other test uses (tests run in parallel and share the table): bucket index
    /// congruent to `class` modulo 16, and `nth` such word.
    fn word(class: usize, nth: usize) -> &'static AtomicU32 {
        WORDS.iter().filter(|w| bucket_index(*w as *const AtomicU32 as usize) % 16 == class).nth(nth).expect("word")
    }

    fn key(w: &AtomicU32) -> usize {
        w as *const AtomicU32 as usize
    }

    fn waiters(w: &AtomicU32) -> usize {
        bucket(key(w)).waiters.load(Ordering::Acquire)
    }

    fn wait_for_waiters(w: &AtomicU32, n: usize) {
        let start = Instant::now();
        while waiters(w) != n {
            assert!(start.elapsed() < Duration::from_secs(10), "waiter count stayed {} (want {n})", waiters(w));
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// A plain thread's wait until `deadline` that no signal ends.
    #[derive(Clone, Copy)]
    struct PlainWait(Option<u64>);

    impl Waiting for PlainWait {
        type CoroutineParker = ThreadParker;
        fn coroutine_parker(self) -> Option<ThreadParker> {
            None
        }
        fn deadline(&self) -> Option<u64> {
            self.0
        }
        fn signal_ends(&self) -> bool {
            false
        }
    }

    /// A plain thread parks on `w` while it reads 0.
    fn park_while_zero(w: &'static AtomicU32, deadline: Option<u64>) -> std::thread::JoinHandle<Parked> {
        let wait = PlainWait(deadline);
        std::thread::spawn(move || park(key(w), 0, || w.load(Ordering::Acquire) == 0, || {}, wait))
    }

    #[test]
    fn unpark_all_counts_waiters_in_and_out() {
        let w = word(0, 0);
        assert_eq!(unpark_all(key(w), 0), 0, "nobody waits");
        let parkers: Vec<_> = (0..3).map(|_| park_while_zero(w, None)).collect();
        wait_for_waiters(w, 3);
        w.store(1, Ordering::Release);
        assert_eq!(unpark_all(key(w), 7), 3);
        for p in parkers {
            assert_eq!(p.join().unwrap(), Parked::Unparked(7));
        }
        assert_eq!(waiters(w), 0);
    }

    #[test]
    fn refused_and_timed_out_parks_leave_no_count() {
        let w = word(1, 0);
        w.store(1, Ordering::Release);
        assert_eq!(park_while_zero(w, None).join().unwrap(), Parked::Invalid);
        assert_eq!(waiters(w), 0);
        w.store(0, Ordering::Release);
        let soon = crate::runtime::sys::time::monotonic_ns() + 20_000_000;
        assert_eq!(park_while_zero(w, Some(soon)).join().unwrap(), Parked::TimedOut);
        assert_eq!(waiters(w), 0);
    }

    #[test]
    fn requeue_moves_the_count_with_the_waiters() {
        let (from, to) = (word(2, 0), word(3, 0));
        let parkers: Vec<_> = (0..3).map(|_| park_while_zero(from, None)).collect();
        wait_for_waiters(from, 3);
        from.store(1, Ordering::Release);
        assert_eq!(requeue(key(from), key(to), 1, usize::MAX, || true), Some((1, 2)));
        assert_eq!((waiters(from), waiters(to)), (0, 2));
        assert_eq!(unpark_all(key(from), 0), 0, "nobody left on the old key");
        assert_eq!(unpark_all(key(to), 0), 2);
        for p in parkers {
            assert!(matches!(p.join().unwrap(), Parked::Unparked(_)));
        }
        assert_eq!((waiters(from), waiters(to)), (0, 0));
    }

    #[test]
    fn unpark_or_requeue_moves_waiters_while_taken_and_wakes_them_otherwise() {
        let (from, to) = (word(7, 0), word(8, 0));
        // Three waiters whose token names `to`, one whose token names nothing (woken, not moved).
        let park_with = |token: usize| {
            let wait = PlainWait(None);
            std::thread::spawn(move || park(key(from), token, || from.load(Ordering::Acquire) == 0, || {}, wait))
        };
        let mut parkers = Vec::new();
        for (i, token) in [key(to), 0, key(to), key(to)].into_iter().enumerate() {
            parkers.push(park_with(token));
            wait_for_waiters(from, i + 1);
        }
        let target = |t: usize| (t != 0).then_some(t);
        let mut moved = Vec::new();
        let r = unpark_or_requeue(key(from), 2, target, |k| k == key(to), |t| moved.push(t));
        assert_eq!(r, (1, 1), "the first is moved, the second woken: limit 2");
        assert_eq!(moved, [key(to)]);
        assert_eq!((waiters(from), waiters(to)), (2, 1));
        assert_eq!(unpark_or_requeue(key(from), usize::MAX, target, |_| true, |_| {}), (0, 2));
        assert_eq!((waiters(from), waiters(to)), (0, 3));
        // The moved three wake from `to`'s queue, in order, the first told that others remain.
        assert_eq!(unpark_one(key(to), |u| u.have_more as usize), 1);
        from.store(1, Ordering::Release);
        assert_eq!(unpark_all(key(to), 9), 2);
        let results: Vec<Parked> = parkers.into_iter().map(|p| p.join().unwrap()).collect();
        assert_eq!(results, [Parked::Unparked(1), Parked::Unparked(0), Parked::Unparked(9), Parked::Unparked(9)]);
        assert_eq!((waiters(from), waiters(to)), (0, 0));
        // A refused take (the target is free after all) wakes them where they wait.
        from.store(0, Ordering::Release);
        let p = park_with(key(to));
        wait_for_waiters(from, 1);
        assert_eq!(unpark_or_requeue(key(from), usize::MAX, target, |_| false, |_| {}), (1, 0));
        assert_eq!(p.join().unwrap(), Parked::Unparked(0));
        assert_eq!((waiters(from), waiters(to)), (0, 0));
    }

    #[test]
    fn timeouts_leave_from_the_middle_and_the_rest_wake_in_order() {
        let w = word(5, 0);
        let now = crate::runtime::sys::time::monotonic_ns();
        // Six waiters queued in order; the second and fourth give up early.
        let parkers: Vec<_> = (0..6)
            .map(|i| {
                let deadline = (i == 1 || i == 3).then_some(now + 50_000_000);
                let p = park_while_zero(w, deadline);
                wait_for_waiters(w, i + 1);
                p
            })
            .collect();
        wait_for_waiters(w, 4);
        for next in 1..=4 {
            let woken = unpark_one(key(w), |u| {
                assert_eq!(u.have_more, next < 4, "waiters left after wake {next}");
                next
            });
            assert_eq!(woken, 1);
        }
        assert_eq!(unpark_one(key(w), |u| u.woken), 0, "nobody left");
        let results: Vec<Parked> = parkers.into_iter().map(|p| p.join().unwrap()).collect();
        assert_eq!(
            results,
            [
                Parked::Unparked(1),
                Parked::TimedOut,
                Parked::Unparked(2),
                Parked::TimedOut,
                Parked::Unparked(3),
                Parked::Unparked(4)
            ]
        );
        assert_eq!(waiters(w), 0);
    }

    #[test]
    fn keys_sharing_a_bucket_keep_their_own_queues() {
        static MORE: [AtomicU32; 4096] = [const { AtomicU32::new(0) }; 4096];
        // Two words in one bucket that no other test uses (class 6).
        let mut seen = std::collections::HashMap::new();
        let (a, b) = MORE
            .iter()
            .filter(|w| bucket_index(key(w)) % 16 == 6)
            .find_map(|w| seen.insert(bucket_index(key(w)), w).map(|other| (other, w)))
            .expect("two words in one bucket");
        let now = crate::runtime::sys::time::monotonic_ns();
        let mut parkers = Vec::new();
        for i in 0..4 {
            parkers.push(park_while_zero(a, None));
            wait_for_waiters(a, 2 * i + 1);
            let deadline = (i == 1).then_some(now + 50_000_000);
            parkers.push(park_while_zero(b, deadline));
            wait_for_waiters(a, 2 * i + 2);
        }
        wait_for_waiters(a, 7);
        let woken = unpark_one(key(b), |u| {
            assert!(u.have_more, "two more wait on b");
            1
        });
        assert_eq!(woken, 1);
        a.store(1, Ordering::Release);
        assert_eq!(unpark_all(key(a), 2), 4);
        assert_eq!(unpark_one(key(b), |u| u.have_more as usize), 1, "the last one on b");
        assert_eq!(unpark_one(key(b), |_| 3), 1);
        assert_eq!(unpark_all(key(b), 0), 0);
        let results: Vec<Parked> = parkers.into_iter().map(|p| p.join().unwrap()).collect();
        assert_eq!(
            results,
            [
                Parked::Unparked(2),
                Parked::Unparked(1),
                Parked::Unparked(2),
                Parked::TimedOut,
                Parked::Unparked(2),
                Parked::Unparked(1),
                Parked::Unparked(2),
                Parked::Unparked(3)
            ]
        );
        assert_eq!(waiters(a), 0);
    }

    /// The slot's waker of the test below: records the park it woke.
    static SLOT_WOKEN: AtomicU32 = AtomicU32::new(0);
    fn slot_woke(_: *const WaitNode, park: u32) {
        SLOT_WOKEN.store(park, Ordering::Release);
    }

    #[test]
    fn slot_wake_racing_entry_is_never_lost() {
        // A waiter that validates after entering against a waker that changes the state, then wakes:
        // either the waiter sees the change (and leaves, or is taken and handed the token) or the waker
        // finds it in the slot and wakes it.
        static SLOT: Slot = Slot::new();
        static STATE: AtomicU32 = AtomicU32::new(0);
        for round in 1..=2000u32 {
            STATE.store(0, Ordering::Release);
            SLOT_WOKEN.store(0, Ordering::Release);
            let waiter = std::thread::spawn(move || {
                let node = WaitNode::new();
                assert!(SLOT.enter(&node, Waker::new(slot_woke, round)), "round {round}: the slot is free");
                if STATE.load(Ordering::Acquire) != 0 && SLOT.leave(&node) {
                    return None;
                }
                let start = Instant::now();
                while SLOT_WOKEN.load(Ordering::Acquire) != round {
                    assert!(start.elapsed() < Duration::from_secs(10), "round {round}: wake-up lost");
                    std::hint::spin_loop();
                }
                Slot::handed(&node)
            });
            if round % 2 == 0 {
                std::thread::yield_now();
            }
            STATE.store(1, Ordering::Release);
            let woken = SLOT.wake(round as usize);
            let handed = waiter.join().unwrap();
            assert_eq!(handed, (woken == 1).then_some(round as usize), "round {round}");
            assert!(SLOT.is_free());
        }
    }

    #[test]
    fn unpark_racing_park_is_never_lost() {
        // The lock-free "no waiters" check of unpark_all against parks starting at the same time.
        let w = word(4, 0);
        for round in 0..2000u32 {
            w.store(0, Ordering::Release);
            // A lost wake-up shows as a timeout (bounded, so that it fails instead of hanging).
            let p = park_while_zero(w, Some(crate::runtime::sys::time::monotonic_ns() + 10_000_000_000));
            if round % 2 == 0 {
                std::thread::yield_now();
            }
            w.store(1, Ordering::Release);
            unpark_all(key(w), 0);
            let r = p.join().unwrap();
            assert!(matches!(r, Parked::Unparked(_) | Parked::Invalid), "round {round}: {r:?}");
        }
        assert_eq!(waiters(w), 0);
    }
}
