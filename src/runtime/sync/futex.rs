//! The raw futex system call as programs make it through libc's `syscall()` (Rust's std, C++20 atomic
//! waits, hand-written locks, old-style condition variables built on requeue). Private waits park in the
//! parking lot keyed by the futex address, so coroutines wait without blocking their worker. A private
//! futex may also have waiters in the kernel (code that makes the system call itself, not through
//! `syscall()`), so every private wake, requeue and wake-op serves both: the kernel's waiters through
//! the kernel's own call, the lot's here, with the counts added up as one queue's would be.
//! Shared futexes may be shared with another process, which only the kernel can hear from: a coroutine's
//! wait on one is queued in the kernel while it parks ([`super::kernel_wait`]), so shared wakes,
//! requeues and wake-ops go to the kernel, which reaches those waits as any others.
//!
//! The priority-inheritance commands (LOCK_PI, UNLOCK_PI, TRYLOCK_PI, WAIT_REQUEUE_PI, CMP_REQUEUE_PI)
//! go to the kernel unchanged: it finds a PI word's owner by the tid in it, and a coroutine's tid is one
//! it does not know (README, "What does not work yet").

use super::super::park::{Wait, WaitReason};
use super::super::parking_lot::{self, Filter, Parked};
use super::super::sys::{syscall::Errno, time, usercopy};
use core::sync::atomic::{AtomicU32, Ordering};

