//! Signals. The program's handlers are installed behind a wrapper so that the runtime knows when one ran:
//! hooks called inside a handler pass through (a handler must never park). The program still sees its
//! own handlers, flags and masks.
//!
//! Masks, as the kernel applies them to threads, are applied here to coroutines. A worker running a
//! coroutine has that coroutine's mask in the kernel, so a signal the kernel gives it is one the coroutine
//! accepts, and its handler runs there. An idle worker blocks exactly the signals no live coroutine would
//! take (see [`delivery_mask_changed`]): those stay pending in the kernel, as when every thread blocks
//! them, until a coroutine unblocks one (its worker's mask then lets the kernel deliver it, in that
//! coroutine). A signal a worker takes in its own context is *held* and routed to a coroutine that
//! accepts it, the main thread first, as Linux does ([`route_held`]): its handler then runs in that
//! coroutine's context, and an interruptible wait it is in ends with EINTR.
//!
//! The runtime's own SIGSEGV handler runs on a per-worker alternate signal stack and does three jobs:
//! resumes a faulting [`sys::usercopy`] at its EFAULT fixup, reports a coroutine stack overflow clearly
//! (which thread, its stack size, how to raise it) before the process dies of SIGSEGV as natively, and
//! passes every other fault to the program's own SIGSEGV handler or the default action.

use super::lock::Lock;
use super::scheduler;
use super::sys::signal::{SIGCANCEL, SIGSETXID};
use super::sys::{self, mem, usercopy};
use super::worker;
use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};

const ALT_STACK_SIZE: usize = 64 << 10;
const NSIG: usize = 65;
/// Set by glibc on every handler it installs (x86-64), and reported back by the kernel.
const SA_RESTORER: i32 = 0x0400_0000;

/// The program's handler per signal as the kernel would call it (a function, SIG_DFL or SIG_IGN), and its
/// flags; read by the wrappers inside signal context, so atomics only.
static HANDLER: [AtomicUsize; NSIG] = [const { AtomicUsize::new(libc::SIG_DFL) }; NSIG];
static FLAGS: [AtomicI32; NSIG] = [const { AtomicI32::new(0) }; NSIG];
/// The program's last `struct sigaction` per signal when the kernel holds our wrapper instead, reported
/// back as the old action.
static PROGRAM_ACTIONS: Lock<[Option<SigAction>; NSIG]> = Lock::new([None; NSIG]);
/// Process-directed signals a worker took in its own context, not yet routed to a coroutine (bit n-1 for
/// signal n). They stay here while no coroutine accepts them, as a blocked signal stays pending.
static HELD: AtomicU64 = AtomicU64::new(0);
/// A signal was held since the last routing.
static ROUTE_NEEDED: AtomicBool = AtomicBool::new(false);
/// The siginfo a held signal came with, given to its handler when it is raised again in the coroutine
/// that takes it. `busy` guards the slot against two signal contexts (and a reader) at once.
struct InfoSlot {
    busy: AtomicBool,
    info: UnsafeCell<MaybeUninit<libc::siginfo_t>>,
}
// SAFETY: the slot's contents are only touched by whoever set `busy`.
unsafe impl Sync for InfoSlot {}
static INFO: [InfoSlot; NSIG] =
    [const { InfoSlot { busy: AtomicBool::new(false), info: UnsafeCell::new(MaybeUninit::uninit()) } }; NSIG];
/// Signals whose INFO slot holds the siginfo to raise them with.
static INFO_VALID: AtomicU64 = AtomicU64::new(0);
/// Signals some live coroutine would take now: the union of the complements of their delivery masks.
static ACCEPTED: AtomicU64 = AtomicU64::new(0);
/// Bumped after every change of ACCEPTED (under the MASKS lock): idle workers report which one their
/// kernel mask reflects (`Worker::idle_mask_generation`).
static ACCEPTED_GENERATION: AtomicU64 = AtomicU64::new(0);

/// The generation of the accepted set (read before computing an idle worker's mask from it).
pub fn accepted_generation() -> u64 {
    ACCEPTED_GENERATION.load(Ordering::SeqCst)
}
/// The delivery masks of live coroutines, with how many coroutines have each (few distinct values).
static MASKS: Lock<Vec<(u64, usize)>> = Lock::new(Vec::new());
/// ASYNCSHIM_STATS_SIGNAL: this signal asks for the statistics report (0: none). The runtime keeps its
/// wrapper installed for it whatever the program sets; the program's own handler still runs.
static REPORT_SIGNAL: AtomicI32 = AtomicI32::new(0);

#[derive(Clone, Copy)]
struct SigAction(libc::sigaction);
// SAFETY: plain data (a function address, flags, a mask).
unsafe impl Send for SigAction {}

fn kernel_sigaction(sig: i32, act: *const libc::sigaction, old: *mut libc::sigaction) -> Result<(), i32> {
    // SAFETY: the pointers are null or valid sigaction structs.
    match unsafe { crate::real::sigaction(sig, act, old) } {
        0 => Ok(()),
        // SAFETY: errno of the calling thread.
        _ => Err(unsafe { *libc::__errno_location() }),
    }
}

