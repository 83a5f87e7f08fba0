//! read/write and their vector, positioned and fortified forms, and the fd bookkeeping every fd family
//! needs (close, close_range, dup2/dup3, pipe/pipe2, eventfd/timerfd/signalfd, fcntl, fclose/freopen);
//! message queues (System V's, POSIX's) and tcdrain. A
//! coroutine's call is `runtime::io`'s (it parks on the netpoller when it would block); a plain thread's
//! is the real call. Calls that make or replace a number tell the runtime's fd table.

use super::set_errno;
use crate::real;
use crate::runtime::cancel;
use crate::runtime::io::closing::{self, Closing};
use crate::runtime::io::{IoResult, aio, fd, file, kind, msgq, rw};
use crate::runtime::worker;
use std::ffi::{c_char, c_int, c_uint, c_void};

/// Turns a runtime result into the C convention: the count, or -1 with errno set.
pub(crate) fn ret(r: IoResult) -> isize {
    match r {
        Ok(n) => n as isize,
        Err(e) => {
            set_errno(e.0);
            -1
        }
    }
}

coroutine_or_real! {
    read(fd: c_int, buf: *mut c_void, len: usize) -> isize => rw::read(fd, buf as *mut u8, len);
    write(fd: c_int, buf: *const c_void, len: usize) -> isize => rw::write(fd, buf as *const u8, len);
    // A negative count gets the kernel's EINVAL.
    readv(fd: c_int, iov: *const libc::iovec, cnt: c_int) -> isize, real if cnt < 0
        => rw::readv(fd, iov, cnt as usize);
    writev(fd: c_int, iov: *const libc::iovec, cnt: c_int) -> isize, real if cnt < 0
        => rw::writev(fd, iov, cnt as usize);
    pread(fd: c_int, buf: *mut c_void, len: usize, off: libc::off_t) -> isize, also pread64
        => file::pread(fd, buf as *mut u8, len, off);
    pwrite(fd: c_int, buf: *const c_void, len: usize, off: libc::off_t) -> isize, also pwrite64
        => file::pwrite(fd, buf as *const u8, len, off);
    fsync(fd: c_int) -> c_int => file::sync(fd, false);
    fdatasync(fd: c_int) -> c_int => file::sync(fd, true);
}

fortified! {
    __read_chk(fd: c_int, buf: *mut c_void, len: usize, buflen: usize) -> isize, if len <= buflen
        => read(fd, buf, len);
    __pread_chk(fd: c_int, buf: *mut c_void, len: usize, off: libc::off_t, buflen: usize) -> isize, if len <= buflen
        => pread(fd, buf, len, off);
    __pread64_chk(fd: c_int, buf: *mut c_void, len: usize, off: libc::off_t, buflen: usize) -> isize, if len <= buflen
        => pread(fd, buf, len, off);
}

/// The answer for a number the program does not have open (one of the runtime's hidden duplicates).
fn not_open() -> c_int {
    // SAFETY: errno of the calling thread.
    unsafe { *libc::__errno_location() = libc::EBADF };
    -1
}

/// # Safety
/// C contract of close.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    cancel::point(|| {
        if crate::runtime::running() && closing::closing(fd) == Closing::NotOpen {
            return not_open();
        }
        // SAFETY: forwarding.
        unsafe { real::close(fd) }
    })
}

/// # Safety
/// C contract of dup.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup(old: c_int) -> c_int {
    // SAFETY: forwarding.
    let r = unsafe { real::dup(old) };
    if r >= 0 && crate::runtime::running() {
        kind::duplicated(r);
    }
    r
}

/// # Safety
/// C contract of dup2.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    if crate::runtime::running() && closing::replacing(old, new) == Closing::NotOpen {
        return not_open();
    }
    // SAFETY: forwarding.
    let r = unsafe { real::dup2(old, new) };
    if r >= 0 && crate::runtime::running() {
        kind::duplicated(r);
    }
    r
}

