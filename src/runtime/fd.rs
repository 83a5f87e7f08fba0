//! What the runtime knows of each file descriptor number: which kind of object it names (and so how to
//! try a call without blocking), whether it is registered with the netpoller, readiness sequence numbers
//! that coroutines wait on, and the socket timeouts the program set.
//!
//! The table is one lazily committed array indexed by fd number (up to RLIMIT_NOFILE's hard limit). A
//! generation number changes whenever a number starts naming a new object (a hooked call created it, or
//! it was closed), so readiness reported for an old object never wakes a waiter on a new one.
//!
//! Closing a number that coroutines are waiting on must not end their calls: in the kernel a blocked
//! read holds its own reference to the file and goes on waiting on the old object (for its data, its EOF,
//! its peer's reset) while the number is reused. So `closing` keeps a hidden duplicate of the object, at
//! a high number the program never sees, hands it to the parked waiters, and closes it when the last of
//! them has finished.

use super::lock::Lock;
use super::parking_lot;
use super::sys::{self, mem};
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
    /// Coroutines inside a cooperative call on this number that had to wait (parked or about to park).
    pub waiters: AtomicU32,
    /// A hidden duplicate: how many waiters still use it (it is closed when this reaches 0).
    hidden_users: AtomicU32,
    /// A hidden duplicate: (number it stands for << 32) | that number's generation when it was closed.
    hidden_origin: AtomicU64,
    /// Set when this number was closed under waiters: (closed generation << 32) | hidden duplicate.
    moved: AtomicU64,
    /// One of the runtime's own fds for its whole life (the netpoller's): the program never had it open.
    runtime_own: AtomicU32,
    /// A hooked call created the description in this process since the last child process was made
    /// (SHARING_EPOCH + 1 then), and it was not sent away with SCM_RIGHTS: only this process can change
    /// its flags. 0: perhaps shared.
    private_since: AtomicU32,
    /// FLAGS_EPOCH when the description was last seen blocking (no O_NONBLOCK).
    blocking_seen: AtomicU32,
    /// How stdio waits can look at unread data (see `runtime::stdio`); 0 until looked up for this object.
    pub stdio_peek: AtomicU32,
    /// The readiness sequence (+ 1; 0: none) before a read that left this TCP socket's receive queue empty
    /// (see [`FdEntry::drained_since`]).
    read_drained: AtomicU32,
    /// Whether a short read proves the receive queue empty: one of the `DRAIN_*` values.
    drain_proof: AtomicU32,
    /// Nonzero once something waited for this object to become writable (see [`FdEntry::ready`]).
    write_waited: AtomicU32,
}

