//! flockfile, ftrylockfile, funlockfile: the real calls, and a count of the FILE locks each coroutine
//! holds, since one preempted while it holds a FILE lock would block in glibc's own lock (a futex no hook
//! sees) any coroutine of its worker that uses that FILE (see `runtime::preempt`).

use crate::real;
use crate::runtime::worker;
use core::sync::atomic::Ordering;
use libc::FILE;
use std::ffi::c_int;

/// # Safety
/// C contract of flockfile.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flockfile(f: *mut FILE) {
    // SAFETY: forwarding.
    unsafe { real::flockfile(f) };
    if let Some(t) = worker::current_task() {
        t.preempt.file_locks.fetch_add(1, Ordering::Relaxed);
    }
}

/// # Safety
/// C contract of ftrylockfile.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftrylockfile(f: *mut FILE) -> c_int {
    // SAFETY: forwarding.
    let r = unsafe { real::ftrylockfile(f) };
    if r == 0
        && let Some(t) = worker::current_task()
    {
        t.preempt.file_locks.fetch_add(1, Ordering::Relaxed);
    }
    r
}

/// # Safety
/// C contract of funlockfile.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn funlockfile(f: *mut FILE) {
    if let Some(t) = worker::current_task() {
        let _ = t.preempt.file_locks.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }
    // SAFETY: forwarding.
    unsafe { real::funlockfile(f) };
}
