//! A coroutine's wait on several fds at once: poll, ppoll, select, pselect and the epoll waits. The
//! kernel is asked with a zero timeout, which gives exactly its answers (POLLNVAL, EBADF, EFAULT,
//! EINVAL); between asks the coroutine parks on what readiness of its fds moves ([`poll_wait`]). A
//! program's own epoll instance is watched through its fd, which epoll reports readable when it has
//! events. A signal mask passed to ppoll/pselect/epoll_pwait is the thread's for the whole call, parked or
//! not (`signals::TempMask`): a signal it lets through ends the wait with EINTR after its handler ran in
//! this thread.
//!
//! Each entry returns None when the call is to be made as it is (a zero timeout, a bad one or a count the
//! kernel refuses: the real call gives the kernel's and glibc's own answer).
// The pointers these functions take are the program's own (pollfd arrays, fd sets, timeouts, masks,
// event buffers), which Rust code reads only through `usercopy` or after the kernel accepted them.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use super::super::park::{OnSignal, Wait, WaitReason};
use super::super::parking_lot::{self, Parked};
use super::super::signals;
use super::super::sys::syscall::Errno;
use super::super::sys::{self, epoll, time, usercopy};
use super::super::worker;
use super::IoResult;
use super::closing;
use super::fd::{self, Dir, FdEntry, Kind};
use super::kind::kind_of;
use super::ready::{EPOCH, MULTI_WAITERS};
use core::sync::atomic::Ordering;
use std::ffi::c_int;

/// poll(fds, n, timeout) for a coroutine.
pub fn poll(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int) -> Option<IoResult> {
    if timeout == 0 {
        return None;
    }
    let first = ppoll_probe(fds, n, core::ptr::null());
    if !matches!(first, Ok(0)) {
        return Some(first);
    }
    // SAFETY: the probe succeeded on this array.
    let list = unsafe { pollfds(fds, n) };
    Some(poll_wait(list, deadline_ms(timeout), || ppoll_probe(fds, n, core::ptr::null())))
}

/// The deadline a `timespec` timeout asks for: Some(None) for none (null), None for a zero timeout (a plain
/// probe) or a bad pointer or time, which the real call answers as the kernel does.
fn timespec_deadline(ts: *const libc::timespec) -> Option<Option<u64>> {
    if ts.is_null() {
        return Some(None);
    }
    match usercopy::read(ts).ok().and_then(|t| time::timespec_ns(&t)) {
        Some(ns) if ns > 0 => Some(Some(time::monotonic_ns().saturating_add(ns))),
        _ => None,
    }
}

/// ppoll(fds, n, ts, mask) for a coroutine.
pub fn ppoll(
    fds: *mut libc::pollfd,
    n: libc::nfds_t,
    ts: *const libc::timespec,
    mask: *const libc::sigset_t,
) -> Option<IoResult> {
    let deadline = timespec_deadline(ts)?;
    Some(with_temp_mask(mask, || {
        let first = ppoll_probe(fds, n, mask);
        if !matches!(first, Ok(0)) {
            return first;
        }
        // SAFETY: the probe succeeded on this array.
        let list = unsafe { pollfds(fds, n) };
        poll_wait(list, deadline, || ppoll_probe(fds, n, mask))
    }))
}

/// What select and pselect wait on: the count `n` and the read, write and exception sets (each may be
/// null), as the program passed them.
#[derive(Clone, Copy)]
pub struct FdSets {
    pub n: c_int,
    pub sets: [*mut libc::fd_set; 3],
}

impl FdSets {
    /// A count the kernel accepts; it answers EINVAL for the others, so those calls are left to it.
    fn counted(self) -> Option<FdSets> {
        (0..=libc::FD_SETSIZE as c_int).contains(&self.n).then_some(self)
    }
}

