//! Where a signal goes. Linux gives a process-directed signal to a thread that does not block it, the
//! main thread first; a thread-directed one (pthread_kill, tgkill, a fault, the SIGPIPE of its own write)
//! to its thread. Under the runtime the kernel only sees workers, so:
//! - the wrapper ([`program_handler`]) runs the program's handler at once when the kernel delivered the
//!   signal on a worker running a coroutine (that worker has the coroutine's mask in the kernel, so the
//!   coroutine accepts it), unless the main thread should have it; otherwise the signal is *held* (see
//!   `held`) and a worker routes it between coroutines ([`route_process_signal`]);
//! - pthread_kill of a coroutine ([`kill`]) keeps the signal pending on that thread and interrupts its
//!   wait; the handler runs in it when it resumes (`worker::deliver_pending`), or at once in a parked
//!   thread whose wait a signal does not end ([`run_in_parked`]).
//!
//! An interruptible wait a routed or sent signal reaches ends with EINTR or goes on, as natively (see
//! `park::interrupt`).

use super::handlers::{Disposition, HANDLER, REPORT_SIGNAL, call_program_handler, disposition, is_function};
use super::held::{self, Instance};
use super::masks;
use super::queued;
use super::set::{NSIG, bit};
use crate::runtime::sys::syscall::Errno;
use crate::runtime::sys::{self, signal::is_glibc_reserved};
use crate::runtime::task::{Life, TaskRef};
use crate::runtime::{lifecycle, monitor, park, scheduler, stats, thread, worker};
use core::sync::atomic::Ordering;

/// The kernel-side handler for every signal the program handles. On a worker running a coroutine (whose
/// mask the kernel just applied) the program's handler runs at once, in that coroutine; in a worker's own
/// context the signal is held and routed to a coroutine (faults excepted: they belong to the code that
/// raised them).
pub(super) extern "C" fn program_handler(sig: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: errno is saved and restored around our own work, as a handler must.
    let saved_errno = unsafe { *libc::__errno_location() };
    let w = worker::current_worker();
    let redelivery = w.is_some_and(|w| w.directed_delivery.get());
    if sig == REPORT_SIGNAL.load(Ordering::Relaxed) && !redelivery {
        stats::REPORT_REQUESTED.store(true, Ordering::Release);
        monitor::wake::poke();
        if !is_function(HANDLER[sig as usize].load(Ordering::Acquire)) {
            // SAFETY: as below.
            unsafe { *libc::__errno_location() = saved_errno };
            return;
        }
    }
    if let Some(w) = w {
        // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
        let info_ref = unsafe { &*info };
        // A doorbell is recognised during a redelivery too (one pending while the mask blocked it).
        if doorbell_rang(w, info_ref) {
            w.doorbells_taken.set(w.doorbells_taken.get().wrapping_add(1));
            if let Some(t) = w.task_in_context() {
                deliver_pending_in_handler(w, t);
            }
            // SAFETY: as below.
            unsafe { *libc::__errno_location() = saved_errno };
            return;
        }
        let in_context = w.task_in_context();
        let process_directed = !redelivery && !is_fault(sig, info_ref) && !thread_directed(sig, info_ref);
        let hold_it = !redelivery
            && !is_fault(sig, info_ref)
            && match in_context {
                None => true,
                // Linux gives a process-directed signal to the main thread when it accepts it; and an
                // instance must not overtake older ones of it (or of a lower number) still held.
                Some(t) => process_directed && ((!t.is_main && main_takes(sig)) || held_before(&t, sig)),
            };
        if hold_it {
            hold(sig, info_ref);
            // SAFETY: as below.
            unsafe { *libc::__errno_location() = saved_errno };
            return;
        }
        // Signals already pending for the thread go first, as the kernel takes its queue in order.
        if let Some(t) = in_context
            && process_directed
        {
            deliver_pending_in_handler(w, t);
        }
        w.enter_handler();
    }
    // A redelivery's flag is down while the program's handler runs: it may leave by longjmp, and the
    // worker must not take its next signals for redeliveries.
    let directed = w.map(|w| w.directed_delivery.replace(false));
    if let Some(w) = w
        && redelivery
    {
        w.redelivered.set(w.redelivered.get() | bit(sig));
    }
    // SAFETY: arguments as the kernel passed them.
    unsafe { call_program_handler(sig, info, ctx) };
    if let Some(t) = w.and_then(|w| w.task_in_context())
        && !super::handlers::restarts(sig)
    {
        // SAFETY: the context the kernel passed, on the worker running `t`.
        unsafe { crate::runtime::worker_call::handler_ran(t, ctx) };
    }
    if let Some(w) = w {
        w.directed_delivery.set(directed.unwrap_or(false));
        w.leave_handler();
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved_errno };
}

