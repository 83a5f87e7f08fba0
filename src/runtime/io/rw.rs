//! read, write, readv and writev of a coroutine: a read returns what one try that succeeds gives, a
//! write goes on until all is written, as the kernel's blocking calls do (see `blocking`).
// The pointers these functions take are the program's own buffers and iovec arrays, which Rust code
// never dereferences but through `usercopy`: they go to the kernel, which checks them (EFAULT), as the
// program's own call would have.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use super::super::sys::syscall::Errno;
use super::super::sys::{self, usercopy};
use super::attempt::{try_read, try_rwv, try_write};
use super::blocking::{blocking_restarting, read_restarting, write_all};
use super::fd::Dir;
use super::{IOV_MAX, IoResult, advance};

/// read(fd, buf, len). Inlined into the hook, as the cooperative loop it calls is: the echo round trip's
/// path (a call level more cost it instructions per round trip).
#[inline(always)]
pub fn read(fd: i32, buf: *mut u8, len: usize) -> IoResult {
    if len == 0 {
        // Nothing to wait for: the kernel answers 0 (or an error) at once.
        // SAFETY: the program's own call.
        return unsafe { sys::fd::read(fd, buf, len) };
    }
    read_restarting(fd, len, |fd, kind| try_read(fd, buf, len, kind))
}

/// write(fd, buf, len). Inlined into the hook, as [`read`].
#[inline(always)]
pub fn write(fd: i32, buf: *const u8, len: usize) -> IoResult {
    write_all(fd, len, |fd, done, kind| try_write(fd, buf.wrapping_add(done), len - done, kind))
}

/// readv(fd, iov, cnt) (`cnt` not negative).
pub fn readv(fd: i32, iov: *const libc::iovec, cnt: usize) -> IoResult {
    blocking_restarting(fd, Dir::Read, |fd, kind| try_rwv(fd, iov, cnt, Dir::Read, kind))
}

/// writev(fd, iov, cnt) (`cnt` not negative). The iovecs are copied so partial writes can advance them;
/// more than the kernel takes get its own EINVAL.
pub fn writev(fd: i32, iov: *const libc::iovec, cnt: usize) -> IoResult {
    if cnt > IOV_MAX {
        // SAFETY: the program's own call; the kernel refuses it.
        return unsafe { sys::fd::readv_writev(true, fd, iov, cnt) };
    }
    let Ok(vecs) = (0..cnt).map(|i| usercopy::read(iov.wrapping_add(i))).collect::<Result<Vec<_>, _>>() else {
        return Err(Errno(libc::EFAULT));
    };
    let total: usize = vecs.iter().map(|v| v.iov_len).sum();
    write_all(fd, total, |fd, done, kind| {
        let rest = advance(&vecs, done);
        try_rwv(fd, rest.as_ptr(), rest.len(), Dir::Write, kind)
    })
}
