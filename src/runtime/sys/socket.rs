//! Sockets: sending, receiving, accepting, connecting and socket options, through raw system calls.
//!
//! The pointers these take are the program's own (its buffers, addresses, message headers) or locals; the
//! kernel validates them (EFAULT), so the only duty left to a caller is not to hand the kernel memory that
//! Rust code holds borrowed meanwhile.

use super::syscall::{Errno, syscall3, syscall4, syscall6};

/// The system calls whose arguments go to the kernel as they are: each entry is the call's C prototype,
/// its function returns the kernel's result or error (the call written once, in `@call`, by its number of
/// arguments).
macro_rules! raw_calls {
    ($( $(#[doc = $doc:literal])* $name:ident($($arg:ident: $t:ty),*) = $nr:ident; )*) => {$(
        $(#[doc = $doc])*
        pub unsafe fn $name($($arg: $t),*) -> Result<usize, Errno> {
            // SAFETY: the caller vouches for the pointers (the function's Safety section).
            unsafe { raw_calls!(@call libc::$nr; $($arg as usize),*) }
        }
    )*};
    (@call $nr:expr; $a:expr, $b:expr, $c:expr) => { syscall3($nr, $a, $b, $c) };
    (@call $nr:expr; $a:expr, $b:expr, $c:expr, $d:expr) => { syscall4($nr, $a, $b, $c, $d) };
    (@call $nr:expr; $a:expr, $b:expr, $c:expr, $d:expr, $e:expr) => { syscall6($nr, [$a, $b, $c, $d, $e, 0]) };
    (@call $nr:expr; $a:expr, $b:expr, $c:expr, $d:expr, $e:expr, $f:expr) => {
        syscall6($nr, [$a, $b, $c, $d, $e, $f])
    };
}

raw_calls! {
    /// recvfrom(2).
    ///
    /// # Safety
    /// `buf`, `addr` and `alen` are the program's own arguments or valid for the call.
    recvfrom(fd: i32, buf: *mut u8, len: usize, flags: i32, addr: *mut libc::sockaddr, alen: *mut libc::socklen_t)
        = SYS_recvfrom;
    /// sendto(2).
    ///
    /// # Safety
    /// As for [`recvfrom`].
    sendto(fd: i32, buf: *const u8, len: usize, flags: i32, addr: *const libc::sockaddr, alen: libc::socklen_t)
        = SYS_sendto;
    /// recvmsg(2).
    ///
    /// # Safety
    /// `msg` and what it points at are the program's own or valid for the call.
    recvmsg(fd: i32, msg: *mut libc::msghdr, flags: i32) = SYS_recvmsg;
    /// sendmsg(2).
    ///
    /// # Safety
    /// As for [`recvmsg`].
    sendmsg(fd: i32, msg: *const libc::msghdr, flags: i32) = SYS_sendmsg;
    /// accept4(2).
    ///
    /// # Safety
    /// `addr` and `alen` are the program's own or valid for the call.
    accept4(fd: i32, addr: *mut libc::sockaddr, alen: *mut libc::socklen_t, flags: i32) = SYS_accept4;
    /// connect(2).
    ///
    /// # Safety
    /// `addr` is the program's own or valid for the call.
    connect(fd: i32, addr: *const libc::sockaddr, alen: libc::socklen_t) = SYS_connect;
    /// recvmmsg(2) (`timeout` null: none).
    ///
    /// # Safety
    /// `vec` (vlen entries) and what it points at, and `timeout`, are the program's own or valid for the call.
    recvmmsg(fd: i32, vec: *mut libc::mmsghdr, vlen: usize, flags: i32, timeout: *mut libc::timespec) = SYS_recvmmsg;
    /// sendmmsg(2).
    ///
    /// # Safety
    /// As for [`recvmmsg`].
    sendmmsg(fd: i32, vec: *mut libc::mmsghdr, vlen: usize, flags: i32) = SYS_sendmmsg;
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

/// The socket's pending error (SO_ERROR, which reading clears, as the kernel's own report does), if any.
pub fn take_error(fd: i32) -> Option<Errno> {
    match getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ERROR) {
        Ok(err) if err != 0 => Some(Errno(err)),
        _ => None,
    }
}
