//! POSIX timers on a coroutine's CPU-time clock (`timer_create` on CLOCK_THREAD_CPUTIME_ID or a
//! `pthread_getcpuclockid` clock). The kernel's CPU timers count an OS thread's time, and a coroutine's
//! fake tid is no kernel thread, so these timers are the runtime's: each expires when the thread's own
//! CPU time (see the parent module) reaches its value, as the kernel's does.
//!
//! **When expiry is seen.** A thread's CPU time grows only while it runs, so a timer can expire only during
//! a run: it is looked at when the thread switches out (its charged time is exact then; one load when no
//! timer is armed) and by the monitor while the thread runs (at its next look, which comes no later than
//! the CPU time left, as CPU time grows no faster than wall time). The kernel looks at CPU timers once a
//! tick (1 to 10 ms); the monitor looks at least as often while a worker is busy. With preemption and the
//! stall monitor both off there is no monitor, and timers expire at the thread's switches only.
//!
//! **Notification, as the kernel's.** SIGEV_SIGNAL sends the signal to the process and SIGEV_THREAD_ID
//! to the thread named (a coroutine gets it as from `pthread_sigqueue`, promptly when it computes: a
//! signal pending for a running coroutine asks for its preemption), each with si_code SI_TIMER, the timer
//! id, the overrun and the value; SIGEV_THREAD starts a detached thread running the function with the
//! value (all signals unblocked, as glibc's helper does), with the attributes given at creation;
//! SIGEV_NONE only counts down. A periodic timer seen late counts the periods missed as its overrun.
//!
//! **Ids.** Kernel timer ids are non-negative ints and glibc's SIGEV_THREAD ids are pointers with the top
//! bit set; these are -1, -2, ... (as a timer_t and as the kernel's int id), which neither can be, so
//! every timer call can tell them apart. A forked child has none of them, as it has no timers.

use super::super::lock::Lock;
use super::super::sys::syscall::Errno;
use super::super::sys::{self, signal as sig_sys};
use super::super::task::{Life, TaskRef};
use super::super::thread::{self, Named};
use std::sync::OnceLock;

/// How a timer tells of its expiry.
pub enum Notify {
    None,
    /// To the process.
    Signal {
        sig: i32,
        value: usize,
    },
    /// To thread `tid` (a coroutine's or an OS thread's).
    ThreadId {
        tid: i32,
        sig: i32,
        value: usize,
    },
    /// A new detached thread runs `func(value)` with the attributes `attr` (a copy of the program's).
    Thread {
        func: extern "C" fn(usize),
        value: usize,
        attr: Option<Box<libc::pthread_attr_t>>,
    },
}

// SAFETY: the attribute copy is plain data owned by the timer, used only under the table's lock.
unsafe impl Send for Notify {}

struct CpuTimer {
    /// The process that created it (a forked child's copy of the table is not its own).
    pid: i32,
    /// The thread whose clock it runs on, its tid (to tell a reused record), and the clock's kind.
    task: TaskRef,
    tid: i32,
    which: i32,
    notify: Notify,
    /// Expiry, in the clock's ns (0: disarmed), and the period (0: one-shot).
    due: u64,
    interval: u64,
    /// Periods missed when it last expired (timer_getoverrun).
    overrun: i32,
}

// SAFETY: a TaskRef names a task record, which lives for the process; used only under the table's lock.
unsafe impl Send for CpuTimer {}

/// At most this many at once (the kernel's limit is RLIMIT_SIGPENDING-like; this one is EAGAIN).
const MAX_TIMERS: usize = 1 << 16;

static TIMERS: Lock<Vec<Option<CpuTimer>>> = Lock::new(Vec::new());

/// The id of slot `i`.
fn id_of(i: usize) -> i32 {
    -(i as i32) - 1
}

/// Whether `id` (a timer_t's value) is one of these timers' ids.
pub fn is_ours(id: i64) -> bool {
    (-(MAX_TIMERS as i64)..=-1).contains(&id)
}

