//! pthread_once for coroutines and plain threads, with glibc's state encoding (0 new, 1 running, 2 done)
//! so an object initialised by glibc's own pthread_once (before the runtime started, or in a forked child)
//! is understood. Callers that find the initialiser running elsewhere park on the object until it is done.

use super::park::{OnSignal, Wait, WaitReason};
use super::parking_lot;
use super::sys::futex;
use core::sync::atomic::{AtomicI32, AtomicU32, Ordering};

const IN_PROGRESS: i32 = 1;
const DONE: i32 = 2;

#[inline]
pub fn done(state: &AtomicI32) -> bool {
    state.load(Ordering::Acquire) == DONE
}

unsafe extern "C" {
    /// src/runtime/thread_entry.c: `init()` under a cleanup handler that calls `undo(arg)` if it unwinds.
    fn asyncshim_once_call(
        init: extern "C" fn(),
        undo: extern "C" fn(*mut core::ffi::c_void),
        arg: *mut core::ffi::c_void,
    );
}

/// Undoes a once whose initialiser did not return (cancelled, or left by pthread_exit), as glibc's own
/// cleanup handler does: the object is left as if never called, and the waiters are woken (one of them
/// then runs the initialiser). Called by glibc's forced unwind.
extern "C" fn undo(arg: *mut core::ffi::c_void) {
    // SAFETY: arg is the once object call_once passed, alive while its initialiser runs.
    let state = unsafe { &*(arg as *const AtomicI32) };
    state.store(0, Ordering::Release);
    parking_lot::unpark_all(state as *const AtomicI32 as usize, 0);
    // SAFETY: AtomicI32 and AtomicU32 have the same layout; futex only uses the address.
    futex::wake(unsafe { &*(state as *const AtomicI32 as *const AtomicU32) }, u32::MAX);
}

/// Runs `init` once for `state`; `init` may end in a forced unwind (see [`undo`]).
pub fn call_once(state: &AtomicI32, init: extern "C" fn()) {
    let key = state as *const AtomicI32 as usize;
    loop {
        let s = state.load(Ordering::Acquire);
        if s == DONE {
            return;
        }
        if s & IN_PROGRESS == 0 {
            if state.compare_exchange(s, IN_PROGRESS, Ordering::Acquire, Ordering::Acquire).is_ok() {
                // SAFETY: a C function calling init under a cleanup handler; state outlives the call.
                unsafe { asyncshim_once_call(init, undo, state as *const AtomicI32 as *mut core::ffi::c_void) };
                state.store(DONE, Ordering::Release);
                parking_lot::unpark_all(key, 0);
                // A thread that entered glibc's pthread_once before the runtime started waits on the futex.
                // SAFETY: AtomicI32 and AtomicU32 have the same layout; futex only uses the address.
                futex::wake(unsafe { &*(state as *const AtomicI32 as *const AtomicU32) }, u32::MAX);
                return;
            }
            continue;
        }
        // Interrupted (a handler ran in this thread): look again and wait again, as glibc's futex loop does.
        parking_lot::park(
            key,
            0,
            || state.load(Ordering::Acquire) & IN_PROGRESS != 0,
            || {},
            Wait::new(WaitReason::Once, key, OnSignal::Resume),
        );
    }
}
