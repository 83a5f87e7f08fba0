//! stdio's write side on sockets, pipes, FIFOs and terminals, made cooperative. glibc writes a FILE's
//! buffer out with its internal `write`, which no hook sees, and loops until all of it is written; a
//! coroutine in `fprintf` to a socket whose peer reads slowly would hold its worker OS thread for as long.
//! So for such a FILE the hooks (`hooks/stdio.rs`) do not call glibc's put functions at all: this module
//! does what glibc's `_IO_new_file_xsputn`, `_IO_default_xsputn`, `_IO_new_file_overflow`, `new_do_write`
//! and `_IO_new_file_write` do (libio/fileops.c, the same from glibc 2.1 to today), step for step — the
//! same buffering decisions, the same buffer pointers, flags, cached offset and return values — with one
//! difference: the bytes go out through the runtime's cooperative write (`blocking::write_all`), which parks
//! the coroutine while the socket or pipe is full. The FILE's own state is left exactly as glibc's call
//! would leave it, so glibc's later calls on it (reads, seeks, fclose, the flush at exit) carry on.
//!
//! Formatted output (the printf family) is formatted first with glibc's own `vsnprintf` (the same engine,
//! so the same bytes, `%n` values and fortify checks) and then put like fwrite. glibc puts a format's
//! pieces one by one, so the write calls split differently; on a byte stream that is invisible, which is
//! why only stream sockets, pipes, FIFOs and terminals are handled here. Everything else — regular files,
//! datagram sockets (a write is a message), sockets with SO_SNDTIMEO, wide-oriented FILEs, FILEs of
//! fopencookie/fmemopen, the program's own non-blocking fds (the write reports EAGAIN as natively) —
//! calls the real function.

use super::super::sys;
use super::attempt::try_write;
use super::blocking::write_all;
use super::fd::{self, Dir, Kind};
use super::kind::kind_of;
use super::libio::{
    CURRENTLY_PUTTING, ERR_SEEN, IS_APPENDING, IS_FILEBUF, IoFile, LINE_BUF, MAGIC, MAGIC_MASK, NO_WRITES, UNBUFFERED,
    VaListTag, file,
};
use super::stdio::{is_stream_socket, lock_file, point_for, unlock_file};
use std::ffi::{c_int, c_void};

/// glibc's EOF, which its put functions return on failure.
pub const EOF: c_int = -1;
/// What `xsputn` returns for glibc's `(size_t) EOF`: every byte was taken, but the flush it made failed.
pub const PUT_EOF: usize = usize::MAX;

/// A FILE whose writes a coroutine makes cooperatively.
pub struct Sink {
    f: *mut IoFile,
    fd: i32,
}

/// The FILE to write cooperatively, or None when the real function should run (see the module doc).
/// For a coroutine's calls only.
pub fn sink(f: *mut libc::FILE) -> Option<Sink> {
    if f.is_null() {
        return None;
    }
    let file = file(f);
    let flags = file.flags;
    // A FILE of glibc's file kind (fopen, fdopen, popen, stdin/out/err), writable, byte-oriented or not
    // yet oriented, with no column tracking (nothing in glibc turns it on). `_vtable_offset` means nothing
    // on x86-64: glibc neither sets nor reads it there.
    if flags & MAGIC_MASK != MAGIC
        || flags & (IS_FILEBUF | NO_WRITES) != IS_FILEBUF
        || file.mode > 0
        || file.cur_column != 0
    {
        return None;
    }
    let fd = file.fileno;
    let e = fd::entry(fd)?;
    match kind_of(fd, e) {
        Kind::Socket if e.socket_timeout_ns(fd, Dir::Write) == 0 && is_stream_socket(fd, e) => {}
        Kind::NoWait | Kind::Pollable => {}
        _ => return None,
    }
    Some(Sink { f: f as *mut IoFile, fd })
}

fn set_errno(e: c_int) {
    // SAFETY: the calling coroutine's errno slot.
    unsafe { *libc::__errno_location() = e };
}

