//! The one way a coroutine waits (the shape of Go's `gopark`): every kind of wait — fd readiness, poll,
//! sleeps, mutexes, rwlocks, barriers, condition variables, semaphores, futexes, `pthread_once`, joins,
//! `sigsuspend`/`sigwait`, calls offloaded to helper threads — begins a [`Parking`] with a typed
//! [`WaitReason`], registers its waker (a parking-lot queue, a join record, a timer), and sleeps through
//! [`Parking::sleep`]. So the reason a task waits is recorded in one place (statistics, the convoy
//! detector, the thread listing), and so is what happens when the wait is *interrupted*.
//!
//! ## Interruptions
//! A parked thread must run a signal handler meant for it on its own stack, as the kernel runs it in a
//! thread asleep in a system call, and `pthread_cancel` must reach a thread parked at a cancellation point.
//! Both go through [`interrupt_park`] (a signal through [`interrupt`], a cancellation request through
//! `cancel`, which claims the park it ends): it ends the park early with [`Wake::Interrupted`]. The wait
//! then leaves
//! its bookkeeping (the `leave` closure of [`Parking::sleep`]: out of the parking-lot queue, the join
//! record, ...) *before* the handlers run, in [`Parking::sleep`], the one place where signals are
//! delivered after a park. A handler may therefore `siglongjmp` out of any wait and leave nothing behind
//! that points at the abandoned wait. After the handlers returned, [`OnSignal`] (given by the wait, as the
//! kernel and glibc decide for the call it emulates) says whether the call fails with EINTR or its caller
//! waits again (a mutex, a barrier, a join: the caller loops, re-checks its condition and parks anew; a
//! condition variable keeps its place in the queue meanwhile, [`OnSignal::ResumeInPlace`]). A park a
//! cancellation request ended is never resumed: the cancellation point returns and acts on it.
//!
//! Waits for a call a helper thread makes for the coroutine ([`OnSignal::Deferred`]) are the exception:
//! the helper writes into the coroutine's stack until it is done, so the coroutine must not leave the wait
//! early; a handler for it runs in its context on the worker's stack (`signals::run_in_parked`).

use super::task::{Switch, Task, TaskRef, Wake};
pub use super::wait_reason::WaitReason;
use super::{scheduler, stats, sys, worker};
use core::sync::atomic::Ordering;

/// What a handled signal does to a wait: what the kernel (or glibc) does to the call the wait emulates.
/// Whatever it says, the handler runs in the waiting thread, on its own stack, at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnSignal {
    /// The call goes on waiting after the handler (mutexes, rwlocks, barriers, joins, `pthread_once`, the
    /// runtime's own polling sleeps): the park ends with [`Wake::Interrupted`] and the caller parks again.
    Resume,
    /// As `Resume`, but a parking-lot waiter keeps its place in the queue while the handler runs, and a
    /// wake-up meanwhile ends the wait (a condition variable: glibc's waiter stays counted in its group,
    /// so it neither misses a signal sent during the handler nor returns without one). A handler that
    /// leaves by `siglongjmp` leaves the place behind, as glibc leaves the waiter counted, until the
    /// thread parks again (`parking_lot` takes it out then).
    ResumeInPlace,
    /// The call fails with EINTR whatever SA_RESTART says (sleeps, poll, timed futex and semaphore waits).
    Fail,
    /// EINTR, unless the handler has SA_RESTART and the wait has no deadline: then the call goes on (read,
    /// write, accept, `sem_wait`, a futex wait; the kernel restarts no timed wait).
    /// `Task::interrupt_restarts` tells the caller which.
    FailUnlessRestart,
    /// The coroutine waits for a call a helper thread makes for it with pointers into its stack: the park
    /// is not interrupted, the handler runs in the thread's context on the worker's stack.
    Deferred,
}

