//! The accepted set: the signals some live coroutine would take now (the union of the complements of
//! their delivery masks), with a generation bumped at every change. An idle worker blocks exactly the
//! signals outside it, so those stay pending in the kernel as when every thread blocks them, and reports
//! which generation its kernel mask reflects (`Worker::idle_mask_generation`).
//!
//! A leaf: the worker reads it before it sleeps; keeping it up to date, and waking idle workers when it
//! changes, is the policy's (`masks`).

use super::handlers::report_signal_bit;
use super::set::NEVER_BLOCKED;
use crate::runtime::lock::Lock;
use core::sync::atomic::{AtomicU64, Ordering};

/// Signals some live coroutine would take now: the union of the complements of their delivery masks.
static ACCEPTED: AtomicU64 = AtomicU64::new(0);
/// Bumped after every change of ACCEPTED (under the MASKS lock): idle workers report which one their
/// kernel mask reflects (`Worker::idle_mask_generation`).
static ACCEPTED_GENERATION: AtomicU64 = AtomicU64::new(0);
/// The delivery masks of live coroutines, with how many coroutines have each (few distinct values).
static MASKS: Lock<Vec<(u64, usize)>> = Lock::new(Vec::new());

/// The generation of the accepted set (read before computing an idle worker's mask from it).
pub fn accepted_generation() -> u64 {
    ACCEPTED_GENERATION.load(Ordering::SeqCst)
}

/// The accepted set now.
pub(super) fn accepted() -> u64 {
    ACCEPTED.load(Ordering::SeqCst)
}

/// The kernel mask of an idle worker: it blocks what no live coroutine accepts (except the statistics
/// report signal, which the runtime answers itself).
pub fn idle_worker_mask() -> u64 {
    !ACCEPTED.load(Ordering::SeqCst) & !NEVER_BLOCKED & !report_signal_bit()
}

/// Counts a live coroutine's delivery mask changing from `old` to `new` (None: the coroutine starts or
/// ends). When the accepted set changes, returns it before and after, and its new generation.
pub(super) fn update(old: Option<u64>, new: Option<u64>) -> Option<(u64, u64, u64)> {
    if old == new {
        return None;
    }
    let mut masks = MASKS.lock();
    // The accepted set changes only when a mask value appears or disappears.
    let mut reshaped = false;
    if let Some(o) = old
        && let Some(i) = masks.iter().position(|e| e.0 == o)
    {
        masks[i].1 -= 1;
        if masks[i].1 == 0 {
            masks.swap_remove(i);
            reshaped = true;
        }
    }
    if let Some(n) = new {
        match masks.iter_mut().find(|e| e.0 == n) {
            Some(e) => e.1 += 1,
            None => {
                masks.push((n, 1));
                reshaped = true;
            }
        }
    }
    if !reshaped {
        return None;
    }
    let after = masks.iter().fold(0u64, |a, e| a | !e.0);
    let before = ACCEPTED.swap(after, Ordering::SeqCst);
    Some((before, after, ACCEPTED_GENERATION.fetch_add(1, Ordering::SeqCst) + 1))
}