/// Takes `sig` as the statistics report signal: the wrapper is installed for it now (the program's action,
/// read back unchanged, still runs when it is a function; the default action becomes "write the report").
pub fn set_report_signal(sig: i32) {
    let idx = sig as usize;
    let mut actions = PROGRAM_ACTIONS.lock();
    // SAFETY: zeroed sigactions are valid buffers; the wrapper is async-signal-safe.
    unsafe {
        let mut old: libc::sigaction = core::mem::zeroed();
        if kernel_sigaction(sig, core::ptr::null(), &mut old).is_err() {
            return;
        }
        let mut k = old;
        if old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN {
            HANDLER[idx].store(old.sa_sigaction, Ordering::Release);
            FLAGS[idx].store(old.sa_flags, Ordering::Release);
        }
        k.sa_sigaction = program_handler as *const () as usize;
        k.sa_flags |= libc::SA_SIGINFO | libc::SA_RESTART;
        REPORT_SIGNAL.store(sig, Ordering::Release);
        if kernel_sigaction(sig, &k, core::ptr::null_mut()).is_ok() && actions[idx].is_none() {
            actions[idx] = Some(SigAction(old));
        }
    }
}

/// Installs the SIGSEGV handler once, process-wide, remembering what was there.
pub fn install() {
    // SAFETY: a zeroed sigaction is a valid starting point; the handler is async-signal-safe (raw syscalls,
    // no allocation, no locks).
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = on_fault as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
        libc::sigemptyset(&mut sa.sa_mask);
        let mut old: libc::sigaction = core::mem::zeroed();
        if kernel_sigaction(libc::SIGSEGV, &sa, &mut old).is_ok() {
            HANDLER[libc::SIGSEGV as usize].store(old.sa_sigaction, Ordering::Relaxed);
            FLAGS[libc::SIGSEGV as usize].store(old.sa_flags, Ordering::Relaxed);
            PROGRAM_ACTIONS.lock()[libc::SIGSEGV as usize] = Some(SigAction(old));
        }
    }
}

/// sigaction(2) as the program sees it. Function handlers are installed behind [`program_handler`]
/// (SIGSEGV behind the fault handler); SIG_DFL and SIG_IGN go to the kernel as they are.
pub fn program_sigaction(
    sig: i32,
    act: Option<&libc::sigaction>,
    old: Option<&mut libc::sigaction>,
) -> Result<(), i32> {
    let idx = sig as usize;
    let mut actions = PROGRAM_ACTIONS.lock();
    // SAFETY: all-zero is a valid sigaction.
    let mut kernel_old: libc::sigaction = unsafe { core::mem::zeroed() };
    match act {
        Some(a) => {
            let is_fn = a.sa_sigaction != libc::SIG_DFL && a.sa_sigaction != libc::SIG_IGN;
            let mut k = *a;
            let ours = if sig == libc::SIGSEGV {
                k.sa_sigaction = on_fault as *const () as usize;
                k.sa_flags |= libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
                k.sa_flags &= !libc::SA_RESETHAND;
                true
            } else if is_fn || sig == REPORT_SIGNAL.load(Ordering::Relaxed) {
                k.sa_sigaction = program_handler as *const () as usize;
                k.sa_flags |= libc::SA_SIGINFO;
                true
            } else {
                false
            };
            kernel_sigaction(sig, &k, &mut kernel_old)?;
            HANDLER[idx].store(a.sa_sigaction, Ordering::Release);
            FLAGS[idx].store(a.sa_flags, Ordering::Release);
            // What the program would read back natively: its handler and flags, plus what the kernel and
            // glibc add (SA_RESTORER, the restorer, the mask without SIGKILL/SIGSTOP).
            let mut seen = *a;
            // SAFETY: all-zero is a valid sigaction.
            let mut kv: libc::sigaction = unsafe { core::mem::zeroed() };
            if kernel_sigaction(sig, core::ptr::null(), &mut kv).is_ok() {
                seen.sa_flags = a.sa_flags | (kv.sa_flags & SA_RESTORER);
                seen.sa_restorer = kv.sa_restorer;
                seen.sa_mask = kv.sa_mask;
            }
            let prev = core::mem::replace(&mut actions[idx], if ours { Some(SigAction(seen)) } else { None });
            if let Some(o) = old {
                *o = prev.map(|p| p.0).unwrap_or(kernel_old);
                fix_reset(idx, o);
            }
            // A signal every thread blocks now acts by default: idle workers that were not woken when it
            // left the accepted set (it had a handler then) must block it before this returns.
            if a.sa_sigaction == libc::SIG_DFL
                && ACCEPTED.load(Ordering::SeqCst) & bit(sig) == 0
                && DEFAULT_IGNORED & bit(sig) == 0
                && super::lifecycle::running()
            {
                drop(actions);
                wake_all_sleepers();
                settle_idle_workers(accepted_generation());
            }
        }
        None => {
            kernel_sigaction(sig, core::ptr::null(), &mut kernel_old)?;
            if let Some(o) = old {
                *o = actions[idx].map(|p| p.0).unwrap_or(kernel_old);
                fix_reset(idx, o);
            }
        }
    }
    Ok(())
}

