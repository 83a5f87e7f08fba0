//! Timers for sleeps and timed waits, run by the workers themselves: whichever worker reaches a scheduling
//! point fires what is due, and an idle worker sleeps in the kernel until the earliest deadline. There is no
//! timer thread, so a timed-out coroutine is resumed by a worker like any other wake-up.

use super::task::TaskRef;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    deadline: u64,
    seq: u64,
    task: TaskRefOrd,
    park: u32,
}

#[derive(PartialEq, Eq)]
struct TaskRefOrd(TaskRef);

impl PartialOrd for TaskRefOrd {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for TaskRefOrd {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.0.0.as_ptr() as usize).cmp(&(o.0.0.as_ptr() as usize))
    }
}

#[derive(Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
}

impl Timers {
    /// Adds a wake-up for park `park` of `task` at monotonic `deadline`. Returns true if it is now the earliest.
    pub fn add(&mut self, deadline: u64, task: TaskRef, park: u32) -> bool {
        self.seq += 1;
        let earliest = self.next_deadline().is_none_or(|d| deadline < d);
        self.heap.push(Reverse(Entry { deadline, seq: self.seq, task: TaskRefOrd(task), park }));
        earliest
    }

    pub fn next_deadline(&self) -> Option<u64> {
        self.heap.peek().map(|e| e.0.deadline)
    }

    /// Removes the entries due at `now` and returns (task, generation) pairs to wake with `Wake::TimedOut`.
    pub fn expire(&mut self, now: u64, out: &mut Vec<(TaskRef, u32)>) {
        while let Some(e) = self.heap.peek() {
            if e.0.deadline > now {
                break;
            }
            let Reverse(e) = self.heap.pop().expect("peeked");
            out.push((e.task.0, e.park));
        }
    }
}
