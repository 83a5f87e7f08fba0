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

use super::lock::Lock;
use super::park::{OnSignal, Parking, Wait};
use super::scheduler;
use super::sys::futex;
use super::task::{TaskRef, Wake};
use super::worker;
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

/// A plain OS thread's wait state, on its own stack.
struct ThreadWaiter {
    woken: AtomicU32,
    token: AtomicUsize,
    /// The key it is queued on now (a requeue moves it).
    key: AtomicUsize,
    node: WaitNode,
}

#[derive(Clone, Copy)]
enum Who {
    Task(TaskRef, u32),
    Thread(*const ThreadWaiter),
}

/// A waiter's place in its bucket's queue: a link of an intrusive doubly linked list, so joining, leaving
/// (a timeout, from anywhere in the queue) and waking the first waiter cost the same with 5,000 waiters
/// on one key (the GIL of a threaded CPython server) as with one. It lives in the waiter itself — a task
/// record (a task waits on one key at a time) or a plain thread's stack frame — and every field is touched
/// only under the lock of the bucket the node is queued in.
pub struct WaitNode {
    key: Cell<usize>,
    token: Cell<usize>,
    who: Cell<Who>,
    prev: Cell<*const WaitNode>,
    next: Cell<*const WaitNode>,
    queued: Cell<bool>,
}

