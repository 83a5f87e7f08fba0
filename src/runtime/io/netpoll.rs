//! The netpoller: one epoll instance for the process, created on first use, that reports which watched
//! fds became ready. It knows nothing of the fd table or of waiters: a watched fd carries a token its
//! watcher chose (the fd table's number and generation), and [`poll`] hands back the tokens and event
//! bits of one `epoll_wait`, as Go's `netpoll` returns the goroutines it made ready and its caller (the
//! scheduler) makes them runnable — here the caller wakes the waiters through `io::ready`, all of one
//! batch at once. Workers poll without waiting between coroutines, and an idle worker waits in
//! `epoll_wait` itself (an eventfd wakes it when other work arrives), so no thread exists just for
//! polling.
//!
//! A leaf: the scheduler core calls it, so it imports nothing but `sys`.

use super::super::sys::syscall::Errno;
use super::super::sys::{epoll, eventfd};
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// What every watched fd is registered for: both directions and the unusual events, edge-triggered
/// (an fd is registered once per object and never re-armed).
const EVENTS: u32 = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLPRI | libc::EPOLLET) as u32;
/// The token of the poller's own eventfd; no watcher may use it.
pub const WAKE_TOKEN: u64 = u64::MAX;
const BATCH: usize = 128;

pub struct Netpoller {
    epfd: i32,
    wake_fd: i32,
    /// A worker is blocked in epoll_wait (only one at a time).
    pub waiting: AtomicBool,
}

static POLLER: OnceLock<Option<Netpoller>> = OnceLock::new();

/// The netpoller, if any fd was ever watched (programs that never wait on an fd have none).
pub fn get() -> Option<&'static Netpoller> {
    POLLER.get().and_then(|p| p.as_ref())
}

/// The netpoller, created now if need be. `own_fd` places each of its two fds where the runtime keeps
/// its own (the fd table's `move_high`: out of the program's way) and returns the number it ended at.
pub fn get_or_start(own_fd: fn(i32) -> i32) -> Option<&'static Netpoller> {
    POLLER
        .get_or_init(|| {
            let epfd = own_fd(epoll::create().ok()?);
            let wake_fd = own_fd(eventfd::new().ok()?);
            epoll::ctl(epfd, libc::EPOLL_CTL_ADD, wake_fd, libc::EPOLLIN as u32, WAKE_TOKEN).ok()?;
            Some(Netpoller { epfd, wake_fd, waiting: AtomicBool::new(false) })
        })
        .as_ref()
}

impl Netpoller {
    /// Watches `fd`'s current object (both directions, edge-triggered); its events carry `token`. A number
    /// still registered for an earlier object (closed unseen, the registration gone with it or not) is
    /// registered anew. Err(EPERM) for objects epoll cannot watch (regular files).
    pub fn watch(&self, fd: i32, token: u64) -> Result<(), Errno> {
        match epoll::ctl(self.epfd, libc::EPOLL_CTL_ADD, fd, EVENTS, token) {
            Err(Errno(libc::EEXIST)) => epoll::ctl(self.epfd, libc::EPOLL_CTL_MOD, fd, EVENTS, token),
            r => r,
        }
    }
}

/// Stops watching `fd` before it is closed or replaced (a duplicate elsewhere would keep the object, and
/// its registration, alive).
pub fn unwatch(fd: i32) {
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

/// One watched fd's readiness from one `epoll_wait`: the token it was watched with and epoll's bits.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct Event(libc::epoll_event);

impl Event {
    /// The token the fd was watched with.
    #[inline]
    pub fn token(&self) -> u64 {
        self.0.u64
    }
    /// The readiness it reports: readable, writable, and unusual (the peer shut down, an error, urgent
    /// data: a read may stop short).
    #[inline]
    pub fn readiness(&self) -> (bool, bool, bool) {
        let bits = self.0.events as i32;
        let err = libc::EPOLLERR | libc::EPOLLHUP;
        let read = bits & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLPRI | err) != 0;
        let write = bits & (libc::EPOLLOUT | err) != 0;
        let unusual = bits & (libc::EPOLLRDHUP | libc::EPOLLPRI | err) != 0;
        (read, write, unusual)
    }
}

/// Room for the events of one `epoll_wait`, on the caller's stack.
pub struct EventList {
    events: [MaybeUninit<libc::epoll_event>; BATCH],
}

impl EventList {
    pub fn new() -> EventList {
        // Left uninitialised: zeroing 128 events cost more than the rest of a poll.
        EventList { events: [const { MaybeUninit::uninit() }; BATCH] }
    }
}

impl Default for EventList {
    fn default() -> Self {
        Self::new()
    }
}

/// The watched fds `epoll_wait` reported, for the caller to wake their waiters (see
/// `Scheduler::poll_net`). `timeout_ms` 0 polls; a worker passes a positive value (or -1) only when idle.
pub fn poll(timeout_ms: i32, list: &mut EventList) -> &[Event] {
    let Some(p) = get() else { return &[] };
    // A worker blocked in epoll_wait gets every event anyway. Scanning the ready list beside it is not
    // only wasted: on this kernel (6.18) a concurrent non-blocking epoll_wait can leave the blocked one
    // asleep with events ready (seen as a hang with a retired spare; a signal made it see them).
    if timeout_ms == 0 && p.waiting.load(Ordering::Acquire) {
        return &[];
    }
    let n = epoll::wait(p.epfd, &mut list.events, timeout_ms).map_or(0, |r| r.len());
    // SAFETY: the kernel wrote the first n events.
    let events = unsafe { core::slice::from_raw_parts_mut(list.events.as_mut_ptr() as *mut libc::epoll_event, n) };
    // The wake-up event, if any (one at most: the eventfd is watched once), is drained and dropped by
    // moving the last event into its place.
    let mut n = events.len();
    if let Some(i) = events.iter().position(|ev| ev.u64 == WAKE_TOKEN) {
        eventfd::drain(p.wake_fd);
        events[i] = events[n - 1];
        n -= 1;
    }
    // SAFETY: Event is a transparent epoll_event; the first n are initialised.
    unsafe { core::slice::from_raw_parts(events.as_ptr() as *const Event, n) }
}

/// For the worker loop: whether a netpoller exists (cheap when none does).
#[inline]
pub fn exists() -> bool {
    get().is_some()
}

pub fn waiting_flag() -> Option<&'static AtomicBool> {
    get().map(|p| &p.waiting)
}
