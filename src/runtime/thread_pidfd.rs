//! Thread pidfds of coroutines: `pidfd_open(tid, PIDFD_THREAD)` of a thread the runtime runs. No kernel
//! task has a coroutine's tid, so the kernel has no pidfd for it. The program gets the read end of a pipe
//! instead, which the kernel itself polls the way it polls a thread pidfd: nothing readable and no
//! hang-up while the thread runs; when it ends, one byte and the write end closed, so poll, select and
//! epoll report POLLIN|POLLHUP, as natively for a thread that exited (measured on 6.18: 0 before, 0x11
//! after the exit and after the join). The write end is the runtime's own, at a high number.
//!
//! The pipe's inode names the thread for the calls the shim sees with such an fd: `pidfd_send_signal`
//! (thread-directed unless the flags say otherwise), `pidfd_getfd` and `waitid(P_PIDFD)`. What the kernel
//! sees without the shim (fstat, `/proc/self/fd` and `fdinfo`, a read) is a pipe's.

use super::io::fd;
use super::lock::Lock;
use super::sys::{self, Errno};
use super::task::{Life, TaskRef};
use super::worker;
use core::sync::atomic::{AtomicUsize, Ordering, fence};

/// One thread pidfd the program opened.
struct Open {
    /// The pipe's inode: what every number naming it (dups, pidfd_getfd copies) has in common.
    dev: u64,
    ino: u64,
    tid: i32,
    /// The write end, -1 once the thread ended.
    writer: i32,
}

static OPEN: Lock<Vec<Open>> = Lock::new(Vec::new());
/// Entries in OPEN: when 0, a thread's end and a close need not look.
static COUNT: AtomicUsize = AtomicUsize::new(0);

/// pidfd_send_signal's scope flags (Linux 6.9).
const SIGNAL_THREAD: u32 = 1;
const SIGNAL_THREAD_GROUP: u32 = 2;
const SIGNAL_PROCESS_GROUP: u32 = 4;

/// A thread pidfd for `task` (a coroutine other than the main thread), with O_NONBLOCK if asked; always
/// close-on-exec, as the kernel's.
pub fn open(task: TaskRef, nonblock: bool) -> Result<i32, Errno> {
    let tid = task.tid.get();
    let [r, w] = sys::fd::pipe2(libc::O_CLOEXEC)?;
    if nonblock && let Err(e) = sys::fd::fcntl(r, libc::F_SETFL, libc::O_NONBLOCK as usize) {
        let _ = sys::fd::close(r);
        let _ = sys::fd::close(w);
        return Err(e);
    }
    // The program's numbers are as without the shim: only the read end is below.
    let w = fd::move_high(w);
    let st = match sys::fd::fstat(r) {
        Ok(st) => st,
        Err(e) => {
            fd::unmark_runtime_own(w);
            let _ = sys::fd::close(r);
            let _ = sys::fd::close(w);
            return Err(e);
        }
    };
    let (dev, ino) = (st.st_dev, st.st_ino);
    {
        let mut open = OPEN.lock();
        open.push(Open { dev, ino, tid, writer: w });
        COUNT.store(open.len(), Ordering::SeqCst);
    }
    // The thread may have ended meanwhile: its end ([`thread_ended`]) sets its life under the join lock and
    // then looks here, so either it saw the entry (and fired it) or the check below sees it ended.
    fence(Ordering::SeqCst);
    if task.join.lock().life != Life::Running {
        drop_entry(dev, ino);
        let _ = sys::fd::close(r);
        return Err(Errno(libc::ESRCH));
    }
    fd::created(r, fd::Kind::NoWait);
    Ok(r)
}

/// Removes the entry of inode (dev, ino), closing its write end if the thread still runs.
fn drop_entry(dev: u64, ino: u64) {
    let mut open = OPEN.lock();
    if let Some(i) = open.iter().position(|o| o.dev == dev && o.ino == ino) {
        let o = open.swap_remove(i);
        if o.writer >= 0 {
            fd::unmark_runtime_own(o.writer);
            // Our own write end.
            let _ = sys::fd::close(o.writer);
        }
    }
    COUNT.store(open.len(), Ordering::SeqCst);
}

