//! Socket calls. Blocking ones are `runtime::socket`'s (they park the coroutine on the netpoller);
//! creating ones record the new fd; setsockopt keeps the program's SO_RCVTIMEO/SO_SNDTIMEO for the timed waits.

use super::io::{opened_pair, ret};
use crate::real;
use crate::runtime::cancel;
use crate::runtime::fd::{self, Kind};
use crate::runtime::io;
use crate::runtime::socket;
use crate::runtime::sys::syscall::Errno;
use crate::runtime::worker;
use std::ffi::{c_int, c_void};

unsafe extern "C" {
    fn __chk_fail() -> !;
}

/// # Safety
/// C contract of recv.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, len: usize, flags: c_int) -> isize {
    cancel::point(|| {
        if worker::current_task().is_none() {
            // SAFETY: forwarding.
            return unsafe { real::recv(fd, buf, len, flags) };
        }
        ret(socket::recv(fd, buf as *mut u8, len, flags, (core::ptr::null_mut(), core::ptr::null_mut())))
    })
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
    cancel::point(|| {
        if worker::current_task().is_none() {
            // SAFETY: forwarding.
            return unsafe { real::recvfrom(fd, buf, len, flags, addr, alen) };
        }
        ret(socket::recv(fd, buf as *mut u8, len, flags, (addr, alen)))
    })
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
    cancel::point(|| {
        if worker::current_task().is_none() || flags & libc::MSG_DONTWAIT != 0 {
            // SAFETY: forwarding.
            return unsafe { real::recvmsg(fd, msg, flags) };
        }
        ret(socket::recvmsg(fd, msg, flags))
    })
}

/// # Safety
/// C contract of send.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, len: usize, flags: c_int) -> isize {
    cancel::point(|| {
        if worker::current_task().is_none() {
            // SAFETY: forwarding.
            return unsafe { real::send(fd, buf, len, flags) };
        }
        ret(socket::send(fd, buf as *const u8, len, flags, (core::ptr::null(), 0)))
    })
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
    cancel::point(|| {
        if worker::current_task().is_none() {
            // SAFETY: forwarding.
            return unsafe { real::sendto(fd, buf, len, flags, addr, alen) };
        }
        ret(socket::send(fd, buf as *const u8, len, flags, (addr, alen)))
    })
}

/// # Safety
/// C contract of sendmsg.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const libc::msghdr, flags: c_int) -> isize {
    cancel::point(|| {
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
        ret(socket::sendmsg(fd, m, flags))
    })
}

/// # Safety
/// C contract of accept.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut libc::sockaddr, alen: *mut libc::socklen_t) -> c_int {
    cancel::point(|| {
        // SAFETY: same contract.
        unsafe { accept4(fd, addr, alen, 0) }
    })
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
    cancel::point(|| {
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
    })
}

/// # Safety
/// C contract of connect.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const libc::sockaddr, alen: libc::socklen_t) -> c_int {
    cancel::point(|| {
        if worker::current_task().is_none() {
            // SAFETY: forwarding.
            return unsafe { real::connect(fd, addr, alen) };
        }
        ret(io::connect(fd, addr, alen)) as c_int
    })
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
    if r == 0 && crate::runtime::running() {
        io::socket_option_set(fd, level, name, val as *const u8, len as usize);
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
    cancel::point(|| {
        let t = if timeout.is_null() { Ok(None) } else { crate::runtime::sys::usercopy::read(timeout).map(Some) };
        let valid_timeout = matches!(t, Ok(None))
            || matches!(t, Ok(Some(ts)) if ts.tv_sec >= 0 && (0..1_000_000_000).contains(&ts.tv_nsec));
        if worker::current_task().is_none() || flags & libc::MSG_DONTWAIT != 0 || vlen == 0 || !valid_timeout {
            // SAFETY: forwarding (a bad timeout or vector gets the kernel's own EFAULT/EINVAL).
            return unsafe { real::recvmmsg(fd, vec, vlen, flags, timeout) };
        }
        let now = crate::runtime::sys::time::monotonic_ns();
        let deadline =
            t.ok().flatten().map(|ts| now.saturating_add(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64));
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
    })
}

/// # Safety
/// C contract of sendmmsg.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendmmsg(fd: c_int, vec: *mut libc::mmsghdr, vlen: libc::c_uint, flags: c_int) -> c_int {
    cancel::point(|| {
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
    })
}
