//! Waiting for child processes. A wait for one child's exit (`waitpid(pid > 0)` without WUNTRACED or
//! WCONTINUED, `waitid(P_PID, pid)` for WEXITED only) parks on a pidfd, which the netpoller sees becoming readable when the child ends; the wait
//! is then interrupted by a handled signal exactly as the kernel's is (EINTR, or restarted under
//! SA_RESTART). Waits for any child or a process group, and waits for stops and continues, have nothing
//! to poll: a helper thread makes them while the coroutine parks (a signal does not end those).

use super::io::fd::{self, Dir};
use super::io::{IoResult, blocking, closing};
use super::sys::syscall::Errno;
use super::sys::{self, process, usercopy};

/// wait4(pid, status, options, rusage) for the calling thread (a coroutine parks).
pub fn wait4(pid: i32, status: usize, options: i32, rusage: usize) -> IoResult {
    let call = move |options: i32| {
        // SAFETY: the program's own arguments; its memory stays valid while it waits for this call.
        unsafe { process::wait4(pid, status as *mut i32, options, rusage as *mut libc::rusage) }
    };
    if options & libc::WNOHANG != 0 || super::worker::current_task().is_none() {
        return call(options);
    }
    if pid > 0
        && options & (libc::WUNTRACED | libc::WCONTINUED) == 0
        && let Some(r) = wait_on_pidfd(pid, || call(options | libc::WNOHANG))
    {
        return r;
    }
    super::offload::run(super::stats::Offload::Process, move || call(options))
}

/// waitid(idtype, id, info, options) for the calling thread (a coroutine parks).
pub fn waitid(idtype: u32, id: u32, info: *mut libc::siginfo_t, options: i32) -> IoResult {
    let info_addr = info as usize;
    let call = move |options: i32| {
        // SAFETY: the program's own arguments; its memory stays valid while it waits for this call.
        unsafe { process::waitid(idtype, id, info_addr as *mut libc::siginfo_t, options) }
    };
    if options & libc::WNOHANG != 0 || super::worker::current_task().is_none() {
        return call(options);
    }
    let exits_only = options & (libc::WSTOPPED | libc::WCONTINUED) == 0;
    // With WNOHANG and no child ready the kernel answers 0 and writes si_signo 0 (without `info` the two
    // cases cannot be told apart: then a helper waits).
    if idtype == libc::P_PID
        && id as i32 > 0
        && exits_only
        && !info.is_null()
        && let Some(r) = wait_on_pidfd(id as i32, || match call(options | libc::WNOHANG) {
            Ok(0) => match usercopy::read(info as *const libc::siginfo_t) {
                Ok(si) if si.si_signo == 0 => Ok(0),
                Ok(_) => Ok(1),
                Err(_) => Err(Errno(libc::EFAULT)),
            },
            r => r,
        })
    {
        // waitid answers 0 on success.
        return r.map(|_| 0);
    }
    super::offload::run(super::stats::Offload::Process, move || call(options))
}

/// Parks on a pidfd for `pid` until `try_reap` (a WNOHANG wait) finds the child. None when no pidfd can
/// be had (the caller then waits on a helper thread; the kernel's own answer, ECHILD say, comes from there).
fn wait_on_pidfd(pid: i32, mut try_reap: impl FnMut() -> IoResult) -> Option<IoResult> {
    let pidfd = process::pidfd_open(pid).ok()?;
    let pidfd = fd::move_high(pidfd);
    fd::opened(pidfd, fd::Kind::Pollable);
    let mut attempt = |_: i32, _: fd::Kind| match try_reap() {
        Ok(0) => Err(Errno(libc::EAGAIN)),
        r => r,
    };
    let r = match blocking::blocking_restarting(pidfd, Dir::Read, &mut attempt) {
        // The kernel looks for a waitable child before it reports a signal: a child that ended as the
        // signal came is reaped, not an EINTR.
        Err(Errno(libc::EINTR)) => match attempt(pidfd, fd::Kind::Pollable) {
            Err(Errno(libc::EAGAIN)) => Err(Errno(libc::EINTR)),
            r => r,
        },
        r => r,
    };
    fd::unmark_runtime_own(pidfd);
    let _ = closing::closing(pidfd);
    // Our own pidfd, which nothing uses any more.
    let _ = sys::fd::close(pidfd);
    Some(r)
}