/// select(sets, tv) for a coroutine (Linux: the timeout is updated to the time left).
pub fn select(sets: FdSets, tv: *mut libc::timeval) -> Option<IoResult> {
    let sets = sets.counted()?;
    let deadline = if tv.is_null() {
        None
    } else {
        match usercopy::read(tv) {
            Ok(t) if t.tv_sec >= 0 && (0..1_000_000).contains(&t.tv_usec) => {
                if t.tv_sec == 0 && t.tv_usec == 0 {
                    // A plain probe.
                    return None;
                }
                Some(time::monotonic_ns().saturating_add(t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000))
            }
            // The kernel reports the bad timeout.
            _ => return None,
        }
    };
    let res = select_common(sets, deadline, core::ptr::null());
    if let Some(d) = deadline {
        let left = d.saturating_sub(time::monotonic_ns());
        let t =
            libc::timeval { tv_sec: (left / 1_000_000_000) as i64, tv_usec: ((left % 1_000_000_000) / 1000) as i64 };
        let _ = usercopy::write(tv, t);
    }
    Some(res)
}

/// pselect(sets, ts, mask) for a coroutine.
pub fn pselect(sets: FdSets, ts: *const libc::timespec, mask: *const libc::sigset_t) -> Option<IoResult> {
    let sets = sets.counted()?;
    let deadline = timespec_deadline(ts)?;
    Some(with_temp_mask(mask, || select_common(sets, deadline, mask)))
}

/// What an epoll wait fills: the instance, the program's event array and its length.
#[derive(Clone, Copy)]
pub struct EpollEvents {
    pub epfd: c_int,
    pub events: *mut libc::epoll_event,
    pub max: c_int,
}

impl EpollEvents {
    /// One epoll_pwait2(2) with the program's own arguments; the kernel validates them.
    fn wait(self, timeout: epoll::Timeout, mask: *const libc::sigset_t) -> IoResult {
        // SAFETY: the program's own event array and mask, which the kernel checks.
        unsafe { epoll::pwait(self.epfd, self.events, self.max, timeout, mask) }
    }
}

/// epoll_wait (`timeout` in ms, -1: none; no mask) and epoll_pwait for a coroutine.
pub fn epoll_pwait(ev: EpollEvents, timeout: c_int, mask: *const libc::sigset_t) -> Option<IoResult> {
    if timeout == 0 {
        return None;
    }
    Some(epoll_common(ev, deadline_ms(timeout), mask))
}

