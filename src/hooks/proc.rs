//! Opens: of `/proc` paths that name a coroutine by its tid (`/proc/self/task/TID/...`, `/proc/TID/...`):
//! see `runtime::proc_task`; every other path goes on untouched, after a look at its first six bytes. A
//! coroutine's open is the system call made through `runtime::worker_call` (so that the open of a FIFO,
//! which waits for the other end, can be cancelled and interrupted as natively), a plain thread's libc's.
//! `fopen` and `freopen` of a coroutine open through the same path (`runtime::io::fopen`): glibc's open
//! with their internal `open`, which no hook sees.

use super::set_errno;
use crate::real;
use crate::runtime::io::fopen;
use crate::runtime::proc_task::{self, Opened};
use crate::runtime::{self, cancel, sys::usercopy, worker, worker_call};
use std::ffi::{c_char, c_int, c_uint};

/// Whether the runtime runs and the path starts with "/proc/" (read fault-safely: a bad pointer is libc's
/// to report). Inlined: every open looks.
#[inline(always)]
fn starts_with_proc(path: *const c_char) -> bool {
    if !runtime::running() || path.is_null() {
        return false;
    }
    // Eight bytes within one page are readable if the first is: one load, one comparison of the first six
    // (bytes past the end of a shorter string are never decisive: the comparison fails at its NUL).
    const PROC: u64 = u64::from_le_bytes(*b"/proc/\0\0");
    let head = if (path as usize) & 4095 <= 4096 - 8 {
        usercopy::read8(path as *const u8).map(|h| u64::from_le_bytes(h) & 0xffff_ffff_ffff)
    } else {
        usercopy::read(path as *const [u8; 6]).map(|h| u64::from_le_bytes([h[0], h[1], h[2], h[3], h[4], h[5], 0, 0]))
    };
    head == Ok(PROC)
}

/// The bytes of a path that starts with "/proc/" (read fault-safely).
#[cold]
#[inline(never)]
fn proc_path(path: *const c_char) -> Option<Vec<u8>> {
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
    if !starts_with_proc(path) {
        return None;
    }
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

/// Whether open reads its mode argument (O_CREAT or O_TMPFILE), as glibc's __OPEN_NEEDS_MODE.
fn needs_mode(flags: c_int) -> bool {
    flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE
}

/// An open of `path` relative to `dirfd`, a cancellation point: a coroutine's is the openat system call
/// made through `runtime::worker_call` (the open of a FIFO waits there for the other end, reachable by
/// cancellation and signals), a plain thread's is libc's (`real`, given the path to open).
fn open_at(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: c_uint,
    real: impl Fn(*const c_char) -> c_int,
) -> c_int {
    let mode = if needs_mode(flags) { mode } else { 0 };
    cancel::point_task(|me| {
        let open = |p: *const c_char| match me {
            Some(me) => {
                let args = [dirfd as isize as usize, p as usize, flags as usize, mode as usize, 0, 0];
                // SAFETY: the calling coroutine; the program's arguments (or the translated path), as
                // openat takes them.
                super::io::ret(unsafe { worker_call::call(me, libc::SYS_openat, args) }) as c_int
            }
            None => real(p),
        };
        translated(path, flags, open).unwrap_or_else(|| open(path))
    })
}

/// # Safety
/// C contract of open (variadic in C: the mode is read only with O_CREAT or O_TMPFILE, as by libc).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn open(path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    // SAFETY: forwarding with the caller's arguments (or the translated path).
    open_at(libc::AT_FDCWD, path, flags, mode, |p| unsafe { real::open(p, flags, mode) })
}

/// # Safety
/// C contract of open64.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn open64(path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    // SAFETY: as for open.
    unsafe { open(path, flags, mode) }
}

/// # Safety
/// C contract of __open_2 (the fortified open without a mode: glibc's own report for flags that need one).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __open_2(path: *const c_char, flags: c_int) -> c_int {
    if needs_mode(flags) {
        // SAFETY: forwarding (glibc reports the misuse and aborts).
        return unsafe { real::__open_2(path, flags) };
    }
    // SAFETY: forwarding.
    open_at(libc::AT_FDCWD, path, flags, 0, |p| unsafe { real::__open_2(p, flags) })
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
    open_at(dirfd, path, flags, mode, |p| unsafe { real::openat(dirfd, p, flags, mode) })
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
    if needs_mode(flags) {
        // SAFETY: forwarding (glibc reports the misuse and aborts).
        return unsafe { real::__openat_2(dirfd, path, flags) };
    }
    // SAFETY: forwarding.
    open_at(dirfd, path, flags, 0, |p| unsafe { real::__openat_2(dirfd, p, flags) })
}

