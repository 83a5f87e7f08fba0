//! Each thread's scheduling attributes — policy, real-time priority, nice value, the reset-on-fork flag
//! and CPU affinity — kept per coroutine, as the kernel keeps them per thread. A coroutine is no kernel
//! task: applying them to the worker that happens to run it would change every coroutine that worker
//! runs (and the kernel knows nothing of the fake tid glibc passes), so they are remembered and answered.
//!
//! **Every verdict is the kernel's.** Whether a change is allowed depends on things user space cannot all
//! see (privileges and capabilities, RLIMIT_RTPRIO and RLIMIT_NICE, the reset-on-fork rules, SCHED_IDLE's
//! way back, a cgroup without real-time runtime, the cpuset a mask must meet). So a change is tried on a
//! *probe*: a short-lived OS thread of the process, made from a worker (whose attributes are the
//! process's initial ones), which takes on the coroutine's current attributes, makes the very call the
//! program made on itself, and reads back what the kernel then holds. The answer (0, EPERM, EINVAL) and
//! the resulting attributes (with the kernel's own normalisation: an affinity mask limited to the allowed
//! CPUs, a nice value clamped to [-20, 19]) are the coroutine's. A change costs a thread creation (tens of
//! µs) and blocks the worker that long; reading costs nothing.
//!
//! A new thread inherits its creator's attributes, and the reset-on-fork rule applies as in `sched_fork`.

use super::sys::syscall::Errno;
use super::sys::{self, sched};
use super::task::TaskRef;
use std::ffi::c_void;
use std::sync::OnceLock;

pub mod state;

use state::State;
pub use state::{MASK_BYTES, SCHED_DEADLINE, Sched, TaskSched, Tpp};

/// What the calling OS thread has now, from the kernel.
fn of_this_os_thread() -> Option<Sched> {
    let a = sched::getattr().ok()?;
    let mut mask = [0u8; MASK_BYTES];
    // SAFETY: `mask` is writable for its length.
    let mask_len = unsafe { sched::getaffinity(mask.as_mut_ptr(), MASK_BYTES) }.ok()?;
    Some(Sched {
        policy: a.policy as i32,
        priority: a.priority as i32,
        nice: sched::getnice().unwrap_or(a.nice),
        reset_on_fork: a.flags & sched::FLAG_RESET_ON_FORK != 0,
        mask,
        mask_len,
        runtime: a.runtime,
        deadline: a.deadline,
        period: a.period,
        util: (a.util_min, a.util_max),
        other_flags: a.flags & !sched::FLAG_RESET_ON_FORK,
        ioprio: None,
    })
}

/// The process's initial attributes: those of every worker, which never change their own.
fn initial() -> Sched {
    static INITIAL: OnceLock<Sched> = OnceLock::new();
    *super::lazy::get_or_init(&INITIAL, || {
        of_this_os_thread().unwrap_or(Sched {
            policy: libc::SCHED_OTHER,
            priority: 0,
            nice: 0,
            reset_on_fork: false,
            mask: [0xff; MASK_BYTES],
            mask_len: MASK_BYTES,
            runtime: 0,
            deadline: 0,
            period: 0,
            util: (0, 1024),
            other_flags: 0,
            ioprio: None,
        })
    })
}

/// `task`'s attributes now.
pub fn get(task: &TaskRef) -> Sched {
    let kept = task.sched.0.lock().kernel;
    kept.unwrap_or_else(initial)
}

/// A new thread, made by `creator` (None: by a thread the runtime does not run), starts with its
/// creator's attributes.
pub fn thread_started(task: &TaskRef, creator: Option<TaskRef>) {
    let from = creator.and_then(|c| c.sched.0.lock().kernel);
    *task.sched.0.lock() =
        State { kernel: from.map(Sched::inherited), glibc_policy: None, glibc_priority: None, tpp: None };
}

