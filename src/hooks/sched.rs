//! Calls that name a thread by its kernel tid or act on its scheduling: `gettid`, `tgkill`,
//! `pthread_gettid_np`, `sched_*`, `setpriority`/`getpriority`, `ioprio_set`/`ioprio_get`, `pidfd_open`
//! (and `pidfd_send_signal` through a coroutine's thread pidfd),
//! and the pthread scheduling and affinity functions. A coroutine's tid is its own (the fake one in its TCB, which no kernel task has), so each
//! call that names one is answered by the runtime: signals go where `pthread_kill` sends them, and the
//! scheduling attributes are the thread's own (see `runtime::sched_attr`). Everything else goes to libc.

use super::set_errno;
use crate::real;
use crate::runtime::sched_attr::{self, Change, MASK_BYTES};
use crate::runtime::sys::syscall::Errno;
use crate::runtime::task::TaskRef;
use crate::runtime::thread::{self, Named};
use crate::runtime::{self, sys::usercopy, worker};
use std::ffi::c_int;

/// An errno result as a libc wrapper returns it: -1 with errno set.
fn fail(e: Errno) -> c_int {
    set_errno(e.0);
    -1
}

fn known(t: libc::pthread_t) -> Option<TaskRef> {
    if !runtime::running() {
        return None;
    }
    crate::runtime::thread::registry().lookup(t)
}

/// The calling thread's tid: a coroutine's own (also in its signal handlers), else the kernel's.
pub fn gettid_here() -> libc::pid_t {
    match worker::current_worker().and_then(|w| w.task_in_context()) {
        Some(t) => t.tid.get(),
        None => runtime::sys::gettid(),
    }
}

/// # Safety
/// C contract of gettid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gettid() -> libc::pid_t {
    gettid_here()
}

/// # Safety
/// C contract of pthread_gettid_np (glibc 2.42): the thread's tid, or -1 once it has ended.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_gettid_np(t: libc::pthread_t) -> libc::pid_t {
    match known(t) {
        Some(task) => thread::tid_while_running(task).unwrap_or(-1),
        // SAFETY: forwarding (a program can only call this where glibc has it).
        None => real::pthread_gettid_np().map_or(-1, |f| unsafe { f(t) }),
    }
}

/// # Safety
/// C contract of tgkill.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tgkill(tgid: libc::pid_t, tid: libc::pid_t, sig: c_int) -> c_int {
    match runtime::signals::tgkill(Some(tgid), tid, sig) {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}

/// pidfd_open's flags: PIDFD_NONBLOCK (O_NONBLOCK) and PIDFD_THREAD (O_EXCL, Linux 6.9).
const PIDFD_NONBLOCK: u32 = libc::O_NONBLOCK as u32;
const PIDFD_THREAD: u32 = libc::O_EXCL as u32;

/// pidfd_open of a coroutine's tid: a thread other than the main one leads no thread group, which the
/// kernel refuses without PIDFD_THREAD (after its checks of the flags and the id; EINVAL or ENOENT by
/// release, asked of the kernel); with it, a thread pidfd (`runtime::thread_pidfd`). None: the kernel's
/// call (any other id, the main thread's included; an ended coroutine's tid, which it answers ESRCH).
fn pidfd_open_coroutine(pid: libc::pid_t, flags: u32) -> Option<Result<i32, Errno>> {
    if pid <= 0 || flags & !(PIDFD_NONBLOCK | PIDFD_THREAD) != 0 || !runtime::running() {
        return None;
    }
    match thread::named_by_tid(pid) {
        Named::Thread(task) if !task.is_main && flags & PIDFD_THREAD == 0 => {
            Some(Err(runtime::proc_task::pidfd_open_non_leader(flags)))
        }
        Named::Thread(task) if !task.is_main && runtime::thread_pidfd::supported() => {
            Some(runtime::thread_pidfd::open(task, flags))
        }
        _ => None,
    }
}

