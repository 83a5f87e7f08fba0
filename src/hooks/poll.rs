//! poll, ppoll, select, pselect and the epoll waits. A coroutine's wait parks (see `runtime::io::poll::poll_wait`)
//! between zero-timeout kernel calls, which give exactly the kernel's answers (POLLNVAL, EBADF, EFAULT,
//! EINVAL). A program's own epoll instance is watched through its fd, which epoll reports readable when
//! it has events. A signal mask passed to ppoll/pselect/epoll_pwait is the thread's for the whole call,
//! parked or not (`signals::TempMask`): a signal it lets through ends the wait with EINTR after its
//! handler ran in this thread.

use super::io::ret;
use crate::real;
use crate::runtime::cancel;
use crate::runtime::sys::syscall::Errno;
use crate::runtime::sys::{epoll, time, usercopy};
use crate::runtime::worker;
use crate::runtime::{io, signals};
use std::ffi::c_int;

/// Starts the temporary mask of a ppoll/pselect/epoll_pwait (none for a null or unreadable one: the
/// kernel probes report EFAULT).
fn temp_mask(mask: *const libc::sigset_t) -> Option<signals::TempMask> {
    if mask.is_null() {
        return None;
    }
    signals::TempMask::begin(usercopy::read(mask as *const u64).ok()?)
}

/// A wait with a temporary mask: signals sent to this thread that the mask lets through are delivered
/// first and end the call with EINTR, as the kernel's atomic mask switch would; after the wait, those that
/// interrupted it are delivered with the mask still in force.
fn with_temp_mask(mask: *const libc::sigset_t, wait: impl FnOnce() -> io::IoResult) -> io::IoResult {
    let temp = temp_mask(mask);
    if temp.as_ref().is_some_and(|t| t.deliver_pending()) {
        return Err(Errno(libc::EINTR));
    }
    let r = wait();
    if let (Some(t), Err(Errno(libc::EINTR))) = (&temp, &r) {
        t.deliver_pending();
    }
    r
}

fn deadline_ms(timeout: c_int) -> Option<u64> {
    (timeout >= 0).then(|| time::monotonic_ns().saturating_add(timeout as u64 * 1_000_000))
}

fn zero_ts() -> libc::timespec {
    libc::timespec { tv_sec: 0, tv_nsec: 0 }
}

/// The pollfds of a call the kernel just accepted (so the array is readable).
unsafe fn pollfds<'a>(fds: *const libc::pollfd, n: libc::nfds_t) -> &'a [libc::pollfd] {
    // SAFETY: the kernel read these n entries without EFAULT a moment ago.
    if n == 0 { &[] } else { unsafe { core::slice::from_raw_parts(fds, n as usize) } }
}

fn ppoll_probe(fds: *mut libc::pollfd, n: libc::nfds_t, mask: *const libc::sigset_t) -> io::IoResult {
    let ts = zero_ts();
    // SAFETY: the program's own arguments with a zero timeout; the kernel validates them.
    unsafe { crate::runtime::sys::poll::ppoll(fds, n, &ts, mask) }
}

/// # Safety
/// C contract of poll.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn poll(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int) -> c_int {
    cancel::point(|| {
        if timeout == 0 || worker::current_task().is_none() {
            // SAFETY: forwarding.
            return unsafe { real::poll(fds, n, timeout) };
        }
        let first = ppoll_probe(fds, n, core::ptr::null());
        if !matches!(first, Ok(0)) {
            return ret(first) as c_int;
        }
        // SAFETY: the probe succeeded on this array.
        let list = unsafe { pollfds(fds, n) };
        ret(io::poll::poll_wait(list, deadline_ms(timeout), || ppoll_probe(fds, n, core::ptr::null()))) as c_int
    })
}