/// A synchronous fault (the kernel sends it to the thread whose instruction caused it).
fn is_fault(sig: i32, info: &libc::siginfo_t) -> bool {
    matches!(sig, libc::SIGBUS | libc::SIGFPE | libc::SIGILL | libc::SIGTRAP | libc::SIGSYS) && info.si_code > 0
}

/// A signal sent to the thread itself: by tgkill, or by the kernel for the thread's own write (SIGPIPE,
/// SIGXFSZ; these carry SI_USER like kill(), so a kill() of them counts as the thread's own too).
fn thread_directed(sig: i32, info: &libc::siginfo_t) -> bool {
    info.si_code == libc::SI_TKILL || matches!(sig, libc::SIGPIPE | libc::SIGXFSZ)
}

/// Holds a process-directed signal a worker took in its own context and asks a worker to route it.
/// Async-signal-safe (atomics and a futex wake).
fn hold(sig: i32, info: &libc::siginfo_t) {
    held::hold(sig, info);
    if lifecycle::running() {
        scheduler::get().wake_sleeper();
    }
}

/// Whether signals the thread `t` accepts, `sig` or lower, are held: a newer instance of `sig` must queue
/// behind them. Async-signal-safe.
fn held_before(t: &TaskRef, sig: i32) -> bool {
    let upto = bit(sig) | (bit(sig) - 1);
    held::held() & upto & !t.signals.delivery_mask.load(Ordering::Acquire) != 0
}

/// Whether the main thread accepts `sig`. Async-signal-safe.
fn main_takes(sig: i32) -> bool {
    masks::main_task().and_then(|m| signal_rank(&m, bit(sig))).is_some()
}

/// pthread_kill for a coroutine thread. Signal 0 checks existence; glibc's reserved and out-of-range
/// numbers are EINVAL. A signal a thread sends itself is raised on its own worker, so the handler runs in
/// its context as natively. One aimed at another coroutine is kept pending on it and raised on its worker
/// when it next resumes (interrupting an interruptible wait at once if its mask lets the signal through);
/// one whose default action ends the process goes to the process unless the target blocks it (then it
/// stays pending on the target, as natively, until unblocked or taken by sigwait). A real-time signal is
/// queued once per send, as the kernel queues it (see `queued`).
pub fn kill(target: TaskRef, sig: i32) -> i32 {
    send(target, sig, None)
}

/// pthread_sigqueue / rt_tgsigqueueinfo for a coroutine thread: as [`kill`], the signal carrying `info`
/// (SI_QUEUE and the sender's value) to the handler or to sigwaitinfo.
pub fn queue(target: TaskRef, sig: i32, info: &libc::siginfo_t) -> i32 {
    send(target, sig, Some(info))
}