/// Distance from `a` to `b` (0 when `b` is not past `a`).
fn span(a: *mut u8, b: *mut u8) -> usize {
    (b as usize).saturating_sub(a as usize)
}

impl Sink {
    fn file(&self) -> &'static mut IoFile {
        file(self.f.cast())
    }

    /// Runs `call` with the FILE's lock held when `locked` (the _unlocked forms' callers hold it), as a
    /// cancellation point where it waits (glibc's internal write is one): a request that ended a wait is
    /// acted on once the FILE is unlocked.
    pub fn with_lock<R>(&self, locked: bool, call: impl FnOnce(&Sink) -> R) -> R {
        let point = point_for(self.f.cast());
        if locked {
            lock_file(self.f.cast());
        }
        let r = call(self);
        if locked {
            unlock_file(self.f.cast());
        }
        point.leave(r)
    }

    /// What `_IO_fwide(f, -1)` does to a FILE without an orientation (the put functions' first step).
    pub fn orient_bytes(&self) {
        let f = self.file();
        if f.mode == 0 {
            f.mode = -1;
        }
    }

    /// `_IO_new_file_write`: writes all of `data`, retrying short writes; a failed write marks the FILE's
    /// error (errno set) and ends it. Returns the bytes written.
    fn sys_write(&self, data: *const u8, n: usize) -> usize {
        let mut done = 0usize;
        while done < n {
            let (at, len) = (data.wrapping_add(done), n - done);
            match write_all(self.fd, len, |fd, part, kind| try_write(fd, at.wrapping_add(part), len - part, kind)) {
                Ok(k) => done += k,
                // A wait a cancellation request ended leaves no error (the thread unwinds from it).
                Err(_) if super::super::cancel::wait_cancelled() => break,
                Err(e) => {
                    self.file().flags |= ERR_SEEN;
                    set_errno(e.0);
                    break;
                }
            }
        }
        let f = self.file();
        if f.offset >= 0 {
            f.offset += done as i64;
        }
        done
    }

    /// `new_do_write`: writes `n` bytes of `data` (the put area, or the caller's bytes directly) and leaves
    /// the FILE with empty buffers. Returns the bytes written.
    fn do_write(&self, data: *const u8, n: usize) -> usize {
        let f = self.file();
        if f.flags & IS_APPENDING != 0 {
            f.offset = -1;
        } else if f.read_end != f.write_base {
            // Unread input before the put area: glibc seeks back over it first, and gives up writing if the
            // object cannot seek (a socket or pipe opened for both).
            let delta = f.write_base as i64 - f.read_end as i64;
            match sys::fd::lseek(self.fd, delta, libc::SEEK_CUR) {
                Ok(pos) => f.offset = pos,
                Err(e) => {
                    set_errno(e.0);
                    return 0;
                }
            }
        }
        let count = self.sys_write(data, n);
        let f = self.file();
        f.read_base = f.buf_base;
        f.read_ptr = f.buf_base;
        f.read_end = f.buf_base;
        f.write_base = f.buf_base;
        f.write_ptr = f.buf_base;
        f.write_end = if f.flags & (LINE_BUF | UNBUFFERED) != 0 { f.buf_base } else { f.buf_end };
        count
    }

    /// `_IO_do_write`: whether all `n` bytes were written.
    fn do_write_all(&self, data: *const u8, n: usize) -> bool {
        n == 0 || self.do_write(data, n) == n
    }

    /// `_IO_do_flush`: writes the put area out.
    fn flush_put_area(&self) -> bool {
        let f = self.file();
        self.do_write_all(f.write_base, span(f.write_base, f.write_ptr))
    }

    /// `_IO_new_file_overflow(f, ch)`: `ch` into the buffer, making room first and writing the buffer out
    /// as the buffering mode asks; EOF just writes the put area out. Returns `ch` (as unsigned char) or EOF.
    pub fn overflow(&self, ch: c_int) -> c_int {
        let f = self.file();
        if f.flags & CURRENTLY_PUTTING == 0 || f.write_base.is_null() {
            // Leaving get mode (and allocating the buffer) is glibc's: with an EOF argument its call writes
            // nothing, since the fresh put area is empty.
            // SAFETY: a live FILE of glibc's file kind.
            let r = unsafe { crate::real::__overflow(self.f.cast(), EOF) };
            if r == EOF || ch == EOF {
                return r;
            }
        }
        if ch == EOF {
            return if self.flush_put_area() { 0 } else { EOF };
        }
        let f = self.file();
        if f.write_ptr == f.buf_end && !self.flush_put_area() {
            return EOF;
        }
        let byte = ch as u8;
        // SAFETY: write_ptr < buf_end here (the buffer was written out when full).
        unsafe {
            f.write_ptr.write(byte);
            f.write_ptr = f.write_ptr.add(1);
        }
        if (f.flags & UNBUFFERED != 0 || (f.flags & LINE_BUF != 0 && byte == b'\n'))
            && !self.do_write_all(f.write_base, span(f.write_base, f.write_ptr))
        {
            return EOF;
        }
        byte as c_int
    }

    /// `_IO_putc_unlocked`: into the buffer while there is room, else through [`overflow`](Self::overflow).
    pub fn putc(&self, ch: c_int) -> c_int {
        let f = self.file();
        if f.write_ptr < f.write_end {
            // SAFETY: write_ptr < write_end <= buf_end.
            unsafe {
                f.write_ptr.write(ch as u8);
                f.write_ptr = f.write_ptr.add(1);
            }
            return ch as u8 as c_int;
        }
        self.orient_bytes();
        self.overflow(ch as u8 as c_int)
    }

    /// `_IO_new_file_xsputn`: puts `n` bytes; returns how many were taken, or [`PUT_EOF`].
    ///
    /// # Safety
    /// `data` points to `n` readable bytes.
    pub unsafe fn xsputn(&self, data: *const u8, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        let f = self.file();
        let mut s = data;
        let mut to_do = n;
        let mut must_flush = false;
        let mut count = 0usize;
        // How much fits: a line-buffered FILE in put mode fills its whole buffer, and must write out up to
        // the last newline when all of it fits.
        if f.flags & LINE_BUF != 0 && f.flags & CURRENTLY_PUTTING != 0 {
            count = span(f.write_ptr, f.buf_end);
            if count >= n {
                // SAFETY: s..s+n are the caller's bytes.
                let last = unsafe { libc::memrchr(s as *const c_void, b'\n' as c_int, n) } as *const u8;
                if !last.is_null() {
                    count = last as usize - s as usize + 1;
                    must_flush = true;
                }
            }
        } else if f.write_end > f.write_ptr {
            count = span(f.write_ptr, f.write_end);
        }
        if count > 0 {
            count = count.min(to_do);
            // SAFETY: count bytes of the caller's data into the buffer's free space (count <= its room).
            unsafe {
                core::ptr::copy_nonoverlapping(s, f.write_ptr, count);
                f.write_ptr = f.write_ptr.add(count);
                s = s.add(count);
            }
            to_do -= count;
        }
        if to_do > 0 || must_flush {
            if self.overflow(EOF) == EOF {
                return if to_do == 0 { PUT_EOF } else { n - to_do };
            }
            // Whole blocks go out directly, the rest into the buffer (allocated by now).
            let f = self.file();
            let block = span(f.buf_base, f.buf_end);
            let direct = to_do - if block >= 128 { to_do % block } else { 0 };
            if direct > 0 {
                let written = self.do_write(s, direct);
                to_do -= written;
                if written < direct {
                    return n - to_do;
                }
            }
            if to_do > 0 {
                // SAFETY: the caller's remaining bytes.
                to_do -= unsafe { self.default_xsputn(s.add(direct), to_do) };
            }
        }
        n - to_do
    }

    /// `_IO_default_xsputn`: into the buffer's room, and byte by byte through overflow past it (which
    /// writes the buffer out when full, and at each newline of a line-buffered FILE).
    unsafe fn default_xsputn(&self, data: *const u8, n: usize) -> usize {
        let mut s = data;
        let mut more = n;
        loop {
            // Re-read each round: overflow changes the pointers.
            let f = self.file();
            if f.write_ptr < f.write_end {
                let count = span(f.write_ptr, f.write_end).min(more);
                // SAFETY: count bytes into the buffer's room, from the caller's remaining bytes.
                unsafe {
                    core::ptr::copy_nonoverlapping(s, f.write_ptr, count);
                    f.write_ptr = f.write_ptr.add(count);
                    s = s.add(count);
                }
                more -= count;
            }
            if more == 0 {
                break;
            }
            // SAFETY: more > 0 bytes remain at s.
            let byte = unsafe { s.read() };
            s = s.wrapping_add(1);
            if self.overflow(byte as c_int) == EOF {
                break;
            }
            more -= 1;
        }
        n - more
    }

    /// The write half of `fflush` (`_IO_new_file_sync`: a put area holding data is written out) or, with
    /// `closing`, of `fclose` (`_IO_file_close_it`: the put area of a FILE in put mode). true: nothing to
    /// write or all written, and glibc's own call then finishes without writing; false: writing failed,
    /// errno and the error flag are set, and the call must return EOF.
    pub fn flush_pending(&self, closing: bool) -> bool {
        let f = self.file();
        if f.write_ptr <= f.write_base || (closing && f.flags & CURRENTLY_PUTTING == 0) {
            return true;
        }
        self.flush_put_area()
    }
}

