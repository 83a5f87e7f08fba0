//! Name lookups for coroutines, and which of them need a helper thread.
//!
//! glibc's resolver talks to DNS servers with its own internal socket calls, which never reach the hooks,
//! so a lookup would block its worker for as long as the server takes: a helper thread makes it while the
//! coroutine parks (`offload::run_abandonable`), and errno and h_errno come back with the result.
//!
//! Natively a signal handler interrupts a lookup in the middle (in the resolver's `poll`), on the thread's
//! own stack, and the lookup goes on after it (glibc retries after EINTR); a handler may also leave the
//! lookup by `siglongjmp`; a lookup is a cancellation point (glibc acts on a request in the files it
//! opens and the resolver's socket calls, and in its wait for the server). So the helper never writes
//! through the caller's pointers: it makes the call on its own copies of every input and output (the node
//! and service names, the address, the caller's hostent, buffers and result words, the `getaddrinfo`
//! list, which is its own), and only the calling thread, back from the wait, copies the outputs to the
//! caller's memory, as the call returns. Meanwhile a handler runs on the thread's own stack and the thread
//! then waits again; one that leaves by `siglongjmp`, or a cancellation request, abandons the lookup,
//! whose copies (and `addrinfo` list) are freed when both the helper and the thread are done with them
//! (the thread keeps the record of a lookup it left until its next one or its end: see
//! `offload::run_abandonable`), and nothing is ever written into the abandoned frame. A buffer for a
//! reentrant lookup is copied in before and out after whole, at the caller's alignment (glibc pads inside
//! it according to its address), so the caller's buffer ends byte for byte as the native call leaves it,
//! pointers relocated into it.
//!
//! A numeric address with a numeric (or no) service is parsed by glibc on the spot — no NSS module, file
//! or DNS server is asked — so such calls (every `mysql_real_connect("127.0.0.1")` makes one) stay on the
//! coroutine instead of costing a thread switch, and are no cancellation point, as natively; likewise a
//! `getnameinfo` asked for a numeric host and service. The functions returning static storage
//! (gethostbyname...) share it process-wide natively too.

use super::offload::run_abandonable_keeping_errno;
use super::stats::Offload::Dns;
use super::worker;
use crate::real;
use core::ptr::{null, null_mut};
use std::ffi::{CStr, CString, c_char, c_int, c_void};

/// True when `getaddrinfo(node, service, hints)` is answered without any lookup.
///
/// # Safety
/// `node` and `service` are null or NUL-terminated; `hints` is null or valid.
pub unsafe fn answered_without_lookup(
    node: *const c_char,
    service: *const c_char,
    hints: *const libc::addrinfo,
) -> bool {
    // AI_CANONNAME asks for a reverse lookup of the address.
    // SAFETY: per the contract.
    if !hints.is_null() && unsafe { (*hints).ai_flags } & libc::AI_CANONNAME != 0 {
        return false;
    }
    // SAFETY: per the contract.
    let numeric_host = !node.is_null() && is_numeric_address(unsafe { CStr::from_ptr(node) }.to_bytes());
    let numeric_service = service.is_null() || {
        // SAFETY: a NUL-terminated string per the contract (checked non-null).
        unsafe { CStr::from_ptr(service) }.to_bytes().iter().all(u8::is_ascii_digit)
    };
    numeric_host && numeric_service
}

/// True when `getnameinfo` is answered without any lookup: numeric host (or none asked for) and numeric
/// service (or none); glibc then only formats the address.
fn name_info_without_lookup(host: *mut c_char, hostlen: u32, serv: *mut c_char, servlen: u32, flags: c_int) -> bool {
    let no_host = host.is_null() || hostlen == 0 || flags & libc::NI_NUMERICHOST != 0;
    let no_serv = serv.is_null() || servlen == 0 || flags & libc::NI_NUMERICSERV != 0;
    no_host && no_serv
}

/// A literal IPv4 or IPv6 address (no scope names: `fe80::1%eth0` asks the interface list).
fn is_numeric_address(host: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(host) else { return false };
    s.parse::<std::net::Ipv4Addr>().is_ok() || s.parse::<std::net::Ipv6Addr>().is_ok()
}