/// # Safety
/// C contract of dup3.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    if crate::runtime::running() && closing::replacing(old, new) == Closing::NotOpen {
        return not_open();
    }
    // SAFETY: forwarding.
    let r = unsafe { real::dup3(old, new, flags) };
    if r >= 0 && crate::runtime::running() {
        kind::duplicated(r);
    }
    r
}

/// # Safety
/// C contract of pipe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pipe(fds: *mut c_int) -> c_int {
    // SAFETY: forwarding.
    let r = unsafe { real::pipe(fds) };
    if r == 0 && crate::runtime::running() {
        // SAFETY: the kernel filled both.
        kind::pipe_created(unsafe { [*fds, *fds.add(1)] });
    }
    r
}

/// # Safety
/// C contract of pipe2.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pipe2(fds: *mut c_int, flags: c_int) -> c_int {
    // SAFETY: forwarding.
    let r = unsafe { real::pipe2(fds, flags) };
    if r == 0 && crate::runtime::running() {
        // SAFETY: the kernel filled both.
        kind::pipe_created(unsafe { [*fds, *fds.add(1)] });
    }
    r
}

/// An eventfd, timerfd or signalfd the kernel just created (or -1): the fd table forgets what it knew of
/// the number.
fn pollable_created(fd: c_int) -> c_int {
    if fd >= 0 && crate::runtime::running() {
        kind::pollable_created(fd);
    }
    fd
}

/// fcntl: F_SETFL may change O_NONBLOCK (the fd table's cached verdicts are looked up again) and
/// F_DUPFD/F_DUPFD_CLOEXEC make a number. Variadic in C; the one optional argument arrives in the third
/// integer register either way (see `syscall`).
///
/// # Safety
/// C contract of fcntl.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    // SAFETY: as fcntl64.
    unsafe { fcntl64(fd, cmd, arg) }
}

/// flock: a lock that must wait goes to a helper thread for a coroutine (`runtime::io::file::flock_wait`).
///
/// # Safety
/// C contract of flock.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flock(fd: c_int, op: c_int) -> c_int {
    if op & libc::LOCK_NB == 0 && op & (libc::LOCK_SH | libc::LOCK_EX) != 0 && worker::current_task().is_some() {
        return ret(file::flock_wait(fd, op)) as c_int;
    }
    // SAFETY: forwarding.
    unsafe { real::flock(fd, op) }
}

/// lockf: F_LOCK is glibc's fcntl(F_SETLKW) on a write lock from the current offset for `len` bytes (a
/// cancellation point, as glibc's), which goes to a helper thread for a coroutine; the rest is glibc's.
///
/// # Safety
/// C contract of lockf.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lockf(fd: c_int, cmd: c_int, len: libc::off_t) -> c_int {
    if cmd == libc::F_LOCK && worker::current_task().is_some() {
        // SAFETY: flock is plain data; zeroes are a valid value.
        let mut fl: libc::flock = unsafe { core::mem::zeroed() };
        fl.l_type = libc::F_WRLCK as libc::c_short;
        fl.l_whence = libc::SEEK_CUR as libc::c_short;
        fl.l_start = 0;
        fl.l_len = len;
        let lock = &fl as *const libc::flock as usize;
        return cancel::point(|| ret(file::lock_wait(fd, libc::F_SETLKW, lock)) as c_int);
    }
    // SAFETY: forwarding.
    unsafe { real::lockf(fd, cmd, len) }
}

/// # Safety
/// C contract of lockf64.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lockf64(fd: c_int, cmd: c_int, len: libc::off_t) -> c_int {
    // SAFETY: the same function on x86-64.
    unsafe { lockf(fd, cmd, len) }
}

