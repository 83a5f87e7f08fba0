//! Helper OS threads for calls that must really block in the kernel — because something outside the
//! process is to wake them there (a futex shared with another process), or because nothing can be
//! polled. The coroutine parks while a helper makes the call; a plain thread simply makes it itself.
//! Helpers are made on demand and kept for reuse once idle; calls that always end by themselves share a
//! bounded number of them.
//!
//! What a signal or a cancellation request for the waiting coroutine does depends on the call:
//! - [`run`]: nothing, until the call returns. The helper may write into the coroutine's stack, so the
//!   coroutine cannot leave the wait; a handler for it runs in its context on the worker's stack
//!   (`signals::routing::run_in_parked`). (Only a shared futex wait without io_uring that nothing is to
//!   interrupt uses it now.)
//! - [`run_abortable`]: calls that wait in the kernel interruptibly (`waitid`, a blocking `fcntl` lock,
//!   `splice`, `sendfile`, a shared futex without io_uring: [`syscall`]). The helper makes them through
//!   `sys::abortable`; when the coroutine is interrupted its wait ends, the helper's call is aborted (a
//!   signal to the helper) and the coroutine takes what it returned — its result if it completed first,
//!   EINTR otherwise — *before* the handlers run on the coroutine's own stack (so a handler may
//!   `siglongjmp` out: nothing is left running for the abandoned call, nor any record or helper place).
//!   Its caller then restarts the call or fails with EINTR as the kernel would.
//! - [`run_uninterruptible`]: calls the kernel does not interrupt either (a regular-file read the disk
//!   serves): the coroutine stays parked until the call is over, then its handlers run on its own stack
//!   and the result stands, as natively.
//! - [`run_detachable`]: calls glibc makes inside itself, that nothing can abort (`system`, `pclose`: a
//!   wait that glibc restarts after EINTR). The helper uses only what the closure owns and the heap, so a
//!   handler runs on the coroutine's own stack while the call goes on, and the coroutine then waits again;
//!   one that leaves by `siglongjmp` abandons the call, which ends on the helper by itself. A cancellation
//!   request is handed to the caller's `on_cancel` (say, to kill the child), then the call is waited for.
//! - [`run_abandonable`]: calls nothing can abort that use only what they own, whose caller may leave
//!   them for good (a name lookup: a handler may `siglongjmp` out, a cancellation request is acted on):
//!   as `run_detachable` while the caller waits, and an abandoned call's result is freed when both the
//!   helper and the caller are done with it.

use super::lock::Lock;
use super::park::{OnSignal, Wait, WaitReason};
use super::parking_lot::{self, Parked};
use super::sys::futex;
use super::worker;
use core::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::ffi::c_void;

/// A call for another thread to make, once.
pub type Job = Box<dyn FnOnce() + Send>;

struct Helper {
    /// 1 when a job is waiting for this helper.
    has_job: AtomicU32,
    job: Lock<Option<Job>>,
}

static IDLE: Lock<Vec<&'static Helper>> = Lock::new(Vec::new());

/// Calls that always end by themselves (name lookups, file I/O) share at most this many helpers (Go bounds its cgo lookups the same way), so 1,000
/// threads resolving names at once do not make 1,000 OS threads; the rest wait their turn, parked. Calls
/// that may wait indefinitely (process waits, shared futexes) are not limited: queueing them behind each
/// other could deadlock.
const BOUNDED_HELPERS: u32 = 128;
static BOUNDED_IN_USE: AtomicU32 = AtomicU32::new(0);

/// A place among the bounded helpers, given back on drop.
struct Slot(bool);

