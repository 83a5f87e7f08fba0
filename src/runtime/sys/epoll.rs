//! epoll through raw system calls: the netpoller's, and the program's own waits.

use super::syscall::{Errno, syscall1, syscall4, syscall6};
use core::mem::MaybeUninit;

pub fn create() -> Result<i32, Errno> {
    // SAFETY: epoll_create1 takes only flags.
    unsafe { syscall1(libc::SYS_epoll_create1, libc::EPOLL_CLOEXEC as usize).map(|fd| fd as i32) }
}

/// EPOLL_CTL_ADD/MOD/DEL of `fd` with `events` and the 64-bit `data` handed back with its events.
pub fn ctl(epfd: i32, op: i32, fd: i32, events: u32, data: u64) -> Result<(), Errno> {
    let mut ev = libc::epoll_event { events, u64: data };
    // SAFETY: ev is a valid epoll_event for the duration of the call.
    unsafe {
        syscall4(
            libc::SYS_epoll_ctl,
            epfd as usize,
            op as usize,
            fd as usize,
            &mut ev as *mut libc::epoll_event as usize,
        )
    }
    .map(|_| ())
}

/// Waits up to `timeout_ms` (-1: forever) for events; returns how many were stored in `out`.
/// Waits for events into `out`, left uninitialised by the caller (zeroing 128 events cost more than the
/// rest of a poll); returns the events the kernel wrote.
pub fn wait(
    epfd: i32,
    out: &mut [MaybeUninit<libc::epoll_event>],
    timeout_ms: i32,
) -> Result<&[libc::epoll_event], Errno> {
    // SAFETY: out is a writable array of out.len() events.
    let n = unsafe {
        syscall6(
            libc::SYS_epoll_pwait,
            epfd as usize,
            out.as_mut_ptr() as usize,
            out.len(),
            timeout_ms as isize as usize,
            0,
            8,
        )
    }?;
    // SAFETY: the kernel wrote the first n events (n <= out.len()).
    Ok(unsafe { core::slice::from_raw_parts(out.as_ptr() as *const libc::epoll_event, n.min(out.len())) })
}

/// epoll_pwait(2) with the program's own arguments, an 8-byte signal mask (or none).
///
/// # Safety
/// `events` (max entries) and `mask` are the program's own or valid for the call (or null).
pub unsafe fn pwait(
    epfd: i32,
    events: *mut libc::epoll_event,
    max: i32,
    timeout_ms: i32,
    mask: *const libc::sigset_t,
) -> Result<usize, Errno> {
    // SAFETY: the caller vouches for the pointers.
    unsafe {
        syscall6(
            libc::SYS_epoll_pwait,
            epfd as usize,
            events as usize,
            max as usize,
            timeout_ms as isize as usize,
            mask as usize,
            8,
        )
    }
}

/// epoll_pwait2(2) (a timespec timeout) with the program's own arguments.
///
/// # Safety
/// As for [`pwait`]; `timeout` is the program's own or null.
pub unsafe fn pwait2(
    epfd: i32,
    events: *mut libc::epoll_event,
    max: i32,
    timeout: *const libc::timespec,
    mask: *const libc::sigset_t,
) -> Result<usize, Errno> {
    // SAFETY: the caller vouches for the pointers.
    unsafe {
        syscall6(
            libc::SYS_epoll_pwait2,
            epfd as usize,
            events as usize,
            max as usize,
            timeout as usize,
            mask as usize,
            8,
        )
    }
}