/// pidfd_send_signal through a coroutine's thread pidfd, or the kernel's.
fn send_signal(fd: c_int, sig: c_int, info: *const libc::siginfo_t, flags: u32) -> Result<(), Errno> {
    match runtime::running().then(|| runtime::thread_pidfd::send_signal(fd, sig, info, flags)).flatten() {
        Some(r) => r.and_then(|d| runtime::signals::through_thread_pidfd(d, sig)),
        // SAFETY: the program's own arguments.
        None => unsafe { runtime::sys::process::pidfd_send_signal(fd, sig, info, flags) }.map(|_| ()),
    }
}

/// # Safety
/// C contract of pidfd_open (glibc 2.36; the system call before).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pidfd_open(pid: libc::pid_t, flags: libc::c_uint) -> c_int {
    match pidfd_open_coroutine(pid, flags).unwrap_or_else(|| runtime::sys::process::pidfd_open_flags(pid, flags)) {
        Ok(fd) => {
            if runtime::running() {
                runtime::io::kind::pidfd_created(fd);
            }
            fd
        }
        Err(e) => fail(e),
    }
}

/// # Safety
/// C contract of pidfd_send_signal (glibc 2.36; the system call before).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pidfd_send_signal(
    fd: c_int,
    sig: c_int,
    info: *mut libc::siginfo_t,
    flags: libc::c_uint,
) -> c_int {
    match send_signal(fd, sig, info, flags) {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}

/// Which thread a `sched_*`/`*priority` pid argument names: negative is EINVAL (the kernel's first check).
fn target(pid: libc::pid_t) -> Result<Named, Errno> {
    if pid < 0 {
        return Err(Errno(libc::EINVAL));
    }
    Ok(thread::named_by_tid(pid))
}

fn read_param(param: *const libc::sched_param) -> Result<i32, Errno> {
    if param.is_null() {
        return Err(Errno(libc::EINVAL));
    }
    usercopy::read(param).map(|p| p.sched_priority)
}

/// sched_setscheduler for a coroutine: the kernel's order of checks (policy < 0 before the copy).
fn set_scheduler(task: &TaskRef, policy: c_int, param: *const libc::sched_param) -> Result<(), Errno> {
    if policy < 0 {
        return Err(Errno(libc::EINVAL));
    }
    let priority = read_param(param)?;
    sched_attr::change(task, Change::Scheduler { policy, priority })
}

fn set_param(task: &TaskRef, param: *const libc::sched_param) -> Result<(), Errno> {
    let priority = read_param(param)?;
    sched_attr::change(task, Change::Param { priority })
}

fn set_affinity(task: &TaskRef, size: usize, set: *const libc::cpu_set_t) -> Result<(), Errno> {
    let mut mask = [0u8; MASK_BYTES];
    let len = size.min(MASK_BYTES);
    usercopy::read_bytes(&mut mask[..len], set as *const u8)?;
    sched_attr::change(task, Change::Affinity { mask, len })
}

fn to_c(r: Result<(), Errno>) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}

/// A `sched_*` call on `pid`: a coroutine's is answered by `coroutine`, a tid no thread has any more is
/// ESRCH, a kernel task's (or an OS thread's) goes to glibc through `real`.
fn on_target(pid: libc::pid_t, coroutine: impl FnOnce(TaskRef) -> c_int, real: impl FnOnce() -> c_int) -> c_int {
    match target(pid) {
        Ok(Named::Thread(task)) => coroutine(task),
        Ok(Named::Gone) => fail(Errno(libc::ESRCH)),
        Ok(Named::Kernel) => real(),
        Err(e) => fail(e),
    }
}

/// The calls that name one thread (by pid through [`on_target`], by pthread_t through [`on_pthread`])
/// and act on it alone: a coroutine's through the runtime (`|task| ...`), another thread's by the real
/// call.
macro_rules! named_thread {
    ($via:ident: $( $name:ident($who:ident: $wt:ty $(, $arg:ident: $t:ty)*) => |$task:ident| $coop:expr; )*) => {$(
        /// # Safety
        #[doc = concat!("C contract of ", stringify!($name), ".")]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($who: $wt $(, $arg: $t)*) -> c_int {
            // SAFETY: forwarding.
            $via($who, |$task| $coop, || unsafe { real::$name($who $(, $arg)*) })
        }
    )*};
}

