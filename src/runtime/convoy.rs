//! Lock convoys: when one lock serialises a program, a second worker makes it slower, so it steps aside.
//!
//! CPython's GIL is the common case: every thread takes it between system calls. On one worker the
//! coroutines run in turn and each finds the GIL free. On two, the second worker resumes coroutine after
//! coroutine only to see each block on the GIL at once (the lock's holder runs on the first worker): a
//! switch in, a park, a 5 ms timed wait and a switch out for nothing, and the GIL's condition variable
//! gathers thousands of waiters whose timeouts then force extra hand-offs. Measured with the bench's
//! CPython echo server at 5,000 connections: 34-38k round trips/s on two workers, 62k on one (gevent: 52k).
//!
//! So a worker that has seen 64 (`ASYNCSHIM_CONVOY_STREAK`) coroutines in a row come back from some other
//! wait (I/O, a sleep) and block on a lock (mutex, condition variable, rwlock, futex), each within
//! [`QUICK_NS`] of the one before, while it still has coroutines queued and another worker is running one,
//! *sits out*: it hands its queue to that worker and sleeps for a while (1 ms, doubling while convoys recur
//! within a second, up to 64 ms), then competes again. A coroutine woken from a lock wait that waits for a
//! lock again (a thread pool's workers finding the queue empty, a herd woken by a broadcast) shows
//! contention among waiters, not a convoy, and neither counts nor breaks a streak; a worker that computes
//! between lock waits breaks it, and a worker with nothing else queued never sits out. At least one worker
//! always stays (a sit-out is refused when it would leave none), the monitor calls sitting-out workers back
//! when a worker stalls, and a process signal waiting to be routed ends a sit-out. Nothing about a program's
//! results depends on it: only which worker runs what, and when.

use super::park::WaitReason;
use super::scheduler::Scheduler;
use super::stats;
use super::sys::{futex, time};
use super::task::Task;
use super::worker::{AWAKE, SITTING_OUT, Worker};
use core::cell::Cell;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Longest gap between two lock parks of a streak.
const QUICK_NS: u64 = 50_000;
const SIT_OUT_MIN_NS: u64 = 1_000_000;
const SIT_OUT_MAX_NS: u64 = 64_000_000;
/// A convoy this long after the last sit-out ended starts again from the shortest sit-out.
const RECUR_WINDOW_NS: u64 = 1_000_000_000;

/// Workers sitting out now.
static SITTING: AtomicUsize = AtomicUsize::new(0);

/// How many workers sit out now (they take no coroutines meanwhile).
pub fn sitting() -> usize {
    SITTING.load(Ordering::Acquire)
}

/// A worker's convoy detector; touched by the worker's own thread only.
pub struct Detector {
    streak: Cell<u32>,
    last_lock_park: Cell<u64>,
    sit_out_ns: Cell<u64>,
    last_sit_out_end: Cell<u64>,
}

impl Detector {
    pub const fn new() -> Detector {
        Detector {
            streak: Cell::new(0),
            last_lock_park: Cell::new(0),
            sit_out_ns: Cell::new(0),
            last_sit_out_end: Cell::new(0),
        }
    }
}

impl Default for Detector {
    fn default() -> Self {
        Detector::new()
    }
}

/// Worker `w` has just seen coroutine `task` park for `reason`. Returns the deadline (monotonic ns) until
/// which `w` is to sit out, having handed its queue over, when this park completes a convoy streak.
///
/// Only a lock wait that follows some other kind of wait (I/O, a sleep) counts: a coroutine that came
/// back with work of its own and found the lock taken. One woken from a lock wait that waits for a lock
/// again (a thread pool's workers finding the queue empty, a herd woken by a broadcast) is contention
/// among waiters, which a second worker does not make worse: such parks neither count nor break a streak.
pub fn after_park(sched: &Scheduler, w: &Worker, task: &Task, reason: Option<WaitReason>) -> Option<u64> {
    let lock = reason.is_some_and(WaitReason::is_lock_wait);
    let streak = crate::config::get().convoy_streak;
    if task.lock_waited_last.replace(lock) || !lock || streak == 0 {
        return None;
    }
    let d = &w.convoy;
    let now = time::monotonic_ns();
    let quick = now.saturating_sub(d.last_lock_park.get()) <= QUICK_NS;
    d.last_lock_park.set(now);
    d.streak.set(if quick { d.streak.get() + 1 } else { 1 });
    if d.streak.get() < streak || w.queue.is_empty() {
        return None;
    }
    let busy = sched.workers[..sched.started()].iter().find(|o| {
        o.id != w.id
            && o.sleep.load(Ordering::Relaxed) == AWAKE
            && o.running_task().is_some()
            && !o.stalled.load(Ordering::Relaxed)
    })?;
    // Never the last worker taking coroutines (the count of those excludes the workers sitting out,
    // this one included once counted).
    SITTING.fetch_add(1, Ordering::AcqRel);
    if sched.unstalled_workers() == 0 {
        SITTING.fetch_sub(1, Ordering::AcqRel);
        return None;
    }
    d.streak.set(0);
    let length = if now.saturating_sub(d.last_sit_out_end.get()) > RECUR_WINDOW_NS {
        SIT_OUT_MIN_NS
    } else {
        (d.sit_out_ns.get() * 2).clamp(SIT_OUT_MIN_NS, SIT_OUT_MAX_NS)
    };
    d.sit_out_ns.set(length);
    let tasks = w.queue.take_all();
    if !tasks.is_empty() {
        busy.queue.extend(tasks);
        // The busy worker may have gone idle since we looked.
        sched.wake_sleeper();
    }
    stats::count(&stats::get().convoy_sit_outs);
    Some(now + length)
}

/// Worker `w` sits out until `deadline` or until [`call_back`]: asleep in state SITTING_OUT, which no
/// ordinary wake-up looks for. `idle_mask` gives it an idle worker's signal mask once that state is
/// published (a later change of the accepted signals calls it back).
pub fn sit_out(w: &Worker, deadline: u64, idle_mask: impl FnOnce()) {
    let start = time::monotonic_ns();
    w.sleep.store(SITTING_OUT, Ordering::SeqCst);
    w.cpu.before_sleep();
    idle_mask();
    while w.sleep.load(Ordering::Acquire) == SITTING_OUT {
        // A process signal that landed here (an idle worker's mask) and waits to be routed ends it too.
        if !futex::wait(&w.sleep, SITTING_OUT, Some(deadline))
            || time::monotonic_ns() >= deadline
            || super::signals::routing_needed()
        {
            break;
        }
    }
    w.sleep.store(AWAKE, Ordering::SeqCst);
    let end = time::monotonic_ns();
    w.convoy.last_sit_out_end.set(end);
    SITTING.fetch_sub(1, Ordering::AcqRel);
    stats::get().convoy_sit_out_ns.fetch_add(end - start, Ordering::Relaxed);
}

/// Ends every sit-out now (the monitor found a stalled worker, or the signals idle workers must block
/// changed). True if one was sitting out.
pub fn call_back(sched: &Scheduler) -> bool {
    let mut any = false;
    for w in &sched.workers[..sched.started()] {
        if w.sleep.compare_exchange(SITTING_OUT, AWAKE, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            futex::wake(&w.sleep, 1);
            any = true;
        }
    }
    any
}
