//! libc's generic `syscall()`. The futex call parks coroutines: it is how Rust's std, C++20 atomic waits
//! and hand-written locks wait. gettid, tgkill/tkill, the sched_* and priority calls and the CPU-clock
//! calls go through their hooks (a coroutine's tid is the runtime's to answer for). close, dup2, dup3 and close_range go through their hooks, and fcntl/ioctl changes of O_NONBLOCK are noted so the fd table
//! sees them. Every other call is made as glibc would make it.
//!
//! `syscall` is variadic in C; on x86-64 a variadic callee receives integer arguments exactly as a
//! fixed-arity one does (six registers, then the stack), so it is defined with all seven.

use super::set_errno;
use crate::runtime::{self, sync, sys::syscall::syscall6};
use std::ffi::c_long;

/// # Safety
/// C contract of syscall(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn syscall(
    n: c_long,
    a1: usize,
    a2: usize,
    a3: usize,
    a4: usize,
    a5: usize,
    a6: usize,
) -> c_long {
    // Calls that change what an fd number names go through their hooks, so the runtime's fd table sees them.
    match n {
        // SAFETY: the program's own arguments, passed to the hook with its C contract.
        libc::SYS_close => return unsafe { super::io::close(a1 as i32) } as c_long,
        // SAFETY: as above.
        libc::SYS_dup2 => return unsafe { super::io::dup2(a1 as i32, a2 as i32) } as c_long,
        // SAFETY: as above.
        libc::SYS_dup3 => return unsafe { super::io::dup3(a1 as i32, a2 as i32, a3 as i32) } as c_long,
        libc::SYS_close_range => {
            // SAFETY: as above.
            return unsafe { super::io::close_range(a1 as u32, a2 as u32, a3 as i32) } as c_long;
        }
        _ => {}
    }
    // Calls that name a thread by tid or read a thread's CPU clock: a coroutine's are the runtime's.
    if n != libc::SYS_futex
        && let Some(r) = super::sched::raw(n, a1, a2, a3, a4).or_else(|| super::clock::raw(n, a1, a2, a3, a4))
    {
        return match r {
            Ok(v) => v as c_long,
            Err(e) => {
                set_errno(e.0);
                -1
            }
        };
    }
    // kill and rt_sigqueueinfo to a coroutine's tid reach its process, as to any thread's tid.
    let a1 = if (n == libc::SYS_rt_sigqueueinfo || n == libc::SYS_kill) && runtime::running() {
        runtime::signals::process_of_tid(a1 as i32) as usize
    } else {
        a1
    };
    let r = if n == libc::SYS_futex && runtime::running() {
        sync::futex::futex(a1, a2 as i32, a3 as u32, a4, a5, a6 as u32)
    } else {
        // SAFETY: the program's own system call, made unchanged.
        unsafe { syscall6(n, [a1, a2, a3, a4, a5, a6]) }
    };
    if runtime::running() {
        match (n, a2 as i32) {
            (libc::SYS_fcntl, libc::F_SETFL) => runtime::io::fd::flags_changed(),
            (libc::SYS_fcntl, libc::F_DUPFD | libc::F_DUPFD_CLOEXEC) => {
                if let Ok(fd) = r {
                    runtime::io::kind::duplicated(fd as i32);
                }
            }
            (libc::SYS_ioctl, _) if a2 as libc::c_ulong == libc::FIONBIO => runtime::io::fd::flags_changed(),
            _ => {}
        }
    }
    match r {
        Ok(v) => v as c_long,
        Err(e) => {
            set_errno(e.0);
            -1
        }
    }
}