/// glibc's record of the thread's policy and priority (what `pthread_getschedparam` answers), read
/// from the kernel's view the first time, as glibc does.
pub fn glibc_view(task: &TaskRef) -> (i32, i32) {
    let k = get(task);
    let mut s = task.sched.0.lock();
    let policy = *s.glibc_policy.get_or_insert(k.policy_with_flags());
    let priority = *s.glibc_priority.get_or_insert(k.priority);
    (policy, priority)
}

/// The thread's priority-protect bookkeeping (a fresh one the first time, as glibc allocates it).
pub fn tpp(task: &TaskRef) -> Tpp {
    task.sched.0.lock().tpp.unwrap_or_default()
}

pub fn set_tpp(task: &TaskRef, tpp: Tpp) {
    task.sched.0.lock().tpp = Some(tpp);
}

/// pthread_setschedparam (`policy` None: pthread_setschedprio): the kernel gets the priority raised to the
/// highest ceiling of the priority-protect mutexes the thread holds, glibc's record the one asked for.
pub fn pthread_set(task: &TaskRef, policy: Option<i32>, priority: i32) -> Result<(), Errno> {
    let boost = task.sched.0.lock().tpp.map_or(i32::MIN, |t| t.priomax());
    let kernel_priority = if boost > priority { boost } else { priority };
    match policy {
        Some(policy) => change(task, Change::Scheduler { policy, priority: kernel_priority })?,
        None => change(task, Change::Param { priority: kernel_priority })?,
    }
    let mut s = task.sched.0.lock();
    if policy.is_some() {
        s.glibc_policy = policy;
    }
    s.glibc_priority = Some(priority);
    Ok(())
}

/// A change the program asks for, made on itself by the probe as the program made it on the thread.
#[derive(Clone)]
pub enum Change {
    /// sched_setattr, with the program's bytes (as many as their size field says) and flags.
    Attr { bytes: Vec<u8>, flags: u32 },
    /// sched_setscheduler / pthread_setschedparam (the policy may carry SCHED_RESET_ON_FORK).
    Scheduler { policy: i32, priority: i32 },
    /// sched_setparam / pthread_setschedprio.
    Param { priority: i32 },
    /// setpriority(PRIO_PROCESS).
    Nice(i32),
    /// sched_setaffinity / pthread_setaffinity_np, with the program's mask (up to MASK_BYTES of it: the
    /// kernel reads no more than its own mask size, and a mask for more CPUs than exist adds nothing).
    Affinity { mask: [u8; MASK_BYTES], len: usize },
    /// ioprio_set(IOPRIO_WHO_PROCESS), with the program's value.
    IoPrio(i32),
}

fn fair(policy: i32) -> bool {
    matches!(policy, libc::SCHED_OTHER | libc::SCHED_BATCH | libc::SCHED_IDLE)
}

/// The changes whose verdict needs no probe, as the kernel's `__sched_setscheduler` and `set_one_prio`
/// judge them: invalid values (EINVAL comes before any permission check), and what anyone may do — raise
/// a nice value, move between the fair policies (not out of SCHED_IDLE, which RLIMIT_NICE governs) while
/// keeping the reset-on-fork flag. None: ask the kernel.
fn decided_here(start: &Sched, change: &Change) -> Option<Result<Sched, Errno>> {
    let (policy, priority, reset) = match *change {
        Change::Nice(nice) => {
            let nice = nice.clamp(-20, 19);
            return (nice >= start.nice).then_some(Ok(Sched { nice, ..*start }));
        }
        Change::Affinity { .. } | Change::Attr { .. } | Change::IoPrio(_) => return None,
        Change::Scheduler { policy, priority } => {
            (policy & !libc::SCHED_RESET_ON_FORK, priority, policy & libc::SCHED_RESET_ON_FORK != 0)
        }
        Change::Param { priority } => (start.policy, priority, start.reset_on_fork),
    };
    let rt = policy == libc::SCHED_FIFO || policy == libc::SCHED_RR;
    if !(fair(policy) || rt || policy == SCHED_DEADLINE) || !(0..=99).contains(&priority) {
        return Some(Err(Errno(libc::EINVAL)));
    }
    // A deadline policy needs parameters the legacy calls cannot give; a real-time one a priority, the
    // others none.
    if policy == SCHED_DEADLINE || rt != (priority != 0) {
        return Some(Err(Errno(libc::EINVAL)));
    }
    let keeps_reset = reset || !start.reset_on_fork;
    if fair(policy) && start.policy != libc::SCHED_IDLE && keeps_reset {
        return Some(Ok(Sched { policy, priority: 0, reset_on_fork: reset, ..*start }));
    }
    None
}

