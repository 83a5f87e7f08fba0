//! Name resolution: each lookup goes to `runtime::dns`, which has a helper thread make it on copies of
//! the caller's arguments while the coroutine parks (a plain thread makes it itself).

use crate::real;
use crate::runtime::dns::{self, HostentOut};
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
    if unsafe { dns::answered_without_lookup(node, service, hints) } {
        // SAFETY: forwarding.
        return unsafe { real::getaddrinfo(node, service, hints, res) };
    }
    // SAFETY: forwarding.
    unsafe { dns::getaddrinfo(node, service, hints, res) }
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
    // SAFETY: forwarding.
    unsafe { dns::getnameinfo(sa, salen, (host, hostlen), (serv, servlen), flags) }
}

/// # Safety
/// C contract of gethostbyname.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gethostbyname(name: *const c_char) -> *mut libc::hostent {
    // SAFETY: forwarding.
    unsafe { dns::gethostbyname(name) }
}

/// # Safety
/// C contract of gethostbyname2.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gethostbyname2(name: *const c_char, af: c_int) -> *mut libc::hostent {
    // SAFETY: forwarding.
    unsafe { dns::gethostbyname2(name, af) }
}

/// # Safety
/// C contract of gethostbyaddr.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gethostbyaddr(addr: *const c_void, len: libc::socklen_t, af: c_int) -> *mut libc::hostent {
    // SAFETY: forwarding.
    unsafe { dns::gethostbyaddr(addr, len, af) }
}

/// The reentrant lookups: their own arguments, then the same out-parameters (the caller's hostent, its
/// buffer, where the result pointer and h_errno go), which `runtime::dns` gets as a [`HostentOut`].
macro_rules! hostent_r {
    ($($name:ident($($arg:ident: $t:ty),*);)*) => {$(
        /// # Safety
        #[doc = concat!("C contract of ", stringify!($name), ".")]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(
            $($arg: $t,)*
            ret: *mut libc::hostent,
            buf: *mut c_char,
            buflen: usize,
            result: *mut *mut libc::hostent,
            h_errnop: *mut c_int,
        ) -> c_int {
            // SAFETY: forwarding.
            unsafe { dns::$name($($arg,)* HostentOut { ret, buf, buflen, result, h_errnop }) }
        }
    )*};
}

hostent_r! {
    gethostbyname_r(name: *const c_char);
    gethostbyname2_r(name: *const c_char, af: c_int);
    gethostbyaddr_r(addr: *const c_void, len: libc::socklen_t, af: c_int);
}
