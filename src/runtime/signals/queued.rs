//! Signals queued with their siginfo, per owner. An owner is a coroutine thread (the address of its
//! `TaskSignals`): `pthread_sigqueue` and `rt_tgsigqueueinfo` to it (si_code SI_QUEUE and the sender's
//! value), real-time signals `pthread_kill` sends it (the kernel queues one per send), and held
//! process-directed signals routed to it. Or it is the process ([`PROCESS`]): the process-directed signals a
//! worker took in its own context and the runtime holds until a thread takes them (see `held`), one entry
//! per instance as in the kernel's shared pending queue. A pending set (`state`, `held`) says *that* a
//! signal is pending; this says *with what*: each entry is raised with its own siginfo when the thread
//! takes the signal (`held::raise_here`), or handed to its sigwaitinfo.
//!
//! As in the kernel: a real-time signal is queued once per send and taken first in, first out (an entry
//! moved from the process to a thread keeps its place); a standard signal already queued for an owner is
//! not queued again (the kernel drops the second), and should two race in, taking one takes both. A full
//! pool is EAGAIN (the kernel's answer past RLIMIT_SIGPENDING); the statistics report counts how often.
//!
//! A leaf: one fixed pool for the process, each slot claimed with an atomic, so a signal handler may queue
//! (sigqueue is async-signal-safe, and the wrapper holds signals in signal context) and nothing allocates.

use super::set::NSIG;
use crate::runtime::sys::syscall::Errno;
use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// Slots in the pool: more signals queued at once, to all owners together, get EAGAIN.
pub const SLOTS: usize = 1024;

/// The owner of the process-directed signals the runtime holds (a thread's owner is the address of its
/// aligned `TaskSignals`, never 1).
pub const PROCESS: usize = 1;

/// A slot's `tag`: its state in the low byte (free, being written or read by its claimer, holding an
/// entry), the signal above it.
const FREE: u32 = 0;
const BUSY: u32 = 1;
const FULL: u32 = 2;

const fn full_tag(sig: i32) -> u32 {
    FULL | (sig as u32) << 8
}

struct Slot {
    tag: AtomicU32,
    /// Whose entry it is, and when it was queued (first in, first out per owner and signal).
    owner: AtomicUsize,
    seq: AtomicU64,
    /// The entry is an instance of a process-directed signal (queued for [`PROCESS`] first): a thread it
    /// was routed to gives it back if it blocks the signal or ends before taking it ([`return_to_process`]).
    from_process: AtomicBool,
    info: UnsafeCell<MaybeUninit<libc::siginfo_t>>,
}

// SAFETY: `info` is only touched by whoever moved `tag` to BUSY.
unsafe impl Sync for Slot {}

impl Slot {
    /// Holds an entry for `owner` and `sig`.
    fn holds(&self, owner: usize, sig: i32) -> bool {
        self.tag.load(Ordering::Acquire) == full_tag(sig) && self.owner.load(Ordering::Relaxed) == owner
    }

    /// Claims the slot if it still holds an entry for `owner` and `sig` (it may have been taken and reused
    /// since it was looked at).
    fn claim(&self, owner: usize, sig: i32) -> bool {
        if self.tag.compare_exchange(full_tag(sig), BUSY, Ordering::Acquire, Ordering::Relaxed).is_err() {
            return false;
        }
        if self.owner.load(Ordering::Relaxed) != owner {
            self.tag.store(full_tag(sig), Ordering::Release);
            return false;
        }
        true
    }

    /// Frees a claimed slot.
    fn free(&self) {
        self.owner.store(0, Ordering::Relaxed);
        COUNT.fetch_sub(1, Ordering::AcqRel);
        self.tag.store(FREE, Ordering::Release);
    }
}

static POOL: [Slot; SLOTS] = [const {
    Slot {
        tag: AtomicU32::new(FREE),
        owner: AtomicUsize::new(0),
        seq: AtomicU64::new(0),
        from_process: AtomicBool::new(false),
        info: UnsafeCell::new(MaybeUninit::uninit()),
    }
}; SLOTS];
static SEQ: AtomicU64 = AtomicU64::new(1);
/// Entries in the pool (an owner with none is found without a scan), and the most there were at once.
static COUNT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// Signals the full pool turned away.
static REFUSED: AtomicU64 = AtomicU64::new(0);

/// Whether the kernel queues every instance of `sig` (the real-time signals).
pub fn queues_each(sig: i32) -> bool {
    sig >= 32
}

