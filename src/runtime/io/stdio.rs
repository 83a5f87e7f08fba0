//! stdio reads on sockets, pipes and terminals, made cooperative. glibc refills a FILE's buffer with its
//! internal `read`, which no hook sees, so a coroutine in `fgets` on an fdopen'd socket would hold its
//! worker OS thread until a line came. Instead, the hooks (`hooks/stdio.rs`) call the real function only
//! once what it needs is already in the FILE's buffer or in the kernel — a delimiter within the call's
//! limit (fgets, getline), bytes (fread, taken in chunks as they come), one byte (getc) — or an end of
//! file or an error is pending: then its internal reads return at once, and glibc keeps doing all the
//! semantics (flags, errno, partial lines, buffering). Until then the coroutine parks on the fd's
//! readiness like a `read` (`io::blocking`: the program's own non-blocking fds and socket timeouts are
//! left to the real call).
//!
//! An empty buffer is refilled here with the one read glibc's refill would make, but non-blocking, so a
//! line that arrived whole costs what it costs natively. Looking at unread data without taking it:
//! `recv(MSG_PEEK)` on stream sockets, `tee(2)` into a scratch pipe on pipes and FIFOs; other objects
//! (terminals, datagram sockets) are ready when poll says readable. A wait that a signal ends without
//! SA_RESTART finishes the way glibc's call would have when its `read` failed with EINTR: it takes what had
//! arrived, sets the error flag and fails (NULL, EOF, or getline's partial line); an error a read or peek
//! reports (ECONNRESET), which the kernel reports only once, is passed on the same way.
//!
//! Not cooperative (the real call, which may hold the worker; the monitor then brings in a spare):
//! scanf family, wide-character reads, a FILE with unflushed output or ungetc'd bytes beyond its
//! buffer (backup area), lines longer than [`PEEK_MAX`] that arrive slowly, and the write side.

use super::super::cancel;
use super::super::lock::Lock;
use super::super::park::OnSignal;
use super::super::sys::{self, syscall::Errno};
use super::RESTART;
use super::attempt::try_read;
use super::blocking::blocking;
use super::fd::{self, Dir, FdEntry, Kind};
use super::kind::kind_of;
use super::libio::{
    CURRENTLY_PUTTING, EOF_SEEN, ERR_SEEN, IN_BACKUP, IS_FILEBUF, IoFile, LINE_BUF, LINKED, MAGIC, MAGIC_MASK,
    NO_READS, NO_WRITES, UNBUFFERED, VaListTag, file,
};
use core::sync::atomic::Ordering;
use std::ffi::{c_char, c_int, c_void};

/// The most unread data a line wait looks at. A line still incomplete past it lets the real call run
/// (it may then block its worker until the line ends).
pub const PEEK_MAX: usize = 64 * 1024;
/// The first look, on the stack.
const PEEK_SMALL: usize = 256;

/// `FdEntry::stdio_peek`: how unread data can be looked at (0: not looked up for this object).
const PEEK_STREAM: u32 = 1;
const PEEK_PIPE: u32 = 2;
const PEEK_NONE: u32 = 3;

unsafe extern "C" {
    static mut stdin: *mut libc::FILE;
    static mut stdout: *mut libc::FILE;
}

/// The program's `stdin` (for getchar).
pub fn stdin_file() -> *mut libc::FILE {
    // SAFETY: glibc's stdin variable, read once.
    unsafe { stdin }
}

/// Whether the FILE's error flag is set (false for NULL).
pub fn error_flag(f: *mut libc::FILE) -> bool {
    !f.is_null() && file(f).flags & ERR_SEEN != 0
}

/// What a read needs before the real call cannot block.
#[derive(Clone, Copy, Debug)]
pub enum Need {
    /// This many bytes (fread; getc needs 1).
    Bytes(usize),
    /// A `delim` byte among the first `limit` bytes, or `limit` bytes (fgets: newline within n-1).
    Delim { delim: u8, limit: usize },
}

/// A FILE whose reads a coroutine makes cooperatively.
pub struct Stream {
    f: *mut IoFile,
    fd: i32,
    e: &'static FdEntry,
}

/// Unread bytes in the FILE's buffer.
fn buffered(f: &IoFile) -> usize {
    if f.read_ptr.is_null() || f.read_end <= f.read_ptr { 0 } else { f.read_end as usize - f.read_ptr as usize }
}

/// Whether the FILE's buffer alone answers `need` (or sticky EOF ends the call without a read).
#[inline(always)]
fn buffer_suffices(f: &IoFile, need: Need) -> bool {
    if f.flags & EOF_SEEN != 0 {
        return true;
    }
    let have = buffered(f);
    match need {
        Need::Bytes(n) => have >= n,
        Need::Delim { delim, limit } => {
            // SAFETY: read_ptr..read_ptr+have is the FILE's unread buffer.
            have >= limit || unsafe { !libc::memchr(f.read_ptr as *const c_void, delim as c_int, have).is_null() }
        }
    }
}