const FUTEX_WAIT: i32 = 0;
const FUTEX_WAKE: i32 = 1;
const FUTEX_REQUEUE: i32 = 3;
const FUTEX_CMP_REQUEUE: i32 = 4;
const FUTEX_WAKE_OP: i32 = 5;
const FUTEX_WAIT_BITSET: i32 = 9;
const FUTEX_WAKE_BITSET: i32 = 10;
const FUTEX_WAIT_REQUEUE_PI: i32 = 11;
const FUTEX_LOCK_PI2: i32 = 13;
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
    // The kernel refuses FUTEX_CLOCK_REALTIME on the other commands (ENOSYS, after checking the timeout):
    // its own answer, with no side effect.
    if op & FUTEX_CLOCK_REALTIME != 0 && !matches!(cmd, FUTEX_WAIT_BITSET | FUTEX_WAIT_REQUEUE_PI | FUTEX_LOCK_PI2) {
        return raw(addr, op, val, timeout, addr2, val3);
    }
    match cmd {
        FUTEX_WAIT | FUTEX_WAIT_BITSET if private => {
            wait(addr, op, val, timeout, if cmd == FUTEX_WAIT { u32::MAX } else { val3 })
        }
        // A shared futex may be woken from another process, which only the kernel hears of: the wait
        // really happens there, queued by the kernel for the parked coroutine (see `kernel_wait`).
        FUTEX_WAIT | FUTEX_WAIT_BITSET if super::super::worker::current_task().is_some() => {
            // The kernel reads and checks the timeout first.
            let deadline = deadline(op, timeout)?;
            let bits = if cmd == FUTEX_WAIT { u32::MAX } else { val3 };
            if bits == 0 || !addr.is_multiple_of(4) {
                return Err(Errno(libc::EINVAL));
            }
            super::kernel_wait::wait(addr, val, bits, false, deadline, super::futex_interrupt(deadline)).map(|()| 0)
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET if private => {
            let bits = if cmd == FUTEX_WAKE { u32::MAX } else { val3 };
            if bits == 0 {
                return Err(Errno(libc::EINVAL));
            }
            wake(addr, val, bits)
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE if private => requeue(addr, op, val, timeout, addr2, val3),
        FUTEX_WAKE_OP if private => wake_op(addr, op, val, timeout, addr2, val3),
        _ => raw(addr, op, val, timeout, addr2, val3),
    }
}

/// How many waiters a wake of `n` may wake: the kernel counts after each wake whether it has reached
/// `n`, so 0 and negative counts wake one.
fn wake_limit(n: u32) -> usize {
    (n as i32).max(1) as usize
}

/// A private FUTEX_WAKE_BITSET of up to `n` waiters of `addr` (bitset `bits`): the lot's first, then
/// the kernel's for the rest (which also answers for a bad address).
fn wake(addr: usize, n: u32, bits: u32) -> Result<usize, Errno> {
    let limit = wake_limit(n);
    let mut left = limit;
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
    if woken < limit {
        let op = libc::FUTEX_WAKE_BITSET | libc::FUTEX_PRIVATE_FLAG;
        return Ok(woken + raw(addr, op, (limit - woken) as u32, 0, 0, bits)?);
    }
    Ok(woken)
}

/// Private FUTEX_REQUEUE / FUTEX_CMP_REQUEUE: wakes up to `val` waiters of `addr` and moves up to the
/// count in the timeout slot of the others to `addr2`; returns how many were woken or moved (both
/// commands: the kernel counts the moved in for FUTEX_REQUEUE too).
///
/// The kernel's call goes first, unchanged: it checks the counts, both addresses and (CMP) the word,
/// answering EINVAL/EFAULT/EAGAIN before anything moves, and serves its own waiters, waking before it
/// moves. The lot's waiters then get what is left of both counts, moved under the same word check made
/// with both lot queues locked (where a waiter checks the word before it parks). If the word changed
/// between the two checks, the call has already succeeded for the kernel's waiters: the lot's are woken
/// instead of moved (a futex waiter must take a wake it did not expect), never left asleep on `addr`
/// while the caller believes them moved.
fn requeue(addr: usize, op: i32, val: u32, timeout: usize, addr2: usize, val3: u32) -> Result<usize, Errno> {
    let in_kernel = raw(addr, op, val, timeout, addr2, val3)?;
    // The kernel accepted the counts: neither is negative as an int (the requeue count is the
    // timeout slot's low 32 bits).
    let (wake, requeue) = (val as usize, timeout as u32 as usize);
    let kernel_woken = in_kernel.min(wake);
    let kernel_moved = in_kernel - kernel_woken;
    let (wake, requeue) = (wake - kernel_woken, requeue - kernel_moved);
    if wake + requeue == 0 || !parking_lot::may_have_waiters(addr) {
        return Ok(in_kernel);
    }
    let check = || op & CMD_MASK == FUTEX_REQUEUE || usercopy::read(addr as *const u32) == Ok(val3);
    match parking_lot::requeue(addr, addr2, wake, requeue, check) {
        Some((woken, moved)) => Ok(in_kernel + woken + moved),
        None => {
            let mut left = wake + requeue;
            let woken = parking_lot::unpark_filter(
                addr,
                |_| {
                    if left == 0 {
                        return Filter::Stop;
                    }
                    left -= 1;
                    Filter::Unpark
                },
                |_| 0,
            );
            Ok(in_kernel + woken)
        }
    }
}

/// The kernel's encoding of FUTEX_WAKE_OP's operation (`val3`): op in bits 28-30 (bit 31: the operand
/// is a shift count), comparison in 24-27, 12-bit signed operand and comparison argument below.
const FUTEX_OP_OPARG_SHIFT: u32 = 8;
const FUTEX_OP_XOR: u32 = 4;
const FUTEX_OP_CMP_GE: u32 = 5;
/// OR 0 (no change) with an unknown comparison (15): the kernel validates both addresses, faults the
/// second in writable and makes the (empty) operation, then answers ENOSYS without waking anyone.
const PROBE_OP: u32 = (2 << 28) | (15 << 24);

fn sign_extend12(v: u32) -> i32 {
    ((v << 20) as i32) >> 20
}

/// Private FUTEX_WAKE_OP: atomically applies the operation to the word at `addr2`, wakes up to `val`
/// waiters of `addr`, and, if the comparison holds for the word's old value, up to the count in the
/// timeout slot of `addr2`'s; returns the number woken.
///
/// The operation must be made once, and the lot's waiters need its old value, which the kernel does not
/// return: so the kernel only checks the call (`PROBE_OP`, answering EINVAL/EFAULT exactly as the real
/// call would) and the operation is made here, before either word's waiters are looked at (a waiter
/// checks its word with its queue locked, so none can miss the change). An unknown operation or
/// comparison goes to the kernel whole: it answers ENOSYS (having made a valid operation first, as
/// natively) and wakes nobody.
fn wake_op(addr: usize, op: i32, val: u32, timeout: usize, addr2: usize, val3: u32) -> Result<usize, Errno> {
    let (kind, cmp) = ((val3 >> 28) & 7, (val3 >> 24) & 15);
    if kind > FUTEX_OP_XOR || cmp > FUTEX_OP_CMP_GE {
        return raw(addr, op, val, timeout, addr2, val3);
    }
    match raw(addr, op, 0, 0, addr2, PROBE_OP) {
        Err(e) if e.0 == libc::ENOSYS => {}
        Err(e) => return Err(e),
        // A kernel that accepted the probe's comparison: let it make the whole call.
        Ok(_) => return raw(addr, op, val, timeout, addr2, val3),
    }
    let mut oparg = sign_extend12(val3 >> 12);
    if (val3 >> 28) & FUTEX_OP_OPARG_SHIFT != 0 {
        // The kernel takes an out-of-range shift modulo 32 (with a warning in its log).
        oparg = 1 << (oparg & 31);
    }
    let cmparg = sign_extend12(val3);
    let oparg = oparg as u32;
    // Made as the kernel makes it, atomically and fault-safe: a word unmapped since the probe is EFAULT.
    let old = usercopy::update_u32(addr2 as *mut u32, |old| match kind {
        0 => oparg,
        1 => old.wrapping_add(oparg),
        2 => old | oparg,
        3 => old & !oparg,
        _ => old ^ oparg,
    })? as i32;
    let holds = match cmp {
        0 => old == cmparg,
        1 => old != cmparg,
        2 => old < cmparg,
        3 => old <= cmparg,
        4 => old > cmparg,
        _ => old >= cmparg,
    };
    let mut woken = wake(addr, val, u32::MAX)?;
    if holds {
        woken += wake(addr2, timeout as u32, u32::MAX)?;
    }
    Ok(woken)
}

/// The deadline of a futex wait: FUTEX_WAIT takes a relative time, FUTEX_WAIT_BITSET an absolute one on
/// CLOCK_MONOTONIC or (with FUTEX_CLOCK_REALTIME) CLOCK_REALTIME.
fn deadline(op: i32, timeout: usize) -> Result<Option<u64>, Errno> {
    if timeout == 0 {
        return Ok(None);
    }
    let ts = usercopy::read(timeout as *const libc::timespec)?;
    let ns = time::timespec_ns(&ts).ok_or(Errno(libc::EINVAL))?;
    if op & CMD_MASK == FUTEX_WAIT {
        return Ok(Some(time::monotonic_ns().saturating_add(ns)));
    }
    let clock = if op & FUTEX_CLOCK_REALTIME != 0 { libc::CLOCK_REALTIME } else { libc::CLOCK_MONOTONIC };
    Ok(Some(time::deadline_from_abs(clock, ns)))
}

fn wait(addr: usize, op: i32, val: u32, timeout: usize, bits: u32) -> Result<usize, Errno> {
    // The kernel reads and checks the timeout first.
    let deadline = deadline(op, timeout)?;
    if bits == 0 || !addr.is_multiple_of(4) {
        return Err(Errno(libc::EINVAL));
    }
    // The value check reads the program's word; an unreadable address is EFAULT, as from the kernel.
    let current = usercopy::read(addr as *const u32)?;
    if current != val {
        return Err(Errno(libc::EAGAIN));
    }
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
