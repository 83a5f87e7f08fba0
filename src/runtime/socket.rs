//! Socket calls made cooperative: each try is the call with MSG_DONTWAIT (which leaves the description's
//! O_NONBLOCK alone), and `io::blocking` parks between tries. MSG_WAITALL and stream sends go on until
//! all is moved, as the kernel's blocking calls do.
// The pointers these functions take are the program's own (buffers, addresses, message headers), which
// Rust code never dereferences: they go to the kernel, which checks them (EFAULT), as the program's own
// call would have.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use super::fd::{Dir, Kind};
use super::io::{self, IoResult, Target};
use super::park::OnSignal;
use super::sys::socket;
use super::sys::syscall::Errno;
use super::sys::usercopy;

/// recvfrom for a coroutine; MSG_WAITALL gathers until the buffer is full, the peer shuts down, or an
/// error.
/// `from` is where the sender's address goes (recvfrom's last two arguments; null for recv).
pub fn recv(
    fd: i32,
    buf: *mut u8,
    len: usize,
    flags: i32,
    from: (*mut libc::sockaddr, *mut libc::socklen_t),
) -> IoResult {
    let (addr, alen) = from;
    // SAFETY: one try with the program's own arguments, which the kernel validates.
    let recv_once =
        |fd, buf, len, flags| unsafe { socket::recvfrom(fd, buf, len, flags | libc::MSG_DONTWAIT, addr, alen) };
    if flags & libc::MSG_DONTWAIT != 0 {
        return recv_once(fd, buf, len, flags);
    }
    if flags & libc::MSG_WAITALL == 0 || len == 0 {
        // A recv without flags consumes what it returns, as read() does (MSG_PEEK, MSG_OOB... do not).
        let plain_len = if flags == 0 { len } else { 0 };
        return io::read_restarting(fd, plain_len, |fd, kind| match kind {
            Kind::Socket => recv_once(fd, buf, len, flags),
            // Not a socket: let the kernel answer (ENOTSOCK) with a real call.
            // SAFETY: as for `recv_once`.
            _ => unsafe { socket::recvfrom(fd, buf, len, flags, addr, alen) },
        });
    }
    let mut got = 0usize;
    let mut target = Target::new(fd);
    loop {
        let r = io::blocking_on(&mut target, Dir::Read, OnSignal::FailUnlessRestart, |fd, _| {
            recv_once(fd, buf.wrapping_add(got), len - got, flags & !libc::MSG_WAITALL)
        });
        match r {
            Ok(0) => return Ok(got),
            Ok(n) => {
                got += n;
                if got >= len {
                    return Ok(got);
                }
            }
            Err(io::RESTART) if got == 0 => continue,
            Err(_) if got > 0 => return Ok(got),
            Err(e) => return Err(e),
        }
    }
}

/// recvmsg for a coroutine (not MSG_DONTWAIT: the caller makes that call itself).
pub fn recvmsg(fd: i32, msg: *mut libc::msghdr, flags: i32) -> IoResult {
    if flags & libc::MSG_WAITALL != 0 {
        return recvmsg_waitall(fd, msg, flags);
    }
    io::blocking_restarting(fd, Dir::Read, |fd, _| {
        // SAFETY: the program's msghdr; the kernel validates it.
        unsafe { socket::recvmsg(fd, msg, flags | libc::MSG_DONTWAIT) }
    })
}

/// recvmsg with MSG_WAITALL: receives into what is left of the iovecs until they are full, the peer shuts
/// down, or an error or signal (returning what arrived). Name, control data and flags come from the first
/// part, as the kernel's single call would report them.
fn recvmsg_waitall(fd: i32, msg: *mut libc::msghdr, flags: i32) -> IoResult {
    let Ok(m) = usercopy::read(msg) else {
        return Err(Errno(libc::EFAULT));
    };
    let Ok(vecs) = (0..m.msg_iovlen.min(io::IOV_MAX))
        .map(|i| usercopy::read(m.msg_iov.wrapping_add(i)))
        .collect::<Result<Vec<_>, _>>()
    else {
        return Err(Errno(libc::EFAULT));
    };
    let total: usize = vecs.iter().map(|v| v.iov_len).sum();
    let mut got = 0usize;
    let mut target = Target::new(fd);
    loop {
        let rest = io::advance(&vecs, got);
        let mut part = m;
        part.msg_iov = rest.as_ptr() as *mut libc::iovec;
        part.msg_iovlen = rest.len();
        if got > 0 {
            part.msg_name = core::ptr::null_mut();
            part.msg_namelen = 0;
            part.msg_control = core::ptr::null_mut();
            part.msg_controllen = 0;
        }
        let r = io::blocking_on(&mut target, Dir::Read, OnSignal::FailUnlessRestart, |fd, _| {
            // SAFETY: a msghdr built from the program's, pointing at our copy of its iovecs.
            unsafe { socket::recvmsg(fd, &mut part, (flags & !libc::MSG_WAITALL) | libc::MSG_DONTWAIT) }
        });
        match r {
            Ok(n) => {
                if got == 0 {
                    let mut back = m;
                    back.msg_namelen = part.msg_namelen;
                    back.msg_controllen = part.msg_controllen;
                    back.msg_flags = part.msg_flags;
                    let _ = usercopy::write(msg, back);
                }
                got += n;
                if n == 0 || got >= total {
                    return Ok(got);
                }
            }
            Err(io::RESTART) if got == 0 => continue,
            Err(_) if got > 0 => return Ok(got),
            Err(e) => return Err(e),
        }
    }
}

/// sendto for a coroutine: on a stream, all of it (or an error or signal after part of it).
/// `to` is sendto's address (null and 0 for send).
pub fn send(fd: i32, buf: *const u8, len: usize, flags: i32, to: (*const libc::sockaddr, libc::socklen_t)) -> IoResult {
    let (addr, alen) = to;
    // SAFETY: one try with the program's own arguments, which the kernel validates.
    let send_once = |fd, buf, len| unsafe { socket::sendto(fd, buf, len, flags | libc::MSG_DONTWAIT, addr, alen) };
    if flags & libc::MSG_DONTWAIT != 0 {
        return send_once(fd, buf, len);
    }
    io::write_all(fd, len, |fd, done, _| send_once(fd, buf.wrapping_add(done), len - done))
}

/// sendmsg for a coroutine (not MSG_DONTWAIT) of `m`, the caller's copy of the program's message
/// header, whose iovecs are read here.
pub fn sendmsg(fd: i32, m: libc::msghdr, flags: i32) -> IoResult {
    let Ok(vecs) = (0..m.msg_iovlen).map(|i| usercopy::read(m.msg_iov.wrapping_add(i))).collect::<Result<Vec<_>, _>>()
    else {
        return Err(Errno(libc::EFAULT));
    };
    let total: usize = vecs.iter().map(|v| v.iov_len).sum();
    let mut first = true;
    io::write_all(fd, total, |fd, done, _| {
        let rest = io::advance(&vecs, done);
        let mut part = m;
        part.msg_iov = rest.as_ptr() as *mut libc::iovec;
        part.msg_iovlen = rest.len();
        // Ancillary data (file descriptors, credentials) goes with the first part only.
        if !first {
            part.msg_control = core::ptr::null_mut();
            part.msg_controllen = 0;
        }
        first = false;
        // SAFETY: a msghdr built from the program's, pointing at our copy of its iovecs.
        unsafe { socket::sendmsg(fd, &part, flags | libc::MSG_DONTWAIT) }
    })
}