/// The FILE to wait on cooperatively for `need`, or None when the real call should simply run: the
/// buffer already answers, or the object is not one the runtime parks on (files, the program's timeouts),
/// or the FILE is in a state glibc's call would change before reading (see the module doc).
/// For a coroutine's calls only.
#[inline(always)]
pub fn stream(f: *mut libc::FILE, need: Need) -> Option<Stream> {
    if f.is_null() || buffer_suffices(file(f), need) {
        return None;
    }
    stream_to_wait_on(f)
}

/// The FILE a scanf-family call waits on, or None when the real call should simply run (see the module
/// doc; also formats whose conversions allocate, `%ms` and GNU `%as`, which a trial run would leak).
/// For a coroutine's calls only.
pub fn stream_for_scan(f: *mut libc::FILE, variant: ScanVariant, fmt: *const u8) -> Option<Stream> {
    if f.is_null() || fmt.is_null() || scan_allocates(fmt, variant) {
        return None;
    }
    stream_to_wait_on(f)
}

/// [`stream`] past the buffer check, kept out of line so that the hooks' common path stays small.
#[inline(never)]
fn stream_to_wait_on(f: *mut libc::FILE) -> Option<Stream> {
    let file = file(f);
    let flags = file.flags;
    if flags & MAGIC_MASK != MAGIC || flags & (IS_FILEBUF | NO_READS | IN_BACKUP) != IS_FILEBUF || file.mode > 0 {
        return None;
    }
    if flags & CURRENTLY_PUTTING != 0 && file.write_ptr > file.write_base {
        return None;
    }
    let fd = file.fileno;
    let e = fd::entry(fd)?;
    match kind_of(fd, e) {
        Kind::Socket if e.socket_timeout_ns(fd, Dir::Read) == 0 => {}
        Kind::NoWait | Kind::Pollable => {}
        _ => return None,
    }
    Some(Stream { f: f as *mut IoFile, fd, e })
}

/// What a wait found.
enum Check {
    /// The call can run: it can take this many bytes (buffer included; usize::MAX: all it asks for,
    /// or an end of file or error is pending) without blocking.
    Go(usize),
    /// The kernel reported this error while we looked; it reports it once, so the call is finished as if
    /// its own read had met it.
    Fail(Errno),
    Wait,
}

impl Stream {
    /// Takes the FILE's lock when `locked`, and begins the call's cancellation point: stdio calls are
    /// points where they wait, as glibc's internal read is ([`cancel::Point::enter_where_it_waits`]).
    fn lock(&self, locked: bool) -> cancel::Point {
        let point = point_for(self.f.cast());
        if locked {
            lock_file(self.f.cast());
        }
        point
    }

    /// Gives back what [`Self::lock`] took: the FILE's lock first, then the point, which acts on a
    /// request that ended a wait (the thread unwinds with the FILE unlocked, as glibc's cleanup leaves it).
    fn unlock<R>(&self, locked: bool, point: cancel::Point, r: R) -> R {
        if locked {
            unlock_file(self.f.cast());
        }
        point.leave(r)
    }

    fn peek_kind(&self, kind: Kind) -> u32 {
        peek_kind(self.fd, self.e, kind)
    }

    /// Bytes the kernel holds unread (0 when it cannot say).
    fn kernel_unread(&self) -> usize {
        sys::fd::unread_bytes(self.fd).unwrap_or(0)
    }

    /// poll(0) of the read side: (readable, an end or error is pending).
    fn poll_now(&self) -> (bool, bool) {
        match sys::poll::revents_now(self.fd, libc::POLLIN | libc::POLLRDHUP) {
            Ok(revents) => {
                let end = revents & (libc::POLLHUP | libc::POLLRDHUP | libc::POLLERR | libc::POLLNVAL) != 0;
                (revents & libc::POLLIN != 0, end)
            }
            Err(_) => (true, true),
        }
    }

