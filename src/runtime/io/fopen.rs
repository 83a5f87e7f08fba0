//! `fopen` for a coroutine: glibc's opens the file with its internal `open`, which no hook sees, so the
//! open of a FIFO (which waits for the other end) would hold the worker, and a signal or a cancellation
//! request for the thread would wait until the other end came. The hook opens the file itself, through
//! the shim's `open` (made in place on the worker, moved to a helper thread when a signal, a cancellation
//! request or the stall monitor needs it: `worker_call`), with the flags glibc's `_IO_new_file_fopen`
//! derives from the mode, then makes the FILE with glibc's `fdopen` and sets what `fdopen` does not:
//! the end-of-file seek of "a" (fdopen seeks only when it adds O_APPEND itself) and the `_flags2` bits
//! of 'm' and 'e' (`fdopen` makes the 'm' stream's read-only mmap jumps itself, but records neither;
//! `freopen` reads the 'e' bit to make its new descriptor close-on-exec). The FILE is then glibc's own
//! from `fopen`, field for field.
//!
//! A mode this cannot reproduce exactly goes to glibc's `fopen`: a first letter other than r, w, a (its
//! EINVAL), "c" (glibc's non-cancellable opens and I/O, recorded in the FILE), a ',' (",ccs=" makes a
//! wide stream with a conversion; and glibc 2.31 and 2.36 read the flags after a ',', 2.41 and 2.43 stop
//! there: "a,x" is O_EXCL on the first, not on the second). Cost on a regular file: one `fcntl(F_GETFL)` more than glibc's `fopen` (fdopen's
//! check of the descriptor's access mode).

use super::libio::file;
use crate::runtime::sys::{fd, fs};
use std::ffi::{c_char, c_int};

/// glibc's `_IO_FLAGS2_MMAP` and `_IO_FLAGS2_CLOEXEC` (libio.h, the same from 2.31 on).
const FLAGS2_MMAP: c_int = 1;
const FLAGS2_CLOEXEC: c_int = 64;

/// An fopen mode as glibc reads it.
pub struct Mode {
    /// The `open` flags.
    pub flags: c_int,
    /// What `fdopen` is given for the same stream: the first letter, '+', 'm'.
    fdopen_mode: [u8; 4],
    /// "a" without '+': the stream starts at the end of the file.
    seek_end: bool,
    flags2: c_int,
}

/// The mode `mode` as glibc's `fopen` reads it (the first letter, then at most six more characters up to
/// a NUL), or None when only glibc's `fopen` makes that stream (see the module documentation).
///
/// # Safety
/// `mode` is a NUL-terminated string.
pub unsafe fn parse_mode(mode: *const c_char) -> Option<Mode> {
    // SAFETY: per the contract.
    let bytes = unsafe { std::ffi::CStr::from_ptr(mode) }.to_bytes();
    if bytes.contains(&b',') {
        return None;
    }
    let (mut acc, mut flags) = match bytes.first()? {
        b'r' => (libc::O_RDONLY, 0),
        b'w' => (libc::O_WRONLY, libc::O_CREAT | libc::O_TRUNC),
        b'a' => (libc::O_WRONLY, libc::O_CREAT | libc::O_APPEND),
        _ => return None,
    };
    let (mut plus, mut flags2) = (false, 0);
    for &b in bytes.iter().skip(1).take(6) {
        match b {
            b'+' => {
                acc = libc::O_RDWR;
                plus = true;
            }
            b'x' => flags |= libc::O_EXCL,
            b'm' => flags2 |= FLAGS2_MMAP,
            b'e' => {
                flags |= libc::O_CLOEXEC;
                flags2 |= FLAGS2_CLOEXEC;
            }
            b'c' => return None,
            _ => {}
        }
    }
    let mut fdopen_mode = [bytes[0], 0, 0, 0];
    let mut n = 1;
    for (on, c) in [(plus, b'+'), (flags2 & FLAGS2_MMAP != 0, b'm')] {
        if on {
            fdopen_mode[n] = c;
            n += 1;
        }
    }
    Some(Mode { flags: acc | flags, fdopen_mode, seek_end: bytes[0] == b'a' && !plus, flags2 })
}