named_thread! {
    on_target:
    sched_setscheduler(pid: libc::pid_t, policy: c_int, param: *const libc::sched_param)
        => |task| to_c(set_scheduler(&task, policy, param));
    sched_getscheduler(pid: libc::pid_t) => |task| sched_attr::get(&task).policy_with_flags();
    sched_setparam(pid: libc::pid_t, param: *const libc::sched_param) => |task| to_c(set_param(&task, param));
    sched_setaffinity(pid: libc::pid_t, size: usize, set: *const libc::cpu_set_t)
        => |task| to_c(set_affinity(&task, size, set));
    sched_getaffinity(pid: libc::pid_t, size: usize, set: *mut libc::cpu_set_t)
        => |task| to_c(get_affinity(&task, size, set));
}

/// # Safety
/// C contract of sched_getparam.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sched_getparam(pid: libc::pid_t, param: *mut libc::sched_param) -> c_int {
    on_target(
        pid,
        |task| {
            if param.is_null() {
                return fail(Errno(libc::EINVAL));
            }
            let p = libc::sched_param { sched_priority: sched_attr::get(&task).priority };
            to_c(usercopy::write(param, p))
        },
        // SAFETY: forwarding.
        || unsafe { real::sched_getparam(pid, param) },
    )
}

/// glibc's sched_getaffinity and pthread_getaffinity_np: the mask, the rest of the buffer zeroed.
fn get_affinity(task: &TaskRef, size: usize, set: *mut libc::cpu_set_t) -> Result<(), Errno> {
    let n = sched_attr::get_affinity(task, set as *mut u8, size)?;
    if size > n {
        let zeros = vec![0u8; size - n];
        // SAFETY: inside the caller's buffer of `size` bytes.
        usercopy::write_bytes(unsafe { (set as *mut u8).add(n) }, &zeros)?;
    }
    Ok(())
}

/// sched_setattr for a coroutine: the kernel's checks of the call, then the program's own bytes (as many
/// as their size field says) made on the probe, which answers as the kernel would for the thread.
fn set_attr(task: &TaskRef, uattr: *mut u8, flags: u32) -> Result<(), Errno> {
    let size = usercopy::read(uattr as *const u32)? as usize;
    let size = if size == 0 { runtime::sys::sched::ATTR_SIZE_VER0 } else { size };
    let wanted = core::mem::size_of::<runtime::sys::sched::SchedAttr>() as u32;
    if !(runtime::sys::sched::ATTR_SIZE_VER0..=4096).contains(&size) {
        let _ = usercopy::write(uattr as *mut u32, wanted);
        return Err(Errno(libc::E2BIG));
    }
    let mut bytes = vec![0u8; size];
    usercopy::read_bytes(&mut bytes, uattr)?;
    let (r, back) = sched_attr::change_giving_back(task, Change::Attr { bytes, flags });
    if r == Err(Errno(libc::E2BIG))
        && let Change::Attr { bytes, .. } = back
    {
        // The kernel wrote the size it wants into the probe's copy: the program gets it.
        let _ = usercopy::write_bytes(uattr, &bytes[..4]);
    }
    r
}

/// sched_getattr for a coroutine: its attributes in the kernel's form, as many bytes as both sides know.
fn get_attr(task: &TaskRef, uattr: *mut u8, size: u32) -> Result<(), Errno> {
    let mut a = sched_attr::get(task).as_attr();
    let n = (size as usize).min(core::mem::size_of::<runtime::sys::sched::SchedAttr>());
    a.size = n as u32;
    // SAFETY: `a` is plain data of at least `n` bytes.
    let bytes = unsafe { core::slice::from_raw_parts(&a as *const _ as *const u8, n) };
    usercopy::write_bytes(uattr, bytes)
}