/// A wait: why, on what (the fd, the object's address, the sleep's deadline, the awaited thread's
/// `pthread_t`, or 0), what a signal does to it, and until when (absolute CLOCK_MONOTONIC ns).
#[derive(Clone, Copy, Debug)]
pub struct Wait {
    pub reason: WaitReason,
    pub on: usize,
    pub on_signal: OnSignal,
    pub deadline: Option<u64>,
}

impl Wait {
    pub fn new(reason: WaitReason, on: usize, on_signal: OnSignal) -> Wait {
        Wait { reason, on, on_signal, deadline: None }
    }

    pub fn until(self, deadline: Option<u64>) -> Wait {
        Wait { deadline, ..self }
    }
}

/// Why a parked thread is woken early ([`interrupt`], [`interrupt_park`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interruption {
    /// A handled signal `sig` its mask lets through is pending for it (in `Task::pending_signals`).
    Signal(i32),
    /// `pthread_cancel`: the request is recorded where the cancelled thread looks for it (`cancel`, which
    /// ends only parks begun inside a cancellation point, claimed by their generation); the wait ends with
    /// [`Wake::Interrupted`] and its bookkeeping undone, never restarted, and the point acts on the request
    /// (a wait whose caller would go on asks `cancel::woken`).
    Cancel,
}

/// Wakes `task` out of the wait it is parked in (or about to park in) because of `why`, unless the wait is
/// [`OnSignal::Deferred`] or already over. Returns true if this call ended the park. The woken coroutine
/// leaves its wait's bookkeeping, runs the handlers of the signals pending for it on its own stack, and
/// then fails with EINTR or waits again as its [`OnSignal`] says (see the module documentation).
///
/// Callable from any thread and from the runtime's signal handlers' callers (atomics and a run-queue push).
pub fn interrupt(task: TaskRef, why: Interruption) -> bool {
    match task.interruptible.load(Ordering::Acquire) {
        0 => false,
        park => interrupt_park(task, park - 1, why),
    }
}

/// Ends park `park` of `task` (if it is still that park) because of `why`: the one place where a park is
/// ended early, for a signal ([`interrupt`]) or a cancellation request (`cancel`, which knows the park it
/// claimed). Returns true if this call ended it.
pub fn interrupt_park(task: TaskRef, park: u32, why: Interruption) -> bool {
    let restarts = match why {
        Interruption::Signal(sig) => super::signals::restarts(sig) && task.restartable_wait.load(Ordering::Relaxed),
        Interruption::Cancel => false,
    };
    task.interrupt_restarts.store(restarts, Ordering::Relaxed);
    scheduler::get().wake(task, park, Wake::Interrupted)
}

/// True while `task` is parked in a wait a handled signal ends with EINTR (the kernel's first choice of a
/// thread for a process-directed signal). Async-signal-safe.
pub fn in_wait_a_signal_ends(task: &Task) -> bool {
    task.interruptible.load(Ordering::Acquire) != 0 && task.signal_ends_wait.load(Ordering::Relaxed)
}

/// True while `task` is parked in a wait [`interrupt`] can end. Async-signal-safe.
pub fn interruptible(task: &Task) -> bool {
    task.interruptible.load(Ordering::Acquire) != 0
}

/// A park in progress of the calling coroutine: begun (a new park generation, which its wakers must
/// name), not yet slept.
#[must_use = "a begun park must sleep or be abandoned"]
pub struct Parking {
    me: TaskRef,
    park: u32,
    wait: Wait,
}

impl Parking {
    /// Begins a park of the calling coroutine `me` for `wait`: counts it, records what it waits for (the
    /// thread listing) and why (the convoy detector), and starts a new park generation. The caller then
    /// registers its waker with [`Parking::generation`] and calls [`Parking::sleep`].
    pub fn begin(me: TaskRef, wait: Wait) -> Parking {
        if me.left_in_queue.replace(false) {
            // A handler left an earlier in-place wait by longjmp (see `OnSignal::ResumeInPlace`).
            super::parking_lot::leave_queue(&me);
        }
        let park = me.begin_park();
        stats::count_park(wait.reason);
        me.park_reason.set(Some(wait.reason));
        let w = &me.waiting_for;
        w[0].store(wait.reason as u64 + 1, Ordering::Relaxed);
        w[1].store(wait.on as u64, Ordering::Relaxed);
        w[2].store(sys::time::monotonic_coarse_ns(), Ordering::Relaxed);
        Parking { me, park, wait }
    }