/// Not looked up yet for this object.
const DRAIN_UNKNOWN: u32 = 0;
/// A TCP socket: a short read empties the receive queue.
const DRAIN_TCP: u32 = 1;
/// Not plain TCP (datagrams, Unix sockets, kTLS), or the peer shut down or sent urgent data (a read stops
/// short at EOF and at the urgent mark with more to read).
const DRAIN_NEVER: u32 = 2;

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

    /// The number names another object now, or none: what was known of the old object is forgotten, here
    /// and nowhere else. `kind`, `private_since` and `timeouts` are what is known of the new one. Returns
    /// the old generation and whether the old object was registered with the netpoller (the caller
    /// deregisters it). Called under the table's `changes` lock.
    fn forget_object(&self, kind: Kind, private_since: u32, timeouts: [u64; 2]) -> (u32, bool) {
        let generation = self.generation.fetch_add(1, Ordering::AcqRel);
        let was_registered = self.registered.swap(0, Ordering::AcqRel) != 0;
        self.private_since.store(private_since, Ordering::Release);
        self.blocking_seen.store(0, Ordering::Release);
        self.set_kind(kind);
        self.stdio_peek.store(0, Ordering::Relaxed);
        self.nowait_writes.store(0, Ordering::Relaxed);
        self.read_drained.store(0, Ordering::Relaxed);
        self.drain_proof.store(DRAIN_UNKNOWN, Ordering::Relaxed);
        self.write_waited.store(0, Ordering::Relaxed);
        for (t, v) in self.timeout.iter().zip(timeouts) {
            t.store(v, Ordering::Relaxed);
        }
        (generation, was_registered)
    }

    /// A read of `want` bytes on this socket (of kind Socket) returned `got`, after the read side's sequence
    /// was `seq`. A short read of a TCP socket empties its receive queue, so until the netpoller reports
    /// the socket again the next read needs no try (see [`Self::drained_since`]).
    #[inline]
    pub fn read_returned(&self, seq: u32, want: usize, got: usize) {
        if got == 0 || got >= want || self.drain_proof.load(Ordering::Relaxed) == DRAIN_NEVER {
            return;
        }
        self.read_drained.store(seq.wrapping_add(1), Ordering::Release);
    }

    /// True when the receive queue of socket `fd` was left empty by a read begun at sequence `seq`, which
    /// is still the read side's: the netpoller has not seen the socket since, so no data, EOF or error has
    /// arrived (an arrival after the read is an edge epoll reports, which bumps the sequence). A blocking
    /// read then parks without trying: the try could only fail.
    ///
    /// Only for TCP without an upper-layer protocol (kTLS stops a read at a control record): a datagram
    /// is one read however many wait, and a Unix stream read stops at a message carrying fds. Looked up
    /// here, the first time the answer matters (two getsockopt calls per connection, no more than the
    /// failing read they replace). The netpoller marks the object DRAIN_NEVER before it bumps the sequence
    /// for an event with EPOLLRDHUP, EPOLLPRI, EPOLLERR or EPOLLHUP (a read stops short at EOF and at the
    /// urgent mark with more to report): a reader that loaded the bumped sequence sees the mark.
    #[inline]
    pub fn drained_since(&self, fd: i32, seq: u32) -> bool {
        if self.read_drained.load(Ordering::Acquire) != seq.wrapping_add(1) {
            return false;
        }
        match self.drain_proof.load(Ordering::Acquire) {
            DRAIN_TCP => true,
            DRAIN_NEVER => false,
            _ => self.look_up_drain_proof(fd),
        }
    }

    #[cold]
    fn look_up_drain_proof(&self, fd: i32) -> bool {
        let tcp = sys::socket::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_PROTOCOL) == Ok(libc::IPPROTO_TCP);
        // TCP_ULP's name is empty while none is attached.
        let plain = tcp && sys::socket::getsockopt_bytes(fd, libc::SOL_TCP, libc::TCP_ULP, &mut [0u8; 16]) == Ok(0);
        let p = if plain { DRAIN_TCP } else { DRAIN_NEVER };
        // Only from unknown: the netpoller's DRAIN_NEVER (the peer shut down) must not be undone.
        let _ = self.drain_proof.compare_exchange(DRAIN_UNKNOWN, p, Ordering::AcqRel, Ordering::Acquire);
        self.drain_proof.load(Ordering::Acquire) == DRAIN_TCP
    }

    /// The program attached an upper-layer protocol to this TCP socket (setsockopt TCP_ULP: kTLS).
    pub fn upper_layer_attached(&self) {
        self.drain_proof.store(DRAIN_NEVER, Ordering::Release);
    }

    /// Marks the object as waited on for writability; true the first time (the caller then tries once
    /// more before it parks, see [`Self::ready`]).
    pub fn note_write_wait(&self) -> bool {
        if self.write_waited.load(Ordering::SeqCst) != 0 {
            return false;
        }
        self.write_waited.store(1, Ordering::SeqCst);
        true
    }

    /// The netpoller's report for this object: `read` / `write` readiness, and `unusual` when the event
    /// says the peer shut down, an error or urgent data (see [`Self::drained_since`]). Wakes the waiters.
    ///
    /// Edge-triggered epoll reports a writable socket with every event, so a ping-pong connection's every
    /// request would also move the write sequence and look for writers in the parking lot, though its
    /// writes never wait. The write side is woken only once something has waited to write on the object:
    /// a waiter marks it (`note_write_wait`) before the try that precedes its park, so an edge after that
    /// try is reported after the mark and sees it; an edge before the mark came before the try, which saw
    /// its room.
    pub fn ready(&self, read: bool, write: bool, unusual: bool) {
        if unusual {
            self.drain_proof.store(DRAIN_NEVER, Ordering::Release);
        }
        if read {
            self.notify(Dir::Read);
        }
        if write && self.write_waited.load(Ordering::SeqCst) != 0 {
            self.notify(Dir::Write);
        }
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
        let len = sys::fd::open_files_limit().1.max(1024);
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

/// `fd` now names another object (a dup of one made elsewhere, perhaps shared): forget what was known of
/// the number.
pub fn opened(fd: i32, kind: Kind) {
    opened_with(fd, kind, 0);
}

/// `fd` names a description a hooked call just created (socket, accept, pipe, socketpair, eventfd...):
/// only this process has it.
pub fn created(fd: i32, kind: Kind) {
    opened_with(fd, kind, SHARING_EPOCH.load(Ordering::Acquire).wrapping_add(1));
}

/// One above the highest number the table has heard of: close_range need not look further.
static HIGH_WATER: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

pub fn note_number(fd: i32) {
    HIGH_WATER.fetch_max(fd as usize + 1, Ordering::AcqRel);
}

fn opened_with(fd: i32, kind: Kind, private_since: u32) {
    if let Some(e) = entry(fd) {
        note_number(fd);
        let _g = table().changes.lock();
        e.forget_object(kind, private_since, [TIMEOUT_UNKNOWN; 2]);
    }
}

/// Bumped (after the fact) whenever the process changes a description's flags (F_SETFL, FIONBIO): "seen
/// blocking" verdicts from before are looked up again.
static FLAGS_EPOCH: AtomicU32 = AtomicU32::new(1);
/// Bumped (before the fact) whenever the process makes a child, which inherits descriptions and can
/// change their flags behind our back.
static SHARING_EPOCH: AtomicU32 = AtomicU32::new(0);

/// The program changed (or may have changed) some description's O_NONBLOCK; call after the change.
pub fn flags_changed() {
    FLAGS_EPOCH.fetch_add(1, Ordering::AcqRel);
}

/// The process is about to make a child process (fork, vfork, posix_spawn, system, popen).
pub fn sharing_with_child() {
    SHARING_EPOCH.fetch_add(1, Ordering::AcqRel);
}

/// `fd`'s description is being sent to another process (SCM_RIGHTS).
pub fn sent_away(fd: i32) {
    if let Some(e) = entry(fd) {
        e.private_since.store(0, Ordering::Release);
    }
}

/// A message about to be sent: descriptions passed with SCM_RIGHTS may be shared from now on.
pub fn sending(msg: &libc::msghdr) {
    if msg.msg_control.is_null() || msg.msg_controllen < size_of::<libc::cmsghdr>() {
        return;
    }
    let base = msg.msg_control as usize;
    let end = base.saturating_add(msg.msg_controllen);
    let mut at = base;
    // Walks the control messages as CMSG_FIRSTHDR/CMSG_NXTHDR do, reading through usercopy: a bad buffer
    // is the kernel's to report (EFAULT), not a reason to crash here.
    while at + size_of::<libc::cmsghdr>() <= end {
        let Ok(h) = super::sys::usercopy::read(at as *const libc::cmsghdr) else { return };
        // A length past the buffer (or one that would wrap) is the kernel's EINVAL to report.
        if h.cmsg_len < size_of::<libc::cmsghdr>() || h.cmsg_len > end - at {
            return;
        }
        if h.cmsg_level == libc::SOL_SOCKET && h.cmsg_type == libc::SCM_RIGHTS {
            let data = at + size_of::<libc::cmsghdr>();
            let n = (h.cmsg_len - size_of::<libc::cmsghdr>()) / size_of::<i32>();
            for i in 0..n {
                let p = data + i * size_of::<i32>();
                if p + size_of::<i32>() > end {
                    break;
                }
                if let Ok(fd) = super::sys::usercopy::read(p as *const i32) {
                    sent_away(fd);
                }
            }
        }
        at += (h.cmsg_len + size_of::<usize>() - 1) & !(size_of::<usize>() - 1);
    }
}

/// Whether the program (or whoever shares the description) made `fd` non-blocking: then EAGAIN is its
/// answer. F_GETFL costs a system call per park, so a description only this process can change keeps
/// the verdict "blocking" until the process changes some description's flags.
pub fn program_nonblocking(fd: i32, e: &FdEntry) -> bool {
    let flags_epoch = FLAGS_EPOCH.load(Ordering::Acquire);
    let private = e.private_since.load(Ordering::Acquire);
    let private = private != 0 && private == SHARING_EPOCH.load(Ordering::Acquire).wrapping_add(1);
    if private && e.blocking_seen.load(Ordering::Acquire) == flags_epoch {
        return false;
    }
    let nonblocking = match sys::fd::fcntl(fd, libc::F_GETFL, 0) {
        Ok(flags) => flags as i32 & libc::O_NONBLOCK != 0,
        Err(_) => true,
    };
    // The epoch was read before F_GETFL and is bumped after a change: a change racing with this look
    // leaves a verdict for an epoch that is already gone.
    if private && !nonblocking {
        e.blocking_seen.store(flags_epoch, Ordering::Release);
    }
    nonblocking
}

/// What a hook should do with a close, dup2 or dup3 of a number.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// Make the real call.
    Proceed,
    /// The number is one of the runtime's own (a hidden duplicate): natively it is not open, so EBADF.
    NotOpen,
}

