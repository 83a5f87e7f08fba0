//! What the kernel shows of one of the process's OS threads, read from `/proc/self/task/TID` and its CPU
//! clock: the system call it is in, whether it sleeps, the CPU time it has used. The monitor judges stalls
//! by these; the thread listing shows them. A leaf.

use crate::runtime::sys::time;

/// What /proc/self/task/TID/syscall says of a thread that is not running: the system call it is in (-1:
/// none) and its stack and instruction pointers. None while it runs (or if the file cannot be read).
pub fn in_kernel(tid: i32) -> Option<(i64, usize, usize)> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).ok()?;
    let fields: Vec<&str> = text.split_whitespace().collect();
    let hex = |s: &str| usize::from_str_radix(s.trim_start_matches("0x"), 16).ok();
    let nr = fields.first()?.parse::<i64>().ok()?;
    let (sp, pc) = match fields.len() {
        n if n >= 3 => (hex(fields[n - 2])?, hex(fields[n - 1])?),
        _ => return None,
    };
    Some((nr, sp, pc))
}

/// True when the OS thread sleeps (state S or D): one the kernel preempted inside a system call also
/// shows that call in /proc, but it waits for a CPU, not for an event.
pub fn sleeping(tid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")) else { return false };
    let state = stat.rfind(')').and_then(|i| stat[i + 1..].trim_start().chars().next());
    matches!(state, Some('S' | 'D'))
}

/// CPU time consumed so far by OS thread `tid` of this process (its per-thread CPU clock, readable
/// process-wide).
pub fn thread_cpu_ns(tid: i32) -> u64 {
    // The kernel's encoding of a thread's CPUCLOCK_SCHED clock (what pthread_getcpuclockid returns).
    let clock = ((!tid) << 3) | 6;
    time::now_ns(clock).unwrap_or(0)
}

/// How long OS thread `tid` has waited for a CPU while runnable so far (ns; the second field of
/// /proc/self/task/TID/schedstat), None if that cannot be read (a kernel without schedstats).
pub fn run_delay_ns(tid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}

/// The name of system call `nr` for reports ("system call N" for those not listed here).
pub fn syscall_name(nr: i64) -> String {
    let name = match nr {
        0 => "read",
        1 => "write",
        7 => "poll",
        17 => "pread64",
        18 => "pwrite64",
        19 => "readv",
        20 => "writev",
        23 => "select",
        35 => "nanosleep",
        42 => "connect",
        43 => "accept",
        44 => "sendto",
        45 => "recvfrom",
        46 => "sendmsg",
        47 => "recvmsg",
        61 => "wait4",
        72 => "fcntl",
        73 => "flock",
        74 => "fsync",
        75 => "fdatasync",
        202 => "futex",
        230 => "clock_nanosleep",
        232 => "epoll_wait",
        257 => "openat",
        270 => "pselect6",
        271 => "ppoll",
        281 => "epoll_pwait",
        288 => "accept4",
        _ => return format!("system call {nr}"),
    };
    name.to_string()
}