/// The C-level put functions, as glibc's libio/io*.c make them out of the steps above.
impl Sink {
    /// fwrite (`locked`) or fwrite_unlocked: whole items written.
    ///
    /// # Safety
    /// `p` points to `size * count` readable bytes.
    pub unsafe fn fwrite(&self, p: *const u8, size: usize, count: usize, locked: bool) -> usize {
        let request = size.wrapping_mul(count);
        if request == 0 {
            return 0;
        }
        self.with_lock(locked, |s| {
            s.orient_bytes();
            // SAFETY: the caller's request bytes.
            let written = unsafe { s.xsputn(p, request) };
            if written == request || written == PUT_EOF { count } else { written / size }
        })
    }

    /// fputs (`locked`) or fputs_unlocked: 1, or EOF.
    ///
    /// # Safety
    /// `text` is a NUL-terminated string.
    pub unsafe fn fputs(&self, text: *const u8, locked: bool) -> c_int {
        // SAFETY: a C string per the contract.
        let len = unsafe { libc::strlen(text.cast()) };
        self.with_lock(locked, |s| {
            s.orient_bytes();
            // SAFETY: len bytes of the string.
            if unsafe { s.xsputn(text, len) } == len { 1 } else { EOF }
        })
    }

    /// puts on this (stdout's) sink: the string and a newline; len + 1 (at most INT_MAX), or EOF.
    ///
    /// # Safety
    /// `text` is a NUL-terminated string.
    pub unsafe fn puts(&self, text: *const u8) -> c_int {
        // SAFETY: a C string per the contract.
        let len = unsafe { libc::strlen(text.cast()) };
        self.with_lock(true, |s| {
            s.orient_bytes();
            // SAFETY: len bytes of the string.
            if unsafe { s.xsputn(text, len) } == len && s.putc(b'\n' as c_int) != EOF {
                len.saturating_add(1).min(c_int::MAX as usize) as c_int
            } else {
                EOF
            }
        })
    }

