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
//! Waits for a call a helper thread makes for the coroutine that nothing can abort ([`OnSignal::Deferred`])
//! are the exception: the helper writes into the coroutine's stack until it is done, so the coroutine
//! must not leave the wait early; a handler for it runs in its context on the worker's stack
//! (`signals::routing::run_in_parked`). (Helper calls that can be aborted, or that use no memory of the
//! coroutine's, wait as the others do: see `offload`.)
//!
//! ## In the parking lot
//! The parking lot keeps address-keyed queues and knows nothing of coroutines; a coroutine waits there
//! through the [`TaskParker`] here, which [`Wait`] hands the lot when the caller is a coroutine (see
//! `parking_lot::Waiting`). It begins the [`Parking`] under the bucket lock, once `validate` agreed, and
//! gives the lot a waker that ends exactly that park (its generation). Its queue node lives in the task
//! record, so a wake-up finds the task from the node's address.

use super::parking_lot::{self, Parked, Slot, WaitNode, Waker};
use super::task::{Switch, Task, TaskRef, Wake};
pub use super::wait_reason::WaitReason;
use super::{scheduler, worker};
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
    /// The coroutine waits for a call a helper thread makes for it that the kernel would not interrupt
    /// either (a regular-file read the disk serves): the park is not interrupted and the handlers run
    /// when it ends, on the coroutine's own stack, as the kernel runs them when such a call returns.
    AfterCall,
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
    /// A handled signal `sig` its mask lets through is pending for it (in `Task::signals`).
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
        Interruption::Signal(sig) => {
            super::signals::handlers::restarts(sig) && task.restartable_wait.load(Ordering::Relaxed)
        }
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

