//! What a batch of netpoller events wakes. The netpoller only reports tokens; here each token becomes the
//! fd entry it was registered for (readiness of an object closed since is dropped: its generation moved
//! on), whose waiters on the reported sides are unparked, and then waiters on several fds at once look
//! again. The scheduler calls [`wake`] with what `netpoll::poll` returned, inside its collection of woken
//! coroutines, so that one batch is queued at once.
//!
//! The scheduler core calls this, so it stays below core: it imports the fd table, the netpoller and the
//! parking lot, and nothing that decides scheduling.

use super::super::parking_lot;
use super::fd;
use super::netpoll::Event;
use core::sync::atomic::{AtomicU32, Ordering};

/// Waiters on several fds at once (poll, select with more than one fd) park on this epoch, which any
/// readiness bumps; they then look again. Single-fd waits park on the fd's own sequence instead.
pub static EPOCH: AtomicU32 = AtomicU32::new(0);
/// How many such waiters there are (none: readiness leaves the epoch alone).
pub static MULTI_WAITERS: AtomicU32 = AtomicU32::new(0);

/// Wakes the waiters of one poll's ready fds, then the waiters on several fds.
#[inline]
pub fn wake(events: &[Event]) {
    // Once, not per event: the entries' wake-ups are calls, after which the table's once-cell would be
    // looked at again.
    let table = fd::table();
    for ev in events {
        let (fd, generation) = fd::from_token(ev.token());
        let Some(e) = table.entry(fd) else { continue };
        if e.generation.load(Ordering::Acquire) != generation {
            continue;
        }
        let (read, write, unusual) = ev.readiness();
        e.ready(read, write, unusual);
    }
    readiness_seen();
}

/// After readiness was reported: waiters on several fds at once look again.
fn readiness_seen() {
    if MULTI_WAITERS.load(Ordering::Acquire) != 0 {
        EPOCH.fetch_add(1, Ordering::AcqRel);
        parking_lot::unpark_all(&EPOCH as *const AtomicU32 as usize, 0);
    }
}