fn send(target: TaskRef, sig: i32, info: Option<&libc::siginfo_t>) -> i32 {
    if !(0..libc::SIGRTMAX() + 1).contains(&sig) || is_glibc_reserved(sig) {
        return libc::EINVAL;
    }
    if target.join.lock().life == Life::Free {
        return libc::ESRCH;
    }
    if sig == 0 {
        return 0;
    }
    // What the kernel would queue for the thread: the sender's siginfo, or for a real-time signal (queued
    // once per send) pthread_kill's.
    let tkill_info;
    let info = match info {
        Some(i) => Some(i),
        None if sig >= libc::SIGRTMIN() => {
            tkill_info = queued::sent_here(sig, libc::SI_TKILL, 0);
            Some(&tkill_info)
        }
        None => None,
    };
    // Keeps the signal pending on the thread, with its siginfo queued first.
    let keep_pending = |b: u64| -> i32 {
        if let Some(i) = info {
            match queued::push(&target.signals as *const _ as usize, sig, i) {
                Ok(_) => {}
                Err(e) => return e.0,
            }
        }
        target.signals.pending.fetch_or(b, Ordering::AcqRel);
        // Pending for the thread itself now, whatever routing brought it before.
        target.signals.routed.fetch_and(!b, Ordering::AcqRel);
        0
    };
    if worker::current_task() == Some(target) {
        if target.signals.mask.get() & bit(sig) != 0 {
            // Blocked: pending on this thread (not on its worker, which other coroutines share).
            return keep_pending(bit(sig));
        }
        // To oneself: raised on this worker, the handler runs now, in this thread, as natively (one with a
        // siginfo of its own as a directed delivery, which the wrapper does not take for the process's).
        if info.is_some()
            && let Some(w) = worker::current_worker()
        {
            let r = keep_pending(0);
            if r == 0 {
                w.raise_directed(&target.signals, bit(sig), w.kernel_mask());
            }
            return r;
        }
        return match sys::signal::tgkill(sys::getpid(), sys::gettid(), sig) {
            Ok(()) => 0,
            Err(e) => e.0,
        };
    }
    let b = bit(sig);
    let blocked = target.signals.delivery_mask.load(Ordering::Acquire) & b != 0;
    let waited_for = target.signals.waited_for.load(Ordering::Acquire) & b != 0;
    match disposition(sig) {
        // The default action ends (or stops) the process: any thread of it may take the signal.
        Disposition::Default if !blocked && !waited_for => {
            // To our own process.
            let _ = sys::signal::kill(sys::getpid(), sig);
        }
        // An ignored signal is dropped unless blocked (then it stays pending, as in the kernel).
        Disposition::Ignored if !blocked && !waited_for => {}
        _ => {
            let r = keep_pending(b);
            if r != 0 {
                return r;
            }
            if !blocked || waited_for {
                interrupt(target, sig);
                // A thread that computes takes it as soon as it is preempted (see `preempt`): asked now, or
                // at the monitor's next look when sent from a signal handler (the request takes a lock the
                // interrupted code may hold).
                let in_handler = worker::current_worker()
                    .is_some_and(|w| w.task_in_context().is_some() && w.current_task().is_none());
                if !in_handler && target.state.load(Ordering::Acquire) as u32 & 0xff == crate::runtime::task::RUNNING {
                    crate::runtime::preempt::preempt_running(target);
                }
            }
        }
    }
    0
}

/// tgkill(2) and tkill(2) (`tgid` None): a coroutine's tid gets the signal as from pthread_kill ([`kill`]);
/// a tid the kernel knows gets the kernel's call; an ended coroutine's tid is ESRCH, as the kernel's.
pub fn tgkill(tgid: Option<i32>, tid: i32, sig: i32) -> Result<(), Errno> {
    if tid <= 0 || tgid.is_some_and(|g| g <= 0) {
        return Err(Errno(libc::EINVAL));
    }
    match thread::named_by_tid(tid) {
        thread::Named::Thread(task) => {
            if tgid.is_some_and(|g| g != sys::getpid()) {
                return Err(Errno(libc::ESRCH));
            }
            // The kernel checks the signal number only once it found the thread.
            if !(0..NSIG as i32).contains(&sig) {
                return Err(Errno(libc::EINVAL));
            }
            match kill(task, sig) {
                0 => Ok(()),
                e => Err(Errno(e)),
            }
        }
        thread::Named::Gone => Err(Errno(libc::ESRCH)),
        thread::Named::Kernel => match tgid {
            Some(g) => sys::signal::tgkill(g, tid, sig),
            None => sys::signal::tkill(tid, sig),
        },
    }
}

