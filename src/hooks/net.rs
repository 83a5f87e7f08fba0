//! Socket calls. A coroutine's are `runtime::io::socket`'s and `runtime::io::mmsg`'s (they park it on the
//! netpoller); a plain thread's are the real calls. Creating ones tell the runtime of the new socket;
//! setsockopt tells it of the options it must know (SO_RCVTIMEO/SO_SNDTIMEO for the timed waits).

use super::io::ret;
use crate::real;
use crate::runtime::cancel;
use crate::runtime::io::{kind, mmsg, socket};
use crate::runtime::worker;
use std::ffi::{c_int, c_void};

coroutine_or_real! {
    recv(fd: c_int, buf: *mut c_void, len: usize, flags: c_int) -> isize
        => socket::recv(fd, buf as *mut u8, len, flags, (core::ptr::null_mut(), core::ptr::null_mut()));
    recvfrom(
        fd: c_int, buf: *mut c_void, len: usize, flags: c_int, addr: *mut libc::sockaddr, alen: *mut libc::socklen_t
    ) -> isize => socket::recv(fd, buf as *mut u8, len, flags, (addr, alen));
    recvmsg(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> isize => socket::recvmsg(fd, msg, flags);
    send(fd: c_int, buf: *const c_void, len: usize, flags: c_int) -> isize
        => socket::send(fd, buf as *const u8, len, flags, (core::ptr::null(), 0));
    sendto(
        fd: c_int, buf: *const c_void, len: usize, flags: c_int, addr: *const libc::sockaddr, alen: libc::socklen_t
    ) -> isize => socket::send(fd, buf as *const u8, len, flags, (addr, alen));
}

fortified! {
    __recv_chk(fd: c_int, buf: *mut c_void, len: usize, buflen: usize, flags: c_int) -> isize, if len <= buflen
        => recv(fd, buf, len, flags);
    __recvfrom_chk(
        fd: c_int, buf: *mut c_void, len: usize, buflen: usize, flags: c_int, addr: *mut libc::sockaddr,
        alen: *mut libc::socklen_t
    ) -> isize, if len <= buflen => recvfrom(fd, buf, len, flags, addr, alen);
}

/// # Safety
/// C contract of sendmsg.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const libc::msghdr, flags: c_int) -> isize {
    cancel::point(|| {
        if worker::current_task().is_none() {
            if crate::runtime::running() {
                socket::sending(msg);
            }
            // SAFETY: forwarding.
            return unsafe { real::sendmsg(fd, msg, flags) };
        }
        ret(socket::sendmsg(fd, msg, flags))
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
        if worker::current_task().is_some() {
            return ret(socket::accept(fd, addr, alen, flags)) as c_int;
        }
        // SAFETY: forwarding.
        let r = unsafe { real::accept4(fd, addr, alen, flags) };
        if r >= 0 && crate::runtime::running() {
            kind::socket_created(r);
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
        ret(socket::connect(fd, addr, alen)) as c_int
    })
}

/// # Safety
/// C contract of socket.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket(domain: c_int, ty: c_int, proto: c_int) -> c_int {
    // SAFETY: forwarding.
    let r = unsafe { real::socket(domain, ty, proto) };
    if r >= 0 && crate::runtime::running() {
        kind::socket_created(r);
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
        kind::socket_pair_created(unsafe { [*fds, *fds.add(1)] });
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
        socket::option_set(fd, level, name, val as *const u8, len as usize);
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
        if worker::current_task().is_none() {
            // SAFETY: forwarding.
            return unsafe { real::recvmmsg(fd, vec, vlen, flags, timeout) };
        }
        ret(mmsg::recvmmsg(fd, vec, vlen, flags, timeout)) as c_int
    })
}

/// # Safety
/// C contract of sendmmsg.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendmmsg(fd: c_int, vec: *mut libc::mmsghdr, vlen: libc::c_uint, flags: c_int) -> c_int {
    cancel::point(|| {
        if worker::current_task().is_none() {
            if crate::runtime::running() {
                mmsg::sending(vec, vlen);
            }
            // SAFETY: forwarding.
            return unsafe { real::sendmmsg(fd, vec, vlen, flags) };
        }
        ret(mmsg::sendmmsg(fd, vec, vlen, flags)) as c_int
    })
}
