//! Socket calls. Blocking ones park the coroutine on the netpoller (see `runtime::io`); creating ones
//! record the new fd; setsockopt keeps the program's SO_RCVTIMEO/SO_SNDTIMEO for the timed waits.

use super::io::{opened_pair, ret};
use crate::real;
use crate::runtime::fd::{self, Dir, Kind};
use crate::runtime::io;
use crate::runtime::parking_lot::Interrupt;
use crate::runtime::sys::syscall::{Errno, syscall6};
use crate::runtime::worker;
use std::ffi::{c_int, c_void};

unsafe extern "C" {
    fn __chk_fail() -> !;
}

fn recv_once(
    fd: c_int,
    buf: *mut u8,
    len: usize,
    flags: c_int,
    addr: *mut libc::sockaddr,
    alen: *mut libc::socklen_t,
) -> io::IoResult {
    // SAFETY: the program's own arguments; the kernel validates them.
    unsafe {
        syscall6(
            libc::SYS_recvfrom,
            fd as usize,
            buf as usize,
            len,
            (flags | libc::MSG_DONTWAIT) as usize,
            addr as usize,
            alen as usize,
        )
    }
}

/// recvfrom, cooperatively; MSG_WAITALL gathers until the buffer is full, the peer shuts down, or an error.
fn recv_common(
    fd: c_int,
    buf: *mut u8,
    len: usize,
    flags: c_int,
    addr: *mut libc::sockaddr,
    alen: *mut libc::socklen_t,
) -> isize {
    if flags & libc::MSG_DONTWAIT != 0 {
        return ret(recv_once(fd, buf, len, flags, addr, alen));
    }
    if flags & libc::MSG_WAITALL == 0 || len == 0 {
        return ret(io::blocking_restarting(fd, Dir::Read, |fd, kind| match kind {
            Kind::Socket => recv_once(fd, buf, len, flags, addr, alen),
            // Not a socket: let the kernel answer (ENOTSOCK) with a real call.
            _ => recv_once(fd, buf, len, flags & !libc::MSG_DONTWAIT, addr, alen),
        }));
    }
    let mut got = 0usize;
    let mut target = io::Target::new(fd);
    loop {
        let r = io::blocking_on(&mut target, Dir::Read, Interrupt::UnlessRestart, |fd, _| {
            recv_once(fd, buf.wrapping_add(got), len - got, flags & !libc::MSG_WAITALL, addr, alen)
        });
        match r {
            Ok(0) => return got as isize,
            Ok(n) => {
                got += n;
                if got >= len {
                    return got as isize;
                }
            }
            Err(io::RESTART) if got == 0 => continue,
            Err(_) if got > 0 => return got as isize,
            Err(e) => return ret(Err(e)),
        }
    }
}

/// # Safety
/// C contract of recv.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, len: usize, flags: c_int) -> isize {
    if worker::current_task().is_none() {
        // SAFETY: forwarding.
        return unsafe { real::recv(fd, buf, len, flags) };
    }
    recv_common(fd, buf as *mut u8, len, flags, core::ptr::null_mut(), core::ptr::null_mut())
}

/// # Safety
/// C contract of recvfrom.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    len: usize,
    flags: c_int,
    addr: *mut libc::sockaddr,
    alen: *mut libc::socklen_t,
) -> isize {
    if worker::current_task().is_none() {
        // SAFETY: forwarding.
        return unsafe { real::recvfrom(fd, buf, len, flags, addr, alen) };
    }
    recv_common(fd, buf as *mut u8, len, flags, addr, alen)
}

/// # Safety
/// C contract of __recv_chk.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __recv_chk(fd: c_int, buf: *mut c_void, len: usize, buflen: usize, flags: c_int) -> isize {
    if len > buflen {
        // SAFETY: glibc's own fortify failure report.
        unsafe { __chk_fail() }
    }
    // SAFETY: as for recv.
    unsafe { recv(fd, buf, len, flags) }
}