/// The FILE glibc's `fopen` makes for `fd`, just opened with `mode.flags` (closed on failure, with errno
/// set as glibc's `fopen` sets it).
///
/// # Safety
/// `fd` is the caller's own descriptor, opened as `mode` says.
pub unsafe fn stream(fd: c_int, mode: &Mode) -> *mut libc::FILE {
    if mode.seek_end
        && let Err(e) = fd::lseek(fd, 0, libc::SEEK_END)
        && e.0 != libc::ESPIPE
    {
        let _ = fd::close(fd);
        set_errno(e.0);
        return core::ptr::null_mut();
    }
    // SAFETY: the descriptor and a NUL-terminated mode fdopen accepts for it (the shim has no fdopen hook).
    let f = unsafe { libc::fdopen(fd, mode.fdopen_mode.as_ptr() as *const c_char) };
    if f.is_null() {
        // SAFETY: errno of the calling thread, kept across the close.
        let e = unsafe { *libc::__errno_location() };
        let _ = fd::close(fd);
        set_errno(e);
        return f;
    }
    file(f).flags2 |= mode.flags2;
    f
}

fn set_errno(e: c_int) {
    // SAFETY: the calling thread's errno slot.
    unsafe { *libc::__errno_location() = e };
}

/// `freopen(path, mode, f)` of a coroutine when `path` names a FIFO opened for reading or for writing
/// (None otherwise: glibc's `freopen` is made as it is). glibc's opens with its internal `open`, which
/// would wait for the other end on the worker, so the wait comes first, through the shim's `open`
/// (`open`, a cancellation point that a handler interrupts): `flush` first, as glibc's `freopen` flushes
/// the stream before its open. Then the FIFO has the other end, and glibc's `freopen` of the descriptor
/// just opened (`/proc/self/fd/N`, the same FIFO) returns at once while a non-blocking descriptor of the
/// other kind, opened on it here, keeps that end there for the instant the call takes (the other end may
/// have closed again meanwhile: a writer that wrote and left). A failed open (EINTR from a handler,
/// ENOENT...) fails the `freopen` as glibc's would: the stream closed, NULL, that errno (glibc's `freopen`
/// of "" closes it and fails; the errno is then set back).
///
/// Unlike glibc's, the stream is still open while the open waits: a handler that leaves by `siglongjmp`,
/// or a cancellation, leaves it open (glibc's leaves it closed, and its lock taken after a `siglongjmp`).
///
/// # Safety
/// `path` is a NUL-terminated string, `f` a live FILE; `real(p)` is glibc's `freopen(p, mode, f)`.
pub unsafe fn reopen_fifo(
    path: *const c_char,
    mode: &Mode,
    flush: impl FnOnce(),
    open: impl FnOnce() -> c_int,
    real: impl FnOnce(*const c_char) -> *mut libc::FILE,
) -> Option<*mut libc::FILE> {
    let acc = mode.flags & libc::O_ACCMODE;
    // SAFETY: per the contract.
    let st = fs::stat(unsafe { std::ffi::CStr::from_ptr(path) }).ok()?;
    if st.st_mode & libc::S_IFMT != libc::S_IFIFO || acc == libc::O_RDWR {
        return None;
    }
    flush();
    let a = open();
    if a < 0 {
        // SAFETY: errno of the calling coroutine, set by the open.
        let e = unsafe { *libc::__errno_location() };
        let r = real(c"".as_ptr());
        set_errno(e);
        return Some(r);
    }
    let proc_path = std::ffi::CString::new(format!("/proc/self/fd/{a}")).expect("no NUL");
    let other = if acc == libc::O_RDONLY { libc::O_WRONLY } else { libc::O_RDONLY };
    let Ok(end) = fs::open(&proc_path, other | libc::O_NONBLOCK | libc::O_CLOEXEC, 0) else {
        // No /proc: glibc's own, which waits on the worker.
        let _ = fd::close(a);
        return None;
    };
    let r = real(proc_path.as_ptr());
    // SAFETY: errno of the calling coroutine, set by freopen.
    let e = unsafe { *libc::__errno_location() };
    let _ = fd::close(end);
    let _ = fd::close(a);
    set_errno(e);
    Some(r)
}