impl Slot {
    fn take(kind: super::stats::Offload) -> Slot {
        use super::stats::Offload;
        if !matches!(kind, Offload::Dns | Offload::File) {
            return Slot(false);
        }
        let key = &BOUNDED_IN_USE as *const AtomicU32 as usize;
        loop {
            let n = BOUNDED_IN_USE.load(Ordering::Acquire);
            if n < BOUNDED_HELPERS {
                if BOUNDED_IN_USE.compare_exchange(n, n + 1, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                    return Slot(true);
                }
                continue;
            }
            // Waiting for a helper to be free: nothing points into this stack yet, so a handler may run here.
            parking_lot::park(
                key,
                0,
                || BOUNDED_IN_USE.load(Ordering::Acquire) >= BOUNDED_HELPERS,
                || {},
                Wait::new(WaitReason::Offload, 0, OnSignal::Resume),
            );
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.0 {
            BOUNDED_IN_USE.fetch_sub(1, Ordering::AcqRel);
            parking_lot::unpark_one(&BOUNDED_IN_USE as *const AtomicU32 as usize, |_| 0);
        }
    }
}

/// Helper records whose threads ended after idling, ready for a new thread.
static DORMANT: Lock<Vec<&'static Helper>> = Lock::new(Vec::new());
/// A helper idle this long ends its thread: a burst of lookups must not leave the process with dozens of
/// threads for the rest of its life.
const IDLE_EXIT_NS: u64 = 1_000_000_000;

extern "C" fn helper_main(arg: *mut c_void) -> *mut c_void {
    // SAFETY: arg is a leaked &'static Helper; GS is cleared so hooks see a plain thread.
    let h: &'static Helper = unsafe { &*(arg as *const Helper) };
    // SAFETY: GS 0 marks a thread that is not a worker; nothing on this thread reads GS as a worker pointer yet.
    unsafe { super::sys::fsgs::set_gs_base(0) };
    loop {
        let idle_until = super::sys::time::monotonic_ns() + IDLE_EXIT_NS;
        while h.has_job.load(Ordering::Acquire) == 0 {
            if !futex::wait(&h.has_job, 0, Some(idle_until)) {
                // Timed out: leave if nobody took us from the idle list meanwhile (then a job is coming).
                let mut idle = IDLE.lock();
                if let Some(i) = idle.iter().position(|x| core::ptr::eq(*x, h)) {
                    idle.swap_remove(i);
                    drop(idle);
                    DORMANT.lock().push(h);
                    return core::ptr::null_mut();
                }
            }
        }
        let job = h.job.lock().take();
        h.has_job.store(0, Ordering::Release);
        if let Some(job) = job {
            job();
        }
        IDLE.lock().push(h);
    }
}

fn helper() -> Option<&'static Helper> {
    if let Some(h) = IDLE.lock().pop() {
        return Some(h);
    }
    let h: &'static Helper = match DORMANT.lock().pop() {
        Some(h) => h,
        None => Box::leak(Box::new(Helper { has_job: AtomicU32::new(0), job: Lock::new(None) })),
    };
    // SAFETY: the helper record lives for the process.
    if unsafe { super::os_thread::start(helper_main, h as *const Helper as *mut c_void) } {
        Some(h)
    } else {
        DORMANT.lock().push(h);
        None
    }
}

/// Runs `call` on a helper OS thread while the calling coroutine parks, and returns its result. A plain
/// thread (or if no helper can be started) runs it directly.
pub fn run<R: Send + 'static>(kind: super::stats::Offload, call: impl FnOnce() -> R + Send + 'static) -> R {
    start(kind, call).wait()
}

/// [`run`] for a call the kernel would not interrupt either (a regular-file read the disk serves): a
/// handler for the coroutine runs on its own stack once the call is over, as the kernel runs it when
/// such a call returns, and the worker runs other coroutines meanwhile.
pub fn run_uninterruptible<R: Send + 'static>(
    kind: super::stats::Offload,
    call: impl FnOnce() -> R + Send + 'static,
) -> R {
    start(kind, call).wait_with(OnSignal::AfterCall)
}

/// Where a helper leaves its call's result.
struct Done<R> {
    result: Lock<Option<R>>,
    /// 0 while the call runs, then [`FINISHED`]; [`ABANDONED`] while it runs for a waiter that left.
    finished: AtomicU32,
    /// Set to abort the call (see `sys::abortable`).
    abort: AtomicU32,
    /// The kernel tid of the helper making the call (0 until it starts), for the abort signal.
    tid: AtomicI32,
}

