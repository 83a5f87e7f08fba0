//! pthread_once for coroutines, with glibc's state encoding (0 new, 1 running, 2 done) so coroutines and
//! plain threads can share one `pthread_once_t`: a plain thread waits in glibc on the futex, which the
//! coroutine that finishes the initialiser wakes. A coroutine that finds the initialiser running elsewhere
//! yields, then sleeps in 1 ms steps, instead of blocking its worker (the parking lot will replace this).

use super::sys::{futex, time};
use core::sync::atomic::{AtomicI32, AtomicU32, Ordering};

const IN_PROGRESS: i32 = 1;
const DONE: i32 = 2;

#[inline]
pub fn done(state: &AtomicI32) -> bool {
    state.load(Ordering::Acquire) == DONE
}

pub fn call_once(state: &AtomicI32, init: extern "C" fn()) {
    let mut waits = 0u32;
    loop {
        let s = state.load(Ordering::Acquire);
        if s == DONE {
            return;
        }
        if s & IN_PROGRESS == 0 {
            if state.compare_exchange(s, IN_PROGRESS, Ordering::Acquire, Ordering::Acquire).is_ok() {
                init();
                state.store(DONE, Ordering::Release);
                // SAFETY: AtomicI32 and AtomicU32 have the same layout; futex only uses the address.
                futex::wake(unsafe { &*(state as *const AtomicI32 as *const AtomicU32) }, u32::MAX);
                return;
            }
            continue;
        }
        waits += 1;
        if waits < 64 {
            super::yield_now();
        } else {
            super::sleep_until(time::monotonic_ns() + 1_000_000);
        }
    }
}