/// # Safety
/// C contract of __poll_chk.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __poll_chk(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int, len: usize) -> c_int {
    if (len / size_of::<libc::pollfd>()) < n as usize {
        unsafe extern "C" {
            fn __chk_fail() -> !;
        }
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
        unsafe extern "C" {
            fn __chk_fail() -> !;
        }
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
        if worker::current_task().is_none() {
            // SAFETY: forwarding.
            return unsafe { real::ppoll(fds, n, ts, mask) };
        }
        let deadline = if ts.is_null() {
            None
        } else {
            match usercopy::read(ts).ok().and_then(|t| time::timespec_ns(&t)) {
                // SAFETY: forwarding the program's own call.
                Some(0) => return unsafe { real::ppoll(fds, n, ts, mask) },
                Some(ns) => Some(time::monotonic_ns().saturating_add(ns)),
                // Bad pointer or time: the kernel's answer.
                // SAFETY: forwarding the program's own call.
                None => return unsafe { real::ppoll(fds, n, ts, mask) },
            }
        };
        ret(with_temp_mask(mask, || {
            let first = ppoll_probe(fds, n, mask);
            if !matches!(first, Ok(0)) {
                return first;
            }
            // SAFETY: the probe succeeded on this array.
            let list = unsafe { pollfds(fds, n) };
            io::poll::poll_wait(list, deadline, || ppoll_probe(fds, n, mask))
        })) as c_int
    })
}

/// One zero-timeout pselect6 on copies of the sets, written back only when something is ready (or at the
/// end), so repeated probes always see the program's original sets.
struct SelectSets {
    n: c_int,
    sets: [*mut libc::fd_set; 3],
    orig: [Option<libc::fd_set>; 3],
}

impl SelectSets {
    fn probe(&self, mask: *const libc::sigset_t) -> io::IoResult {
        let mut work = self.orig;
        let ptrs = work.each_mut().map(|s| s.as_mut().map_or(core::ptr::null_mut(), |s| s as *mut libc::fd_set));
        let ts = zero_ts();
        // SAFETY: local copies of the sets, a zero timeout and the program's mask.
        let r = unsafe { crate::runtime::sys::poll::pselect(self.n, ptrs, &ts, mask) };
        if matches!(r, Ok(n) if n > 0) {
            self.write_back(&work);
        }
        r
    }

    fn write_back(&self, work: &[Option<libc::fd_set>; 3]) {
        for (dst, src) in self.sets.iter().zip(work) {
            if let (false, Some(s)) = (dst.is_null(), src) {
                let _ = usercopy::write(*dst, *s);
            }
        }
    }

    /// The fds to watch, as pollfds.
    fn pollfds(&self) -> Vec<libc::pollfd> {
        let mut out = Vec::new();
        for fd in 0..self.n.min(libc::FD_SETSIZE as c_int) {
            let mut events = 0;
            // SAFETY: FD_ISSET on our copies, fd < FD_SETSIZE.
            unsafe {
                if self.orig[0].as_ref().is_some_and(|s| libc::FD_ISSET(fd, s)) {
                    events |= libc::POLLIN;
                }
                if self.orig[1].as_ref().is_some_and(|s| libc::FD_ISSET(fd, s)) {
                    events |= libc::POLLOUT;
                }
                if self.orig[2].as_ref().is_some_and(|s| libc::FD_ISSET(fd, s)) {
                    events |= libc::POLLPRI;
                }
            }
            if events != 0 {
                out.push(libc::pollfd { fd, events, revents: 0 });
            }
        }
        out
    }

    /// Nothing became ready before the timeout: the sets come back empty, as from the kernel.
    fn clear(&self) {
        let empty: [Option<libc::fd_set>; 3] = self.orig.map(|s| {
            s.map(|mut s| {
                // SAFETY: FD_ZERO on a local set.
                unsafe { libc::FD_ZERO(&mut s) };
                s
            })
        });
        self.write_back(&empty);
    }
}

