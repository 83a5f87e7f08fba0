//! Blocking fd calls made cooperative. A call is tried without blocking — and without touching the
//! description's O_NONBLOCK, which other processes share — in the way the fd's kind allows (MSG_DONTWAIT
//! on sockets, RWF_NOWAIT on pipes, poll-then-call one caller at a time elsewhere). On EAGAIN the
//! coroutine parks on the fd's readiness sequence until the netpoller reports a change, its socket
//! timeout passes (EAGAIN, as the kernel reports SO_RCVTIMEO), or a handled signal interrupts it (EINTR
//! unless SA_RESTART). If the program closes the number meanwhile, the call goes on with a hidden
//! duplicate of the same object, as the kernel's call keeps its own reference. A program's own
//! non-blocking fds never park.
// The pointers these functions take are the program's own (buffers, addresses, message headers), which
// Rust code never dereferences: they go to the kernel, which checks them (EFAULT), as the program's own
// call would have.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use super::fd::{self, Dir, FdEntry, Kind};
use super::park::{OnSignal, Wait, WaitReason};
use super::parking_lot::{self, Parked};
use super::sys::syscall::Errno;
use super::sys::{self, time};
use core::sync::atomic::Ordering;

pub type IoResult = Result<usize, Errno>;

/// A wait ended by a handler with SA_RESTART: the call goes on, unless it already made progress (then it
/// returns what it did, as the kernel does). Never returned to the program.
pub const RESTART: Errno = Errno(512);

/// The kernel's limit on iovecs per call (UIO_MAXIOV).
pub const IOV_MAX: usize = 1024;

/// Finds what kind of object `fd` names (once per object), and forgets stale socket timeouts.
pub fn kind_of(fd: i32, e: &FdEntry) -> Kind {
    let k = e.kind();
    if k != Kind::Unknown {
        return k;
    }
    let k = match sys::fd::fstat(fd) {
        Err(_) => return Kind::Blocking, // bad fd: the real call reports it
        Ok(st) => match st.st_mode & libc::S_IFMT {
            libc::S_IFSOCK => Kind::Socket,
            libc::S_IFIFO => Kind::NoWait,
            libc::S_IFCHR => Kind::Pollable,
            libc::S_IFREG => {
                e.set_nowait_writes(super::file::NOWAIT_WRITES_UNKNOWN);
                Kind::File
            }
            _ => {
                // eventfd, timerfd, signalfd, epoll, inotify: anonymous inodes that poll works on.
                if st.st_mode & libc::S_IFMT == 0 { Kind::Pollable } else { Kind::Blocking }
            }
        },
    };
    e.timeout[0].store(fd::TIMEOUT_UNKNOWN, Ordering::Relaxed);
    e.timeout[1].store(fd::TIMEOUT_UNKNOWN, Ordering::Relaxed);
    e.stdio_peek.store(0, Ordering::Relaxed);
    fd::note_number(fd);
    e.set_kind(k);
    k
}

/// True when `fd` names a regular file (the kind `file`'s functions are for).
pub fn is_regular_file(fd: i32) -> bool {
    fd::entry(fd).is_some_and(|e| kind_of(fd, e) == Kind::File)
}

/// SO_RCVTIMEO / SO_SNDTIMEO of a socket in ns (0: none), looked up once per object.
pub(crate) fn timeout_ns(fd: i32, e: &FdEntry, dir: Dir) -> u64 {
    let slot = e.timeout(dir);
    let t = slot.load(Ordering::Relaxed);
    if t != fd::TIMEOUT_UNKNOWN {
        return t;
    }
    let opt = if dir == Dir::Read { libc::SO_RCVTIMEO } else { libc::SO_SNDTIMEO };
    let ns = match sys::socket::getsockopt_timeval(fd, libc::SOL_SOCKET, opt) {
        Ok(tv) => tv.tv_sec as u64 * 1_000_000_000 + tv.tv_usec as u64 * 1000,
        Err(_) => 0,
    };
    slot.store(ns, Ordering::Relaxed);
    ns
}

/// The program set socket option `level`/`name` on `fd` (setsockopt succeeded): what the runtime must
/// know of it. `val` is the option's value, `len` bytes the kernel read.
pub fn socket_option_set(fd: i32, level: i32, name: i32, val: *const u8, len: usize) {
    match (level, name) {
        (libc::SOL_SOCKET, libc::SO_RCVTIMEO | libc::SO_SNDTIMEO) if len >= size_of::<libc::timeval>() => {
            let dir = if name == libc::SO_RCVTIMEO { Dir::Read } else { Dir::Write };
            // SAFETY: the kernel just read a timeval from there (the program's own memory).
            set_timeout(fd, dir, unsafe { &*(val as *const libc::timeval) });
        }
        (libc::SOL_TCP, libc::TCP_ULP) => {
            if let Some(e) = fd::entry(fd) {
                e.upper_layer_attached();
            }
        }
        _ => {}
    }
}