/// # Safety
/// C contract of fcntl64.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    if matches!(cmd, libc::F_SETLKW | libc::F_OFD_SETLKW) && worker::current_task().is_some() {
        // A cancellation point (as glibc's): the lock wait goes to a helper thread.
        return cancel::point(|| ret(file::lock_wait(fd, cmd, arg)) as c_int);
    }
    // SAFETY: forwarding.
    let r = unsafe { real::fcntl64(fd, cmd, arg) };
    if crate::runtime::running() {
        match cmd {
            libc::F_SETFL => fd::flags_changed(),
            libc::F_DUPFD | libc::F_DUPFD_CLOEXEC if r >= 0 => kind::duplicated(r),
            _ => {}
        }
    }
    r
}

/// ioctl: FIONBIO changes O_NONBLOCK. Variadic in C, like fcntl.
///
/// # Safety
/// C contract of ioctl.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ioctl(fd: c_int, request: libc::c_ulong, arg: usize) -> c_int {
    // SAFETY: forwarding.
    let r = unsafe { real::ioctl(fd, request, arg) };
    if request == libc::FIONBIO && crate::runtime::running() {
        fd::flags_changed();
    }
    r
}

/// # Safety
/// C contract of eventfd.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn eventfd(init: c_uint, flags: c_int) -> c_int {
    // SAFETY: forwarding.
    pollable_created(unsafe { real::eventfd(init, flags) })
}

/// # Safety
/// C contract of timerfd_create.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn timerfd_create(clock: c_int, flags: c_int) -> c_int {
    // SAFETY: forwarding.
    pollable_created(unsafe { real::timerfd_create(clock, flags) })
}

/// signalfd with -1 creates a number; with an existing fd it only changes that one's mask.
///
/// # Safety
/// C contract of signalfd.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn signalfd(fd: c_int, mask: *const libc::sigset_t, flags: c_int) -> c_int {
    // SAFETY: forwarding.
    let r = unsafe { real::signalfd(fd, mask, flags) };
    if fd == -1 { pollable_created(r) } else { r }
}

/// eventfd_read and eventfd_write use glibc's internal read and write: made with the hooked ones instead, so
/// a coroutine waiting for an eventfd parks.
///
/// # Safety
/// C contract of eventfd_read.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn eventfd_read(fd: c_int, value: *mut u64) -> c_int {
    // SAFETY: the program's pointer, as glibc passes it to read.
    if unsafe { read(fd, value as *mut c_void, 8) } == 8 { 0 } else { -1 }
}

/// # Safety
/// C contract of eventfd_write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn eventfd_write(fd: c_int, value: u64) -> c_int {
    // SAFETY: a local value, as glibc passes it to write.
    if unsafe { write(fd, &value as *const u64 as *const c_void, 8) } == 8 { 0 } else { -1 }
}

/// stdio closes its fd with glibc's internal close, which no hook sees: forget the fd first.
///
/// # Safety
/// C contract of fclose.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fclose(f: *mut libc::FILE) -> c_int {
    let write_error = super::stdio_write::flush_before_close(f);
    // SAFETY: a live FILE per the contract.
    unsafe { stream_closing(f) };
    // SAFETY: forwarding.
    closed_after_flush(write_error, unsafe { real::fclose(f) })
}

/// fclose's result after the write before it failed with `write_error`: EOF with the write's errno, unless
/// the close itself failed (glibc returns the close's status first).
pub(crate) fn closed_after_flush(write_error: Option<c_int>, r: c_int) -> c_int {
    match write_error {
        Some(e) if r == 0 => {
            set_errno(e);
            libc::EOF
        }
        _ => r,
    }
}

/// # Safety
/// `f` is null or a live FILE.
pub(super) unsafe fn stream_closing(f: *mut libc::FILE) {
    if crate::runtime::running() && !f.is_null() {
        // SAFETY: a live FILE per the contract.
        let fd = unsafe { libc::fileno(f) };
        if fd >= 0 {
            let _ = closing::closing(fd);
        }
    }
}