    /// With the FILE locked: whether the call can run now.
    fn check(&self, kind: Kind, need: Need) -> Check {
        let f = file(self.f.cast());
        if buffer_suffices(f, need) {
            return Check::Go(usize::MAX);
        }
        let mut have = buffered(f);
        // An empty buffer is refilled here, with the one read glibc's refill would make (so a line that
        // arrived whole costs no more system calls than natively); only fread's larger needs, which glibc
        // reads past the buffer, are left to glibc.
        if have == 0 && !matches!(need, Need::Bytes(n) if n > 1) {
            match self.refill(kind) {
                Some(Ok(0)) => return Check::Go(usize::MAX),
                Some(Ok(_)) if buffer_suffices(f, need) => return Check::Go(usize::MAX),
                Some(Ok(_)) => have = buffered(f),
                Some(Err(Errno(libc::EAGAIN))) => return Check::Wait,
                // No per-call non-blocking read for this pipe-like object (as in `io::blocking`).
                Some(Err(Errno(libc::EOPNOTSUPP | libc::EINVAL))) if kind == Kind::NoWait => {
                    self.e.set_kind(Kind::Pollable);
                    return self.check(Kind::Pollable, need);
                }
                // Errors the read itself reports at once, taking nothing: the real call meets them too.
                Some(Err(Errno(libc::EBADF | libc::EINVAL | libc::EOPNOTSUPP | libc::ENOTSOCK | libc::EFAULT))) => {
                    return Check::Go(usize::MAX);
                }
                // A pending error (ECONNRESET...), which the kernel reports once.
                Some(Err(e)) => return Check::Fail(e),
                None => {}
            }
        }
        let peek = self.peek_kind(kind);
        if peek == PEEK_NONE {
            let (readable, end) = self.poll_now();
            return if readable || end { Check::Go(usize::MAX) } else { Check::Wait };
        }
        match need {
            Need::Bytes(_) => match self.kernel_unread() {
                0 => match self.poll_now() {
                    (_, true) => Check::Go(usize::MAX),
                    _ if have > 0 => Check::Go(have),
                    _ => Check::Wait,
                },
                n => Check::Go(have + n),
            },
            Need::Delim { delim, limit } => {
                // Most lines are short: look at a few bytes on the stack first, more only if needed.
                let rest = limit - have;
                let mut small = [0u8; PEEK_SMALL];
                let mut window = rest.min(PEEK_SMALL);
                let mut seen = self.peek(peek, small.as_mut_ptr(), window);
                let mut large: Vec<u8> = Vec::new();
                let mut data = small.as_ptr();
                if matches!(seen, Ok(k) if k == window && rest > window)
                    // SAFETY: the kernel wrote `window` bytes.
                    && unsafe { libc::memchr(data as *const c_void, delim as c_int, window).is_null() }
                {
                    window = rest.min(PEEK_MAX);
                    large.reserve_exact(window);
                    seen = self.peek(peek, large.as_mut_ptr(), window);
                    data = large.as_ptr();
                }
                match seen {
                    Ok(0) => Check::Go(usize::MAX),
                    Ok(k) => {
                        // SAFETY: the kernel wrote k bytes at `data`.
                        let found = unsafe { !libc::memchr(data as *const c_void, delim as c_int, k).is_null() };
                        if found || k >= window || self.poll_now().1 {
                            return Check::Go(usize::MAX);
                        }
                        // A pipe's tee may show less than there is (its slots): then let the call run.
                        if peek == PEEK_PIPE && self.kernel_unread() > k { Check::Go(usize::MAX) } else { Check::Wait }
                    }
                    Err(Errno(libc::EAGAIN)) => Check::Wait,
                    // tee on something that is not a pipe after all: readiness alone decides from now on.
                    Err(Errno(libc::EINVAL)) if peek == PEEK_PIPE => {
                        self.e.stdio_peek.store(PEEK_NONE, Ordering::Relaxed);
                        self.check(kind, need)
                    }
                    Err(e) if peek == PEEK_STREAM => Check::Fail(e),
                    Err(_) => Check::Go(usize::MAX),
                }
            }
        }
    }

    /// Refills the FILE's empty buffer as glibc's underflow does after a read that returned data (read
    /// pointers over the new bytes, write pointers at the buffer's start, the cached offset advanced), but
    /// with a read that does not block. None for a FILE whose refill does more first (allocating the
    /// buffer, flushing stdout for a line-buffered FILE, leaving put mode, keeping marks): glibc's call does
    /// those. Ok(0) is an end of file, which glibc's own read will meet again.
    fn refill(&self, kind: Kind) -> Option<Result<usize, Errno>> {
        let f = file(self.f.cast());
        if f.buf_base.is_null()
            || f.buf_end <= f.buf_base
            || f.flags & (LINE_BUF | UNBUFFERED | CURRENTLY_PUTTING | IN_BACKUP) != 0
            || !f.markers.is_null()
            || f.write_ptr > f.write_base
        {
            return None;
        }
        let size = f.buf_end as usize - f.buf_base as usize;
        let r = try_read(self.fd, f.buf_base, size, kind);
        if let Ok(n) = r
            && n > 0
        {
            f.read_base = f.buf_base;
            f.read_ptr = f.buf_base;
            // SAFETY: n <= size bytes were written into the buffer.
            f.read_end = unsafe { f.buf_base.add(n) };
            f.write_base = f.buf_base;
            f.write_ptr = f.buf_base;
            f.write_end = f.buf_base;
            if f.offset != -1 {
                f.offset += n as i64;
            }
        }
        Some(r)
    }

    /// Copies up to `window` unread bytes into `dst` without taking them.
    fn peek(&self, peek: u32, dst: *mut u8, window: usize) -> Result<usize, Errno> {
        if peek == PEEK_STREAM {
            // SAFETY: peeking into the caller's buffer of `window` bytes.
            unsafe {
                sys::socket::recvfrom(
                    self.fd,
                    dst,
                    window,
                    libc::MSG_PEEK | libc::MSG_DONTWAIT,
                    core::ptr::null_mut(),
                    core::ptr::null_mut(),
                )
            }
        } else {
            peek_pipe(self.fd, dst, window)
        }
    }