const FINISHED: u32 = 1;
const ABANDONED: u32 = 2;

/// A call started with [`start`]; [`Pending::wait`] gives its result (it must be waited for: the record
/// the helper leaves it in is freed then).
pub struct Pending<R: 'static> {
    state: PendingState<R>,
}

enum PendingState<R: 'static> {
    Ready(R),
    Running { done: &'static Done<R> },
}

/// Starts `call` on a helper OS thread and returns at once, for a coroutine that has something to do
/// while the call runs (see [`run`]); a plain thread, or a coroutine when no helper can be started, makes
/// the call here.
pub fn start<R: Send + 'static>(kind: super::stats::Offload, call: impl FnOnce() -> R + Send + 'static) -> Pending<R> {
    if worker::current_task().is_none() {
        return Pending { state: PendingState::Ready(call()) };
    }
    match start_on_helper(kind, call) {
        Ok(p) => p,
        Err(call) => Pending { state: PendingState::Ready(call()) },
    }
}

/// The abort flag of a call made where nothing aborts it (a plain thread's own call).
static NEVER_ABORTED: AtomicU32 = AtomicU32::new(0);

/// How a wait for an abortable or detachable call was interrupted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interrupted {
    No,
    /// A handled signal; `restarts`: its handler has SA_RESTART (the call may be made again).
    Signal {
        restarts: bool,
    },
    /// A cancellation request (the cancellation point acts on it as it returns).
    Cancel,
}

/// Runs `call` on a helper thread while the calling coroutine parks (a plain thread makes it itself);
/// `call` gets the flag to make its system call through `sys::abortable` with. A handled signal or a
/// cancellation request for the coroutine aborts the call (see the module documentation); the result is
/// what the call returned (Err(EINTR) from `sys::abortable` if it was aborted before completing) and how
/// the wait was interrupted. The handlers have run when this returns.
pub fn run_abortable<R: Send + 'static, F: FnOnce(&AtomicU32) -> R + Send + 'static>(
    kind: super::stats::Offload,
    call: F,
) -> (R, Interrupted) {
    run_abortable_on(kind, OnSignal::FailUnlessRestart, call)
}

/// [`run_abortable`] for a wait whose handled signal does what `on_signal` says (a mutex's futex wait
/// resumes: its caller waits again after EINTR; a timed one fails).
pub fn run_abortable_on<R: Send + 'static, F: FnOnce(&AtomicU32) -> R + Send + 'static>(
    kind: super::stats::Offload,
    on_signal: OnSignal,
    call: F,
) -> (R, Interrupted) {
    if worker::current_task().is_none() {
        return (call(&NEVER_ABORTED), Interrupted::No);
    }
    let pending = match start_job(kind, call) {
        Ok(p) => p,
        // No helper thread: the worker makes the call (as before helpers existed).
        Err(call) => return (call(&NEVER_ABORTED), Interrupted::No),
    };
    let done = match pending.state {
        PendingState::Ready(r) => return (r, Interrupted::No),
        PendingState::Running { done } => done,
    };
    // The kernel restarts these waits under SA_RESTART (`interrupt_restarts` says which it was).
    let (r, last) = wait_for_helper(done, on_signal, true);
    let how = match worker::current_task() {
        _ if last != Parked::Interrupted => Interrupted::No,
        Some(me) if me.cancel.point_cancelled() => Interrupted::Cancel,
        Some(me) => Interrupted::Signal { restarts: me.interrupt_restarts.load(Ordering::Relaxed) },
        None => Interrupted::No,
    };
    (r, how)
}

