//! Futex waits that only the kernel can end — on a word shared with another process, whose threads wake
//! it with FUTEX_WAKE in the kernel, or on a word glibc's own code wakes with a raw system call — made by
//! a coroutine without blocking its worker.
//!
//! The kernel makes the wait itself through io_uring (IORING_OP_FUTEX_WAIT, Linux 6.7+): the coroutine
//! queues it and parks, and one reaper thread, asleep in `io_uring_enter` for all of them, unparks each
//! waiter whose wait completed. To the kernel the queued wait is an ordinary futex waiter, so FUTEX_WAKE
//! counts are exact: a wake that reached the wait is the coroutine's (it returns 0, even if its time ran
//! out meanwhile), a wait cancelled for a timeout or a signal was never woken. No thread per waiter, no
//! polling.
//!
//! Where io_uring cannot make futex waits (an older kernel, `kernel.io_uring_disabled`, a seccomp filter:
//! found out once, at the first wait), a helper thread makes each wait while its coroutine parks (counted
//! in the stats as a process-shared futex offload); such a wait is not interrupted by a signal. A plain
//! thread (not a coroutine) simply makes the system call.

use super::super::lock::Lock;
use super::super::parking_lot::{self, Interrupt, Parked};
use super::super::sys::syscall::Errno;
use super::super::sys::{futex, time, uring::Ring};
use super::Deadline;
use core::sync::atomic::{AtomicI32, AtomicPtr, AtomicU8, AtomicU32, Ordering};
use std::ffi::c_void;

/// One coroutine's wait, on its stack, named by the io_uring request's user data.
struct Waiter {
    result: AtomicI32,
    /// Set by the reaper when the request completed.
    done: AtomicU32,
    /// Set by the reaper once it no longer touches the record (its unpark is over), so the record's
    /// address — the park key — is not reused while an unpark for it may still run.
    released: AtomicU32,
}

const RING_UNTRIED: u8 = 0;
const RING_READY: u8 = 1;
const RING_NONE: u8 = 2;

static RING_STATE: AtomicU8 = AtomicU8::new(RING_UNTRIED);
/// The ring, set once (leaked: it lives for the process).
static RING: AtomicPtr<Ring> = AtomicPtr::new(core::ptr::null_mut());
/// Serialises submissions, and the making of the ring.
static SUBMIT: Lock<()> = Lock::new(());

/// The ring, made (with its reaper thread) at the first wait; None when io_uring cannot make futex waits.
fn ring() -> Option<&'static Ring> {
    match RING_STATE.load(Ordering::Acquire) {
        RING_READY => {
            // SAFETY: set before RING_READY was published, and never freed.
            return Some(unsafe { &*RING.load(Ordering::Acquire) });
        }
        RING_NONE => return None,
        _ => {}
    }
    let _serial = SUBMIT.lock();
    match RING_STATE.load(Ordering::Acquire) {
        // SAFETY: as above.
        RING_READY => return Some(unsafe { &*RING.load(Ordering::Acquire) }),
        RING_NONE => return None,
        _ => {}
    }
    let made = match Ring::for_futex_waits() {
        Ok(r) => {
            let r: &'static Ring = Box::leak(Box::new(r));
            super::super::fd::mark_runtime_own(r.fd());
            // SAFETY: the reaper takes the ring, which lives for the process.
            if unsafe { super::super::thread::start_os_thread(reaper_main, r as *const Ring as *mut c_void) } {
                Some(r)
            } else {
                None
            }
        }
        Err(_) => None,
    };
    if let Some(r) = made {
        RING.store(r as *const Ring as *mut Ring, Ordering::Release);
    }
    RING_STATE.store(if made.is_some() { RING_READY } else { RING_NONE }, Ordering::Release);
    made
}

/// Whether coroutines' kernel futex waits go through io_uring (made at the first call).
pub fn uses_io_uring() -> bool {
    ring().is_some()
}

/// The reaper: sleeps in the kernel until waits complete, then hands each its result and unparks it.
extern "C" fn reaper_main(arg: *mut c_void) -> *mut c_void {
    // SAFETY: GS 0 marks a thread that is not a worker; hooks on this thread see a plain thread.
    unsafe { super::super::sys::fsgs::set_gs_base(0) };
    // SAFETY: the leaked ring of `ring()`.
    let ring: &'static Ring = unsafe { &*(arg as *const Ring) };
    loop {
        ring.reap(|data, res| {
            if data == 0 {
                // A cancel request's own completion: its target completes too, which is what matters.
                return;
            }
            // SAFETY: user data of a futex wait is its Waiter, which stays until `released` is set.
            let w = unsafe { &*(data as *const Waiter) };
            w.result.store(res, Ordering::Relaxed);
            w.done.store(1, Ordering::Release);
            parking_lot::unpark_all(data as usize, 0);
            w.released.store(1, Ordering::Release);
        });
    }
}