/// `fd` is being closed (or replaced by dup2): readiness of the old object reported later is ignored, and
/// coroutines parked on it move to a hidden duplicate (woken with its number as their unpark token) so
/// that they go on waiting on the old object, as the kernel's in-flight calls do.
pub fn closing(fd: i32) -> Closing {
    let Some(e) = entry(fd) else { return Closing::Proceed };
    if e.hidden_users.load(Ordering::Acquire) != 0 || e.runtime_own.load(Ordering::Relaxed) != 0 {
        return Closing::NotOpen;
    }
    let (was_registered, hidden) = {
        let _g = table().changes.lock();
        let old =
            Known { kind: e.kind(), timeouts: [Dir::Read, Dir::Write].map(|d| e.timeout(d).load(Ordering::Relaxed)) };
        // Whatever takes the number next (open, a descriptor received with SCM_RIGHTS) is not vouched for.
        let (generation, was) = e.forget_object(Kind::Unknown, 0, [TIMEOUT_UNKNOWN; 2]);
        if was {
            super::netpoll::deregister(fd);
        }
        // Waiters register before they park, so an fd never registered has none.
        let hidden = if was && e.waiters.load(Ordering::Acquire) != 0 { hide(fd, generation, e, old) } else { None };
        (was, hidden)
    };
    if was_registered {
        match hidden {
            Some(h) => {
                // A poll between its probe and its park sees the change (it parks on these sequences).
                e.read_seq.fetch_add(1, Ordering::AcqRel);
                e.write_seq.fetch_add(1, Ordering::AcqRel);
                let token = h as usize + 1;
                let woken = parking_lot::unpark_all(e.seq(Dir::Read) as *const AtomicU32 as usize, token)
                    + parking_lot::unpark_all(e.seq(Dir::Write) as *const AtomicU32 as usize, token);
                // The bias `hide` set kept the duplicate alive while the waiters were being woken.
                release_hidden_by(h, HIDDEN_BIAS - woken as u32);
            }
            None => {
                e.notify(Dir::Read);
                e.notify(Dir::Write);
            }
        }
    }
    Closing::Proceed
}

