//! recvmmsg and sendmmsg on blocking sockets, made of non-blocking kernel calls and parks that end where
//! the kernel's blocking call would return:
//!
//! - recvmmsg waits for each of `vlen` messages in turn — unless MSG_WAITFORONE (return after the first)
//!   or the timeout passed, which, as in the kernel, counts from the call's start but is only looked at
//!   after a message arrived (so a call whose next message never comes waits for ever, natively too).
//!   An error or signal after some messages returns their count.
//! - sendmmsg sends every message in full: a stream socket can take part of one without blocking; the
//!   rest of it is sent before the next, and its `msg_len` counts all of it, as the blocking call reports.

// The pointers these functions take are the program's own (message vectors, timeouts), which Rust code
// never dereferences but through `usercopy`: they go to the kernel, which checks them (EFAULT), as the
// program's own call would have.
#![allow(clippy::not_unsafe_ptr_arg_deref)]
use super::super::sys::socket;
use super::super::sys::syscall::Errno;
use super::super::sys::{time, usercopy};
use super::blocking::{self, Target};
use super::fd::{self, Dir};
use super::{IOV_MAX, IoResult, advance};

/// The most messages one call takes (UIO_MAXIOV): the kernel caps `vlen` there.
const VLEN_MAX: u32 = 1024;

/// recvmmsg(fd, vec, vlen, flags, timeout) for a coroutine. The program's own non-blocking call, an empty
/// vector and a timeout the kernel refuses (EFAULT, EINVAL) are made as they are.
pub fn recvmmsg(fd: i32, vec: *mut libc::mmsghdr, vlen: u32, flags: i32, timeout: *mut libc::timespec) -> IoResult {
    let t = if timeout.is_null() { Ok(None) } else { usercopy::read(timeout).map(Some) };
    let valid_timeout = matches!(t, Ok(None))
        || matches!(t, Ok(Some(ts)) if ts.tv_sec >= 0 && (0..1_000_000_000).contains(&ts.tv_nsec));
    if flags & libc::MSG_DONTWAIT != 0 || vlen == 0 || !valid_timeout {
        // SAFETY: the program's own call; the kernel validates its arguments.
        return unsafe { socket::recvmmsg(fd, vec, vlen as usize, flags, timeout) };
    }
    let now = time::monotonic_ns();
    let deadline = t.ok().flatten().map(|ts| now.saturating_add(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64));
    let r = recv_many(fd, vec, vlen.min(VLEN_MAX), flags, deadline);
    // The kernel writes the time left back into the timeout once messages arrived.
    if let (Ok(n), Some(d)) = (r, deadline)
        && n > 0
    {
        let left = d.saturating_sub(time::monotonic_ns());
        let ts = libc::timespec { tv_sec: (left / 1_000_000_000) as i64, tv_nsec: (left % 1_000_000_000) as i64 };
        if usercopy::write(timeout, ts).is_err() {
            return Err(Errno(libc::EFAULT));
        }
    }
    r
}

/// Messages about to be sent (by a coroutine or a plain thread): descriptions they pass with SCM_RIGHTS
/// may be shared from now on.
pub fn sending(vec: *const libc::mmsghdr, vlen: u32) {
    for i in 0..vlen.min(VLEN_MAX) as usize {
        match usercopy::read(vec.wrapping_add(i)) {
            Ok(m) => fd::sending(&m.msg_hdr),
            Err(_) => break,
        }
    }
}

/// sendmmsg(fd, vec, vlen, flags) for a coroutine. The program's own non-blocking call and an empty
/// vector are made as they are.
pub fn sendmmsg(fd: i32, vec: *mut libc::mmsghdr, vlen: u32, flags: i32) -> IoResult {
    sending(vec, vlen);
    if flags & libc::MSG_DONTWAIT != 0 || vlen == 0 {
        // SAFETY: the program's own call; the kernel validates its arguments.
        return unsafe { socket::sendmmsg(fd, vec, vlen as usize, flags) };
    }
    send_many(fd, vec, vlen.min(VLEN_MAX), flags)
}