/// # Safety
/// C contract of __recvfrom_chk.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __recvfrom_chk(
    fd: c_int,
    buf: *mut c_void,
    len: usize,
    buflen: usize,
    flags: c_int,
    addr: *mut libc::sockaddr,
    alen: *mut libc::socklen_t,
) -> isize {
    if len > buflen {
        // SAFETY: glibc's own fortify failure report.
        unsafe { __chk_fail() }
    }
    // SAFETY: as for recvfrom.
    unsafe { recvfrom(fd, buf, len, flags, addr, alen) }
}

/// # Safety
/// C contract of recvmsg.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> isize {
    if worker::current_task().is_none() || flags & libc::MSG_DONTWAIT != 0 {
        // SAFETY: forwarding.
        return unsafe { real::recvmsg(fd, msg, flags) };
    }
    if flags & libc::MSG_WAITALL != 0 {
        return recvmsg_waitall(fd, msg, flags);
    }
    ret(io::blocking_restarting(fd, Dir::Read, |fd, _| {
        // SAFETY: the program's msghdr; the kernel validates it.
        unsafe {
            crate::runtime::sys::syscall::syscall3(
                libc::SYS_recvmsg,
                fd as usize,
                msg as usize,
                (flags | libc::MSG_DONTWAIT) as usize,
            )
        }
    }))
}

/// recvmsg with MSG_WAITALL: receives into what is left of the iovecs until they are full, the peer shuts
/// down, or an error or signal (returning what arrived). Name, control data and flags come from the first
/// part, as the kernel's single call would report them.
fn recvmsg_waitall(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> isize {
    let Ok(m) = crate::runtime::sys::usercopy::read(msg) else {
        return ret(Err(Errno(libc::EFAULT)));
    };
    let Ok(vecs) = (0..m.msg_iovlen.min(io::IOV_MAX))
        .map(|i| crate::runtime::sys::usercopy::read(m.msg_iov.wrapping_add(i)))
        .collect::<Result<Vec<_>, _>>()
    else {
        return ret(Err(Errno(libc::EFAULT)));
    };
    let total: usize = vecs.iter().map(|v| v.iov_len).sum();
    let mut got = 0usize;
    let mut target = io::Target::new(fd);
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
        let r = io::blocking_on(&mut target, Dir::Read, Interrupt::UnlessRestart, |fd, _| {
            // SAFETY: a msghdr built from the program's, pointing at our copy of its iovecs.
            unsafe {
                crate::runtime::sys::syscall::syscall3(
                    libc::SYS_recvmsg,
                    fd as usize,
                    &mut part as *mut libc::msghdr as usize,
                    ((flags & !libc::MSG_WAITALL) | libc::MSG_DONTWAIT) as usize,
                )
            }
        });
        match r {
            Ok(n) => {
                if got == 0 {
                    let mut back = m;
                    back.msg_namelen = part.msg_namelen;
                    back.msg_controllen = part.msg_controllen;
                    back.msg_flags = part.msg_flags;
                    let _ = crate::runtime::sys::usercopy::write(msg, back);
                }
                got += n;
                if n == 0 || got >= total {
                    return got as isize;
                }
            }
            Err(io::RESTART) if got == 0 => continue,
            Err(_) if got > 0 => return got as isize,
            Err(e) => return ret(Err(e)),
        }
    }
}

fn send_once(
    fd: c_int,
    buf: *const u8,
    len: usize,
    flags: c_int,
    addr: *const libc::sockaddr,
    alen: libc::socklen_t,
) -> io::IoResult {
    // SAFETY: the program's own arguments; the kernel validates them.
    unsafe {
        syscall6(
            libc::SYS_sendto,
            fd as usize,
            buf as usize,
            len,
            (flags | libc::MSG_DONTWAIT) as usize,
            addr as usize,
            alen as usize,
        )
    }
}

