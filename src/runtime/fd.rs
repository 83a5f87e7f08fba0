//! What the runtime knows of each file descriptor number: which kind of object it names (and so how to
//! try a call without blocking), whether it is registered with the netpoller, readiness sequence numbers
//! that coroutines wait on, and the socket timeouts the program set.
//!
//! The table is one lazily committed array indexed by fd number (up to RLIMIT_NOFILE's hard limit). A
//! generation number changes whenever a number starts naming a new object (a hooked call created it, or
//! it was closed), so readiness reported for an old object never wakes a waiter on a new one.

use super::lock::Lock;
use super::parking_lot;
use super::sys::mem;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;

/// How a call on the fd can be tried without blocking (see `../shared/notes/nonblocking-per-call.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Kind {
    /// Not looked at yet.
    Unknown = 0,
    /// recv/send with MSG_DONTWAIT.
    Socket = 1,
    /// preadv2/pwritev2 with RWF_NOWAIT (pipes).
    NoWait = 2,
    /// poll(0), then the call, one caller at a time (FIFOs, terminals, eventfds, ...).
    Pollable = 3,
    /// Never waits in a way epoll can see (directories, block devices...): the real call.
    Blocking = 4,
    /// A regular file: see `runtime::file` (RWF_NOWAIT tries, helper threads).
    File = 5,
}

impl Kind {
    fn from_u32(v: u32) -> Kind {
        match v {
            1 => Kind::Socket,
            2 => Kind::NoWait,
            3 => Kind::Pollable,
            4 => Kind::Blocking,
            5 => Kind::File,
            _ => Kind::Unknown,
        }
    }
}

/// Read or write side of an fd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Read,
    Write,
}

/// Timeouts not looked up yet.
pub const TIMEOUT_UNKNOWN: u64 = u64::MAX;

#[repr(C)]
pub struct FdEntry {
    pub generation: AtomicU32,
    kind: AtomicU32,
    /// generation + 1 of the registration with the netpoller, 0 if not registered.
    pub registered: AtomicU32,
    /// Bumped by the netpoller on readiness and by close; waiters park on their address.
    pub read_seq: AtomicU32,
    pub write_seq: AtomicU32,
    /// One caller at a time tries a poll-then-call (kinds without a per-call non-blocking form, accept).
    pub gate: [AtomicU32; 2],
    /// SO_RCVTIMEO / SO_SNDTIMEO in ns (0: none; TIMEOUT_UNKNOWN: not looked up).
    pub timeout: [AtomicU64; 2],
    /// Regular files: whether RWF_NOWAIT writes work (see `runtime::file`).
    nowait_writes: AtomicU32,
    /// How stdio waits can look at unread data (see `runtime::stdio`); 0 until looked up for this object.
    pub stdio_peek: AtomicU32,
}

impl FdEntry {
    pub fn nowait_writes(&self) -> u32 {
        self.nowait_writes.load(Ordering::Relaxed)
    }
    pub fn set_nowait_writes(&self, v: u32) {
        self.nowait_writes.store(v, Ordering::Relaxed);
    }
    pub fn kind(&self) -> Kind {
        Kind::from_u32(self.kind.load(Ordering::Acquire))
    }
    pub fn set_kind(&self, k: Kind) {
        self.kind.store(k as u32, Ordering::Release);
    }
    pub fn seq(&self, dir: Dir) -> &AtomicU32 {
        match dir {
            Dir::Read => &self.read_seq,
            Dir::Write => &self.write_seq,
        }
    }
    pub fn gate(&self, dir: Dir) -> &AtomicU32 {
        &self.gate[dir as usize]
    }
    pub fn timeout(&self, dir: Dir) -> &AtomicU64 {
        &self.timeout[dir as usize]
    }

    /// Wakes every waiter on one side (they retry their call).
    pub fn notify(&self, dir: Dir) {
        let seq = self.seq(dir);
        seq.fetch_add(1, Ordering::AcqRel);
        parking_lot::unpark_all(seq as *const AtomicU32 as usize, 0);
    }
}

struct Table {
    base: *mut FdEntry,
    len: usize,
    /// Serialises fd-number changes (creation, close, dup2) against registration.
    changes: Lock<()>,
}

// SAFETY: entries are atomics; the pointer is to a mapping that lives for the process.
unsafe impl Sync for Table {}
// SAFETY: as above.
unsafe impl Send for Table {}

static TABLE: OnceLock<Table> = OnceLock::new();

fn table() -> &'static Table {
    TABLE.get_or_init(|| {
        let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: valid out-pointer.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) };
        let len = (rl.rlim_max.min(1 << 20) as usize).max(1024);
        let base = mem::reserve(len * size_of::<FdEntry>()).map(|p| p as *mut FdEntry).unwrap_or(core::ptr::null_mut());
        Table { base, len: if base.is_null() { 0 } else { len }, changes: Lock::new(()) }
    })
}

/// The entry of `fd`, or None for numbers outside the table (those get the real, blocking calls).
#[inline]
pub fn entry(fd: i32) -> Option<&'static FdEntry> {
    let t = table();
    if fd < 0 || fd as usize >= t.len {
        return None;
    }
    // SAFETY: in bounds of a zero-initialised mapping of FdEntry (all-atomic, zero is a valid state).
    Some(unsafe { &*t.base.add(fd as usize) })
}

/// `fd` now names a new object (a hooked call created it): forget what was known of the number.
pub fn opened(fd: i32, kind: Kind) {
    if let Some(e) = entry(fd) {
        let _g = table().changes.lock();
        e.generation.fetch_add(1, Ordering::AcqRel);
        e.registered.store(0, Ordering::Release);
        e.set_kind(kind);
        e.stdio_peek.store(0, Ordering::Relaxed);
        e.timeout[0].store(TIMEOUT_UNKNOWN, Ordering::Relaxed);
        e.timeout[1].store(TIMEOUT_UNKNOWN, Ordering::Relaxed);
    }
}

/// `fd` is being closed (or replaced by dup2): its waiters are woken and find it gone; readiness of the old
/// object reported later is ignored.
pub fn closing(fd: i32) {
    if let Some(e) = entry(fd) {
        let was_registered = {
            let _g = table().changes.lock();
            e.generation.fetch_add(1, Ordering::AcqRel);
            let was = e.registered.swap(0, Ordering::AcqRel) != 0;
            if was {
                super::netpoll::deregister(fd);
            }
            e.set_kind(Kind::Unknown);
            e.stdio_peek.store(0, Ordering::Relaxed);
            was
        };
        // Waiters register before they park, so an fd never registered has none to wake.
        if was_registered {
            e.notify(Dir::Read);
            e.notify(Dir::Write);
        }
    }
}

/// Runs `f` with fd-number changes held off (for registration).
pub fn with_no_changes<R>(f: impl FnOnce() -> R) -> R {
    let _g = table().changes.lock();
    f()
}
