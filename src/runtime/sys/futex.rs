//! Futexes: private wait/wake on a 32-bit word (how idle workers and plain OS threads sleep in the
//! kernel), and the kernel's robust-futex ABI (the word's bits, what happens to a dying owner's words).

use super::syscall::{Errno, syscall2, syscall3, syscall4, syscall6};
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

/// Sleeps while `*word == expected`, at most until the absolute CLOCK_MONOTONIC `deadline_ns` if given.
/// Returns false on timeout; spurious returns are possible, so callers re-check their condition.
pub fn wait(word: &AtomicU32, expected: u32, deadline_ns: Option<u64>) -> bool {
    !matches!(wait_interruptible(word, expected, deadline_ns), WaitEnd::TimedOut)
}

/// How a [`wait_interruptible`] ended.
pub enum WaitEnd {
    /// Woken, or the word no longer held the expected value, or spuriously: re-check.
    Woken,
    TimedOut,
    /// A signal handler ran.
    Interrupted,
}

/// Like [`wait`], telling apart a timeout and a signal.
pub fn wait_interruptible(word: &AtomicU32, expected: u32, deadline_ns: Option<u64>) -> WaitEnd {
    let ts;
    let ts_ptr = match deadline_ns {
        Some(ns) => {
            ts = libc::timespec { tv_sec: (ns / 1_000_000_000) as i64, tv_nsec: (ns % 1_000_000_000) as i64 };
            &ts as *const libc::timespec as usize
        }
        None => 0,
    };
    // FUTEX_WAIT_BITSET takes an absolute timeout on CLOCK_MONOTONIC (no CLOCK_REALTIME flag).
    let op = libc::FUTEX_WAIT_BITSET | libc::FUTEX_PRIVATE_FLAG;
    // SAFETY: `word` is a live AtomicU32 and `ts_ptr` is null or points at `ts`, alive for the call.
    let r = unsafe {
        syscall6(
            libc::SYS_futex,
            [word.as_ptr() as usize, op as usize, expected as usize, ts_ptr, 0, u32::MAX as usize],
        )
    };
    match r {
        Err(Errno(libc::ETIMEDOUT)) => WaitEnd::TimedOut,
        Err(Errno(libc::EINTR)) => WaitEnd::Interrupted,
        _ => WaitEnd::Woken,
    }
}

/// Wakes up to `n` threads sleeping in [`wait`] on `word`.
pub fn wake(word: &AtomicU32, n: u32) {
    let op = libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG;
    // SAFETY: FUTEX_WAKE only uses the address as a key.
    let _ = unsafe { syscall4(libc::SYS_futex, word.as_ptr() as usize, op as usize, n as usize, 0) };
}

/// A robust or PI futex word: someone sleeps in the kernel on it.
pub const FUTEX_WAITERS: u32 = 0x8000_0000;
/// A robust futex word: its owner died holding it (the next locker gets EOWNERDEAD).
pub const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
/// A robust or PI futex word: the owner's thread id.
pub const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
/// The kernel's ROBUST_LIST_LIMIT: at most this many entries of a dying thread's robust list are released.
pub const ROBUST_LIST_LIMIT: usize = 2048;

/// What the kernel does to each robust futex of a thread that dies (`handle_futex_death`): the word, if
/// `owner` still owns it (any owner when None), becomes FUTEX_OWNER_DIED keeping its waiters bit, and one
/// waiter is woken (glibc's robust mutexes wait with shared futex operations). False when not `owner`'s.
pub fn mark_owner_died(word: &AtomicU32, owner: Option<i32>) -> bool {
    // A waiter may add the waiters bit meanwhile: compare and swap until the word holds still.
    let prev = word.fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
        let owned = owner.is_none_or(|tid| cur & FUTEX_TID_MASK == tid as u32);
        owned.then_some((cur & FUTEX_WAITERS) | FUTEX_OWNER_DIED)
    });
    match prev {
        Ok(cur) => {
            if cur & FUTEX_WAITERS != 0 {
                wake_shared(word, 1);
            }
            true
        }
        Err(_) => false,
    }
}

/// Wakes up to `n` threads waiting on `word` with shared (not private) futex operations, as glibc's
/// robust and process-shared mutexes do.
pub fn wake_shared(word: &AtomicU32, n: u32) {
    // SAFETY: FUTEX_WAKE only uses the address as a key.
    let _ = unsafe { syscall4(libc::SYS_futex, word.as_ptr() as usize, libc::FUTEX_WAKE as usize, n as usize, 0) };
}

/// The program's own futex(2) call, passed on unchanged.
///
/// # Safety
/// The arguments are the program's own (the kernel validates them) or valid for `op`.
pub unsafe fn futex_raw(
    addr: usize,
    op: i32,
    val: u32,
    timeout: usize,
    addr2: usize,
    val3: u32,
) -> Result<usize, Errno> {
    // SAFETY: the caller vouches for the arguments.
    unsafe { syscall6(libc::SYS_futex, [addr, op as usize, val as usize, timeout, addr2, val3 as usize]) }
}

/// Whether the word at `addr` (4-byte aligned) can be read: FUTEX_WAIT reads it and answers EFAULT if
/// it cannot. The value compared is one no word holds by chance (a match only waits out the zero timeout).
pub fn word_readable(addr: usize) -> bool {
    const UNLIKELY: usize = 0xa5c3_5a3c;
    let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: FUTEX_WAIT only reads the word (the kernel reports a bad address) and the timeout is zero.
    let r = unsafe {
        syscall4(
            libc::SYS_futex,
            addr,
            (libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG) as usize,
            UNLIKELY,
            &zero as *const libc::timespec as usize,
        )
    };
    !matches!(r, Err(e) if e.0 == libc::EFAULT)
}

/// The kernel's `struct robust_list_head` (glibc keeps one in each thread's descriptor): the list of the
/// robust futexes a thread holds, the offset from an entry to its futex word, and the entry being
/// locked or unlocked right now.
#[repr(C)]
pub struct RobustHead {
    pub list: AtomicUsize,
    pub futex_offset: isize,
    pub pending: AtomicUsize,
}

/// Tells the kernel where the calling thread's robust list is (set_robust_list(2)); `len` is the size of
/// its head.
///
/// # Safety
/// `head` is a robust-list head that lives as long as the calling thread, or until replaced.
pub unsafe fn set_robust_list(head: usize, len: usize) -> Result<(), Errno> {
    // SAFETY: the caller vouches for the head.
    unsafe { syscall2(libc::SYS_set_robust_list, head, len) }.map(|_| ())
}

/// The calling thread's robust list as registered with the kernel: (head, size of the head).
pub fn get_robust_list() -> Result<(usize, usize), Errno> {
    let (mut head, mut len) = (0usize, 0usize);
    // SAFETY: get_robust_list(0) writes the calling thread's head and length to two locals.
    unsafe {
        syscall3(libc::SYS_get_robust_list, 0, &mut head as *mut usize as usize, &mut len as *mut usize as usize)
    }?;
    Ok((head, len))
}