/// A lookup a helper makes for the calling coroutine, as a cancellation point: natively every lookup that
/// asks NSS acts on a pending request inside (opening `/etc/hosts`, the resolver's socket calls), and on
/// one made while it waits for a DNS server. See the module documentation.
fn lookup<R: Send + 'static>(call: impl FnOnce() -> R + Send + 'static) -> R {
    let point = super::cancel::Point::enter();
    match run_abandonable_keeping_errno(Dns, call) {
        Some(r) => point.leave(r),
        None => {
            point.leave(());
            unreachable!("the point acts on the request that abandoned the lookup")
        }
    }
}

/// True when the caller is a coroutine (the lookup goes to a helper); a plain thread makes the call itself.
fn offloaded() -> bool {
    worker::current_task().is_some()
}

/// A copy of a NUL-terminated string (None for null).
///
/// # Safety
/// `p` is null or NUL-terminated.
unsafe fn text(p: *const c_char) -> Option<CString> {
    // SAFETY: per the contract.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_owned())
}

fn text_ptr(t: &Option<CString>) -> *const c_char {
    t.as_ref().map_or(null(), |t| t.as_ptr())
}

/// A copy of `len` bytes at `p` (an address, read as glibc reads it: word-aligned); None for null.
///
/// # Safety
/// `p` is null or valid for `len` bytes.
unsafe fn words(p: *const c_void, len: usize) -> Option<Vec<u64>> {
    if p.is_null() {
        return None;
    }
    let mut v = vec![0u64; len.div_ceil(8)];
    // SAFETY: per the contract; `v` holds at least `len` bytes.
    unsafe { core::ptr::copy_nonoverlapping(p as *const u8, v.as_mut_ptr() as *mut u8, len) };
    Some(v)
}

/// A helper's copy of a caller's output buffer, at the same address modulo [`ALIGN`] (glibc aligns inside
/// a buffer by its address), holding what the caller's holds, to be copied back whole.
struct Buffer {
    store: Vec<u8>,
    start: usize,
    len: usize,
}

const ALIGN: usize = 64;

impl Buffer {
    /// # Safety
    /// `p` is null or valid for `len` bytes.
    unsafe fn copy_of(p: *const c_char, len: usize) -> Option<Buffer> {
        if p.is_null() {
            return None;
        }
        let mut store = vec![0u8; len + ALIGN];
        let start = (p as usize % ALIGN + ALIGN - store.as_ptr() as usize % ALIGN) % ALIGN;
        // SAFETY: per the contract; `store` has `len` bytes from `start`.
        unsafe { core::ptr::copy_nonoverlapping(p as *const u8, store.as_mut_ptr().add(start), len) };
        Some(Buffer { store, start, len })
    }

    fn ptr(&mut self) -> *mut c_char {
        // SAFETY: `start` < ALIGN <= the store's length.
        unsafe { self.store.as_mut_ptr().add(self.start) as *mut c_char }
    }

    /// Copies the buffer back to the caller's `p`.
    ///
    /// # Safety
    /// `p` is the buffer this is a copy of.
    unsafe fn copy_to(&mut self, p: *mut c_char) {
        let from = self.ptr();
        // SAFETY: per the contract, `p` holds `len` bytes, as the copy does from `from`.
        unsafe { core::ptr::copy_nonoverlapping(from as *const u8, p as *mut u8, self.len) };
    }
}

fn buffer_ptr(b: &mut Option<Buffer>) -> *mut c_char {
    b.as_mut().map_or(null_mut(), Buffer::ptr)
}

/// `getaddrinfo`'s outcome on the helper: the list is its own until handed to the caller, freed with the
/// outcome if it never is (an abandoned lookup).
struct AddrInfo {
    rc: c_int,
    list: *mut libc::addrinfo,
}

// SAFETY: the list is glibc's malloc'd memory, owned by whoever holds this.
unsafe impl Send for AddrInfo {}