/// Parks the calling coroutine until the helper behind `done` has finished — or, when `aborts`, until a
/// signal or a cancellation request interrupts the wait, which aborts the helper's call — and returns its
/// result with how the last park ended. The result is taken before any handler runs in the coroutine: one
/// that leaves by `siglongjmp` leaves no record behind (the helper gives its bounded place back itself).
fn wait_for_helper<R>(done: &'static Done<R>, on_signal: OnSignal, aborts: bool) -> (R, Parked) {
    let key = done as *const Done<R> as usize;
    let mut taken = None;
    let mut last = Parked::Invalid;
    while taken.is_none() && done.finished.load(Ordering::Acquire) == 0 {
        let finished = &done.finished;
        let wait = Wait::new(WaitReason::Offload, 0, on_signal);
        last = parking_lot::park_then(
            key,
            0,
            || finished.load(Ordering::Acquire) == 0,
            || {},
            wait,
            |p| {
                let aborted = aborts && p == Parked::Interrupted;
                if aborted {
                    abort(done);
                }
                // `aborted` first: after abort and take_result, `done` is gone.
                if aborted || finished.load(Ordering::Acquire) != 0 {
                    taken = Some(take_result(done));
                }
            },
        );
        if last == Parked::Invalid || (aborts && last == Parked::Interrupted) {
            break;
        }
    }
    (taken.unwrap_or_else(|| take_result(done)), last)
}

/// System call `nr` made on a helper thread for the calling coroutine (a plain thread makes it itself),
/// as the coroutine's own call would end: a handled signal (what `on_signal` says) or a cancellation
/// request aborts it (see [`run_abortable`]); what the kernel did stands — a completed call's result, a
/// short count, EINTR for a wait it interrupted (made again if the handler has SA_RESTART and the kernel
/// would restart it). A call aborted before the helper began it did nothing: it is made after the
/// handlers, as natively for a signal that came just before the call (a cancellation point gets EINTR
/// and acts on its request). The handlers have run when this returns.
///
/// # Safety
/// The arguments must be valid for system call `nr` until it returns; the coroutine runs nothing of its
/// own (no handler) before the helper is back from it.
pub unsafe fn syscall(
    kind: super::stats::Offload,
    on_signal: OnSignal,
    nr: libc::c_long,
    args: [usize; 6],
) -> Result<usize, super::sys::syscall::Errno> {
    use super::sys::syscall::Errno;
    loop {
        let (r, how) = run_abortable_on(kind, on_signal, move |abort| {
            // SAFETY: per this function's contract.
            unsafe { super::sys::abortable::call_or_skip(abort, nr, args) }
        });
        match (r, how) {
            (None, Interrupted::Cancel) => return Err(Errno(libc::EINTR)),
            (None, _) | (Some(Err(Errno(libc::EINTR))), Interrupted::Signal { restarts: true }) => continue,
            (Some(r), _) => return r,
        }
    }
}

/// Aborts the call behind `done` and waits until the helper is back from it. The helper returns at once
/// (see `sys::abortable`), so the worker waits for it in place rather than parking the coroutine again:
/// it must not run anything of the coroutine's (a handler) before the call is over.
fn abort<R>(done: &Done<R>) {
    abort_call(&done.abort, || done.tid.load(Ordering::SeqCst), || done.finished.load(Ordering::Acquire) != 0);
}

/// Aborts a call another OS thread makes through `sys::abortable` with flag `flag` (its kernel tid is
/// `tid()`, 0 while unknown) and waits in place until `finished()` says it is back from it: for the
/// helpers here and for the keepers' PI lock waits (`sync::proxy`).
pub fn abort_call(flag: &AtomicU32, tid: impl Fn() -> i32, finished: impl Fn() -> bool) {
    flag.store(1, Ordering::SeqCst);
    // The thread stores its tid before it looks at the flag: either it sees the flag, or we see its tid.
    let mut resend_at = 0;
    while !finished() {
        let now = super::sys::time::monotonic_ns();
        // Again every millisecond: a call libc makes inside itself (`sys::abortable::foreign`) ends only
        // when the signal finds it in its wait, which it may not have begun yet.
        if now >= resend_at {
            let tid = tid();
            if tid != 0 {
                super::preempt::signal::send_abort(tid);
            }
            resend_at = now + 1_000_000;
        }
        // Short sleeps on the flag, which stays 1, with no wake-up: the thread wakes only the parking lot
        // (a helper's record is freed as soon as this sees it finished, so nothing may touch it after).
        let _ = futex::wait(flag, 1, Some(now + 50_000));
    }
}

