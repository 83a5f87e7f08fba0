//! Blocking fd calls made cooperative. A call is tried without blocking (see `attempt`); on EAGAIN the
//! coroutine parks on the fd's readiness sequence until the netpoller reports a change, its socket
//! timeout passes (EAGAIN, as the kernel reports SO_RCVTIMEO), or a handled signal interrupts it (EINTR
//! unless SA_RESTART). If the program closes the number meanwhile, the call goes on with a hidden
//! duplicate of the same object, as the kernel's call keeps its own reference. A program's own
//! non-blocking fds never park.

use super::super::park::{self, OnSignal, Wait, WaitReason};
use super::super::parking_lot::Parked;
use super::super::sys::syscall::Errno;
use super::super::sys::{self, time};
use super::closing;
use super::fd::{self, Dir, FdEntry, Kind};
use super::kind::kind_of;
use super::{IoResult, RESTART};
use core::sync::atomic::Ordering;

/// The fd a cooperative call works on: the program's number, or, once the program closed or replaced that
/// number under the waiting call, a hidden duplicate of the same object (see `closing::closing`), which the
/// call uses until it returns.
pub struct Target {
    pub fd: i32,
    hidden: bool,
}

impl Target {
    pub fn new(fd: i32) -> Target {
        Target { fd, hidden: false }
    }

    fn move_to(&mut self, hidden: i32) {
        if self.hidden {
            closing::release_hidden(self.fd);
        }
        self.fd = hidden;
        self.hidden = true;
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if self.hidden {
            closing::release_hidden(self.fd);
        }
    }
}

/// Runs one blocking call on `fd` cooperatively. `attempt(fd, kind)` makes one try on the fd it is given
/// that must not block for kinds Socket, NoWait and Pollable (Blocking: the real call). `on_signal` tells
/// what a handled signal does to the wait.
pub fn blocking(fd: i32, dir: Dir, on_signal: OnSignal, attempt: impl FnMut(i32, Kind) -> IoResult) -> IoResult {
    blocking_on(&mut Target::new(fd), dir, on_signal, attempt)
}

/// [`blocking`] on a target that lives across several calls (a write that goes on until all is written).
pub fn blocking_on(
    t: &mut Target,
    dir: Dir,
    on_signal: OnSignal,
    attempt: impl FnMut(i32, Kind) -> IoResult,
) -> IoResult {
    blocking_on_read_of(t, dir, on_signal, 0, attempt)
}

/// [`blocking_on`]; `read_len` is nonzero for a plain read of that many bytes (read(), recv without
/// flags), which consumes what it returns: a short one on a TCP socket empties the receive queue, and the
/// next such read parks without a try that could only fail until the netpoller has seen the socket again
/// (see `FdEntry::drained_since`). Never for a program's own non-blocking fd, whose read must be tried.
fn blocking_on_read_of(
    t: &mut Target,
    dir: Dir,
    on_signal: OnSignal,
    read_len: usize,
    mut attempt: impl FnMut(i32, Kind) -> IoResult,
) -> IoResult {
    let Some(mut e) = fd::entry(t.fd) else { return attempt(t.fd, Kind::Blocking) };
    let mut kind = kind_of(t.fd, e);
    if matches!(kind, Kind::Blocking | Kind::File | Kind::Direct) {
        return attempt(t.fd, kind);
    }
    let mut generation = e.generation.load(Ordering::Acquire);
    let mut deadline: Option<Option<u64>> = None;
    let mut parked = false;
    // The entry whose `waiters` counts this call (from its first EAGAIN on), so a close knows to keep
    // the object for it.
    let mut counted: Option<&'static FdEntry> = None;
    let result = loop {
        let seq = e.seq(dir).load(Ordering::Acquire);
        // Only before the first park: after a wake-up the sequence has moved on anyway.
        let skip = read_len != 0
            && !parked
            && kind == Kind::Socket
            && e.drained_since(t.fd, seq)
            && !fd::program_nonblocking(t.fd, e);
        let r = if skip { Err(Errno(libc::EAGAIN)) } else { attempt(t.fd, kind) };
        match r {
            Ok(n) if read_len != 0 && kind == Kind::Socket => {
                e.read_returned(seq, read_len, n);
                break Ok(n);
            }
            Err(Errno(libc::EAGAIN)) => {}
            // A call woken by its peer's close reports the socket's pending error (ECONNRESET when
            // data was left unread), as the kernel's in-flight call would, before the EPIPE of a new one.
            Err(Errno(libc::EPIPE)) if parked && kind == Kind::Socket => {
                break Err(sys::socket::take_error(t.fd).unwrap_or(Errno(libc::EPIPE)));
            }
            // The number names another kind of object than we thought (closed and reused unseen).
            Err(Errno(libc::ENOTSOCK)) if kind == Kind::Socket => {
                e.set_kind(Kind::Unknown);
                kind = kind_of(t.fd, e);
                continue;
            }
            // No per-call non-blocking form for this object (a FIFO, a write to an eventfd).
            Err(Errno(libc::EOPNOTSUPP | libc::EINVAL)) if kind == Kind::NoWait => {
                e.set_kind(Kind::Pollable);
                kind = Kind::Pollable;
                continue;
            }
            r => break r,
        }
        if !skip && fd::program_nonblocking(t.fd, e) {
            // The program's own non-blocking description: its real call cannot block, and it answers as
            // natively where the gate's poll says otherwise (a FIFO that has had no writer since it was
            // opened reads end of file, but polls as not readable).
            if kind == Kind::Pollable {
                break attempt(t.fd, Kind::Blocking);
            }
            break Err(Errno(libc::EAGAIN));
        }
        // The first wait for room on this object: mark it and try once more (see `FdEntry::ready`).
        if dir == Dir::Write && e.note_write_wait() {
            continue;
        }
        if counted.is_none() {
            e.waiters.fetch_add(1, Ordering::AcqRel);
            counted = Some(e);
        }
        if fd::register(t.fd, e).is_err() {
            e.set_kind(Kind::Blocking);
            break attempt(t.fd, Kind::Blocking);
        }
        let d = *deadline.get_or_insert_with(|| match e.socket_timeout_ns(t.fd, dir) {
            0 => None,
            t => Some(time::monotonic_ns().saturating_add(t)),
        });
        let seqp = e.seq(dir);
        // SeqCst: see `FdEntry::wake_side` (a lot waiter's validation).
        let unchanged = || seqp.load(Ordering::SeqCst) == seq && e.generation.load(Ordering::Acquire) == generation;
        // A call with a socket timeout is never restarted after a signal (man 7 signal): `park` knows.
        parked = true;
        let reason = if dir == Dir::Read { WaitReason::FdRead } else { WaitReason::FdWrite };
        let wait = Wait::new(reason, t.fd as usize, on_signal).until(d);
        // In the side's slot if it is free (the common case: one reader per socket), else in the lot.
        let parked = match park::park_in_slot(e.slot(dir), unchanged, wait) {
            Some(p) => p,
            None => e.park_in_lot(dir, unchanged, wait),
        };
        let moved_to = match parked {
            Parked::TimedOut => break Err(Errno(libc::EAGAIN)),
            Parked::Interrupted => break Err(interrupted()),
            // The program closed the number: go on with the hidden duplicate the close handed over.
            Parked::Unparked(token) if token != 0 => Some(token as i32 - 1),
            _ if e.generation.load(Ordering::Acquire) != generation => match closing::adopt_hidden(t.fd, generation) {
                Some(h) => Some(h),
                None => break Err(Errno(libc::EBADF)),
            },
            _ => None,
        };
        if let Some(h) = moved_to {
            let Some(he) = fd::entry(h) else { break Err(Errno(libc::EBADF)) };
            t.move_to(h);
            if let Some(c) = counted.replace(he) {
                c.waiters.fetch_sub(1, Ordering::AcqRel);
            }
            he.waiters.fetch_add(1, Ordering::AcqRel);
            e = he;
            generation = e.generation.load(Ordering::Acquire);
        }
    };
    if let Some(c) = counted {
        c.waiters.fetch_sub(1, Ordering::AcqRel);
    }
    result
}

