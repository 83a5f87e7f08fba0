//! epoll and eventfd through raw system calls, for the netpoller.

use super::syscall::{Errno, syscall1, syscall2, syscall4};
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
        super::syscall::syscall6(
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

pub fn eventfd() -> Result<i32, Errno> {
    // SAFETY: eventfd2 takes an initial value and flags.
    unsafe { syscall2(libc::SYS_eventfd2, 0, (libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) as usize).map(|fd| fd as i32) }
}

/// Adds 1 to an eventfd, waking whoever waits for it to become readable.
pub fn eventfd_signal(fd: i32) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a local.
    let _ = unsafe { super::syscall::syscall3(libc::SYS_write, fd as usize, &one as *const u64 as usize, 8) };
}

/// Empties an eventfd.
pub fn eventfd_drain(fd: i32) {
    let mut v: u64 = 0;
    // SAFETY: reads 8 bytes into a local; the fd is non-blocking.
    let _ = unsafe { super::syscall::syscall3(libc::SYS_read, fd as usize, &mut v as *mut u64 as usize, 8) };
}