/// The result a finished helper left, freeing its record.
fn take_result<R>(done: &'static Done<R>) -> R {
    let r = done.result.lock().take().expect("helper stored the result");
    // SAFETY: the helper no longer touches `done` after setting `finished` (its unpark uses the address
    // only as a key), and only this coroutine frees it.
    drop(unsafe { Box::from_raw(done as *const Done<R> as *mut Done<R>) });
    r
}

/// Runs `call` on a helper thread while the calling coroutine parks (a plain thread makes it itself), for
/// calls nothing can abort whose caller must stay reachable by signals and cancellation: `call` must use
/// only what it owns (never the coroutine's stack). A handler for the coroutine runs on its own stack
/// while the call goes on, and the coroutine then waits again (one that leaves by `siglongjmp` abandons
/// the call, which ends on the helper; its record is freed as [`run_abandonable`] frees one). A cancellation request calls `on_cancel` with
/// the helper's kernel tid (0 if it has not started the call yet) until it returns true; the call is then
/// waited for, and the cancellation point acts on the request.
pub fn run_detachable<R: Send + 'static>(
    kind: super::stats::Offload,
    call: impl FnOnce() -> R + Send + 'static,
    mut on_cancel: impl FnMut(i32) -> bool,
) -> R {
    let Some(me) = worker::current_task() else { return call() };
    let pending = match start_on_helper(kind, call) {
        Ok(p) => p,
        Err(call) => return call(),
    };
    let done = match pending.state {
        PendingState::Ready(r) => return r,
        PendingState::Running { done } => done,
    };
    // Kept as `run_abandonable` keeps its calls, so that a wait left by longjmp leaks no record.
    forget_abandoned(&me);
    me.abandonable.set(Some((done as *const Done<R> as usize, abandon::<R>)));
    let key = done as *const Done<R> as usize;
    let mut cancel_handled = false;
    while done.finished.load(Ordering::Acquire) == 0 {
        let finished = &done.finished;
        let cancelled = me.cancel.point_cancelled();
        if cancelled && !cancel_handled {
            cancel_handled = on_cancel(done.tid.load(Ordering::SeqCst));
            if !cancel_handled {
                // The helper has not got as far as the call's child yet: look again shortly.
                super::park::sleep_until(super::sys::time::monotonic_ns() + 1_000_000);
                continue;
            }
        }
        // Once cancelled, the wait is only for the helper to finish (the point acts on the request then).
        let on_signal = if cancelled { OnSignal::Deferred } else { OnSignal::Resume };
        let wait = Wait::new(WaitReason::Offload, 0, on_signal);
        if parking_lot::park(key, 0, || finished.load(Ordering::Acquire) == 0, || {}, wait) == Parked::Invalid {
            break;
        }
    }
    me.abandonable.set(None);
    take_result(done)
}

/// Like [`start`], but on a helper thread whoever calls, for a call its caller must overlap with
/// something of its own; Err(call) when no helper thread can be started.
pub fn start_on_helper<R: Send + 'static, F: FnOnce() -> R + Send + 'static>(
    kind: super::stats::Offload,
    call: F,
) -> Result<Pending<R>, F> {
    match start_job(kind, Plain(call)) {
        Ok(p) => Ok(p),
        Err(Plain(call)) => Err(call),
    }
}

/// A call that takes no abort flag, as a [`HelperCall`].
struct Plain<F>(F);

/// What a helper runs: a call given its abort flag (which it may ignore).
trait HelperCall<R>: Send + 'static {
    fn call(self, abort: &AtomicU32) -> R;
}

