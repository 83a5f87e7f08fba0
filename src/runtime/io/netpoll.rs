//! The netpoller: one epoll instance for the process, created on first use, that reports which watched
//! fds became ready. It knows nothing of the fd table or of waiters: a watched fd carries a token its
//! watcher chose (the fd table's number and generation), and [`poll`] hands back the tokens and event
//! bits of one `epoll_wait`, as Go's `netpoll` returns the goroutines it made ready and its caller (the
//! scheduler) makes them runnable — here the caller wakes the waiters through `io::ready`, all of one
//! batch at once. Workers poll without waiting between coroutines, and an idle worker waits in
//! `epoll_wait` itself (an eventfd wakes it when other work arrives), so no thread exists just for
//! polling.
//!
//! Two readiness sources, chosen by `ASYNCSHIM_IO` when the netpoller starts (see README Configuration):
//! epoll (the default), or an io_uring ring with one multishot poll per watched fd. The ring's polls are
//! edge-triggered as epoll's registrations are and report the same bits; the ring's completions are read
//! from shared memory without a system call, an idle worker sleeps in `io_uring_enter`, and another wakes
//! it with a no-op whose completion it posts. What differs from epoll, and is handled here: a poll holds a
//! reference to the object (epoll's registration goes away with the object's last close), so `unwatch`
//! cancels it before the close and waits until the kernel has freed it (the submitting thread frees it,
//! perhaps later: a close before that would not be the last, and a peer would not see it); a poll armed by a thread that exits, or one that ended for
//! want of room in the completion queue, ends, and is armed again; io_uring polls every object, so
//! regular files and directories are refused here as epoll refuses them. Where io_uring is missing or
//! forbidden (kernel.io_uring_disabled, seccomp, a kernel before 6.0) the netpoller uses epoll. A forked
//! child carries on as a plain thread with every hook passing through, so it never polls the ring (or the
//! epoll instance) it inherited; exec closes both (close-on-exec), and the kernel cancels the polls a
//! thread armed when it execs or exits (a poll so ended is armed again, above).
//!
//! A leaf: the scheduler core calls it, so it imports nothing but `sys`, the runtime's lock and the
//! configuration.

use super::super::lock::Lock;
use super::super::sys::syscall::Errno;
use super::super::sys::uring::{IORING_CQE_F_MORE, Ring};
use super::super::sys::{epoll, eventfd};
use crate::config::{self, IoSource};
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, Ordering};
use std::collections::HashMap;
use std::sync::OnceLock;

/// What every watched fd is registered for: both directions and the unusual events, edge-triggered
/// (an fd is registered once per object and never re-armed).
const EVENTS: u32 = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLPRI | libc::EPOLLET) as u32;
/// The token of the poller's own eventfd; no watcher may use it.
pub const WAKE_TOKEN: u64 = u64::MAX;
const BATCH: usize = 128;

/// The io_uring poll events: epoll's, but edge-triggering is io_uring's default (and not a poll bit).
const POLL_EVENTS: u32 = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLPRI) as u32;

pub struct Netpoller {
    source: Source,
    /// A worker is blocked in epoll_wait or io_uring_enter (only one at a time).
    pub waiting: AtomicBool,
}

enum Source {
    Epoll { epfd: i32, wake_fd: i32 },
    Uring(UringPoller),
}

/// The ring and what it watches.
struct UringPoller {
    ring: SharedRing,
    /// Serialises submissions (the submission queue has one producer at a time). Taken only through
    /// [`UringPoller::submitting`], and by [`UringPoller::wake`] with a try-lock.
    submit: Lock<()>,
    /// A wake-up is wanted: [`UringPoller::wake`] runs in signal handlers too (a held process signal),
    /// where it must not wait for the submission lock that the interrupted thread may hold; it leaves
    /// this for whoever holds the lock, who submits the wake-up after releasing it.
    wake_pending: AtomicBool,
    /// Serialises reaping (the completion queue's head has one writer at a time).
    reap: Lock<()>,
    /// The token each watched fd number's poll carries: for cancelling it, and for arming it again when
    /// it ends without being cancelled. Taken before `submit`.
    armed: Lock<HashMap<i32, u64>>,
}

struct SharedRing(Ring);
// SAFETY: the ring's submitting and reaping methods are called under `UringPoller::submit` and `::reap`
// respectively; `wait` and `sync_cancel` may run beside anything (io_uring_enter without submissions,
// io_uring_register), as their documentation says.
unsafe impl Sync for SharedRing {}

static POLLER: OnceLock<Option<Netpoller>> = OnceLock::new();

/// The netpoller, if any fd was ever watched (programs that never wait on an fd have none).
pub fn get() -> Option<&'static Netpoller> {
    POLLER.get().and_then(|p| p.as_ref())
}