    /// Before the first wait: glibc flushes a line-buffered stdout when a line-buffered or unbuffered FILE
    /// needs input (a prompt must show before the program waits for its answer).
    fn flush_for_input(&self) {
        let f = file(self.f.cast());
        // A FILE on a terminal becomes line-buffered when glibc allocates its buffer, at its first read.
        if f.flags & (LINE_BUF | UNBUFFERED) == 0 && !(f.buf_base.is_null() && self.is_terminal()) {
            return;
        }
        // SAFETY: glibc's stdout variable.
        let out = unsafe { stdout };
        if out.is_null() || out as *mut IoFile == self.f {
            return;
        }
        if file(out).flags & (LINKED | NO_WRITES | LINE_BUF) == LINKED | LINE_BUF {
            // SAFETY: a live FILE.
            unsafe { crate::real::fflush(out) };
        }
    }

    fn is_terminal(&self) -> bool {
        sys::fd::is_terminal(self.fd)
    }

    /// Runs `call(can_take)` once it will not block on `need`, parking cooperatively until then. With
    /// `locked`, the FILE's lock is held throughout, waits included, as glibc's call holds it while its
    /// read blocks (so other threads' calls on the FILE wait for this one, as natively). A wait ended by
    /// the kernel's error or by a signal without SA_RESTART runs `fail(errno)` instead.
    fn run<R>(
        &self,
        locked: bool,
        need: Need,
        mut call: impl FnMut(usize) -> R,
        mut fail: impl FnMut(Errno) -> R,
    ) -> R {
        let point = self.lock(locked);
        let r = self.run_locked(&mut |s: &Self, kind| s.check(kind, need), &mut call, &mut fail);
        self.unlock(locked, point, r)
    }

    /// [`run`](Self::run)'s loop with the FILE locked; `check` says whether the call can run now.
    fn run_locked<R>(
        &self,
        check: &mut impl FnMut(&Self, Kind) -> Check,
        call: &mut impl FnMut(usize) -> R,
        fail: &mut impl FnMut(Errno) -> R,
    ) -> R {
        let mut out: Option<R> = None;
        let mut flushed = false;
        loop {
            // The FILE reads through the program's number, so a number closed under this wait is not
            // followed to the hidden duplicate (`closing::closing`): the checks keep looking at the number.
            let r = blocking(self.fd, Dir::Read, OnSignal::FailUnlessRestart, |_, kind| {
                let verdict = match kind {
                    Kind::Socket | Kind::NoWait | Kind::Pollable => check(self, kind),
                    _ => Check::Go(usize::MAX),
                };
                match verdict {
                    Check::Go(n) => {
                        out = Some(call(n));
                        Ok(0)
                    }
                    Check::Fail(e) => {
                        out = Some(fail(e));
                        Ok(0)
                    }
                    Check::Wait => {
                        if !flushed {
                            flushed = true;
                            self.flush_for_input();
                        }
                        Err(Errno(libc::EAGAIN))
                    }
                }
            });
            let finish = match r {
                Ok(_) => return out.take().expect("the call ran"),
                Err(RESTART) => continue,
                Err(Errno(libc::EINTR)) => Some(Errno(libc::EINTR)),
                // The program's own non-blocking fd (the real call reports its EAGAIN), or the fd was closed
                // while we waited (the real call reports what the number names now).
                Err(_) => None,
            };
            let kind = self.e.kind();
            return match (finish, check(self, kind)) {
                (_, Check::Go(n)) => call(n),
                (_, Check::Fail(e)) => fail(e),
                (Some(e), Check::Wait) => fail(e),
                (None, Check::Wait) => call(usize::MAX),
            };
        }
    }

    /// Marks the FILE's error and sets errno, as glibc does when its read fails with `e` (not for a wait a
    /// cancellation request ended: the thread unwinds as from glibc's read, leaving the FILE as it was).
    fn set_failed(&self, e: Errno) {
        if cancel::wait_cancelled() {
            return;
        }
        file(self.f.cast()).flags |= ERR_SEEN;
        // SAFETY: the calling coroutine's errno slot.
        unsafe { *libc::__errno_location() = e.0 };
    }

    /// Takes what the buffer and the kernel hold now, up to `limit` bytes, into `dst` with the real
    /// fread_unlocked (its reads find data, so they do not block). Returns the count.
    fn take_available(&self, dst: *mut u8, limit: usize) -> usize {
        let n = (buffered(file(self.f.cast())) + self.kernel_unread()).min(limit);
        if n == 0 || cancel::wait_cancelled() {
            return 0;
        }
        // SAFETY: `dst` has room for `limit` bytes (the caller's buffer).
        unsafe { crate::real::fread_unlocked(dst as *mut c_void, 1, n, self.f as *mut libc::FILE) }
    }
}

