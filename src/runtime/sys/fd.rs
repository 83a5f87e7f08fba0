//! File descriptors: numbers, duplicates, closing and the per-process limit, and the plain calls on what
//! they name (read, write, their vector and positioned forms, fstat, sendfile, splice).

use super::syscall::{Errno, syscall1, syscall2, syscall3, syscall4, syscall6};

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

/// close(2) of one of the runtime's own fds (or one the program's call hands over to be closed).
pub fn close(fd: i32) -> Result<(), Errno> {
    // SAFETY: closing touches no memory; callers close only numbers they own.
    unsafe { syscall1(libc::SYS_close, fd as usize) }.map(|_| ())
}

/// close_range(2).
pub fn close_range(first: u32, last: u32, flags: u32) -> Result<usize, Errno> {
    // SAFETY: closing touches no memory; the range is the program's own call, or numbers it owns.
    unsafe { syscall3(libc::SYS_close_range, first as usize, last as usize, flags as usize) }
}

/// fcntl(2) with an integer argument (F_GETFL, F_SETFL, F_GETFD, F_DUPFD_CLOEXEC...), never a pointer.
pub fn fcntl(fd: i32, cmd: i32, arg: usize) -> Result<usize, Errno> {
    // SAFETY: the commands callers use take an integer, not a pointer.
    unsafe { syscall3(libc::SYS_fcntl, fd as usize, cmd as usize, arg) }
}

/// lseek(2): the new offset.
pub fn lseek(fd: i32, offset: i64, whence: i32) -> Result<i64, Errno> {
    // SAFETY: lseek takes integers only and touches no memory.
    unsafe { syscall3(libc::SYS_lseek, fd as usize, offset as usize, whence as usize) }.map(|pos| pos as i64)
}

/// A close-on-exec duplicate of `fd` at the lowest free number from `floor` on.
pub fn dup_from(fd: i32, floor: usize) -> Result<i32, Errno> {
    fcntl(fd, libc::F_DUPFD_CLOEXEC, floor).map(|h| h as i32)
}

/// fstat(2).
pub fn fstat(fd: i32) -> Result<libc::stat, Errno> {
    // SAFETY: plain data; the kernel fills it.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: fstat into a local struct.
    unsafe { syscall2(libc::SYS_fstat, fd as usize, &mut st as *mut libc::stat as usize) }?;
    Ok(st)
}

/// read(2).
///
/// # Safety
/// `buf` is the program's own buffer, or writable for `len` bytes.
pub unsafe fn read(fd: i32, buf: *mut u8, len: usize) -> Result<usize, Errno> {
    // SAFETY: the caller vouches for the buffer.
    unsafe { syscall3(libc::SYS_read, fd as usize, buf as usize, len) }
}

/// write(2).
///
/// # Safety
/// `buf` is the program's own buffer, or readable for `len` bytes.
pub unsafe fn write(fd: i32, buf: *const u8, len: usize) -> Result<usize, Errno> {
    // SAFETY: the caller vouches for the buffer.
    unsafe { syscall3(libc::SYS_write, fd as usize, buf as usize, len) }
}

/// pread(2).
///
/// # Safety
/// As for [`read`].
pub unsafe fn pread(fd: i32, buf: *mut u8, len: usize, offset: i64) -> Result<usize, Errno> {
    // SAFETY: the caller vouches for the buffer.
    unsafe { syscall4(libc::SYS_pread64, fd as usize, buf as usize, len, offset as usize) }
}

/// pwrite(2).
///
/// # Safety
/// As for [`write`].
pub unsafe fn pwrite(fd: i32, buf: *const u8, len: usize, offset: i64) -> Result<usize, Errno> {
    // SAFETY: the caller vouches for the buffer.
    unsafe { syscall4(libc::SYS_pwrite64, fd as usize, buf as usize, len, offset as usize) }
}

/// fsync(2), or fdatasync(2) when `data_only`.
pub fn fsync(fd: i32, data_only: bool) -> Result<usize, Errno> {
    let nr = if data_only { libc::SYS_fdatasync } else { libc::SYS_fsync };
    // SAFETY: touches no memory.
    unsafe { syscall1(nr, fd as usize) }
}

/// Writes all of `bytes` to `fd` (retrying after a signal), or as much as goes before an error.
/// Async-signal-safe.
pub fn write_all(fd: i32, bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        // SAFETY: the pointer and length describe the live slice `rest`.
        match unsafe { write(fd, rest.as_ptr(), rest.len()) } {
            Ok(n) if n > 0 => rest = &rest[n..],
            Err(Errno(libc::EINTR)) => continue,
            _ => return,
        }
    }
}