/// The netpoller, created now if need be. `own_fd` places each of its two fds where the runtime keeps
/// its own (the fd table's `move_high`: out of the program's way) and returns the number it ended at.
pub fn get_or_start(own_fd: fn(i32) -> i32) -> Option<&'static Netpoller> {
    super::super::lazy::get_or_init(&POLLER, || {
        if config::io_source() == IoSource::Uring {
            // The probe: a ring that can do what the netpoller needs, or epoll.
            if let Ok(mut ring) = Ring::for_netpoll() {
                ring.relocate_fd(own_fd);
                let p = UringPoller {
                    ring: SharedRing(ring),
                    submit: Lock::new(()),
                    wake_pending: AtomicBool::new(false),
                    reap: Lock::new(()),
                    armed: Lock::new(HashMap::new()),
                };
                return Some(Netpoller { source: Source::Uring(p), waiting: AtomicBool::new(false) });
            }
        }
        let epfd = own_fd(epoll::create().ok()?);
        let wake_fd = own_fd(eventfd::new().ok()?);
        epoll::ctl(epfd, libc::EPOLL_CTL_ADD, wake_fd, libc::EPOLLIN as u32, WAKE_TOKEN).ok()?;
        Some(Netpoller { source: Source::Epoll { epfd, wake_fd }, waiting: AtomicBool::new(false) })
    })
    .as_ref()
}

/// Which readiness source the netpoller uses, if it started: "epoll" or "uring" (for the statistics and
/// the tests of the fallback).
pub fn source_name() -> Option<&'static str> {
    get().map(|p| match p.source {
        Source::Epoll { .. } => "epoll",
        Source::Uring(_) => "uring",
    })
}

impl Netpoller {
    /// Watches `fd`'s current object (both directions, edge-triggered); its events carry `token`. A number
    /// still registered for an earlier object (closed unseen, the registration gone with it or not) is
    /// registered anew. Err(EPERM) for objects epoll cannot watch (regular files).
    pub fn watch(&self, fd: i32, token: u64) -> Result<(), Errno> {
        match &self.source {
            Source::Epoll { epfd, .. } => match epoll::ctl(*epfd, libc::EPOLL_CTL_ADD, fd, EVENTS, token) {
                Err(Errno(libc::EEXIST)) => epoll::ctl(*epfd, libc::EPOLL_CTL_MOD, fd, EVENTS, token),
                r => r,
            },
            Source::Uring(u) => u.watch(fd, token),
        }
    }
}

impl UringPoller {
    fn watch(&self, fd: i32, token: u64) -> Result<(), Errno> {
        // What epoll refuses (EPERM) is refused here too: an io_uring poll of a regular file or a
        // directory would report it ready for ever, where the caller makes the real call instead.
        let st = super::super::sys::fd::fstat(fd)?;
        if matches!(st.st_mode & libc::S_IFMT, libc::S_IFREG | libc::S_IFDIR) {
            return Err(Errno(libc::EPERM));
        }
        let mut armed = self.armed.lock();
        match armed.insert(fd, token) {
            // Armed for this very object already (one poll per token: its cancellation must not be
            // taken for one to arm again).
            Some(old) if old == token => return Ok(()),
            // The number's earlier object, closed unseen: its poll (and the reference it holds) goes.
            Some(old) => {
                let _ = self.ring.0.sync_cancel_and_free(old);
            }
            None => {}
        }
        let r = self.submitting(|ring| ring.submit_poll_multishot(fd, POLL_EVENTS, token));
        if r.is_err() {
            armed.remove(&fd);
        }
        r
    }

    fn unwatch(&self, fd: i32) {
        if let Some(token) = self.armed.lock().remove(&fd) {
            // Synchronously, until the poll is freed: its reference to the object must not outlive the
            // program's close (a socket's peer sees the close at once natively).
            let _ = self.ring.0.sync_cancel_and_free(token);
        }
    }

    /// A poll that ended without being cancelled here (its arming thread exited, or the completion queue
    /// had no room for its next completion) is armed again if its fd is still watched with its token.
    fn rearm(&self, token: u64) {
        let armed = self.armed.lock();
        let Some((&fd, _)) = armed.iter().find(|&(_, &t)| t == token) else { return };
        let _ = self.submitting(|ring| ring.submit_poll_multishot(fd, POLL_EVENTS, token));
    }

    /// Runs `f` with the ring's submission side to itself, then makes a wake-up asked for meanwhile.
    fn submitting<R>(&self, f: impl FnOnce(&Ring) -> R) -> R {
        let r = {
            let _g = self.submit.lock();
            f(&self.ring.0)
        };
        // Pairs with the fence in `wake`: either it saw the lock held after its request, or we see the
        // request here.
        core::sync::atomic::fence(Ordering::SeqCst);
        if self.wake_pending.load(Ordering::Relaxed) {
            self.wake();
        }
        r
    }