impl<R, F: FnOnce() -> R + Send + 'static> HelperCall<R> for Plain<F> {
    fn call(self, _: &AtomicU32) -> R {
        (self.0)()
    }
}

impl<R, F: FnOnce(&AtomicU32) -> R + Send + 'static> HelperCall<R> for F {
    fn call(self, abort: &AtomicU32) -> R {
        self(abort)
    }
}

/// [`start_on_helper`] for any [`HelperCall`].
fn start_job<R: Send + 'static, C: HelperCall<R>>(kind: super::stats::Offload, call: C) -> Result<Pending<R>, C> {
    super::stats::offload(kind);
    let slot = Slot::take(kind);
    let Some(h) = helper() else { return Err(call) };
    let (job, pending) = job_for(call, slot);
    *h.job.lock() = Some(job);
    h.has_job.store(1, Ordering::Release);
    futex::wake(&h.has_job, 1);
    Ok(pending)
}

/// The job that makes `call` and leaves its result for the [`Pending`] returned with it, waking its waiter
/// (or frees both if the waiter abandoned the call: see [`run_abandonable`]). The helper gives back the
/// bounded place `slot` itself once the call is over, so a waiter that leaves by `siglongjmp` cannot keep it.
fn job_for<R: Send + 'static>(call: impl HelperCall<R>, slot: Slot) -> (Job, Pending<R>) {
    let done: &'static Done<R> = Box::leak(Box::new(Done {
        result: Lock::new(None),
        finished: AtomicU32::new(0),
        abort: AtomicU32::new(0),
        tid: AtomicI32::new(0),
    }));
    let key = done as *const Done<R> as usize;
    let job: Job = Box::new(move || {
        done.tid.store(super::sys::gettid(), Ordering::SeqCst);
        let r = call.call(&done.abort);
        drop(slot);
        *done.result.lock() = Some(r);
        if done.finished.swap(FINISHED, Ordering::AcqRel) == ABANDONED {
            // SAFETY: its waiter left for good (see `abandon`): nobody else holds the record any more.
            drop(unsafe { Box::from_raw(done as *const Done<R> as *mut Done<R>) });
        } else {
            parking_lot::unpark_all(key, 0);
        }
    });
    (job, Pending { state: PendingState::Running { done } })
}

impl<R: 'static> Pending<R> {
    /// True once the call has returned.
    pub fn finished(&self) -> bool {
        match &self.state {
            PendingState::Ready(_) => true,
            PendingState::Running { done, .. } => done.finished.load(Ordering::Acquire) != 0,
        }
    }

    /// The call's result, parking the calling coroutine until it has one.
    pub fn wait(self) -> R {
        // The helper writes into this coroutine's stack until it is done: the wait cannot be left early.
        self.wait_with(OnSignal::Deferred)
    }

    /// [`Pending::wait`] with what a signal does meanwhile: `Deferred` or `AfterCall` (a wait the
    /// helper's call ends, never a signal).
    fn wait_with(self, on_signal: OnSignal) -> R {
        match self.state {
            PendingState::Ready(r) => r,
            PendingState::Running { done } => wait_for_helper(done, on_signal, false).0,
        }
    }
}