/// close_range closes many numbers at once: the runtime forgets the program's and keeps its own open.
///
/// # Safety
/// C contract of close_range.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    if !crate::runtime::running() {
        return ret_int(crate::runtime::sys::fd::close_range(first, last, flags as u32));
    }
    ret_int(closing::close_range(first, last, flags as u32))
}

/// # Safety
/// C contract of closefrom.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn closefrom(low: c_int) {
    // glibc falls back to closing one by one when close_range fails; the runtime's version does not fail
    // for a valid range.
    // SAFETY: as close_range.
    let _ = unsafe { close_range(low.max(0) as c_uint, c_uint::MAX, 0) };
}

fn ret_int(r: IoResult) -> c_int {
    match r {
        Ok(v) => v as c_int,
        Err(e) => {
            set_errno(e.0);
            -1
        }
    }
}

/// # Safety
/// C contract of sendfile.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendfile(out: c_int, inp: c_int, off: *mut libc::off_t, count: usize) -> isize {
    ret(file::sendfile(out, inp, off, count))
}

same_function! {
    sendfile64 = sendfile(out: c_int, inp: c_int, off: *mut libc::off_t, count: usize) -> isize;
}

/// # Safety
/// C contract of splice.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn splice(
    fd_in: c_int,
    off_in: *mut libc::loff_t,
    fd_out: c_int,
    off_out: *mut libc::loff_t,
    len: usize,
    flags: libc::c_uint,
) -> isize {
    let (from, to) = (
        file::SpliceEnd { fd: fd_in, offset: off_in as usize },
        file::SpliceEnd { fd: fd_out, offset: off_out as usize },
    );
    ret(file::splice(from, to, len, flags))
}

/// msgrcv: a cancellation point that may wait indefinitely on a System V message queue; a coroutine's
/// is `runtime::io::msgq`'s.
///
/// # Safety
/// C contract of msgrcv.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msgrcv(id: c_int, msg: *mut c_void, size: usize, kind: libc::c_long, flags: c_int) -> isize {
    if worker::current_task().is_none() || flags & libc::IPC_NOWAIT != 0 {
        // SAFETY: forwarding.
        return unsafe { real::msgrcv(id, msg, size, kind, flags) };
    }
    cancel::point(|| ret(msgq::receive(id, msg, size, kind, flags)))
}

/// msgsnd: as [`msgrcv`], waiting for room in a full queue.
///
/// # Safety
/// C contract of msgsnd.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msgsnd(id: c_int, msg: *const c_void, size: usize, flags: c_int) -> c_int {
    if worker::current_task().is_none() || flags & libc::IPC_NOWAIT != 0 {
        // SAFETY: forwarding.
        return unsafe { real::msgsnd(id, msg, size, flags) };
    }
    cancel::point(|| ret(msgq::send(id, msg, size, flags)) as c_int)
}

/// A call a coroutine makes through `runtime::worker_call` (it may wait in the kernel, where a
/// cancellation request or a signal must reach it), a cancellation point; `real` otherwise.
///
/// # Safety
/// The arguments must be valid for system call `nr`.
unsafe fn in_kernel_wait<R: TryFrom<isize>>(nr: libc::c_long, args: [usize; 6], real: impl FnOnce() -> R) -> R {
    cancel::point_task(|me| match me {
        // SAFETY: the calling coroutine; the arguments per the contract.
        Some(me) => R::try_from(ret(unsafe { crate::runtime::worker_call::call(me, nr, args) }))
            .unwrap_or_else(|_| unreachable!("a count the kernel returned")),
        None => real(),
    })
}

/// msync: a cancellation point (glibc's acts on a request at entry; the kernel's wait for the write-back
/// is not interruptible).
///
/// # Safety
/// C contract of msync.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msync(addr: *mut c_void, len: usize, flags: c_int) -> c_int {
    // SAFETY: forwarding.
    cancel::point(|| unsafe { real::msync(addr, len, flags) })
}

