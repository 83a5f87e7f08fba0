//! Futex waits that only the kernel can end — on a word shared with another process, whose threads wake
//! it with FUTEX_WAKE in the kernel, or on a word glibc's own code wakes with a raw system call — made by
//! a coroutine without blocking its worker.
//!
//! The kernel makes the wait itself through io_uring (IORING_OP_FUTEX_WAIT, Linux 6.7+): the coroutine
//! hands the request to one ring thread and parks; the ring thread, which owns the ring (its only
//! submitter, so the kernel's work for completions runs there and never interrupts a worker), queues the
//! wait, sleeps in `io_uring_enter` for all of them, and unparks each waiter whose wait completed. To the
//! kernel the queued wait is an ordinary futex waiter, so FUTEX_WAKE counts are exact: a wake that
//! reached the wait is the coroutine's (it returns 0, even if its time ran out meanwhile), a wait
//! cancelled for a timeout or a signal was never woken. No thread per waiter, no polling.
//!
//! Requests reach the ring thread through a queue and a doorbell: a private futex word on which the ring
//! thread itself keeps a futex wait queued in its ring, so one FUTEX_WAKE from a submitter wakes it.
//!
//! Where io_uring cannot make futex waits (an older kernel, `kernel.io_uring_disabled`, a seccomp filter:
//! found out once, at the first wait), a helper thread makes each wait while its coroutine parks (counted
//! in the stats as a process-shared futex offload); such a wait is not interrupted by a signal. A plain
//! thread (not a coroutine) simply makes the system call.

use super::super::lock::Lock;
use super::super::park::{OnSignal, Wait, WaitReason};
use super::super::parking_lot::{self, Parked};
use super::super::sys::syscall::Errno;
use super::super::sys::{futex, time, uring::Ring};
use super::Deadline;
use core::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::ffi::c_void;

/// One coroutine's wait, on its stack, named by the io_uring request's user data.
struct Waiter {
    result: AtomicI32,
    /// Set by the ring thread when the request completed.
    done: AtomicU32,
    /// Set by the ring thread once it no longer touches the record (its unpark is over), so the record's
    /// address — the park key — is not reused while an unpark for it may still run.
    released: AtomicU32,
}

/// What one wait is for: the 32-bit word at `addr` while it holds `val`, woken by a FUTEX_WAKE with a bit
/// of `mask`; `private`: the futex is process-private.
#[derive(Clone, Copy)]
struct Word {
    addr: usize,
    val: u32,
    mask: u32,
    private: bool,
}

/// Work for the ring thread.
enum Request {
    Wait {
        word: Word,
        waiter: usize,
    },
    /// Cancel the wait of this waiter.
    Cancel {
        waiter: usize,
    },
}

/// User data of the doorbell's own wait, and of cancel requests (whose completions say nothing needed).
const DOORBELL_TAG: u64 = 1;
const CANCEL_TAG: u64 = 2;

const RING_UNTRIED: u8 = 0;
const RING_STARTING: u8 = 1;
const RING_READY: u8 = 2;
const RING_NONE: u8 = 3;

static RING_STATE: AtomicU32 = AtomicU32::new(RING_UNTRIED as u32);
static QUEUE: Lock<Vec<Request>> = Lock::new(Vec::new());
/// 1 when requests may be queued that the ring thread has not seen; a FUTEX_WAKE on it wakes the thread.
static DOORBELL: AtomicU32 = AtomicU32::new(0);
/// The ring's fd, for a forked child to close.
static RING_FD: AtomicI32 = AtomicI32::new(-1);

/// Whether the ring thread runs, starting it at the first call (the caller waits for its answer).
fn ring_ready() -> bool {
    match RING_STATE.load(Ordering::Acquire) as u8 {
        RING_READY => return true,
        RING_NONE => return false,
        _ => {}
    }
    if RING_STATE
        .compare_exchange(RING_UNTRIED as u32, RING_STARTING as u32, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        // SAFETY: the ring thread takes no argument and runs for the process.
        if !unsafe { super::super::os_thread::start(ring_main, core::ptr::null_mut()) } {
            RING_STATE.store(RING_NONE as u32, Ordering::Release);
            futex::wake(&RING_STATE, u32::MAX);
        }
    }
    // The ring thread says whether it could make a ring (within microseconds).
    loop {
        let st = RING_STATE.load(Ordering::Acquire);
        if st != RING_STARTING as u32 && st != RING_UNTRIED as u32 {
            return st == RING_READY as u32;
        }
        futex::wait(&RING_STATE, st, Some(time::monotonic_ns() + 1_000_000));
    }
}

