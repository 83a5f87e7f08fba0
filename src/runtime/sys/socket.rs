//! Sockets: sending, receiving, accepting, connecting and socket options, through raw system calls.
//!
//! The pointers these take are the program's own (its buffers, addresses, message headers) or locals; the
//! kernel validates them (EFAULT), so the only duty left to a caller is not to hand the kernel memory that
//! Rust code holds borrowed meanwhile.

use super::syscall::{Errno, syscall3, syscall4, syscall6};

/// recvfrom(2).
///
/// # Safety
/// `buf`, `addr` and `alen` are the program's own arguments or valid for the call.
pub unsafe fn recvfrom(
    fd: i32,
    buf: *mut u8,
    len: usize,
    flags: i32,
    addr: *mut libc::sockaddr,
    alen: *mut libc::socklen_t,
) -> Result<usize, Errno> {
    // SAFETY: the caller vouches for the pointers.
    unsafe {
        syscall6(libc::SYS_recvfrom, [fd as usize, buf as usize, len, flags as usize, addr as usize, alen as usize])
    }
}

/// sendto(2).
///
/// # Safety
/// As for [`recvfrom`].
pub unsafe fn sendto(
    fd: i32,
    buf: *const u8,
    len: usize,
    flags: i32,
    addr: *const libc::sockaddr,
    alen: libc::socklen_t,
) -> Result<usize, Errno> {
    // SAFETY: the caller vouches for the pointers.
    unsafe {
        syscall6(libc::SYS_sendto, [fd as usize, buf as usize, len, flags as usize, addr as usize, alen as usize])
    }
}

/// recvmsg(2).
///
/// # Safety
/// `msg` and what it points at are the program's own or valid for the call.
pub unsafe fn recvmsg(fd: i32, msg: *mut libc::msghdr, flags: i32) -> Result<usize, Errno> {
    // SAFETY: the caller vouches for the message.
    unsafe { syscall3(libc::SYS_recvmsg, fd as usize, msg as usize, flags as usize) }
}

/// sendmsg(2).
///
/// # Safety
/// As for [`recvmsg`].
pub unsafe fn sendmsg(fd: i32, msg: *const libc::msghdr, flags: i32) -> Result<usize, Errno> {
    // SAFETY: the caller vouches for the message.
    unsafe { syscall3(libc::SYS_sendmsg, fd as usize, msg as usize, flags as usize) }
}

/// accept4(2).
///
/// # Safety
/// `addr` and `alen` are the program's own or valid for the call.
pub unsafe fn accept4(
    fd: i32,
    addr: *mut libc::sockaddr,
    alen: *mut libc::socklen_t,
    flags: i32,
) -> Result<usize, Errno> {
    // SAFETY: the caller vouches for the pointers.
    unsafe { syscall4(libc::SYS_accept4, fd as usize, addr as usize, alen as usize, flags as usize) }
}

/// connect(2).
///
/// # Safety
/// `addr` is the program's own or valid for the call.
pub unsafe fn connect(fd: i32, addr: *const libc::sockaddr, alen: libc::socklen_t) -> Result<usize, Errno> {
    // SAFETY: the caller vouches for the address.
    unsafe { syscall3(libc::SYS_connect, fd as usize, addr as usize, alen as usize) }
}

/// getsockopt(2) of an int option (SO_ERROR, SO_TYPE...).
pub fn getsockopt_int(fd: i32, level: i32, name: i32) -> Result<i32, Errno> {
    let mut value: i32 = 0;
    // SAFETY: an i32 local, its size given.
    unsafe { getsockopt_into(fd, level, name, &mut value as *mut i32 as usize, size_of::<i32>()) }?;
    Ok(value)
}

/// getsockopt(2) of a timeval option (SO_RCVTIMEO, SO_SNDTIMEO).
pub fn getsockopt_timeval(fd: i32, level: i32, name: i32) -> Result<libc::timeval, Errno> {
    let mut value = libc::timeval { tv_sec: 0, tv_usec: 0 };
    // SAFETY: a timeval local, its size given.
    unsafe { getsockopt_into(fd, level, name, &mut value as *mut libc::timeval as usize, size_of::<libc::timeval>()) }?;
    Ok(value)
}

/// getsockopt(2) of a string option (TCP_ULP, TCP_CONGESTION) into `out`: the option's length.
pub fn getsockopt_bytes(fd: i32, level: i32, name: i32, out: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: `out` is writable for its length.
    unsafe { getsockopt_into(fd, level, name, out.as_mut_ptr() as usize, out.len()) }
}

/// getsockopt(2) into `size` bytes at `out`: the option's length.
///
/// # Safety
/// `out` is writable for `size` bytes.
unsafe fn getsockopt_into(fd: i32, level: i32, name: i32, out: usize, size: usize) -> Result<usize, Errno> {
    let mut len = size as libc::socklen_t;
    // SAFETY: the caller vouches for `out`; `len` is a local.
    unsafe {
        syscall6(
            libc::SYS_getsockopt,
            [fd as usize, level as usize, name as usize, out, &mut len as *mut libc::socklen_t as usize, 0],
        )
    }?;
    Ok(len as usize)
}

/// recvmmsg(2) (`timeout` null: none).
///
/// # Safety
/// `vec` (vlen entries) and what it points at, and `timeout`, are the program's own or valid for the call.
pub unsafe fn recvmmsg(
    fd: i32,
    vec: *mut libc::mmsghdr,
    vlen: usize,
    flags: i32,
    timeout: *mut libc::timespec,
) -> Result<usize, Errno> {
    // SAFETY: the caller vouches for the messages and the timeout.
    unsafe { syscall6(libc::SYS_recvmmsg, [fd as usize, vec as usize, vlen, flags as usize, timeout as usize, 0]) }
}

/// sendmmsg(2).
///
/// # Safety
/// As for [`recvmmsg`].
pub unsafe fn sendmmsg(fd: i32, vec: *mut libc::mmsghdr, vlen: usize, flags: i32) -> Result<usize, Errno> {
    // SAFETY: the caller vouches for the messages.
    unsafe { syscall6(libc::SYS_sendmmsg, [fd as usize, vec as usize, vlen, flags as usize, 0, 0]) }
}

/// The socket's pending error (SO_ERROR, which reading clears, as the kernel's own report does), if any.
pub fn take_error(fd: i32) -> Option<Errno> {
    match getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ERROR) {
        Ok(err) if err != 0 => Some(Errno(err)),
        _ => None,
    }
}
