//! Signal dispositions: `sigaction` and `signal` install the program's handlers behind the runtime's
//! wrapper (see [`crate::runtime::signals`]) and report the program's own view back. Masks are per
//! coroutine; `sigsuspend`, `pause` and the sigwait family park the coroutine; `sigpending` adds what
//! the runtime keeps pending for the thread.

use super::set_errno;
use crate::real;
use crate::runtime::cancel;
use crate::runtime::{self, signals, worker};
use std::ffi::c_int;

fn wrapped(sig: c_int) -> bool {
    runtime::running() && (1..65).contains(&sig) && sig != libc::SIGKILL && sig != libc::SIGSTOP
}

/// # Safety
/// C contract of sigaction.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sigaction(sig: c_int, act: *const libc::sigaction, old: *mut libc::sigaction) -> c_int {
    if !wrapped(sig) {
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
            set_errno(e);
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
    if !wrapped(sig) {
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
            set_errno(e);
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

fn read_set(set: *const libc::sigset_t) -> Result<u64, c_int> {
    runtime::sys::usercopy::read(set as *const u64).map_err(|e| e.0)
}

/// Other callers get the kernel's call itself.
///
/// # Safety
/// C contract of sigsuspend.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sigsuspend(mask: *const libc::sigset_t) -> c_int {
    cancel::point(|| {
        if worker::current_task().is_some() {
            match read_set(mask) {
                Ok(m) => {
                    signals::suspend(m);
                    set_errno(libc::EINTR);
                    return -1;
                }
                Err(e) => {
                    set_errno(e);
                    return -1;
                }
            }
        }
        // SAFETY: the kernel's sigsuspend with the program's mask.
        match unsafe { runtime::sys::signal::suspend(mask) } {
            Ok(r) => r as c_int,
            Err(e) => {
                set_errno(e.0);
                -1
            }
        }
    })
}

/// pause: sigsuspend with the thread's own mask.
///
/// # Safety
/// C contract of pause.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pause() -> c_int {
    cancel::point(|| match worker::current_task() {
        Some(me) => {
            signals::suspend(me.signals.mask.get());
            set_errno(libc::EINTR);
            -1
        }
        None => {
            set_errno(runtime::sys::signal::pause().0);
            -1
        }
    })
}

/// The common part of the sigwait family: Ok(signal) or Err(errno).
fn timed_wait(
    set: *const libc::sigset_t,
    info: *mut libc::siginfo_t,
    ts: *const libc::timespec,
) -> Result<c_int, c_int> {
    let me_is_coroutine = worker::current_task().is_some();
    let deadline = if ts.is_null() {
        None
    } else {
        runtime::sys::usercopy::read(ts)
            .ok()
            .and_then(|t| runtime::sys::time::timespec_ns(&t))
            .map(|ns| runtime::sys::time::monotonic_ns().saturating_add(ns))
    };
    let bad_timeout = !ts.is_null() && deadline.is_none();
    if !me_is_coroutine || bad_timeout || deadline == Some(0) {
        // SAFETY: the kernel's sigtimedwait with the program's arguments.
        return unsafe { runtime::sys::signal::timedwait(set, info, ts) }.map_err(|e| e.0);
    }
    let mask = read_set(set)?;
    // SAFETY: a zeroed siginfo is a valid buffer.
    let mut local: libc::siginfo_t = unsafe { core::mem::zeroed() };
    let sig = signals::wait_for(mask, &mut local, deadline)?;
    if !info.is_null() && runtime::sys::usercopy::write(info, local).is_err() {
        return Err(libc::EFAULT);
    }
    Ok(sig)
}

fn errno_result(r: Result<c_int, c_int>) -> c_int {
    r.unwrap_or_else(|e| {
        set_errno(e);
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
    cancel::point(|| errno_result(timed_wait(set, info, ts)))
}

/// # Safety
/// C contract of sigwaitinfo.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sigwaitinfo(set: *const libc::sigset_t, info: *mut libc::siginfo_t) -> c_int {
    cancel::point(|| errno_result(timed_wait(set, info, core::ptr::null())))
}

/// sigwait returns the error number and retries when a handler interrupts it, as glibc's does.
///
/// # Safety
/// C contract of sigwait.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sigwait(set: *const libc::sigset_t, sig: *mut c_int) -> c_int {
    cancel::point(|| {
        loop {
            match timed_wait(set, core::ptr::null_mut(), core::ptr::null()) {
                Ok(s) => {
                    if runtime::sys::usercopy::write(sig, s).is_err() {
                        return libc::EFAULT;
                    }
                    return 0;
                }
                Err(libc::EINTR) if !cancel::woken() => continue,
                Err(e) => return e,
            }
        }
    })
}

/// # Safety
/// C contract of sigpending.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sigpending(set: *mut libc::sigset_t) -> c_int {
    let kernel = match runtime::sys::signal::pending() {
        Ok(set) => set,
        Err(e) => {
            set_errno(e.0);
            return -1;
        }
    };
    let all = match worker::current_task() {
        Some(me) => signals::pending_for(&me, kernel),
        None => kernel,
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

/// raise in a coroutine is pthread_kill of itself (glibc's own would signal the worker's OS thread).
///
/// # Safety
/// C contract of raise.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn raise(sig: c_int) -> c_int {
    let r = match worker::current_task() {
        Some(me) => signals::kill(me, sig),
        // The kernel's tgkill of the calling thread, as glibc's raise does.
        None => match runtime::sys::signal::tgkill(runtime::sys::getpid(), runtime::sys::gettid(), sig) {
            Ok(_) => 0,
            Err(e) => e.0,
        },
    };
    if r != 0 {
        set_errno(r);
        return -1;
    }
    0
}
