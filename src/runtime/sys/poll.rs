//! poll, ppoll and pselect: readiness of a few fds, asked of the kernel.

use super::syscall::{Errno, syscall3, syscall6};

/// Whether `fd` is ready now for `events` (a poll(2) of one fd with a zero timeout).
pub fn ready_now(fd: i32, events: i16) -> bool {
    matches!(revents_now(fd, events), Ok(r) if r != 0)
}

/// What a poll(2) of `fd` for `events` with a zero timeout reports (0: nothing yet).
pub fn revents_now(fd: i32, events: i16) -> Result<i16, Errno> {
    let mut p = libc::pollfd { fd, events, revents: 0 };
    // SAFETY: poll on one local pollfd with a zero timeout.
    match unsafe { syscall3(libc::SYS_poll, &mut p as *mut libc::pollfd as usize, 1, 0) }? {
        1 => Ok(p.revents),
        _ => Ok(0),
    }
}

/// ppoll(2) with an 8-byte signal mask (or none).
///
/// # Safety
/// `fds` (n entries), `timeout` and `mask` are the program's own or valid for the call (or null).
pub unsafe fn ppoll(
    fds: *mut libc::pollfd,
    n: u64,
    timeout: *const libc::timespec,
    mask: *const libc::sigset_t,
) -> Result<usize, Errno> {
    // SAFETY: the caller vouches for the pointers.
    unsafe { syscall6(libc::SYS_ppoll, [fds as usize, n as usize, timeout as usize, mask as usize, 8, 0]) }
}

/// pselect6(2) with an 8-byte signal mask (or none).
///
/// # Safety
/// The sets, `timeout` and `mask` are the program's own or valid for the call (or null).
pub unsafe fn pselect(
    n: i32,
    sets: [*mut libc::fd_set; 3],
    timeout: *const libc::timespec,
    mask: *const libc::sigset_t,
) -> Result<usize, Errno> {
    // The kernel takes the mask as {pointer, size}.
    let sig = [mask as usize, 8usize];
    let sigp = if mask.is_null() { 0 } else { sig.as_ptr() as usize };
    // SAFETY: the caller vouches for the pointers; `sig` lives across the call.
    unsafe {
        syscall6(
            libc::SYS_pselect6,
            [n as usize, sets[0] as usize, sets[1] as usize, sets[2] as usize, timeout as usize, sigp],
        )
    }
}