/// tcdrain: ioctl(TCSBRK, 1), which waits until the terminal has sent its output (as glibc's).
///
/// # Safety
/// C contract of tcdrain.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tcdrain(fd: c_int) -> c_int {
    // SAFETY: an ioctl with an integer argument; forwarding otherwise.
    unsafe { in_kernel_wait(libc::SYS_ioctl, [fd as usize, libc::TCSBRK as usize, 1, 0, 0, 0], || real::tcdrain(fd)) }
}

/// mq_timedreceive: may wait for a message (the kernel's absolute CLOCK_REALTIME timeout applies on the
/// helper thread as in the program's own call).
///
/// # Safety
/// C contract of mq_timedreceive.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_timedreceive(
    mq: libc::mqd_t,
    msg: *mut c_char,
    len: usize,
    prio: *mut c_uint,
    abs: *const libc::timespec,
) -> isize {
    let args = [mq as usize, msg as usize, len, prio as usize, abs as usize, 0];
    // SAFETY: the program's arguments, as the system call takes them; forwarding otherwise.
    unsafe { in_kernel_wait(libc::SYS_mq_timedreceive, args, || real::mq_timedreceive(mq, msg, len, prio, abs)) }
}

/// aio_suspend: a cancellation point where it waits (glibc's acts on a request only in its futex wait: a
/// call that finds a request over returns at once, as the real call made here does).
///
/// # Safety
/// C contract of aio_suspend.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aio_suspend(
    list: *const *const libc::aiocb,
    nent: c_int,
    timeout: *const libc::timespec,
) -> c_int {
    let real = real::aio_suspend();
    // SAFETY: the program's list, as glibc reads it.
    if worker::current_task().is_none() || !unsafe { aio::would_wait(list, nent) } {
        // SAFETY: forwarding.
        return unsafe { real(list, nent, timeout) };
    }
    cancel::point(|| {
        // SAFETY: the calling coroutine's arguments, valid for the call.
        let (r, e) = unsafe { aio::suspend(real, list, nent, timeout) };
        if r == -1 {
            set_errno(e);
        }
        r
    })
}

same_function! {
    aio_suspend64 = aio_suspend(list: *const *const libc::aiocb, nent: c_int, timeout: *const libc::timespec) -> c_int;
}

/// mq_receive: mq_timedreceive without a timeout.
///
/// # Safety
/// C contract of mq_receive.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_receive(mq: libc::mqd_t, msg: *mut c_char, len: usize, prio: *mut c_uint) -> isize {
    let args = [mq as usize, msg as usize, len, prio as usize, 0, 0];
    // SAFETY: as for mq_timedreceive.
    unsafe { in_kernel_wait(libc::SYS_mq_timedreceive, args, || real::mq_receive(mq, msg, len, prio)) }
}

/// mq_timedsend: may wait for room in a full queue.
///
/// # Safety
/// C contract of mq_timedsend.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_timedsend(
    mq: libc::mqd_t,
    msg: *const c_char,
    len: usize,
    prio: c_uint,
    abs: *const libc::timespec,
) -> c_int {
    let args = [mq as usize, msg as usize, len, prio as usize, abs as usize, 0];
    // SAFETY: as for mq_timedreceive.
    unsafe { in_kernel_wait(libc::SYS_mq_timedsend, args, || real::mq_timedsend(mq, msg, len, prio, abs)) }
}

/// mq_send: mq_timedsend without a timeout.
///
/// # Safety
/// C contract of mq_send.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_send(mq: libc::mqd_t, msg: *const c_char, len: usize, prio: c_uint) -> c_int {
    let args = [mq as usize, msg as usize, len, prio as usize, 0, 0];
    // SAFETY: as for mq_timedreceive.
    unsafe { in_kernel_wait(libc::SYS_mq_timedsend, args, || real::mq_send(mq, msg, len, prio)) }
}