/// Runs `call` on a helper thread while the calling coroutine parks (a plain thread makes it itself), for
/// calls nothing can abort that use only what they own (a name lookup into the helper's own copies of the
/// caller's buffers, see `runtime::dns`), made inside a cancellation point of the caller. A handler for the
/// coroutine runs on its own stack while the call goes on, and the coroutine then waits again, as glibc's
/// own retry loops go on after EINTR. Some(result) once the call is over; None when a cancellation request
/// ended the wait and is to be acted on (the caller's cancellation point does, as glibc acts on it in the
/// resolver's own waits): the call is then abandoned.
///
/// A handler that leaves the wait by `siglongjmp` abandons the call too, without anything running to say
/// so: the task keeps the call's record ([`Task::abandonable`](super::task::Task)) until its next such call
/// or its end, which abandon it ([`forget_abandoned`]). Such calls are only made with handler depth 0 (in a
/// handler `worker::current_task` is None and the call is made in place), so a record still kept when the
/// next one starts, on the same stack, is of a call its thread has left. An abandoned call's result is
/// dropped (its memory freed) by whichever of the helper and the abandoning thread comes last; the helper
/// gives its bounded place back itself when the call is over.
pub fn run_abandonable<R: Send + 'static>(
    kind: super::stats::Offload,
    call: impl FnOnce() -> R + Send + 'static,
) -> Option<R> {
    let Some(me) = worker::current_task() else { return Some(call()) };
    forget_abandoned(&me);
    let pending = match start_on_helper(kind, call) {
        Ok(p) => p,
        Err(call) => return Some(call()),
    };
    let done = match pending.state {
        PendingState::Ready(r) => return Some(r),
        PendingState::Running { done } => done,
    };
    me.abandonable.set(Some((done as *const Done<R> as usize, abandon::<R>)));
    let key = done as *const Done<R> as usize;
    let finished = &done.finished;
    while finished.load(Ordering::Acquire) == 0 {
        let wait = Wait::new(WaitReason::Offload, 0, OnSignal::Resume);
        let p = parking_lot::park(key, 0, || finished.load(Ordering::Acquire) == 0, || {}, wait);
        // A request ended the wait; its point acts on it unless a handler disabled cancellation meanwhile
        // (then the point's later parks are not ended again: the call is waited for).
        if p == Parked::Interrupted
            && me.cancel.point_cancelled()
            && super::cancel_state::actionable(me.cancel.word.load(Ordering::SeqCst))
        {
            forget_abandoned(&me);
            return None;
        }
    }
    me.abandonable.set(None);
    Some(take_result(done))
}

/// Abandons the call of `task`'s last [`run_abandonable`] if its wait was left without its result (by
/// `siglongjmp` from a handler, or a cancellation): called at the task's next such call and when it ends.
pub fn forget_abandoned(task: &super::task::Task) {
    if let Some((done, abandon)) = task.abandonable.take() {
        // SAFETY: the record of a call `run_abandonable` started with `abandon` made for its result type;
        // it is abandoned once (taken out of the task).
        unsafe { abandon(done) };
    }
}

/// Abandons the call behind `done` (a `&'static Done<R>`): the helper frees the record when it finishes,
/// or the result is dropped here if it already has.
///
/// # Safety
/// `done` is a running or finished call's record whose waiter has left for good.
unsafe fn abandon<R: 'static>(done: usize) {
    // SAFETY: per the contract, the record is alive until either side frees it, which only one does.
    let d = unsafe { &*(done as *const Done<R>) };
    if d.finished.compare_exchange(0, ABANDONED, Ordering::AcqRel, Ordering::Acquire).is_err() {
        drop(take_result(d));
    }
}

unsafe extern "C" {
    fn __h_errno_location() -> *mut i32;
}

/// [`run_abandonable`] for libc calls that report through errno and h_errno (the resolver): both are
/// per-thread, so the helper's values are carried back into the coroutine, as if it had made the call
/// itself.
pub fn run_abandonable_keeping_errno<R: Send + 'static>(
    kind: super::stats::Offload,
    call: impl FnOnce() -> R + Send + 'static,
) -> Option<R> {
    if worker::current_task().is_none() {
        return Some(call());
    }
    // errno and h_errno are the calling thread's: the helper's inside the closure, the coroutine's after
    // it (FS is the coroutine's TCB again).
    let (r, errno, h_errno) = run_abandonable(kind, move || {
        let r = call();
        // SAFETY: the helper thread's own errno and h_errno, read on it right after the call.
        unsafe { (r, *libc::__errno_location(), *__h_errno_location()) }
    })?;
    // SAFETY: __errno_location and __h_errno_location point at the calling coroutine's own variables.
    unsafe {
        *libc::__errno_location() = errno;
        *__h_errno_location() = h_errno;
    }
    Some(r)
}
