//! Spin locks: spinning on a lock held by a coroutine that is switched out would spin forever on its
//! worker, so after a short spin a coroutine yields (a plain thread yields its CPU).
//!
//! glibc's x86 encoding: 1 is free, 0 (or below, after contended decrements) is held; unlock stores 1.

use core::sync::atomic::{AtomicI32, Ordering};

const SPINS: u32 = 200;
const FREE: i32 = 1;

/// # Safety
/// `lock` must point at a live `pthread_spinlock_t`.
pub unsafe fn lock(lock: *mut libc::pthread_spinlock_t) {
    // SAFETY: pthread_spinlock_t is an int accessed atomically by every user.
    let word = unsafe { &*(lock as *const AtomicI32) };
    loop {
        if word.compare_exchange_weak(FREE, 0, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            return;
        }
        for _ in 0..SPINS {
            core::hint::spin_loop();
            if word.load(Ordering::Relaxed) > 0 {
                break;
            }
        }
        if word.load(Ordering::Relaxed) <= 0 {
            if super::super::worker::current_task().is_some() {
                super::super::park::yield_now();
            } else {
                super::super::sys::sched_yield();
            }
        }
    }
}