/// EINTR, or RESTART when the signal's handler has SA_RESTART and the call is restartable.
fn interrupted() -> Errno {
    match super::super::worker::current_task() {
        Some(t) if t.interrupt_restarts.load(Ordering::Relaxed) => RESTART,
        _ => Errno(libc::EINTR),
    }
}

/// [`blocking`] for calls that make no partial progress: a restart simply retries.
pub fn blocking_restarting(fd: i32, dir: Dir, attempt: impl FnMut(i32, Kind) -> IoResult) -> IoResult {
    blocking_on_restarting(&mut Target::new(fd), dir, attempt)
}

/// [`blocking_restarting`] for a plain read of `len` bytes (read(), recv without flags; 0: any other
/// read): see [`blocking_on_read_of`].
pub fn read_restarting(fd: i32, len: usize, mut attempt: impl FnMut(i32, Kind) -> IoResult) -> IoResult {
    let mut t = Target::new(fd);
    loop {
        match blocking_on_read_of(&mut t, Dir::Read, OnSignal::FailUnlessRestart, len, &mut attempt) {
            Err(RESTART) => continue,
            r => return r,
        }
    }
}

/// [`blocking_restarting`] on a target that lives across several calls.
pub fn blocking_on_restarting(t: &mut Target, dir: Dir, mut attempt: impl FnMut(i32, Kind) -> IoResult) -> IoResult {
    loop {
        match blocking_on(t, dir, OnSignal::FailUnlessRestart, &mut attempt) {
            Err(RESTART) => continue,
            r => return r,
        }
    }
}

/// A blocking write on a stream returns only when all was written (or on an error or signal after some
/// was: then the count so far), as the kernel's does.
pub fn write_all(fd: i32, len: usize, mut attempt: impl FnMut(i32, usize, Kind) -> IoResult) -> IoResult {
    let mut done = 0usize;
    if let Some(e) = fd::entry(fd) {
        match kind_of(fd, e) {
            // Files and other objects epoll cannot watch: one real call, whose count is the kernel's (a
            // short count at ENOSPC or RLIMIT_FSIZE must not become a second call raising SIGXFSZ).
            k @ (Kind::File | Kind::Blocking | Kind::Direct) => return attempt(fd, 0, k),
            // A socket's write almost always goes through at once: its first try needs none of a wait's
            // set-up (the loop below makes it again, and waits, only when there was no room).
            Kind::Socket => match attempt(fd, 0, Kind::Socket) {
                Ok(n) if n >= len || n == 0 => return Ok(n),
                Ok(n) => done = n,
                Err(Errno(libc::EAGAIN)) if fd::program_nonblocking(fd, e) => return Err(Errno(libc::EAGAIN)),
                Err(Errno(libc::EAGAIN | libc::ENOTSOCK)) => {}
                Err(e) => return Err(e),
            },
            _ => {}
        }
    }
    let mut t = Target::new(fd);
    loop {
        match blocking_on(&mut t, Dir::Write, OnSignal::FailUnlessRestart, |fd, kind| attempt(fd, done, kind)) {
            Ok(n) => {
                done += n;
                if done >= len || n == 0 {
                    return Ok(done);
                }
            }
            Err(RESTART) if done == 0 => continue,
            Err(e) if done > 0 && e.0 != libc::EFAULT => return Ok(done),
            Err(e) => return Err(e),
        }
    }
}
