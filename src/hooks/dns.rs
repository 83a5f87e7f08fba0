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

/// The resolver calls below made on a helper thread: every argument crosses to it as a plain word (the
/// caller's pointers are not `Send`, but stay valid while it waits for the helper) and goes back to its
/// own type in the real call; a pointer result comes back the same way. The reentrant lookups all end in
/// the same out-parameters (the caller's hostent, its buffer, where the result pointer and h_errno go):
/// `; hostent_r` stands for them.
macro_rules! offloaded {
    ($name:ident($($arg:ident: $t:ty),*; hostent_r) -> c_int; $($rest:tt)*) => {
        offloaded! {
            $name(
                $($arg: $t,)*
                ret: *mut libc::hostent,
                buf: *mut c_char,
                buflen: usize,
                result: *mut *mut libc::hostent,
                h_errnop: *mut c_int
            ) -> c_int;
            $($rest)*
        }
    };
    ($name:ident($($arg:ident: $t:ty),*) -> $ret:ty $(as $word:ty)?; $($rest:tt)*) => {
        /// # Safety
        #[doc = concat!("C contract of ", stringify!($name), ".")]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($($arg: $t),*) -> $ret {
            $( let $arg = $arg as usize; )*
            // SAFETY: forwarding; the caller's pointers stay valid while it waits for the helper.
            run_keeping_errno(Dns, move || unsafe { real::$name($($arg as _),*) $(as $word)? }) as $ret
        }
        offloaded! { $($rest)* }
    };
    () => {};
}

offloaded! {
    getnameinfo(
        sa: *const libc::sockaddr,
        salen: libc::socklen_t,
        host: *mut c_char,
        hostlen: libc::socklen_t,
        serv: *mut c_char,
        servlen: libc::socklen_t,
        flags: c_int
    ) -> c_int;
    gethostbyname(name: *const c_char) -> *mut libc::hostent as usize;
    gethostbyname2(name: *const c_char, af: c_int) -> *mut libc::hostent as usize;
    gethostbyaddr(addr: *const c_void, len: libc::socklen_t, af: c_int) -> *mut libc::hostent as usize;
    gethostbyname_r(name: *const c_char; hostent_r) -> c_int;
    gethostbyname2_r(name: *const c_char, af: c_int; hostent_r) -> c_int;
    gethostbyaddr_r(addr: *const c_void, len: libc::socklen_t, af: c_int; hostent_r) -> c_int;
}