/// A handler with SA_RESETHAND that already ran reads as SIG_DFL.
fn fix_reset(idx: usize, o: &mut libc::sigaction) {
    if o.sa_flags & libc::SA_RESETHAND != 0 && HANDLER[idx].load(Ordering::Acquire) == libc::SIG_DFL {
        o.sa_sigaction = libc::SIG_DFL;
    }
}

/// Calls the program's handler for `sig` with the arguments its flags ask for.
unsafe fn call_program_handler(sig: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) -> bool {
    let idx = sig as usize;
    let h = HANDLER[idx].load(Ordering::Acquire);
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        return false;
    }
    let flags = FLAGS[idx].load(Ordering::Acquire);
    if flags & libc::SA_RESETHAND != 0 {
        HANDLER[idx].store(libc::SIG_DFL, Ordering::Release);
    }
    // SAFETY: the program installed this function with these flags.
    unsafe { call_handler(h, flags, sig, info, ctx) }
    true
}

/// The kernel-side handler for every signal the program handles. On a worker running a coroutine (whose
/// mask the kernel just applied) the program's handler runs at once, in that coroutine; in a worker's own
/// context the signal is held and routed to a coroutine (faults excepted: they belong to the code that
/// raised them).
extern "C" fn program_handler(sig: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: errno is saved and restored around our own work, as a handler must.
    let saved_errno = unsafe { *libc::__errno_location() };
    let w = worker::current_worker();
    let redelivery = w.is_some_and(|w| w.directed_delivery.get());
    if sig == REPORT_SIGNAL.load(Ordering::Relaxed) && !redelivery {
        super::stats::REPORT_REQUESTED.store(true, Ordering::Release);
        super::monitor::wake::poke();
        if !is_function(HANDLER[sig as usize].load(Ordering::Acquire)) {
            // SAFETY: as below.
            unsafe { *libc::__errno_location() = saved_errno };
            return;
        }
    }
    if let Some(w) = w {
        // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
        let info_ref = unsafe { &*info };
        let hold_it = !redelivery
            && !is_fault(sig, info_ref)
            && match w.task_in_context() {
                None => true,
                // Linux gives a process-directed signal to the main thread when it accepts it.
                Some(t) => !t.is_main && !thread_directed(sig, info_ref) && main_takes(sig),
            };
        if hold_it {
            hold(sig, info_ref);
            // SAFETY: as below.
            unsafe { *libc::__errno_location() = saved_errno };
            return;
        }
        w.enter_handler();
    }
    // A redelivery's flag is down while the program's handler runs: it may leave by longjmp, and the
    // worker must not take its next signals for redeliveries.
    let directed = w.map(|w| w.directed_delivery.replace(false));
    // SAFETY: arguments as the kernel passed them.
    unsafe { call_program_handler(sig, info, ctx) };
    if let Some(w) = w {
        w.directed_delivery.set(directed.unwrap_or(false));
        w.leave_handler();
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved_errno };
}

