//! Opens of `/proc` paths that name a coroutine by its tid (`/proc/self/task/TID/...`, `/proc/TID/...`):
//! see `runtime::proc_task`. Every other path goes to libc untouched, after a look at its first six bytes.

use super::set_errno;
use crate::real;
use crate::runtime::proc_task::{self, Opened};
use crate::runtime::{self, sys::usercopy};
use std::ffi::{c_char, c_int, c_uint};

/// The path's bytes when it starts with "/proc/" and the runtime runs (read fault-safely: a bad pointer
/// is libc's to report).
fn proc_path(path: *const c_char) -> Option<Vec<u8>> {
    if !runtime::running() || path.is_null() {
        return None;
    }
    let head = usercopy::read(path as *const [u8; 6]).ok()?;
    if &head != b"/proc/" {
        return None;
    }
    let mut v = Vec::with_capacity(64);
    for i in 0..4096 {
        // SAFETY: only the address is computed; the byte is read fault-safely.
        let b = usercopy::read(unsafe { path.add(i) } as *const u8).ok()?;
        if b == 0 {
            return Some(v);
        }
        v.push(b);
    }
    None
}

/// The open, translated: Some(result) when the path named a coroutine.
fn translated(path: *const c_char, flags: c_int, open: impl FnOnce(*const c_char) -> c_int) -> Option<c_int> {
    let bytes = proc_path(path)?;
    match proc_task::translate(&bytes, flags)? {
        Opened::Path(p) => Some(open(p.as_ptr())),
        Opened::File(Ok(fd)) => Some(fd),
        Opened::File(Err(e)) => {
            set_errno(e.0);
            Some(-1)
        }
    }
}

/// # Safety
/// C contract of open (variadic in C: the mode is read only with O_CREAT or O_TMPFILE, as by libc).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn open(path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    // SAFETY: forwarding with the caller's arguments (or the translated path).
    translated(path, flags, |p| unsafe { real::open(p, flags, mode) })
        .unwrap_or_else(|| unsafe { real::open(path, flags, mode) })
}

/// # Safety
/// C contract of open64.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn open64(path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    // SAFETY: as for open.
    unsafe { open(path, flags, mode) }
}

/// # Safety
/// C contract of __open_2 (the fortified open without a mode).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __open_2(path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: forwarding.
    translated(path, flags, |p| unsafe { real::__open_2(p, flags) })
        .unwrap_or_else(|| unsafe { real::__open_2(path, flags) })
}

/// # Safety
/// C contract of __open64_2.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __open64_2(path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: as for __open_2.
    unsafe { __open_2(path, flags) }
}

/// # Safety
/// C contract of openat (an absolute path ignores the directory fd).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn openat(dirfd: c_int, path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    // SAFETY: forwarding.
    translated(path, flags, |p| unsafe { real::openat(dirfd, p, flags, mode) })
        // SAFETY: forwarding.
        .unwrap_or_else(|| unsafe { real::openat(dirfd, path, flags, mode) })
}

/// # Safety
/// C contract of openat64.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn openat64(dirfd: c_int, path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    // SAFETY: as for openat.
    unsafe { openat(dirfd, path, flags, mode) }
}

/// # Safety
/// C contract of __openat_2.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __openat_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: forwarding.
    translated(path, flags, |p| unsafe { real::__openat_2(dirfd, p, flags) })
        // SAFETY: forwarding.
        .unwrap_or_else(|| unsafe { real::__openat_2(dirfd, path, flags) })
}

/// # Safety
/// C contract of __openat64_2.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __openat64_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: as for __openat_2.
    unsafe { __openat_2(dirfd, path, flags) }
}

/// The open flags of an fopen mode ("r", "w+", "a", with 'e' for O_CLOEXEC; only whether it writes and
/// closes on exec matter here).
fn fopen_flags(mode: *const c_char) -> c_int {
    let mut flags = libc::O_RDONLY;
    for i in 0..8 {
        // SAFETY: only the address is computed; the byte is read fault-safely.
        match usercopy::read(unsafe { mode.add(i) } as *const u8) {
            Ok(b'w' | b'a') => flags = (flags & !libc::O_ACCMODE) | libc::O_WRONLY,
            Ok(b'+') => flags = (flags & !libc::O_ACCMODE) | libc::O_RDWR,
            Ok(b'e') => flags |= libc::O_CLOEXEC,
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    flags
}

fn fopen_translated(
    path: *const c_char,
    mode: *const c_char,
    fopen: impl FnOnce(*const c_char) -> *mut libc::FILE,
) -> Option<*mut libc::FILE> {
    let bytes = proc_path(path)?;
    match proc_task::translate(&bytes, fopen_flags(mode))? {
        Opened::Path(p) => Some(fopen(p.as_ptr())),
        Opened::File(Ok(fd)) => {
            // SAFETY: a fresh fd of ours, handed to stdio with the caller's mode.
            let f = unsafe { libc::fdopen(fd, mode) };
            if f.is_null() {
                let _ = runtime::sys::fd::close(fd);
            }
            Some(f)
        }
        Opened::File(Err(e)) => {
            set_errno(e.0);
            Some(core::ptr::null_mut())
        }
    }
}

/// # Safety
/// C contract of fopen.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fopen(path: *const c_char, mode: *const c_char) -> *mut libc::FILE {
    // SAFETY: forwarding.
    fopen_translated(path, mode, |p| unsafe { real::fopen(p, mode) })
        .unwrap_or_else(|| unsafe { real::fopen(path, mode) })
}

/// # Safety
/// C contract of fopen64.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fopen64(path: *const c_char, mode: *const c_char) -> *mut libc::FILE {
    // SAFETY: as for fopen.
    unsafe { fopen(path, mode) }
}