/// rt_tgsigqueueinfo(2) with the program's siginfo (`info`: Err when it could not be read): a coroutine's
/// tid gets the signal with that siginfo ([`queue`]); a tid the kernel knows is None (the kernel's call).
/// The kernel's checks, in its order: ids, the copy, a siginfo that pretends to come from the kernel or
/// from tgkill sent to another thread (EPERM), the thread (ESRCH), the signal number.
pub fn tgsigqueueinfo(
    tgid: i32,
    tid: i32,
    sig: i32,
    info: Result<libc::siginfo_t, Errno>,
) -> Option<Result<(), Errno>> {
    let named = thread::named_by_tid(tid);
    if matches!(named, thread::Named::Kernel) && tid > 0 {
        return None;
    }
    if tid <= 0 || tgid <= 0 {
        return Some(Err(Errno(libc::EINVAL)));
    }
    let mut info = match info {
        Ok(i) => i,
        Err(e) => return Some(Err(e)),
    };
    info.si_signo = sig;
    let caller = worker::current_worker().and_then(|w| w.task_in_context()).map_or_else(sys::gettid, |t| t.tid.get());
    if (info.si_code >= 0 || info.si_code == libc::SI_TKILL) && caller != tid {
        return Some(Err(Errno(libc::EPERM)));
    }
    Some(match named {
        thread::Named::Thread(task) if tgid == sys::getpid() => {
            if !(0..NSIG as i32).contains(&sig) {
                return Some(Err(Errno(libc::EINVAL)));
            }
            match queue(task, sig, &info) {
                0 => Ok(()),
                e => Err(Errno(e)),
            }
        }
        _ => Err(Errno(libc::ESRCH)),
    })
}

/// A signal sent through a coroutine's thread pidfd (`thread_pidfd::send_signal` checked it): to the
/// thread as pthread_kill or pthread_sigqueue send it, or to the process as kill or sigqueue.
pub fn through_thread_pidfd(d: crate::runtime::thread_pidfd::Delivery, sig: i32) -> Result<(), Errno> {
    let pid = sys::getpid();
    match (d.tid, d.info) {
        (Some(tid), None) => tgkill(Some(pid), tid, sig),
        (Some(tid), Some(i)) => tgsigqueueinfo(pid, tid, sig, Ok(i)).unwrap_or(Err(Errno(libc::ESRCH))),
        (None, None) => sys::signal::kill(pid, sig),
        (None, Some(i)) => sys::signal::sigqueueinfo(pid, sig, &i),
    }
}

/// The process id a kill-style call (kill, sigqueue, rt_sigqueueinfo) aimed at `pid` reaches: a live coroutine's tid names
/// its process, as a thread's tid does for the kernel; an ended one's names nothing (kept: the kernel
/// then says ESRCH); any other id is the kernel's.
pub fn process_of_tid(pid: i32) -> i32 {
    // No lookup (and no lock: kill is async-signal-safe) for an id no coroutine can have.
    if pid <= 0 || !crate::runtime::identity::is_coroutine_tid(pid) {
        return pid;
    }
    match thread::named_by_tid(pid) {
        thread::Named::Thread(_) => sys::getpid(),
        _ => pid,
    }
}

/// raise(3): in a coroutine, pthread_kill of itself ([`kill`]; glibc's own would signal the worker's OS
/// thread); elsewhere the kernel's tgkill of the calling thread, as glibc's raise does. Returns an errno
/// (0: sent).
pub fn raise(sig: i32) -> i32 {
    match worker::current_task() {
        Some(me) => kill(me, sig),
        None => match sys::signal::tgkill(sys::getpid(), sys::gettid(), sig) {
            Ok(()) => 0,
            Err(e) => e.0,
        },
    }
}

