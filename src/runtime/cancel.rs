//! pthread cancellation of coroutines, with glibc's semantics and glibc's own unwinding.
//!
//! Natively glibc keeps a thread's cancellation state in its descriptor (`cancelhandling`) and acts on a
//! request at a cancellation point by a forced unwind (`__pthread_unwind`: cleanup handlers, C++
//! destructors, `abi::__forced_unwind`) that ends in the thread's outermost cancellation buffer. A blocked
//! cancellation point is interrupted by SIGCANCEL sent to the thread's kernel task — which a coroutine does
//! not have, and whose descriptor bits glibc would act on inside the shim's own calls into libc. So the
//! state of a coroutine lives in its task record (`Task::cancel`, a leaf `cancel_state::CancelState`), and
//! glibc only does the part it does best: when a request is acted on, glibc's own
//! `pthread_exit(PTHREAD_CANCELED)` runs the very same forced unwind a cancellation runs (its
//! `__do_cancel`), to the buffer `thread_entry.c` set up.
//!
//! - A request (`pthread_cancel`) is recorded; if the target waits parked in a cancellation point with
//!   cancellation enabled, the park is claimed and ended as by an interruption (`Wake::Interrupted`). The
//!   park code calls only the task's leaf state: `park::Parking::begin` arms every park begun inside a
//!   point (`CancelState::on_park`), and `Task::switch_out` notes a park a request ended
//!   (`CancelState::after_park`). The call returns early (EINTR inside the runtime, a spurious wake-up for
//!   a condition variable, which re-locks its mutex first; a wait that would go on asks [`woken`]) and the
//!   hook acts on the request as it returns ([`Point`]).
//! - Hooks of cancellation points bracket their work with [`Point::enter`] / [`Point::leave`]: a pending
//!   request is acted on at entry; one that ended the call's park, at exit.
//! - Asynchronous cancellation (PTHREAD_CANCEL_ASYNCHRONOUS) of a running coroutine uses the preemption
//!   signal: the preempted coroutine unwinds from the preemption trampoline (whose unwind information leads
//!   back to the interrupted instruction, as the kernel's signal frame does natively) instead of yielding;
//!   one that is not running acts when it is next preempted or reaches a cancellation point.
//! - Threads the shim does not run as coroutines keep glibc's own cancellation untouched (the hooks pass
//!   them through).

pub use super::cancel_state::plain;
use super::cancel_state::{
    ASYNC, CANCEL_ASYNCHRONOUS, CANCEL_DEFERRED, CANCEL_DISABLE, CANCEL_ENABLE, DISABLED, EXITING, REQUESTED,
    actionable, actionable_async,
};
use super::park::Interruption;
use super::task::TaskRef;
use super::worker;
use core::sync::atomic::Ordering;

pub use super::cancel_state::CANCELED;

/// Resets the state for a new thread on a (possibly reused) task record.
pub fn reset(task: TaskRef) {
    task.cancel.reset();
}

/// Acts on a request (see `CancelState::act`): glibc's forced unwind with PTHREAD_CANCELED as the thread's
/// result.
pub fn act(me: TaskRef) -> ! {
    me.cancel.act()
}

/// pthread_testcancel, and the check at the entry of every cancellation point.
pub fn test() {
    if let Some(me) = worker::current_task()
        && actionable(me.cancel.word.load(Ordering::SeqCst))
    {
        act(me);
    }
}

/// The thread calls pthread_exit: requests made from now on are not acted on (glibc sets EXITING).
pub fn exiting() {
    if let Some(me) = worker::current_task() {
        me.cancel.word.fetch_or(EXITING, Ordering::SeqCst);
    }
}

/// A cancellation point of the calling coroutine, from a hook: [`Point::enter`] acts on a pending request;
/// parks meanwhile can be ended by a request; [`Point::leave`] acts on a request that ended one.
pub struct Point {
    me: Option<TaskRef>,
    outer: bool,
    /// A plain thread's point (see [`plain`]).
    plain: bool,
}

impl Point {
    /// Inlined into every hook that is a point: as a call returning its result through memory it cost an
    /// echo round trip's read and write about 11 instructions each. A plain thread's point is out of line.
    #[inline(always)]
    pub fn enter() -> Point {
        let Some(me) = worker::current_task() else {
            return Point::enter_not_coroutine();
        };
        if actionable(me.cancel.word.load(Ordering::SeqCst)) {
            act(me);
        }
        Point::armed(me)
    }

    /// [`Point::enter`] for a caller that is no coroutine: a plain thread's point, or none (the worker's
    /// own code, or the runtime not running).
    #[inline(never)]
    fn enter_not_coroutine() -> Point {
        if !super::lifecycle::running() || worker::current_worker().is_some() {
            return Point { me: None, outer: false, plain: false };
        }
        Point { me: None, outer: plain::enter(), plain: true }
    }

    /// [`Point::enter`] for a call that is a cancellation point only where it waits (stdio's: glibc's
    /// internal read or write is the point): a pending request is not acted on at entry, but a park
    /// inside the call ends for one (at once for one made before it), and [`Point::leave`] acts on it.
    /// Not `cancellable`: no point at all (a FILE opened with fopen's "c" flag).
    #[inline]
    pub fn enter_where_it_waits(cancellable: bool) -> Point {
        match worker::current_task() {
            Some(me) if cancellable => Point::armed(me),
            _ => Point { me: None, outer: false, plain: false },
        }
    }

