//! The lock-free part of a worker's run queue (see `scheduler::RunQueue`): a bounded ring of runnable
//! tasks with one producer, the worker that owns it, and many consumers, the owner and thieves, in the
//! shape of Go's `runq`. The owner's push and pop take no lock and no more than one read-modify-write
//! (a pop's compare-exchange of the head); a thief takes a run from the head with one compare-exchange.
//!
//! `head` and `tail` count every entry ever taken and pushed (wrapping u32); the entries are the
//! `tail - head` slots from `head` on. Only the owner moves `tail`; every consumer moves `head` with a
//! compare-exchange from the value it read, after it read the slots it takes, so exactly one consumer
//! gets each entry.
//!
//! Memory orderings:
//! - The owner writes a slot (relaxed), then publishes it with a release store of `tail`. A thief reads
//!   `tail` with acquire before it reads slots below it, so it sees what the owner wrote there. (The
//!   owner's own pops read slots it wrote itself.)
//! - A consumer's compare-exchange of `head` is a release: its read of the slots comes before it. The
//!   owner reads `head` with acquire before it overwrites a slot (it writes slot `tail` only while
//!   `tail - head < CAP`), so a slot is reused only after the consumer that took its entry read it. A
//!   consumer whose compare-exchange fails read slots that may since have been reused; it drops what it
//!   read and tries again.
//! - A stale `head` can only make the owner see less room, never more (`head` only grows), and a thief's
//!   snapshot that is inconsistent (`head` read before a run of pops and pushes moved `tail` past it by
//!   more than `CAP`) is thrown away and read again.
//! - The lengths that idle workers read before they sleep (`len`) are SeqCst loads: the protocol against
//!   lost wake-ups is `RunQueue`'s (a pusher that relies on another worker publishes, then makes the
//!   SeqCst fence in `Scheduler::wake_sleeper` before it reads the sleep states).

use core::marker::PhantomData;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::collections::VecDeque;

/// What a ring holds, as one nonzero word (a task handle's pointer: this module stays below the
/// scheduler core, whose task type it does not name).
pub trait Item: Copy {
    fn into_word(self) -> usize;
    /// # Safety
    /// `w` came from [`Item::into_word`].
    unsafe fn from_word(w: usize) -> Self;
}

/// Entries the ring holds; a push beyond goes to the run queue's locked FIFO instead.
pub const CAP: u32 = 256;

pub struct Ring<T: Item> {
    head: AtomicU32,
    tail: AtomicU32,
    slots: [AtomicUsize; CAP as usize],
    items: PhantomData<T>,
}

impl<T: Item> Ring<T> {
    pub const fn new() -> Ring<T> {
        Ring {
            head: AtomicU32::new(0),
            tail: AtomicU32::new(0),
            slots: [const { AtomicUsize::new(0) }; CAP as usize],
            items: PhantomData,
        }
    }

    #[inline(always)]
    fn slot(&self, i: u32) -> &AtomicUsize {
        &self.slots[(i % CAP) as usize]
    }

    /// Entries now (a hint outside the owner; SeqCst, for the idle check, see the module documentation).
    #[inline(always)]
    pub fn len(&self) -> usize {
        let h = self.head.load(Ordering::SeqCst);
        let t = self.tail.load(Ordering::SeqCst);
        // A head read before a tail that has since moved on by more than the ring holds looks like a huge
        // length: capped, it still says "not empty", which is true.
        t.wrapping_sub(h).min(CAP) as usize
    }

    /// Whether the ring is empty now (SeqCst, as [`Self::len`]).
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.head.load(Ordering::SeqCst) == self.tail.load(Ordering::SeqCst)
    }

    /// Owner only. Appends as many of `tasks` as there is room for; returns how many.
    #[inline(always)]
    pub fn push_some(&self, tasks: &[T]) -> usize {
        let t = self.tail.load(Ordering::Relaxed);
        let room = CAP - t.wrapping_sub(self.head.load(Ordering::Acquire));
        let n = tasks.len().min(room as usize);
        for (i, task) in tasks[..n].iter().enumerate() {
            self.slot(t.wrapping_add(i as u32)).store(task.into_word(), Ordering::Relaxed);
        }
        if n != 0 {
            self.tail.store(t.wrapping_add(n as u32), Ordering::Release);
        }
        n
    }

    /// Owner only. Appends what `next` gives until it gives None or the ring is full; returns how many.
    pub fn fill(&self, mut next: impl FnMut() -> Option<T>) -> usize {
        let t = self.tail.load(Ordering::Relaxed);
        let room = CAP - t.wrapping_sub(self.head.load(Ordering::Acquire));
        let mut n = 0;
        while n < room
            && let Some(task) = next()
        {
            self.slot(t.wrapping_add(n)).store(task.into_word(), Ordering::Relaxed);
            n += 1;
        }
        if n != 0 {
            self.tail.store(t.wrapping_add(n), Ordering::Release);
        }
        n as usize
    }

    /// Owner only (it is the one producer: `tail` is its own). The oldest entry, or None.
    #[inline(always)]
    pub fn pop(&self) -> Option<T> {
        loop {
            let h = self.head.load(Ordering::Acquire);
            if h == self.tail.load(Ordering::Relaxed) {
                return None;
            }
            let v = self.slot(h).load(Ordering::Relaxed);
            if self.head.compare_exchange(h, h.wrapping_add(1), Ordering::Release, Ordering::Relaxed).is_ok() {
                // SAFETY: only `into_word`'s words are pushed.
                return Some(unsafe { T::from_word(v) });
            }
        }
    }

    /// Any thread. Takes up to `want(entries there now)` entries from the head, appending them to `out`
    /// in order; returns how many.
    pub fn grab(&self, want: impl Fn(usize) -> usize, out: &mut VecDeque<T>) -> usize {
        let before = out.len();
        loop {
            let h = self.head.load(Ordering::Acquire);
            let t = self.tail.load(Ordering::Acquire);
            let there = t.wrapping_sub(h);
            if there > CAP {
                // `head` read before pops and pushes moved `tail` on by more than the ring holds.
                continue;
            }
            let n = want(there as usize).min(there as usize);
            if n == 0 {
                return 0;
            }
            out.extend((0..n).map(|i| {
                let v = self.slot(h.wrapping_add(i as u32)).load(Ordering::Relaxed);
                // SAFETY: only `into_word`'s words are pushed (a slot below `tail` holds one, also when it
                // was reused since: then the compare-exchange fails and what was read is dropped unused).
                unsafe { T::from_word(v) }
            }));
            if self.head.compare_exchange(h, h.wrapping_add(n as u32), Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                return n;
            }
            out.truncate(before);
        }
    }
}

