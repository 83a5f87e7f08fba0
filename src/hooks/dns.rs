//! Name resolution: glibc's resolver talks to DNS servers with its own internal socket calls, which never
//! reach the hooks, so a lookup would block its worker for as long as the server takes. A coroutine has a
//! helper thread make the call while it parks (`runtime::offload`); errno and h_errno come back with the
//! result. The functions returning static storage (gethostbyname...) share it process-wide natively too.

use crate::real;
use crate::runtime::offload::run_keeping_errno;
use crate::runtime::stats::Offload::Dns;
use std::ffi::{c_char, c_int, c_void};

/// # Safety
/// C contract of getaddrinfo.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const libc::addrinfo,
    res: *mut *mut libc::addrinfo,
) -> c_int {
    // SAFETY: the caller passes NUL-terminated strings or null, and a valid or null hints pointer.
    if unsafe { crate::runtime::dns::answered_without_lookup(node, service, hints) } {
        // SAFETY: forwarding.
        return unsafe { real::getaddrinfo(node, service, hints, res) };
    }
    let (node, service, hints, res) = (node as usize, service as usize, hints as usize, res as usize);
    // SAFETY: forwarding; the caller's pointers stay valid while it waits for the helper.
    run_keeping_errno(Dns, move || unsafe { real::getaddrinfo(node as _, service as _, hints as _, res as _) })
}

/// # Safety
/// C contract of getnameinfo.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn getnameinfo(
    sa: *const libc::sockaddr,
    salen: libc::socklen_t,
    host: *mut c_char,
    hostlen: libc::socklen_t,
    serv: *mut c_char,
    servlen: libc::socklen_t,
    flags: c_int,
) -> c_int {
    let (sa, host, serv) = (sa as usize, host as usize, serv as usize);
    // SAFETY: as above.
    run_keeping_errno(Dns, move || unsafe {
        real::getnameinfo(sa as _, salen, host as _, hostlen, serv as _, servlen, flags)
    })
}

/// # Safety
/// C contract of gethostbyname.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gethostbyname(name: *const c_char) -> *mut libc::hostent {
    let name = name as usize;
    // SAFETY: as above.
    run_keeping_errno(Dns, move || unsafe { real::gethostbyname(name as _) as usize }) as *mut libc::hostent
}

/// # Safety
/// C contract of gethostbyname2.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gethostbyname2(name: *const c_char, af: c_int) -> *mut libc::hostent {
    let name = name as usize;
    // SAFETY: as above.
    run_keeping_errno(Dns, move || unsafe { real::gethostbyname2(name as _, af) as usize }) as *mut libc::hostent
}

/// # Safety
/// C contract of gethostbyaddr.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gethostbyaddr(addr: *const c_void, len: libc::socklen_t, af: c_int) -> *mut libc::hostent {
    let addr = addr as usize;
    // SAFETY: as above.
    run_keeping_errno(Dns, move || unsafe { real::gethostbyaddr(addr as _, len, af) as usize }) as *mut libc::hostent
}

/// # Safety
/// C contract of gethostbyname_r.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gethostbyname_r(
    name: *const c_char,
    ret: *mut libc::hostent,
    buf: *mut c_char,
    buflen: usize,
    result: *mut *mut libc::hostent,
    h_errnop: *mut c_int,
) -> c_int {
    let (name, ret, buf, result, h) = (name as usize, ret as usize, buf as usize, result as usize, h_errnop as usize);
    // SAFETY: as above.
    run_keeping_errno(Dns, move || unsafe {
        real::gethostbyname_r(name as _, ret as _, buf as _, buflen, result as _, h as _)
    })
}

/// # Safety
/// C contract of gethostbyname2_r.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gethostbyname2_r(
    name: *const c_char,
    af: c_int,
    ret: *mut libc::hostent,
    buf: *mut c_char,
    buflen: usize,
    result: *mut *mut libc::hostent,
    h_errnop: *mut c_int,
) -> c_int {
    let (name, ret, buf, result, h) = (name as usize, ret as usize, buf as usize, result as usize, h_errnop as usize);
    // SAFETY: as above.
    run_keeping_errno(Dns, move || unsafe {
        real::gethostbyname2_r(name as _, af, ret as _, buf as _, buflen, result as _, h as _)
    })
}

/// # Safety
/// C contract of gethostbyaddr_r.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gethostbyaddr_r(
    addr: *const c_void,
    len: libc::socklen_t,
    af: c_int,
    ret: *mut libc::hostent,
    buf: *mut c_char,
    buflen: usize,
    result: *mut *mut libc::hostent,
    h_errnop: *mut c_int,
) -> c_int {
    let (addr, ret, buf, result, h) = (addr as usize, ret as usize, buf as usize, result as usize, h_errnop as usize);
    // SAFETY: as above.
    run_keeping_errno(Dns, move || unsafe {
        real::gethostbyaddr_r(addr as _, len, af, ret as _, buf as _, buflen, result as _, h as _)
    })
}