impl WaitNode {
    pub const fn new() -> WaitNode {
        WaitNode {
            key: Cell::new(0),
            token: Cell::new(0),
            who: Cell::new(Who::Thread(core::ptr::null())),
            prev: Cell::new(core::ptr::null()),
            next: Cell::new(core::ptr::null()),
            queued: Cell::new(false),
        }
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
        let Some(i) = self.index(n.key.get()) else {
            n.prev.set(core::ptr::null());
            self.keys.push(KeyQueue { key: n.key.get(), head: n, tail: n });
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
        let i = self.index(n.key.get()).expect("a queued node's key is in its bucket");
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
/// (a coroutine's park carries it, see `park`), until when, and what a handled signal does to the wait.
pub fn park(
    key: usize,
    token: usize,
    validate: impl FnOnce() -> bool,
    before_sleep: impl FnOnce(),
    wait: Wait,
) -> Parked {
    park_then(key, token, validate, before_sleep, wait, |_| {})
}

/// [`park`], with `after` run once the park is over (not when `validate` refused it) and before any
/// signal handler runs in the waiter: for bookkeeping of its own the caller did around the park (waiter
/// counts), which a handler leaving the wait by `siglongjmp` must not leave behind. Not for
/// `OnSignal::ResumeInPlace` waits (their handlers run with the waiter still queued).
pub fn park_then(
    key: usize,
    token: usize,
    validate: impl FnOnce() -> bool,
    before_sleep: impl FnOnce(),
    wait: Wait,
    after: impl FnOnce(Parked),
) -> Parked {
    match worker::current_task() {
        Some(me) => park_task(me, key, token, validate, before_sleep, wait, after),
        None => {
            let r = park_thread(key, token, validate, before_sleep, wait);
            if r != Parked::Invalid {
                after(r);
            }
            r
        }
    }
}

/// Queues `node` for `key` (the bucket `q` belongs to).
fn enqueue(q: &mut Queue, node: &WaitNode, key: usize, token: usize, who: Who) {
    node.key.set(key);
    node.token.set(token);
    node.who.set(who);
    q.push_back(node);
}

fn park_task(
    me: TaskRef,
    key: usize,
    token: usize,
    validate: impl FnOnce() -> bool,
    before_sleep: impl FnOnce(),
    wait: Wait,
    after: impl FnOnce(Parked),
) -> Parked {
    if me.left_in_queue.replace(false) {
        // A handler left an earlier wait by longjmp and its place with it (taken out before the bucket
        // lock: `Parking::begin` runs under it).
        leave_queue(&me);
    }
    let in_place = wait.on_signal == OnSignal::ResumeInPlace;
    let parking = {
        let bk = bucket(key);
        let mut q = bk.queue.lock();
        bk.waiters.fetch_add(1, Ordering::AcqRel);
        if !validate() {
            bk.waiters.fetch_sub(1, Ordering::AcqRel);
            return Parked::Invalid;
        }
        let parking = Parking::begin(me, wait);
        me.park_key.store(key, Ordering::Relaxed);
        enqueue(&mut q, &me.wait_node, key, token, Who::Task(me, parking.generation()));
        parking
    };
    before_sleep();
    let r = parking.sleep(|why| {
        // An in-place wait keeps its place while the handler runs (see `OnSignal::ResumeInPlace`), unless
        // a cancellation request ended it (the point returns and acts on it).
        if why == Wake::Interrupted && in_place && !super::cancel::woken() {
            me.left_in_queue.set(true);
            return Parked::Interrupted;
        }
        let r = leave(me, why);
        after(r);
        r
    });
    if r == Parked::Interrupted && in_place {
        // The handlers returned (`after` was not run: in-place waits have none).
        return wait_in_place(me, wait);
    }
    r
}

/// A parked task's wait ended: how, with the task out of the queue. Timed out or interrupted, it leaves
/// the queue itself (before any handler runs, which may longjmp out of the wait), unless an unpark
/// already took it out (then that counted it as woken, and so must it).
#[inline(always)]
fn leave(me: TaskRef, why: Wake) -> Parked {
    match why {
        Wake::Unparked => Parked::Unparked(me.unpark_token.load(Ordering::Acquire)),
        _ => match remove_entry(&me.park_key, &me.wait_node) {
            true if why == Wake::Interrupted => Parked::Interrupted,
            true => Parked::TimedOut,
            false => Parked::Unparked(me.unpark_token.load(Ordering::Acquire)),
        },
    }
}

/// An in-place wait whose handlers returned goes on in the same place until a wake-up, a timeout, or
/// (after further handlers) a wake-up that came while they ran.
#[cold]
#[inline(never)]
fn wait_in_place(me: TaskRef, wait: Wait) -> Parked {
    loop {
        me.left_in_queue.set(false);
        let Some(parking) = resume_in_place(me, wait) else {
            return Parked::Unparked(me.unpark_token.load(Ordering::Acquire));
        };
        let mut cancelled = false;
        let r = parking.sleep(|why| {
            cancelled = why == Wake::Interrupted && super::cancel::woken();
            if why == Wake::Interrupted && !cancelled {
                me.left_in_queue.set(true);
                return Parked::Interrupted;
            }
            leave(me, why)
        });
        if r != Parked::Interrupted || cancelled {
            return r;
        }
    }
}

/// A task whose in-place wait was interrupted goes on waiting with a new park, in its old place in the
/// queue (None if an unpark took it out meanwhile: the wait is over).
fn resume_in_place(me: TaskRef, wait: Wait) -> Option<Parking> {
    loop {
        let k = me.park_key.load(Ordering::Acquire);
        let _q = bucket(k).queue.lock();
        if me.park_key.load(Ordering::Acquire) != k {
            continue;
        }
        if !me.wait_node.queued.get() {
            return None;
        }
        let parking = Parking::begin(me, wait);
        me.wait_node.who.set(Who::Task(me, parking.generation()));
        return Some(parking);
    }
}

/// Takes task `me`'s wait node out of the queue it was left in when a handler left an
/// `OnSignal::ResumeInPlace` wait by longjmp (if no unpark has taken it out since). The caller holds no
/// bucket lock.
pub fn leave_queue(me: &super::task::Task) {
    remove_entry(&me.park_key, &me.wait_node);
}

/// Takes the caller's own `node` out of the queue of the key it is on now (read from `key`, which a
/// requeue may change while we look). Returns false if it was no longer queued.
fn remove_entry(key: &AtomicUsize, node: &WaitNode) -> bool {
    loop {
        let k = key.load(Ordering::Acquire);
        let bk = bucket(k);
        let mut q = bk.queue.lock();
        if key.load(Ordering::Acquire) != k {
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

fn park_thread(
    key: usize,
    token: usize,
    validate: impl FnOnce() -> bool,
    before_sleep: impl FnOnce(),
    wait: Wait,
) -> Parked {
    let deadline = wait.deadline;
    let tw = ThreadWaiter {
        woken: AtomicU32::new(0),
        token: AtomicUsize::new(0),
        key: AtomicUsize::new(key),
        node: WaitNode::new(),
    };
    {
        let bk = bucket(key);
        let mut q = bk.queue.lock();
        bk.waiters.fetch_add(1, Ordering::AcqRel);
        if !validate() {
            bk.waiters.fetch_sub(1, Ordering::AcqRel);
            return Parked::Invalid;
        }
        enqueue(&mut q, &tw.node, key, token, Who::Thread(&tw));
    }
    before_sleep();
    let mut why = Parked::TimedOut;
    // Inside a cancellation point, a request (glibc's own, for a plain thread) pokes the wait (see
    // `cancel::plain`).
    let poke = super::cancel::plain::parking(&tw.woken);
    while tw.woken.load(Ordering::Acquire) != 1 {
        if poke && super::cancel::plain::poked(&tw.woken) {
            why = Parked::Interrupted;
            break;
        }
        match futex::wait_interruptible(&tw.woken, 0, deadline) {
            futex::WaitEnd::TimedOut => break,
            // The kernel interrupted our futex wait, and did not restart it (it restarts an untimed one
            // itself when the handler has SA_RESTART): end the call as it would.
            futex::WaitEnd::Interrupted if matches!(wait.on_signal, OnSignal::Fail | OnSignal::FailUnlessRestart) => {
                why = Parked::Interrupted;
                break;
            }
            _ => {}
        }
    }
    if poke {
        super::cancel::plain::parked(&tw.woken);
    }
    // No poke can come now (and none is left in the word): 0 until an unpark makes it 1.
    if tw.woken.load(Ordering::Acquire) == 0 {
        if remove_entry(&tw.key, &tw.node) {
            return why;
        }
        // An unpark took us out of the queue and is about to mark us woken: wait for it, since `tw` is ours.
        while tw.woken.load(Ordering::Acquire) == 0 {
            futex::wait(&tw.woken, 0, None);
        }
    }
    Parked::Unparked(tw.token.load(Ordering::Acquire))
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
                woken.push(n.who.get());
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
    woken.each(|w| set_token(w, token));
    drop(q);
    woken.each(wake_one);
    woken.len()
}
/// The waiters one unpark takes out of their bucket. Almost always one or a few: kept on the stack, so a
/// wake-up does not cost a heap allocation (that was 13% of a round trip's instructions in the echo bench).
struct Woken {
    /// The first `len.min(INLINE)` slots are initialised (left uninitialised, not zeroed, at creation).
    inline: [core::mem::MaybeUninit<Who>; Woken::INLINE],
    len: usize,
    spill: Vec<Who>,
}

impl Woken {
    const INLINE: usize = 8;
    fn new() -> Woken {
        Woken { inline: [const { core::mem::MaybeUninit::uninit() }; Woken::INLINE], len: 0, spill: Vec::new() }
    }
    fn push(&mut self, w: Who) {
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
    fn each(&self, mut f: impl FnMut(Who)) {
        for slot in &self.inline[..self.len.min(Self::INLINE)] {
            // SAFETY: push initialised every slot below len (Who is Copy: nothing to drop).
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
pub fn unpark_all(key: usize, token: usize) -> usize {
    // A read-modify-write, not a load: see `Bucket` for why that keeps a concurrent park from being missed.
    if bucket(key).waiters.fetch_add(0, Ordering::AcqRel) == 0 {
        return 0;
    }
    unpark_filter(key, |_| Filter::Unpark, |_| token)
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
                woken.push(n.who.get());
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
            n.key.set(to);
            dst.push_back(n);
            match n.who.get() {
                Who::Task(t, _) => t.park_key.store(to, Ordering::Release),
                // SAFETY: the thread waiter stays on its stack while queued.
                Who::Thread(p) => unsafe { (*p).key.store(to, Ordering::Release) },
            }
        }
    }
    woken.each(|w| set_token(w, 0));
    drop(g1);
    drop(g2);
    woken.each(wake_one);
    Some((woken.len(), n_moved))
}

fn set_token(w: Who, token: usize) {
    match w {
        Who::Task(t, _) => t.unpark_token.store(token, Ordering::Release),
        // SAFETY: the thread waiter stays on its stack until woken.
        Who::Thread(p) => unsafe { (*p).token.store(token, Ordering::Release) },
    }
}

fn wake_one(w: Who) {
    match w {
        Who::Task(t, park) => {
            scheduler::get().wake(t, park, Wake::Unparked);
        }
        Who::Thread(p) => {
            // SAFETY: after this store the waiter may return and its frame go away; the wake uses the
            // address only as a key.
            let word = unsafe { &(*p).woken };
            word.store(1, Ordering::Release);
            futex::wake(word, 1);
        }
    }
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

    /// A plain thread parks on `w` while it reads 0.
    fn park_while_zero(w: &'static AtomicU32, deadline: Option<u64>) -> std::thread::JoinHandle<Parked> {
        let wait = Wait::new(crate::runtime::park::WaitReason::Futex, key(w), OnSignal::Resume).until(deadline);
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