fn select_common(
    n: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    deadline: Option<u64>,
    mask: *const libc::sigset_t,
) -> Result<usize, Errno> {
    let read = |p: *mut libc::fd_set| if p.is_null() { Ok(None) } else { usercopy::read(p).map(Some) };
    let orig = [read(r)?, read(w)?, read(e)?];
    let sets = SelectSets { n, sets: [r, w, e], orig };
    let first = sets.probe(mask);
    if !matches!(first, Ok(0)) {
        return first;
    }
    let list = sets.pollfds();
    let res = io::poll::poll_wait(&list, deadline, || sets.probe(mask));
    if matches!(res, Ok(0)) {
        sets.clear();
    }
    res
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
        if worker::current_task().is_none() || n < 0 || n > libc::FD_SETSIZE as c_int {
            // SAFETY: forwarding (the kernel answers EINVAL for bad counts).
            return unsafe { real::select(n, r, w, e, tv) };
        }
        let deadline = if tv.is_null() {
            None
        } else {
            match usercopy::read(tv) {
                Ok(t) if t.tv_sec >= 0 && (0..1_000_000).contains(&t.tv_usec) => {
                    if t.tv_sec == 0 && t.tv_usec == 0 {
                        // SAFETY: forwarding a plain probe.
                        return unsafe { real::select(n, r, w, e, tv) };
                    }
                    Some(time::monotonic_ns().saturating_add(t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000))
                }
                // SAFETY: forwarding: the kernel reports the bad timeout.
                _ => return unsafe { real::select(n, r, w, e, tv) },
            }
        };
        let res = select_common(n, r, w, e, deadline, core::ptr::null());
        if let Some(d) = deadline {
            let left = d.saturating_sub(time::monotonic_ns());
            let t = libc::timeval {
                tv_sec: (left / 1_000_000_000) as i64,
                tv_usec: ((left % 1_000_000_000) / 1000) as i64,
            };
            let _ = usercopy::write(tv, t);
        }
        ret(res) as c_int
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
        if worker::current_task().is_none() || n < 0 || n > libc::FD_SETSIZE as c_int {
            // SAFETY: forwarding.
            return unsafe { real::pselect(n, r, w, e, ts, mask) };
        }
        let deadline = if ts.is_null() {
            None
        } else {
            match usercopy::read(ts).ok().and_then(|t| time::timespec_ns(&t)) {
                Some(ns) if ns > 0 => Some(time::monotonic_ns().saturating_add(ns)),
                // SAFETY: forwarding a zero timeout or a bad one.
                _ => return unsafe { real::pselect(n, r, w, e, ts, mask) },
            }
        };
        ret(with_temp_mask(mask, || select_common(n, r, w, e, deadline, mask))) as c_int
    })
}

fn epoll_probe(epfd: c_int, events: *mut libc::epoll_event, max: c_int, mask: *const libc::sigset_t) -> io::IoResult {
    // SAFETY: the program's own arguments with a zero timeout; the kernel validates them.
    unsafe { epoll::pwait(epfd, events, max, epoll::Timeout::Ms(0), mask) }
}

fn epoll_common(
    epfd: c_int,
    events: *mut libc::epoll_event,
    max: c_int,
    deadline: Option<u64>,
    mask: *const libc::sigset_t,
) -> c_int {
    ret(with_temp_mask(mask, || {
        let first = epoll_probe(epfd, events, max, mask);
        if !matches!(first, Ok(0)) {
            return first;
        }
        let me = [libc::pollfd { fd: epfd, events: libc::POLLIN, revents: 0 }];
        io::poll::poll_wait(&me, deadline, || epoll_probe(epfd, events, max, mask))
    })) as c_int
}

/// # Safety
/// C contract of epoll_wait.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_wait(epfd: c_int, events: *mut libc::epoll_event, max: c_int, timeout: c_int) -> c_int {
    cancel::point(|| {
        if timeout == 0 || worker::current_task().is_none() {
            // SAFETY: forwarding.
            return unsafe { real::epoll_wait(epfd, events, max, timeout) };
        }
        epoll_common(epfd, events, max, deadline_ms(timeout), core::ptr::null())
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
        if timeout == 0 || worker::current_task().is_none() {
            // SAFETY: forwarding.
            return unsafe { real::epoll_pwait(epfd, events, max, timeout, mask) };
        }
        epoll_common(epfd, events, max, deadline_ms(timeout), mask)
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
        let forward = || {
            // SAFETY: the kernel's own call with the program's arguments.
            ret(unsafe { epoll::pwait(epfd, events, max, epoll::Timeout::Spec(ts), mask) }) as c_int
        };
        if worker::current_task().is_none() {
            return forward();
        }
        let deadline = if ts.is_null() {
            None
        } else {
            match usercopy::read(ts).ok().and_then(|t| time::timespec_ns(&t)) {
                Some(ns) if ns > 0 => Some(time::monotonic_ns().saturating_add(ns)),
                _ => return forward(),
            }
        };
        epoll_common(epfd, events, max, deadline, mask)
    })
}
