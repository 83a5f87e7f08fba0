//! Per-thread CPU time for coroutines, as the program asks for it: `CLOCK_THREAD_CPUTIME_ID`, a
//! `pthread_getcpuclockid` clock, `getrusage(RUSAGE_THREAD)`, a sleep on another thread's CPU-time
//! clock, and timers on it ([`timers`]). The kernel counts CPU time per OS thread, so a worker's clock holds the sum of every coroutine it
//! ran; each coroutine's share is charged at its switches into the accounts of [`account`] (a leaf the
//! scheduler core holds), and read here.

pub mod account;
pub mod timers;

use super::sys::time;
use super::task::TaskRef;
pub use account::init;
use core::sync::atomic::Ordering;

/// A new thread's account starts at zero.
pub fn thread_started(task: &TaskRef) {
    task.cpu.start_at(0);
}

/// The main thread's account starts with what the initial OS thread used before the runtime took it
/// over (loading, constructors), as its clock natively counts from the process's start.
pub fn main_thread_started(task: &TaskRef) {
    task.cpu.start_at(time::this_os_thread_cpu_ns());
}

/// The CPU time thread `task` has used, asked from anywhere (ns).
pub fn of(task: &TaskRef) -> u64 {
    let own = super::worker::current_worker().and_then(|w| w.task_in_context()) == Some(*task);
    let workers = super::scheduler::get().workers;
    let worker =
        || workers.get(task.last_worker.load(Ordering::Relaxed)).map(|w| (w.os_tid.load(Ordering::Relaxed), &w.cpu));
    task.cpu.used_ns(own, worker)
}

/// Sleeps the calling coroutine until `task` (another thread) has used `target` ns of CPU time, as a
/// clock_nanosleep on that thread's CPU-time clock: a thread's CPU time grows no faster than wall time,
/// so sleeping for what is missing never sleeps past the moment (the kernel looks at CPU timers once a
/// tick; the wait is at least 100 µs). Ends early, like the kernel's, when the thread ends. Err with
/// the CPU time still missing when a signal handler ran.
pub fn sleep_until_used(task: &TaskRef, target: u64) -> Result<(), u64> {
    loop {
        if task.join.lock().life != super::task::Life::Running {
            return Ok(());
        }
        let now = of(task);
        if now >= target {
            return Ok(());
        }
        let wait = (target - now).max(100_000);
        if super::park::sleep_until_interruptible(time::monotonic_ns() + wait) == super::task::Wake::Interrupted {
            return Err(target.saturating_sub(of(task)).max(1));
        }
    }
}

/// `utime` and `stime` for a thread that used `total` ns: split as the calling worker's own kernel
/// accounting splits its time now (the kernel samples the two at ticks and scales them to the total).
pub fn split_user_system(total: u64, worker_user_us: u64, worker_system_us: u64) -> (u64, u64) {
    let sum = worker_user_us + worker_system_us;
    if sum == 0 {
        return (total, 0);
    }
    let user = (total as u128 * worker_user_us as u128 / sum as u128) as u64;
    (user, total - user)
}

/// The kernel's CPU-clock kinds (CPUCLOCK_WHICH): user + system (0, CPUCLOCK_PROF), user (CPUCLOCK_VIRT),
/// scheduler runtime (2, CPUCLOCK_SCHED).
pub const CPUCLOCK_VIRT: i32 = 1;

/// Thread `task`'s CPU-time clock of kind `which` now (ns): its CPU time; the user-only kind takes the
/// user share, split as the calling OS thread's own time is.
pub fn clock_ns(task: &TaskRef, which: i32) -> u64 {
    let total = of(task);
    if which & 3 != CPUCLOCK_VIRT {
        return total;
    }
    // SAFETY: a zeroed rusage is valid.
    let mut ru: libc::rusage = unsafe { core::mem::zeroed() };
    // SAFETY: ru is a valid out-pointer.
    if unsafe { crate::real::getrusage(libc::RUSAGE_THREAD, &mut ru) } != 0 {
        return total;
    }
    let us = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64;
    split_user_system(total, us(ru.ru_utime), us(ru.ru_stime)).0
}
