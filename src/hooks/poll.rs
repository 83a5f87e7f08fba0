//! poll, ppoll, select, pselect and the epoll waits: a coroutine's wait is `runtime::io::poll`'s (it parks
//! between zero-timeout kernel calls); a plain thread's, and one the runtime leaves as it is (a zero or bad
//! timeout, a bad count), is the real call.

use super::io::ret;
use crate::real;
use crate::runtime::cancel;
use crate::runtime::io::poll as io_poll;
use crate::runtime::worker;
use std::ffi::c_int;

unsafe extern "C" {
    fn __chk_fail() -> !;
}

/// # Safety
/// C contract of poll.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn poll(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int) -> c_int {
    cancel::point(|| {
        if worker::current_task().is_some()
            && let Some(r) = io_poll::poll(fds, n, timeout)
        {
            return ret(r) as c_int;
        }
        // SAFETY: forwarding.
        unsafe { real::poll(fds, n, timeout) }
    })
}

/// # Safety
/// C contract of __poll_chk.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __poll_chk(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int, len: usize) -> c_int {
    if (len / size_of::<libc::pollfd>()) < n as usize {
        // SAFETY: glibc's fortify failure report.
        unsafe { __chk_fail() }
    }
    // SAFETY: as for poll.
    unsafe { poll(fds, n, timeout) }
}

/// # Safety
/// C contract of __ppoll_chk (the _FORTIFY_SOURCE ppoll).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __ppoll_chk(
    fds: *mut libc::pollfd,
    n: libc::nfds_t,
    ts: *const libc::timespec,
    mask: *const libc::sigset_t,
    len: usize,
) -> c_int {
    if (len / size_of::<libc::pollfd>()) < n as usize {
        // SAFETY: glibc's fortify failure report.
        unsafe { __chk_fail() }
    }
    // SAFETY: as for ppoll.
    unsafe { ppoll(fds, n, ts, mask) }
}

/// # Safety
/// C contract of ppoll.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ppoll(
    fds: *mut libc::pollfd,
    n: libc::nfds_t,
    ts: *const libc::timespec,
    mask: *const libc::sigset_t,
) -> c_int {
    cancel::point(|| {
        if worker::current_task().is_some()
            && let Some(r) = io_poll::ppoll(fds, n, ts, mask)
        {
            return ret(r) as c_int;
        }
        // SAFETY: forwarding.
        unsafe { real::ppoll(fds, n, ts, mask) }
    })
}

/// # Safety
/// C contract of select (Linux: the timeout is updated to the time left).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn select(
    n: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    tv: *mut libc::timeval,
) -> c_int {
    cancel::point(|| {
        if worker::current_task().is_some()
            && let Some(res) = io_poll::select(n, r, w, e, tv)
        {
            return ret(res) as c_int;
        }
        // SAFETY: forwarding.
        unsafe { real::select(n, r, w, e, tv) }
    })
}

/// # Safety
/// C contract of pselect.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pselect(
    n: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    ts: *const libc::timespec,
    mask: *const libc::sigset_t,
) -> c_int {
    cancel::point(|| {
        if worker::current_task().is_some()
            && let Some(res) = io_poll::pselect(n, r, w, e, ts, mask)
        {
            return ret(res) as c_int;
        }
        // SAFETY: forwarding.
        unsafe { real::pselect(n, r, w, e, ts, mask) }
    })
}

/// # Safety
/// C contract of epoll_wait.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_wait(epfd: c_int, events: *mut libc::epoll_event, max: c_int, timeout: c_int) -> c_int {
    cancel::point(|| {
        if worker::current_task().is_some()
            && let Some(r) = io_poll::epoll_pwait(epfd, events, max, timeout, core::ptr::null())
        {
            return ret(r) as c_int;
        }
        // SAFETY: forwarding.
        unsafe { real::epoll_wait(epfd, events, max, timeout) }
    })
}

/// # Safety
/// C contract of epoll_pwait.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_pwait(
    epfd: c_int,
    events: *mut libc::epoll_event,
    max: c_int,
    timeout: c_int,
    mask: *const libc::sigset_t,
) -> c_int {
    cancel::point(|| {
        if worker::current_task().is_some()
            && let Some(r) = io_poll::epoll_pwait(epfd, events, max, timeout, mask)
        {
            return ret(r) as c_int;
        }
        // SAFETY: forwarding.
        unsafe { real::epoll_pwait(epfd, events, max, timeout, mask) }
    })
}

/// # Safety
/// C contract of epoll_pwait2.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_pwait2(
    epfd: c_int,
    events: *mut libc::epoll_event,
    max: c_int,
    ts: *const libc::timespec,
    mask: *const libc::sigset_t,
) -> c_int {
    cancel::point(|| {
        if worker::current_task().is_none() {
            return ret(io_poll::epoll_pwait2_now(epfd, events, max, ts, mask)) as c_int;
        }
        ret(io_poll::epoll_pwait2(epfd, events, max, ts, mask)) as c_int
    })
}
