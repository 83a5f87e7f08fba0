//! The raw futex system call as programs make it through libc's `syscall()` (Rust's std, C++20 atomic
//! waits, hand-written locks). Private waits park in the parking lot keyed by the futex address, so
//! coroutines wait without blocking their worker; private wakes wake parked waiters first and then the
//! kernel's (waiters that reached the kernel some other way); private requeues move parked waiters.
//! Shared futexes may be shared with another process, which only the kernel can hear from: a coroutine's
//! wait on one is queued in the kernel while it parks ([`super::kernel_wait`]), and shared wakes go to
//! the kernel.

use super::super::park::{Wait, WaitReason};
use super::super::parking_lot::{self, Filter, Parked};
use super::super::sys::{syscall::Errno, time};
use core::sync::atomic::{AtomicU32, Ordering};

const FUTEX_WAIT: i32 = 0;
const FUTEX_WAKE: i32 = 1;
const FUTEX_WAIT_BITSET: i32 = 9;
const FUTEX_REQUEUE: i32 = 3;
const FUTEX_CMP_REQUEUE: i32 = 4;
const FUTEX_WAKE_BITSET: i32 = 10;
const FUTEX_PRIVATE: i32 = 128;
const FUTEX_CLOCK_REALTIME: i32 = 256;
const CMD_MASK: i32 = !(FUTEX_PRIVATE | FUTEX_CLOCK_REALTIME);

fn raw(addr: usize, op: i32, val: u32, timeout: usize, addr2: usize, val3: u32) -> Result<usize, Errno> {
    // SAFETY: the program's own futex call, passed on unchanged; the kernel validates every argument.
    unsafe { super::super::sys::futex::futex_raw(addr, op, val, timeout, addr2, val3) }
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
        // A shared futex may be woken from another process, which only the kernel hears of: the wait
        // really happens there, queued by the kernel for the parked coroutine (see `kernel_wait`).
        FUTEX_WAIT | FUTEX_WAIT_BITSET if super::super::worker::current_task().is_some() => {
            let bits = if cmd == FUTEX_WAIT { u32::MAX } else { val3 };
            if bits == 0 || !addr.is_multiple_of(4) {
                return Err(Errno(libc::EINVAL));
            }
            let deadline = deadline(op, timeout)?;
            super::kernel_wait::wait(addr, val, bits, false, deadline, super::futex_interrupt(deadline)).map(|()| 0)
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
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE if private => {
            // The fourth argument is the number to requeue, passed in the timeout slot.
            let requeue = timeout.min(i32::MAX as usize);
            if (val as i32) < 0 || (timeout as isize) < 0 || !addr.is_multiple_of(4) || !addr2.is_multiple_of(4) {
                return Err(Errno(libc::EINVAL));
            }
            let word = super::super::sys::usercopy::read(addr as *const u32)?;
            let check = || cmd == FUTEX_REQUEUE || word == val3;
            match parking_lot::requeue(addr, addr2, val as usize, requeue, check) {
                None => Err(Errno(libc::EAGAIN)),
                Some((woken, moved)) if cmd == FUTEX_CMP_REQUEUE => Ok(woken + moved),
                Some((woken, _)) => Ok(woken),
            }
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
    let ts = super::super::sys::usercopy::read(timeout as *const libc::timespec)?;
    let ns = time::timespec_ns(&ts).ok_or(Errno(libc::EINVAL))?;
    if op & CMD_MASK == FUTEX_WAIT {
        return Ok(Some(time::monotonic_ns().saturating_add(ns)));
    }
    let clock = if op & FUTEX_CLOCK_REALTIME != 0 { libc::CLOCK_REALTIME } else { libc::CLOCK_MONOTONIC };
    Ok(Some(time::deadline_from_abs(clock, ns)))
}

fn wait(addr: usize, op: i32, val: u32, timeout: usize, bits: u32) -> Result<usize, Errno> {
    if bits == 0 || !addr.is_multiple_of(4) {
        return Err(Errno(libc::EINVAL));
    }
    // The value check reads the program's word; an unreadable address is EFAULT, as from the kernel.
    let current = super::super::sys::usercopy::read(addr as *const u32)?;
    if current != val {
        return Err(Errno(libc::EAGAIN));
    }
    let deadline = deadline(op, timeout)?;
    // SAFETY: the word was just read successfully and futex words live as long as their waiters.
    let word = unsafe { &*(addr as *const AtomicU32) };
    let how = Wait::new(WaitReason::Futex, addr, super::futex_interrupt(deadline)).until(deadline);
    loop {
        match parking_lot::park(addr, bits as usize, || word.load(Ordering::Relaxed) == val, || {}, how) {
            Parked::Unparked(_) => return Ok(0),
            Parked::Invalid => return Err(Errno(libc::EAGAIN)),
            Parked::TimedOut => return Err(Errno(libc::ETIMEDOUT)),
            // The kernel restarts an untimed wait whose handler has SA_RESTART (checking the word again).
            Parked::Interrupted if super::interrupted_wait_restarts() => {}
            Parked::Interrupted => return Err(Errno(libc::EINTR)),
        }
    }
}
