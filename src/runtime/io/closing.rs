//! Closing a number that coroutines are waiting on (close, dup2 or dup3 over it, close_range). Their calls
//! must not end: in the kernel a blocked read holds its own reference to the file and goes on waiting on
//! the old object (for its data, its EOF, its peer's reset) while the number is reused. So [`closing`]
//! keeps a hidden duplicate of the object, at a high number the program never sees, hands it to the
//! parked waiters, and closes it when the last of them has finished. The runtime's own numbers (the
//! netpoller's, hidden duplicates) are not open as far as the program can tell.

use super::super::lock::Lock;
use super::super::sys;
use super::fd::{Dir, FdEntry, HIGH_WATER, Kind, TIMEOUT_UNKNOWN, entry, is_runtime_own, note_number, table};
use super::netpoll;
use core::sync::atomic::Ordering;

/// What a hook should do with a close, dup2 or dup3 of a number.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// Make the real call.
    Proceed,
    /// The number is one of the runtime's own (a hidden duplicate): natively it is not open, so EBADF.
    NotOpen,
}

/// `fd` is being closed (or replaced by dup2): readiness of the old object reported later is ignored, and
/// coroutines parked on it move to a hidden duplicate (woken with its number as their unpark token) so
/// that they go on waiting on the old object, as the kernel's in-flight calls do.
pub fn closing(fd: i32) -> Closing {
    let Some(e) = entry(fd) else { return Closing::Proceed };
    if e.hidden_users.load(Ordering::Acquire) != 0 || e.runtime_own.load(Ordering::Relaxed) != 0 {
        return Closing::NotOpen;
    }
    let (was_registered, hidden) = {
        let _g = table().changes.lock();
        let old =
            Known { kind: e.kind(), timeouts: [Dir::Read, Dir::Write].map(|d| e.timeout(d).load(Ordering::Relaxed)) };
        // Whatever takes the number next (open, a descriptor received with SCM_RIGHTS) is not vouched for.
        let (generation, was) = e.forget_object(Kind::Unknown, 0, [TIMEOUT_UNKNOWN; 2]);
        if was {
            netpoll::unwatch(fd);
        }
        // Waiters register before they park, so an fd never registered has none.
        let hidden = if was && e.waiters.load(Ordering::Acquire) != 0 { hide(fd, generation, e, old) } else { None };
        (was, hidden)
    };
    if was_registered {
        match hidden {
            Some(h) => {
                // A poll between its probe and its park sees the change (it parks on these sequences).
                let token = h as usize + 1;
                let woken = e.wake_side(Dir::Read, token) + e.wake_side(Dir::Write, token);
                // The bias `hide` set kept the duplicate alive while the waiters were being woken.
                release_hidden_by(h, HIDDEN_BIAS - woken as u32);
            }
            None => {
                e.notify(Dir::Read);
                e.notify(Dir::Write);
            }
        }
    }
    Closing::Proceed
}

/// Held on a new hidden duplicate until its waiters are counted, so none of them can close it early.
const HIDDEN_BIAS: u32 = 1 << 30;

/// What `closing` knew of an object, for its hidden duplicate.
struct Known {
    kind: Kind,
    timeouts: [u64; 2],
}

/// Duplicates `fd`'s object (`old`) at a high number for its waiters (under the changes lock). None when no
/// number is free: the waiters then end with EBADF.
fn hide(fd: i32, generation: u32, e: &FdEntry, old: Known) -> Option<i32> {
    // A number the program still has open (its close has not happened yet).
    let h = sys::fd::dup_from(fd, hidden_floor()).ok()?;
    let Some(he) = entry(h) else {
        // Our own duplicate.
        let _ = sys::fd::close(h);
        return None;
    };
    note_number(h);
    he.forget_object(old.kind, 0, old.timeouts);
    he.hidden_origin.store(((fd as u32 as u64) << 32) | generation as u64, Ordering::Release);
    he.hidden_users.store(HIDDEN_BIAS, Ordering::Release);
    e.moved.store(((generation as u64) << 32) | h as u32 as u64, Ordering::Release);
    HIDDEN.lock().push(h);
    Some(h)
}

/// The lowest number hidden duplicates take: well above what programs use, below the netpoller's own fds
/// at the very top.
fn hidden_floor() -> usize {
    let cur = sys::fd::open_files_limit().0;
    cur.saturating_sub(cur / 8).max(cur.saturating_sub(16 + 4096)).max(3)
}

/// Hidden duplicates alive now (closed in a forked child, which never had them natively).
static HIDDEN: Lock<Vec<i32>> = Lock::new(Vec::new());