    /// fputc/putc/putchar (`locked`) and their _unlocked forms.
    pub fn fputc(&self, ch: c_int, locked: bool) -> c_int {
        self.with_lock(locked, |s| s.putc(ch))
    }

    /// `__overflow`, what the putc_unlocked macros call when the buffer is full (the caller holds the lock).
    pub fn overflow_call(&self, ch: c_int) -> c_int {
        self.orient_bytes();
        self.overflow(ch)
    }

    /// fflush(f) (`locked`) or fflush_unlocked(f): the buffered bytes written cooperatively, then glibc's
    /// call, which finds nothing to write and does the rest (the read side's seek, the offset cache).
    pub fn fflush(&self, locked: bool) -> c_int {
        self.with_lock(locked, |s| {
            if !s.flush_pending(false) {
                return EOF;
            }
            // SAFETY: a live FILE; its lock is held by this coroutine or the caller.
            unsafe { crate::real::fflush_unlocked(s.f.cast()) }
        })
    }

    /// fclose's and pclose's write (before glibc's call, which then finds nothing to write): false when
    /// it failed, and the call must return EOF unless its close reports an error of its own.
    pub fn flush_before_close(&self) -> bool {
        self.with_lock(true, |s| s.flush_pending(true))
    }

    /// The printf family: `fmt` formatted with glibc's vsnprintf (its fortified form for `flag` >= 0), then
    /// put. None when formatting fails (EOVERFLOW, EILSEQ...): glibc's own call, which fails the same way
    /// after writing what came before the failing conversion, must run instead.
    ///
    /// # Safety
    /// `fmt` and `ap` are a printf format and its arguments (a va_list).
    pub unsafe fn vfprintf(&self, flag: c_int, fmt: *const u8, ap: *mut c_void) -> Option<c_int> {
        // The common case, as glibc does it: formatted straight into the buffer's room.
        // SAFETY: per the contract.
        match self.with_lock(true, |s| unsafe { s.format_in_buffer(flag, fmt, ap) }) {
            InBuffer::Done(n) => return Some(n),
            InBuffer::Failed => return None,
            InBuffer::NoRoom => {}
        }
        // SAFETY: per the contract.
        let text = unsafe { Formatted::new(flag, fmt, ap)? };
        Some(self.with_lock(true, |s| {
            s.orient_bytes();
            // SAFETY: the formatted bytes.
            if unsafe { s.xsputn(text.bytes(), text.len) } == text.len { text.len as c_int } else { EOF }
        }))
    }

