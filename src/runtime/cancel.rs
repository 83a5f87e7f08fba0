//! pthread cancellation of coroutines, with glibc's semantics and glibc's own unwinding.
//!
//! Natively glibc keeps a thread's cancellation state in its descriptor (`cancelhandling`) and acts on a
//! request at a cancellation point by a forced unwind (`__pthread_unwind`: cleanup handlers, C++
//! destructors, `abi::__forced_unwind`) that ends in the thread's outermost cancellation buffer. A blocked
//! cancellation point is interrupted by SIGCANCEL sent to the thread's kernel task — which a coroutine does
//! not have, and whose descriptor bits glibc would act on inside the shim's own calls into libc. So the
//! state of a coroutine lives here, in its task record ([`Task::cancel`]), and glibc only does the part it
//! does best: when a request is acted on, glibc's own `pthread_exit(PTHREAD_CANCELED)` runs the very same
//! forced unwind a cancellation runs (its `__do_cancel`), to the buffer `thread_entry.c` set up.
//!
//! - A request (`pthread_cancel`) is recorded; if the target waits parked in a cancellation point with
//!   cancellation enabled, the park is claimed and ended as by an interruption (`Wake::Interrupted`). The
//!   park code has two calls: `Task::begin_park` arms every park begun inside a point ([`on_park`]), and
//!   `Task::switch_out` notes a park a request ended ([`after_park`]). The call returns early (EINTR
//!   inside the runtime, a spurious wake-up for a condition variable, which re-locks its mutex first; a
//!   wait that would go on asks [`woken`]) and the hook acts on the request as it returns ([`Point`]).
//! - Hooks of cancellation points bracket their work with [`Point::enter`] / [`Point::leave`]: a pending
//!   request is acted on at entry; one that ended the call's park, at exit.
//! - Asynchronous cancellation (PTHREAD_CANCEL_ASYNCHRONOUS) of a running coroutine uses the preemption
//!   signal: the preempted coroutine unwinds from the preemption trampoline (whose unwind information leads
//!   back to the interrupted instruction, as the kernel's signal frame does natively) instead of yielding;
//!   one that is not running acts when it is next preempted or reaches a cancellation point.
//! - Threads the shim does not run as coroutines keep glibc's own cancellation untouched (the hooks pass
//!   them through).

use super::park::Interruption;
use super::task::{TaskRef, Wake};
use super::worker;
use core::sync::atomic::Ordering;

/// Cancellation disabled (pthread_setcancelstate).
pub const DISABLED: u32 = 1;
/// Asynchronous cancellation type.
pub const ASYNC: u32 = 2;
/// Cancellation was requested.
pub const REQUESTED: u32 = 4;
/// The thread is exiting (pthread_exit, or a cancellation being acted on): no further request is acted on.
pub const EXITING: u32 = 8;

/// In `Task::cancel_park` (park generation + 1 in the low 32 bits): a request claimed this park to end it.
const CLAIMED: u64 = 1 << 32;

/// glibc's PTHREAD_CANCEL_ENABLE, _DISABLE, _DEFERRED, _ASYNCHRONOUS (pthread.h).
const CANCEL_ENABLE: i32 = 0;
const CANCEL_DISABLE: i32 = 1;
const CANCEL_DEFERRED: i32 = 0;
const CANCEL_ASYNCHRONOUS: i32 = 1;

/// glibc's PTHREAD_CANCELED.
pub const CANCELED: *mut core::ffi::c_void = usize::MAX as *mut core::ffi::c_void;

/// Whether a request is to be acted on at a cancellation point now.
#[inline]
fn actionable(c: u32) -> bool {
    c & (DISABLED | REQUESTED | EXITING) == REQUESTED
}

/// Whether a request is to be acted on at once, anywhere (asynchronous type).
#[inline]
fn actionable_async(c: u32) -> bool {
    actionable(c) && c & ASYNC != 0
}