/// glibc's `_IO_FLAGS2_NOTCANCEL`: a FILE opened with fopen's "c" flag reads and writes with glibc's
/// non-cancellable calls.
const NOTCANCEL: c_int = 2;

/// The cancellation point of a stdio call on `f`: where it waits, unless `f` is not cancellable.
pub(super) fn point_for(f: *mut libc::FILE) -> cancel::Point {
    cancel::Point::enter_where_it_waits(file(f.cast()).flags2 & NOTCANCEL == 0)
}

/// Takes a FILE's lock (recursive for its owner, the coroutine's TCB). It is a futex no hook sees, and its
/// holder may be a coroutine parked in a wait (a read's, a write's, or inside the program's own flockfile
/// section), so a contended lock is retried after short sleeps rather than blocking the worker.
pub(super) fn lock_file(f: *mut libc::FILE) {
    let mut pause_ns = 20_000u64;
    // SAFETY: a live FILE (the caller's C contract).
    while unsafe { crate::real::ftrylockfile(f) } != 0 {
        super::super::park::sleep_until(sys::time::monotonic_ns().saturating_add(pause_ns));
        pause_ns = (pause_ns * 2).min(1_000_000);
    }
}

/// Releases what [`lock_file`] took.
pub(super) fn unlock_file(f: *mut libc::FILE) {
    // SAFETY: locked by lock_file on this coroutine.
    unsafe { crate::real::funlockfile(f) }
}

/// Whether `fd` (of `kind`) is a stream socket: the only sockets whose data stdio may split or join
/// differently from glibc's own calls, since a stream has no message boundaries.
pub(super) fn is_stream_socket(fd: i32, e: &FdEntry) -> bool {
    peek_kind(fd, e, Kind::Socket) == PEEK_STREAM
}

/// How unread data of `fd` can be looked at (cached in the fd entry until the number is reused).
fn peek_kind(fd: i32, e: &FdEntry, kind: Kind) -> u32 {
    let v = e.stdio_peek.load(Ordering::Relaxed);
    if v != 0 {
        return v;
    }
    let v = match kind {
        Kind::Socket => {
            let ty = sys::socket::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TYPE);
            if ty == Ok(libc::SOCK_STREAM) { PEEK_STREAM } else { PEEK_NONE }
        }
        Kind::NoWait => PEEK_PIPE,
        _ => {
            let fifo = sys::fd::fstat(fd).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFIFO);
            if fifo { PEEK_PIPE } else { PEEK_NONE }
        }
    };
    e.stdio_peek.store(v, Ordering::Relaxed);
    v
}

/// Which of glibc's scanf engines a call uses: their conversions differ (GNU `%as` allocates where C99's
/// `%a` reads a float; C23 adds `%b` and 0b prefixes), so a trial run must use the call's own.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ScanVariant {
    Gnu,
    C99,
    C23,
}

/// Whether a scanf format has a conversion that allocates (`%ms`, `%m[`, GNU `%as`).
fn scan_allocates(fmt: *const u8, variant: ScanVariant) -> bool {
    // SAFETY: a NUL-terminated format string (the caller's C contract).
    let fmt = unsafe { core::ffi::CStr::from_ptr(fmt.cast()) }.to_bytes();
    let mut i = 0;
    while i < fmt.len() {
        if fmt[i] != b'%' {
            i += 1;
            continue;
        }
        i += 1;
        if fmt.get(i) == Some(&b'%') {
            i += 1;
            continue;
        }
        while i < fmt.len() && b"*'I0123456789$".contains(&fmt[i]) {
            i += 1;
        }
        if fmt.get(i) == Some(&b'm') {
            return true;
        }
        if variant == ScanVariant::Gnu
            && fmt.get(i) == Some(&b'a')
            && matches!(fmt.get(i + 1), Some(b's' | b'S' | b'['))
        {
            return true;
        }
    }
    false
}

/// glibc's vfscanf (any variant), on a va_list.
type VfscanfFn = unsafe extern "C" fn(*mut libc::FILE, *const u8, *mut c_void) -> c_int;

/// glibc's vfscanf of `variant` (the C23 one exists from 2.38; a program that calls it has one).
fn real_vfscanf(variant: ScanVariant) -> Option<VfscanfFn> {
    let addr = match variant {
        ScanVariant::Gnu => crate::real::vfscanf_addr(),
        ScanVariant::C99 => crate::real::isoc99_vfscanf_addr(),
        ScanVariant::C23 => crate::real::isoc23_vfscanf_addr()?,
    };
    // SAFETY: glibc's functions of this signature (a va_list is passed as a pointer on x86-64).
    Some(unsafe { core::mem::transmute::<usize, VfscanfFn>(addr) })
}

/// The bytes a trial scan reads, and whether it asked for more than there were.
struct TrialInput {
    data: *const u8,
    len: usize,
    pos: usize,
    asked_beyond: bool,
}

