//! Condition waits only glibc can run — on a process-shared condition variable, which other processes
//! signal through glibc's own protocol — made by a coroutine with a mutex glibc runs too (process-shared
//! or priority-protect): a helper thread makes glibc's wait while the coroutine parks, so the worker runs
//! other coroutines meanwhile instead of blocking in glibc until the monitor moves them away.
//!
//! glibc's unlock and relock inside the wait read and write the mutex's owner field (an errorcheck or
//! recursive mutex must be the caller's), so the mutex is lent to the helper for the call: the helper's
//! tid goes in the owner field before the wait, and the coroutine's comes back after it when glibc relocked
//! the mutex for the helper. A mutex the caller does not own is not lent: glibc answers EPERM itself.

use super::super::offload;
use super::super::stats::Offload;
use super::my_tid;
use core::sync::atomic::{AtomicI32, Ordering};

/// Offset of `__owner` in glibc's x86-64 `struct __pthread_mutex_s`.
const OFF_OWNER: usize = 8;

fn owner(m: usize) -> &'static AtomicI32 {
    // SAFETY: an aligned int inside the live 40-byte mutex the caller named (see `wait_on_helper`).
    unsafe { &*((m + OFF_OWNER) as *const AtomicI32) }
}

/// Runs `wait` (glibc's condition wait with mutex `m`) on a helper thread while the calling coroutine
/// parks, lending it the mutex; a plain thread runs it itself. Returns the wait's result.
///
/// # Safety
/// `m` must be a live, initialised mutex that stays so for the whole wait, as the wait itself requires.
pub unsafe fn wait_on_helper(m: *mut libc::pthread_mutex_t, wait: impl FnOnce() -> i32 + Send + 'static) -> i32 {
    let m = m as usize;
    let me = my_tid();
    let lend = owner(m).load(Ordering::Relaxed) == me;
    let (r, helper) = offload::run(Offload::SharedFutex, move || {
        let helper = my_tid();
        if lend {
            owner(m).store(helper, Ordering::Relaxed);
        }
        (wait(), helper)
    });
    // The wait relocked the mutex for the helper (whatever it returns, unless it refused at the start).
    if helper != me && owner(m).load(Ordering::Relaxed) == helper {
        owner(m).store(me, Ordering::Relaxed);
    }
    r
}