/// The thread `tid` ended (its life is no longer Running; called under its join lock): its pidfds become
/// readable and hung up.
pub fn thread_ended(tid: i32) {
    fence(Ordering::SeqCst);
    if COUNT.load(Ordering::SeqCst) == 0 {
        return;
    }
    let mut open = OPEN.lock();
    for o in open.iter_mut().filter(|o| o.tid == tid && o.writer >= 0) {
        fd::unmark_runtime_own(o.writer);
        sys::fd::write_all(o.writer, &[1]);
        // Our own write end: its close is the hang-up the program polls for.
        let _ = sys::fd::close(o.writer);
        o.writer = -1;
    }
}

/// What a thread pidfd names: the thread's tid, and whether it ended.
#[derive(Clone, Copy)]
struct Target {
    tid: i32,
    ended: bool,
}

/// The inode `fd` names, if it is a pipe (a thread pidfd is one).
fn pipe_inode(fd: i32) -> Option<(u64, u64)> {
    let st = sys::fd::fstat(fd).ok()?;
    (st.st_mode & libc::S_IFMT == libc::S_IFIFO).then_some((st.st_dev, st.st_ino))
}

/// The thread `fd` names if it is one of ours.
fn target(fd: i32) -> Option<Target> {
    if COUNT.load(Ordering::Acquire) == 0 {
        return None;
    }
    let (dev, ino) = pipe_inode(fd)?;
    let open = OPEN.lock();
    open.iter().find(|o| o.dev == dev && o.ino == ino).map(|o| Target { tid: o.tid, ended: o.writer < 0 })
}

/// The program is about to close `fd`: Some(inode) when it is one of ours, for [`closed`].
pub fn closing(fd: i32) -> Option<(u64, u64)> {
    if COUNT.load(Ordering::Acquire) == 0 {
        return None;
    }
    let id = pipe_inode(fd)?;
    let open = OPEN.lock();
    open.iter().any(|o| (o.dev, o.ino) == id).then_some(id)
}

/// The program closed a number naming thread pidfd `id`. A running thread's entry goes when no number
/// names its read end any more (the write end then reports POLLERR), an ended thread's at once (a dup
/// left open then answers as a pipe, EBADF).
pub fn closed(id: (u64, u64)) {
    let writer = {
        let open = OPEN.lock();
        match open.iter().find(|o| (o.dev, o.ino) == id) {
            Some(o) => o.writer,
            None => return,
        }
    };
    if writer >= 0 && !matches!(sys::poll::revents_now(writer, libc::POLLOUT), Ok(r) if r & libc::POLLERR != 0) {
        return;
    }
    drop_entry(id.0, id.1);
}

/// The calling thread's tid: a coroutine's own, else the kernel's.
fn caller_tid() -> i32 {
    worker::current_worker().and_then(|w| w.task_in_context()).map_or_else(sys::gettid, |t| t.tid.get())
}

/// Where a signal sent through a thread pidfd goes, once the kernel's checks passed.
pub struct Delivery {
    /// The thread (its tid); None: the process.
    pub tid: Option<i32>,
    /// The sender's siginfo, if it gave one.
    pub info: Option<libc::siginfo_t>,
}

/// pidfd_send_signal(`fd`, `sig`, `info`, `flags`) when `fd` is one of ours (None: the kernel's call), with
/// the kernel's checks in its order: flags, the siginfo (copied, its signal number, a sender may forge
/// only its own), the thread ended (ESRCH). Ok: where the signal goes (`signals::through_thread_pidfd`).
pub fn send_signal(fd: i32, sig: i32, info: *const libc::siginfo_t, flags: u32) -> Option<Result<Delivery, Errno>> {
    let all = SIGNAL_THREAD | SIGNAL_THREAD_GROUP | SIGNAL_PROCESS_GROUP;
    if flags & !all != 0 || flags.count_ones() > 1 {
        return None;
    }
    let t = target(fd).or_else(|| main_thread_target(fd, flags))?;
    let info = if info.is_null() {
        None
    } else {
        let i = match sys::usercopy::read(info) {
            Ok(i) => i,
            Err(e) => return Some(Err(e)),
        };
        if i.si_signo != sig {
            return Some(Err(Errno(libc::EINVAL)));
        }
        if (caller_tid() != t.tid || flags == SIGNAL_PROCESS_GROUP) && (i.si_code >= 0 || i.si_code == libc::SI_TKILL) {
            return Some(Err(Errno(libc::EPERM)));
        }
        Some(i)
    };
    // A process group is led by a process, never by a thread the runtime runs.
    if t.ended || flags == SIGNAL_PROCESS_GROUP {
        return Some(Err(Errno(libc::ESRCH)));
    }
    Some(Ok(Delivery { tid: (flags != SIGNAL_THREAD_GROUP).then_some(t.tid), info }))
}