impl Drop for AddrInfo {
    fn drop(&mut self) {
        if self.rc == 0 && !self.list.is_null() {
            // SAFETY: a list getaddrinfo made, handed to nobody.
            unsafe { libc::freeaddrinfo(self.list) };
        }
    }
}

/// The hints, copied (glibc reads only their numbers).
struct Hints(libc::addrinfo);

// SAFETY: plain values; their pointers (null per POSIX) are not followed.
unsafe impl Send for Hints {}

/// `getaddrinfo` for a coroutine.
///
/// # Safety
/// C contract of getaddrinfo.
pub unsafe fn getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const libc::addrinfo,
    res: *mut *mut libc::addrinfo,
) -> c_int {
    if !offloaded() {
        // SAFETY: forwarding.
        return unsafe { real::getaddrinfo(node, service, hints, res) };
    }
    // SAFETY: per the contract (strings or null, hints valid or null).
    let (node, service) = unsafe { (text(node), text(service)) };
    // SAFETY: as above.
    let hints = (!hints.is_null()).then(|| Hints(unsafe { *hints }));
    let mut out = lookup(move || {
        let mut out = AddrInfo { rc: 0, list: null_mut() };
        let h = hints.as_ref().map_or(null(), |h| &h.0 as *const libc::addrinfo);
        // SAFETY: the helper's own copies of the arguments, alive until the call returns.
        out.rc = unsafe { real::getaddrinfo(text_ptr(&node), text_ptr(&service), h, &mut out.list) };
        out
    });
    if out.rc == 0 {
        // glibc stores the list only on success.
        // SAFETY: the caller's result pointer, per the contract.
        unsafe { *res = core::mem::replace(&mut out.list, null_mut()) };
    }
    out.rc
}

/// `getnameinfo` for a coroutine (`host` and `serv`: the caller's buffers with their lengths).
///
/// # Safety
/// C contract of getnameinfo.
pub unsafe fn getnameinfo(
    sa: *const libc::sockaddr,
    salen: libc::socklen_t,
    (host, hostlen): (*mut c_char, libc::socklen_t),
    (serv, servlen): (*mut c_char, libc::socklen_t),
    flags: c_int,
) -> c_int {
    if !offloaded() || name_info_without_lookup(host, hostlen, serv, servlen, flags) {
        // SAFETY: forwarding.
        return unsafe { real::getnameinfo(sa, salen, host, hostlen, serv, servlen, flags) };
    }
    // SAFETY: per the contract, each pointer is null or valid for its length.
    let (addr, mut hbuf, mut sbuf) = unsafe {
        (
            words(sa as *const c_void, salen as usize),
            Buffer::copy_of(host, hostlen as usize),
            Buffer::copy_of(serv, servlen as usize),
        )
    };
    let (rc, mut hbuf, mut sbuf) = lookup(move || {
        let sa = addr.as_ref().map_or(null(), |a| a.as_ptr() as *const libc::sockaddr);
        let (h, s) = (buffer_ptr(&mut hbuf), buffer_ptr(&mut sbuf));
        // SAFETY: the helper's own copies of the arguments, alive until the call returns.
        let rc = unsafe { real::getnameinfo(sa, salen, h, hostlen, s, servlen, flags) };
        (rc, hbuf, sbuf)
    });
    // SAFETY: the copies of the caller's buffers, back to them.
    unsafe {
        if let Some(b) = hbuf.as_mut() {
            b.copy_to(host);
        }
        if let Some(b) = sbuf.as_mut() {
            b.copy_to(serv);
        }
    }
    rc
}

/// A non-reentrant lookup (`gethostbyname`...) for a coroutine: `call` gets the helper's copies of the
/// name and address and returns glibc's static hostent (as a word), shared process-wide natively too.
fn static_hostent(call: impl FnOnce() -> usize + Send + 'static) -> *mut libc::hostent {
    lookup(call) as *mut libc::hostent
}

/// `gethostbyname` for a coroutine.
///
/// # Safety
/// C contract of gethostbyname.
pub unsafe fn gethostbyname(name: *const c_char) -> *mut libc::hostent {
    if !offloaded() {
        // SAFETY: forwarding.
        return unsafe { real::gethostbyname(name) };
    }
    // SAFETY: per the contract.
    let name = unsafe { text(name) };
    // SAFETY: the helper's own copy of the name.
    static_hostent(move || unsafe { real::gethostbyname(text_ptr(&name)) } as usize)
}