/// Whether coroutines' kernel futex waits go through io_uring (the ring thread is started at the first call).
pub fn uses_io_uring() -> bool {
    ring_ready()
}

fn publish_state(st: u8) {
    RING_STATE.store(st as u32, Ordering::Release);
    futex::wake(&RING_STATE, u32::MAX);
}

/// The ring thread: makes the ring, then submits what is queued and delivers completions, for ever.
extern "C" fn ring_main(_: *mut c_void) -> *mut c_void {
    // SAFETY: GS 0 marks a thread that is not a worker; hooks on this thread see a plain thread.
    unsafe { super::super::sys::fsgs::set_gs_base(0) };
    let mut ring = match Ring::for_futex_waits() {
        Ok(r) => r,
        Err(_) => {
            publish_state(RING_NONE);
            return core::ptr::null_mut();
        }
    };
    // Out of the program's way: its own fds get the numbers they get natively, and it cannot close ours.
    ring.relocate_fd(super::super::io::fd::move_high);
    RING_FD.store(ring.fd(), Ordering::Relaxed);
    let doorbell = &DOORBELL as *const AtomicU32 as usize;
    if ring.submit_futex_wait(doorbell, 0, u32::MAX, true, DOORBELL_TAG).is_err() {
        publish_state(RING_NONE);
        return core::ptr::null_mut();
    }
    publish_state(RING_READY);
    let mut pending: Vec<Request> = Vec::new();
    loop {
        let mut rang = false;
        ring.reap(|data, res| match data {
            DOORBELL_TAG => rang = true,
            CANCEL_TAG => {}
            _ => {
                // SAFETY: user data of a futex wait is its Waiter, which stays until `released` is set.
                let w = unsafe { &*(data as *const Waiter) };
                w.result.store(res, Ordering::Relaxed);
                w.done.store(1, Ordering::Release);
                parking_lot::unpark_all(data as usize, 0);
                w.released.store(1, Ordering::Release);
            }
        });
        if !rang {
            continue;
        }
        // Reset the doorbell before taking the queue: a request queued after the take rings it again.
        DOORBELL.store(0, Ordering::SeqCst);
        core::mem::swap(&mut pending, &mut QUEUE.lock());
        for req in pending.drain(..) {
            let r = match req {
                Request::Wait { word: Word { addr, val, mask, private }, waiter } => {
                    ring.submit_futex_wait(addr, val, mask, private, waiter as u64)
                }
                Request::Cancel { waiter } => ring.submit_cancel(waiter as u64, CANCEL_TAG),
            };
            if let (Err(e), Request::Wait { waiter, .. }) = (r, req) {
                // Not queued (the kernel refused the entry): the wait ends with that error.
                // SAFETY: as above.
                let w = unsafe { &*(waiter as *const Waiter) };
                w.result.store(-e.0, Ordering::Relaxed);
                w.done.store(1, Ordering::Release);
                parking_lot::unpark_all(waiter, 0);
                w.released.store(1, Ordering::Release);
            }
        }
        // The doorbell's own wait again; if it rang meanwhile this completes at once (EAGAIN).
        if ring.submit_futex_wait(doorbell, 0, u32::MAX, true, DOORBELL_TAG).is_err() {
            // Cannot happen with entries submitted one at a time; keep serving what is queued.
            DOORBELL.store(1, Ordering::SeqCst);
        }
    }
}

