//! Child processes through raw system calls: waiting for them, and pidfds to poll for their end.

use super::syscall::{Errno, syscall2, syscall4, syscall6};

/// wait4(2).
///
/// # Safety
/// `status` and `rusage` are null or the program's own.
pub unsafe fn wait4(pid: i32, status: *mut i32, options: i32, rusage: *mut libc::rusage) -> Result<usize, Errno> {
    // SAFETY: the caller vouches for the pointers.
    unsafe { syscall4(libc::SYS_wait4, pid as usize, status as usize, options as usize, rusage as usize) }
}

/// waitid(2) without a rusage.
///
/// # Safety
/// `info` is null or the program's own.
pub unsafe fn waitid(idtype: u32, id: u32, info: *mut libc::siginfo_t, options: i32) -> Result<usize, Errno> {
    // SAFETY: the caller vouches for the pointer.
    unsafe { syscall6(libc::SYS_waitid, idtype as usize, id as usize, info as usize, options as usize, 0, 0) }
}

/// Ends the calling OS thread (exit(2), not exit_group): nothing of it runs after this.
pub fn exit_thread(code: i32) -> ! {
    // SAFETY: the thread ends here; no Rust frame of it runs again.
    let _ = unsafe { super::syscall::syscall1(libc::SYS_exit, code as usize) };
    unreachable!("exit(2) returned")
}

/// A pidfd for process `pid` (pidfd_open(2)), readable once it ended.
pub fn pidfd_open(pid: i32) -> Result<i32, Errno> {
    // SAFETY: creates a new fd; touches no memory.
    unsafe { syscall2(libc::SYS_pidfd_open, pid as usize, 0) }.map(|fd| fd as i32)
}
