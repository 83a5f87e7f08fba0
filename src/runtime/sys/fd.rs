//! File descriptors themselves (not what they name): numbers, duplicates, closing, the per-process limit.

use super::syscall::syscall2;

/// The open-files limit (RLIMIT_NOFILE), soft and hard, each clamped to 2^20 (the kernel's default
/// `fs.nr_open`; no fd number can be higher). Asked each time: the program may change it.
pub fn open_files_limit() -> (usize, usize) {
    const NR_OPEN: u64 = 1 << 20;
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit into a local (a raw syscall: no hook).
    let _ =
        unsafe { syscall2(libc::SYS_getrlimit, libc::RLIMIT_NOFILE as usize, &mut rl as *mut libc::rlimit as usize) };
    (rl.rlim_cur.min(NR_OPEN) as usize, rl.rlim_max.min(NR_OPEN) as usize)
}