/// Held on a new hidden duplicate until its waiters are counted, so none of them can close it early.
const HIDDEN_BIAS: u32 = 1 << 30;

/// What `closing` knew of an object, for its hidden duplicate.
struct Known {
    kind: Kind,
    timeouts: [u64; 2],
}

/// Duplicates `fd`'s object (`old`) at a high number for its waiters (under the changes lock). None when no
/// number is free: the waiters then end with EBADF.
fn hide(fd: i32, generation: u32, e: &FdEntry, old: Known) -> Option<i32> {
    // A number the program still has open (its close has not happened yet).
    let h = sys::fd::dup_from(fd, hidden_floor()).ok()?;
    let Some(he) = entry(h) else {
        // Our own duplicate.
        let _ = sys::fd::close(h);
        return None;
    };
    note_number(h);
    he.forget_object(old.kind, 0, old.timeouts);
    he.hidden_origin.store(((fd as u32 as u64) << 32) | generation as u64, Ordering::Release);
    he.hidden_users.store(HIDDEN_BIAS, Ordering::Release);
    e.moved.store(((generation as u64) << 32) | h as u32 as u64, Ordering::Release);
    HIDDEN.lock().push(h);
    Some(h)
}

/// The lowest number hidden duplicates take: well above what programs use, below the netpoller's own fds
/// at the very top.
fn hidden_floor() -> usize {
    let cur = sys::fd::open_files_limit().0;
    cur.saturating_sub(cur / 8).max(cur.saturating_sub(16 + 4096)).max(3)
}