fn is_function(h: usize) -> bool {
    h != libc::SIG_DFL && h != libc::SIG_IGN
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

pub const fn bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

/// The signals in a set, lowest first.
pub fn signals_in(mut set: u64) -> impl Iterator<Item = i32> {
    core::iter::from_fn(move || {
        (set != 0).then(|| {
            let sig = set.trailing_zeros() as i32 + 1;
            set &= set - 1;
            sig
        })
    })
}

/// Never blocked on a worker: faults (the kernel forces them through anyway, resetting the handler),
/// SIGKILL and SIGSTOP, and glibc's SIGCANCEL and SIGSETXID (its set*id calls signal every OS thread).
const NEVER_BLOCKED: u64 = bit(libc::SIGSEGV)
    | bit(libc::SIGBUS)
    | bit(libc::SIGFPE)
    | bit(libc::SIGILL)
    | bit(libc::SIGTRAP)
    | bit(libc::SIGSYS)
    | bit(libc::SIGKILL)
    | bit(libc::SIGSTOP)
    | bit(SIGCANCEL)
    | bit(SIGSETXID);

/// What a mask the program passes can block (SIGKILL, SIGSTOP and glibc's two are never blocked).
pub fn sanitize_mask(m: u64) -> u64 {
    m & !(bit(libc::SIGKILL) | bit(libc::SIGSTOP) | bit(SIGCANCEL) | bit(SIGSETXID))
}

/// Holds a process-directed signal a worker took in its own context and asks a worker to route it.
/// Async-signal-safe (atomics and a futex wake).
fn hold(sig: i32, info: &libc::siginfo_t) {
    let b = bit(sig);
    let slot = &INFO[sig as usize];
    // A standard signal already held merges with this one, as in the kernel's pending set.
    if HELD.load(Ordering::Acquire) & b == 0 && !slot.busy.swap(true, Ordering::Acquire) {
        // SAFETY: `busy` gives us the slot.
        unsafe { (*slot.info.get()).write(*info) };
        INFO_VALID.fetch_or(b, Ordering::AcqRel);
        slot.busy.store(false, Ordering::Release);
    }
    HELD.fetch_or(b, Ordering::AcqRel);
    ROUTE_NEEDED.store(true, Ordering::Release);
    if super::lifecycle::running() {
        scheduler::get().wake_sleeper();
    }
}

/// A held signal waits to be routed (checked by workers before they sleep).
pub fn routing_needed() -> bool {
    ROUTE_NEEDED.load(Ordering::Acquire)
}

/// Routes the held signals (from a worker's scheduling loop): each goes to a coroutine that accepts it
/// (see `thread::route_process_signal`); one that no coroutine accepts stays held.
pub fn route_held() {
    if !ROUTE_NEEDED.swap(false, Ordering::AcqRel) {
        return;
    }
    for sig in signals_in(HELD.load(Ordering::Acquire)) {
        super::thread::route_process_signal(sig);
    }
}

/// Takes `sig` out of the held set (true if this caller got it).
pub fn take_held(sig: i32) -> bool {
    HELD.fetch_and(!bit(sig), Ordering::AcqRel) & bit(sig) != 0
}

/// Moves the held signals in `accept` onto `task`'s pending set (it is about to take them itself).
pub fn claim_held(task: &super::task::Task, accept: u64) -> u64 {
    let mut got = 0;
    for sig in signals_in(HELD.load(Ordering::Acquire) & accept) {
        if take_held(sig) {
            got |= bit(sig);
        }
    }
    if got != 0 {
        task.pending_signals.fetch_or(got, Ordering::AcqRel);
    }
    got
}

/// The main thread's task, for routing (set once at start).
static MAIN_TASK: core::sync::atomic::AtomicPtr<super::task::Task> =
    core::sync::atomic::AtomicPtr::new(core::ptr::null_mut());

pub fn set_main_task(t: TaskRef) {
    MAIN_TASK.store(t.0.as_ptr(), Ordering::Release);
}

/// Whether the main thread accepts `sig`. Async-signal-safe.
fn main_takes(sig: i32) -> bool {
    core::ptr::NonNull::new(MAIN_TASK.load(Ordering::Acquire))
        .map(TaskRef)
        .and_then(|m| super::thread::signal_rank(&m, bit(sig)))
        .is_some()
}

/// The siginfo a held signal came with, if it is still recorded (it is given out once).
pub fn take_info(sig: i32) -> Option<libc::siginfo_t> {
    if INFO_VALID.fetch_and(!bit(sig), Ordering::AcqRel) & bit(sig) == 0 {
        return None;
    }
    let slot = &INFO[sig as usize];
    if slot.busy.swap(true, Ordering::Acquire) {
        return None;
    }
    // SAFETY: `busy` gives us the slot; INFO_VALID said it was written.
    let info = unsafe { (*slot.info.get()).assume_init() };
    slot.busy.store(false, Ordering::Release);
    Some(info)
}

/// Raises `sig` on the calling OS thread, with the siginfo it was held with when there is one (so the
/// handler sees the sender's si_code and pid), else as tgkill.
pub fn raise_here(sig: i32) {
    let (pid, tid) = (sys::getpid(), sys::gettid());
    // To the calling thread itself, which may pass any si_code.
    if let Some(info) = take_info(sig)
        && sys::signal::tgsigqueueinfo(pid, tid, sig, &info).is_ok()
    {
        return;
    }
    let _ = sys::signal::tgkill(pid, tid, sig);
}

/// Runs the handler of `sig` now in the context of `task`, which is parked where a signal does not end
/// the wait (a join, a mutex, a condition variable), as the kernel runs it in a thread sleeping there: the
/// worker claims the parked coroutine, raises the signal on itself with the task's TCB in FS and the
/// task's mask in force, and puts the task back (queueing it if a waker came meanwhile). False if the
/// task is not parked now (it is about to run and takes the signal then).
pub fn run_in_parked(task: TaskRef, sig: i32) -> bool {
    let Some(w) = worker::current_worker() else { return false };
    if w.task_in_context().is_some() || !task.claim_parked() {
        return false;
    }
    w.in_context_of(task, || {
        let before = w.kernel_mask();
        let mask = task.delivery_mask.load(Ordering::Acquire) & !bit(sig);
        w.set_kernel_mask(mask);
        w.directed_delivery.set(true);
        raise_here(sig);
        w.directed_delivery.set(false);
        w.set_kernel_mask(before);
    });
    if task.finish_park() {
        scheduler::get().push(task);
    }
    true
}

/// Signals with a program handler (installed behind the wrapper).
fn wrapped_signals() -> u64 {
    (1..NSIG as i32).filter(|&s| is_function(HANDLER[s as usize].load(Ordering::Relaxed))).fold(0, |a, s| a | bit(s))
}

/// A live coroutine's delivery mask changes from `old` to `new` (None: the coroutine starts or ends).
/// Keeps the set of signals some coroutine accepts, which idle workers let through. When it grows, an idle
/// worker is woken to let the new ones through (a signal only a parked coroutine takes must not wait in
/// the kernel); when signals without a handler leave it, every idle worker is woken to block them (their
/// default action must not happen while every thread blocks them).
pub fn delivery_mask_changed(old: Option<u64>, new: Option<u64>) {
    if let Some(generation) = accepted_set_changed(old, new) {
        settle_idle_workers(generation);
    }
}

/// [`delivery_mask_changed`] without waiting: for callers that must not switch (a coroutine starting or
/// ending inside the scheduler). Returns the generation idle workers must reach when signals whose
/// default action would act left the accepted set.
pub fn accepted_set_changed(old: Option<u64>, new: Option<u64>) -> Option<u64> {
    if old == new {
        return None;
    }
    let (before, after, generation) = {
        let mut masks = MASKS.lock();
        // The accepted set changes only when a mask value appears or disappears.
        let mut reshaped = false;
        if let Some(o) = old
            && let Some(i) = masks.iter().position(|e| e.0 == o)
        {
            masks[i].1 -= 1;
            if masks[i].1 == 0 {
                masks.swap_remove(i);
                reshaped = true;
            }
        }
        if let Some(n) = new {
            match masks.iter_mut().find(|e| e.0 == n) {
                Some(e) => e.1 += 1,
                None => {
                    masks.push((n, 1));
                    reshaped = true;
                }
            }
        }
        if !reshaped {
            return None;
        }
        let after = masks.iter().fold(0u64, |a, e| a | !e.0);
        let before = ACCEPTED.swap(after, Ordering::SeqCst);
        (before, after, ACCEPTED_GENERATION.fetch_add(1, Ordering::SeqCst) + 1)
    };
    if before == after || !super::lifecycle::running() {
        return None;
    }
    let sched = scheduler::get();
    if (before & !after) & !wrapped_signals() & !DEFAULT_IGNORED != 0 {
        wake_all_sleepers();
        return Some(generation);
    }
    if after & !before != 0 {
        sched.wake_sleeper();
    }
    None
}

/// Signals whose default action is to do nothing: a stale mask letting them through harms nobody.
const DEFAULT_IGNORED: u64 =
    (1 << (libc::SIGCHLD - 1)) | (1 << (libc::SIGCONT - 1)) | (1 << (libc::SIGURG - 1)) | (1 << (libc::SIGWINCH - 1));

fn wake_all_sleepers() {
    let sched = scheduler::get();
    sched.call_back_sitting_out();
    for _ in 0..sched.started() {
        if !sched.wake_sleeper() {
            break;
        }
    }
}

/// Waits until no idle worker still has a kernel mask older than `generation`: a signal every thread
/// now blocks, whose default action would end the process, must stay pending as natively, not land on
/// an idle worker that has not looked yet. The woken workers look within microseconds; the caller yields
/// meanwhile (a coroutine) or yields its CPU (a plain thread).
pub fn settle_idle_workers(generation: u64) {
    let sched = scheduler::get();
    for _ in 0..100_000 {
        let stale = sched.workers[..sched.started().min(sched.workers.len())].iter().any(|w| {
            let g = w.idle_mask_generation.load(Ordering::Acquire);
            g != worker::NOT_IDLE_MASK && g < generation
        });
        if !stale {
            return;
        }
        wake_all_sleepers();
        if worker::current_task().is_some() {
            super::park::yield_now();
        } else {
            sys::sched_yield();
        }
    }
}

/// The kernel mask of an idle worker: it blocks what no live coroutine accepts (except the statistics
/// report signal, which the runtime answers itself).
pub fn idle_worker_mask() -> u64 {
    let report = match REPORT_SIGNAL.load(Ordering::Relaxed) {
        0 => 0,
        s => bit(s),
    };
    !ACCEPTED.load(Ordering::SeqCst) & !NEVER_BLOCKED & !report
}

/// The mask runtime threads (workers before they start, the monitor, helpers) are created with.
pub fn runtime_thread_mask() -> u64 {
    !NEVER_BLOCKED
}

/// glibc's own SIGSETXID handler (its set*id calls signal every OS thread in glibc's thread list), which the runtime's [`on_setxid`] calls (0 until wrapped).
static GLIBC_SETXID_HANDLER: AtomicUsize = AtomicUsize::new(0);

use sys::signal::KernelSigaction;

fn kernel_rt_sigaction(sig: i32, act: Option<&KernelSigaction>, old: &mut KernelSigaction) -> bool {
    sys::signal::rt_sigaction(sig, act, Some(old)).is_ok()
}

/// Puts [`on_setxid`] in front of glibc's SIGSETXID handler (once glibc has installed it: at its first
/// thread from 2.34, when libpthread loads before). Called after the runtime creates an OS thread; cheap
/// when done already.
pub fn wrap_glibc_setxid() {
    if GLIBC_SETXID_HANDLER.load(Ordering::Acquire) != 0 {
        return;
    }
    let mut old = KernelSigaction { handler: 0, flags: 0, restorer: 0, mask: 0 };
    if !kernel_rt_sigaction(SIGSETXID, None, &mut old) || old.handler <= libc::SIG_IGN {
        return;
    }
    if GLIBC_SETXID_HANDLER.compare_exchange(0, old.handler, Ordering::AcqRel, Ordering::Acquire).is_err() {
        return;
    }
    // Every signal blocked while it runs: with another TCB in FS, no program handler may run meanwhile.
    let ours = KernelSigaction { handler: on_setxid as *const () as usize, mask: !0, ..old };
    let mut ignored = old;
    if !kernel_rt_sigaction(SIGSETXID, Some(&ours), &mut ignored) {
        GLIBC_SETXID_HANDLER.store(0, Ordering::Release);
    }
}

/// SIGSETXID on a worker: glibc's handler marks the thread done in THREAD_SELF, which must be the
/// descriptor glibc signalled this OS thread for (the worker's entry in its thread list), not the
/// coroutine whose TCB happens to be in FS; otherwise glibc signals this thread again for ever.
extern "C" fn on_setxid(sig: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    type Handler = extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void);
    let glibc = GLIBC_SETXID_HANDLER.load(Ordering::Acquire);
    if glibc <= libc::SIG_IGN {
        return;
    }
    // SAFETY: the address of glibc's SA_SIGINFO handler, read back from the kernel.
    let glibc: Handler = unsafe { core::mem::transmute::<usize, Handler>(glibc) };
    let fs = sys::fsgs::fs_base();
    match worker::glibc_tcb_of_this_worker() {
        Some(tcb) if tcb != fs => {
            // SAFETY: a live descriptor glibc knows for this OS thread; glibc's handler touches only its
            // setxid words, and FS is put back before anything else runs here (all signals blocked).
            unsafe { sys::fsgs::set_fs_base(tcb) };
            glibc(sig, info, ctx);
            // SAFETY: as above.
            unsafe { sys::fsgs::set_fs_base(fs) };
        }
        _ => glibc(sig, info, ctx),
    }
}

