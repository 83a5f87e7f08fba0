//! Waiting for child processes. A wait for one child's exit (`waitpid(pid > 0)` without WUNTRACED or
//! WCONTINUED, `waitid(P_PID, pid)` for WEXITED only) parks on a pidfd, which the netpoller sees becoming readable when the child ends; the wait
//! is then interrupted by a handled signal exactly as the kernel's is (EINTR, or restarted under
//! SA_RESTART). Waits for any child or a process group, and waits for stops and continues, have nothing
//! to poll: a helper thread waits with `waitid(..., WNOWAIT)` — which reaps nothing — while the coroutine
//! parks, and the coroutine itself then makes the program's call with WNOHANG, so the child the kernel
//! picks is reaped (and its status written) only by a call that really returns. A handled signal or a
//! cancellation request aborts the helper's wait (`offload::run_abortable`); the handler runs on the
//! coroutine's own stack and the call fails with EINTR or is made again, as the kernel's; a cancelled
//! wait leaves its child unreaped.

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
    // The same wait as a waitid: wait4 reports exits always, stops under WUNTRACED.
    const WAIT4_OPTIONS: i32 =
        libc::WNOHANG | libc::WUNTRACED | libc::WCONTINUED | libc::__WNOTHREAD | libc::__WCLONE | libc::__WALL;
    let (idtype, id) = match pid {
        -1 => (libc::P_ALL, 0),
        // The caller's process group (P_PGID 0 means it from Linux 5.4 on).
        0 => (libc::P_PGID, 0),
        p if p > 0 => (libc::P_PID, p as u32),
        p if p != i32::MIN => (libc::P_PGID, (-p) as u32),
        // The kernel's own answer (ESRCH), at once.
        _ => return call(options),
    };
    if options & !WAIT4_OPTIONS != 0 {
        // EINVAL, at once.
        return call(options);
    }
    let waitid_options =
        libc::WEXITED | (options & !libc::WUNTRACED) | if options & libc::WUNTRACED != 0 { libc::WSTOPPED } else { 0 };
    wait_on_helper(idtype, id, waitid_options, || call(options | libc::WNOHANG))
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
    // The program's call made with WNOHANG, into its own siginfo or (when it passed none) ours, to tell a
    // child found (Ok(1)) from none (Ok(0)).
    let try_reap = || {
        let mut ours: libc::siginfo_t = zeroed_siginfo();
        let target = if info.is_null() { &mut ours as *mut libc::siginfo_t } else { info };
        // SAFETY: the program's own siginfo, or ours.
        match unsafe { process::waitid(idtype, id, target, options | libc::WNOHANG) } {
            Ok(_) => match usercopy::read(target as *const libc::siginfo_t) {
                Ok(si) if si.si_signo == 0 => Ok(0),
                Ok(_) => Ok(1),
                Err(_) => Err(Errno(libc::EFAULT)),
            },
            r => r,
        }
    };
    wait_on_helper(idtype, id, options, try_reap).map(|_| 0)
}

/// A zeroed siginfo_t.
fn zeroed_siginfo() -> libc::siginfo_t {
    // SAFETY: siginfo_t is plain data; all zeroes is a valid value.
    unsafe { core::mem::zeroed() }
}

/// Waits for a child that `waitid(idtype, id, ..., options)` would report, on a helper thread with WNOWAIT
/// (nothing is reaped there), then reaps it here with `try_reap` (the program's own call with WNOHANG:
/// Ok(0) when nothing is waitable any more, because another thread reaped it first; then the wait goes
/// on). An error the helper's wait gets (ECHILD, EINVAL) is the program's call's too, so `try_reap` gives
/// it. A handled signal ends the wait with EINTR unless a child is waitable by then (the kernel looks for
/// one before it reports the signal), or the call is made again under SA_RESTART; a cancellation request
/// ends it with nothing reaped.
fn wait_on_helper(idtype: u32, id: u32, options: i32, mut try_reap: impl FnMut() -> IoResult) -> IoResult {
    use super::offload::{self, Interrupted};
    let options = (options & !libc::WNOHANG) | libc::WNOWAIT;
    loop {
        let (_, how) = offload::run_abortable(super::stats::Offload::Process, move |abort| {
            // SAFETY: waitid with no siginfo and no rusage touches no memory of ours.
            unsafe {
                sys::abortable::call(abort, libc::SYS_waitid, [idtype as usize, id as usize, 0, options as usize, 0, 0])
            }
        });
        match how {
            Interrupted::Cancel => return Err(Errno(libc::EINTR)),
            Interrupted::No => {}
            Interrupted::Signal { restarts } => match try_reap() {
                Ok(0) if restarts => continue,
                Ok(0) => return Err(Errno(libc::EINTR)),
                found => return found,
            },
        }
        match try_reap() {
            Ok(0) => continue,
            found => return found,
        }
    }
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

/// system(3) for the calling thread, `call` being glibc's own (which owns its command string): a coroutine
/// has a helper thread make it and stays reachable meanwhile (`offload::run_detachable`): a handler runs on
/// its own stack and the wait goes on, as glibc's system goes on waiting after EINTR. A cancellation
/// request does what glibc's cancellation handler for system does natively: the child is killed with
/// SIGKILL and reaped (by glibc's system on the helper, which then restores the signal actions it changed)
/// before the cancellation is acted on.
pub fn system(call: impl FnOnce() -> i32 + Send + 'static) -> i32 {
    super::offload::run_detachable(super::stats::Offload::Process, call, kill_children_of)
}

/// pclose(3) for the calling thread, `call` being glibc's own: as [`system`], but not a cancellation point.
pub fn pclose(call: impl FnOnce() -> i32 + Send + 'static) -> i32 {
    super::offload::run_detachable(super::stats::Offload::Process, call, |_| true)
}

/// Kills with SIGKILL the children OS thread `tid` of this process made (the child a helper's `system`
/// waits for). False if it has none yet (it has not spawned it: look again later); true once killed, or if
/// the kernel does not list a thread's children (then the call simply runs its course).
fn kill_children_of(tid: i32) -> bool {
    if tid == 0 {
        return false;
    }
    let Ok(path) = std::ffi::CString::new(format!("/proc/self/task/{tid}/children")) else { return true };
    let Ok(fd) = sys::fs::open(&path, libc::O_RDONLY | libc::O_CLOEXEC, 0) else { return true };
    let mut buf = [0u8; 256];
    // SAFETY: our own buffer.
    let n = unsafe { sys::fd::read(fd, buf.as_mut_ptr(), buf.len()) };
    let _ = sys::fd::close(fd);
    let Ok(n) = n else { return true };
    let mut any = false;
    for pid in
        buf[..n].split(|b| b.is_ascii_whitespace()).filter_map(|w| std::str::from_utf8(w).ok()?.parse::<i32>().ok())
    {
        // The child of our own helper's system().
        let _ = sys::signal::kill(pid, libc::SIGKILL);
        any = true;
    }
    any
}
