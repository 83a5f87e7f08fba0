//! Clocks. `clock_gettime` is called through libc because it is served by the vDSO (no system call) and
//! asyncshim never hooks it.

/// Nanoseconds on `clock` (CLOCK_MONOTONIC, CLOCK_REALTIME, ...), or None if the clock is invalid.
pub fn now_ns(clock: libc::clockid_t) -> Option<u64> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid out-pointer.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return None;
    }
    Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// Monotonic nanoseconds since boot.
#[inline]
pub fn monotonic_ns() -> u64 {
    now_ns(libc::CLOCK_MONOTONIC).unwrap_or(0)
}

/// CLOCK_MONOTONIC_COARSE: a few ns to read instead of tens, but only as fine as the kernel tick.
#[inline]
pub fn monotonic_coarse_ns() -> u64 {
    now_ns(libc::CLOCK_MONOTONIC_COARSE).unwrap_or(0)
}

/// How far CLOCK_MONOTONIC_COARSE may lag CLOCK_MONOTONIC (its resolution: one kernel tick).
pub fn coarse_resolution_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid out-pointer.
    if unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut ts) } != 0 {
        return 10_000_000;
    }
    timespec_ns(&ts).unwrap_or(10_000_000)
}

/// Converts a timespec to nanoseconds, or None if it is negative or not normalised (tv_nsec out of range).
pub fn timespec_ns(ts: &libc::timespec) -> Option<u64> {
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return None;
    }
    Some((ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64))
}

/// Converts nanoseconds to a timespec.
pub fn ns_timespec(ns: u64) -> libc::timespec {
    libc::timespec { tv_sec: (ns / 1_000_000_000) as i64, tv_nsec: (ns % 1_000_000_000) as i64 }
}