/// epoll_pwait2: a coroutine's waits here; a plain thread's, and one that cannot wait, is the kernel's
/// own call (glibc's wrapper adds nothing), made here too.
pub fn epoll_pwait2(ev: EpollEvents, ts: *const libc::timespec, mask: *const libc::sigset_t) -> IoResult {
    match worker::current_task().and_then(|_| timespec_deadline(ts)) {
        Some(deadline) => epoll_common(ev, deadline, mask),
        None => ev.wait(epoll::Timeout::Spec(ts), mask),
    }
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

fn ppoll_probe(fds: *mut libc::pollfd, n: libc::nfds_t, mask: *const libc::sigset_t) -> IoResult {
    let ts = zero_ts();
    // SAFETY: the program's own arguments with a zero timeout; the kernel validates them.
    unsafe { sys::poll::ppoll(fds, n, &ts, mask) }
}

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
/// interrupted it are delivered with the mask still in force, all in one nesting (none ran as the
/// coroutine resumed), and then those the thread's own mask lets through (as the mask ends).
fn with_temp_mask(mask: *const libc::sigset_t, wait: impl FnOnce() -> IoResult) -> IoResult {
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

/// One zero-timeout pselect6 on copies of the sets, written back only when something is ready (or at the
/// end), so repeated probes always see the program's original sets.
struct SelectSets {
    n: c_int,
    sets: [*mut libc::fd_set; 3],
    orig: [Option<libc::fd_set>; 3],
}

impl SelectSets {
    fn probe(&self, mask: *const libc::sigset_t) -> IoResult {
        let mut work = self.orig;
        let ptrs = work.each_mut().map(|s| s.as_mut().map_or(core::ptr::null_mut(), |s| s as *mut libc::fd_set));
        let ts = zero_ts();
        // SAFETY: local copies of the sets, a zero timeout and the program's mask.
        let r = unsafe { sys::poll::pselect(self.n, ptrs, &ts, mask) };
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

fn select_common(fds: FdSets, deadline: Option<u64>, mask: *const libc::sigset_t) -> Result<usize, Errno> {
    let read = |p: *mut libc::fd_set| if p.is_null() { Ok(None) } else { usercopy::read(p).map(Some) };
    let [r, w, e] = fds.sets;
    let orig = [read(r)?, read(w)?, read(e)?];
    let sets = SelectSets { n: fds.n, sets: fds.sets, orig };
    let first = sets.probe(mask);
    if !matches!(first, Ok(0)) {
        return first;
    }
    let list = sets.pollfds();
    let res = poll_wait(&list, deadline, || sets.probe(mask));
    if matches!(res, Ok(0)) {
        sets.clear();
    }
    res
}

fn epoll_common(ev: EpollEvents, deadline: Option<u64>, mask: *const libc::sigset_t) -> IoResult {
    with_temp_mask(mask, || {
        let first = ev.wait(epoll::Timeout::Ms(0), mask);
        if !matches!(first, Ok(0)) {
            return first;
        }
        let me = [libc::pollfd { fd: ev.epfd, events: libc::POLLIN, revents: 0 }];
        poll_wait(&me, deadline, || ev.wait(epoll::Timeout::Ms(0), mask))
    })
}

/// poll(2) for a coroutine: the kernel answers at once with a zero timeout; if nothing is ready, the
/// coroutine parks until one of the fds may have changed (its own readiness sequence for a single fd and
/// direction, else the netpoller's epoch), the timeout passes, or a handled signal interrupts it (EINTR:
/// poll is never restarted). `probe` makes the zero-timeout kernel call and returns its result.
pub fn poll_wait(fds: &[libc::pollfd], deadline: Option<u64>, mut probe: impl FnMut() -> IoResult) -> IoResult {
    // Register every valid fd so its readiness reaches us; note a single fd and direction.
    let mut single: Option<(&'static FdEntry, Dir)> = None;
    let mut watchable = 0;
    for p in fds {
        if p.fd < 0 {
            continue;
        }
        let Some(e) = fd::entry(p.fd) else { continue };
        if kind_of(p.fd, e) == Kind::Blocking || fd::register(p.fd, e).is_err() {
            continue;
        }
        watchable += 1;
        if p.events & libc::POLLOUT != 0 {
            // Before the first probe: see `FdEntry::ready`.
            e.note_write_wait();
        }
        let dir = match (p.events & (libc::POLLIN | libc::POLLPRI) != 0, p.events & libc::POLLOUT != 0) {
            (true, false) => Some(Dir::Read),
            (false, true) => Some(Dir::Write),
            _ => None,
        };
        single = dir.map(|d| (e, d));
    }
    if watchable != 1 {
        single = None;
    }
    let multi = single.is_none();
    if multi {
        MULTI_WAITERS.fetch_add(1, Ordering::AcqRel);
    }
    let result = loop {
        let (key, seq) = match single {
            Some((e, d)) => (e.seq(d) as *const _ as usize, e.seq(d).load(Ordering::SeqCst)),
            None => (&EPOCH as *const _ as usize, EPOCH.load(Ordering::Acquire)),
        };
        match probe() {
            Ok(0) => {}
            other => break other,
        }
        // SAFETY: the key is the address of a live AtomicU32 (an fd entry's sequence or the epoch).
        let word = unsafe { &*(key as *const core::sync::atomic::AtomicU32) };
        let wait = Wait::new(WaitReason::Poll, 0, OnSignal::Fail).until(deadline);
        // SeqCst: see `FdEntry::wake_side` (a single fd's waiter parks in the lot, counted there).
        let unchanged = || word.load(Ordering::SeqCst) == seq;
        let parked = match single {
            Some((e, d)) => e.park_in_lot(d, unchanged, wait),
            None => parking_lot::park(key, 0, unchanged, || {}, wait),
        };
        match parked {
            Parked::TimedOut => break probe(),
            Parked::Interrupted => break Err(Errno(libc::EINTR)),
            // The fd was closed and this wait was counted as a user of its hidden duplicate: poll looks
            // at the numbers again instead (the closed one reports POLLNVAL).
            Parked::Unparked(token) if token != 0 => closing::release_hidden(token as i32 - 1),
            _ => {}
        }
    };
    if multi {
        MULTI_WAITERS.fetch_sub(1, Ordering::AcqRel);
    }
    result
}