struct Job {
    start: Sched,
    change: Change,
    result: Result<(), Errno>,
    end: Option<Sched>,
}

/// Makes `change` to `task`'s attributes: the kernel's verdict (an errno) and, when allowed, the new
/// attributes kept.
pub fn change(task: &TaskRef, change: Change) -> Result<(), Errno> {
    change_giving_back(task, change).0
}

/// [`change`], giving the change back (a sched_setattr's bytes, into which the kernel may have written
/// the size it wants, with E2BIG).
pub fn change_giving_back(task: &TaskRef, change: Change) -> (Result<(), Errno>, Change) {
    let start = get(task);
    if let Some(verdict) = decided_here(&start, &change) {
        return match verdict {
            Ok(s) => {
                task.sched.0.lock().kernel = Some(s);
                (Ok(()), change)
            }
            Err(e) => (Err(e), change),
        };
    }
    let mut job = Job { start, change, result: Err(Errno(libc::EAGAIN)), end: None };
    // SAFETY: the job outlives the probe thread, which is joined before it is read.
    let Some(t) = (unsafe { super::os_thread::start_joinable(probe_main, &mut job as *mut Job as *mut c_void) }) else {
        return (Err(Errno(libc::EAGAIN)), job.change);
    };
    // SAFETY: `t` is the joinable thread just started; it returns after a handful of system calls.
    unsafe { crate::real::pthread_join(t, core::ptr::null_mut()) };
    if job.result.is_ok()
        && let Some(end) = job.end
    {
        task.sched.0.lock().kernel = Some(end);
    }
    (job.result, job.change)
}

/// The probe thread: take on the thread's attributes, make the change on itself, read back the result.
extern "C" fn probe_main(arg: *mut c_void) -> *mut c_void {
    // SAFETY: `arg` is the Job of `change`, which waits for this thread to end.
    let job = unsafe { &mut *(arg as *mut Job) };
    take_on(&job.start);
    let r = match &mut job.change {
        Change::Attr { bytes, flags } => sched::setattr_raw(bytes, *flags),
        Change::Scheduler { policy, priority } => sched::setscheduler(*policy, *priority),
        Change::Param { priority } => sched::setparam(*priority),
        Change::Nice(nice) => sched::setnice(*nice),
        Change::Affinity { mask, len } => sched::setaffinity(&mask[..*len]),
        Change::IoPrio(ioprio) => sched::ioprio_set_own(*ioprio),
    };
    job.result = r;
    if job.result.is_ok() {
        let ioprio = if let Change::IoPrio(p) = job.change { Some(p) } else { job.start.ioprio };
        job.end = of_this_os_thread().map(|s| Sched { ioprio, ..s });
    }
    core::ptr::null_mut()
}

/// Puts the thread's current attributes on the calling (probe, exec'ing or forked) thread, which has the
/// initial ones.
fn take_on(s: &Sched) {
    let init = initial();
    if s.policy != init.policy
        || s.priority != init.priority
        || s.nice != init.nice
        || s.reset_on_fork != init.reset_on_fork
        || (s.runtime, s.deadline, s.period) != (init.runtime, init.deadline, init.period)
    {
        let flags = if s.reset_on_fork { sched::FLAG_RESET_ON_FORK } else { 0 };
        // The nice value first, under a fair policy (a real-time policy keeps it but does not set it).
        let fair = sched::SchedAttr { policy: libc::SCHED_OTHER as u32, nice: s.nice, ..Default::default() };
        let _ = sched::setattr(&fair);
        let attr = sched::SchedAttr {
            policy: s.policy as u32,
            flags,
            nice: s.nice,
            priority: s.priority as u32,
            runtime: s.runtime,
            deadline: s.deadline,
            period: s.period,
            ..Default::default()
        };
        let _ = sched::setattr(&attr);
    }
    if s.mask[..s.mask_len] != init.mask[..init.mask_len] {
        let _ = sched::setaffinity(&s.mask[..s.mask_len]);
    }
    if let Some(ioprio) = s.ioprio {
        let _ = sched::ioprio_set_own(ioprio);
    }
}