/// Resets the state for a new thread on a (possibly reused) task record.
pub fn reset(task: TaskRef) {
    task.cancel.store(0, Ordering::SeqCst);
    task.cancel_park.store(0, Ordering::SeqCst);
    task.at_point.set(false);
    task.point_cancelled.set(false);
}

/// Acts on a request: glibc's forced unwind with PTHREAD_CANCELED as the thread's result. Called on the
/// coroutine's own stack, from a hook, holding nothing: the library is built with `panic = "abort"`, so
/// its frames have no landing pads and the unwinder passes them by their frame information alone (which
/// is also why nothing of the runtime may be mid-way when it is called).
pub fn act(me: TaskRef) -> ! {
    me.cancel.fetch_or(EXITING, Ordering::SeqCst);
    me.at_point.set(false);
    // SAFETY: glibc's pthread_exit on the coroutine's own TCB and stack, under the outermost cancellation
    // buffer thread_entry.c installed; it does not return.
    unsafe { crate::real::pthread_exit(CANCELED) };
    unreachable!("pthread_exit returned")
}

/// pthread_testcancel, and the check at the entry of every cancellation point.
pub fn test() {
    if let Some(me) = worker::current_task()
        && actionable(me.cancel.load(Ordering::SeqCst))
    {
        act(me);
    }
}

