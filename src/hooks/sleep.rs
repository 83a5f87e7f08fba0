//! Sleeps and yields: a coroutine parks on the runtime's timers instead of blocking its worker.

use super::set_errno;
use crate::real;
use crate::runtime::cancel;
use crate::runtime::sys::{time, usercopy};
use crate::runtime::task::Wake;
use crate::runtime::{self, thread, worker};
use std::ffi::c_int;

/// # Safety
/// C contract of sched_yield.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sched_yield() -> c_int {
    if worker::current_task().is_none() {
        // SAFETY: forwarding.
        return unsafe { real::sched_yield() };
    }
    runtime::yield_now();
    0
}

/// Sleeps `ns`; on a handled signal returns Err(remaining ns), as the kernel reports it.
fn sleep_ns(ns: u64) -> Result<(), u64> {
    let deadline = time::monotonic_ns().saturating_add(ns);
    match runtime::sleep_until_interruptible(deadline) {
        Wake::Interrupted => Err(deadline.saturating_sub(time::monotonic_ns())),
        _ => Ok(()),
    }
}

/// # Safety
/// C contract of sleep.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sleep(secs: libc::c_uint) -> libc::c_uint {
    cancel::point(|| {
        if worker::current_task().is_none() {
            // SAFETY: forwarding.
            return unsafe { real::sleep(secs) };
        }
        match sleep_ns(secs as u64 * 1_000_000_000) {
            Ok(()) => 0,
            // sleep() reports whole seconds left, rounded up as glibc does from nanosleep's remainder.
            Err(left) => left.div_ceil(1_000_000_000) as libc::c_uint,
        }
    })
}

/// # Safety
/// C contract of usleep.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usleep(usecs: libc::useconds_t) -> c_int {
    cancel::point(|| {
        if worker::current_task().is_none() {
            // SAFETY: forwarding.
            return unsafe { real::usleep(usecs) };
        }
        match sleep_ns(usecs as u64 * 1000) {
            Ok(()) => 0,
            Err(_) => {
                set_errno(libc::EINTR);
                -1
            }
        }
    })
}

/// Reads and checks a relative or absolute sleep request: EFAULT for an unreadable pointer, EINVAL for
/// a negative time or nanoseconds outside [0, 1e9), as the kernel answers.
fn read_request(req: *const libc::timespec) -> Result<u64, c_int> {
    let ts = usercopy::read(req).map_err(|e| e.0)?;
    time::timespec_ns(&ts).ok_or(libc::EINVAL)
}

/// # Safety
/// C contract of nanosleep.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nanosleep(req: *const libc::timespec, rem: *mut libc::timespec) -> c_int {
    cancel::point(|| {
        if worker::current_task().is_none() {
            // SAFETY: forwarding.
            return unsafe { real::nanosleep(req, rem) };
        }
        let result = read_request(req).and_then(|ns| sleep_ns(ns).map_err(|left| interrupted(left, rem)));
        match result {
            Ok(()) => 0,
            Err(e) => {
                set_errno(e);
                -1
            }
        }
    })
}

/// Reports the time left of an interrupted relative sleep in `rem` (if given) and yields EINTR, or EFAULT
/// if `rem` cannot be written, as the kernel does.
fn interrupted(left: u64, rem: *mut libc::timespec) -> c_int {
    if rem.is_null() {
        return libc::EINTR;
    }
    match usercopy::write(rem, time::ns_timespec(left)) {
        Ok(()) => libc::EINTR,
        Err(e) => e.0,
    }
}

/// Clocks a coroutine can sleep on through the runtime's timers; others (CPU-time clocks, bad ids) go to
/// the kernel, which either answers at once with an error or really sleeps.
fn timer_clock(clock: libc::clockid_t) -> bool {
    matches!(clock, libc::CLOCK_REALTIME | libc::CLOCK_MONOTONIC | libc::CLOCK_BOOTTIME | libc::CLOCK_TAI)
}

/// # Safety
/// C contract of clock_nanosleep (returns the error number; errno is untouched).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clock_nanosleep(
    clock: libc::clockid_t,
    flags: c_int,
    req: *const libc::timespec,
    rem: *mut libc::timespec,
) -> c_int {
    cancel::point(|| {
        if worker::current_task().is_none() || !timer_clock(clock) {
            // SAFETY: forwarding.
            return unsafe { real::clock_nanosleep(clock, flags, req, rem) };
        }
        let ns = match read_request(req) {
            Ok(ns) => ns,
            Err(e) => return e,
        };
        if flags & libc::TIMER_ABSTIME != 0 {
            // An absolute sleep reports no remainder: the caller simply sleeps again until the same time.
            return match runtime::sleep_until_interruptible(thread::deadline_from_abs(clock, ns)) {
                Wake::Interrupted => libc::EINTR,
                _ => 0,
            };
        }
        match sleep_ns(ns) {
            Ok(()) => 0,
            Err(left) => interrupted(left, rem),
        }
    })
}
