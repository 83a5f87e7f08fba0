//! What the runtime knows of each file descriptor number: which kind of object it names (and so how to
//! try a call without blocking), whether it is registered with the netpoller, readiness sequence numbers
//! that coroutines wait on, the socket timeouts the program set, whether only this process can change
//! the description's flags, and which numbers are the runtime's own.
//!
//! The table is one lazily committed array indexed by fd number (up to RLIMIT_NOFILE's hard limit). A
//! generation number changes whenever a number starts naming a new object (a hooked call created it, or
//! it was closed), so readiness reported for an old object never wakes a waiter on a new one; what was
//! known of the old object is forgotten in one place ([`FdEntry::forget_object`]). Closing a number
//! waiters use is `closing`'s.
//!
//! The worker loop wakes readiness waiters through `io::ready`, which reads this table, so it stays
//! below the scheduler core: it imports the netpoller, the parking lot, `lock` and `sys`.

use super::super::lock::Lock;
use super::super::parking_lot;
use super::super::sys::{self, mem};
use super::netpoll;
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
    /// A regular file: see `io::file` (RWF_NOWAIT tries, helper threads).
    File = 5,
    /// Answers every read and write at once (a pidfd: EINVAL) but polls as a waitable object (readable
    /// when its task ends): the real call, never a park; poll, select and epoll watch it.
    Direct = 6,
}