/// The kernel's first checks of sched_setattr/sched_getattr (`size` None: setattr).
fn attr_call_valid(pid: libc::pid_t, uattr: *mut u8, size: Option<u32>, flags: u32) -> Result<Named, Errno> {
    let size_bad = size.is_some_and(|s| !(runtime::sys::sched::ATTR_SIZE_VER0 as u32..=4096).contains(&s));
    if uattr.is_null() || pid < 0 || flags != 0 || size_bad {
        return Err(Errno(libc::EINVAL));
    }
    target(pid)
}

/// # Safety
/// C contract of sched_setattr (glibc 2.41; the system call before).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sched_setattr(pid: libc::pid_t, attr: *mut u8, flags: libc::c_uint) -> c_int {
    match attr_call_valid(pid, attr, None, flags) {
        Ok(Named::Thread(task)) => to_c(set_attr(&task, attr, flags)),
        Ok(Named::Gone) => fail(Errno(libc::ESRCH)),
        Ok(Named::Kernel) | Err(_) => {
            // SAFETY: the program's own call, made as glibc's wrapper makes it.
            match unsafe { runtime::sys::sched::setattr_of(pid, attr, flags) } {
                Ok(_) => 0,
                Err(e) => fail(e),
            }
        }
    }
}

/// # Safety
/// C contract of sched_getattr (glibc 2.41; the system call before).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sched_getattr(
    pid: libc::pid_t,
    attr: *mut u8,
    size: libc::c_uint,
    flags: libc::c_uint,
) -> c_int {
    match attr_call_valid(pid, attr, Some(size), flags) {
        Ok(Named::Thread(task)) => to_c(get_attr(&task, attr, size)),
        Ok(Named::Gone) => fail(Errno(libc::ESRCH)),
        Ok(Named::Kernel) | Err(_) => {
            // SAFETY: the program's own call, made as glibc's wrapper makes it.
            match unsafe { runtime::sys::sched::getattr_of(pid, attr, size, flags) } {
                Ok(_) => 0,
                Err(e) => fail(e),
            }
        }
    }
}

/// # Safety
/// C contract of sched_rr_get_interval.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sched_rr_get_interval(pid: libc::pid_t, ts: *mut libc::timespec) -> c_int {
    // SCHED_RR's slice, 0 for SCHED_FIFO, and for the fair policies the kernel's current slice, which
    // the calling worker (a fair thread like every worker) is given too.
    on_target(
        pid,
        |task| match sched_attr::get(&task).policy {
            libc::SCHED_RR => to_c(usercopy::write(ts, runtime::sys::time::ns_timespec(RR_INTERVAL_NS))),
            libc::SCHED_FIFO => to_c(usercopy::write(ts, libc::timespec { tv_sec: 0, tv_nsec: 0 })),
            // SAFETY: forwarding for the calling OS thread.
            _ => unsafe { real::sched_rr_get_interval(0, ts) },
        },
        // SAFETY: forwarding.
        || unsafe { real::sched_rr_get_interval(pid, ts) },
    )
}

/// The kernel's SCHED_RR time slice (RR_TIMESLICE, 100 ms; `sched_rr_timeslice_ms` can change it).
const RR_INTERVAL_NS: u64 = 100_000_000;

/// # Safety
/// C contract of setpriority.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn setpriority(which: libc::__priority_which_t, who: libc::id_t, prio: c_int) -> c_int {
    if which == libc::PRIO_PROCESS
        && let Ok(Named::Thread(task)) = target(who as libc::pid_t)
    {
        // The kernel clamps the value to [-20, 19] before any check.
        return to_c(sched_attr::change(&task, Change::Nice(prio.clamp(-20, 19))));
    }
    if which == libc::PRIO_PROCESS && matches!(target(who as libc::pid_t), Ok(Named::Gone)) {
        return fail(Errno(libc::ESRCH));
    }
    // SAFETY: forwarding.
    unsafe { real::setpriority(which, who, prio) }
}

