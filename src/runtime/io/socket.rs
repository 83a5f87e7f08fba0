//! Socket calls made cooperative: each try is the call with MSG_DONTWAIT (which leaves the description's
//! O_NONBLOCK alone), and `io::blocking` parks between tries. MSG_WAITALL and stream sends go on until
//! all is moved, as the kernel's blocking calls do. A call the program makes with MSG_DONTWAIT is made
//! once, as it is. accept is gated (listening sockets have no per-call non-blocking form), connect is
//! started non-blocking and waited for. The socket options the runtime must know of (timeouts, an
//! upper-layer protocol) are noted when the program sets them.
// The pointers these functions take are the program's own (buffers, addresses, message headers), which
// Rust code never dereferences: they go to the kernel, which checks them (EFAULT), as the program's own
// call would have.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use super::super::park::OnSignal;
use super::super::sys::socket;
use super::super::sys::syscall::Errno;
use super::super::sys::{self, time, usercopy};
use super::attempt::gated;
use super::blocking::{self, Target, blocking_restarting};
use super::fd::{self, Dir, Kind};
use super::{IOV_MAX, IoResult, RESTART, advance};
use core::sync::atomic::Ordering;

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
        return blocking::read_restarting(fd, plain_len, |fd, kind| match kind {
            Kind::Socket => recv_once(fd, buf, len, flags),
            // Not a socket: let the kernel answer (ENOTSOCK) with a real call.
            // SAFETY: as for `recv_once`.
            _ => unsafe { socket::recvfrom(fd, buf, len, flags, addr, alen) },
        });
    }
    let mut got = 0usize;
    let mut target = Target::new(fd);
    loop {
        let r = blocking::blocking_on(&mut target, Dir::Read, OnSignal::FailUnlessRestart, |fd, _| {
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
            Err(RESTART) if got == 0 => continue,
            Err(_) if got > 0 => return Ok(got),
            Err(e) => return Err(e),
        }
    }
}