/// Hands `req` to the ring thread.
fn send(req: Request) {
    QUEUE.lock().push(req);
    if DOORBELL.swap(1, Ordering::SeqCst) == 0 {
        futex::wake(&DOORBELL, 1);
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
    interrupt: OnSignal,
) -> Result<(), Errno> {
    loop {
        match wait_once(Word { addr, val, mask, private }, deadline, interrupt) {
            // Interrupted by a handler with SA_RESTART where the kernel restarts the wait: wait again.
            Err(Errno(libc::EINTR))
                if interrupt == OnSignal::FailUnlessRestart && super::interrupted_wait_restarts() => {}
            r => return r,
        }
    }
}

fn wait_once(word: Word, deadline: Deadline, interrupt: OnSignal) -> Result<(), Errno> {
    let addr = word.addr;
    if super::super::worker::current_task().is_none() {
        return wait_here(word, deadline);
    }
    if !ring_ready() {
        return wait_on_helper(word, deadline, interrupt);
    }
    super::super::stats::count(&super::super::stats::get().kernel_futex_waits);
    let w = Waiter { result: AtomicI32::new(0), done: AtomicU32::new(0), released: AtomicU32::new(0) };
    let key = &w as *const Waiter as usize;
    send(Request::Wait { word, waiter: key });
    let how = Wait::new(WaitReason::Futex, addr, interrupt).until(deadline);
    let ended = parking_lot::park_then(
        key,
        0,
        || w.done.load(Ordering::Acquire) == 0,
        || {},
        how,
        |p| {
            if matches!(p, Parked::TimedOut | Parked::Interrupted) && w.done.load(Ordering::Acquire) == 0 {
                // Take the wait out of the kernel's queue before any handler runs (one may leave this frame
                // by `siglongjmp`: the queued wait would then take a wake-up meant for another waiter and
                // write into a dead frame). It completes either way (cancelled, or woken first), within the
                // ring thread's round trip, waited for in place.
                send(Request::Cancel { waiter: key });
                while w.done.load(Ordering::Acquire) == 0 {
                    let _ = futex::wait(&w.done, 0, Some(time::monotonic_ns() + 50_000));
                }
            }
            if matches!(p, Parked::TimedOut | Parked::Interrupted) {
                while w.done.load(Ordering::Acquire) != 0 && w.released.load(Ordering::Acquire) == 0 {
                    // The reaper is between its two stores, a few instructions apart.
                    std::thread::yield_now();
                }
            }
        },
    );
    while w.done.load(Ordering::Acquire) == 0 {
        // The ring thread writes into `w` until it is done: this wait cannot be left early.
        let how = Wait::new(WaitReason::Futex, addr, OnSignal::Deferred);
        parking_lot::park(key, 0, || w.done.load(Ordering::Acquire) == 0, || {}, how);
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

/// FUTEX_WAIT_BITSET's operation and timeout (absolute monotonic) for `word` and `deadline`.
fn wait_op(word: &Word, deadline: Deadline) -> (i32, Option<libc::timespec>) {
    (libc::FUTEX_WAIT_BITSET | if word.private { libc::FUTEX_PRIVATE_FLAG } else { 0 }, deadline.map(time::ns_timespec))
}

/// The wait made by the calling OS thread itself (FUTEX_WAIT_BITSET, absolute monotonic deadline).
fn wait_here(word: Word, deadline: Deadline) -> Result<(), Errno> {
    let (op, ts) = wait_op(&word, deadline);
    let ts_ptr = ts.as_ref().map_or(0, |t| t as *const libc::timespec as usize);
    // SAFETY: FUTEX_WAIT_BITSET reads the word (the kernel reports a bad address) and the local timeout.
    unsafe { futex::futex_raw(word.addr, op, word.val, ts_ptr, 0, word.mask) }.map(|_| ())
}

/// Without the ring: a helper thread waits in the kernel for the coroutine, which a handled signal or a
/// cancellation request reaches as the ring's wait (`offload::syscall`: the helper's wait is aborted,
/// the handler runs on the coroutine's own stack, and the wait ends with EINTR or goes on as `interrupt`
/// says). A wait `interrupt` does not let a signal end stays uninterruptible.
fn wait_on_helper(word: Word, deadline: Deadline, interrupt: OnSignal) -> Result<(), Errno> {
    let kind = super::super::stats::Offload::SharedFutex;
    if interrupt == OnSignal::Deferred {
        return super::super::offload::run(kind, move || wait_here(word, deadline));
    }
    let (op, ts) = wait_op(&word, deadline);
    let ts_ptr = ts.as_ref().map_or(0, |t| t as *const libc::timespec as usize);
    let args = [word.addr, op as usize, word.val as usize, ts_ptr, 0, word.mask as usize];
    // SAFETY: FUTEX_WAIT_BITSET reads the word (the kernel reports a bad address) and the timeout in this
    // frame, which the coroutine leaves only once the helper is back.
    unsafe { super::super::offload::syscall(kind, interrupt, libc::SYS_futex, args) }.map(|_| ())
}

/// Wakes up to `n` waiters of the word at `addr` in the kernel (coroutines waiting through [`wait`]
/// among them). Returns how many were woken.
pub fn wake(addr: usize, n: u32, private: bool) -> usize {
    let op = libc::FUTEX_WAKE | if private { libc::FUTEX_PRIVATE_FLAG } else { 0 };
    // SAFETY: FUTEX_WAKE uses the address only as a key.
    unsafe { futex::futex_raw(addr, op, n, 0, 0, 0) }.unwrap_or(0)
}

/// In a forked child: the parent's ring is not the child's (the child runs no coroutines, and has no ring
/// thread).
pub fn forget_in_child() {
    let fd = RING_FD.swap(-1, Ordering::Relaxed);
    if fd >= 0 {
        let _ = super::super::sys::fd::close(fd);
    }
    RING_STATE.store(RING_NONE as u32, Ordering::Relaxed);
}