impl<T: Item> Default for Ring<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// A test harness for queues with thieves (this ring's, and the run queue's built on it).
#[cfg(test)]
pub(crate) mod race {
    use std::sync::Barrier;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Runs `owner` on this thread while `thieves` threads call `steal` (which returns the ids it took)
    /// until the owner has returned and `left` says nothing is left. Returns the owner's ids and each
    /// thief's, in the order taken.
    pub fn with_thieves(
        thieves: usize,
        steal: impl Fn() -> Vec<usize> + Sync,
        left: impl Fn() -> bool + Sync,
        owner: impl FnOnce() -> Vec<usize>,
    ) -> (Vec<usize>, Vec<Vec<usize>>) {
        let done = AtomicBool::new(false);
        // The owner starts once the thieves run, so that they overlap.
        let start = Barrier::new(thieves + 1);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..thieves)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        let mut got = Vec::new();
                        while !done.load(Ordering::Acquire) || left() {
                            got.extend(steal());
                            std::hint::spin_loop();
                        }
                        got
                    })
                })
                .collect();
            start.wait();
            let mine = owner();
            done.store(true, Ordering::Release);
            (mine, handles.into_iter().map(|h| h.join().unwrap()).collect())
        })
    }

    /// `all` holds each of 0..n exactly once.
    pub fn each_once(mut all: Vec<usize>, n: usize) {
        all.sort_unstable();
        assert_eq!(all.len(), n, "entries lost or taken twice");
        assert!(all.iter().enumerate().all(|(i, &v)| i == v), "entries lost or taken twice");
    }
}

#[cfg(test)]
mod tests {
    use super::{CAP, Item, Ring};
    use std::collections::VecDeque;

    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Id(usize);

    impl Item for Id {
        fn into_word(self) -> usize {
            self.0 + 1
        }
        unsafe fn from_word(w: usize) -> Id {
            Id(w - 1)
        }
    }

    fn fake(i: usize) -> Id {
        Id(i)
    }

    fn id(t: Id) -> usize {
        t.0
    }

    #[test]
    fn fifo_and_full() {
        let r: Ring<Id> = Ring::new();
        let tasks: Vec<Id> = (0..CAP as usize + 10).map(fake).collect();
        assert_eq!(r.push_some(&tasks), CAP as usize);
        assert_eq!(r.len(), CAP as usize);
        assert_eq!(r.push_some(&tasks[..1]), 0);
        let mut got = VecDeque::new();
        assert_eq!(r.grab(|n| n.div_ceil(2), &mut got), CAP as usize / 2);
        assert_eq!(got.iter().map(|&t| id(t)).collect::<Vec<_>>(), (0..CAP as usize / 2).collect::<Vec<_>>());
        for i in CAP as usize / 2..CAP as usize {
            assert_eq!(r.pop().map(id), Some(i));
        }
        assert_eq!(r.pop().map(id), None);
        assert_eq!(r.len(), 0);
    }

    /// The owner pushes and pops while thieves take halves: every entry is taken exactly once, and each
    /// consumer gets its entries in the order they were pushed.
    #[test]
    fn concurrent_thieves_take_each_entry_once() {
        const N: usize = 200_000;
        let r: Ring<Id> = Ring::new();
        let steal = || {
            let mut batch = VecDeque::new();
            r.grab(|n| n.div_ceil(2), &mut batch);
            batch.into_iter().map(id).collect()
        };
        let (mine, stolen) = super::race::with_thieves(
            3,
            steal,
            || !r.is_empty(),
            || {
                let mut mine = Vec::new();
                let mut next = 0;
                while next < N {
                    let k = (next % 7) + 1;
                    let batch: Vec<Id> = (next..(next + k).min(N)).map(fake).collect();
                    next += r.push_some(&batch);
                    if next % 3 == 0 {
                        mine.extend(r.pop().map(id));
                    }
                }
                mine.extend(std::iter::from_fn(|| r.pop()).map(id));
                mine
            },
        );
        for got in stolen.iter().chain([&mine]) {
            assert!(got.windows(2).all(|w| w[0] < w[1]), "a consumer got entries out of order");
        }
        super::race::each_once(stolen.into_iter().flatten().chain(mine).collect(), N);
    }
}
