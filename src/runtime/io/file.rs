//! Regular files. epoll cannot wait for them, and a read of data that is not in the page cache sleeps in
//! the kernel for the disk. The rule, from measurements on ext4 (README, Regular files, has the figures):
//!
//! - **read/pread**: first `preadv2(RWF_NOWAIT)`, which costs what a plain read costs and fails with
//!   EAGAIN instead of waiting for the disk; only then does a helper thread make the real call while the
//!   coroutine parks (a helper round trip is small next to a disk read); a handler for it runs on its own
//!   stack once the disk has answered, as natively (see [`on_disk`]). A partly cached range gives a short NOWAIT read; the helper reads the rest, so the program
//!   still sees one full read, as from the kernel.
//! - **write/pwrite**: buffered writes only wait under dirty-page throttling or journal pressure. ext4 does
//!   not support RWF_NOWAIT for them (EOPNOTSUPP), and offloading every write would make a cheap call cost
//!   a helper round trip, many times more, so they are made inline (where RWF_NOWAIT works, EAGAIN sends them to a helper); the
//!   monitor hands the worker's other coroutines on if one ever sleeps for long.
//! - **fsync/fdatasync** wait for the disk by design: always on a helper.
//! - **open** stays inline: a cached path lookup costs far less than a helper round trip.

// The pointers these functions take are the program's own (buffers, offsets), which Rust code never
// dereferences: they go to the kernel, which checks them (EFAULT), as the program's own call would have.
#![allow(clippy::not_unsafe_ptr_arg_deref)]
use super::super::offload;
use super::super::park::OnSignal;
use super::super::stats::Offload;
use super::super::sys::{self, syscall::Errno};
use super::IoResult;
use super::fd;
use super::kind::is_regular_file;

const RWF_NOWAIT: u32 = 8;
/// preadv2/pwritev2's "use and update the file position" offset.
const AT_POSITION: i64 = -1;

// Whether RWF_NOWAIT writes work on this fd's file system, learned per object (0, not tried yet, is what
// the fd table sets for a new object).
const NOWAIT_WRITES_NO: u32 = 1;
const NOWAIT_WRITES_YES: u32 = 2;

fn nowait(write: bool, fd: i32, buf: usize, len: usize, offset: i64) -> IoResult {
    let iov = libc::iovec { iov_base: buf as *mut libc::c_void, iov_len: len };
    // SAFETY: the program's buffer and fd; the kernel validates both (EFAULT, EBADF).
    unsafe { sys::fd::preadv2_pwritev2(write, fd, &iov, 1, offset, RWF_NOWAIT) }
}

/// read(2) or pread(2) (`offset` Some) of a regular file.
pub fn read(fd: i32, buf: *mut u8, len: usize, offset: Option<i64>) -> IoResult {
    let at = offset.unwrap_or(AT_POSITION);
    let first = match nowait(false, fd, buf as usize, len, at) {
        Ok(n) if n == len || n == 0 => return Ok(n),
        Ok(n) => n,
        Err(Errno(libc::EAGAIN)) => 0,
        // EOPNOTSUPP: a file system without NOWAIT reads; EINVAL, EBADF...: the real call answers.
        Err(_) => return real_read(fd, buf as usize, len, offset),
    };
    read_from_disk(fd, buf as usize, len, offset, first)
}

/// The rest of a read after its first `first` bytes came from the page cache, on a helper (out of line:
/// the cached read stays as cheap as it was).
#[cold]
#[inline(never)]
fn read_from_disk(fd: i32, buf: usize, len: usize, offset: Option<i64>, first: usize) -> IoResult {
    let (rest_buf, rest_len) = (buf + first, len - first);
    let rest_offset = offset.map(|o| o + first as i64);
    match on_disk(move || real_read(fd, rest_buf, rest_len, rest_offset)) {
        Ok(n) => Ok(first + n),
        // The bytes already read count, as for a read the kernel cuts short.
        Err(_) if first > 0 => Ok(first),
        Err(e) => Err(e),
    }
}

/// A call a helper thread makes for a coroutine on a local disk file system (the only ones where
/// RWF_NOWAIT works, and so the only ones whose calls go to a helper; network and FUSE file systems
/// refuse it and are read inline): the kernel waits for the disk there without letting a signal
/// interrupt the call. So does the coroutine: it stays parked (its worker runs others), a handler for
/// it runs on its own stack once the call is over, and the result stands — no EINTR, no short count, no
/// byte read or written twice, as natively.
fn on_disk(call: impl FnOnce() -> IoResult + Send + 'static) -> IoResult {
    offload::run_uninterruptible(Offload::File, call)
}

/// A system call that may wait indefinitely, made on a helper thread for a coroutine (`offload::syscall`):
/// a handled signal or a cancellation request aborts its wait, which ends as the kernel's would (the
/// kernel's short count or EINTR; restarted under SA_RESTART), and the handler runs on the coroutine's
/// own stack once the call is over. No byte is lost or moved twice: the call is aborted only where the
/// kernel did nothing or interrupts it.
fn on_helper(kind: Offload, (nr, args): (libc::c_long, [usize; 6])) -> IoResult {
    // SAFETY: the program's own arguments (buffers, offsets, lock descriptions), which stay valid while
    // it waits for this call: the coroutine runs nothing until the helper is back.
    unsafe { offload::syscall(kind, OnSignal::FailUnlessRestart, nr, args) }
}