fn slot_of(id: i64) -> Option<usize> {
    is_ours(id).then(|| (-id - 1) as usize)
}

/// Whether the timer's thread still runs.
fn alive(t: &CpuTimer) -> bool {
    t.task.tid.get() == t.tid && t.task.join.lock().life == Life::Running
}

/// The kernel's check of a notification's signal (1 to SIGRTMAX).
pub fn valid_signal(sig: i32) -> bool {
    (1..=64).contains(&sig)
}

/// Creates a timer on the clock of kind `which` of thread `task`, notifying as `notify(id)` says (a
/// timer made without a sigevent sends SIGALRM with its own id as the value). Returns its id.
pub fn create(task: TaskRef, which: i32, notify: impl FnOnce(i32) -> Notify) -> Result<i32, Errno> {
    let _ = super::super::lazy::get_or_init(&CHECK_SEAM, || {
        super::super::worker::set_cpu_timer_check(check);
    });
    let pid = sys::getpid();
    let mut table = TIMERS.lock();
    let free = table.iter().position(|s| s.as_ref().is_none_or(|t| t.pid != pid));
    let i = match free {
        Some(i) => i,
        None if table.len() < MAX_TIMERS => {
            table.push(None);
            table.len() - 1
        }
        None => return Err(Errno(libc::EAGAIN)),
    };
    let notify = notify(id_of(i));
    if let Notify::ThreadId { tid, .. } = notify {
        // The kernel's good_sigevent: a thread of this process.
        let ours = tid > 0
            && match thread::named_by_tid(tid) {
                Named::Thread(_) => true,
                Named::Gone => false,
                Named::Kernel => std::path::Path::new(&format!("/proc/self/task/{tid}")).exists(),
            };
        if !ours {
            return Err(Errno(libc::EINVAL));
        }
    }
    table[i] = Some(CpuTimer { pid, task, tid: task.tid.get(), which, notify, due: 0, interval: 0, overrun: 0 });
    Ok(id_of(i))
}

static CHECK_SEAM: OnceLock<()> = OnceLock::new();

/// Runs `f` on timer `id` of this process (EINVAL: no such timer, as the kernel's).
fn with<R>(id: i64, f: impl FnOnce(&mut CpuTimer) -> Result<R, Errno>) -> Result<R, Errno> {
    let mut table = TIMERS.lock();
    let pid = sys::getpid();
    match slot_of(id).and_then(|i| table.get_mut(i)).and_then(|s| s.as_mut()) {
        Some(t) if t.pid == pid => f(t),
        _ => Err(Errno(libc::EINVAL)),
    }
}

/// The timer's clock now.
fn now_of(t: &CpuTimer) -> u64 {
    super::clock_ns(&t.task, t.which)
}

/// (value left, interval) as timer_gettime reports them at clock value `now`: an expiry not yet acted on
/// is 1 ns away; a SIGEV_NONE timer, which nothing acts on, moves to its next period when it has one and
/// is disarmed when it has not.
fn current(t: &mut CpuTimer, now: u64) -> (u64, u64) {
    if t.due == 0 {
        return (0, t.interval);
    }
    if matches!(t.notify, Notify::None) && now >= t.due {
        if t.interval == 0 {
            t.due = 0;
            return (0, 0);
        }
        let periods = (now - t.due) / t.interval + 1;
        t.due += periods * t.interval;
    }
    (if now < t.due { t.due - now } else { 1 }, t.interval)
}