/// Waits while the 32-bit word at `addr` holds `val` until a FUTEX_WAKE (with a bit of `mask`) reaches
/// this waiter, `deadline` passes (absolute CLOCK_MONOTONIC ns), or — as `interrupt` says — a handled
/// signal arrives. `private`: the futex is process-private. Returns what FUTEX_WAIT_BITSET would: Ok
/// when woken (spuriously, sometimes, as the kernel's may be), EAGAIN when the word did not hold `val`,
/// ETIMEDOUT, EINTR, EFAULT.
pub fn wait(
    addr: usize,
    val: u32,
    mask: u32,
    private: bool,
    deadline: Deadline,
    interrupt: Interrupt,
) -> Result<(), Errno> {
    if super::super::worker::current_task().is_none() {
        return wait_here(addr, val, mask, private, deadline);
    }
    let Some(ring) = ring() else {
        return super::super::offload::run(super::super::stats::Offload::SharedFutex, move || {
            wait_here(addr, val, mask, private, deadline)
        });
    };
    super::super::stats::count(&super::super::stats::get().kernel_futex_waits);
    let w = Waiter { result: AtomicI32::new(0), done: AtomicU32::new(0), released: AtomicU32::new(0) };
    let key = &w as *const Waiter as usize;
    {
        let _serial = SUBMIT.lock();
        ring.submit_futex_wait(addr, val, mask, private, key as u64)?;
    }
    let mut ended = parking_lot::park(key, 0, || w.done.load(Ordering::Acquire) == 0, || {}, deadline, interrupt);
    if matches!(ended, Parked::TimedOut | Parked::Interrupted) && w.done.load(Ordering::Acquire) == 0 {
        // Take the wait out of the kernel's queue; it completes either way (cancelled, or woken first).
        let _serial = SUBMIT.lock();
        if ring.submit_cancel(key as u64, 0).is_err() {
            // Without a cancel the wait ends only when woken: then it is no longer timed.
            ended = Parked::Unparked(0);
        }
    }
    while w.done.load(Ordering::Acquire) == 0 {
        parking_lot::park(key, 0, || w.done.load(Ordering::Acquire) == 0, || {}, None, Interrupt::No);
    }
    while w.released.load(Ordering::Acquire) == 0 {
        // The reaper is between its two stores, a few instructions apart.
        std::thread::yield_now();
    }
    match w.result.load(Ordering::Relaxed) {
        0 => Ok(()),
        e if e == -libc::ECANCELED => match ended {
            Parked::Interrupted => Err(Errno(libc::EINTR)),
            _ => Err(Errno(libc::ETIMEDOUT)),
        },
        e if e < 0 => Err(Errno(-e)),
        _ => Ok(()),
    }
}

/// The wait made by the calling OS thread itself (FUTEX_WAIT_BITSET, absolute monotonic deadline).
fn wait_here(addr: usize, val: u32, mask: u32, private: bool, deadline: Deadline) -> Result<(), Errno> {
    let ts = deadline.map(time::ns_timespec);
    let ts_ptr = ts.as_ref().map_or(0, |t| t as *const libc::timespec as usize);
    let op = libc::FUTEX_WAIT_BITSET | if private { libc::FUTEX_PRIVATE_FLAG } else { 0 };
    // SAFETY: FUTEX_WAIT_BITSET reads the word (the kernel reports a bad address) and the local timeout.
    unsafe { futex::futex_raw(addr, op, val, ts_ptr, 0, mask) }.map(|_| ())
}

/// Wakes up to `n` waiters of the word at `addr` in the kernel (coroutines waiting through [`wait`]
/// among them). Returns how many were woken.
pub fn wake(addr: usize, n: u32, private: bool) -> usize {
    let op = libc::FUTEX_WAKE | if private { libc::FUTEX_PRIVATE_FLAG } else { 0 };
    // SAFETY: FUTEX_WAKE uses the address only as a key.
    unsafe { futex::futex_raw(addr, op, n, 0, 0, 0) }.unwrap_or(0)
}

/// In a forked child: the parent's ring is not the child's (the child runs no coroutines).
pub fn forget_in_child() {
    if RING_STATE.load(Ordering::Relaxed) == RING_READY {
        // SAFETY: as in `ring`.
        let r = unsafe { &*RING.load(Ordering::Relaxed) };
        let _ = super::super::sys::fd::close(r.fd());
    }
    RING_STATE.store(RING_NONE, Ordering::Relaxed);
}
