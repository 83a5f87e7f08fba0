//! Signal calls, translated into [`crate::runtime::signals`]: `sigaction` and `signal` install the
//! program's handlers behind the runtime's wrapper and report the program's own view back; masks are per
//! coroutine; `sigsuspend`, `pause` and the sigwait family park a coroutine; `sigpending` adds what the
//! runtime keeps pending for the thread; `raise` in a coroutine signals that thread, not its worker;
//! `pthread_sigqueue` to a coroutine queues the signal with its value for that thread; `kill` and
//! `sigqueue` with a coroutine's tid reach the process.
//! Here only the C calling conventions: the program's memory, errno, return values.

use super::set_errno;
use crate::real;
use crate::runtime::sys::syscall::Errno;
use crate::runtime::{self, cancel, signals};
use std::ffi::c_int;

/// # Safety
/// C contract of sigaction.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sigaction(sig: c_int, act: *const libc::sigaction, old: *mut libc::sigaction) -> c_int {
    if !signals::wraps(sig) {
        // SAFETY: forwarding.
        return unsafe { real::sigaction(sig, act, old) };
    }
    let act_val = if act.is_null() {
        None
    } else {
        match runtime::sys::usercopy::read(act) {
            Ok(a) => Some(a),
            Err(e) => {
                set_errno(e.0);
                return -1;
            }
        }
    };
    // SAFETY: all-zero is a valid sigaction.
    let mut old_val: libc::sigaction = unsafe { core::mem::zeroed() };
    match signals::program_sigaction(sig, act_val.as_ref(), Some(&mut old_val)) {
        Ok(()) => {
            if !old.is_null() && runtime::sys::usercopy::write(old, old_val).is_err() {
                set_errno(libc::EFAULT);
                return -1;
            }
            0
        }
        Err(e) => {
            set_errno(e.0);
            -1
        }
    }
}

/// BSD semantics, as glibc's `signal`: SA_RESTART, the signal itself blocked while its handler runs.
///
/// # Safety
/// C contract of signal.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn signal(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t {
    if !signals::wraps(sig) {
        // SAFETY: forwarding.
        return unsafe { real::signal(sig, handler) };
    }
    // SAFETY: building a plain sigaction value.
    let mut act: libc::sigaction = unsafe { core::mem::zeroed() };
    act.sa_sigaction = handler;
    act.sa_flags = libc::SA_RESTART;
    // SAFETY: act.sa_mask is a valid sigset.
    unsafe {
        libc::sigemptyset(&mut act.sa_mask);
        libc::sigaddset(&mut act.sa_mask, sig);
    }
    // SAFETY: all-zero is a valid sigaction.
    let mut old: libc::sigaction = unsafe { core::mem::zeroed() };
    match signals::program_sigaction(sig, Some(&act), Some(&mut old)) {
        Ok(()) => old.sa_sigaction,
        Err(e) => {
            set_errno(e.0);
            libc::SIG_ERR
        }
    }
}

/// The mask is per coroutine: the change is made on the worker now and carried with the coroutine.
/// Signals pending in the kernel that it unblocks are delivered during the call, to this thread.
///
/// # Safety
/// C contract of pthread_sigmask.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_sigmask(how: c_int, set: *const libc::sigset_t, old: *mut libc::sigset_t) -> c_int {
    // SAFETY: forwarding.
    signals::change_mask(set.is_null(), || unsafe { real::pthread_sigmask(how, set, old) })
}

/// # Safety
/// C contract of sigprocmask.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sigprocmask(how: c_int, set: *const libc::sigset_t, old: *mut libc::sigset_t) -> c_int {
    // SAFETY: forwarding.
    signals::change_mask(set.is_null(), || unsafe { real::sigprocmask(how, set, old) })
}

/// # Safety
/// C contract of sigsuspend.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sigsuspend(mask: *const libc::sigset_t) -> c_int {
    // SAFETY: the program's argument, as sigsuspend's C contract gives it.
    cancel::point(|| errno_result(unsafe { signals::sigsuspend(mask) }))
}

/// # Safety
/// C contract of pause.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pause() -> c_int {
    cancel::point(|| {
        set_errno(signals::pause());
        -1
    })
}

/// The sigpause family (glibc's calls its internal sigsuspend, which no hook sees): X/Open's (`sig` left
/// out of the mask), BSD's (a mask of signals 1 to 32), and the entry point that is either.
fn sigpause_as(sig_or_mask: c_int, is_sig: bool, real: impl FnOnce() -> c_int) -> c_int {
    cancel::point(|| match signals::sigpause(sig_or_mask, is_sig) {
        Some(e) => {
            set_errno(e);
            -1
        }
        None => real(),
    })
}

/// # Safety
/// C contract of __xpg_sigpause (`sigpause` in programs built with X/Open or GNU features).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __xpg_sigpause(sig: c_int) -> c_int {
    // SAFETY: forwarding.
    sigpause_as(sig, true, || unsafe { real::__xpg_sigpause(sig) })
}