/// A signal for `target` that its mask lets through (or that its sigwait waits for): if it is parked, it
/// is woken so its handler runs now, in it (see `park::interrupt`); the call it waits in then ends with
/// EINTR or goes on, as natively.
fn interrupt(target: TaskRef, sig: i32) {
    park::interrupt(target, park::Interruption::Signal(sig));
    // Waiting in the kernel on its worker: the call moves to a helper thread, where the signal ends it.
    crate::runtime::worker_call::abort(target);
}

/// How readily a thread can take a signal now: waiting in a call the signal ends (0), running (1),
/// queued (2), parked where a signal does not end the wait (3); None if it does not accept the signal.
/// Async-signal-safe (atomics only).
fn signal_rank(t: &TaskRef, b: u64) -> Option<u8> {
    let waited_for = t.signals.waited_for.load(Ordering::Acquire) & b != 0;
    if !waited_for && t.signals.delivery_mask.load(Ordering::Acquire) & b != 0 {
        return None;
    }
    if waited_for || park::in_wait_a_signal_ends(t) {
        return Some(0);
    }
    Some(match t.state.load(Ordering::Acquire) as u32 & 0xff {
        crate::runtime::task::RUNNING => 1,
        crate::runtime::task::RUNNABLE | crate::runtime::task::NOTIFIED => 2,
        _ => 3,
    })
}

/// Routes one held instance of a process-directed signal as the kernel picks a thread: one that does not
/// block it and has it not pending yet (the kernel's `wants_signal`: a second instance goes to another
/// sigwait caller rather than queue behind the first), the main thread first, then one waiting in a call
/// the signal ends, then a running one, then a queued one, then one parked where a signal does not end the
/// wait; failing those, one that has it pending already, in the same order. The signal stays held when no
/// thread accepts it (false). A thread that waits is woken (EINTR, or its sigwait returns); one that runs
/// gets it on its worker now; one that is queued gets it when it resumes; one parked in a join, a mutex or
/// a condition variable is woken too, runs the handler on its own stack and goes on waiting (see
/// `park::interrupt`); one that waits for a helper thread's call runs the handler in its context now (see
/// [`run_in_parked`]). The instance's siginfo goes with it (to the thread's queue, see `queued`).
pub fn route_process_signal(sig: i32) -> bool {
    let b = bit(sig);
    let best = thread::registry().with_registered(|reg| {
        let mut best: Option<(u8, TaskRef)> = None;
        for t in reg {
            let Some(rank) = signal_rank(t, b) else { continue };
            let order = if t.signals.pending.load(Ordering::Acquire) & b != 0 { rank + 4 } else { rank };
            if t.is_main && order < 4 {
                return Some((order, *t));
            }
            if best.is_none_or(|(r, _)| order < r) {
                best = Some((order, *t));
            }
        }
        best
    });
    let Some((order, target)) = best else { return false };
    // The instance goes to the thread's queue and pending set; it takes them all in order, lowest first.
    let instance = held::take_one(sig, Some(&target.signals as *const _ as usize));
    let given = instance.is_some();
    if matches!(instance, Some(Instance::Bare)) && queued::queues_each(sig) {
        target.signals.bare.fetch_or(b, Ordering::AcqRel);
    }
    if given {
        held::mark_routed(&target.signals, sig);
    }
    // The target ended meanwhile (its end gives back only what reached it before): back to the process.
    if given && target.signals.delivery_mask.load(Ordering::Acquire) == u64::MAX {
        held::give_back(&target.signals, b);
    }
    settle_held(sig);
    if !given {
        return false;
    }
    match order {
        // Running: its worker has its mask in the kernel, so a doorbell delivered there makes it take them
        // now (if it switched out meanwhile, it takes them when it resumes).
        1 | 5 => ring_doorbell(target, sig),
        // Parked where a signal does not end the wait: the handlers run in it now.
        // One waiting for the disk takes them as that wait ends (the `_` arm: pending, no park to end).
        3 | 7 if !park::interruptible(&target) && !park::handlers_after_wait(&target) && run_in_parked(target) => {}
        _ => interrupt(target, sig),
    }
    true
}

