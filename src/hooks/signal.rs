//! Signal dispositions: `sigaction` and `signal` install the program's handlers behind the runtime's
//! wrapper (see [`crate::runtime::signals`]) and report the program's own view back.

use super::set_errno;
use crate::real;
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
                set_errno(e);
                return -1;
            }
        }
    };
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
///
/// # Safety
/// C contract of pthread_sigmask.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_sigmask(how: c_int, set: *const libc::sigset_t, old: *mut libc::sigset_t) -> c_int {
    // SAFETY: forwarding.
    let r = unsafe { real::pthread_sigmask(how, set, old) };
    if r == 0 && !set.is_null() && worker::current_task().is_some() {
        runtime::thread::mask_changed();
    }
    r
}

/// # Safety
/// C contract of sigprocmask.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sigprocmask(how: c_int, set: *const libc::sigset_t, old: *mut libc::sigset_t) -> c_int {
    // SAFETY: forwarding.
    let r = unsafe { real::sigprocmask(how, set, old) };
    if r == 0 && !set.is_null() && worker::current_task().is_some() {
        runtime::thread::mask_changed();
    }
    r
}