/// ioprio_get(IOPRIO_WHO_PROCESS) of `task`: what the kernel reports for a thread with its attributes
/// (the I/O priority set, else one derived from its nice value and policy, by rules that changed between
/// kernel releases). A thread with the initial attributes has what the calling worker has; any other is
/// asked of a probe that takes them on.
pub fn ioprio_get(task: &TaskRef) -> Result<i32, Errno> {
    let Some(start) = task.sched.0.lock().kernel else { return sched::ioprio_get_own() };
    let mut job = IoprioJob { start, result: Err(Errno(libc::EAGAIN)) };
    // SAFETY: the job outlives the probe thread, which is joined before it is read.
    let Some(t) =
        (unsafe { super::os_thread::start_joinable(ioprio_probe, &mut job as *mut IoprioJob as *mut c_void) })
    else {
        return Err(Errno(libc::EAGAIN));
    };
    // SAFETY: `t` is the joinable thread just started; it returns after a handful of system calls.
    unsafe { crate::real::pthread_join(t, core::ptr::null_mut()) };
    job.result
}

struct IoprioJob {
    start: Sched,
    result: Result<i32, Errno>,
}

extern "C" fn ioprio_probe(arg: *mut c_void) -> *mut c_void {
    // SAFETY: `arg` is the IoprioJob of `ioprio_get`, which waits for this thread to end.
    let job = unsafe { &mut *(arg as *mut IoprioJob) };
    take_on(&job.start);
    job.result = sched::ioprio_get_own();
    core::ptr::null_mut()
}

/// What `sched_getaffinity` of `task` writes into a buffer of `len` bytes, and how many bytes: the
/// kernel's verdict on the size (a buffer for fewer CPUs than exist, or not a whole number of longs, is
/// EINVAL; asked of the calling OS thread, whose mask has the same size), then the thread's mask.
pub fn get_affinity(task: &TaskRef, buf: *mut u8, len: usize) -> Result<usize, Errno> {
    if len > MASK_BYTES {
        if !len.is_multiple_of(core::mem::size_of::<libc::c_ulong>()) {
            return Err(Errno(libc::EINVAL));
        }
    } else {
        let mut scratch = [0u8; MASK_BYTES];
        // SAFETY: `scratch` is writable for the length passed.
        unsafe { sched::getaffinity(scratch.as_mut_ptr(), len) }?;
    }
    let s = get(task);
    let n = s.mask_len.min(len);
    sys::usercopy::write_bytes(buf, &s.mask[..n])?;
    Ok(n)
}

/// Puts `task`'s attributes on the calling OS thread, which is about to become another program's (exec) or
/// a forked child's only thread (`forked`: the kernel's reset-on-fork rule applies first), as the kernel
/// would have kept or passed on the thread's own. Nothing to do for a thread that has the initial ones.
pub fn apply_here(task: &TaskRef, forked: bool) {
    let Some(s) = task.sched.0.lock().kernel else { return };
    let s = if forked { s.inherited() } else { s };
    take_on(&s);
}

/// After an exec that failed: the worker takes back the process's initial attributes (as far as the
/// kernel lets it: lowering is always allowed, raising may not be).
pub fn restore_here(task: &TaskRef) {
    if task.sched.0.lock().kernel.is_none() {
        return;
    }
    let init = initial();
    let fair = sched::SchedAttr {
        policy: init.policy as u32,
        nice: init.nice,
        priority: init.priority as u32,
        ..Default::default()
    };
    let _ = sched::setattr(&fair);
    let _ = sched::setaffinity(&init.mask[..init.mask_len]);
}