fn send_common(
    fd: c_int,
    buf: *const u8,
    len: usize,
    flags: c_int,
    addr: *const libc::sockaddr,
    alen: libc::socklen_t,
) -> isize {
    if flags & libc::MSG_DONTWAIT != 0 {
        return ret(send_once(fd, buf, len, flags, addr, alen));
    }
    ret(io::write_all(fd, len, |fd, done, _| send_once(fd, buf.wrapping_add(done), len - done, flags, addr, alen)))
}

/// # Safety
/// C contract of send.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, len: usize, flags: c_int) -> isize {
    if worker::current_task().is_none() {
        // SAFETY: forwarding.
        return unsafe { real::send(fd, buf, len, flags) };
    }
    send_common(fd, buf as *const u8, len, flags, core::ptr::null(), 0)
}

/// # Safety
/// C contract of sendto.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    len: usize,
    flags: c_int,
    addr: *const libc::sockaddr,
    alen: libc::socklen_t,
) -> isize {
    if worker::current_task().is_none() {
        // SAFETY: forwarding.
        return unsafe { real::sendto(fd, buf, len, flags, addr, alen) };
    }
    send_common(fd, buf as *const u8, len, flags, addr, alen)
}

/// # Safety
/// C contract of sendmsg.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const libc::msghdr, flags: c_int) -> isize {
    // Read once: for the descriptors it passes (SCM_RIGHTS) and for the cooperative send below.
    let copy = if crate::runtime::running() { crate::runtime::sys::usercopy::read(msg).ok() } else { None };
    if let Some(m) = &copy {
        fd::sending(m);
    }
    if worker::current_task().is_none() || flags & libc::MSG_DONTWAIT != 0 {
        // SAFETY: forwarding.
        return unsafe { real::sendmsg(fd, msg, flags) };
    }
    let Some(m) = copy else {
        return ret(Err(Errno(libc::EFAULT)));
    };
    if m.msg_iovlen > io::IOV_MAX {
        // SAFETY: forwarding (the kernel's EMSGSIZE).
        return unsafe { real::sendmsg(fd, msg, flags) };
    }
    let Ok(vecs) = (0..m.msg_iovlen)
        .map(|i| crate::runtime::sys::usercopy::read(m.msg_iov.wrapping_add(i)))
        .collect::<Result<Vec<_>, _>>()
    else {
        return ret(Err(Errno(libc::EFAULT)));
    };
    let total: usize = vecs.iter().map(|v| v.iov_len).sum();
    let mut first = true;
    ret(io::write_all(fd, total, |fd, done, _| {
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
        unsafe {
            crate::runtime::sys::syscall::syscall3(
                libc::SYS_sendmsg,
                fd as usize,
                &part as *const libc::msghdr as usize,
                (flags | libc::MSG_DONTWAIT) as usize,
            )
        }
    }))
}

/// # Safety
/// C contract of accept.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut libc::sockaddr, alen: *mut libc::socklen_t) -> c_int {
    // SAFETY: same contract.
    unsafe { accept4(fd, addr, alen, 0) }
}

/// # Safety
/// C contract of accept4.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut libc::sockaddr,
    alen: *mut libc::socklen_t,
    flags: c_int,
) -> c_int {
    let r = if worker::current_task().is_none() {
        // SAFETY: forwarding.
        unsafe { real::accept4(fd, addr, alen, flags) }
    } else {
        ret(io::accept(fd, addr, alen, flags)) as c_int
    };
    if r >= 0 && crate::runtime::running() {
        fd::created(r, Kind::Socket);
    }
    r
}

/// # Safety
/// C contract of connect.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const libc::sockaddr, alen: libc::socklen_t) -> c_int {
    if worker::current_task().is_none() {
        // SAFETY: forwarding.
        return unsafe { real::connect(fd, addr, alen) };
    }
    ret(io::connect(fd, addr, alen)) as c_int
}