impl Kind {
    fn from_u32(v: u32) -> Kind {
        match v {
            1 => Kind::Socket,
            2 => Kind::NoWait,
            3 => Kind::Pollable,
            4 => Kind::Blocking,
            5 => Kind::File,
            6 => Kind::Direct,
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
    /// Regular files: whether RWF_NOWAIT writes work (see `io::file`).
    nowait_writes: AtomicU32,
    /// Coroutines inside a cooperative call on this number that had to wait (parked or about to park).
    pub waiters: AtomicU32,
    /// A hidden duplicate: how many waiters still use it (it is closed when this reaches 0).
    pub(super) hidden_users: AtomicU32,
    /// A hidden duplicate: (number it stands for << 32) | that number's generation when it was closed.
    pub(super) hidden_origin: AtomicU64,
    /// Set when this number was closed under waiters: (closed generation << 32) | hidden duplicate.
    pub(super) moved: AtomicU64,
    /// One of the runtime's own fds for its whole life (the netpoller's): the program never had it open.
    pub(super) runtime_own: AtomicU32,
    /// A hooked call created the description in this process since the last child process was made
    /// (SHARING_EPOCH + 1 then), and it was not sent away with SCM_RIGHTS: only this process can change
    /// its flags. 0: perhaps shared.
    private_since: AtomicU32,
    /// FLAGS_EPOCH when the description was last seen blocking (no O_NONBLOCK).
    blocking_seen: AtomicU32,
    /// How stdio waits can look at unread data (see `io::stdio`); 0 until looked up for this object.
    pub stdio_peek: AtomicU32,
    /// The readiness sequence (+ 1; 0: none) before a read that left this TCP socket's receive queue empty
    /// (see [`FdEntry::drained_since`]).
    read_drained: AtomicU32,
    /// Whether a short read proves the receive queue empty: one of the `DRAIN_*` values.
    drain_proof: AtomicU32,
    /// Nonzero once something waited for this object to become writable (see [`FdEntry::ready`]).
    write_waited: AtomicU32,
    /// The first coroutine waiting on each side's sequence waits here, the others in the parking lot on
    /// the sequence's address (see `parking_lot::Slot`); [`FdEntry::notify`] wakes both.
    slots: [parking_lot::Slot; 2],
    /// Coroutines and threads waiting in the parking lot on each side's sequence (the slot was taken, or
    /// a single-fd poll): a wake-up looks in the lot only when there are some (see [`Self::park_in_lot`]).
    lot_waiters: [AtomicU32; 2],
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
    pub fn slot(&self, dir: Dir) -> &parking_lot::Slot {
        &self.slots[dir as usize]
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
    pub(super) fn forget_object(&self, kind: Kind, private_since: u32, timeouts: [u64; 2]) -> (u32, bool) {
        let generation = self.generation.fetch_add(1, Ordering::AcqRel);
        let was_registered = self.registered.swap(0, Ordering::AcqRel) != 0;
        self.private_since.store(private_since, Ordering::Release);
        self.blocking_seen.store(0, Ordering::Release);
        self.read_drained.store(0, Ordering::Relaxed);
        self.drain_proof.store(DRAIN_UNKNOWN, Ordering::Relaxed);
        self.write_waited.store(0, Ordering::Relaxed);
        self.learned_kind(kind, timeouts);
        (generation, was_registered)
    }

    /// What is known of the object's kind and of what depends on it: `kind` (from the call that made the
    /// object, or looked up: see `io::kind`), the socket timeouts (`TIMEOUT_UNKNOWN` to look them up),
    /// no stdio peek method yet, RWF_NOWAIT writes not tried. For a number first looked at (whose entry
    /// is still all zeros, where a zero timeout would mean "none") or whose object changed unseen, and
    /// from [`Self::forget_object`].
    pub fn learned_kind(&self, kind: Kind, timeouts: [u64; 2]) {
        for (t, v) in self.timeout.iter().zip(timeouts) {
            t.store(v, Ordering::Relaxed);
        }
        self.stdio_peek.store(0, Ordering::Relaxed);
        self.nowait_writes.store(0, Ordering::Relaxed);
        self.set_kind(kind);
    }

    /// SO_RCVTIMEO / SO_SNDTIMEO of this socket (`fd`) in ns (0: none), looked up once per object.
    pub fn socket_timeout_ns(&self, fd: i32, dir: Dir) -> u64 {
        let slot = self.timeout(dir);
        let t = slot.load(Ordering::Relaxed);
        if t != TIMEOUT_UNKNOWN {
            return t;
        }
        let opt = if dir == Dir::Read { libc::SO_RCVTIMEO } else { libc::SO_SNDTIMEO };
        let ns = match sys::socket::getsockopt_timeval(fd, libc::SOL_SOCKET, opt) {
            Ok(tv) => tv.tv_sec as u64 * 1_000_000_000 + tv.tv_usec as u64 * 1000,
            Err(_) => 0,
        };
        slot.store(ns, Ordering::Relaxed);
        ns
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
    #[inline(always)]
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
        self.wake_side(dir, 0);
    }

    /// Moves one side's sequence on and wakes its waiters (in the slot and in the lot) with `token`;
    /// returns how many were woken.
    ///
    /// The lot is looked at only when a waiter counts itself there ([`Self::park_in_lot`]): a load of the
    /// entry's own count instead of the hashed bucket's read-modify-write on every wake-up. No waiter is
    /// missed: the waiter counts itself (SeqCst) before its validation loads the sequence (SeqCst), and
    /// this moves the sequence (SeqCst) before it loads the count (SeqCst); in the single order of these
    /// four, either the count's load comes after the waiter's increment (the lot is looked at, and the
    /// waiter is queued or its validation sees the new sequence under the bucket lock) or the waiter's
    /// load of the sequence comes after this increment (it does not park).
    pub fn wake_side(&self, dir: Dir, token: usize) -> usize {
        let seq = self.seq(dir);
        seq.fetch_add(1, Ordering::SeqCst);
        let slot = self.slot(dir).wake(token);
        if self.lot_waiters[dir as usize].load(Ordering::SeqCst) == 0 {
            return slot;
        }
        slot + parking_lot::unpark_all(seq as *const AtomicU32 as usize, token)
    }

    /// Parks the caller in the parking lot on side `dir`'s sequence (its slot is taken, or the wait is a
    /// poll), counted in the side's lot waiters meanwhile (see [`Self::wake_side`]). `validate` must load
    /// the sequence with SeqCst. The count is given back before a signal handler can run in the waiter
    /// (one may leave the wait by `siglongjmp`).
    pub fn park_in_lot<W: parking_lot::Waiting>(
        &self,
        dir: Dir,
        validate: impl FnOnce() -> bool,
        wait: W,
    ) -> parking_lot::Parked {
        let count = &self.lot_waiters[dir as usize];
        count.fetch_add(1, Ordering::SeqCst);
        let mut counted = true;
        let key = self.seq(dir) as *const AtomicU32 as usize;
        let r = parking_lot::park_then(
            key,
            0,
            validate,
            || {},
            wait,
            |_| {
                count.fetch_sub(1, Ordering::Release);
                counted = false;
            },
        );
        if counted {
            // `validate` refused the park: `after` did not run.
            count.fetch_sub(1, Ordering::Release);
        }
        r
    }
}

pub(super) struct Table {
    base: *mut FdEntry,
    pub(super) len: usize,
    /// Serialises fd-number changes (creation, close, dup2) against registration.
    pub(super) changes: Lock<()>,
}

// SAFETY: entries are atomics; the pointer is to a mapping that lives for the process.
unsafe impl Sync for Table {}
// SAFETY: as above.
unsafe impl Send for Table {}

static TABLE: OnceLock<Table> = OnceLock::new();

pub(super) fn table() -> &'static Table {
    super::super::lazy::get_or_init(&TABLE, || {
        let len = sys::fd::open_files_limit().1.max(1024);
        let base = mem::reserve(len * size_of::<FdEntry>()).map(|p| p as *mut FdEntry).unwrap_or(core::ptr::null_mut());
        Table { base, len: if base.is_null() { 0 } else { len }, changes: Lock::new(()) }
    })
}

/// The entry of `fd`, or None for numbers outside the table (those get the real, blocking calls).
#[inline]
pub fn entry(fd: i32) -> Option<&'static FdEntry> {
    table().entry(fd)
}

impl Table {
    /// [`entry`] in this table (for a caller that looks up many entries: the table's initialisation is
    /// checked once).
    #[inline]
    pub fn entry(&'static self, fd: i32) -> Option<&'static FdEntry> {
        if fd < 0 || fd as usize >= self.len {
            return None;
        }
        // SAFETY: in bounds of a zero-initialised mapping of FdEntry (all-atomic, zero is a valid state).
        Some(unsafe { &*self.base.add(fd as usize) })
    }
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
pub(super) static HIGH_WATER: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

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
        let Ok(h) = sys::usercopy::read(at as *const libc::cmsghdr) else { return };
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
                if let Ok(fd) = sys::usercopy::read(p as *const i32) {
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

/// Whether `fd` is one of the runtime's numbers (its own or a hidden duplicate), which the program never had.
pub fn is_runtime_own(fd: i32) -> bool {
    entry(fd).is_some_and(|e| e.runtime_own.load(Ordering::Relaxed) != 0 || e.hidden_users.load(Ordering::Acquire) != 0)
}

/// Grows the kernel's fd table to the top of RLIMIT_NOFILE now, while the process is still single-threaded.
/// The runtime's own fds live up there ([`move_high`], hidden duplicates); growing the table of a
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

/// The netpoller token of `fd`'s object of generation `generation` (see `io::ready`).
#[inline]
fn to_token(fd: i32, generation: u32) -> u64 {
    (fd as u32 as u64) | ((generation as u64) << 32)
}

/// The fd number and generation a netpoller token names.
#[inline]
pub fn from_token(token: u64) -> (i32, u32) {
    (token as u32 as i32, (token >> 32) as u32)
}

/// Makes sure `fd`'s current object (entry `e`) is watched by the netpoller, with a token that names
/// this generation. Err(EPERM) for objects epoll cannot watch (regular files): the caller then makes the
/// real, blocking call.
/// Inlined: every park of a read or write asks, and the answer is almost always yes.
#[inline(always)]
pub fn register(fd: i32, e: &FdEntry) -> Result<(), sys::Errno> {
    // Registered for this object already: the common case, without the table's lock (and so with a
    // netpoller). (A close racing with us bumps the generation, which the caller's park checks.)
    if e.registered.load(Ordering::Acquire) == e.generation.load(Ordering::Acquire).wrapping_add(1) {
        return Ok(());
    }
    register_now(fd, e)
}

/// [`register`] for an object not registered yet.
#[inline(never)]
fn register_now(fd: i32, e: &FdEntry) -> Result<(), sys::Errno> {
    let p = netpoll::get_or_start(move_high).ok_or(sys::Errno(libc::ENOMEM))?;
    // Under the lock, so that no close or dup2 changes the number between the look and the watch.
    let _g = table().changes.lock();
    let generation = e.generation.load(Ordering::Acquire);
    if e.registered.load(Ordering::Acquire) == generation.wrapping_add(1) {
        return Ok(());
    }
    p.watch(fd, to_token(fd, generation))?;
    e.registered.store(generation.wrapping_add(1), Ordering::Release);
    Ok(())
}

/// Moves one of the runtime's own fds to the top of the fd space, so the program's `socket()`, `open()`
/// ... get the same numbers as without the shim, and marks it the runtime's own (see [`closing`]).
pub(crate) fn move_high(fd: i32) -> i32 {
    let floor = sys::fd::open_files_limit().0.saturating_sub(16);
    // A duplicate of our own fd up there, then the original closed.
    match sys::fd::dup_from(fd, floor) {
        Ok(high) => {
            let _ = sys::fd::close(fd);
            mark_runtime_own(high);
            high
        }
        Err(_) => {
            mark_runtime_own(fd);
            fd
        }
    }
}