/// The thread calls pthread_exit: requests made from now on are not acted on (glibc sets EXITING).
pub fn exiting() {
    if let Some(me) = worker::current_task() {
        me.cancel.fetch_or(EXITING, Ordering::SeqCst);
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
    #[inline]
    pub fn enter() -> Point {
        let Some(me) = worker::current_task() else {
            if !super::lifecycle::running() || worker::current_worker().is_some() {
                return Point { me: None, outer: false, plain: false };
            }
            return Point { me: None, outer: plain::enter(), plain: true };
        };
        if actionable(me.cancel.load(Ordering::SeqCst)) {
            act(me);
        }
        let outer = me.at_point.replace(true);
        if !outer {
            me.point_cancelled.set(false);
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
            me.at_point.set(self.outer);
            let cancelled = me.point_cancelled.get();
            if !self.outer {
                me.point_cancelled.set(false);
                me.cancel_park.store(0, Ordering::Relaxed);
            }
            if cancelled && actionable(me.cancel.load(Ordering::SeqCst)) {
                act(me);
            }
        }
        r
    }
}

/// Runs `f` as a cancellation point of the calling coroutine (see [`Point`]).
#[inline]
pub fn point<R>(f: impl FnOnce() -> R) -> R {
    let p = Point::enter();
    let r = f();
    p.leave(r)
}

/// Called when a park of the coroutine ends (it runs again): if a request claimed the park and it ended
/// as interrupted, the current cancellation point is cancelled (a signal may have won the race to end
/// the park; the request is pending all the same, so acting on it is right).
#[inline]
pub fn after_park(me: &super::task::Task) {
    if me.at_point.get()
        && me.cancel_park.load(Ordering::SeqCst) & CLAIMED != 0
        && me.last_wake.get() == Wake::Interrupted
    {
        me.point_cancelled.set(true);
    }
}

/// Called for every park a coroutine begins (generation `park`): inside a cancellation point, the park
/// can be ended by a request, and one already pending ends it at once. Once a request ended a park of the
/// point, the point's later parks (a condition variable re-locking its mutex) are not ended again: the
/// point returns and acts.
#[inline]
pub fn on_park(me: &super::task::Task, park: u32) {
    if !me.at_point.get() {
        me.cancel_park.store(0, Ordering::Relaxed);
        return;
    }
    if me.point_cancelled.get() {
        me.cancel_park.store(0, Ordering::Relaxed);
        return;
    }
    me.cancel_park.store(park as u64 + 1, Ordering::SeqCst);
    if actionable(me.cancel.load(Ordering::SeqCst)) {
        // A request came between the entry check and now: the park ends as soon as it begins.
        me.cancel_park.store((park as u64 + 1) | CLAIMED, Ordering::SeqCst);
        // SAFETY: tasks are pooled for the life of the process; `me` is the caller's own record.
        let task = TaskRef(core::ptr::NonNull::from(me));
        super::park::interrupt_park(task, park, Interruption::Cancel);
    }
}

/// Ends the target's park if it waits in a cancellation point: claims the park, then wakes it. A park
/// begun after the look checks the request itself (see [`on_park`]).
fn wake_parked(target: TaskRef) {
    let p = target.cancel_park.load(Ordering::SeqCst);
    if p == 0 || p & CLAIMED != 0 {
        return;
    }
    if target.cancel_park.compare_exchange(p, p | CLAIMED, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
        super::park::interrupt_park(target, (p - 1) as u32, Interruption::Cancel);
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
    let old = target.cancel.fetch_or(REQUESTED, Ordering::SeqCst);
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
    if c & ASYNC != 0 {
        super::preempt::cancel_running(target);
    }
    0
}

/// Sets `mask` in the task's cancel word to `value` (a request may be recorded concurrently); returns the
/// word before.
fn set_bit(me: &TaskRef, mask: u32, value: u32) -> u32 {
    me.cancel.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| Some((c & !mask) | value)).unwrap_or_else(|c| c)
}

/// pthread_setcancelstate for the calling coroutine: EINVAL for an unknown state; enabling with a
/// pending request under the asynchronous type acts at once (as glibc).
pub fn set_state(state: i32, old: Option<&mut i32>) -> i32 {
    let Some(me) = worker::current_task() else { return libc::ENOSYS };
    let bit = match state {
        CANCEL_ENABLE => 0,
        CANCEL_DISABLE => DISABLED,
        _ => return libc::EINVAL,
    };
    let prev = set_bit(&me, DISABLED, bit);
    if let Some(o) = old {
        *o = if prev & DISABLED != 0 { CANCEL_DISABLE } else { CANCEL_ENABLE };
    }
    if actionable_async(me.cancel.load(Ordering::SeqCst)) {
        act(me);
    }
    0
}

/// pthread_setcanceltype for the calling coroutine (as [`set_state`]).
pub fn set_type(kind: i32, old: Option<&mut i32>) -> i32 {
    let Some(me) = worker::current_task() else { return libc::ENOSYS };
    let bit = match kind {
        CANCEL_DEFERRED => 0,
        CANCEL_ASYNCHRONOUS => ASYNC,
        _ => return libc::EINVAL,
    };
    let prev = set_bit(&me, ASYNC, bit);
    if let Some(o) = old {
        *o = if prev & ASYNC != 0 { CANCEL_ASYNCHRONOUS } else { CANCEL_DEFERRED };
    }
    if actionable_async(me.cancel.load(Ordering::SeqCst)) {
        act(me);
    }
    0
}

/// For the preemption trampoline: the preempted (or resumed) coroutine acts on an asynchronous request.
pub fn async_pending(me: &super::task::Task) -> bool {
    actionable_async(me.cancel.load(Ordering::SeqCst))
}

/// Whether a cancellation request ended a park of the calling coroutine's current cancellation point
/// (rather than a signal, say): a wait that would otherwise go on (a join, a hook that retries after
/// EINTR by itself such as sigwait, a polling pause) must return instead, so the request is acted on.
pub fn woken() -> bool {
    worker::current_task().is_some_and(|me| me.point_cancelled.get())
}

/// Cancellation of plain threads (real OS threads the shim does not run as coroutines) stays glibc's: its
/// requests, state and unwinding. Only the waits the runtime makes for them inside a cancellation point
/// (a condition variable or semaphore the runtime runs) are not glibc's, so glibc's request, which sends no
/// signal to a thread with deferred cancellation, would not end them: `pthread_cancel` pokes such a wait
/// (its futex word goes from 0 to [`POKE`]); the waiter, if its cancellation is enabled, ends the wait with
/// cancellation disabled for a moment and the hook then lets glibc act (`pthread_testcancel`).
pub mod plain {
    use super::super::lock::Lock;
    use super::super::sys::futex;
    use core::cell::Cell;
    use core::sync::atomic::{AtomicU32, Ordering};

    /// The value a poke leaves in a parked plain thread's futex word (an unpark stores 1).
    const POKE: u32 = 2;

    /// Plain threads parked by the runtime inside a cancellation point: (pthread_t, futex word address).
    static PARKED: Lock<Vec<(usize, usize)>> = Lock::new(Vec::new());

    // Plain threads only (never read on a coroutine, whose FS names its own TLS): whether the thread is
    // inside a cancellation point, and whether a wait of the point was ended for a request.
    thread_local! {
        static AT_POINT: Cell<bool> = const { Cell::new(false) };
        static TAKEN: Cell<bool> = const { Cell::new(false) };
    }

    fn self_id() -> usize {
        // SAFETY: pthread_self has no preconditions.
        unsafe { libc::pthread_self() as usize }
    }

    /// Point entry of a plain thread: glibc acts on a pending request; returns the outer point flag.
    pub(super) fn enter() -> bool {
        // SAFETY: glibc's own check on the calling plain thread, as its cancellation points make.
        unsafe { crate::real::pthread_testcancel() };
        AT_POINT.with(|a| a.replace(true))
    }

    /// Point exit of a plain thread: if a wait ended for a request, enable cancellation again and let
    /// glibc act on it.
    pub(super) fn leave(outer: bool) {
        AT_POINT.with(|a| a.set(outer));
        if TAKEN.with(|t| t.replace(false)) {
            // SAFETY: glibc's calls on the calling plain thread; testcancel unwinds it (glibc's request).
            unsafe {
                crate::real::pthread_setcancelstate(super::CANCEL_ENABLE, core::ptr::null_mut());
                crate::real::pthread_testcancel();
            }
        }
    }

    /// A plain thread parks on `word` (0 until unparked): registered for pokes if inside a point.
    pub fn parking(word: &AtomicU32) -> bool {
        if super::super::worker::current_task().is_some() || !AT_POINT.with(|a| a.get()) {
            return false;
        }
        PARKED.lock().push((self_id(), word as *const AtomicU32 as usize));
        true
    }

    /// Whether a poke asks the parked plain thread to end its wait: only if its cancellation is enabled,
    /// which is then disabled until the point's hook lets glibc act ([`leave`]).
    pub fn poked(word: &AtomicU32) -> bool {
        if word.compare_exchange(POKE, 0, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return false;
        }
        let mut old = 0;
        // SAFETY: glibc's call on the calling plain thread; disabling never acts on a request.
        unsafe { crate::real::pthread_setcancelstate(super::CANCEL_DISABLE, &mut old) };
        if old != super::CANCEL_ENABLE {
            // Disabled: the request waits for the thread to enable it; the wait goes on.
            return false;
        }
        TAKEN.with(|t| t.set(true));
        true
    }

    /// The parked plain thread's wait ended: no more pokes, and none left in its word.
    pub fn parked(word: &AtomicU32) {
        let addr = word as *const AtomicU32 as usize;
        let mut p = PARKED.lock();
        p.retain(|&(_, w)| w != addr);
        let _ = word.compare_exchange(POKE, 0, Ordering::AcqRel, Ordering::Acquire);
    }

    /// After glibc's pthread_cancel of plain thread `t`: pokes its wait if it is parked in a point.
    pub fn poke(t: libc::pthread_t) {
        let p = PARKED.lock();
        for &(id, w) in p.iter().filter(|&&(id, _)| id == t as usize) {
            let _ = id;
            // SAFETY: registered words stay alive until their thread deregisters them under this lock.
            let word = unsafe { &*(w as *const AtomicU32) };
            if word.compare_exchange(0, POKE, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                futex::wake(word, 1);
            }
        }
    }
}