    /// A fully buffered FILE in put mode takes the formatted output into its buffer's room when it fits
    /// there (with the NUL vsnprintf adds): exactly what the put would do, with no copy. Bytes past the
    /// put pointer are free space, so output that does not fit leaves nothing behind.
    unsafe fn format_in_buffer(&self, flag: c_int, fmt: *const u8, ap: *mut c_void) -> InBuffer {
        let f = self.file();
        if f.flags & (LINE_BUF | UNBUFFERED | CURRENTLY_PUTTING) != CURRENTLY_PUTTING || f.write_base.is_null() {
            return InBuffer::NoRoom;
        }
        let room = span(f.write_ptr, f.write_end);
        if room < 2 {
            return InBuffer::NoRoom;
        }
        self.orient_bytes();
        // SAFETY: the buffer's free space, room bytes from write_ptr; per the caller's contract for the rest.
        let n = unsafe { format_into(flag, fmt, ap, f.write_ptr, room) };
        if n < 0 {
            return InBuffer::Failed;
        }
        if n as usize >= room {
            return InBuffer::NoRoom;
        }
        // SAFETY: n < room bytes were written from write_ptr.
        f.write_ptr = unsafe { f.write_ptr.add(n as usize) };
        InBuffer::Done(n)
    }
}

enum InBuffer {
    Done(c_int),
    /// Formatting failed: glibc's own call must run.
    Failed,
    NoRoom,
}

/// vsnprintf (its fortified form for `flag` >= 0) into `buf` of `cap` bytes, from a copy of `ap`.
///
/// # Safety
/// `buf` has `cap` writable bytes; `fmt` and `ap` are a printf format and its va_list.
unsafe fn format_into(flag: c_int, fmt: *const u8, ap: *mut c_void, buf: *mut u8, cap: usize) -> c_int {
    // SAFETY: `ap` is a va_list, that is a pointer to its one element; a copy is consumed (va_copy).
    unsafe {
        let mut copy = *(ap as *const VaListTag);
        if flag >= 0 {
            __vsnprintf_chk(buf, cap, flag, cap, fmt, &mut copy)
        } else {
            vsnprintf(buf, cap, fmt, &mut copy)
        }
    }
}

