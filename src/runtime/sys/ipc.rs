//! System V message queues through raw system calls.

use super::syscall::{Errno, syscall4, syscall6};

/// msgrcv(2).
///
/// # Safety
/// `msg` is the program's own buffer (or writable for `size` bytes plus the type).
pub unsafe fn msgrcv(
    id: i32,
    msg: *mut libc::c_void,
    size: usize,
    kind: libc::c_long,
    flags: i32,
) -> Result<usize, Errno> {
    // SAFETY: the caller vouches for the buffer.
    unsafe { syscall6(libc::SYS_msgrcv, [id as usize, msg as usize, size, kind as usize, flags as usize, 0]) }
}

/// msgsnd(2).
///
/// # Safety
/// `msg` is the program's own message (or readable for `size` bytes plus the type).
pub unsafe fn msgsnd(id: i32, msg: *const libc::c_void, size: usize, flags: i32) -> Result<usize, Errno> {
    // SAFETY: the caller vouches for the message.
    unsafe { syscall4(libc::SYS_msgsnd, id as usize, msg as usize, size, flags as usize) }
}