/// # Safety
/// C contract of socket.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket(domain: c_int, ty: c_int, proto: c_int) -> c_int {
    // SAFETY: forwarding.
    let r = unsafe { real::socket(domain, ty, proto) };
    if r >= 0 && crate::runtime::running() {
        fd::created(r, Kind::Socket);
    }
    r
}

/// # Safety
/// C contract of socketpair.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socketpair(domain: c_int, ty: c_int, proto: c_int, fds: *mut c_int) -> c_int {
    // SAFETY: forwarding.
    let r = unsafe { real::socketpair(domain, ty, proto, fds) };
    if r == 0 && crate::runtime::running() {
        // SAFETY: the kernel filled both.
        unsafe { opened_pair(fds, Kind::Socket) };
    }
    r
}

/// # Safety
/// C contract of setsockopt.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: libc::socklen_t,
) -> c_int {
    // SAFETY: forwarding.
    let r = unsafe { real::setsockopt(fd, level, name, val, len) };
    if r == 0
        && crate::runtime::running()
        && level == libc::SOL_SOCKET
        && (name == libc::SO_RCVTIMEO || name == libc::SO_SNDTIMEO)
        && len as usize >= size_of::<libc::timeval>()
    {
        let dir = if name == libc::SO_RCVTIMEO { Dir::Read } else { Dir::Write };
        // SAFETY: the kernel just read a timeval from there.
        io::set_timeout(fd, dir, unsafe { &*(val as *const libc::timeval) });
    }
    r
}

/// # Safety
/// C contract of recvmmsg.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvmmsg(
    fd: c_int,
    vec: *mut libc::mmsghdr,
    vlen: libc::c_uint,
    flags: c_int,
    timeout: *mut libc::timespec,
) -> c_int {
    let t = if timeout.is_null() { Ok(None) } else { crate::runtime::sys::usercopy::read(timeout).map(Some) };
    let valid_timeout = matches!(t, Ok(None))
        || matches!(t, Ok(Some(ts)) if ts.tv_sec >= 0 && (0..1_000_000_000).contains(&ts.tv_nsec));
    if worker::current_task().is_none() || flags & libc::MSG_DONTWAIT != 0 || vlen == 0 || !valid_timeout {
        // SAFETY: forwarding (a bad timeout or vector gets the kernel's own EFAULT/EINVAL).
        return unsafe { real::recvmmsg(fd, vec, vlen, flags, timeout) };
    }
    let now = crate::runtime::sys::time::monotonic_ns();
    let deadline = t.ok().flatten().map(|ts| now.saturating_add(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64));
    let r = crate::runtime::mmsg::recv_many(fd, vec, vlen.min(1024), flags, deadline);
    // The kernel writes the time left back into the timeout once messages arrived.
    if let (Ok(n), Some(d)) = (r, deadline)
        && n > 0
    {
        let left = d.saturating_sub(crate::runtime::sys::time::monotonic_ns());
        let ts = libc::timespec { tv_sec: (left / 1_000_000_000) as i64, tv_nsec: (left % 1_000_000_000) as i64 };
        if crate::runtime::sys::usercopy::write(timeout, ts).is_err() {
            return ret(Err(Errno(libc::EFAULT))) as c_int;
        }
    }
    ret(r) as c_int
}

/// # Safety
/// C contract of sendmmsg.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendmmsg(fd: c_int, vec: *mut libc::mmsghdr, vlen: libc::c_uint, flags: c_int) -> c_int {
    if crate::runtime::running() {
        for i in 0..vlen.min(1024) as usize {
            match crate::runtime::sys::usercopy::read(vec.wrapping_add(i)) {
                Ok(m) => fd::sending(&m.msg_hdr),
                Err(_) => break,
            }
        }
    }
    if worker::current_task().is_none() || flags & libc::MSG_DONTWAIT != 0 || vlen == 0 {
        // SAFETY: forwarding.
        return unsafe { real::sendmmsg(fd, vec, vlen, flags) };
    }
    ret(crate::runtime::mmsg::send_many(fd, vec, vlen.min(1024), flags)) as c_int
}