unsafe extern "C" fn trial_read(cookie: *mut c_void, buf: *mut c_char, size: usize) -> isize {
    // SAFETY: the cookie is the TrialInput `scan_completes` made, alive for the FILE's life.
    let t = unsafe { &mut *(cookie as *mut TrialInput) };
    let n = (t.len - t.pos).min(size);
    if n == 0 {
        t.asked_beyond = true;
        return 0;
    }
    // SAFETY: n bytes from the trial data into glibc's buffer of `size` bytes.
    unsafe { core::ptr::copy_nonoverlapping(t.data.add(t.pos), buf as *mut u8, n) };
    t.pos += n;
    n as isize
}

#[repr(C)]
struct CookieFunctions {
    read: Option<unsafe extern "C" fn(*mut c_void, *mut c_char, usize) -> isize>,
    write: Option<unsafe extern "C" fn(*mut c_void, *const c_char, usize) -> isize>,
    seek: Option<unsafe extern "C" fn(*mut c_void, *mut i64, c_int) -> c_int>,
    close: Option<unsafe extern "C" fn(*mut c_void) -> c_int>,
}

unsafe extern "C" {
    fn fopencookie(cookie: *mut c_void, mode: *const c_char, functions: CookieFunctions) -> *mut libc::FILE;
}

/// Whether scanning `data` with the call's engine, format and arguments finishes without asking for more
/// input: then the real call, whose reads find those bytes, cannot block. The trial writes through the
/// call's pointers what the real call writes again; errno is left as it was.
///
/// # Safety
/// `fmt` and `ap` are the call's format and va_list (a copy is used).
unsafe fn scan_completes(variant: ScanVariant, fmt: *const u8, ap: *mut c_void, data: &[u8]) -> bool {
    let Some(vfscanf) = real_vfscanf(variant) else { return true };
    let mut input = TrialInput { data: data.as_ptr(), len: data.len(), pos: 0, asked_beyond: false };
    let functions = CookieFunctions { read: Some(trial_read), write: None, seek: None, close: None };
    // SAFETY: errno slot of the caller; fopencookie/setvbuf/fclose in their documented order on a FILE that
    // lives only here; the va_list copy is a plain copy of its one element (va_copy on x86-64).
    unsafe {
        let saved_errno = *libc::__errno_location();
        let trial = fopencookie(&mut input as *mut TrialInput as *mut c_void, c"r".as_ptr(), functions);
        if trial.is_null() {
            return true;
        }
        let mut buffer = [0u8; 4096];
        libc::setvbuf(trial, buffer.as_mut_ptr() as *mut c_char, libc::_IOFBF, buffer.len());
        let mut copy = *(ap as *const VaListTag);
        vfscanf(trial, fmt, &mut copy as *mut VaListTag as *mut c_void);
        crate::real::fclose(trial);
        *libc::__errno_location() = saved_errno;
    }
    !input.asked_beyond
}

impl Stream {
    /// With the FILE locked: whether a scan can run now (see [`scan_completes`]).
    fn check_scan(&self, kind: Kind, trial: &mut dyn FnMut(&[u8]) -> bool) -> Check {
        let f = file(self.f.cast());
        if f.flags & EOF_SEEN != 0 {
            return Check::Go(usize::MAX);
        }
        let have = buffered(f);
        // SAFETY: read_ptr..read_ptr+have is the FILE's unread buffer.
        let buffer = if have == 0 { &[][..] } else { unsafe { core::slice::from_raw_parts(f.read_ptr, have) } };
        let peek = self.peek_kind(kind);
        if peek == PEEK_NONE {
            // The kernel's data cannot be looked at: the buffer alone, or readiness, decides.
            if have > 0 && trial(buffer) {
                return Check::Go(usize::MAX);
            }
            let (readable, end) = self.poll_now();
            return if readable || end { Check::Go(usize::MAX) } else { Check::Wait };
        }
        let unread = self.kernel_unread().min(PEEK_MAX);
        let mut data: Vec<u8> = Vec::with_capacity(have + unread);
        data.extend_from_slice(buffer);
        if unread > 0 {
            // SAFETY: the peek writes at most `unread` bytes into the reserved capacity.
            match self.peek(peek, unsafe { data.as_mut_ptr().add(have) }, unread) {
                // SAFETY: the kernel wrote k bytes.
                Ok(k) => unsafe { data.set_len(have + k) },
                Err(Errno(libc::EAGAIN)) => {}
                Err(Errno(libc::EINVAL)) if peek == PEEK_PIPE => {
                    self.e.stdio_peek.store(PEEK_NONE, Ordering::Relaxed);
                    return self.check_scan(kind, trial);
                }
                Err(e) if peek == PEEK_STREAM => return Check::Fail(e),
                Err(_) => return Check::Go(usize::MAX),
            }
        }
        if trial(&data) {
            return Check::Go(usize::MAX);
        }
        let seen = data.len() - have;
        // An end or error is pending, the look is as far as it goes, or a pipe's tee showed less than
        // there is (its slots): the real call runs (and takes what there is).
        if self.poll_now().1 || seen >= PEEK_MAX || (peek == PEEK_PIPE && self.kernel_unread() > seen) {
            return Check::Go(usize::MAX);
        }
        Check::Wait
    }