/// True while `task` is parked in a wait whose handlers run when it ends ([`OnSignal::AfterCall`]).
/// Async-signal-safe.
pub fn handlers_after_wait(task: &Task) -> bool {
    task.handlers_after_wait.load(Ordering::Acquire)
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
    /// Begins a park of the calling coroutine `me` for `wait`: records what it waits for (the
    /// thread listing) and why (the convoy detector and the statistics, which count it as it switches
    /// out), and starts a new park generation. The caller then
    /// registers its waker with [`Parking::generation`] and calls [`Parking::sleep`].
    /// Inlined into every wait (the parking lot's among them): its rare branches are out of line.
    #[inline(always)]
    pub fn begin(me: TaskRef, wait: Wait) -> Parking {
        if me.left_in_queue.replace(false) {
            // A handler left an earlier in-place wait by longjmp (see `OnSignal::ResumeInPlace`).
            leave_abandoned_queue(me);
        }
        let park = me.begin_park();
        if me.cancel.on_park(park) {
            // A cancellation request came inside the point before this park: it ends as soon as it begins.
            cancelled_as_it_begins(me, park);
        }
        me.park_reason.set(Some(wait.reason));
        let w = &me.waiting_for;
        w[0].store(wait.reason as u64 + 1, Ordering::Relaxed);
        w[1].store(wait.on as u64, Ordering::Relaxed);
        w[2].store(super::cputime::account::stamp_now(), Ordering::Relaxed);
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
        let listens = !matches!(wait.on_signal, OnSignal::Deferred | OnSignal::AfterCall);
        let after_call = wait.on_signal == OnSignal::AfterCall;
        if after_call {
            me.handlers_after_wait.store(true, Ordering::Release);
        }
        if listens {
            // The kernel restarts no timed wait (its remaining time would be lost).
            let restartable = wait.on_signal == OnSignal::FailUnlessRestart && wait.deadline.is_none();
            me.restartable_wait.store(restartable, Ordering::Relaxed);
            let ends = !matches!(wait.on_signal, OnSignal::Resume | OnSignal::ResumeInPlace);
            me.signal_ends_wait.store(ends, Ordering::Relaxed);
            me.interrupt_restarts.store(false, Ordering::Relaxed);
            me.interruptible.store(park.wrapping_add(1), Ordering::Release);
            // A signal sent before we listened found no park to end: end it ourselves.
            if let Some(sig) = me.signals.deliverable() {
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
        if after_call {
            me.handlers_after_wait.store(false, Ordering::Release);
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

/// `Parking::begin`'s rare case: a queue place an earlier in-place wait left behind (see
/// `OnSignal::ResumeInPlace`) is given up.
#[cold]
#[inline(never)]
fn leave_abandoned_queue(me: TaskRef) {
    parking_lot::leave_queue(&me.wait_node);
}

/// `Parking::begin`'s rare case: a cancellation request pending inside the point ends park `park` at once.
#[cold]
#[inline(never)]
fn cancelled_as_it_begins(me: TaskRef, park: u32) {
    interrupt_park(me, park, Interruption::Cancel);
}

/// What every coroutine does when it runs again after switching out (a park, a yield, a preemption): the
/// handlers of the signals sent to it while it was away, that its mask lets through, run now in it.
#[inline]
pub fn resumed(me: &Task) {
    if me.signals.pending.load(Ordering::Relaxed) != 0 {
        let _ = worker::deliver_pending(me);
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

/// Parks the calling coroutine in `slot` (see `parking_lot::Slot`: an fd's readiness side) unless
/// `validate`, run once the coroutine is in the slot, says the state it waits for already changed. The
/// outcomes are the parking lot's: `Unparked` with the waker's token, `Invalid`, `TimedOut`, `Interrupted`.
/// None, having done nothing, when the caller is not a coroutine or another waiter is in the slot: the
/// caller then parks in the lot on the same key (whose wakers wake the slot first).
#[inline(always)]
pub fn park_in_slot(slot: &Slot, validate: impl FnOnce() -> bool, wait: Wait) -> Option<Parked> {
    if !slot.is_free() {
        return None;
    }
    let me = worker::current_task()?;
    let parking = Parking::begin(me, wait);
    let park = parking.generation();
    let node = &me.wait_node;
    // Whether the wake-up is our own (a lost race for the slot, or the state changed before we slept):
    // the park then ends as if `validate` had refused it, after the switch every begun park makes.
    let mut own = !slot.enter(node, Waker::new(TaskParker::wake, park));
    if !own && !validate() {
        own = slot.leave(node);
    }
    if own {
        scheduler::get().wake(me, park, Wake::Unparked);
    }
    Some(parking.sleep(|why| match why {
        Wake::Unparked if own => Parked::Invalid,
        Wake::Unparked => Parked::Unparked(Slot::handed(node).unwrap_or(0)),
        // A timeout or a signal: unless a waker took us out of the slot meanwhile (then the wait ended
        // with its wake-up, whose token it is about to hand over: its wake of this park is lost, as an
        // unpark of a lot waiter that left the queue first is).
        _ if own || slot.leave(node) => {
            if why == Wake::Interrupted {
                Parked::Interrupted
            } else {
                Parked::TimedOut
            }
        }
        _ => loop {
            if let Some(token) = Slot::handed(node) {
                break Parked::Unparked(token);
            }
            // Not `yield_now`: no handler may run before the wait is left.
            me.switch_out(Switch::Yield);
        },
    }))
}

/// A coroutine's waits in the parking lot go through the task parker; a plain thread's wait is the lot's
/// own (`parking_lot::ThreadParker`), which needs only the deadline and whether a signal ends it.
impl parking_lot::Waiting for Wait {
    type CoroutineParker = TaskParker;

    #[inline]
    fn coroutine_parker(self) -> Option<TaskParker> {
        let me = worker::current_task()?;
        if me.left_in_queue.replace(false) {
            // A handler left an earlier wait by longjmp and its place with it (taken out before the bucket
            // lock: `Parking::begin` runs under it).
            parking_lot::leave_queue(&me.wait_node);
        }
        Some(TaskParker { me, wait: self, park: 0 })
    }

    fn deadline(&self) -> Option<u64> {
        self.deadline
    }

    fn signal_ends(&self) -> bool {
        matches!(self.on_signal, OnSignal::Fail | OnSignal::FailUnlessRestart)
    }
}

/// The task parker: a coroutine waits in the parking lot with a [`Parking`] (so its wait has a reason,
/// a generation its wakers name, a deadline and interruptions like every other park), in its task
/// record's `wait_node`.
pub struct TaskParker {
    me: TaskRef,
    wait: Wait,
    /// The generation of the park [`Parker::begin`](parking_lot::Parker::begin) began under the bucket
    /// lock; [`Parker::sleep`](parking_lot::Parker::sleep) sleeps that [`Parking`], made again from these
    /// three parts (cheaper on this path than carrying an `Option<Parking>` across).
    park: u32,
}

impl TaskParker {
    /// The [`Waker`] of a task's node: ends the park it names.
    fn wake(node: *const WaitNode, park: u32) {
        // SAFETY: the task parker queues only task records' own `wait_node`, so the record is at the node's
        // address less the field's offset; records are never freed.
        let task = unsafe {
            core::ptr::NonNull::new_unchecked(node.byte_sub(core::mem::offset_of!(Task, wait_node)) as *mut Task)
        };
        scheduler::get().wake(TaskRef(task), park, Wake::Unparked);
    }

    /// A parked task's wait ended: how, with the task out of the queue. Timed out or interrupted, it leaves
    /// the queue itself (before any handler runs, which may longjmp out of the wait), unless an unpark
    /// already took it out (then that counted it as woken, and so must it).
    #[inline(always)]
    fn leave(me: TaskRef, why: Wake) -> Parked {
        match why {
            Wake::Unparked => Parked::Unparked(me.wait_node.unpark_token()),
            _ => match parking_lot::leave_queue(&me.wait_node) {
                true if why == Wake::Interrupted => Parked::Interrupted,
                true => Parked::TimedOut,
                false => Parked::Unparked(me.wait_node.unpark_token()),
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
            // A task whose in-place wait was interrupted goes on waiting with a new park, in its old place in
            // the queue (None if an unpark took it out meanwhile: the wait is over).
            let again = parking_lot::park_again_in_place(&me.wait_node, || {
                let parking = Parking::begin(me, wait);
                let waker = Waker::new(TaskParker::wake, parking.generation());
                (parking, waker)
            });
            let Some(parking) = again else {
                return Parked::Unparked(me.wait_node.unpark_token());
            };
            let mut cancelled = false;
            let r = parking.sleep(|why| {
                cancelled = why == Wake::Interrupted && me.cancel.point_cancelled();
                if why == Wake::Interrupted && !cancelled {
                    me.left_in_queue.set(true);
                    return Parked::Interrupted;
                }
                TaskParker::leave(me, why)
            });
            if r != Parked::Interrupted || cancelled {
                return r;
            }
        }
    }
}

impl parking_lot::Parker for TaskParker {
    #[inline]
    fn node(&self) -> &WaitNode {
        &self.me.wait_node
    }

    #[inline(always)]
    fn begin(&mut self) -> Waker {
        self.park = Parking::begin(self.me, self.wait).generation();
        Waker::new(TaskParker::wake, self.park)
    }

    #[inline]
    fn sleep(&mut self, after: impl FnOnce(Parked)) -> Parked {
        let (me, wait) = (self.me, self.wait);
        let parking = Parking { me, park: self.park, wait };
        let in_place = wait.on_signal == OnSignal::ResumeInPlace;
        let r = parking.sleep(|why| {
            // An in-place wait keeps its place while the handler runs (see `OnSignal::ResumeInPlace`), unless
            // a cancellation request ended it (the point returns and acts on it).
            if why == Wake::Interrupted && in_place && !me.cancel.point_cancelled() {
                // The handler may leave this frame for good: no unpark may read the token any more.
                parking_lot::forget_token(&me.wait_node);
                me.left_in_queue.set(true);
                return Parked::Interrupted;
            }
            let r = TaskParker::leave(me, why);
            after(r);
            r
        });
        if r == Parked::Interrupted && in_place {
            // The handlers returned (`after` was not run: in-place waits have none).
            return TaskParker::wait_in_place(me, wait);
        }
        r
    }
}