/// The main thread when `fd` is a pidfd of this process that `flags` make thread-directed (a thread
/// pidfd, or PIDFD_SIGNAL_THREAD): the kernel would signal the initial OS thread, which runs whatever
/// coroutine its worker runs (or none), so the signal goes where pthread_kill sends the main thread's.
fn main_thread_target(fd: i32, flags: u32) -> Option<Target> {
    if flags & (SIGNAL_THREAD_GROUP | SIGNAL_PROCESS_GROUP) != 0 {
        return None;
    }
    let st = sys::fd::fstat(fd).ok()?;
    if Some((st.st_dev, st.st_ino)) != main_pidfd_inode() {
        return None;
    }
    if flags == 0 && sys::fd::fcntl(fd, libc::F_GETFL, 0).ok()? & libc::O_EXCL as usize == 0 {
        return None;
    }
    Some(Target { tid: sys::getpid(), ended: false })
}

/// The inode of this process's pidfds: since Linux 6.9 (pidfs, which also brought PIDFD_THREAD) each
/// process's own. None before (every pidfd then has the same inode, and no pidfd is a thread's).
fn main_pidfd_inode() -> Option<(u64, u64)> {
    static INODE: std::sync::OnceLock<Option<(u64, u64)>> = std::sync::OnceLock::new();
    *super::lazy::get_or_init(&INODE, || {
        let fd = sys::process::pidfd_open_flags(sys::getpid(), libc::O_EXCL as u32).ok()?;
        let st = sys::fd::fstat(fd);
        // Our own pidfd, only looked at.
        let _ = sys::fd::close(fd);
        st.ok().map(|st| (st.st_dev, st.st_ino))
    })
}

/// pidfd_getfd(`fd`, `target_fd`, `flags`) when `fd` is one of ours (None: the kernel's call): the thread
/// shares the caller's fd table, so a close-on-exec duplicate of the caller's own `target_fd` while it runs.
pub fn getfd(fd: i32, target_fd: i32, flags: u32) -> Option<Result<i32, Errno>> {
    if flags != 0 {
        return None;
    }
    let t = target(fd)?;
    if t.ended {
        return Some(Err(Errno(libc::ESRCH)));
    }
    if fd::is_runtime_own(target_fd) {
        return Some(Err(Errno(libc::EBADF)));
    }
    Some(sys::fd::fcntl(target_fd, libc::F_DUPFD_CLOEXEC, 0).map(|n| {
        super::io::kind::duplicated(n as i32);
        n as i32
    }))
}

/// waitid(P_PIDFD, `fd`): a thread is no child of its own process, so for ours the kernel is asked about
/// this process (ECHILD, after its checks of the options). None: not ours.
pub fn waitid_target(fd: i32) -> Option<(u32, u32)> {
    target(fd).map(|_| (libc::P_PID, sys::getpid() as u32))
}

/// In a forked child: the child has none of the parent's coroutines, and its copies of the write ends would
/// keep the parent's pidfds from hanging up.
pub fn forget_in_child() {
    // The child is single-threaded here, so the lock is free unless fork caught it held: then skip.
    let Some(mut open) = OPEN.try_lock() else { return };
    for o in open.drain(..) {
        if o.writer >= 0 {
            fd::unmark_runtime_own(o.writer);
            // The child's copy of our own write end.
            let _ = sys::fd::close(o.writer);
        }
    }
    COUNT.store(0, Ordering::SeqCst);
}