/// recvmmsg(fd, vec, vlen, flags, timeout) for a coroutine. `deadline` is the call's start plus its
/// timeout (monotonic ns), if it has one.
fn recv_many(fd: i32, vec: *mut libc::mmsghdr, vlen: u32, flags: i32, deadline: Option<u64>) -> IoResult {
    let mut got = 0usize;
    let mut target = Target::new(fd);
    loop {
        let rest = vec.wrapping_add(got);
        let left = vlen as usize - got;
        // SAFETY: the program's mmsghdr array and flags; the kernel validates them.
        let try_more =
            |fd: i32| unsafe { socket::recvmmsg(fd, rest, left, flags | libc::MSG_DONTWAIT, core::ptr::null_mut()) };
        // Every message, the first and the rest, is waited for without a time limit, as in the kernel.
        let r = blocking::blocking_on_restarting(&mut target, Dir::Read, |fd, _| try_more(fd));
        match r {
            Ok(n) => got += n,
            Err(_) if got > 0 => return Ok(got),
            Err(e) => return Err(e),
        }
        let expired = deadline.is_some_and(|d| time::monotonic_ns() >= d);
        if got >= vlen as usize || flags & libc::MSG_WAITFORONE != 0 || expired {
            return Ok(got);
        }
    }
}

/// sendmmsg(fd, vec, vlen, flags) for a coroutine.
fn send_many(fd: i32, vec: *mut libc::mmsghdr, vlen: u32, flags: i32) -> IoResult {
    let mut sent = 0usize;
    let mut target = Target::new(fd);
    while sent < vlen as usize {
        let rest = vec.wrapping_add(sent);
        let left = vlen as usize - sent;
        let r = blocking::blocking_on_restarting(&mut target, Dir::Write, |fd, _| {
            // SAFETY: the program's mmsghdr array; the kernel validates it.
            unsafe { socket::sendmmsg(fd, rest, left, flags | libc::MSG_DONTWAIT) }
        });
        let n = match r {
            Ok(n) => n,
            Err(_) if sent > 0 => return Ok(sent),
            Err(e) => return Err(e),
        };
        // The last message taken may be partial (stream sockets): finish it as the blocking call would.
        // Part of it went out, so it counts either way; a signal or error while finishing ends the call
        // there, with msg_len saying how much went, as the kernel's blocking sendmmsg reports it.
        sent += n;
        if !finish_partial(target.fd, vec.wrapping_add(sent - 1), flags) {
            return Ok(sent);
        }
    }
    Ok(sent)
}

/// Sends what the kernel left of message `m` and sets its msg_len to what went in all. True when all of
/// it went.
fn finish_partial(fd: i32, m: *mut libc::mmsghdr, flags: i32) -> bool {
    // The kernel just wrote msg_len there, so these reads succeed unless another thread unmapped it.
    let Ok(mm) = usercopy::read(m) else { return false };
    let Ok(vecs) = (0..mm.msg_hdr.msg_iovlen.min(IOV_MAX))
        .map(|i| usercopy::read(mm.msg_hdr.msg_iov.wrapping_add(i)))
        .collect::<Result<Vec<_>, _>>()
    else {
        return false;
    };
    let total: usize = vecs.iter().map(|v| v.iov_len).sum();
    let done = mm.msg_len as usize;
    if done >= total {
        return true;
    }
    let r = blocking::write_all(fd, total - done, |fd, more, _| {
        let rest = advance(&vecs, done + more);
        // The name and ancillary data went with the first part; the rest is plain stream data.
        // SAFETY: an all-zero msghdr is valid.
        let mut part: libc::msghdr = unsafe { core::mem::zeroed() };
        part.msg_iov = rest.as_ptr() as *mut libc::iovec;
        part.msg_iovlen = rest.len();
        // SAFETY: a local msghdr over the program's buffers.
        unsafe { socket::sendmsg(fd, &part, flags | libc::MSG_DONTWAIT) }
    });
    let more = r.unwrap_or(0);
    let mut updated = mm;
    updated.msg_len = (done + more) as u32;
    usercopy::write(m, updated).is_ok() && more == total - done
}