/// recvmsg for a coroutine.
pub fn recvmsg(fd: i32, msg: *mut libc::msghdr, flags: i32) -> IoResult {
    if flags & libc::MSG_DONTWAIT != 0 {
        // SAFETY: the program's own call; the kernel validates the message.
        return unsafe { socket::recvmsg(fd, msg, flags) };
    }
    if flags & libc::MSG_WAITALL != 0 {
        return recvmsg_waitall(fd, msg, flags);
    }
    blocking_restarting(fd, Dir::Read, |fd, _| {
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
    let Ok(vecs) = (0..m.msg_iovlen.min(IOV_MAX))
        .map(|i| usercopy::read(m.msg_iov.wrapping_add(i)))
        .collect::<Result<Vec<_>, _>>()
    else {
        return Err(Errno(libc::EFAULT));
    };
    let total: usize = vecs.iter().map(|v| v.iov_len).sum();
    let mut got = 0usize;
    let mut target = Target::new(fd);
    loop {
        let rest = advance(&vecs, got);
        let mut part = m;
        part.msg_iov = rest.as_ptr() as *mut libc::iovec;
        part.msg_iovlen = rest.len();
        if got > 0 {
            part.msg_name = core::ptr::null_mut();
            part.msg_namelen = 0;
            part.msg_control = core::ptr::null_mut();
            part.msg_controllen = 0;
        }
        let r = blocking::blocking_on(&mut target, Dir::Read, OnSignal::FailUnlessRestart, |fd, _| {
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
            Err(RESTART) if got == 0 => continue,
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
    blocking::write_all(fd, len, |fd, done, _| send_once(fd, buf.wrapping_add(done), len - done))
}

/// A message a plain thread is about to send (a coroutine's [`sendmsg`] does this itself): descriptions
/// it passes with SCM_RIGHTS may be shared from now on.
pub fn sending(msg: *const libc::msghdr) {
    if let Ok(m) = usercopy::read(msg) {
        fd::sending(&m);
    }
}

/// sendmsg for a coroutine. The program's message header is read once: for the descriptions it passes
/// and for the tries.
pub fn sendmsg(fd: i32, msg: *const libc::msghdr, flags: i32) -> IoResult {
    let copy = usercopy::read(msg);
    if let Ok(m) = &copy {
        fd::sending(m);
    }
    // The program's own non-blocking call, and one the kernel refuses (EMSGSIZE), as made.
    // SAFETY: the program's own call; the kernel validates the message.
    let as_made = || unsafe { socket::sendmsg(fd, msg, flags) };
    if flags & libc::MSG_DONTWAIT != 0 {
        return as_made();
    }
    let Ok(m) = copy else { return Err(Errno(libc::EFAULT)) };
    if m.msg_iovlen > IOV_MAX {
        return as_made();
    }
    sendmsg_all(fd, m, flags)
}

/// sendmsg of `m` (a copy of the program's message header, whose iovecs are read here) until all is sent.
fn sendmsg_all(fd: i32, m: libc::msghdr, flags: i32) -> IoResult {
    let Ok(vecs) = (0..m.msg_iovlen).map(|i| usercopy::read(m.msg_iov.wrapping_add(i))).collect::<Result<Vec<_>, _>>()
    else {
        return Err(Errno(libc::EFAULT));
    };
    let total: usize = vecs.iter().map(|v| v.iov_len).sum();
    let mut first = true;
    blocking::write_all(fd, total, |fd, done, _| {
        let rest = advance(&vecs, done);
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

/// accept4 for a coroutine: listening sockets have no per-call non-blocking form, so it is gated. The
/// new socket is recorded (see [`super::kind::socket_created`]).
pub fn accept(fd: i32, addr: *mut libc::sockaddr, len: *mut libc::socklen_t, flags: i32) -> IoResult {
    let r = blocking_restarting(fd, Dir::Read, |fd, kind| {
        // SAFETY: the program's own arguments; the kernel validates them.
        let call = || unsafe { sys::socket::accept4(fd, addr, len, flags) };
        // Not a socket: the kernel answers (ENOTSOCK) at once.
        if kind == Kind::Socket { gated(fd, Dir::Read, call) } else { call() }
    });
    if let Ok(new) = r {
        super::kind::socket_created(new as i32);
    }
    r
}

/// connect on a blocking socket: started non-blocking (the socket is new and not yet shared, so its
/// O_NONBLOCK is set only for this call), then the coroutine parks until the socket is writable and reads
/// the result, as the kernel's blocking connect reports it.
pub fn connect(fd: i32, addr: *const libc::sockaddr, len: libc::socklen_t) -> IoResult {
    let flags = match sys::fd::fcntl(fd, libc::F_GETFL, 0) {
        Ok(f) => f as i32,
        Err(e) => return Err(e),
    };
    if flags & libc::O_NONBLOCK != 0 {
        // SAFETY: connect with the program's arguments; the kernel validates them.
        return unsafe { sys::socket::connect(fd, addr, len) };
    }
    let mut pause = 50_000u64;
    loop {
        let _ = sys::fd::fcntl(fd, libc::F_SETFL, (flags | libc::O_NONBLOCK) as usize);
        // SAFETY: as above.
        let r = unsafe { sys::socket::connect(fd, addr, len) };
        let _ = sys::fd::fcntl(fd, libc::F_SETFL, flags as usize);
        match r {
            Err(Errno(libc::EINPROGRESS)) => break,
            // A Unix socket whose listener's backlog is full: a blocking connect waits for room, which
            // nothing reports, so try again a little later.
            Err(Errno(libc::EAGAIN)) => {
                super::super::park::sleep_until(time::monotonic_ns() + pause);
                pause = (pause * 2).min(5_000_000);
            }
            other => return other,
        }
    }
    // Wait until writable, then read the outcome.
    blocking_restarting(fd, Dir::Write, |fd, _| {
        if !sys::poll::ready_now(fd, libc::POLLOUT) {
            return Err(Errno(libc::EAGAIN));
        }
        if let Some(err) = sys::socket::take_error(fd) {
            return Err(err);
        }
        // A second connect moves the socket from "connecting" to "connected", as the blocking call's own
        // wait does; otherwise the program's next connect would answer 0 instead of EISCONN.
        // SAFETY: as above.
        let _ = unsafe { sys::socket::connect(fd, addr, len) };
        Ok(0)
    })
}

/// The program set socket option `level`/`name` on `fd` (setsockopt succeeded): what the runtime must
/// know of it. `val` is the option's value, `len` bytes the kernel read.
pub fn option_set(fd: i32, level: i32, name: i32, val: *const u8, len: usize) {
    match (level, name) {
        (libc::SOL_SOCKET, libc::SO_RCVTIMEO | libc::SO_SNDTIMEO) if len >= size_of::<libc::timeval>() => {
            let dir = if name == libc::SO_RCVTIMEO { Dir::Read } else { Dir::Write };
            // SAFETY: the kernel just read a timeval from there (the program's own memory).
            set_timeout(fd, dir, unsafe { &*(val as *const libc::timeval) });
        }
        (libc::SOL_TCP, libc::TCP_ULP) => {
            if let Some(e) = fd::entry(fd) {
                e.upper_layer_attached();
            }
        }
        _ => {}
    }
}

/// The program set a socket timeout (setsockopt): remember it.
pub fn set_timeout(fd: i32, dir: Dir, tv: &libc::timeval) {
    if let Some(e) = fd::entry(fd) {
        let ns =
            (tv.tv_sec.max(0) as u64).saturating_mul(1_000_000_000).saturating_add(tv.tv_usec.max(0) as u64 * 1000);
        e.timeout(dir).store(ns, Ordering::Relaxed);
    }
}
