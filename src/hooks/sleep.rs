//! Sleeps and yields: a coroutine parks on the runtime's timers instead of blocking its worker.

use super::set_errno;
use crate::real;
use crate::runtime::sys::{time, usercopy};
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

fn sleep_ns(ns: u64) {
    runtime::sleep_until(time::monotonic_ns().saturating_add(ns));
}

/// # Safety
/// C contract of sleep.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sleep(secs: libc::c_uint) -> libc::c_uint {
    if worker::current_task().is_none() {
        // SAFETY: forwarding.
        return unsafe { real::sleep(secs) };
    }
    sleep_ns(secs as u64 * 1_000_000_000);
    0
}

/// # Safety
/// C contract of usleep.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usleep(usecs: libc::useconds_t) -> c_int {
    if worker::current_task().is_none() {
        // SAFETY: forwarding.
        return unsafe { real::usleep(usecs) };
    }
    sleep_ns(usecs as u64 * 1000);
    0
}

/// Reads and checks a relative or absolute sleep request: EFAULT for an unreadable pointer, EINVAL for
/// a negative time or nanoseconds outside [0, 1e9), as the kernel answers.
fn read_request(req: *const libc::timespec) -> Result<u64, c_int> {
    let ts = usercopy::read(req).map_err(|e| e as c_int)?;
    time::timespec_ns(&ts).ok_or(libc::EINVAL)
}

/// # Safety
/// C contract of nanosleep.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nanosleep(req: *const libc::timespec, rem: *mut libc::timespec) -> c_int {
    if worker::current_task().is_none() {
        // SAFETY: forwarding.
        return unsafe { real::nanosleep(req, rem) };
    }
    match read_request(req) {
        Ok(ns) => {
            sleep_ns(ns);
            0
        }
        Err(e) => {
            set_errno(e);
            -1
        }
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
    if worker::current_task().is_none() || !timer_clock(clock) {
        // SAFETY: forwarding.
        return unsafe { real::clock_nanosleep(clock, flags, req, rem) };
    }
    let ns = match read_request(req) {
        Ok(ns) => ns,
        Err(e) => return e,
    };
    let deadline = if flags & libc::TIMER_ABSTIME != 0 {
        thread::deadline_from_abs(clock, ns)
    } else {
        time::monotonic_ns().saturating_add(ns)
    };
    runtime::sleep_until(deadline);
    0
}
