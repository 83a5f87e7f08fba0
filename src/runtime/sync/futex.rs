//! The raw futex system call as programs make it through libc's `syscall()` (Rust's std, C++20 atomic
//! waits, hand-written locks). Private waits park in the parking lot keyed by the futex address, so
//! coroutines wait without blocking their worker; private wakes wake parked waiters first and then the
//! kernel's (waiters that reached the kernel some other way). Shared futexes may be shared with other
//! processes and stay in the kernel; a coroutine waits on one in short slices, yielding in between.

use super::super::parking_lot::{self, Filter, Parked};
use super::super::sys::{syscall::Errno, syscall::syscall6, time};
use super::super::worker;
use core::sync::atomic::{AtomicU32, Ordering};

const FUTEX_WAIT: i32 = 0;
const FUTEX_WAKE: i32 = 1;
const FUTEX_WAIT_BITSET: i32 = 9;
const FUTEX_WAKE_BITSET: i32 = 10;
const FUTEX_PRIVATE: i32 = 128;
const FUTEX_CLOCK_REALTIME: i32 = 256;
const CMD_MASK: i32 = !(FUTEX_PRIVATE | FUTEX_CLOCK_REALTIME);
const SHARED_SLICE_NS: u64 = 1_000_000;

fn raw(addr: usize, op: i32, val: u32, timeout: usize, addr2: usize, val3: u32) -> Result<usize, Errno> {
    // SAFETY: the program's own futex call, passed on unchanged; the kernel validates every argument.
    unsafe { syscall6(libc::SYS_futex, addr, op as usize, val as usize, timeout, addr2, val3 as usize) }
}

/// Handles `syscall(SYS_futex, addr, op, val, timeout, addr2, val3)` for the caller. Returns what the
/// system call would (a count, 0, or the errno).
pub fn futex(addr: usize, op: i32, val: u32, timeout: usize, addr2: usize, val3: u32) -> Result<usize, Errno> {
    let cmd = op & CMD_MASK;
    let private = op & FUTEX_PRIVATE != 0;
    match cmd {
        FUTEX_WAIT | FUTEX_WAIT_BITSET if private => {
            wait(addr, op, val, timeout, if cmd == FUTEX_WAIT { u32::MAX } else { val3 })
        }
        FUTEX_WAIT | FUTEX_WAIT_BITSET if worker::current_task().is_some() => {
            shared_wait(addr, op, val, timeout, addr2, val3)
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET if private => {
            let bits = if cmd == FUTEX_WAKE { u32::MAX } else { val3 };
            if bits == 0 {
                return Err(Errno(libc::EINVAL));
            }
            let mut left = val as usize;
            let woken = parking_lot::unpark_filter(
                addr,
                |token| {
                    if left == 0 {
                        Filter::Stop
                    } else if token as u32 & bits != 0 {
                        left -= 1;
                        Filter::Unpark
                    } else {
                        Filter::Skip
                    }
                },
                |_| 0,
            );
            if woken < val as usize {
                let more = raw(addr, op, val - woken as u32, timeout, addr2, val3)?;
                return Ok(woken + more);
            }
            Ok(woken)
        }
        _ => raw(addr, op, val, timeout, addr2, val3),
    }
}

/// The deadline of a futex wait: FUTEX_WAIT takes a relative time, FUTEX_WAIT_BITSET an absolute one on
/// CLOCK_MONOTONIC or (with FUTEX_CLOCK_REALTIME) CLOCK_REALTIME.
fn deadline(op: i32, timeout: usize) -> Result<Option<u64>, Errno> {
    if timeout == 0 {
        return Ok(None);
    }
    let ts = super::super::sys::usercopy::read(timeout as *const libc::timespec).map_err(Errno)?;
    let ns = time::timespec_ns(&ts).ok_or(Errno(libc::EINVAL))?;
    if op & CMD_MASK == FUTEX_WAIT {
        return Ok(Some(time::monotonic_ns().saturating_add(ns)));
    }
    let clock = if op & FUTEX_CLOCK_REALTIME != 0 { libc::CLOCK_REALTIME } else { libc::CLOCK_MONOTONIC };
    Ok(Some(super::super::thread::deadline_from_abs(clock, ns)))
}

fn wait(addr: usize, op: i32, val: u32, timeout: usize, bits: u32) -> Result<usize, Errno> {
    if bits == 0 || addr % 4 != 0 {
        return Err(Errno(libc::EINVAL));
    }
    // The value check reads the program's word; an unreadable address is EFAULT, as from the kernel.
    let current = super::super::sys::usercopy::read(addr as *const u32).map_err(Errno)?;
    if current != val {
        return Err(Errno(libc::EAGAIN));
    }
    let deadline = deadline(op, timeout)?;
    // SAFETY: the word was just read successfully and futex words live as long as their waiters.
    let word = unsafe { &*(addr as *const AtomicU32) };
    match parking_lot::park(addr, bits as usize, || word.load(Ordering::Relaxed) == val, || {}, deadline, true) {
        Parked::Unparked(_) => Ok(0),
        Parked::Invalid => Err(Errno(libc::EAGAIN)),
        Parked::TimedOut => Err(Errno(libc::ETIMEDOUT)),
        Parked::Interrupted => Err(Errno(libc::EINTR)),
    }
}

/// A coroutine waiting on a possibly process-shared futex: kernel waits of at most 1 ms, yielding between.
fn shared_wait(addr: usize, op: i32, val: u32, timeout: usize, addr2: usize, val3: u32) -> Result<usize, Errno> {
    let end = deadline(op, timeout)?;
    let bitset = if op & CMD_MASK == FUTEX_WAIT { u32::MAX } else { val3 };
    loop {
        let now = time::monotonic_ns();
        if end.is_some_and(|e| e <= now) {
            return Err(Errno(libc::ETIMEDOUT));
        }
        let slice_end = end.map_or(now + SHARED_SLICE_NS, |e| e.min(now + SHARED_SLICE_NS));
        let ts = time::ns_timespec(slice_end);
        let r = raw(addr, FUTEX_WAIT_BITSET, val, &ts as *const libc::timespec as usize, addr2, bitset);
        match r {
            Err(Errno(libc::ETIMEDOUT)) => super::super::yield_now(),
            other => return other,
        }
    }
}
