//! Thread pidfds of coroutines: `pidfd_open(tid, PIDFD_THREAD)` of a thread the runtime runs. No kernel
//! task has a coroutine's tid, so the kernel has no pidfd for it. The program gets a real thread pidfd of a
//! stand-in: an OS thread of the runtime that sleeps while the coroutine lives and exits when it ends
//! (before its joiner returns). So the fd is the kernel's own pidfd, for everything the kernel does with
//! it: poll, select and epoll (nothing while the thread runs, POLLIN|POLLHUP at once when it ended),
//! fstat, `/proc/self/fd`, its flags, dup, close, `pidfd_getfd` (the stand-in shares the fd
//! table), `waitid(P_PIDFD)` (ECHILD), and, after the end, ESRCH. What the stand-in cannot be is the
//! thread's target for signals: `pidfd_send_signal` through it (found by its pidfs inode, unique per
//! task since Linux 6.9) goes to the coroutine. One stand-in serves every pidfd of a coroutine.

use super::io::fd;
use super::lock::Lock;
use super::sys::{self, Errno};
use super::task::{Life, TaskRef};
use super::worker;
use core::ffi::c_void;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering, fence};

/// What a stand-in and the runtime share.
struct Job {
    /// The stand-in's kernel tid (0 until it runs).
    os_tid: AtomicU32,
    /// Set when the coroutine ended: the stand-in exits.
    end: AtomicU32,
}

/// The stand-in of one coroutine.
struct StandIn {
    /// The coroutine's tid.
    tid: i32,
    /// The pidfs inode of the stand-in's pidfds.
    dev: u64,
    ino: u64,
    /// A pidfd of the stand-in, the runtime's own: readable once the stand-in has exited.
    own: i32,
    thread: libc::pthread_t,
    job: Box<Job>,
}

static STAND_INS: Lock<Vec<StandIn>> = Lock::new(Vec::new());
/// Entries in STAND_INS: when 0, a thread's end and a signal need not look.
static COUNT: AtomicUsize = AtomicUsize::new(0);

/// pidfd_send_signal's scope flags (Linux 6.9).
const SIGNAL_THREAD: u32 = 1;
const SIGNAL_THREAD_GROUP: u32 = 2;
const SIGNAL_PROCESS_GROUP: u32 = 4;
const PIDFD_THREAD: u32 = libc::O_EXCL as u32;

/// Whether the kernel has thread pidfds (PIDFD_THREAD, Linux 6.9): before, pidfd_open refuses the flag.
pub fn supported() -> bool {
    main_pidfd_inode().is_some()
}

extern "C" fn stand_in(arg: *mut c_void) -> *mut c_void {
    // SAFETY: `arg` is the Job of a StandIn, freed only after this thread was joined.
    let job = unsafe { &*(arg as *const Job) };
    job.os_tid.store(sys::gettid() as u32, Ordering::Release);
    sys::futex::wake(&job.os_tid, 1);
    while job.end.load(Ordering::Acquire) == 0 {
        sys::futex::wait(&job.end, 0, None);
    }
    core::ptr::null_mut()
}

/// Starts a stand-in for coroutine `tid` (None: no thread or no pidfd could be had).
fn start(tid: i32) -> Option<StandIn> {
    let job = Box::new(Job { os_tid: AtomicU32::new(0), end: AtomicU32::new(0) });
    let arg = &*job as *const Job as *mut c_void;
    // SAFETY: the job lives in the StandIn until the thread has been joined.
    let thread = unsafe { super::os_thread::start_joinable(stand_in, arg) }?;
    while job.os_tid.load(Ordering::Acquire) == 0 {
        sys::futex::wait(&job.os_tid, 0, None);
    }
    let os_tid = job.os_tid.load(Ordering::Acquire) as i32;
    let own = sys::process::pidfd_open_flags(os_tid, PIDFD_THREAD).ok().map(fd::move_high);
    let st = own.and_then(|own| sys::fd::fstat(own).ok());
    let (Some(own), Some(st)) = (own, st) else {
        stop(thread, job, own);
        return None;
    };
    Some(StandIn { tid, dev: st.st_dev, ino: st.st_ino, own, thread, job })
}