    /// The scanf family (`vfscanf` of `variant` with `fmt` and the va_list `ap`) made cooperatively: the
    /// real call runs once a trial scan of what has arrived finishes, the FILE locked throughout like
    /// glibc's call. A wait ended by a signal without SA_RESTART, or by an error the kernel reports once,
    /// ends the call as glibc's does when its read fails: what arrived is scanned, then the read error
    /// (error flag, errno, the count of conversions made or EOF).
    ///
    /// # Safety
    /// `fmt` and `ap` are the call's format and va_list.
    pub unsafe fn scan(&self, variant: ScanVariant, fmt: *const u8, ap: *mut c_void) -> c_int {
        let Some(vfscanf) = real_vfscanf(variant) else {
            // SAFETY: the caller's errno slot.
            unsafe { *libc::__errno_location() = libc::ENOSYS };
            return libc::EOF;
        };
        // SAFETY: the call's own arguments.
        let real = || unsafe { vfscanf(self.f.cast(), fmt, ap) };
        // SAFETY: as the caller's contract.
        let mut trial = |data: &[u8]| unsafe { scan_completes(variant, fmt, ap, data) };
        let point = self.lock(true);
        let r = self.run_locked(&mut |s: &Self, kind| s.check_scan(kind, &mut trial), &mut |_| real(), &mut |e| {
            // A cancelled wait takes nothing (the thread unwinds).
            if cancel::wait_cancelled() { libc::EOF } else { self.scan_failed(e, &real) }
        });
        self.unlock(true, point, r)
    }

    /// The real scan over what has arrived, its next read made to fail (the FILE's number hidden for the
    /// call), with `e` as the read's errno.
    fn scan_failed(&self, e: Errno, real: &dyn Fn() -> c_int) -> c_int {
        // What arrived goes into the FILE's buffer first, as glibc's reads before the failing one took it:
        // glibc's own refill (which also allocates a buffer not made yet) finds data, so it does not block.
        if buffered(file(self.f.cast())) == 0 && self.kernel_unread() > 0 {
            // SAFETY: a live FILE, locked by this coroutine.
            unsafe { crate::real::__underflow(self.f.cast()) };
        }
        let f = file(self.f.cast());
        let number = f.fileno;
        f.fileno = -1;
        let r = real();
        file(self.f.cast()).fileno = number;
        // SAFETY: the calling coroutine's errno slot.
        unsafe { *libc::__errno_location() = e.0 };
        r
    }
}

/// Copies up to `window` unread bytes of pipe `fd` into `dst` without taking them: tee(2) into a scratch
/// pipe, then read back from it. EINVAL: `fd` is not a pipe.
fn peek_pipe(fd: i32, dst: *mut u8, window: usize) -> Result<usize, Errno> {
    let [r, w] = scratch_pipe_get()?;
    const SPLICE_F_NONBLOCK: u32 = 2;
    // The scratch pipe is ours and empty.
    let res = sys::fd::tee(fd, w, window, SPLICE_F_NONBLOCK);
    let mut clean = true;
    if let Ok(k) = res
        && k > 0
    {
        // SAFETY: reading k bytes (at most `window`) into the caller's buffer of `window` bytes.
        clean = matches!(unsafe { sys::fd::read(r, dst, k) }, Ok(got) if got == k);
    }
    if clean {
        SCRATCH_PIPES.lock().push([r, w]);
    } else {
        fd::unmark_runtime_own(r);
        fd::unmark_runtime_own(w);
        // Our own fds.
        let _ = sys::fd::close(r);
        let _ = sys::fd::close(w);
    }
    res
}

/// Empty non-blocking pipes for peeking, kept at the top of the fd space (see `fd::move_high`).
static SCRATCH_PIPES: Lock<Vec<[i32; 2]>> = Lock::new(Vec::new());

fn scratch_pipe_get() -> Result<[i32; 2], Errno> {
    if let Some(p) = SCRATCH_PIPES.lock().pop() {
        return Ok(p);
    }
    let fds = sys::fd::pipe2(libc::O_CLOEXEC | libc::O_NONBLOCK)?;
    Ok([fd::move_high(fds[0]), fd::move_high(fds[1])])
}

/// How a getdelim whose read failed ends.
enum Taken {
    /// Nothing arrived: -1.
    Nothing,
    /// This many bytes arrived without the delimiter: returned, with the error flag set.
    Partial(usize),
    /// The delimiter arrived after all (with the signal): the whole line, no error.
    Complete(usize),
    /// malloc/realloc failed: -1 with their errno, as glibc.
    NoMemory,
}

