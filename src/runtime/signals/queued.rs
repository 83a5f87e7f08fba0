//! Signals queued for one thread with their siginfo: `pthread_sigqueue` and `rt_tgsigqueueinfo` to a
//! coroutine (si_code SI_QUEUE and the sender's value), and real-time signals `pthread_kill` sends to one,
//! which the kernel queues once per send. A thread's pending set (`state`) says *that* a signal is pending;
//! this says *with what*: each entry is raised on the thread's worker with its own siginfo when the thread
//! takes the signal (`held::raise_here`), or handed to its sigwaitinfo.
//!
//! As in the kernel: a real-time signal is queued once per send and taken first in, first out; a standard
//! signal already queued for the thread is not queued again (the kernel drops the second); a full queue is
//! EAGAIN (the kernel's answer past RLIMIT_SIGPENDING).
//!
//! A leaf: one fixed pool for the process (a thread rarely has more than a few queued), each slot claimed
//! with an atomic, so a signal handler may queue (sigqueue is async-signal-safe) and no allocation happens.
//! Entries are keyed by the address of the thread's signal state and dropped when the thread ends.

use super::set::NSIG;
use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// Slots in the pool: more signals queued at once, to all threads together, get EAGAIN.
const SLOTS: usize = 512;

/// A slot's life: free, being written or read by its claimer, holding an entry.
const FREE: u32 = 0;
const BUSY: u32 = 1;
const FULL: u32 = 2;

struct Slot {
    state: AtomicU32,
    /// The thread the entry is for (the address of its `TaskSignals`) and the signal.
    owner: AtomicUsize,
    sig: AtomicU32,
    /// Order of queueing (first in, first out per thread and signal).
    seq: AtomicU64,
    info: UnsafeCell<MaybeUninit<libc::siginfo_t>>,
}

// SAFETY: `info` is only touched by whoever moved `state` to BUSY.
unsafe impl Sync for Slot {}

static POOL: [Slot; SLOTS] = [const {
    Slot {
        state: AtomicU32::new(FREE),
        owner: AtomicUsize::new(0),
        sig: AtomicU32::new(0),
        seq: AtomicU64::new(0),
        info: UnsafeCell::new(MaybeUninit::uninit()),
    }
}; SLOTS];
static SEQ: AtomicU64 = AtomicU64::new(1);
/// Entries in the pool (a thread with none is found without a scan).
static COUNT: AtomicUsize = AtomicUsize::new(0);

/// Whether the kernel queues every instance of `sig` (the real-time signals).
fn queues_each(sig: i32) -> bool {
    sig >= 32
}

/// Queues `sig` with `info` for the thread whose signal state is at `owner`. Ok(false): a standard signal
/// already queued there, dropped as the kernel drops it. EAGAIN when the pool is full.
pub fn push(owner: usize, sig: i32, info: &libc::siginfo_t) -> Result<bool, crate::runtime::sys::syscall::Errno> {
    if !(1..NSIG as i32).contains(&sig) {
        return Err(crate::runtime::sys::syscall::Errno(libc::EINVAL));
    }
    if !queues_each(sig) && has(owner, sig) {
        return Ok(false);
    }
    for slot in &POOL {
        if slot.state.compare_exchange(FREE, BUSY, Ordering::Acquire, Ordering::Relaxed).is_err() {
            continue;
        }
        // SAFETY: BUSY gives us the slot.
        unsafe { (*slot.info.get()).write(*info) };
        slot.owner.store(owner, Ordering::Relaxed);
        slot.sig.store(sig as u32, Ordering::Relaxed);
        slot.seq.store(SEQ.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        COUNT.fetch_add(1, Ordering::AcqRel);
        slot.state.store(FULL, Ordering::Release);
        return Ok(true);
    }
    Err(crate::runtime::sys::syscall::Errno(libc::EAGAIN))
}

/// Whether an entry for `sig` is queued for `owner`.
pub fn has(owner: usize, sig: i32) -> bool {
    COUNT.load(Ordering::Acquire) != 0
        && POOL.iter().any(|s| {
            s.state.load(Ordering::Acquire) == FULL
                && s.owner.load(Ordering::Relaxed) == owner
                && s.sig.load(Ordering::Relaxed) == sig as u32
        })
}

/// Takes the oldest entry for `sig` queued for `owner`.
pub fn take(owner: usize, sig: i32) -> Option<libc::siginfo_t> {
    loop {
        if COUNT.load(Ordering::Acquire) == 0 {
            return None;
        }
        let oldest = POOL
            .iter()
            .filter(|s| {
                s.state.load(Ordering::Acquire) == FULL
                    && s.owner.load(Ordering::Relaxed) == owner
                    && s.sig.load(Ordering::Relaxed) == sig as u32
            })
            .min_by_key(|s| s.seq.load(Ordering::Relaxed))?;
        if oldest.state.compare_exchange(FULL, BUSY, Ordering::Acquire, Ordering::Relaxed).is_err() {
            // Another taker got it first: look again.
            continue;
        }
        // SAFETY: BUSY gives us the slot; FULL said it was written.
        let info = unsafe { (*oldest.info.get()).assume_init() };
        oldest.owner.store(0, Ordering::Relaxed);
        COUNT.fetch_sub(1, Ordering::AcqRel);
        oldest.state.store(FREE, Ordering::Release);
        return Some(info);
    }
}

/// Drops every entry queued for `owner` (the thread ended: its signals die with it).
pub fn forget(owner: usize) {
    if COUNT.load(Ordering::Acquire) == 0 {
        return;
    }
    for s in &POOL {
        if s.state.load(Ordering::Acquire) == FULL
            && s.owner.load(Ordering::Relaxed) == owner
            && s.state.compare_exchange(FULL, BUSY, Ordering::Acquire, Ordering::Relaxed).is_ok()
        {
            if s.owner.load(Ordering::Relaxed) == owner {
                s.owner.store(0, Ordering::Relaxed);
                COUNT.fetch_sub(1, Ordering::AcqRel);
                s.state.store(FREE, Ordering::Release);
            } else {
                s.state.store(FULL, Ordering::Release);
            }
        }
    }
}

/// The siginfo of a signal sent by this process: `code` SI_TKILL (pthread_kill, tgkill) or SI_QUEUE
/// (sigqueue, with `value`), our pid and real uid, as the kernel and glibc fill it.
pub fn sent_here(sig: i32, code: i32, value: usize) -> libc::siginfo_t {
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    crate::runtime::sys::signal::siginfo(sig, code, crate::runtime::sys::getpid(), uid as i32, value)
}