fn real_read(fd: i32, buf: usize, len: usize, offset: Option<i64>) -> IoResult {
    // SAFETY: the program's buffer and fd.
    unsafe {
        match offset {
            None => sys::fd::read(fd, buf as *mut u8, len),
            Some(o) => sys::fd::pread(fd, buf as *mut u8, len, o),
        }
    }
}

fn real_write(fd: i32, buf: usize, len: usize, offset: Option<i64>) -> IoResult {
    // SAFETY: the program's buffer and fd.
    unsafe {
        match offset {
            None => sys::fd::write(fd, buf as *const u8, len),
            Some(o) => sys::fd::pwrite(fd, buf as *const u8, len, o),
        }
    }
}

/// write(2) or pwrite(2) of a regular file.
pub fn write(fd: i32, buf: *const u8, len: usize, offset: Option<i64>) -> IoResult {
    let Some(e) = fd::entry(fd) else { return real_write(fd, buf as usize, len, offset) };
    // O_APPEND writes ignore pwrite's offset natively, and RWF_NOWAIT would be no different; keep it simple.
    if len == 0 || e.nowait_writes() == NOWAIT_WRITES_NO {
        return real_write(fd, buf as usize, len, offset);
    }
    let at = offset.unwrap_or(AT_POSITION);
    match nowait(true, fd, buf as usize, len, at) {
        Ok(n) => {
            e.set_nowait_writes(NOWAIT_WRITES_YES);
            Ok(n)
        }
        Err(Errno(libc::EOPNOTSUPP)) => {
            e.set_nowait_writes(NOWAIT_WRITES_NO);
            real_write(fd, buf as usize, len, offset)
        }
        Err(Errno(libc::EAGAIN)) => {
            let b = buf as usize;
            on_disk(move || real_write(fd, b, len, offset))
        }
        // ESPIPE, EINVAL, EBADF...: the real call gives the kernel's own answer.
        Err(_) => real_write(fd, buf as usize, len, offset),
    }
}

/// fsync(2) (`data_only` false) or fdatasync(2): on a helper thread.
pub fn sync(fd: i32, data_only: bool) -> IoResult {
    on_disk(move || sys::fd::fsync(fd, data_only))
}

/// pread(fd, buf, len, off) for a coroutine: the rules above for a regular file; anything else answers
/// at once (pipes and sockets ESPIPE, a bad offset EINVAL), as does an empty read.
pub fn pread(fd: i32, buf: *mut u8, len: usize, off: i64) -> IoResult {
    if len == 0 || off < 0 || !is_regular_file(fd) {
        return real_read(fd, buf as usize, len, Some(off));
    }
    read(fd, buf, len, Some(off))
}

/// pwrite(fd, buf, len, off) for a coroutine, as [`pread`].
pub fn pwrite(fd: i32, buf: *const u8, len: usize, off: i64) -> IoResult {
    if off < 0 || !is_regular_file(fd) {
        return real_write(fd, buf as usize, len, Some(off));
    }
    write(fd, buf, len, Some(off))
}

/// fcntl(fd, F_SETLKW or F_OFD_SETLKW, lock) for a coroutine (also `lockf(F_LOCK)`, which is that): a
/// record lock waits in the kernel, which nothing can poll for, so a helper thread waits for it (record
/// locks belong to the process or the open file description, not to a thread, so the lock the helper gets
/// is the program's). A handled signal or a cancellation request aborts the helper's wait
/// (`offload::run_abortable`): the call fails with EINTR, or waits again under SA_RESTART, as the
/// kernel's — unless the lock was granted first, which then stands (the handler runs, and the call
/// succeeds).
pub fn lock_wait(fd: i32, cmd: i32, lock: usize) -> IoResult {
    on_helper(Offload::Other, (libc::SYS_fcntl, [fd as usize, cmd as usize, lock, 0, 0, 0]))
}

/// flock(fd, op) without LOCK_NB for a coroutine: as [`lock_wait`] (a BSD lock belongs to the open file
/// description).
pub fn flock_wait(fd: i32, op: i32) -> IoResult {
    on_helper(Offload::Other, (libc::SYS_flock, [fd as usize, op as usize, 0, 0, 0, 0]))
}

/// sendfile and splice have no per-call non-blocking form on a blocking fd and move data between two
/// fds: a coroutine has a helper thread make the call while it parks ([`on_helper`]: a signal ends it
/// as the kernel would, with what was moved so far or EINTR); a plain thread makes it itself.
pub fn sendfile(out: i32, inp: i32, off: *mut libc::off_t, count: usize) -> IoResult {
    on_helper(Offload::Other, (libc::SYS_sendfile, [out as usize, inp as usize, off as usize, count, 0, 0]))
}

pub use sys::fd::SpliceEnd;

/// splice(2) from one end to the other: as [`sendfile`].
pub fn splice(from: SpliceEnd, to: SpliceEnd, len: usize, flags: u32) -> IoResult {
    let args = [from.fd as usize, from.offset, to.fd as usize, to.offset, len, flags as usize];
    on_helper(Offload::Other, (libc::SYS_splice, args))
}