/// nice(3): glibc's, on the thread's own nice value (glibc's calls setpriority inside libc, on whatever
/// OS thread runs the coroutine).
///
/// # Safety
/// C contract of nice.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nice(incr: c_int) -> c_int {
    let Some(me) = worker::current_task() else {
        // SAFETY: forwarding.
        return unsafe { real::nice(incr) };
    };
    let now = sched_attr::get(&me).nice;
    match sched_attr::change(&me, Change::Nice(now.saturating_add(incr).clamp(-20, 19))) {
        Ok(()) => sched_attr::get(&me).nice,
        // glibc turns the kernel's EACCES (not allowed to lower) into nice's EPERM.
        Err(Errno(libc::EACCES)) => fail(Errno(libc::EPERM)),
        Err(e) => fail(e),
    }
}

/// # Safety
/// C contract of getpriority (the nice value; errno tells -1 from an error).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn getpriority(which: libc::__priority_which_t, who: libc::id_t) -> c_int {
    if which == libc::PRIO_PROCESS {
        match target(who as libc::pid_t) {
            Ok(Named::Thread(task)) => return sched_attr::get(&task).nice,
            Ok(Named::Gone) => return fail(Errno(libc::ESRCH)),
            _ => {}
        }
    }
    // SAFETY: forwarding.
    unsafe { real::getpriority(which, who) }
}

/// A pthread_* call on thread `t`: a running coroutine's goes to `coroutine` (its error is the call's
/// result), one that has ended answers ESRCH, and a thread the runtime does not know gets the real call.
fn on_pthread(
    t: libc::pthread_t,
    coroutine: impl FnOnce(TaskRef) -> Result<(), Errno>,
    real: impl FnOnce() -> c_int,
) -> c_int {
    match known(t) {
        Some(task) if thread::tid_while_running(task).is_some() => coroutine(task).err().map_or(0, |e| e.0),
        Some(_) => libc::ESRCH,
        None => real(),
    }
}

named_thread! {
    on_pthread:
    pthread_setschedparam(t: libc::pthread_t, policy: c_int, param: *const libc::sched_param) => |task| {
        if policy < 0 {
            return Err(Errno(libc::EINVAL));
        }
        sched_attr::pthread_set(&task, Some(policy), read_param(param)?)
    };
    pthread_getschedparam(t: libc::pthread_t, policy: *mut c_int, param: *mut libc::sched_param) => |task| {
        let (p, priority) = sched_attr::glibc_view(&task);
        // SAFETY: the caller's out-pointers, which glibc writes unchecked.
        unsafe {
            *policy = p;
            *param = libc::sched_param { sched_priority: priority };
        }
        Ok(())
    };
    pthread_setschedprio(t: libc::pthread_t, prio: c_int) => |task| sched_attr::pthread_set(&task, None, prio);
    pthread_setaffinity_np(t: libc::pthread_t, size: usize, set: *const libc::cpu_set_t)
        => |task| set_affinity(&task, size, set);
    pthread_getaffinity_np(t: libc::pthread_t, size: usize, set: *mut libc::cpu_set_t)
        => |task| get_affinity(&task, size, set);
}