/// # Safety
/// C contract of __openat64_2.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __openat64_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: as for __openat_2.
    unsafe { __openat_2(dirfd, path, flags) }
}

/// creat: open(path, O_WRONLY | O_CREAT | O_TRUNC, mode) (glibc's calls its internal open, which no hook
/// sees).
///
/// # Safety
/// C contract of creat.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn creat(path: *const c_char, mode: libc::mode_t) -> c_int {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC;
    // SAFETY: forwarding.
    open_at(libc::AT_FDCWD, path, flags, mode, |p| unsafe { real::creat(p, mode) })
}

/// # Safety
/// C contract of creat64.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn creat64(path: *const c_char, mode: libc::mode_t) -> c_int {
    // SAFETY: as for creat.
    unsafe { creat(path, mode) }
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
    if !starts_with_proc(path) {
        return None;
    }
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
    fopen_translated(path, mode, |p| unsafe { real::fopen(p, mode) }).unwrap_or_else(|| {
        // SAFETY: the caller's mode string.
        match worker::current_task().and_then(|_| unsafe { fopen::parse_mode(mode) }) {
            Some(m) => {
                // SAFETY: forwarding (the real open is not called: the caller is a coroutine).
                let fd = open_at(libc::AT_FDCWD, path, m.flags, 0o666, |p| unsafe { real::open(p, m.flags, 0o666) });
                // SAFETY: the descriptor just opened as the mode says.
                if fd < 0 { core::ptr::null_mut() } else { unsafe { fopen::stream(fd, &m) } }
            }
            // SAFETY: forwarding.
            None => unsafe { real::fopen(path, mode) },
        }
    })
}

/// # Safety
/// C contract of fopen64.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fopen64(path: *const c_char, mode: *const c_char) -> *mut libc::FILE {
    // SAFETY: as for fopen.
    unsafe { fopen(path, mode) }
}

/// freopen of a FIFO by a coroutine (see `runtime::io::fopen::reopen_fifo`); None: glibc's freopen as it is.
///
/// # Safety
/// C contract of freopen.
pub(super) unsafe fn freopen_fifo(
    path: *const c_char,
    mode: *const c_char,
    f: *mut libc::FILE,
) -> Option<*mut libc::FILE> {
    if path.is_null() || f.is_null() {
        return None;
    }
    worker::current_task()?;
    // SAFETY: the caller's mode string.
    let m = unsafe { fopen::parse_mode(mode) }?;
    // SAFETY: the caller's path, mode and FILE; the open is the shim's own (the caller is a coroutine).
    unsafe {
        fopen::reopen_fifo(
            path,
            &m,
            || {
                super::stdio_write::fflush(f);
            },
            || open_at(libc::AT_FDCWD, path, m.flags, 0o666, |p| real::open(p, m.flags, 0o666)),
            |p| {
                super::io::stream_closing(f);
                real::freopen(p, mode, f)
            },
        )
    }
}

/// freopen closes the stream's fd with glibc's internal close: forget it first.
///
/// # Safety
/// C contract of freopen.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn freopen(path: *const c_char, mode: *const c_char, f: *mut libc::FILE) -> *mut libc::FILE {
    // SAFETY: forwarding the caller's arguments to glibc's freopen, as the contract allows.
    unsafe { reopen(path, mode, f, || real::freopen(path, mode, f)) }
}

/// # Safety
/// C contract of freopen64.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn freopen64(path: *const c_char, mode: *const c_char, f: *mut libc::FILE) -> *mut libc::FILE {
    // SAFETY: forwarding the caller's arguments to glibc's freopen64, as the contract allows.
    unsafe { reopen(path, mode, f, || real::freopen64(path, mode, f)) }
}

/// freopen and freopen64: onto a FIFO through the shim's own open; else glibc's (`call`), the stream's fd
/// forgotten first.
///
/// # Safety
/// C contract of freopen; `call` makes glibc's call with the same arguments.
unsafe fn reopen(
    path: *const c_char,
    mode: *const c_char,
    f: *mut libc::FILE,
    call: impl FnOnce() -> *mut libc::FILE,
) -> *mut libc::FILE {
    // SAFETY: the caller's strings and FILE.
    if let Some(r) = unsafe { freopen_fifo(path, mode, f) } {
        return r;
    }
    // SAFETY: a live FILE per the contract.
    unsafe { super::io::stream_closing(f) };
    call()
}
