//! One try of a read or write that cannot block, in the way the fd's kind allows: MSG_DONTWAIT on
//! sockets, RWF_NOWAIT on pipes, poll-then-call one caller at a time on objects with no per-call
//! non-blocking form, the `file` module's rules for regular files — never by touching the
//! description's O_NONBLOCK, which other processes share. EAGAIN means: park and try again.
// The pointers these functions take are the program's own (buffers, addresses, message headers), which
// Rust code never dereferences: they go to the kernel, which checks them (EFAULT), as the program's own
// call would have.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use super::super::sys;
use super::super::sys::syscall::Errno;
use super::IoResult;
use super::fd::{self, Dir, Kind};
use core::sync::atomic::Ordering;

/// For kinds without a non-blocking form: one caller at a time polls and, if ready, makes the real call
/// (so two coroutines never both see "ready" and one block its worker). Others get EAGAIN and are woken
/// when the caller is done.
pub fn gated(fd: i32, dir: Dir, call: impl FnOnce() -> IoResult) -> IoResult {
    let Some(e) = fd::entry(fd) else { return call() };
    if e.gate(dir).swap(1, Ordering::Acquire) == 1 {
        return Err(Errno(libc::EAGAIN));
    }
    let events = if dir == Dir::Read { libc::POLLIN } else { libc::POLLOUT };
    let ready = sys::poll::ready_now(fd, events);
    let r = if ready { call() } else { Err(Errno(libc::EAGAIN)) };
    e.gate(dir).store(0, Ordering::Release);
    if ready {
        // Others waiting on this side retry: more may be ready, and edge-triggered polling will not say so.
        e.notify(dir);
    }
    r
}

fn iov1(buf: *mut u8, len: usize) -> libc::iovec {
    libc::iovec { iov_base: buf as *mut libc::c_void, iov_len: len }
}

/// preadv2/pwritev2 at the current position (-1) with RWF_NOWAIT.
fn rw_nowait(dir: Dir, fd: i32, iov: *const libc::iovec, cnt: usize) -> IoResult {
    const RWF_NOWAIT: u32 = 8;
    // SAFETY: the iovecs are the caller's; the kernel validates them.
    unsafe { sys::fd::preadv2_pwritev2(dir == Dir::Write, fd, iov, cnt, -1, RWF_NOWAIT) }
}

/// One try of read(fd, buf, len) for `kind`.
pub fn try_read(fd: i32, buf: *mut u8, len: usize, kind: Kind) -> IoResult {
    // SAFETY: in every arm, the program's own buffer and fd; the kernel validates them (EFAULT, EBADF).
    unsafe {
        match kind {
            Kind::Socket => {
                sys::socket::recvfrom(fd, buf, len, libc::MSG_DONTWAIT, core::ptr::null_mut(), core::ptr::null_mut())
            }
            Kind::NoWait => {
                let iov = iov1(buf, len);
                rw_nowait(Dir::Read, fd, &iov, 1)
            }
            Kind::Pollable => gated(fd, Dir::Read, || sys::fd::read(fd, buf, len)),
            Kind::File => super::file::read(fd, buf, len, None),
            _ => sys::fd::read(fd, buf, len),
        }
    }
}

/// One try of write(fd, buf, len) for `kind`.
pub fn try_write(fd: i32, buf: *const u8, len: usize, kind: Kind) -> IoResult {
    // SAFETY: in every arm, as in try_read.
    unsafe {
        match kind {
            Kind::Socket => sys::socket::sendto(fd, buf, len, libc::MSG_DONTWAIT, core::ptr::null(), 0),
            Kind::NoWait => {
                let iov = iov1(buf as *mut u8, len);
                rw_nowait(Dir::Write, fd, &iov, 1)
            }
            Kind::Pollable => gated(fd, Dir::Write, || sys::fd::write(fd, buf, len)),
            Kind::File => super::file::write(fd, buf, len, None),
            _ => sys::fd::write(fd, buf, len),
        }
    }
}

/// One try of readv/writev for `kind`.
pub fn try_rwv(fd: i32, iov: *const libc::iovec, cnt: usize, dir: Dir, kind: Kind) -> IoResult {
    let write = dir == Dir::Write;
    // SAFETY: in every arm, the program's iovec array; the kernel validates it.
    unsafe {
        match kind {
            Kind::Socket => {
                let mut msg: libc::msghdr = core::mem::zeroed();
                msg.msg_iov = iov as *mut libc::iovec;
                msg.msg_iovlen = cnt;
                if write {
                    sys::socket::sendmsg(fd, &msg, libc::MSG_DONTWAIT)
                } else {
                    sys::socket::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT)
                }
            }
            Kind::NoWait => rw_nowait(dir, fd, iov, cnt),
            Kind::Pollable => gated(fd, dir, || sys::fd::readv_writev(write, fd, iov, cnt)),
            _ => sys::fd::readv_writev(write, fd, iov, cnt),
        }
    }
}