/// Hidden duplicates alive now (closed in a forked child, which never had them natively).
static HIDDEN: Lock<Vec<i32>> = Lock::new(Vec::new());

/// A waiter that found `fd` closed under it (generation `generation`) without being handed the hidden
/// duplicate (it was between a try and its park): takes a use of the duplicate if it still exists.
pub fn adopt_hidden(fd: i32, generation: u32) -> Option<i32> {
    let e = entry(fd)?;
    let _g = table().changes.lock();
    let moved = e.moved.load(Ordering::Acquire);
    if (moved >> 32) as u32 != generation {
        return None;
    }
    let h = moved as u32 as i32;
    let he = entry(h)?;
    if he.hidden_origin.load(Ordering::Acquire) != ((fd as u32 as u64) << 32) | generation as u64 {
        return None;
    }
    let mut users = he.hidden_users.load(Ordering::Acquire);
    loop {
        if users == 0 {
            return None;
        }
        match he.hidden_users.compare_exchange(users, users + 1, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Some(h),
            Err(now) => users = now,
        }
    }
}

/// A waiter is done with hidden duplicate `h`.
pub fn release_hidden(h: i32) {
    release_hidden_by(h, 1);
}

fn release_hidden_by(h: i32, n: u32) {
    let Some(he) = entry(h) else { return };
    if n == 0 || he.hidden_users.fetch_sub(n, Ordering::AcqRel) != n {
        return;
    }
    let _g = table().changes.lock();
    he.hidden_origin.store(0, Ordering::Release);
    if he.forget_object(Kind::Unknown, 0, [TIMEOUT_UNKNOWN; 2]).1 {
        super::netpoll::deregister(h);
    }
    HIDDEN.lock().retain(|&x| x != h);
    // Our own duplicate, which no waiter uses any more.
    let _ = sys::fd::close(h);
}

/// In a forked child: the hidden duplicates belong to the parent's waiters; the child never had them.
pub fn close_hidden_in_child() {
    // The child is single-threaded here, so the lock is free unless fork caught it held: then skip.
    let Some(list) = HIDDEN.try_lock() else { return };
    for &h in list.iter() {
        // The child's copies of our own duplicates.
        let _ = sys::fd::close(h);
    }
}