/// readv(2) or writev(2).
///
/// # Safety
/// `iov` is the program's own iovec array (or valid for `cnt` entries), and so are the buffers it names.
pub unsafe fn readv_writev(write: bool, fd: i32, iov: *const libc::iovec, cnt: usize) -> Result<usize, Errno> {
    let nr = if write { libc::SYS_writev } else { libc::SYS_readv };
    // SAFETY: the caller vouches for the iovecs.
    unsafe { syscall3(nr, fd as usize, iov as usize, cnt) }
}

/// preadv2(2) or pwritev2(2) at `offset` (-1: the current position) with RWF_* `flags`.
///
/// # Safety
/// As for [`readv_writev`].
pub unsafe fn preadv2_pwritev2(
    write: bool,
    fd: i32,
    iov: *const libc::iovec,
    cnt: usize,
    offset: i64,
    flags: u32,
) -> Result<usize, Errno> {
    let nr = if write { libc::SYS_pwritev2 } else { libc::SYS_preadv2 };
    // The offset's high half (pos_h) is only for 32-bit callers: 0 here.
    // SAFETY: the caller vouches for the iovecs.
    unsafe { syscall6(nr, [fd as usize, iov as usize, cnt, offset as usize, 0, flags as usize]) }
}

/// sendfile(2).
///
/// # Safety
/// `offset` is null or the program's own `off_t`.
pub unsafe fn sendfile(out: i32, inp: i32, offset: *mut libc::off_t, count: usize) -> Result<usize, Errno> {
    // SAFETY: the caller vouches for the offset.
    unsafe { syscall4(libc::SYS_sendfile, out as usize, inp as usize, offset as usize, count) }
}

/// One end of a splice(2): the fd, and the address of the program's `loff_t` offset for it (0: the fd's
/// own position), kept as a word so that the call can cross to a helper thread.
#[derive(Clone, Copy)]
pub struct SpliceEnd {
    pub fd: i32,
    pub offset: usize,
}

/// splice(2).
///
/// # Safety
/// Each end's offset is 0 or the address of the program's own offset.
pub unsafe fn splice(from: SpliceEnd, to: SpliceEnd, len: usize, flags: u32) -> Result<usize, Errno> {
    let (a1, a3) = (from.fd as usize, to.fd as usize);
    // SAFETY: the caller vouches for the offsets.
    unsafe { syscall6(libc::SYS_splice, [a1, from.offset, a3, to.offset, len, flags as usize]) }
}

/// How many bytes the object behind `fd` holds unread (FIONREAD).
pub fn unread_bytes(fd: i32) -> Result<usize, Errno> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD into a local int.
    unsafe { syscall3(libc::SYS_ioctl, fd as usize, libc::FIONREAD as usize, &mut n as *mut libc::c_int as usize) }?;
    Ok(n.max(0) as usize)
}

/// Whether `fd` is a terminal (TCGETS answers).
pub fn is_terminal(fd: i32) -> bool {
    // SAFETY: all-zero is a valid termios.
    let mut t: libc::termios = unsafe { core::mem::zeroed() };
    // SAFETY: TCGETS into a local termios.
    unsafe { syscall3(libc::SYS_ioctl, fd as usize, libc::TCGETS as usize, &mut t as *mut libc::termios as usize) }
        .is_ok()
}

/// A new pipe, [read end, write end], with `flags` (O_CLOEXEC, O_NONBLOCK...).
pub fn pipe2(flags: i32) -> Result<[i32; 2], Errno> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 into a local array.
    unsafe { syscall2(libc::SYS_pipe2, fds.as_mut_ptr() as usize, flags as usize) }?;
    Ok(fds)
}

/// tee(2): copies up to `len` bytes from pipe `fd_in` to pipe `fd_out` without consuming them.
pub fn tee(fd_in: i32, fd_out: i32, len: usize, flags: u32) -> Result<usize, Errno> {
    // SAFETY: moves data between two pipes; touches no memory of ours.
    unsafe { syscall4(libc::SYS_tee, fd_in as usize, fd_out as usize, len, flags as usize) }
}

/// memfd_create: an anonymous memory file (for contents the runtime makes up, such as a coroutine's
/// `/proc` entries).
pub fn memfd(cloexec: bool) -> Result<i32, Errno> {
    let flags = if cloexec { libc::MFD_CLOEXEC } else { 0 };
    // SAFETY: a NUL-terminated name and plain flags.
    unsafe { syscall2(libc::SYS_memfd_create, c"asyncshim-proc".as_ptr() as usize, flags as usize) }.map(|fd| fd as i32)
}
