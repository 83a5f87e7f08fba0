//! eventfd through raw system calls: how a thread wakes one that sleeps in epoll.

use super::syscall::{Errno, syscall2, syscall3};

/// A new non-blocking, close-on-exec eventfd holding 0.
pub fn new() -> Result<i32, Errno> {
    // SAFETY: eventfd2 takes an initial value and flags.
    unsafe { syscall2(libc::SYS_eventfd2, 0, (libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) as usize).map(|fd| fd as i32) }
}

/// Adds 1 to an eventfd, waking whoever waits for it to become readable.
pub fn signal(fd: i32) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a local.
    let _ = unsafe { syscall3(libc::SYS_write, fd as usize, &one as *const u64 as usize, 8) };
}

/// Empties an eventfd.
pub fn drain(fd: i32) {
    let mut v: u64 = 0;
    // SAFETY: reads 8 bytes into a local; the fd is non-blocking.
    let _ = unsafe { syscall3(libc::SYS_read, fd as usize, &mut v as *mut u64 as usize, 8) };
}