/// timer_settime: arms (`value` ns, relative or `absolute`; 0 disarms) with period `interval`. Returns
/// the previous setting as timer_gettime would have given it. ESRCH once the thread ended.
pub fn settime(id: i64, absolute: bool, value: u64, interval: u64) -> Result<(u64, u64), Errno> {
    let (old, task, fire_now) = with(id, |t| {
        if !alive(t) {
            return Err(Errno(libc::ESRCH));
        }
        let now = now_of(t);
        let old = current(t, now);
        t.interval = interval;
        t.overrun = 0;
        t.due = match (value, absolute) {
            (0, _) => 0,
            (v, true) => v,
            (v, false) => now.saturating_add(v),
        };
        // An absolute value already passed expires at once (not a SIGEV_NONE timer, which nothing acts on).
        let fire_now = t.due != 0 && t.due <= now && !matches!(t.notify, Notify::None);
        Ok((old, t.task, fire_now))
    })?;
    refresh(task);
    if fire_now {
        fire_due(task);
    } else if value != 0 {
        super::super::monitor::wake::ensure_started();
    }
    Ok(old)
}

/// timer_gettime: (value left, interval); zero once the thread ended.
pub fn gettime(id: i64) -> Result<(u64, u64), Errno> {
    with(id, |t| {
        if !alive(t) {
            return Ok((0, t.interval));
        }
        let now = now_of(t);
        Ok(current(t, now))
    })
}

/// timer_getoverrun.
pub fn getoverrun(id: i64) -> Result<i32, Errno> {
    with(id, |t| Ok(t.overrun))
}

/// timer_delete.
pub fn delete(id: i64) -> Result<(), Errno> {
    let task = {
        let mut table = TIMERS.lock();
        let pid = sys::getpid();
        let Some(slot) = slot_of(id).and_then(|i| table.get_mut(i)) else { return Err(Errno(libc::EINVAL)) };
        match slot.take() {
            Some(t) if t.pid == pid => t.task,
            other => {
                *slot = other;
                return Err(Errno(libc::EINVAL));
            }
        }
    };
    refresh(task);
    Ok(())
}

/// Recomputes the earliest expiry the thread's account watches for: its armed timers that notify
/// (a kind-VIRT clock, user time only, is never ahead of the total the account compares with).
fn refresh(task: TaskRef) {
    let table = TIMERS.lock();
    let pid = sys::getpid();
    let at = table
        .iter()
        .flatten()
        .filter(|t| t.pid == pid && t.task == task && t.due != 0 && !matches!(t.notify, Notify::None))
        .map(|t| t.due)
        .min()
        .unwrap_or(u64::MAX);
    task.cpu.set_timer_at(at);
}

/// What one expiry sends, made after the table's lock is let go.
enum Fire {
    Process { sig: i32, info: libc::siginfo_t },
    To { tid: i32, sig: i32, info: libc::siginfo_t },
    Thread { func: extern "C" fn(usize), value: usize, attr: Option<libc::pthread_attr_t> },
}

/// Acts on the thread's timers that have expired; returns the CPU time (ns) until the next one may.
pub fn fire_due(task: TaskRef) -> Option<u64> {
    let mut fires = Vec::new();
    let mut next: Option<u64> = None;
    {
        let mut table = TIMERS.lock();
        let pid = sys::getpid();
        let mut now_by_kind = [None::<u64>; 4];
        for (i, slot) in table.iter_mut().enumerate() {
            let Some(t) = slot.as_mut() else { continue };
            if t.pid != pid || t.task != task || t.due == 0 || matches!(t.notify, Notify::None) {
                continue;
            }
            let kind = (t.which & 3) as usize;
            let now = *now_by_kind[kind].get_or_insert_with(|| super::clock_ns(&task, t.which));
            if now < t.due {
                next = Some(next.map_or(t.due - now, |n| n.min(t.due - now)));
                continue;
            }
            let missed = (now - t.due).checked_div(t.interval).unwrap_or(0);
            t.overrun = missed.min(i32::MAX as u64) as i32;
            if t.interval == 0 {
                t.due = 0;
            } else {
                t.due += (missed + 1) * t.interval;
                next = Some(next.map_or(t.due - now, |n| n.min(t.due - now)));
            }
            let id = id_of(i);
            fires.push(match &t.notify {
                Notify::Signal { sig, value } => {
                    Fire::Process { sig: *sig, info: sig_sys::siginfo(*sig, libc::SI_TIMER, id, t.overrun, *value) }
                }
                Notify::ThreadId { tid, sig, value } => Fire::To {
                    tid: *tid,
                    sig: *sig,
                    info: sig_sys::siginfo(*sig, libc::SI_TIMER, id, t.overrun, *value),
                },
                Notify::Thread { func, value, attr } => {
                    Fire::Thread { func: *func, value: *value, attr: attr.as_deref().copied() }
                }
                Notify::None => continue,
            });
        }
    }
    refresh(task);
    for f in fires {
        match f {
            // To our own process; SI_TIMER is a code any sender may use.
            Fire::Process { sig, info } => {
                let _ = sig_sys::sigqueueinfo(sys::getpid(), sig, &info);
            }
            Fire::To { tid, sig, info } => match thread::named_by_tid(tid) {
                Named::Thread(target) => {
                    let _ = super::super::signals::queue(target, sig, &info);
                }
                // To a thread of our own process.
                Named::Kernel => {
                    let _ = sig_sys::tgsigqueueinfo(sys::getpid(), tid, sig, &info);
                }
                Named::Gone => {}
            },
            Fire::Thread { func, value, attr } => start_notify_thread(func, value, attr),
        }
    }
    next
}