/// Whether a coroutine's plain writes on `fd` park (stream sockets without SO_SNDTIMEO, pipes, FIFOs,
/// terminals): dprintf's condition.
fn fd_writes_cooperatively(fd: i32) -> bool {
    let Some(e) = fd::entry(fd) else { return false };
    match kind_of(fd, e) {
        Kind::Socket => e.socket_timeout_ns(fd, Dir::Write) == 0 && is_stream_socket(fd, e),
        Kind::NoWait | Kind::Pollable => true,
        _ => false,
    }
}

/// vdprintf/dprintf (`flag` >= 0: their fortified forms) on `fd`: formatted, then written cooperatively
/// until all is written or a write fails, as glibc's temporary FILE does. None: glibc's own call must run
/// (not an fd whose writes park, or formatting failed).
///
/// # Safety
/// `fmt` and `ap` are a printf format and its arguments (a va_list).
pub unsafe fn vdprintf(fd: i32, flag: c_int, fmt: *const u8, ap: *mut c_void) -> Option<c_int> {
    if !fd_writes_cooperatively(fd) {
        return None;
    }
    // SAFETY: per the contract.
    let text = unsafe { Formatted::new(flag, fmt, ap)? };
    let mut done = 0usize;
    while done < text.len {
        let (at, len) = (text.bytes().wrapping_add(done), text.len - done);
        match write_all(fd, len, |fd, part, kind| try_write(fd, at.wrapping_add(part), len - part, kind)) {
            Ok(k) => done += k,
            Err(e) => {
                set_errno(e.0);
                return Some(EOF);
            }
        }
    }
    Some(text.len as c_int)
}

unsafe extern "C" {
    fn vsnprintf(buf: *mut u8, len: usize, fmt: *const u8, ap: *mut VaListTag) -> c_int;
    fn __vsnprintf_chk(buf: *mut u8, len: usize, flag: c_int, slen: usize, fmt: *const u8, ap: *mut VaListTag)
    -> c_int;
}

/// Output formatted with glibc's own printf engine: on the stack when short, else in glibc's heap.
struct Formatted {
    small: [core::mem::MaybeUninit<u8>; SMALL],
    heap: *mut u8,
    len: usize,
}

const SMALL: usize = 1024;

impl Formatted {
    /// # Safety
    /// `fmt` and `ap` are a printf format and its arguments (a va_list, left unconsumed: copies are used).
    unsafe fn new(flag: c_int, fmt: *const u8, ap: *mut c_void) -> Option<Formatted> {
        let mut out =
            Formatted { small: [core::mem::MaybeUninit::uninit(); SMALL], heap: core::ptr::null_mut(), len: 0 };
        // SAFETY: the stack buffer's SMALL bytes; the format and va_list per the contract.
        let n = unsafe { format_into(flag, fmt, ap, out.small.as_mut_ptr().cast(), SMALL) };
        if n < 0 {
            return None;
        }
        out.len = n as usize;
        if out.len >= SMALL {
            // SAFETY: a fresh block of len + 1 bytes (vsnprintf writes the NUL too).
            out.heap = unsafe { super::super::libc_malloc::malloc(out.len + 1) } as *mut u8;
            // SAFETY: the block's len + 1 bytes.
            if out.heap.is_null() || unsafe { format_into(flag, fmt, ap, out.heap, out.len + 1) } != n {
                return None;
            }
        }
        Some(out)
    }

    fn bytes(&self) -> *const u8 {
        if self.heap.is_null() { self.small.as_ptr().cast() } else { self.heap }
    }
}

impl Drop for Formatted {
    fn drop(&mut self) {
        if !self.heap.is_null() {
            // SAFETY: allocated with glibc's malloc in `new`.
            unsafe { super::super::libc_malloc::free(self.heap as *mut c_void) };
        }
    }
}
