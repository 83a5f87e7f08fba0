//! Private futex wait/wake on a 32-bit word: how idle workers and plain OS threads sleep in the kernel.

use super::syscall::{Errno, syscall4, syscall6};
use core::sync::atomic::AtomicU32;

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
        syscall6(libc::SYS_futex, word.as_ptr() as usize, op as usize, expected as usize, ts_ptr, 0, u32::MAX as usize)
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