/// Gives the calling OS thread an alternate signal stack, so an overflowed coroutine stack can still be
/// reported. Called by every worker at start.
pub fn alt_stack_for_this_thread() {
    let Ok(mem) = mem::reserve(ALT_STACK_SIZE) else { return };
    let ss = libc::stack_t { ss_sp: mem as *mut libc::c_void, ss_flags: 0, ss_size: ALT_STACK_SIZE };
    // SAFETY: the memory stays mapped for the life of the thread (never unmapped).
    unsafe { libc::sigaltstack(&ss, core::ptr::null_mut()) };
}

extern "C" fn on_fault(sig: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo and ucontext to an SA_SIGINFO handler.
    unsafe {
        let uc = ctx as *mut libc::ucontext_t;
        let pc = (*uc).uc_mcontext.gregs[libc::REG_RIP as usize] as usize;
        if let Some(fixup) = usercopy::fixup_for(pc) {
            (*uc).uc_mcontext.gregs[libc::REG_RIP as usize] = fixup as i64;
            return;
        }
        let addr = (*info).si_addr() as usize;
        if let Some(task) = worker::current_task_any_context() {
            let stack = task.stack_bounds();
            if let Some((glow, glen)) = stack.guard {
                // A frame larger than the guard can skip it; treat faults just below the stack as overflow too.
                if addr >= glow.saturating_sub(glen) && addr < stack.low {
                    report_overflow(task.name_bytes(), stack.requested, stack.size);
                    let g = &(*uc).uc_mcontext.gregs;
                    let reg = |r: i32| g[r as usize] as usize;
                    super::unwind::fault::write_backtrace(super::unwind::Regs {
                        pc: reg(libc::REG_RIP),
                        sp: reg(libc::REG_RSP),
                        bp: reg(libc::REG_RBP),
                    });
                }
            }
        }
        // Not ours: the program's own SIGSEGV handler, or the default action (the fault happens again).
        if call_program_handler(sig, info, ctx) {
            return;
        }
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = libc::SIG_DFL;
        let _ = kernel_sigaction(sig, &sa, core::ptr::null_mut());
    }
}