/// Queues `sig` with `info` for `owner`. Ok(false): a standard signal already queued there, dropped as the
/// kernel drops it. EAGAIN when the pool is full. Async-signal-safe.
pub fn push(owner: usize, sig: i32, info: &libc::siginfo_t) -> Result<bool, Errno> {
    if !(1..NSIG as i32).contains(&sig) {
        return Err(Errno(libc::EINVAL));
    }
    if !queues_each(sig) && has(owner, sig) {
        return Ok(false);
    }
    for slot in &POOL {
        if slot.tag.compare_exchange(FREE, BUSY, Ordering::Acquire, Ordering::Relaxed).is_err() {
            continue;
        }
        // SAFETY: BUSY gives us the slot.
        unsafe { (*slot.info.get()).write(*info) };
        slot.owner.store(owner, Ordering::Relaxed);
        slot.from_process.store(owner == PROCESS, Ordering::Relaxed);
        slot.seq.store(SEQ.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        PEAK.fetch_max(COUNT.fetch_add(1, Ordering::AcqRel) + 1, Ordering::Relaxed);
        slot.tag.store(full_tag(sig), Ordering::Release);
        return Ok(true);
    }
    REFUSED.fetch_add(1, Ordering::Relaxed);
    Err(Errno(libc::EAGAIN))
}

/// Whether an entry for `sig` is queued for `owner`.
pub fn has(owner: usize, sig: i32) -> bool {
    COUNT.load(Ordering::Acquire) != 0 && POOL.iter().any(|s| s.holds(owner, sig))
}

/// How many entries for `sig` are queued for `owner`.
pub fn count(owner: usize, sig: i32) -> usize {
    if COUNT.load(Ordering::Acquire) == 0 {
        return 0;
    }
    POOL.iter().filter(|s| s.holds(owner, sig)).count()
}

/// The oldest entry for `sig` queued for `owner`, claimed.
fn claim_oldest(owner: usize, sig: i32) -> Option<&'static Slot> {
    loop {
        if COUNT.load(Ordering::Acquire) == 0 {
            return None;
        }
        let oldest = POOL.iter().filter(|s| s.holds(owner, sig)).min_by_key(|s| s.seq.load(Ordering::Relaxed))?;
        if oldest.claim(owner, sig) {
            return Some(oldest);
        }
        // Another taker got it first: look again.
    }
}

/// Takes the oldest entry for `sig` queued for `owner` (for a standard signal, every entry: they merge).
pub fn take(owner: usize, sig: i32) -> Option<libc::siginfo_t> {
    let slot = claim_oldest(owner, sig)?;
    // SAFETY: claimed (BUSY); FULL said it was written.
    let info = unsafe { (*slot.info.get()).assume_init() };
    slot.free();
    if !queues_each(sig) {
        drop_entries(owner, Some(sig));
    }
    Some(info)
}

/// Moves the oldest entry for `sig` from `from` to `to` (every one with `all`), each keeping its place in
/// the order. Returns how many moved.
pub fn give(from: usize, to: usize, sig: i32, all: bool) -> usize {
    let mut moved = 0;
    while let Some(slot) = claim_oldest(from, sig) {
        slot.owner.store(to, Ordering::Relaxed);
        slot.tag.store(full_tag(sig), Ordering::Release);
        moved += 1;
        if !all {
            break;
        }
    }
    moved
}

/// Gives the process back the instances of `sig` routed to `owner` and not taken (the thread blocked the
/// signal or ends: in the kernel they never left the process's queue), each keeping its place in the
/// order; a standard signal merges with one the process holds already. Returns how many went back.
pub fn return_to_process(owner: usize, sig: i32) -> usize {
    if COUNT.load(Ordering::Acquire) == 0 {
        return 0;
    }
    let mut back = 0;
    for s in &POOL {
        if !s.holds(owner, sig) || !s.from_process.load(Ordering::Relaxed) || !s.claim(owner, sig) {
            continue;
        }
        back += 1;
        if !queues_each(sig) && has(PROCESS, sig) {
            s.free();
        } else {
            s.owner.store(PROCESS, Ordering::Relaxed);
            s.tag.store(full_tag(sig), Ordering::Release);
        }
    }
    back
}

/// The thread `owner` ended: the entries sent to it die with it, and those routed to it from the process
/// go back to the process (in the kernel they never left its queue), a standard signal merging with one
/// the process holds already. Returns the signals that went back.
pub fn forget(owner: usize) -> u64 {
    if COUNT.load(Ordering::Acquire) == 0 {
        return 0;
    }
    let mut back = 0;
    for s in &POOL {
        let tag = s.tag.load(Ordering::Acquire);
        let sig = (tag >> 8) as i32;
        if tag & 0xff != FULL || s.owner.load(Ordering::Relaxed) != owner || !s.claim(owner, sig) {
            continue;
        }
        if !s.from_process.load(Ordering::Relaxed) || (!queues_each(sig) && has(PROCESS, sig)) {
            s.free();
        } else {
            s.owner.store(PROCESS, Ordering::Relaxed);
            s.tag.store(full_tag(sig), Ordering::Release);
        }
        if s.from_process.load(Ordering::Relaxed) {
            back |= 1u64 << (sig - 1);
        }
    }
    back
}

/// Drops the entries for `owner` of `sig` (None: of every signal).
fn drop_entries(owner: usize, sig: Option<i32>) {
    if COUNT.load(Ordering::Acquire) == 0 {
        return;
    }
    for s in &POOL {
        let tag = s.tag.load(Ordering::Acquire);
        let s_sig = (tag >> 8) as i32;
        if tag & 0xff == FULL
            && sig.is_none_or(|g| g == s_sig)
            && s.owner.load(Ordering::Relaxed) == owner
            && s.claim(owner, s_sig)
        {
            s.free();
        }
    }
}

/// The pool's use for the statistics report: the most entries at once, and signals it turned away.
pub fn usage() -> (usize, u64) {
    (PEAK.load(Ordering::Relaxed), REFUSED.load(Ordering::Relaxed))
}

/// The siginfo of a signal sent by this process: `code` SI_TKILL (pthread_kill, tgkill) or SI_QUEUE
/// (sigqueue, with `value`), our pid and real uid, as the kernel and glibc fill it.
pub fn sent_here(sig: i32, code: i32, value: usize) -> libc::siginfo_t {
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    crate::runtime::sys::signal::siginfo(sig, code, crate::runtime::sys::getpid(), uid as i32, value)
}