/// A waiter that found `fd` closed under it (generation `generation`) without being handed the hidden
/// duplicate (it was between a try and its park): takes a use of the duplicate if it still exists.
pub fn adopt_hidden(fd: i32, generation: u32) -> Option<i32> {
    let e = entry(fd)?;
    let _g = table().changes.lock();
    let moved = e.moved.load(Ordering::Acquire);
    if (moved >> 32) as u32 != generation {
        return None;
    }
    let h = moved as u32 as i32;
    let he = entry(h)?;
    if he.hidden_origin.load(Ordering::Acquire) != ((fd as u32 as u64) << 32) | generation as u64 {
        return None;
    }
    let mut users = he.hidden_users.load(Ordering::Acquire);
    loop {
        if users == 0 {
            return None;
        }
        match he.hidden_users.compare_exchange(users, users + 1, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Some(h),
            Err(now) => users = now,
        }
    }
}

/// A waiter is done with hidden duplicate `h`.
pub fn release_hidden(h: i32) {
    release_hidden_by(h, 1);
}

fn release_hidden_by(h: i32, n: u32) {
    let Some(he) = entry(h) else { return };
    if n == 0 || he.hidden_users.fetch_sub(n, Ordering::AcqRel) != n {
        return;
    }
    let _g = table().changes.lock();
    he.hidden_origin.store(0, Ordering::Release);
    if he.forget_object(Kind::Unknown, 0, [TIMEOUT_UNKNOWN; 2]).1 {
        netpoll::unwatch(h);
    }
    HIDDEN.lock().retain(|&x| x != h);
    // Our own duplicate, which no waiter uses any more.
    let _ = sys::fd::close(h);
}

/// In a forked child: the hidden duplicates belong to the parent's waiters; the child never had them.
pub fn close_hidden_in_child() {
    // The child is single-threaded here, so the lock is free unless fork caught it held: then skip.
    let Some(list) = HIDDEN.try_lock() else { return };
    for &h in list.iter() {
        // The child's copies of our own duplicates.
        let _ = sys::fd::close(h);
    }
}

/// Whether `fd` is open (a dup2 from a bad number fails before it touches the target).
fn is_open(fd: i32) -> bool {
    // F_GETFD has no side effects.
    sys::fd::fcntl(fd, libc::F_GETFD, 0).is_ok()
}

/// `new` is about to be replaced by a duplicate of `old` (dup2, dup3): as [`closing`] when the call will
/// replace it (the numbers differ and `old` is open; else the kernel answers without touching `new`).
pub fn replacing(old: i32, new: i32) -> Closing {
    if old != new && is_open(old) { closing(new) } else { Closing::Proceed }
}

/// close_range(first, last, flags) as the program means it: its own numbers in the range are closed (and
/// forgotten), the runtime's are left open, as they would not exist natively. Returns the kernel's answer
/// for the first sub-range that fails.
pub fn close_range(first: u32, last: u32, flags: u32) -> Result<usize, sys::Errno> {
    let t = table();
    if flags & !(libc::CLOSE_RANGE_CLOEXEC | libc::CLOSE_RANGE_UNSHARE) != 0 {
        // The program's own call, which the kernel refuses (EINVAL) before closing anything.
        return sys::fd::close_range(first, last, flags);
    }
    if flags & libc::CLOSE_RANGE_UNSHARE != 0 || first > last {
        // The program's own call, unchanged: UNSHARE gives the caller a private table, and an empty range
        // is the kernel's EINVAL.
        return sys::fd::close_range(first, last, flags);
    }
    // Numbers the table never heard of have nothing to forget and are none of the runtime's.
    let top = (last as usize).min(t.len.saturating_sub(1)).min(HIGH_WATER.load(Ordering::Acquire).saturating_sub(1));
    let closes = flags & libc::CLOSE_RANGE_CLOEXEC == 0;
    let mut own = Vec::new();
    let mut fd = first as usize;
    while fd <= top && t.len > 0 {
        let f = fd as i32;
        if is_runtime_own(f) {
            own.push(fd as u32);
        } else if closes {
            let _ = closing(f);
        }
        fd += 1;
    }
    let mut start = first;
    for o in own.into_iter().chain(core::iter::once(u32::MAX)) {
        let end = if o == u32::MAX { last } else { o - 1 };
        if o != start && start <= end {
            // Numbers the program owns.
            sys::fd::close_range(start, end, flags)?;
        }
        if o == u32::MAX {
            break;
        }
        start = o + 1;
        if start == 0 || start > last {
            break;
        }
    }
    Ok(0)
}