/// Prints the overflow report; also used when a canary check finds an overflow that skipped the guard.
pub fn report_overflow(name: &[u8], requested: usize, usable: usize) {
    let mut buf = [0u8; 512];
    let mut w = Writer { buf: &mut buf, len: 0 };
    w.put(b"asyncshim: stack overflow in thread \"");
    w.put(name);
    w.put(b"\": its stack is ");
    w.num(requested);
    w.put(b" bytes (");
    w.num(usable);
    w.put(
        b" usable). Raise it with ASYNCSHIM_STACK_SIZE=<bytes> (default for every thread, K/M/G suffixes) \
or pthread_attr_setstacksize() in the program.\n",
    );
    let len = w.len;
    sys::write_stderr(&buf[..len]);
}

/// Allocation-free formatting for signal context.
struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn put(&mut self, s: &[u8]) {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
    }
    fn num(&mut self, mut v: usize) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.put(&digits[i..]);
    }
}

/// Whether the program's handler for `sig` asked for SA_RESTART.
pub fn restarts(sig: i32) -> bool {
    (1..NSIG as i32).contains(&sig) && FLAGS[sig as usize].load(Ordering::Relaxed) & libc::SA_RESTART != 0
}

/// What the kernel would do with a signal now.
pub enum Disposition {
    /// Default action that terminates, dumps core or stops the process.
    Default,
    Ignored,
    Handled,
}

