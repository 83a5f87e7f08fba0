//! The file system by path: opening and looking at files the runtime reads or writes itself (/proc, its
//! statistics file), with raw system calls so that no hooked libc function runs.

use super::syscall::{Errno, syscall2, syscall4};
use core::ffi::CStr;

/// openat(AT_FDCWD, path, flags, mode).
pub fn open(path: &CStr, flags: i32, mode: u32) -> Result<i32, Errno> {
    // SAFETY: a NUL-terminated path; the kernel only reads it.
    unsafe {
        syscall4(libc::SYS_openat, libc::AT_FDCWD as usize, path.as_ptr() as usize, flags as usize, mode as usize)
    }
    .map(|fd| fd as i32)
}

/// stat(2).
pub fn stat(path: &CStr) -> Result<libc::stat, Errno> {
    // SAFETY: all-zero is a valid stat.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a local struct to fill.
    unsafe { syscall2(libc::SYS_stat, path.as_ptr() as usize, &mut st as *mut libc::stat as usize) }?;
    Ok(st)
}

/// lstat(2) (newfstatat with AT_SYMLINK_NOFOLLOW): a symbolic link is looked at, not followed.
pub fn lstat(path: &CStr) -> Result<libc::stat, Errno> {
    // SAFETY: all-zero is a valid stat.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a local struct to fill.
    unsafe {
        syscall4(
            libc::SYS_newfstatat,
            libc::AT_FDCWD as usize,
            path.as_ptr() as usize,
            &mut st as *mut libc::stat as usize,
            libc::AT_SYMLINK_NOFOLLOW as usize,
        )
    }?;
    Ok(st)
}
