//! The netpoller: one epoll instance for the process, created on first use. A file descriptor is
//! registered once per object (edge-triggered, for both directions) the first time a coroutine has to
//! wait on it; readiness bumps the fd entry's sequence number and wakes its waiters. [`poll`] returns the
//! ready fds and its caller (the scheduler) wakes them, all of one `epoll_wait` in one batch. Workers poll
//! without waiting between coroutines, and an idle worker waits in epoll_wait itself (an eventfd wakes it
//! when other work arrives), so no thread exists just for polling.

use super::fd;
use super::sys::syscall::Errno;
use super::sys::{self, epoll, eventfd};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::OnceLock;

const EVENTS: u32 = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLPRI | libc::EPOLLET) as u32;
const WAKE_TOKEN: u64 = u64::MAX;
const BATCH: usize = 128;

pub struct Netpoller {
    epfd: i32,
    wake_fd: i32,
    /// A worker is blocked in epoll_wait (only one at a time).
    pub waiting: AtomicBool,
}

static POLLER: OnceLock<Option<Netpoller>> = OnceLock::new();

/// The netpoller, if any fd was ever registered (programs that never wait on an fd have none).
pub fn get() -> Option<&'static Netpoller> {
    POLLER.get().and_then(|p| p.as_ref())
}

fn get_or_create() -> Option<&'static Netpoller> {
    POLLER
        .get_or_init(|| {
            let epfd = move_high(epoll::create().ok()?);
            let wake_fd = move_high(eventfd::new().ok()?);
            epoll::ctl(epfd, libc::EPOLL_CTL_ADD, wake_fd, libc::EPOLLIN as u32, WAKE_TOKEN).ok()?;
            Some(Netpoller { epfd, wake_fd, waiting: AtomicBool::new(false) })
        })
        .as_ref()
}

/// Moves one of the shim's own fds to the top of the fd space, so the program's `socket()`, `open()` ...
/// get the same numbers as without the shim, and marks it the runtime's own (see `fd::closing`).
pub(crate) fn move_high(fd: i32) -> i32 {
    let floor = sys::fd::open_files_limit().0.saturating_sub(16);
    // A duplicate of our own fd up there, then the original closed.
    match sys::fd::dup_from(fd, floor) {
        Ok(high) => {
            let _ = sys::fd::close(fd);
            fd::mark_runtime_own(high);
            high
        }
        Err(_) => {
            fd::mark_runtime_own(fd);
            fd
        }
    }
}

/// Makes sure `fd`'s current object is registered. Err(EPERM) for objects epoll cannot watch (regular
/// files): the caller then makes the real, blocking call.
pub fn register(fd: i32, e: &fd::FdEntry) -> Result<(), Errno> {
    let p = get_or_create().ok_or(Errno(libc::ENOMEM))?;
    // Registered for this object already: the common case, without the table's lock. (A close racing
    // with us bumps the generation, which the caller's park checks.)
    if e.registered.load(Ordering::Acquire) == e.generation.load(Ordering::Acquire).wrapping_add(1) {
        return Ok(());
    }
    fd::with_no_changes(|| {
        let generation = e.generation.load(Ordering::Acquire);
        if e.registered.load(Ordering::Acquire) == generation.wrapping_add(1) {
            return Ok(());
        }
        let data = (fd as u32 as u64) | ((generation as u64) << 32);
        match epoll::ctl(p.epfd, libc::EPOLL_CTL_ADD, fd, EVENTS, data) {
            Err(Errno(libc::EEXIST)) => epoll::ctl(p.epfd, libc::EPOLL_CTL_MOD, fd, EVENTS, data)?,
            r => r?,
        }
        e.registered.store(generation.wrapping_add(1), Ordering::Release);
        Ok(())
    })
}

/// Removes `fd` before it is closed or replaced (a duplicate elsewhere would keep the object, and its
/// registration, alive).
pub fn deregister(fd: i32) {
    if let Some(p) = get() {
        let _ = epoll::ctl(p.epfd, libc::EPOLL_CTL_DEL, fd, 0, 0);
    }
}

