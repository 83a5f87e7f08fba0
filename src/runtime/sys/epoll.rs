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
            [epfd as usize, out.as_mut_ptr() as usize, out.len(), timeout_ms as isize as usize, 0, 8],
        )
    }?;
    // SAFETY: the kernel wrote the first n events (n <= out.len()).
    Ok(unsafe { core::slice::from_raw_parts(out.as_ptr() as *const libc::epoll_event, n.min(out.len())) })
}

/// The timeout of a program's epoll wait: epoll_pwait's milliseconds (-1: none) or epoll_pwait2's
/// timespec (null: none).
pub enum Timeout {
    Ms(i32),
    Spec(*const libc::timespec),
}

/// epoll_pwait(2) or epoll_pwait2(2), after `timeout`'s form, with the program's own arguments and an
/// 8-byte signal mask (or none).
///
/// # Safety
/// `events` (max entries), `mask` and a timespec timeout are the program's own or valid for the call
/// (or null).
pub unsafe fn pwait(
    epfd: i32,
    events: *mut libc::epoll_event,
    max: i32,
    timeout: Timeout,
    mask: *const libc::sigset_t,
) -> Result<usize, Errno> {
    let (nr, t) = match timeout {
        Timeout::Ms(ms) => (libc::SYS_epoll_pwait, ms as isize as usize),
        Timeout::Spec(ts) => (libc::SYS_epoll_pwait2, ts as usize),
    };
    // SAFETY: the caller vouches for the pointers.
    unsafe { syscall6(nr, [epfd as usize, events as usize, max as usize, t, mask as usize, 8]) }
}
