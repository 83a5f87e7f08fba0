//! A coroutine's wait on several fds at once (poll, ppoll, select, pselect, epoll_wait): the kernel is
//! asked with a zero timeout, and between asks the coroutine parks on what readiness of its fds moves.

use super::super::park::{OnSignal, Wait, WaitReason};
use super::super::parking_lot::{self, Parked};
use super::super::sys::syscall::Errno;
use super::IoResult;
use super::closing;
use super::fd::{self, Dir, FdEntry, Kind};
use super::kind::kind_of;
use super::ready::{EPOCH, MULTI_WAITERS};
use core::sync::atomic::Ordering;

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
            Some((e, d)) => (e.seq(d) as *const _ as usize, e.seq(d).load(Ordering::Acquire)),
            None => (&EPOCH as *const _ as usize, EPOCH.load(Ordering::Acquire)),
        };
        match probe() {
            Ok(0) => {}
            other => break other,
        }
        // SAFETY: the key is the address of a live AtomicU32 (an fd entry's sequence or the epoch).
        let word = unsafe { &*(key as *const core::sync::atomic::AtomicU32) };
        let wait = Wait::new(WaitReason::Poll, 0, OnSignal::Fail).until(deadline);
        match parking_lot::park(key, 0, || word.load(Ordering::Acquire) == seq, || {}, wait) {
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
