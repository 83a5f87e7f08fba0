//! pthread synchronisation that parks coroutines instead of blocking their worker, and plain threads on
//! futexes of their own, both through the [`super::parking_lot`]. The state lives in the program's own
//! objects, in glibc's layout where glibc reads it too (mutex lock word, owner, count, users; semaphore
//! value; barrier count), so objects initialised by glibc — statically or by `*_init` — work as they are,
//! and a forked child, which runs glibc's own functions, finds them consistent.
//!
//! Process-shared mutexes, semaphores and barriers follow glibc's protocol with their waits in the
//! kernel's futex queues ([`kernel_wait`]), since other processes use them with glibc's code; so do a
//! coroutine's waits on process-shared condition variables ([`shared_cond`]) and its blocking locks of
//! process-shared rwlocks ([`shared_rwlock`]), whose other calls (and plain threads) stay glibc's. Kinds
//! the runtime does not implement otherwise (robust mutexes, which [`proxy`] holds for coroutines) are
//! left to glibc: [`Unsupported`] tells the hook to call the real function. Priority-protect mutexes are glibc's for plain threads and [`pp`]'s for coroutines (glibc's
//! own code would ask the kernel about the coroutine's tid).

pub mod barrier;
pub mod cond;
pub mod futex;
pub mod glibc_cond;
mod glibc_words;
pub mod kernel_wait;
pub mod mutex;
mod pi;
pub mod pp;
pub mod proxy;
pub mod rwlock;
pub mod sem;
pub mod shared_cond;
pub mod shared_rwlock;
pub mod spin;

use super::sys::{Errno, time};

/// The object is of a kind glibc must handle (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsupported;

/// The calling thread's id as glibc records owners (coroutines: their stable fake tid).
#[inline(always)]
pub fn my_tid() -> i32 {
    super::identity::current_tid()
}

/// A wait's end: forever, or an absolute CLOCK_MONOTONIC deadline in ns.
pub type Deadline = Option<u64>;

/// Checks an absolute timeout on `clock` as glibc's timed waits do and converts it to a monotonic
/// deadline: EINVAL for a clock other than REALTIME/MONOTONIC or nanoseconds outside [0, 1e9), EFAULT for
/// an unreadable pointer; a negative time has already passed.
pub fn abs_deadline(clock: libc::clockid_t, abstime: *const libc::timespec) -> Result<u64, Errno> {
    if clock != libc::CLOCK_REALTIME && clock != libc::CLOCK_MONOTONIC {
        return Err(Errno(libc::EINVAL));
    }
    let ts = super::sys::usercopy::read(abstime)?;
    if !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(Errno(libc::EINVAL));
    }
    if ts.tv_sec < 0 {
        return Ok(0);
    }
    let abs = time::timespec_ns(&ts).unwrap_or(u64::MAX);
    Ok(time::deadline_from_abs(clock, abs))
}

/// The clock glibc's `pthread_mutex_clocklock` of mutex `m` really waits on for `clock`: before 2.34 a
/// PI or priority-protect mutex's wait takes a CLOCK_MONOTONIC time for a CLOCK_REALTIME one (FUTEX_LOCK_PI
/// knew no other clock), so the lock of a held one times out at once; measured on 2.31, not on 2.36 (the
/// versions between are taken to be 2.31's).
///
/// # Safety
/// `m` must point at a live, initialised `pthread_mutex_t`.
pub unsafe fn clocklock_clock(m: *const libc::pthread_mutex_t, clock: libc::clockid_t) -> libc::clockid_t {
    if clock != libc::CLOCK_MONOTONIC || super::identity::glibc_at_least(2, 34) {
        return clock;
    }
    // SAFETY: the aligned `__kind` int at glibc's offset inside the live 40-byte object.
    let kind = unsafe {
        (*((m as *const u8).add(16) as *const core::sync::atomic::AtomicI32))
            .load(core::sync::atomic::Ordering::Relaxed)
    };
    if kind & (mutex::KIND_PI | mutex::KIND_PP) != 0 { libc::CLOCK_REALTIME } else { clock }
}

/// Retries a non-blocking attempt until it stops answering `busy` or `deadline` passes, sleeping 20 µs
/// to 2 ms between attempts: how a coroutine waits for an object only glibc (or another process) can
/// release, without blocking its worker.
pub fn retry_cooperatively(busy: i32, deadline: Deadline, mut attempt: impl FnMut() -> i32) -> i32 {
    let mut pause = 20_000u64;
    loop {
        let r = attempt();
        if r != busy {
            return r;
        }
        let now = time::monotonic_ns();
        if deadline.is_some_and(|d| d <= now) {
            return libc::ETIMEDOUT;
        }
        super::stats::count(&super::stats::get().poll_retries);
        if super::park::sleep_until(deadline.map_or(now + pause, |d| d.min(now + pause)))
            == super::task::Wake::Interrupted
            && super::worker::current_task().is_some_and(|me| me.cancel.point_cancelled())
        {
            // A cancellation request ended this sleep (`cancel::woken`, read from the task's leaf state so
            // that sync needs nothing of the cancellation policy): the hook acts on it.
            return libc::EINTR;
        }
        pause = (pause * 2).min(2_000_000);
    }
}

/// The interruption rule of a futex wait, and of the semaphore waits glibc makes with one: a handled
/// signal ends a timed one with EINTR whatever SA_RESTART says (the kernel's restart block), an untimed
/// one only when the handler lacks SA_RESTART (otherwise the kernel restarts it).
pub fn futex_interrupt(deadline: Deadline) -> super::park::OnSignal {
    if deadline.is_some() { super::park::OnSignal::Fail } else { super::park::OnSignal::FailUnlessRestart }
}

/// After a wait made with `OnSignal::FailUnlessRestart` ended Interrupted: true when the handler had
/// SA_RESTART, so the wait goes on as the kernel would restart it.
pub fn interrupted_wait_restarts() -> bool {
    super::worker::current_task().is_some_and(|t| t.interrupt_restarts.load(core::sync::atomic::Ordering::Relaxed))
}