pub fn disposition(sig: i32) -> Disposition {
    // SAFETY: a zeroed sigaction is a valid out-buffer.
    let mut old: libc::sigaction = unsafe { core::mem::zeroed() };
    if kernel_sigaction(sig, core::ptr::null(), &mut old).is_err() {
        return Disposition::Ignored;
    }
    match old.sa_sigaction {
        libc::SIG_IGN => Disposition::Ignored,
        libc::SIG_DFL if matches!(sig, libc::SIGCHLD | libc::SIGCONT | libc::SIGURG | libc::SIGWINCH) => {
            Disposition::Ignored
        }
        libc::SIG_DFL => Disposition::Default,
        _ => Disposition::Handled,
    }
}

/// Raises, on the current worker, the signals pthread_kill left pending on `task` (the running coroutine):
/// their handlers run in its context. They do not count as process signals for EINTR purposes: the
/// sender already interrupted the target's wait.
pub fn deliver_pending(task: &super::task::Task) -> bool {
    // A temporary mask in force (ppoll, pselect, sigsuspend) blocks what it blocks here too; what it lets
    // through beyond the normal mask is delivered by the waiting call itself, which then says EINTR.
    deliver_pending_unblocked(task, task.sigmask.get() | task.delivery_mask.load(Ordering::Acquire))
}

/// Raises the pending signals that `mask` does not block (the rest stay pending, as in the kernel), with
/// `mask` in force on the worker meanwhile (a pselect-style wait's temporary mask), so each handler runs
/// with the mask it would natively. Returns true if any was raised.
pub fn deliver_pending_unblocked(task: &super::task::Task, mask: u64) -> bool {
    let Some(w) = worker::current_worker() else { return false };
    let bits = task.pending_signals.fetch_and(mask, Ordering::AcqRel) & !mask;
    if bits == 0 {
        return false;
    }
    let before = w.kernel_mask();
    if before != mask {
        w.set_kernel_mask(mask);
    }
    for sig in signals_in(bits) {
        w.directed_delivery.set(true);
        raise_here(sig);
        w.directed_delivery.set(false);
    }
    if before != mask {
        w.set_kernel_mask(before);
    }
    true
}

/// A wait with a temporary signal mask (ppoll, pselect, epoll_pwait, sigsuspend) by the calling coroutine:
/// while it lasts, the mask decides which signals may be delivered to the thread, parked or not (routing
/// and pthread_kill look at it), as the kernel's atomic mask switch would. Ends when dropped.
pub struct TempMask {
    task: TaskRef,
    mask: u64,
}

impl TempMask {
    /// Starts one for the calling coroutine (None for other callers). Held process-directed signals the
    /// mask lets through become this thread's.
    pub fn begin(mask: u64) -> Option<TempMask> {
        let task = worker::current_task()?;
        let mask = sanitize_mask(mask);
        let old = task.delivery_mask.swap(mask, Ordering::AcqRel);
        delivery_mask_changed(Some(old), Some(mask));
        claim_held(&task, !mask);
        Some(TempMask { task, mask })
    }

    pub fn mask(&self) -> u64 {
        self.mask
    }

    /// Runs the handlers of the signals pending for this thread that the mask lets through, with the mask
    /// in force. True if any ran (the wait then ends with EINTR).
    pub fn deliver_pending(&self) -> bool {
        self.task.pending_signals.load(Ordering::Acquire) & !self.mask != 0
            && deliver_pending_unblocked(&self.task, self.mask)
    }
}

impl Drop for TempMask {
    fn drop(&mut self) {
        let normal = self.task.sigmask.get();
        let old = self.task.delivery_mask.swap(normal, Ordering::AcqRel);
        delivery_mask_changed(Some(old), Some(normal));
    }
}

use super::park::{OnSignal, Parking, Wait, WaitReason};
use super::task::{TaskRef, Wake};

/// The lowest signal pending for `task` (sent to it, or routed to it) that the mask deciding delivery now
/// lets through: it must not sleep through it. Async-signal-safe.
pub fn deliverable_pending(task: &super::task::Task) -> Option<i32> {
    let bits = task.pending_signals.load(Ordering::Acquire) & !task.delivery_mask.load(Ordering::Acquire);
    signals_in(bits).next()
}

/// A zero-timeout ppoll with no fds and `mask`: the kernel delivers the signals pending for this OS
/// thread (or the process) that the mask lets through, and says so with EINTR.
fn kernel_pending_let_through(mask: u64) -> bool {
    let ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: no fds, a local timeout and a local 8-byte mask.
    let r = unsafe { sys::poll::ppoll(core::ptr::null_mut(), 0, &ts, &mask as *const u64 as *const libc::sigset_t) };
    matches!(r, Err(sys::syscall::Errno(libc::EINTR)))
}