impl Stream {
    /// fgets and its forms (`line`: the buffer and at most how many bytes go in it, up to a newline) or
    /// getc and its forms, __uflow, __underflow (`line` None), made by `real` cooperatively. `locked`: hold
    /// the FILE's lock throughout (not for the _unlocked forms, whose caller holds it).
    /// `failed` is the function's failure value (NULL, EOF).
    #[inline(never)]
    pub fn read_once<R: Copy>(
        &self,
        line: Option<(*mut c_char, usize)>,
        locked: bool,
        failed: R,
        mut real: impl FnMut() -> R,
    ) -> R {
        let need = match line {
            Some((_, limit)) => Need::Delim { delim: b'\n', limit },
            None => Need::Bytes(1),
        };
        self.run(
            locked,
            need,
            |_| real(),
            |e| {
                // glibc's fgets returns NULL when a read fails, having taken what had arrived.
                if let Some((buf, limit)) = line {
                    self.take_available(buf as *mut u8, limit);
                }
                self.set_failed(e);
                failed
            },
        )
    }

    /// getdelim (getline) made by `real` cooperatively, the FILE locked throughout.
    #[inline(never)]
    pub fn getdelim(&self, line: *mut *mut c_char, n: *mut usize, delim: u8, mut real: impl FnMut() -> isize) -> isize {
        self.run(
            true,
            Need::Delim { delim, limit: usize::MAX },
            |_| real(),
            |e| match self.getdelim_failed(line, n, delim) {
                Taken::Nothing => {
                    self.set_failed(e);
                    -1
                }
                Taken::Partial(len) => {
                    self.set_failed(e);
                    len as isize
                }
                Taken::Complete(len) => len as isize,
                Taken::NoMemory => -1,
            },
        )
    }

    /// getdelim whose read failed: takes what arrived into the line the way glibc grows it (120 bytes
    /// first, then to what is needed but at least double), NUL-terminated when anything arrived.
    fn getdelim_failed(&self, line: *mut *mut c_char, n: *mut usize, delim: u8) -> Taken {
        if cancel::wait_cancelled() {
            return Taken::Nothing;
        }
        // SAFETY: `line` and `n` are the caller's valid pointers (the hook checked them for NULL); the FILE's
        // unread bytes are read_ptr..read_end.
        unsafe {
            if (*line).is_null() || *n == 0 {
                *n = 120;
                *line = libc::malloc(120) as *mut c_char;
                if (*line).is_null() {
                    return Taken::NoMemory;
                }
            }
            let f = file(self.f.cast());
            let mut cur = 0usize;
            loop {
                let mut len = buffered(f);
                if len == 0 {
                    if self.kernel_unread() == 0 || crate::real::__underflow(self.f as *mut libc::FILE) == libc::EOF {
                        break;
                    }
                    len = buffered(f);
                }
                let hit = libc::memchr(f.read_ptr as *const c_void, delim as c_int, len) as *mut u8;
                if !hit.is_null() {
                    len = hit as usize - f.read_ptr as usize + 1;
                }
                let mut needed = cur + len + 1;
                if needed > *n {
                    if needed < 2 * *n {
                        needed = 2 * *n;
                    }
                    let grown = libc::realloc(*line as *mut c_void, needed) as *mut c_char;
                    if grown.is_null() {
                        return Taken::NoMemory;
                    }
                    *line = grown;
                    *n = needed;
                }
                core::ptr::copy_nonoverlapping(f.read_ptr, (*line as *mut u8).add(cur), len);
                f.read_ptr = f.read_ptr.add(len);
                cur += len;
                if !hit.is_null() {
                    *(*line).add(cur) = 0;
                    return Taken::Complete(cur);
                }
            }
            if cur == 0 {
                return Taken::Nothing;
            }
            *(*line).add(cur) = 0;
            Taken::Partial(cur)
        }
    }

    /// fread of `total` bytes into `dst` cooperatively: taken in chunks as they arrive (each a real
    /// fread_unlocked that does not block), the FILE locked throughout like glibc's call. Returns the
    /// bytes read; a failed wait ends it like glibc's failed read (error flag, errno).
    ///
    /// # Safety
    /// `dst` has room for `total` bytes.
    #[inline(never)]
    pub unsafe fn read_bytes(&self, dst: *mut u8, total: usize, locked: bool) -> usize {
        let point = self.lock(locked);
        let mut done = 0usize;
        while done < total {
            let rest = total - done;
            // Within this call's lock and cancellation point (a nested point would act with the FILE locked).
            let (got, stop) = self.run_locked(
                &mut |s: &Self, kind| s.check(kind, Need::Bytes(rest)),
                &mut |can| {
                    let want = rest.min(can);
                    // SAFETY: dst+done has room for `rest` bytes (the caller's contract).
                    let got = unsafe {
                        crate::real::fread_unlocked(dst.add(done) as *mut c_void, 1, want, self.f as *mut libc::FILE)
                    };
                    (got, got < want)
                },
                &mut |e| {
                    // SAFETY: as above.
                    let got = self.take_available(unsafe { dst.add(done) }, rest);
                    self.set_failed(e);
                    (got, true)
                },
            );
            done += got;
            if stop {
                break;
            }
        }
        self.unlock(locked, point, done)
    }
}