/// # Safety
/// C contract of __sigpause.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __sigpause(sig_or_mask: c_int, is_sig: c_int) -> c_int {
    // SAFETY: forwarding.
    sigpause_as(sig_or_mask, is_sig != 0, || unsafe { real::__sigpause(sig_or_mask, is_sig) })
}

/// # Safety
/// C contract of sigpause (the BSD form: a mask).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sigpause(mask: c_int) -> c_int {
    // SAFETY: forwarding.
    sigpause_as(mask, false, || unsafe { real::sigpause(mask) })
}

fn errno_result(r: Result<c_int, Errno>) -> c_int {
    r.unwrap_or_else(|e| {
        set_errno(e.0);
        -1
    })
}

/// # Safety
/// C contract of sigtimedwait.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sigtimedwait(
    set: *const libc::sigset_t,
    info: *mut libc::siginfo_t,
    ts: *const libc::timespec,
) -> c_int {
    // SAFETY: the program's arguments, as sigtimedwait's C contract gives them.
    cancel::point(|| errno_result(unsafe { signals::timed_wait(set, info, ts) }))
}

/// # Safety
/// C contract of sigwaitinfo.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sigwaitinfo(set: *const libc::sigset_t, info: *mut libc::siginfo_t) -> c_int {
    // SAFETY: the program's arguments, as sigwaitinfo's C contract gives them (no timeout).
    cancel::point(|| errno_result(unsafe { signals::timed_wait(set, info, core::ptr::null()) }))
}

/// sigwait returns the error number and retries when a handler interrupts it, as glibc's does.
///
/// # Safety
/// C contract of sigwait.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sigwait(set: *const libc::sigset_t, sig: *mut c_int) -> c_int {
    cancel::point(|| {
        loop {
            // SAFETY: the program's set, as sigwait's C contract gives it (no siginfo, no timeout).
            match unsafe { signals::timed_wait(set, core::ptr::null_mut(), core::ptr::null()) } {
                Ok(s) => {
                    if runtime::sys::usercopy::write(sig, s).is_err() {
                        return libc::EFAULT;
                    }
                    return 0;
                }
                Err(Errno(libc::EINTR)) if !cancel::woken() => continue,
                Err(e) => return e.0,
            }
        }
    })
}

/// # Safety
/// C contract of sigpending.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sigpending(set: *mut libc::sigset_t) -> c_int {
    let all = match signals::pending() {
        Ok(set) => set,
        Err(e) => {
            set_errno(e.0);
            return -1;
        }
    };
    // SAFETY: a zeroed sigset_t is valid; its first word is the kernel's set.
    let mut out: libc::sigset_t = unsafe { core::mem::zeroed() };
    // SAFETY: sigset_t is at least 8 bytes.
    unsafe { *(&mut out as *mut libc::sigset_t as *mut u64) = all };
    if runtime::sys::usercopy::write(set, out).is_err() {
        set_errno(libc::EFAULT);
        return -1;
    }
    0
}

/// # Safety
/// C contract of raise.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn raise(sig: c_int) -> c_int {
    match signals::raise(sig) {
        0 => 0,
        e => {
            set_errno(e);
            -1
        }
    }
}

/// pthread_sigqueue(3) to a coroutine: the signal with SI_QUEUE, our pid and uid and `value`, as glibc
/// builds it (glibc's own would make rt_tgsigqueueinfo with the fake tid, which the kernel does not know).
/// glibc's checks first: a thread that ended is ESRCH, its reserved signals EINVAL.
///
/// # Safety
/// C contract of pthread_sigqueue.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_sigqueue(t: libc::pthread_t, sig: c_int, value: libc::sigval) -> c_int {
    let task = if runtime::running() { runtime::thread::registry().lookup(t) } else { None };
    match task {
        // SAFETY: forwarding.
        None => unsafe { real::pthread_sigqueue(t, sig, value) },
        Some(task) => {
            if runtime::thread::tid_while_running(task).is_none() {
                return libc::ESRCH;
            }
            let info = signals::queued::sent_here(sig, libc::SI_QUEUE, value.sival_ptr as usize);
            signals::queue(task, sig, &info)
        }
    }
}

/// sigqueue(3): to the process, as glibc's. A coroutine's tid names the process, as any thread's tid does
/// for the kernel's rt_sigqueueinfo.
///
/// # Safety
/// C contract of sigqueue.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sigqueue(pid: libc::pid_t, sig: c_int, value: libc::sigval) -> c_int {
    // SAFETY: forwarding.
    unsafe { real::sigqueue(signals::process_of_tid(pid), sig, value) }
}

/// kill(2): a coroutine's tid names its process, as any thread's tid does for the kernel.
///
/// # Safety
/// C contract of kill.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kill(pid: libc::pid_t, sig: c_int) -> c_int {
    // SAFETY: forwarding.
    unsafe { real::kill(signals::process_of_tid(pid), sig) }
}
