//! The runtime's only door to the kernel: raw system calls and a few CPU instructions.
//!
//! Nothing here goes through a libc function that asyncshim hooks, so the runtime can never re-enter its
//! own hooks (a hooked `nanosleep` calling the runtime calling `nanosleep`...). Each file is one OS
//! facility, with typed wrappers over [`syscall`]'s raw instruction:
//!
//! | file | facility |
//! |---|---|
//! | [`abortable`] | a system call another thread can abort (helper threads' calls for coroutines) |
//! | [`fd`] | fd numbers (dup, close, fcntl, limit) and plain calls on what they name (read, write...) |
//! | [`fs`] | files by path (open, stat) |
//! | [`socket`] | send, receive, accept, connect, socket options |
//! | [`poll`] | poll, ppoll, pselect |
//! | [`epoll`] | epoll instances and waits |
//! | [`eventfd`] | eventfds, how one thread wakes another that sleeps in epoll |
//! | [`futex`] | futex wait/wake and the robust-futex ABI |
//! | [`ipc`] | System V message queues |
//! | [`signal`] | masks, signal waits, sending signals; glibc's reserved numbers |
//! | [`process`] | child processes: waits and pidfds |
//! | [`mem`] | address-space reservations, guards, page discard |
//! | [`time`] | clocks (the vDSO; CPU-time clocks, the time-stamp counter) |
//! | [`sched`] | the calling OS thread's scheduling policy, priority, nice value and CPU affinity |
//! | [`fsgs`] | the FS and GS segment bases |
//! | [`uring`] | io_uring futex waits (the kernel waits for a coroutine without blocking a thread) |
//! | `uring_probe.rs` | whether io_uring is available (the launcher's, included by path: not a module here) |
//! | [`usercopy`] | fault-safe copies from and to the program's memory |

pub mod abortable;
pub mod epoll;
pub mod eventfd;
pub mod fd;
pub mod fs;
pub mod fsgs;
pub mod futex;
pub mod ipc;
pub mod mem;
pub mod peek;
pub mod poll;
pub mod process;
pub mod sched;
pub mod signal;
pub mod socket;
pub mod syscall;
pub mod time;
pub mod uring;
pub mod usercopy;

pub use signal::sigmask;
pub use syscall::Errno;

/// Writes all of `msg` to stderr with raw `write(2)`; used for diagnostics from any context,
/// including a signal handler on an overflowed stack.
pub fn write_stderr(msg: &[u8]) {
    fd::write_all(2, msg);
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

/// This process's parent's id.
pub fn getppid() -> i32 {
    // SAFETY: getppid takes no arguments and cannot fail.
    unsafe { syscall::syscall0(libc::SYS_getppid).unwrap_or(0) as i32 }
}

/// Gives the CPU to another runnable OS thread (sched_yield).
pub fn sched_yield() {
    // SAFETY: sched_yield takes no arguments and touches no memory.
    let _ = unsafe { syscall::syscall0(libc::SYS_sched_yield) };
}