/// The worker's seam, at a switch-out of a thread with a timer armed (`switched_out`) or at the monitor's
/// look at a running one: its expired timers fire. Returns the CPU time (ns) until the next may expire,
/// which is also the wall time after which to look again at the earliest (CPU time grows no faster).
fn check(task: TaskRef, switched_out: bool) -> Option<u64> {
    if !task.cpu.timer_armed() || (switched_out && !task.cpu.timer_maybe_due()) {
        return None;
    }
    if task.join.lock().life != Life::Running {
        return None;
    }
    fire_due(task)
}

struct NotifyStart {
    func: extern "C" fn(usize),
    value: usize,
}

/// The body of a SIGEV_THREAD notification thread (started with no signal blocked, as glibc's helper
/// makes it): the program's function with the timer's value.
extern "C" fn notify_thread_main(arg: *mut libc::c_void) -> *mut libc::c_void {
    // SAFETY: `arg` is the box made by start_notify_thread, handed over to this thread.
    let start = unsafe { Box::from_raw(arg as *mut NotifyStart) };
    (start.func)(start.value);
    core::ptr::null_mut()
}

/// Starts a SIGEV_THREAD notification: a new detached thread (a coroutine) with the timer's attributes.
fn start_notify_thread(func: extern "C" fn(usize), value: usize, attr: Option<libc::pthread_attr_t>) {
    let arg = Box::into_raw(Box::new(NotifyStart { func, value })) as *mut libc::c_void;
    let attr_ptr = attr.as_ref().map_or(core::ptr::null(), |a| a as *const libc::pthread_attr_t);
    // SAFETY: `attr_ptr` is null or the copy of an initialised attribute object the program gave.
    let plan = unsafe { super::super::thread_attr::plan(attr_ptr, notify_thread_main, arg) };
    let spawn = match plan {
        super::super::thread_attr::Plan::Coroutine(s) => Some(s),
        // Attributes a coroutine cannot honour: the default ones (a notification thread is ours to make).
        super::super::thread_attr::Plan::RealThread => {
            // SAFETY: null attributes.
            match unsafe { super::super::thread_attr::plan(core::ptr::null(), notify_thread_main, arg) } {
                super::super::thread_attr::Plan::Coroutine(s) => Some(s),
                super::super::thread_attr::Plan::RealThread => None,
            }
        }
    };
    let started = spawn.is_some_and(|mut s| {
        s.detached = true;
        s.mask = Some(0);
        thread::spawn(s).is_ok()
    });
    if !started {
        // SAFETY: the thread did not start, so the box is still ours.
        drop(unsafe { Box::from_raw(arg as *mut NotifyStart) });
    }
}