    /// The point of coroutine `me`, its parks armed for requests.
    #[inline]
    fn armed(me: TaskRef) -> Point {
        let outer = me.cancel.at_point.replace(true);
        if !outer {
            me.cancel.point_cancelled.set(false);
        }
        Point { me: Some(me), outer, plain: false }
    }

    /// Ends the point; acts on a request that ended a park during it. Returns `r` otherwise.
    #[inline]
    pub fn leave<R>(self, r: R) -> R {
        if self.plain {
            plain::leave(self.outer);
        }
        if let Some(me) = self.me {
            me.cancel.at_point.set(self.outer);
            let cancelled = me.cancel.point_cancelled.get();
            if !self.outer {
                me.cancel.point_cancelled.set(false);
                me.cancel.park.store(0, Ordering::Relaxed);
            }
            if cancelled && actionable(me.cancel.word.load(Ordering::SeqCst)) {
                act(me);
            }
        }
        r
    }
}

/// Whether a wait of the calling coroutine's cancellation point was ended by a request, which the point
/// acts on as it leaves: the call's failure then leaves no trace (the thread unwinds from the wait, as
/// natively from the system call).
pub fn wait_cancelled() -> bool {
    worker::current_task().is_some_and(|me| me.cancel.point_cancelled())
}

/// Runs `f` as a cancellation point of the calling coroutine (see [`Point`]).
#[inline]
pub fn point<R>(f: impl FnOnce() -> R) -> R {
    let p = Point::enter();
    let r = f();
    p.leave(r)
}

/// [`point`] for a hook that goes on differently for a coroutine: `f` gets the calling coroutine (None on
/// a plain thread or a worker's own code), which the point's entry looked up anyway — the same answer as
/// `worker::current_task`, without a second look-up on every call of the hook.
#[inline]
pub fn point_task<R>(f: impl FnOnce(Option<TaskRef>) -> R) -> R {
    let p = Point::enter();
    let r = f(p.me);
    p.leave(r)
}

/// Ends the target's park if it waits in a cancellation point: claims the park, then wakes it. A park
/// begun after the look checks the request itself (see `CancelState::on_park`, which `park` calls).
fn wake_parked(target: TaskRef) {
    if let Some(park) = target.cancel.claim_park() {
        super::park::interrupt_park(target, park, Interruption::Cancel);
    }
}

/// What glibc's pthread_cancel answers for a thread that has ended but is not joined yet (its kernel tid
/// cleared): ESRCH before glibc 2.34, 0 from 2.34 on (glibc bug 19193).
fn ended_answer() -> i32 {
    if super::identity::glibc_at_least(2, 34) { 0 } else { libc::ESRCH }
}

/// pthread_cancel of a coroutine thread.
pub fn request(target: TaskRef) -> i32 {
    match target.join.lock().life {
        super::task::Life::Running => {}
        _ => return ended_answer(),
    }
    let old = target.cancel.word.fetch_or(REQUESTED, Ordering::SeqCst);
    let c = old | REQUESTED;
    if old & REQUESTED != 0 || !actionable(c) {
        // Already requested, disabled (acted on once enabled), or exiting.
        return 0;
    }
    let me = worker::current_task();
    if me == Some(target) {
        // To itself: deferred waits for the next cancellation point, asynchronous acts now (as glibc).
        if c & ASYNC != 0 {
            act(target);
        }
        return 0;
    }
    wake_parked(target);
    // Waiting in the kernel on its worker: the call moves to a helper thread, where the request ends it.
    super::worker_call::abort(target);
    if c & ASYNC != 0 {
        super::preempt::cancel_running(target);
    }
    0
}

/// Sets `mask` in the task's cancel word to `value` (a request may be recorded concurrently); returns the
/// word before.
fn set_bit(me: &TaskRef, mask: u32, value: u32) -> u32 {
    me.cancel.word.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| Some((c & !mask) | value)).unwrap_or_else(|c| c)
}

/// pthread_setcancelstate for the calling coroutine: EINVAL for an unknown state; enabling with a
/// pending request under the asynchronous type acts at once (as glibc).
pub fn set_state(state: i32, old: Option<&mut i32>) -> i32 {
    set_flag(DISABLED, [CANCEL_ENABLE, CANCEL_DISABLE], state, old)
}

/// pthread_setcanceltype for the calling coroutine (as [`set_state`]).
pub fn set_type(kind: i32, old: Option<&mut i32>) -> i32 {
    set_flag(ASYNC, [CANCEL_DEFERRED, CANCEL_ASYNCHRONOUS], kind, old)
}

/// Both setters: `flag` is the word's bit that `value` clears or sets, `[clear, set]` the C values that
/// mean either; the previous value goes to `old`. A request the change makes actionable is acted on.
fn set_flag(flag: u32, [clear, set]: [i32; 2], value: i32, old: Option<&mut i32>) -> i32 {
    let Some(me) = worker::current_task() else { return libc::ENOSYS };
    let bit = match value {
        v if v == clear => 0,
        v if v == set => flag,
        _ => return libc::EINVAL,
    };
    let prev = set_bit(&me, flag, bit);
    if let Some(o) = old {
        *o = if prev & flag != 0 { set } else { clear };
    }
    if actionable_async(me.cancel.word.load(Ordering::SeqCst)) {
        act(me);
    }
    0
}

/// Whether a cancellation request ended a park of the calling coroutine's current cancellation point
/// (rather than a signal, say): a wait that would otherwise go on (a join, a hook that retries after
/// EINTR by itself such as sigwait, a polling pause) must return instead, so the request is acted on.
pub fn woken() -> bool {
    worker::current_task().is_some_and(|me| me.cancel.point_cancelled())
}