/// The program set a socket timeout (setsockopt): remember it.
pub fn set_timeout(fd: i32, dir: Dir, tv: &libc::timeval) {
    if let Some(e) = fd::entry(fd) {
        let ns =
            (tv.tv_sec.max(0) as u64).saturating_mul(1_000_000_000).saturating_add(tv.tv_usec.max(0) as u64 * 1000);
        e.timeout(dir).store(ns, Ordering::Relaxed);
    }
}

/// The fd a cooperative call works on: the program's number, or, once the program closed or replaced that
/// number under the waiting call, a hidden duplicate of the same object (see `fd::closing`), which the
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
            fd::release_hidden(self.fd);
        }
        self.fd = hidden;
        self.hidden = true;
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if self.hidden {
            fd::release_hidden(self.fd);
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
    if kind == Kind::Blocking || kind == Kind::File {
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
                break Err(socket_error(t.fd).unwrap_or(Errno(libc::EPIPE)));
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
        if super::netpoll::register(t.fd, e).is_err() {
            e.set_kind(Kind::Blocking);
            break attempt(t.fd, Kind::Blocking);
        }
        let d = *deadline.get_or_insert_with(|| match timeout_ns(t.fd, e, dir) {
            0 => None,
            t => Some(time::monotonic_ns().saturating_add(t)),
        });
        let seqp = e.seq(dir);
        let unchanged = || seqp.load(Ordering::Acquire) == seq && e.generation.load(Ordering::Acquire) == generation;
        // A call with a socket timeout is never restarted after a signal (man 7 signal): `park` knows.
        parked = true;
        let reason = if dir == Dir::Read { WaitReason::FdRead } else { WaitReason::FdWrite };
        let wait = Wait::new(reason, t.fd as usize, on_signal).until(d);
        let moved_to = match parking_lot::park(seqp as *const _ as usize, 0, unchanged, || {}, wait) {
            Parked::TimedOut => break Err(Errno(libc::EAGAIN)),
            Parked::Interrupted => break Err(interrupted()),
            // The program closed the number: go on with the hidden duplicate the close handed over.
            Parked::Unparked(token) if token != 0 => Some(token as i32 - 1),
            _ if e.generation.load(Ordering::Acquire) != generation => match fd::adopt_hidden(t.fd, generation) {
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

/// The socket's pending error (SO_ERROR, which reading clears, as the kernel's own report does).
fn socket_error(fd: i32) -> Option<Errno> {
    match sys::socket::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ERROR) {
        Ok(err) if err != 0 => Some(Errno(err)),
        _ => None,
    }
}

/// EINTR, or RESTART when the signal's handler has SA_RESTART and the call is restartable.
fn interrupted() -> Errno {
    match super::worker::current_task() {
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

/// For kinds without a non-blocking form: one caller at a time polls and, if ready, makes the real call
/// (so two coroutines never both see "ready" and one block its worker). Others get EAGAIN and are woken
/// when the caller is done.
pub fn gated(fd: i32, dir: Dir, call: impl FnOnce() -> IoResult) -> IoResult {
    let Some(e) = fd::entry(fd) else { return call() };
    if e.gate(dir).swap(1, Ordering::Acquire) == 1 {
        return Err(Errno(libc::EAGAIN));
    }
    let events = if dir == Dir::Read { libc::POLLIN } else { libc::POLLOUT };
    let ready = sys::poll::ready_now(fd, events);
    let r = if ready { call() } else { Err(Errno(libc::EAGAIN)) };
    e.gate(dir).store(0, Ordering::Release);
    if ready {
        // Others waiting on this side retry: more may be ready, and edge-triggered polling will not say so.
        e.notify(dir);
    }
    r
}

fn iov1(buf: *mut u8, len: usize) -> libc::iovec {
    libc::iovec { iov_base: buf as *mut libc::c_void, iov_len: len }
}

/// preadv2/pwritev2 at the current position (-1) with RWF_NOWAIT.
fn rw_nowait(dir: Dir, fd: i32, iov: *const libc::iovec, cnt: usize) -> IoResult {
    const RWF_NOWAIT: u32 = 8;
    // SAFETY: the iovecs are the caller's; the kernel validates them.
    unsafe { sys::fd::preadv2_pwritev2(dir == Dir::Write, fd, iov, cnt, -1, RWF_NOWAIT) }
}

/// One try of read(fd, buf, len) for `kind`.
pub fn try_read(fd: i32, buf: *mut u8, len: usize, kind: Kind) -> IoResult {
    // SAFETY: in every arm, the program's own buffer and fd; the kernel validates them (EFAULT, EBADF).
    unsafe {
        match kind {
            Kind::Socket => {
                sys::socket::recvfrom(fd, buf, len, libc::MSG_DONTWAIT, core::ptr::null_mut(), core::ptr::null_mut())
            }
            Kind::NoWait => {
                let iov = iov1(buf, len);
                rw_nowait(Dir::Read, fd, &iov, 1)
            }
            Kind::Pollable => gated(fd, Dir::Read, || sys::fd::read(fd, buf, len)),
            Kind::File => super::file::read(fd, buf, len, None),
            _ => sys::fd::read(fd, buf, len),
        }
    }
}

/// One try of write(fd, buf, len) for `kind`.
pub fn try_write(fd: i32, buf: *const u8, len: usize, kind: Kind) -> IoResult {
    // SAFETY: in every arm, as in try_read.
    unsafe {
        match kind {
            Kind::Socket => sys::socket::sendto(fd, buf, len, libc::MSG_DONTWAIT, core::ptr::null(), 0),
            Kind::NoWait => {
                let iov = iov1(buf as *mut u8, len);
                rw_nowait(Dir::Write, fd, &iov, 1)
            }
            Kind::Pollable => gated(fd, Dir::Write, || sys::fd::write(fd, buf, len)),
            Kind::File => super::file::write(fd, buf, len, None),
            _ => sys::fd::write(fd, buf, len),
        }
    }
}

/// One try of readv/writev for `kind`.
pub fn try_rwv(fd: i32, iov: *const libc::iovec, cnt: usize, dir: Dir, kind: Kind) -> IoResult {
    let write = dir == Dir::Write;
    // SAFETY: in every arm, the program's iovec array; the kernel validates it.
    unsafe {
        match kind {
            Kind::Socket => {
                let mut msg: libc::msghdr = core::mem::zeroed();
                msg.msg_iov = iov as *mut libc::iovec;
                msg.msg_iovlen = cnt;
                if write {
                    sys::socket::sendmsg(fd, &msg, libc::MSG_DONTWAIT)
                } else {
                    sys::socket::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT)
                }
            }
            Kind::NoWait => rw_nowait(dir, fd, iov, cnt),
            Kind::Pollable => gated(fd, dir, || sys::fd::readv_writev(write, fd, iov, cnt)),
            _ => sys::fd::readv_writev(write, fd, iov, cnt),
        }
    }
}

/// A blocking write on a stream returns only when all was written (or on an error or signal after some
/// was: then the count so far), as the kernel's does.
pub fn write_all(fd: i32, len: usize, mut attempt: impl FnMut(i32, usize, Kind) -> IoResult) -> IoResult {
    // Files and other objects epoll cannot watch: one real call, whose count is the kernel's (a short
    // count at ENOSPC or RLIMIT_FSIZE must not become a second call raising SIGXFSZ).
    if let Some(e) = fd::entry(fd)
        && matches!(kind_of(fd, e), Kind::File | Kind::Blocking)
    {
        return attempt(fd, 0, e.kind());
    }
    let mut done = 0usize;
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

/// accept4 cooperatively: listening sockets have no per-call non-blocking form, so it is gated.
pub fn accept(fd: i32, addr: *mut libc::sockaddr, len: *mut libc::socklen_t, flags: i32) -> IoResult {
    blocking_restarting(fd, Dir::Read, |fd, kind| {
        // SAFETY: the program's own arguments; the kernel validates them.
        let call = || unsafe { sys::socket::accept4(fd, addr, len, flags) };
        // Not a socket: the kernel answers (ENOTSOCK) at once.
        if kind == Kind::Socket { gated(fd, Dir::Read, call) } else { call() }
    })
}

/// connect on a blocking socket: started non-blocking (the socket is new and not yet shared, so its
/// O_NONBLOCK is set only for this call), then the coroutine parks until the socket is writable and reads
/// the result, as the kernel's blocking connect reports it.
pub fn connect(fd: i32, addr: *const libc::sockaddr, len: libc::socklen_t) -> IoResult {
    let flags = match sys::fd::fcntl(fd, libc::F_GETFL, 0) {
        Ok(f) => f as i32,
        Err(e) => return Err(e),
    };
    if flags & libc::O_NONBLOCK != 0 {
        // SAFETY: connect with the program's arguments; the kernel validates them.
        return unsafe { sys::socket::connect(fd, addr, len) };
    }
    let mut pause = 50_000u64;
    loop {
        let _ = sys::fd::fcntl(fd, libc::F_SETFL, (flags | libc::O_NONBLOCK) as usize);
        // SAFETY: as above.
        let r = unsafe { sys::socket::connect(fd, addr, len) };
        let _ = sys::fd::fcntl(fd, libc::F_SETFL, flags as usize);
        match r {
            Err(Errno(libc::EINPROGRESS)) => break,
            // A Unix socket whose listener's backlog is full: a blocking connect waits for room, which
            // nothing reports, so try again a little later.
            Err(Errno(libc::EAGAIN)) => {
                super::park::sleep_until(time::monotonic_ns() + pause);
                pause = (pause * 2).min(5_000_000);
            }
            other => return other,
        }
    }
    // Wait until writable, then read the outcome.
    blocking_restarting(fd, Dir::Write, |fd, _| {
        if !sys::poll::ready_now(fd, libc::POLLOUT) {
            return Err(Errno(libc::EAGAIN));
        }
        if let Some(err) = socket_error(fd) {
            return Err(err);
        }
        // A second connect moves the socket from "connecting" to "connected", as the blocking call's own
        // wait does; otherwise the program's next connect would answer 0 instead of EISCONN.
        // SAFETY: as above.
        let _ = unsafe { sys::socket::connect(fd, addr, len) };
        Ok(0)
    })
}

/// The iovecs that remain after the first `done` bytes.
pub fn advance(vecs: &[libc::iovec], mut done: usize) -> Vec<libc::iovec> {
    let mut out = Vec::with_capacity(vecs.len());
    for v in vecs {
        if done >= v.iov_len {
            done -= v.iov_len;
            continue;
        }
        out.push(libc::iovec {
            iov_base: (v.iov_base as *mut u8).wrapping_add(done) as *mut libc::c_void,
            iov_len: v.iov_len - done,
        });
        done = 0;
    }
    out
}

/// poll(2) for a coroutine: the kernel answers at once with a zero timeout; if nothing is ready, the
/// coroutine parks until one of the fds may have changed (its own readiness sequence for a single fd and
/// direction, else the netpoller's epoch), the timeout passes, or a handled signal interrupts it (EINTR:
/// poll is never restarted). `probe` makes the zero-timeout kernel call and returns its result.
pub fn poll_wait(fds: &[libc::pollfd], deadline: Option<u64>, mut probe: impl FnMut() -> IoResult) -> IoResult {
    // Register every valid fd so its readiness reaches us; note a single fd and direction.
    let mut single: Option<(&'static FdEntry, Dir)> = None;
    let mut watchable = 0;
    for p in fds {
        if p.fd < 0 {
            continue;
        }
        let Some(e) = fd::entry(p.fd) else { continue };
        if kind_of(p.fd, e) == Kind::Blocking || super::netpoll::register(p.fd, e).is_err() {
            continue;
        }
        watchable += 1;
        if p.events & libc::POLLOUT != 0 {
            // Before the first probe: see `FdEntry::ready`.
            e.note_write_wait();
        }
        let dir = match (p.events & (libc::POLLIN | libc::POLLPRI) != 0, p.events & libc::POLLOUT != 0) {
            (true, false) => Some(Dir::Read),
            (false, true) => Some(Dir::Write),
            _ => None,
        };
        single = dir.map(|d| (e, d));
    }
    if watchable != 1 {
        single = None;
    }
    let multi = single.is_none();
    if multi {
        super::netpoll::MULTI_WAITERS.fetch_add(1, Ordering::AcqRel);
    }
    let result = loop {
        let (key, seq) = match single {
            Some((e, d)) => (e.seq(d) as *const _ as usize, e.seq(d).load(Ordering::Acquire)),
            None => (&super::netpoll::EPOCH as *const _ as usize, super::netpoll::EPOCH.load(Ordering::Acquire)),
        };
        match probe() {
            Ok(0) => {}
            other => break other,
        }
        // SAFETY: the key is the address of a live AtomicU32 (an fd entry's sequence or the epoch).
        let word = unsafe { &*(key as *const core::sync::atomic::AtomicU32) };
        let wait = Wait::new(WaitReason::Poll, 0, OnSignal::Fail).until(deadline);
        match parking_lot::park(key, 0, || word.load(Ordering::Acquire) == seq, || {}, wait) {
            Parked::TimedOut => break probe(),
            Parked::Interrupted => break Err(Errno(libc::EINTR)),
            // The fd was closed and this wait was counted as a user of its hidden duplicate: poll looks
            // at the numbers again instead (the closed one reports POLLNVAL).
            Parked::Unparked(token) if token != 0 => fd::release_hidden(token as i32 - 1),
            _ => {}
        }
    };
    if multi {
        super::netpoll::MULTI_WAITERS.fetch_sub(1, Ordering::AcqRel);
    }
    result
}
