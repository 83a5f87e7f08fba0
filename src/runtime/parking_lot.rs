//! The address-keyed parking lot (the shape of `parking_lot_core`): any 32-bit word in the program's own
//! memory — a pthread mutex, condition variable, semaphore, futex — can have a queue of waiters without
//! the runtime storing anything in it. Waiters are coroutines (parked on their worker, woken by
//! generation) or plain OS threads (asleep on a futex word of their own), so coroutines and threads the
//! runtime did not create can wait on and wake each other.
//!
//! A waiter is queued under its bucket's lock after `validate` (run under that lock) confirms it should
//! sleep, and `before_sleep` (for example: unlock the mutex of a condition variable) runs once it is
//! queued, so a wake-up between the two cannot be lost. Queues are FIFO per key.

use super::lock::Lock;
use super::sys::{futex, time};
use super::task::{Switch, TaskRef, Wake};
use super::worker;
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
    /// A handled signal ended an interruptible wait (EINTR).
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
}

#[derive(Clone, Copy)]
enum Who {
    Task(TaskRef, u32),
    Thread(*const ThreadWaiter),
}

struct Entry {
    key: usize,
    token: usize,
    who: Who,
}

// SAFETY: a Thread pointer refers to a waiter that stays on its stack until it is woken or has removed itself.
unsafe impl Send for Entry {}

static TABLE: [Lock<Vec<Entry>>; BUCKETS] = [const { Lock::new(Vec::new()) }; BUCKETS];

fn bucket(key: usize) -> &'static Lock<Vec<Entry>> {
    // Fibonacci hashing of the address; the low bits of aligned addresses carry little.
    let h = (key >> 2).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - 10);
    &TABLE[h]
}

/// Parks the caller on `key` unless `validate` (under the bucket lock) returns false. `deadline` is
/// absolute CLOCK_MONOTONIC ns. With `interruptible`, a handled signal ends the wait (coroutines only;
/// for plain threads the kernel does that on its own futex).
pub fn park(
    key: usize,
    token: usize,
    validate: impl FnOnce() -> bool,
    before_sleep: impl FnOnce(),
    deadline: Option<u64>,
    interruptible: bool,
) -> Parked {
    match worker::current_task() {
        Some(me) => park_task(me, key, token, validate, before_sleep, deadline, interruptible),
        None => park_thread(key, token, validate, before_sleep, deadline, interruptible),
    }
}

fn park_task(
    me: TaskRef,
    key: usize,
    token: usize,
    validate: impl FnOnce() -> bool,
    before_sleep: impl FnOnce(),
    deadline: Option<u64>,
    interruptible: bool,
) -> Parked {
    let park = {
        let mut b = bucket(key).lock();
        if !validate() {
            return Parked::Invalid;
        }
        let park = me.begin_park();
        b.push(Entry { key, token, who: Who::Task(me, park) });
        park
    };
    before_sleep();
    if interruptible {
        me.interruptible.store(park.wrapping_add(1), Ordering::Release);
    }
    if let Some(d) = deadline {
        super::get().sched.add_timer(d, me, park);
    }
    me.switch_out(Switch::Park);
    if interruptible {
        me.interruptible.store(0, Ordering::Release);
    }
    let why = me.last_wake.get();
    if why == Wake::Unparked {
        return Parked::Unparked(me.unpark_token.load(Ordering::Acquire));
    }
    // Timed out or interrupted: leave the queue, unless an unpark already took us out of it (then it
    // counted us as woken, and so must we).
    let mut b = bucket(key).lock();
    match b.iter().position(|e| matches!(e.who, Who::Task(t, p) if t == me && p == park)) {
        Some(i) => {
            b.remove(i);
            if why == Wake::Interrupted { Parked::Interrupted } else { Parked::TimedOut }
        }
        None => Parked::Unparked(me.unpark_token.load(Ordering::Acquire)),
    }
}

fn park_thread(
    key: usize,
    token: usize,
    validate: impl FnOnce() -> bool,
    before_sleep: impl FnOnce(),
    deadline: Option<u64>,
    interruptible: bool,
) -> Parked {
    let tw = ThreadWaiter { woken: AtomicU32::new(0), token: AtomicUsize::new(0) };
    {
        let mut b = bucket(key).lock();
        if !validate() {
            return Parked::Invalid;
        }
        b.push(Entry { key, token, who: Who::Thread(&tw) });
    }
    before_sleep();
    let mut why = Parked::TimedOut;
    while tw.woken.load(Ordering::Acquire) == 0 {
        match futex::wait_interruptible(&tw.woken, 0, deadline) {
            futex::WaitEnd::TimedOut => break,
            futex::WaitEnd::Interrupted if interruptible => {
                why = Parked::Interrupted;
                break;
            }
            _ => {}
        }
    }
    if tw.woken.load(Ordering::Acquire) == 0 {
        let mut b = bucket(key).lock();
        if let Some(i) = b.iter().position(|e| matches!(e.who, Who::Thread(p) if core::ptr::eq(p, &tw))) {
            b.remove(i);
            return why;
        }
        drop(b);
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
    let mut woken: Vec<Who> = Vec::new();
    let mut b = bucket(key).lock();
    let mut i = 0;
    while i < b.len() {
        if b[i].key != key {
            i += 1;
            continue;
        }
        match filter(b[i].token) {
            Filter::Unpark => woken.push(b.remove(i).who),
            Filter::Skip => i += 1,
            Filter::Stop => break,
        }
    }
    let have_more = b.iter().any(|e| e.key == key);
    let token = callback(Unparking { woken: woken.len(), have_more });
    for w in &woken {
        match *w {
            Who::Task(t, _) => t.unpark_token.store(token, Ordering::Release),
            // SAFETY: the thread waiter stays on its stack until `woken` is set below.
            Who::Thread(p) => unsafe { (*p).token.store(token, Ordering::Release) },
        }
    }
    drop(b);
    for w in &woken {
        match *w {
            Who::Task(t, park) => {
                super::get().sched.wake(t, park, Wake::Unparked);
            }
            Who::Thread(p) => {
                // SAFETY: as above; after this store the waiter may return and its stack frame go away,
                // so the wake uses the address only as a key.
                let word = unsafe { &(*p).woken };
                word.store(1, Ordering::Release);
                futex::wake(word, 1);
            }
        }
    }
    woken.len()
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

/// Wakes every waiter on `key`.
pub fn unpark_all(key: usize, token: usize) -> usize {
    unpark_filter(key, |_| Filter::Unpark, |_| token)
}

/// Monotonic deadline `ns` from now.
pub fn after(ns: u64) -> u64 {
    time::monotonic_ns().saturating_add(ns)
}