/// Tells the worker running `target` (running when looked at) to deliver its pending signals there: a
/// tgkill of `sig`, which its mask lets through, counted so that the wrapper knows it for a doorbell
/// ([`doorbell_rang`]) rather than a signal of its own.
fn ring_doorbell(target: TaskRef, sig: i32) {
    let w = &scheduler::get().workers[target.last_worker.load(Ordering::Acquire)];
    w.doorbells.fetch_add(1, Ordering::AcqRel);
    // To one of our own threads.
    if sys::signal::tgkill(sys::getpid(), w.os_tid.load(Ordering::Relaxed), sig).is_err() {
        w.doorbells.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Whether a signal the kernel delivered on worker `w` is a doorbell ([`ring_doorbell`]): a tgkill from
/// this process while one is outstanding. A tgkill of the program's own that arrives first is taken for
/// it, and the doorbell then for the program's: both carry the same siginfo, so nothing is lost.
fn doorbell_rang(w: &worker::Worker, info: &libc::siginfo_t) -> bool {
    // SAFETY: si_pid is valid for SI_TKILL.
    info.si_code == libc::SI_TKILL
        && unsafe { info.si_pid() } == sys::getpid()
        && w.doorbells.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1)).is_ok()
}

/// Delivers the signals pending for the coroutine in whose context a signal handler on worker `w` runs
/// (a doorbell, or a newer signal that must not overtake them), in the kernel's order, each as a directed
/// delivery nested here. The worker's mask cell holds the handler's mask meanwhile, so that the task's
/// own is put in force for them and the handler's back after.
fn deliver_pending_in_handler(w: &worker::Worker, task: TaskRef) {
    let deliverable = task.signals.pending.load(Ordering::Acquire) & !task.signals.resume_mask();
    if deliverable == 0 {
        return;
    }
    let (saved, directed) = (w.kernel_mask(), w.directed_delivery.get());
    w.mask_changed(sys::sigmask(None));
    worker::deliver_pending(&task);
    w.mask_changed(saved);
    // A redelivery this one interrupted goes on as one.
    w.directed_delivery.set(directed);
}

/// Takes one held instance of `sig` out ([`held::take_one`]), waking a worker to route those left.
pub(super) fn take_held(sig: i32) -> Option<Instance> {
    let got = held::take_one(sig, None);
    settle_held(sig);
    got
}

/// [`held::settle`], waking a worker to route the instances left.
fn settle_held(sig: i32) {
    held::settle(sig);
    if held::routing_needed() && lifecycle::running() {
        scheduler::get().wake_sleeper();
    }
}

/// Runs the handlers of the signals pending for `task` now in its context (it is parked where a signal
/// does not end the wait: a join, a mutex, a condition variable), as the kernel runs them in a thread
/// sleeping there: the worker claims the parked coroutine, raises them on itself, lowest first, with the
/// task's TCB in FS and the task's mask in force, and puts the task back (queueing it if a waker came
/// meanwhile). False if the task is not parked now (it is about to run and takes them then).
pub fn run_in_parked(task: TaskRef) -> bool {
    let Some(w) = worker::current_worker() else { return false };
    if w.task_in_context().is_some() || !task.claim_parked() {
        return false;
    }
    w.in_context_of(task, || {
        let mask = task.signals.delivery_mask.load(Ordering::Acquire);
        let bits = task.signals.take_unblocked(mask);
        if bits != 0 {
            w.raise_directed(&task.signals, bits, mask);
        }
    });
    if task.finish_park() {
        scheduler::get().push(task);
    }
    true
}