/// Wakes a worker blocked in [`poll`].
pub fn wake_waiter() {
    if let Some(p) = get() {
        eventfd::signal(p.wake_fd);
    }
}

/// One fd's readiness from one `epoll_wait`, for the caller to wake its waiters with [`Ready::wake`].
#[derive(Clone, Copy)]
pub struct Ready {
    entry: &'static fd::FdEntry,
    bits: u32,
}

impl Ready {
    /// Wakes the coroutines (and threads) waiting on the fd for what the event reports.
    pub fn wake(&self) {
        let bits = self.bits as i32;
        let err = libc::EPOLLERR | libc::EPOLLHUP;
        let read = bits & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLPRI | err) != 0;
        let write = bits & (libc::EPOLLOUT | err) != 0;
        let unusual = bits & (libc::EPOLLRDHUP | libc::EPOLLPRI | err) != 0;
        self.entry.ready(read, write, unusual);
    }
}

/// Room for the events of one `epoll_wait`, on the caller's stack.
pub struct ReadyList {
    events: [core::mem::MaybeUninit<libc::epoll_event>; BATCH],
    ready: [core::mem::MaybeUninit<Ready>; BATCH],
}

impl ReadyList {
    pub fn new() -> ReadyList {
        // Left uninitialised: zeroing 128 events cost more than the rest of a poll.
        ReadyList {
            events: [const { core::mem::MaybeUninit::uninit() }; BATCH],
            ready: [const { core::mem::MaybeUninit::uninit() }; BATCH],
        }
    }
}

impl Default for ReadyList {
    fn default() -> Self {
        Self::new()
    }
}

/// Collects readiness: the fds `epoll_wait` reported (readiness of an object since closed is dropped), for
/// the caller to wake (see `Scheduler::poll_net`), as Go's `netpoll` returns the goroutines it made
/// ready. `timeout_ms` 0 polls; a worker passes a positive value (or -1) only when idle.
pub fn poll(timeout_ms: i32, list: &mut ReadyList) -> &[Ready] {
    let Some(p) = get() else { return &[] };
    // A worker blocked in epoll_wait gets every event anyway. Scanning the ready list beside it is not
    // only wasted: on this kernel (6.18) a concurrent non-blocking epoll_wait can leave the blocked one
    // asleep with events ready (seen as a hang with a retired spare; a signal made it see them).
    if timeout_ms == 0 && p.waiting.load(Ordering::Acquire) {
        return &[];
    }
    let ready = epoll::wait(p.epfd, &mut list.events, timeout_ms).unwrap_or(&[]);
    let mut n = 0;
    for ev in ready {
        let data = ev.u64;
        if data == WAKE_TOKEN {
            eventfd::drain(p.wake_fd);
            continue;
        }
        let fd = data as u32 as i32;
        let generation = (data >> 32) as u32;
        let Some(e) = fd::entry(fd) else { continue };
        if e.generation.load(Ordering::Acquire) != generation {
            continue;
        }
        list.ready[n].write(Ready { entry: e, bits: ev.events });
        n += 1;
    }
    // SAFETY: the first n were written just now (Ready is Copy: nothing to drop).
    unsafe { core::slice::from_raw_parts(list.ready.as_ptr() as *const Ready, n) }
}

/// After the caller woke a poll's ready fds: waiters on several fds at once look again.
pub fn readiness_seen() {
    if MULTI_WAITERS.load(Ordering::Acquire) != 0 {
        EPOCH.fetch_add(1, Ordering::AcqRel);
        super::parking_lot::unpark_all(&EPOCH as *const AtomicU32 as usize, 0);
    }
}

/// Waiters on several fds at once (poll, select with more than one fd) park on this epoch, which any
/// readiness bumps; they then look again. Single-fd waits park on the fd's own sequence instead.
pub static EPOCH: AtomicU32 = AtomicU32::new(0);
pub static MULTI_WAITERS: AtomicU32 = AtomicU32::new(0);

/// For the worker loop: the epoll instance's readiness for a non-blocking poll (cheap when none exists).
#[inline]
pub fn exists() -> bool {
    get().is_some()
}

pub fn waiting_flag() -> Option<&'static AtomicBool> {
    get().map(|p| &p.waiting)
}
