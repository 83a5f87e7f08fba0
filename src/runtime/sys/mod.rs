//! The runtime's only door to the kernel: raw system calls and a few CPU instructions.
//!
//! Nothing here goes through a libc function that asyncshim hooks, so the runtime can never re-enter its
//! own hooks (a hooked `nanosleep` calling the runtime calling `nanosleep`...). Each file has one job.

pub mod epoll;
pub mod fsgs;
pub mod futex;
pub mod mem;
pub mod peek;
pub mod syscall;
pub mod time;
pub mod usercopy;

pub use syscall::Errno;

/// Writes all of `msg` to stderr with raw `write(2)`; used for diagnostics from any context,
/// including a signal handler on an overflowed stack.
pub fn write_stderr(msg: &[u8]) {
    let mut rest = msg;
    while !rest.is_empty() {
        // SAFETY: the pointer and length describe the live slice `rest`.
        match unsafe { syscall::syscall3(libc::SYS_write, 2, rest.as_ptr() as usize, rest.len()) } {
            Ok(n) if n > 0 => rest = &rest[n..],
            Err(Errno(libc::EINTR)) => continue,
            _ => return,
        }
    }
}

/// The calling OS thread's kernel thread id.
pub fn gettid() -> i32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { syscall::syscall0(libc::SYS_gettid).unwrap_or(0) as i32 }
}

/// This process's id.
pub fn getpid() -> i32 {
    // SAFETY: getpid takes no arguments and cannot fail.
    unsafe { syscall::syscall0(libc::SYS_getpid).unwrap_or(0) as i32 }
}

/// The calling OS thread's signal mask, optionally replacing it with `set` (SIG_SETMASK).
pub fn sigmask(set: Option<u64>) -> u64 {
    let mut old = 0u64;
    let new = set.as_ref().map_or(0, |s| s as *const u64 as usize);
    // SAFETY: 8-byte kernel sigsets at valid addresses.
    let _ = unsafe {
        syscall::syscall4(libc::SYS_rt_sigprocmask, libc::SIG_SETMASK as usize, new, &mut old as *mut u64 as usize, 8)
    };
    old
}
