//! A plain thread's wait on a process-shared condition variable (glibc's own wait: exact, and a plain
//! thread blocking blocks no one else) with a mutex the runtime runs (process-private): glibc's wait cannot
//! be given that mutex, as its internal unlock would not wake the runtime's parked waiters, nor its relock
//! park. A helper thread waits with a stand-in mutex of its own instead, and the caller unlocks the real
//! one once glibc has queued the helper on the condition variable — glibc unlocks the stand-in right after
//! queueing — so a signal sent once the caller's mutex is free always finds the waiter, as natively; the
//! real mutex is locked again after the wait. (Coroutines wait on process-shared condition variables
//! through `super::shared_cond`, parked, with any mutex.)

use super::super::offload;
use super::super::stats::Offload;
use super::super::sys::time;
use super::mutex::Mutex;
use core::sync::atomic::{AtomicI32, Ordering};

/// Lock word of a locked glibc mutex that may have waiters: its unlock then always makes a futex wake.
const LOCKED_WITH_WAITERS: i32 = 2;

/// A wait on a process-shared condition variable with `mx`, a mutex the runtime runs, which the caller
/// holds: `wait(stand_in)` is glibc's wait with the stand-in mutex, made on a helper thread (see the module
/// doc). None when no helper thread can be started (the caller then lets glibc wait as before).
pub fn wait_with_runtime_mutex(
    mx: &Mutex,
    wait: impl FnOnce(*mut libc::pthread_mutex_t) -> i32 + Send + 'static,
) -> Option<i32> {
    if mx.not_owned_checked() {
        return Some(libc::EPERM);
    }
    // A default (normal) mutex, zeroed as PTHREAD_MUTEX_INITIALIZER is, held for the helper with the
    // waiters mark, so that glibc's unlock of it is an exchange the caller can see.
    // SAFETY: all-zero is a valid pthread_mutex_t.
    let stand_in: Box<libc::pthread_mutex_t> = Box::new(unsafe { core::mem::zeroed() });
    let stand_in = Box::into_raw(stand_in);
    // SAFETY: the lock word is the first int of the object, which lives until the end of this function.
    let word = unsafe { &*(stand_in as *const AtomicI32) };
    word.store(LOCKED_WITH_WAITERS, Ordering::Relaxed);
    let address = stand_in as usize;
    let pending =
        match offload::start_on_helper(Offload::SharedFutex, move || wait(address as *mut libc::pthread_mutex_t)) {
            Ok(p) => p,
            Err(_) => {
                // SAFETY: made by Box::into_raw above and not shared.
                drop(unsafe { Box::from_raw(stand_in) });
                return None;
            }
        };
    // glibc queues the helper and then unlocks the stand-in (within microseconds), which wakes a futex
    // waiter of its word: the caller waits there, in the kernel. A wait that ends at once (EINVAL for a
    // bad time) never unlocks it, and then the caller's mutex is not touched either; the bounded waits
    // notice that.
    let mut pause = 1_000_000u64;
    let queued = loop {
        if word.load(Ordering::Acquire) != LOCKED_WITH_WAITERS {
            break true;
        }
        if pending.finished() {
            break word.load(Ordering::Acquire) != LOCKED_WITH_WAITERS;
        }
        let until = time::monotonic_ns() + pause;
        // A private futex: glibc's unlock of the stand-in wakes it so.
        let _ = super::kernel_wait::wait(
            word as *const AtomicI32 as usize,
            LOCKED_WITH_WAITERS as u32,
            u32::MAX,
            true,
            Some(until),
            super::super::park::OnSignal::Resume,
        );
        pause = (pause * 2).min(50_000_000);
    };
    if !queued {
        let r = pending.wait();
        // SAFETY: the helper's wait has returned: nothing refers to the stand-in any more.
        drop(unsafe { Box::from_raw(stand_in) });
        return Some(r);
    }
    mx.unlock();
    let r = pending.wait();
    let relocked = mx.lock(None, None);
    // SAFETY: the helper's wait has returned: nothing refers to the stand-in any more.
    drop(unsafe { Box::from_raw(stand_in) });
    Some(if relocked != 0 { relocked } else { r })
}
