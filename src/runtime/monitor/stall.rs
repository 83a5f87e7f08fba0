//! What the monitor leaves in a worker it marks stalled: when the stall began and where (a leaf the
//! worker record holds, so that the scheduler core ends a stall without depending on the monitor).

use crate::runtime::lock::Lock;
use core::sync::atomic::{AtomicU64, Ordering};

/// Per worker: when its current stall began and where (written by the monitor, taken by the worker).
pub struct StallRecord {
    since: AtomicU64,
    place: Lock<Option<String>>,
}

impl StallRecord {
    pub const fn new() -> StallRecord {
        StallRecord { since: AtomicU64::new(0), place: Lock::new(None) }
    }

    /// The monitor marks the worker stalled since monotonic `since`, at `place` (when sampled).
    pub fn begin(&self, since: u64, place: Option<String>) {
        self.since.store(since, Ordering::Relaxed);
        *self.place.lock() = place;
    }

    /// The stall is over: when it began and where.
    pub fn take(&self) -> (u64, Option<String>) {
        (self.since.load(Ordering::Relaxed), self.place.lock().take())
    }
}

impl Default for StallRecord {
    fn default() -> Self {
        Self::new()
    }
}