/// Ends a stand-in and waits until its pidfds are readable (natively a thread's pidfd is readable once
/// pthread_join of it returned).
fn stop(thread: libc::pthread_t, job: Box<Job>, own: Option<i32>) {
    job.end.store(1, Ordering::Release);
    sys::futex::wake(&job.end, 1);
    if let Some(own) = own {
        let mut p = libc::pollfd { fd: own, events: libc::POLLIN, revents: 0 };
        // SAFETY: poll on one local pollfd, no timeout, no mask.
        let _ = unsafe { sys::poll::ppoll(&mut p, 1, core::ptr::null(), core::ptr::null()) };
        fd::unmark_runtime_own(own);
        // Our own pidfd of the stand-in.
        let _ = sys::fd::close(own);
    }
    // SAFETY: a joinable thread of ours that is exiting; joined once.
    unsafe { crate::real::pthread_join(thread, core::ptr::null_mut()) };
    drop(job);
}

/// A thread pidfd for `task` (a coroutine other than the main thread), with O_NONBLOCK if asked
/// (`flags`: the program's, PIDFD_THREAD among them).
pub fn open(task: TaskRef, flags: u32) -> Result<i32, Errno> {
    let tid = task.tid.get();
    let os_tid = {
        let mut all = STAND_INS.lock();
        if !all.iter().any(|s| s.tid == tid) {
            let s = start(tid).ok_or(Errno(libc::EAGAIN))?;
            all.push(s);
            COUNT.store(all.len(), Ordering::SeqCst);
        }
        let s = all.iter().find(|s| s.tid == tid).map(|s| s.job.os_tid.load(Ordering::Acquire));
        s.unwrap_or(0) as i32
    };
    // The thread may have ended meanwhile: its end ([`thread_ended`]) sets its life under the join lock and
    // then looks here, so either it saw the stand-in (and stopped it) or the check below sees it ended.
    fence(Ordering::SeqCst);
    if task.join.lock().life != Life::Running {
        thread_ended(tid);
        return Err(Errno(libc::ESRCH));
    }
    sys::process::pidfd_open_flags(os_tid, flags)
}

/// The thread `tid` ended (its life is no longer Running): its stand-in exits, so its pidfds become
/// readable.
pub fn thread_ended(tid: i32) {
    fence(Ordering::SeqCst);
    if COUNT.load(Ordering::SeqCst) == 0 {
        return;
    }
    let s = {
        let mut all = STAND_INS.lock();
        let s = all.iter().position(|s| s.tid == tid).map(|i| all.swap_remove(i));
        COUNT.store(all.len(), Ordering::SeqCst);
        s
    };
    if let Some(s) = s {
        stop(s.thread, s.job, Some(s.own));
    }
}

/// What a thread pidfd names for a signal.
#[derive(Clone, Copy)]
struct Target {
    tid: i32,
}

/// The coroutine whose stand-in `fd` is a pidfd of, while it runs.
fn target(fd: i32) -> Option<Target> {
    if COUNT.load(Ordering::Acquire) == 0 {
        return None;
    }
    let st = sys::fd::fstat(fd).ok()?;
    let all = STAND_INS.lock();
    all.iter().find(|s| s.dev == st.st_dev && s.ino == st.st_ino).map(|s| Target { tid: s.tid })
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
/// only its own). Ok: where the signal goes (`signals::through_thread_pidfd`). Once the thread ended its
/// stand-in has exited, and the kernel answers (ESRCH after the same checks).
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
    if flags == SIGNAL_PROCESS_GROUP {
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
    Some(Target { tid: sys::getpid() })
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

/// In a forked child: the stand-ins are the parent's (the child has neither them nor the coroutines).
pub fn forget_in_child() {
    // The child is single-threaded here, so the lock is free unless fork caught it held: then skip.
    let Some(mut all) = STAND_INS.try_lock() else { return };
    for s in all.drain(..) {
        fd::unmark_runtime_own(s.own);
        // The child's copy of our own pidfd; the job's memory is the parent's stand-in's, left as it is.
        let _ = sys::fd::close(s.own);
        core::mem::forget(s.job);
    }
    COUNT.store(0, Ordering::SeqCst);
}