/// The raw system calls among these, as `syscall()` makes them (results as the kernel returns them:
/// getpriority's is 20 - nice, sched_getaffinity's the bytes written). None: not one of them.
pub fn raw(n: libc::c_long, a1: usize, a2: usize, a3: usize, a4: usize) -> Option<Result<usize, Errno>> {
    if !runtime::running() {
        return None;
    }
    let pid = a1 as libc::pid_t;
    let named = match n {
        libc::SYS_gettid => return Some(Ok(gettid_here() as usize)),
        libc::SYS_pidfd_open => return pidfd_open_coroutine(a1 as i32, a2 as u32).map(|r| r.map(|fd| fd as usize)),
        libc::SYS_pidfd_send_signal => {
            return Some(send_signal(a1 as i32, a2 as i32, a3 as *const _, a4 as u32).map(|()| 0));
        }
        libc::SYS_tgkill => {
            return Some(runtime::signals::tgkill(Some(a1 as i32), a2 as i32, a3 as i32).map(|()| 0));
        }
        libc::SYS_tkill => {
            return Some(runtime::signals::tgkill(None, a1 as i32, a2 as i32).map(|()| 0));
        }
        libc::SYS_rt_tgsigqueueinfo => {
            let info = usercopy::read(a4 as *const libc::siginfo_t);
            return runtime::signals::tgsigqueueinfo(a1 as i32, a2 as i32, a3 as i32, info).map(|r| r.map(|()| 0));
        }
        libc::SYS_setpriority | libc::SYS_getpriority => {
            if a1 as libc::__priority_which_t != libc::PRIO_PROCESS {
                return None;
            }
            target(a2 as libc::pid_t)
        }
        libc::SYS_ioprio_set | libc::SYS_ioprio_get => {
            // Another `which` (a process group, a user) and a tid no live coroutine has are the kernel's
            // (whose checks of the value come before ESRCH for a tid it does not know).
            if a1 as i32 != runtime::sys::sched::IOPRIO_WHO_PROCESS {
                return None;
            }
            match target(a2 as libc::pid_t) {
                Ok(Named::Thread(t)) => Ok(Named::Thread(t)),
                _ => return None,
            }
        }
        libc::SYS_sched_setattr => match attr_call_valid(pid, a2 as *mut u8, None, a3 as u32) {
            Err(_) => return None,
            r => r,
        },
        libc::SYS_sched_getattr => match attr_call_valid(pid, a2 as *mut u8, Some(a3 as u32), a4 as u32) {
            Err(_) => return None,
            r => r,
        },
        libc::SYS_sched_setscheduler
        | libc::SYS_sched_getscheduler
        | libc::SYS_sched_setparam
        | libc::SYS_sched_getparam
        | libc::SYS_sched_setaffinity
        | libc::SYS_sched_getaffinity
        | libc::SYS_sched_rr_get_interval => target(pid),
        _ => return None,
    };
    let task = match named {
        Err(e) => return Some(Err(e)),
        Ok(Named::Kernel) => return None,
        Ok(Named::Gone) => return Some(Err(Errno(libc::ESRCH))),
        Ok(Named::Thread(t)) => t,
    };
    let errno = || super::errno_here();
    let c = |r: c_int| if r < 0 { Err(Errno(errno())) } else { Ok(r as usize) };
    // SAFETY: each hook takes the program's own arguments under its C contract.
    Some(unsafe {
        match n {
            libc::SYS_setpriority => c(setpriority(libc::PRIO_PROCESS, a2 as libc::id_t, a3 as c_int)),
            libc::SYS_getpriority => Ok((20 - sched_attr::get(&task).nice) as usize),
            libc::SYS_ioprio_set => sched_attr::change(&task, Change::IoPrio(a3 as c_int)).map(|()| 0),
            libc::SYS_ioprio_get => sched_attr::ioprio_get(&task).map(|p| p as usize),
            libc::SYS_sched_setscheduler => set_scheduler(&task, a2 as c_int, a3 as *const _).map(|()| 0),
            libc::SYS_sched_getscheduler => Ok(sched_attr::get(&task).policy_with_flags() as usize),
            libc::SYS_sched_setparam => set_param(&task, a2 as *const _).map(|()| 0),
            libc::SYS_sched_getparam => c(sched_getparam(pid, a2 as *mut _)),
            libc::SYS_sched_setaffinity => set_affinity(&task, a2, a3 as *const _).map(|()| 0),
            libc::SYS_sched_setattr => set_attr(&task, a2 as *mut u8, a3 as u32).map(|()| 0),
            libc::SYS_sched_getattr => get_attr(&task, a2 as *mut u8, a3 as u32).map(|()| 0),
            libc::SYS_sched_getaffinity => sched_attr::get_affinity(&task, a3 as *mut u8, a2),
            _ => c(sched_rr_get_interval(pid, a2 as *mut _)),
        }
    })
}