    /// The generation a waker names to end this park (`Scheduler::wake`).
    pub fn generation(&self) -> u32 {
        self.park
    }

    /// Switches out until a waker, the deadline or an [`interrupt`] ends the park. Then `leave` runs with
    /// how it ended and undoes the wait's bookkeeping; then the signals pending for the thread that its
    /// mask lets through are delivered, their handlers running here, on the coroutine's own stack (a
    /// handler may leave by `siglongjmp`: `leave` already ran). Returns what `leave` returned.
    pub fn sleep<R>(self, leave: impl FnOnce(Wake) -> R) -> R {
        let Parking { me, park, wait } = self;
        let listens = wait.on_signal != OnSignal::Deferred;
        if listens {
            // The kernel restarts no timed wait (its remaining time would be lost).
            let restartable = wait.on_signal == OnSignal::FailUnlessRestart && wait.deadline.is_none();
            me.restartable_wait.store(restartable, Ordering::Relaxed);
            let ends = !matches!(wait.on_signal, OnSignal::Resume | OnSignal::ResumeInPlace);
            me.signal_ends_wait.store(ends, Ordering::Relaxed);
            me.interrupt_restarts.store(false, Ordering::Relaxed);
            me.interruptible.store(park.wrapping_add(1), Ordering::Release);
            // A signal sent before we listened found no park to end: end it ourselves.
            if let Some(sig) = super::signals::deliverable_pending(&me) {
                interrupt(me, Interruption::Signal(sig));
            }
        }
        if let Some(d) = wait.deadline {
            scheduler::get().add_timer(d, me, park);
        }
        me.switch_out(Switch::Park);
        if listens {
            me.interruptible.store(0, Ordering::Release);
        }
        let r = leave(me.last_wake.get());
        resumed(&me);
        r
    }

    /// Ends a park that will not sleep after all (its waker was never registered).
    pub fn abandon(self) {
        self.me.park_reason.set(None);
    }
}

/// What every coroutine does when it runs again after switching out (a park, a yield, a preemption): the
/// handlers of the signals sent to it while it was away, that its mask lets through, run now in it.
#[inline]
pub fn resumed(me: &Task) {
    if me.pending_signals.load(Ordering::Relaxed) != 0 {
        let _ = super::signals::deliver_pending(me);
    }
}

/// Lets other coroutines run; the caller goes to the back of its worker's queue.
pub fn yield_now() {
    if let Some(me) = worker::current_task() {
        me.switch_out(Switch::Yield);
        resumed(&me);
    }
}

/// Parks the calling coroutine (if it is one) until `deadline` (monotonic ns): the runtime's own pauses
/// between polls. A handler for the thread runs in it meanwhile and ends the pause early
/// (`Wake::Interrupted`), which its caller takes as any other end of a pause: it looks again.
pub fn sleep_until(deadline: u64) -> Wake {
    let Some(me) = worker::current_task() else { return Wake::TimedOut };
    Parking::begin(me, Wait::new(WaitReason::Sleep, deadline as usize, OnSignal::Resume).until(Some(deadline)))
        .sleep(|why| why)
}

/// Like [`sleep_until`], but a handled signal ends the sleep early with `Wake::Interrupted` (EINTR).
pub fn sleep_until_interruptible(deadline: u64) -> Wake {
    let Some(me) = worker::current_task() else { return Wake::TimedOut };
    Parking::begin(me, Wait::new(WaitReason::Sleep, deadline as usize, OnSignal::Fail).until(Some(deadline)))
        .sleep(|why| why)
}