    /// Wakes the worker waiting in the ring with a no-op's completion. Async-signal-safe: when the
    /// submission lock is held (perhaps by the thread this handler interrupted), its holder submits the
    /// no-op after releasing it.
    fn wake(&self) {
        self.wake_pending.store(true, Ordering::Relaxed);
        loop {
            core::sync::atomic::fence(Ordering::SeqCst);
            let Some(g) = self.submit.try_lock() else { return };
            if self.wake_pending.swap(false, Ordering::AcqRel) {
                let _ = self.ring.0.submit_nop(WAKE_TOKEN);
            }
            drop(g);
            core::sync::atomic::fence(Ordering::SeqCst);
            if !self.wake_pending.load(Ordering::Relaxed) {
                return;
            }
        }
    }
}

/// Stops watching `fd` before it is closed or replaced (a duplicate elsewhere would keep the object, and
/// its registration, alive).
pub fn unwatch(fd: i32) {
    if let Some(p) = get() {
        match &p.source {
            Source::Epoll { epfd, .. } => {
                let _ = epoll::ctl(*epfd, libc::EPOLL_CTL_DEL, fd, 0, 0);
            }
            Source::Uring(u) => u.unwatch(fd),
        }
    }
}

/// Wakes a worker blocked in [`poll`]. Async-signal-safe.
pub fn wake_waiter() {
    if let Some(p) = get() {
        match &p.source {
            Source::Epoll { wake_fd, .. } => eventfd::signal(*wake_fd),
            Source::Uring(u) => u.wake(),
        }
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
    let (epfd, wake_fd) = match &p.source {
        Source::Epoll { epfd, wake_fd } => (*epfd, *wake_fd),
        Source::Uring(u) => return poll_uring(u, timeout_ms, list),
    };
    // A worker blocked in epoll_wait gets every event anyway. Scanning the ready list beside it is not
    // only wasted: on this kernel (6.18) a concurrent non-blocking epoll_wait can leave the blocked one
    // asleep with events ready (seen as a hang with a retired spare; a signal made it see them).
    if timeout_ms == 0 && p.waiting.load(Ordering::Acquire) {
        return &[];
    }
    let n = epoll::wait(epfd, &mut list.events, timeout_ms).map_or(0, |r| r.len());
    // SAFETY: the kernel wrote the first n events.
    let events = unsafe { core::slice::from_raw_parts_mut(list.events.as_mut_ptr() as *mut libc::epoll_event, n) };
    // The wake-up event, if any (one at most: the eventfd is watched once), is drained and dropped by
    // moving the last event into its place.
    let mut n = events.len();
    if let Some(i) = events.iter().position(|ev| ev.u64 == WAKE_TOKEN) {
        eventfd::drain(wake_fd);
        events[i] = events[n - 1];
        n -= 1;
    }
    // SAFETY: Event is a transparent epoll_event; the first n are initialised.
    unsafe { core::slice::from_raw_parts(events.as_ptr() as *const Event, n) }
}

/// [`poll`] on the ring: completions already posted are read from memory (no system call); a positive
/// or negative `timeout_ms` first sleeps in io_uring_enter until there is one. Concurrent reapers: a
/// non-blocking poll leaves the completions to whoever is reaping.
fn poll_uring<'a>(u: &UringPoller, timeout_ms: i32, list: &'a mut EventList) -> &'a [Event] {
    if timeout_ms != 0 {
        u.ring.0.wait((timeout_ms > 0).then(|| timeout_ms as u64 * 1_000_000));
    }
    let guard = if timeout_ms == 0 { u.reap.try_lock() } else { Some(u.reap.lock()) };
    let Some(_g) = guard else { return &[] };
    let mut n = 0;
    let mut ended = [0u64; 8];
    let mut n_ended = 0;
    u.ring.0.reap_now(BATCH, |token, res, flags| {
        if token == WAKE_TOKEN {
            return;
        }
        let bits = if res >= 0 {
            res as u32
        } else if res == -libc::ECANCELED {
            0
        } else {
            // The poll failed (the object went away unseen): waiters make their call again and get its
            // answer.
            (libc::EPOLLERR | libc::EPOLLHUP) as u32
        };
        if flags & IORING_CQE_F_MORE == 0 && (res >= 0 || res == -libc::ECANCELED) {
            if n_ended < ended.len() {
                ended[n_ended] = token;
                n_ended += 1;
            } else {
                u.rearm(token);
            }
        }
        if bits != 0 {
            list.events[n].write(libc::epoll_event { events: bits, u64: token });
            n += 1;
        }
    });
    for &token in &ended[..n_ended] {
        u.rearm(token);
    }
    // SAFETY: the first n events were written above; Event is a transparent epoll_event.
    unsafe { core::slice::from_raw_parts(list.events.as_ptr() as *const Event, n) }
}

/// For the worker loop: whether a netpoller exists (cheap when none does).
#[inline]
pub fn exists() -> bool {
    get().is_some()
}

pub fn waiting_flag() -> Option<&'static AtomicBool> {
    get().map(|p| &p.waiting)
}