/// `gethostbyname2` for a coroutine.
///
/// # Safety
/// C contract of gethostbyname2.
pub unsafe fn gethostbyname2(name: *const c_char, af: c_int) -> *mut libc::hostent {
    if !offloaded() {
        // SAFETY: forwarding.
        return unsafe { real::gethostbyname2(name, af) };
    }
    // SAFETY: per the contract.
    let name = unsafe { text(name) };
    // SAFETY: the helper's own copy of the name.
    static_hostent(move || unsafe { real::gethostbyname2(text_ptr(&name), af) } as usize)
}

/// `gethostbyaddr` for a coroutine.
///
/// # Safety
/// C contract of gethostbyaddr.
pub unsafe fn gethostbyaddr(addr: *const c_void, len: libc::socklen_t, af: c_int) -> *mut libc::hostent {
    if !offloaded() {
        // SAFETY: forwarding.
        return unsafe { real::gethostbyaddr(addr, len, af) };
    }
    // SAFETY: per the contract.
    let addr = unsafe { words(addr, len as usize) };
    static_hostent(move || {
        let a = addr.as_ref().map_or(null(), |a| a.as_ptr() as *const c_void);
        // SAFETY: the helper's own copy of the address.
        (unsafe { real::gethostbyaddr(a, len, af) }) as usize
    })
}

/// What a reentrant lookup (`gethostbyname_r`...) leaves on the helper: its own hostent, buffer, result
/// pointer and h_errno (each starting as the caller's), boxed so that the result pointer can be told to
/// be the helper's hostent.
struct HostentR {
    ret: libc::hostent,
    buf: Option<Buffer>,
    result: *mut libc::hostent,
    herr: c_int,
    rc: c_int,
}

// SAFETY: its pointers point into its own buffer, its own hostent or glibc's static data.
unsafe impl Send for HostentR {}

/// The caller's out-parameters of a reentrant lookup.
#[derive(Clone, Copy)]
pub struct HostentOut {
    pub ret: *mut libc::hostent,
    pub buf: *mut c_char,
    pub buflen: usize,
    pub result: *mut *mut libc::hostent,
    pub h_errnop: *mut c_int,
}

/// A reentrant lookup for a coroutine: `call` (on the helper) gets the helper's copies of the caller's
/// out-parameters, which go back to `out` relocated (see the module documentation).
///
/// # Safety
/// `out` follows the C contract of the reentrant lookups.
unsafe fn hostent_r<F>(out: HostentOut, call: F) -> c_int
where
    F: FnOnce(*mut libc::hostent, *mut c_char, usize, *mut *mut libc::hostent, *mut c_int) -> c_int + Send + 'static,
{
    // SAFETY: the caller's out-parameters, valid per the contract (the result words may be null, then not
    // followed).
    let h = unsafe {
        Box::new(HostentR {
            ret: *out.ret,
            buf: Buffer::copy_of(out.buf, out.buflen),
            result: if out.result.is_null() { null_mut() } else { *out.result },
            herr: if out.h_errnop.is_null() { 0 } else { *out.h_errnop },
            rc: 0,
        })
    };
    let (result_null, herr_null, buflen) = (out.result.is_null(), out.h_errnop.is_null(), out.buflen);
    let mut h = lookup(move || {
        let mut h = h;
        let buf = buffer_ptr(&mut h.buf);
        let result = if result_null { null_mut() } else { &mut h.result as *mut *mut libc::hostent };
        let herr = if herr_null { null_mut() } else { &mut h.herr as *mut c_int };
        h.rc = call(&mut h.ret, buf, buflen, result, herr);
        h
    });
    let own_ret = &h.ret as *const libc::hostent as *mut libc::hostent;
    let (from, to) = (buffer_ptr(&mut h.buf) as usize, out.buf as usize);
    let relocate = |p: usize| if p >= from && p < from + buflen { p - from + to } else { p };
    let relocate_list = |list: *mut *mut c_char| -> *mut *mut c_char {
        let l = relocate(list as usize);
        if l == list as usize {
            return list;
        }
        // The list is in the caller's buffer now: its entries, up to the null one, point into it too.
        let mut at = l;
        while at + 8 <= to + buflen {
            // SAFETY: inside the caller's buffer, just copied.
            let e = unsafe { (at as *const usize).read_unaligned() };
            if e == 0 {
                break;
            }
            // SAFETY: as above.
            unsafe { (at as *mut usize).write_unaligned(relocate(e)) };
            at += 8;
        }
        l as *mut *mut c_char
    };
    // SAFETY: the caller's out-parameters, per the contract.
    unsafe {
        if let Some(b) = h.buf.as_mut() {
            b.copy_to(out.buf);
        }
        let mut ret = h.ret;
        ret.h_name = relocate(ret.h_name as usize) as *mut c_char;
        ret.h_aliases = relocate_list(ret.h_aliases);
        ret.h_addr_list = relocate_list(ret.h_addr_list);
        *out.ret = ret;
        if !out.result.is_null() {
            *out.result = if h.result == own_ret { out.ret } else { h.result };
        }
        if !out.h_errnop.is_null() {
            *out.h_errnop = h.herr;
        }
    }
    h.rc
}