/// sigsuspend for a coroutine: parks with `mask` in force until a handler runs for a signal it lets
/// through (pending ones at once). Always ends with EINTR, as natively.
pub fn suspend(mask: u64) {
    let Some(temp) = TempMask::begin(mask) else { return };
    let me = temp.task;
    loop {
        if temp.deliver_pending() || kernel_pending_let_through(temp.mask) {
            return;
        }
        // A signal sent between the check above and the park finds it (or the park sees it pending).
        let wait = Wait::new(WaitReason::Sleep, 0, OnSignal::Fail);
        if Parking::begin(me, wait).sleep(|why| why) == Wake::Interrupted {
            // A signal the mask lets through came: those the thread's own mask allows already ran as the
            // coroutine resumed; the others run now, under the temporary mask.
            temp.deliver_pending();
            return;
        }
    }
}

/// sigwait/sigwaitinfo/sigtimedwait for a coroutine: takes a signal of `set` pending for this thread,
/// held by the runtime or pending in the kernel, filling `info`; else parks until one comes or `deadline`
/// (monotonic ns) passes. Signals the set holds that every worker blocks stay in the kernel, which does not
/// say when one arrives, so the park is a poll (0.1 to 10 ms apart); pthread_kill and routed signals end
/// it at once. Returns the signal, or EAGAIN (deadline) or EINTR (a handler for another signal ran).
pub fn wait_for(set: u64, info: &mut libc::siginfo_t, deadline: Option<u64>) -> Result<i32, i32> {
    let Some(me) = worker::current_task() else { return Err(libc::EINVAL) };
    let set = sanitize_mask(set);
    let mut pause = 100_000u64;
    loop {
        if let Some(sig) = take_waited(&me, set, info) {
            return Ok(sig);
        }
        let now = sys::time::monotonic_ns();
        if deadline.is_some_and(|d| d <= now) {
            return Err(libc::EAGAIN);
        }
        me.sigwait_set.store(set, Ordering::Release);
        let wake = super::park::sleep_until_interruptible(deadline.map_or(now + pause, |d| d.min(now + pause)));
        me.sigwait_set.store(0, Ordering::Release);
        if wake == Wake::Interrupted {
            if let Some(sig) = take_waited(&me, set, info) {
                return Ok(sig);
            }
            return Err(libc::EINTR);
        }
        pause = (pause * 2).min(10_000_000);
    }
}

/// One signal of `set` for the calling thread: sent to it, held, or pending in the kernel.
fn take_waited(me: &TaskRef, set: u64, info: &mut libc::siginfo_t) -> Option<i32> {
    let mine = me.pending_signals.load(Ordering::Acquire) & set;
    let held = HELD.load(Ordering::Acquire) & set;
    for sig in signals_in(mine | held) {
        let b = bit(sig);
        let got = (mine & b != 0 && me.pending_signals.fetch_and(!b, Ordering::AcqRel) & b != 0)
            || (held & b != 0 && take_held(sig));
        if got {
            *info = take_info(sig).unwrap_or_else(|| sent_by_this_process(sig));
            return Some(sig);
        }
    }
    let ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a local set, the caller's info buffer, a zero timeout.
    unsafe { sys::signal::timedwait(&set as *const u64 as *const libc::sigset_t, info, &ts) }.ok()
}

/// The siginfo of a signal pthread_kill sent within this process (SI_TKILL, our pid and uid).
fn sent_by_this_process(sig: i32) -> libc::siginfo_t {
    /// The kill fields of siginfo_t on Linux (after signo, errno, code and padding).
    #[repr(C)]
    struct KillInfo {
        signo: i32,
        errno: i32,
        code: i32,
        pad: i32,
        pid: i32,
        uid: u32,
    }
    // SAFETY: a zeroed siginfo is valid; KillInfo is a prefix of its layout.
    unsafe {
        let mut info: libc::siginfo_t = core::mem::zeroed();
        let k = &mut info as *mut libc::siginfo_t as *mut KillInfo;
        (*k).signo = sig;
        (*k).code = libc::SI_TKILL;
        (*k).pid = sys::getpid();
        (*k).uid = libc::getuid();
        info
    }
}

/// sigpending for a coroutine: what the kernel has for its worker and the process, plus the signals sent
/// to this thread or held by the runtime, among those its mask blocks.
pub fn pending_for(me: &TaskRef, kernel: u64) -> u64 {
    kernel | ((me.pending_signals.load(Ordering::Acquire) | HELD.load(Ordering::Acquire)) & me.sigmask.get())
}

/// Calls the signal handler `h` the way its `flags` say (SA_SIGINFO: with the siginfo and context).
///
/// # Safety
/// `h` is a handler function installed with `flags`; `info` and `ctx` are the signal's.
pub(crate) unsafe fn call_handler(h: usize, flags: i32, sig: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: per the contract, `h` has the signature its flags give it.
    unsafe {
        if flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void) = core::mem::transmute(h);
            f(sig, info, ctx);
        } else {
            let f: extern "C" fn(i32) = core::mem::transmute(h);
            f(sig);
        }
    }
}
