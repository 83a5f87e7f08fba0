//! Clocks. `clock_gettime` is libc's (the real one, past asyncshim's hook for threads' CPU clocks) because
//! it is served by the vDSO, without a system call.

/// Nanoseconds on `clock` (CLOCK_MONOTONIC, CLOCK_REALTIME, ...), or None if the clock is invalid.
pub fn now_ns(clock: libc::clockid_t) -> Option<u64> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid out-pointer.
    if unsafe { crate::real::clock_gettime(clock, &mut ts) } != 0 {
        return None;
    }
    Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// Monotonic deadline for an absolute time on `clock`, as the kernel would measure it.
pub fn deadline_from_abs(clock: libc::clockid_t, abs_ns: u64) -> u64 {
    let now_clock = now_ns(clock).unwrap_or(0);
    let now_mono = monotonic_ns();
    now_mono.saturating_add(abs_ns.saturating_sub(now_clock))
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
    if unsafe { crate::real::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut ts) } != 0 {
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

/// The kernel's answer for a CPU-time clock (a thread's or a process's): a system call (the vDSO serves
/// only the wall and monotonic clocks), made raw so that it never meets asyncshim's own `clock_gettime`.
pub fn cpu_clock_ns(clock: libc::clockid_t) -> Result<u64, super::Errno> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid out-pointer.
    unsafe { super::syscall::syscall2(libc::SYS_clock_gettime, clock as usize, &mut ts as *mut _ as usize) }?;
    Ok(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// The CPU time the calling OS thread has used (CLOCK_THREAD_CPUTIME_ID, the kernel's own count).
pub fn this_os_thread_cpu_ns() -> u64 {
    cpu_clock_ns(libc::CLOCK_THREAD_CPUTIME_ID).unwrap_or(0)
}

/// The clockid of OS thread `tid`'s CPU-time clock (the kernel's MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED)).
pub fn thread_cpu_clock_of(tid: i32) -> libc::clockid_t {
    ((!tid) << 3) | 6
}

/// The time-stamp counter: a few ns to read, and steady across CPUs where the CPU says so (see
/// [`tsc_is_invariant`]).
#[inline(always)]
pub fn tsc() -> u64 {
    // SAFETY: rdtsc has no preconditions (user space may run it unless the kernel set CR4.TSD, which
    // Linux does only for seccomp-strict processes, which cannot run the shim anyway).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Whether the TSC ticks at a constant rate in every power state and on every CPU (CPUID leaf
/// 0x80000007, EDX bit 8: "invariant TSC"; Linux's `nonstop_tsc`).
pub fn tsc_is_invariant() -> bool {
    // cpuid is always available on x86-64; the extended leaf is checked before it is read.
    let max = core::arch::x86_64::__cpuid(0x8000_0000).eax;
    max >= 0x8000_0007 && core::arch::x86_64::__cpuid(0x8000_0007).edx & (1 << 8) != 0
}