/// `gethostbyname_r` for a coroutine.
///
/// # Safety
/// C contract of gethostbyname_r.
pub unsafe fn gethostbyname_r(name: *const c_char, out: HostentOut) -> c_int {
    if !offloaded() {
        // SAFETY: forwarding.
        return unsafe { real::gethostbyname_r(name, out.ret, out.buf, out.buflen, out.result, out.h_errnop) };
    }
    // SAFETY: per the contract.
    let name = unsafe { text(name) };
    // SAFETY: per the contract; the helper's own copies.
    unsafe { hostent_r(out, move |r, b, l, res, e| real::gethostbyname_r(text_ptr(&name), r, b, l, res, e)) }
}

/// `gethostbyname2_r` for a coroutine.
///
/// # Safety
/// C contract of gethostbyname2_r.
pub unsafe fn gethostbyname2_r(name: *const c_char, af: c_int, out: HostentOut) -> c_int {
    if !offloaded() {
        // SAFETY: forwarding.
        return unsafe { real::gethostbyname2_r(name, af, out.ret, out.buf, out.buflen, out.result, out.h_errnop) };
    }
    // SAFETY: per the contract.
    let name = unsafe { text(name) };
    // SAFETY: per the contract; the helper's own copies.
    unsafe { hostent_r(out, move |r, b, l, res, e| real::gethostbyname2_r(text_ptr(&name), af, r, b, l, res, e)) }
}

/// `gethostbyaddr_r` for a coroutine.
///
/// # Safety
/// C contract of gethostbyaddr_r.
pub unsafe fn gethostbyaddr_r(addr: *const c_void, len: libc::socklen_t, af: c_int, out: HostentOut) -> c_int {
    if !offloaded() {
        // SAFETY: forwarding.
        return unsafe { real::gethostbyaddr_r(addr, len, af, out.ret, out.buf, out.buflen, out.result, out.h_errnop) };
    }
    // SAFETY: per the contract.
    let addr = unsafe { words(addr, len as usize) };
    // SAFETY: per the contract; the helper's own copies.
    unsafe {
        hostent_r(out, move |r, b, l, res, e| {
            let a = addr.as_ref().map_or(null(), |a| a.as_ptr() as *const c_void);
            real::gethostbyaddr_r(a, len, af, r, b, l, res, e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::is_numeric_address;

    #[test]
    fn numeric() {
        assert!(is_numeric_address(b"127.0.0.1"));
        assert!(is_numeric_address(b"::1"));
        assert!(is_numeric_address(b"2001:db8::7"));
        assert!(!is_numeric_address(b"localhost"));
        assert!(!is_numeric_address(b"fe80::1%lo"));
        assert!(!is_numeric_address(b"127.1"));
        assert!(!is_numeric_address(b""));
    }
}
