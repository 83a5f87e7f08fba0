//! poll, ppoll, select, pselect and the epoll waits: a coroutine's wait is `runtime::io::poll`'s (it parks
//! between zero-timeout kernel calls); a plain thread's, and one the runtime leaves as it is (a zero or bad
//! timeout, a bad count), is the real call.

use super::io::ret;
use crate::real;
use crate::runtime::cancel;
use crate::runtime::io::poll as io_poll;
use crate::runtime::worker;
use std::ffi::c_int;

/// The waits whose shape is the same: a coroutine's goes to `runtime::io::poll` (`$coop`, None when the
/// runtime leaves the call as it is), a plain thread's and a left one to glibc; each is a cancellation point.
/// An `always` entry is the runtime's for every caller: glibc before 2.35 has no such function, so the
/// runtime makes the kernel's call itself for plain threads.
macro_rules! waits {
    () => {};
    ($(#[doc = $doc:literal])* $name:ident($($arg:ident: $t:ty),*) => always $all:expr; $($rest:tt)*) => {
        /// # Safety
        $(#[doc = $doc])*
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($($arg: $t),*) -> c_int {
            cancel::point(|| ret($all) as c_int)
        }
        waits!($($rest)*);
    };
    ($(#[doc = $doc:literal])* $name:ident($($arg:ident: $t:ty),*) => $coop:expr; $($rest:tt)*) => {
        /// # Safety
        $(#[doc = $doc])*
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($($arg: $t),*) -> c_int {
            cancel::point(|| {
                if worker::current_task().is_some()
                    && let Some(r) = $coop
                {
                    return ret(r) as c_int;
                }
                // SAFETY: forwarding.
                unsafe { real::$name($($arg),*) }
            })
        }
        waits!($($rest)*);
    };
}

waits! {
    /// C contract of poll.
    poll(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int) => io_poll::poll(fds, n, timeout);
    /// C contract of ppoll.
    ppoll(fds: *mut libc::pollfd, n: libc::nfds_t, ts: *const libc::timespec, mask: *const libc::sigset_t)
        => io_poll::ppoll(fds, n, ts, mask);
    /// C contract of select (Linux: the timeout is updated to the time left).
    select(n: c_int, r: *mut libc::fd_set, w: *mut libc::fd_set, e: *mut libc::fd_set, tv: *mut libc::timeval)
        => io_poll::select(io_poll::FdSets { n, sets: [r, w, e] }, tv);
    /// C contract of pselect.
    pselect(
        n: c_int,
        r: *mut libc::fd_set,
        w: *mut libc::fd_set,
        e: *mut libc::fd_set,
        ts: *const libc::timespec,
        mask: *const libc::sigset_t
    ) => io_poll::pselect(io_poll::FdSets { n, sets: [r, w, e] }, ts, mask);
    /// C contract of epoll_wait.
    epoll_wait(epfd: c_int, events: *mut libc::epoll_event, max: c_int, timeout: c_int)
        => io_poll::epoll_pwait(io_poll::EpollEvents { epfd, events, max }, timeout, core::ptr::null());
    /// C contract of epoll_pwait.
    epoll_pwait(epfd: c_int, events: *mut libc::epoll_event, max: c_int, timeout: c_int, mask: *const libc::sigset_t)
        => io_poll::epoll_pwait(io_poll::EpollEvents { epfd, events, max }, timeout, mask);
    /// C contract of epoll_pwait2.
    epoll_pwait2(
        epfd: c_int, events: *mut libc::epoll_event, max: c_int, ts: *const libc::timespec, mask: *const libc::sigset_t
    ) => always io_poll::epoll_pwait2(io_poll::EpollEvents { epfd, events, max }, ts, mask);
}

fortified! {
    __poll_chk(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int, len: usize) -> c_int,
        if len / size_of::<libc::pollfd>() >= n as usize => poll(fds, n, timeout);
    __ppoll_chk(
        fds: *mut libc::pollfd, n: libc::nfds_t, ts: *const libc::timespec, mask: *const libc::sigset_t, len: usize
    ) -> c_int, if len / size_of::<libc::pollfd>() >= n as usize => ppoll(fds, n, ts, mask);
}