/// `fd` is the runtime's own until it says otherwise (the netpoller's fds, stdio's scratch pipes).
pub fn mark_runtime_own(fd: i32) {
    if let Some(e) = entry(fd) {
        note_number(fd);
        e.runtime_own.store(1, Ordering::Relaxed);
    }
}

/// The runtime is about to close one of its own fds.
pub fn unmark_runtime_own(fd: i32) {
    if let Some(e) = entry(fd) {
        e.runtime_own.store(0, Ordering::Relaxed);
    }
}

/// Whether `fd` is open (a dup2 from a bad number fails before it touches the target).
pub fn is_open(fd: i32) -> bool {
    // F_GETFD has no side effects.
    sys::fd::fcntl(fd, libc::F_GETFD, 0).is_ok()
}

/// Whether `fd` is one of the runtime's numbers (its own or a hidden duplicate), which the program never had.
pub fn is_runtime_own(fd: i32) -> bool {
    entry(fd).is_some_and(|e| e.runtime_own.load(Ordering::Relaxed) != 0 || e.hidden_users.load(Ordering::Acquire) != 0)
}

/// close_range(first, last, flags) as the program means it: its own numbers in the range are closed (and
/// forgotten), the runtime's are left open, as they would not exist natively. Returns the kernel's answer
/// for the first sub-range that fails.
pub fn close_range(first: u32, last: u32, flags: u32) -> Result<usize, sys::Errno> {
    let t = table();
    if flags & !(libc::CLOSE_RANGE_CLOEXEC | libc::CLOSE_RANGE_UNSHARE) != 0 {
        // The program's own call, which the kernel refuses (EINVAL) before closing anything.
        return sys::fd::close_range(first, last, flags);
    }
    // Numbers the table never heard of have nothing to forget and are none of the runtime's.
    let top = (last as usize).min(t.len.saturating_sub(1)).min(HIGH_WATER.load(Ordering::Acquire).saturating_sub(1));
    let closes = flags & libc::CLOSE_RANGE_CLOEXEC == 0;
    let mut own = Vec::new();
    let mut fd = first as usize;
    while fd <= top && t.len > 0 {
        let f = fd as i32;
        if is_runtime_own(f) {
            own.push(fd as u32);
        } else if closes {
            let _ = closing(f);
        }
        fd += 1;
    }
    let mut start = first;
    for o in own.into_iter().chain(core::iter::once(u32::MAX)) {
        let end = if o == u32::MAX { last } else { o - 1 };
        if o != start && start <= end {
            // Numbers the program owns.
            sys::fd::close_range(start, end, flags)?;
        }
        if o == u32::MAX {
            break;
        }
        start = o + 1;
        if start == 0 || start > last {
            break;
        }
    }
    Ok(0)
}

/// Grows the kernel's fd table to the top of RLIMIT_NOFILE now, while the process is still single-threaded.
/// The runtime's own fds live up there (`netpoll::move_high`, hidden duplicates); growing the table of a
/// multi-threaded process waits for an RCU grace period in the kernel (7–20 ms seen), which the first
/// coroutine to wait on an fd would otherwise pay on its worker.
pub fn grow_table_early() {
    let top = sys::fd::open_files_limit().0.saturating_sub(1);
    // An eventfd of our own to duplicate (the program's fds 0-2 may be closed), both closed again.
    let Ok(tmp) = sys::eventfd::new() else { return };
    if let Ok(high) = sys::fd::dup_from(tmp, top) {
        let _ = sys::fd::close(high);
    }
    let _ = sys::fd::close(tmp);
}

/// Runs `f` with fd-number changes held off (for registration).
pub fn with_no_changes<R>(f: impl FnOnce() -> R) -> R {
    let _g = table().changes.lock();
    f()
}
