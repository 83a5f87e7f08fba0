//! Signal sets as the kernel's 64-bit masks (bit n-1 for signal n), and the signals that have a fixed
//! place in them: those never blocked on a worker, those a program's mask cannot block, those whose
//! default action does nothing. A leaf: plain values and pure functions, usable from anywhere, signal
//! context included.

use crate::runtime::sys::signal::{SIGCANCEL, SIGSETXID};

/// One more than the highest signal number (the kernel's `_NSIG` + 1 for a 1-based index).
pub const NSIG: usize = 65;

/// The bit of `sig` in a mask.
pub const fn bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

/// The signals in a set, lowest first.
pub fn signals_in(mut set: u64) -> impl Iterator<Item = i32> {
    core::iter::from_fn(move || {
        (set != 0).then(|| {
            let sig = set.trailing_zeros() as i32 + 1;
            set &= set - 1;
            sig
        })
    })
}

/// Never blocked on a worker: faults (the kernel forces them through anyway, resetting the handler),
/// SIGKILL and SIGSTOP, and glibc's SIGCANCEL and SIGSETXID (its set*id calls signal every OS thread).
pub const NEVER_BLOCKED: u64 = bit(libc::SIGSEGV)
    | bit(libc::SIGBUS)
    | bit(libc::SIGFPE)
    | bit(libc::SIGILL)
    | bit(libc::SIGTRAP)
    | bit(libc::SIGSYS)
    | bit(libc::SIGKILL)
    | bit(libc::SIGSTOP)
    | bit(SIGCANCEL)
    | bit(SIGSETXID);

/// What a mask the program passes can block (SIGKILL, SIGSTOP and glibc's two are never blocked).
pub fn sanitize_mask(m: u64) -> u64 {
    m & !(bit(libc::SIGKILL) | bit(libc::SIGSTOP) | bit(SIGCANCEL) | bit(SIGSETXID))
}

/// Signals whose default action is to do nothing: a stale mask letting them through harms nobody.
pub const DEFAULT_IGNORED: u64 = bit(libc::SIGCHLD) | bit(libc::SIGCONT) | bit(libc::SIGURG) | bit(libc::SIGWINCH);

/// The mask runtime threads (workers before they start, the monitor, helpers) are created with.
pub fn runtime_thread_mask() -> u64 {
    !NEVER_BLOCKED
}
