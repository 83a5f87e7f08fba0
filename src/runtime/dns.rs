//! Which name lookups need a helper thread. A numeric address with a numeric (or no) service is parsed by
//! glibc on the spot — no NSS module, file or DNS server is asked — so such calls (every
//! `mysql_real_connect("127.0.0.1")` makes one) stay on the coroutine instead of costing a thread switch.

use std::ffi::{CStr, c_char};

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

/// A literal IPv4 or IPv6 address (no scope names: `fe80::1%eth0` asks the interface list).
fn is_numeric_address(host: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(host) else { return false };
    s.parse::<std::net::Ipv4Addr>().is_ok() || s.parse::<std::net::Ipv6Addr>().is_ok()
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
