//! CPU-time clocks of threads: `clock_gettime`/`clock_getres` on CLOCK_THREAD_CPUTIME_ID or on a clockid
//! from `pthread_getcpuclockid` (the tid inside it, glibc's MAKE_THREAD_CPUCLOCK), `clock_nanosleep` on
//! another thread's, `getrusage(RUSAGE_THREAD)`, and the POSIX timer calls on such a clock (`timer_create`
//! and the calls on the ids it gives, see `runtime::cputime::timers`). A coroutine's CPU time is its own (see
//! `runtime::cputime`); every other clock goes to libc (the vDSO) unchanged.

use super::set_errno;
use crate::real;
use crate::runtime::cputime::timers;
use crate::runtime::sys::syscall::Errno;
use crate::runtime::task::TaskRef;
use crate::runtime::thread::{self, Named};
use crate::runtime::{self, cputime, sys::time, sys::usercopy, worker};
use std::ffi::c_int;

/// The kernel's CPU-clock kinds (CPUCLOCK_WHICH): user + system (0, CPUCLOCK_PROF), user, scheduler runtime.
const CPUCLOCK_SCHED: i32 = 2;
const CPUCLOCK_PERTHREAD_MASK: i32 = 4;

/// What a clockid names when it is a thread's CPU-time clock the runtime answers for.
pub enum ThreadClock {
    /// The thread, and whether it is the caller.
    Of(TaskRef, bool, i32),
    /// A fake tid of a thread that ended: EINVAL, as for a tid the kernel does not know.
    Gone,
}

/// The calling coroutine, in its own code or its signal handlers.
fn caller() -> Option<TaskRef> {
    worker::current_worker().and_then(|w| w.task_in_context())
}

/// Whether `clock` is a thread CPU-time clock of a coroutine (None: libc's business).
pub fn thread_clock(clock: libc::clockid_t) -> Option<ThreadClock> {
    if clock == libc::CLOCK_THREAD_CPUTIME_ID {
        return caller().map(|t| ThreadClock::Of(t, true, CPUCLOCK_SCHED));
    }
    if clock >= 0 || clock & CPUCLOCK_PERTHREAD_MASK == 0 || clock & 3 == 3 || !runtime::running() {
        return None;
    }
    let which = clock & 3;
    let tid = !(clock >> 3);
    if tid == 0 {
        return caller().map(|t| ThreadClock::Of(t, true, which));
    }
    match thread::named_by_tid(tid) {
        Named::Thread(t) => Some(ThreadClock::Of(t, caller() == Some(t), which)),
        Named::Gone => Some(ThreadClock::Gone),
        Named::Kernel => None,
    }
}

/// A thread's clock of kind `which` now (ns).
fn read(task: &TaskRef, which: i32) -> u64 {
    cputime::clock_ns(task, which)
}

/// # Safety
/// C contract of clock_gettime.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clock_gettime(clock: libc::clockid_t, ts: *mut libc::timespec) -> c_int {
    // Every wall and monotonic clock (clockid >= 0 but 3) goes straight to the vDSO.
    if clock >= 0 && clock != libc::CLOCK_THREAD_CPUTIME_ID {
        // SAFETY: forwarding.
        return unsafe { real::clock_gettime(clock, ts) };
    }
    match thread_clock(clock) {
        // SAFETY: forwarding.
        None => unsafe { real::clock_gettime(clock, ts) },
        Some(ThreadClock::Gone) => {
            set_errno(libc::EINVAL);
            -1
        }
        Some(ThreadClock::Of(task, _, which)) => match usercopy::write(ts, time::ns_timespec(read(&task, which))) {
            Ok(()) => 0,
            Err(e) => {
                set_errno(e.0);
                -1
            }
        },
    }
}

/// # Safety
/// C contract of clock_getres.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clock_getres(clock: libc::clockid_t, ts: *mut libc::timespec) -> c_int {
    match thread_clock(clock) {
        // SAFETY: forwarding.
        None => unsafe { real::clock_getres(clock, ts) },
        Some(ThreadClock::Gone) => {
            set_errno(libc::EINVAL);
            -1
        }
        // The same kind of clock of the calling OS thread has the same resolution (1 ns for the
        // scheduler's, a tick for the sampled ones).
        // SAFETY: forwarding with the caller's out-pointer (null is allowed).
        Some(ThreadClock::Of(_, _, which)) => unsafe {
            real::clock_getres(CPUCLOCK_PERTHREAD_MASK | which | !0 << 3, ts)
        },
    }
}

/// clock_nanosleep on a thread's CPU-time clock, for the `clock_nanosleep` hook: None when `clock` is
/// not a coroutine's. The caller's own clock is EINVAL (glibc's answer for CLOCK_THREAD_CPUTIME_ID, the
/// kernel's for its own tid); another thread's sleeps until it has used that much CPU time.
pub fn nanosleep_on_thread_clock(
    clock: libc::clockid_t,
    flags: c_int,
    req: *const libc::timespec,
    rem: *mut libc::timespec,
) -> Option<c_int> {
    worker::current_task()?;
    let (task, own) = match thread_clock(clock)? {
        ThreadClock::Gone => return Some(libc::EINVAL),
        ThreadClock::Of(t, own, _) => (t, own),
    };
    if own {
        return Some(libc::EINVAL);
    }
    let ts = match usercopy::read(req) {
        Ok(ts) => ts,
        Err(e) => return Some(e.0),
    };
    let Some(ns) = time::timespec_ns(&ts) else { return Some(libc::EINVAL) };
    let abs = flags & libc::TIMER_ABSTIME != 0;
    let target = if abs { ns } else { cputime::of(&task).saturating_add(ns) };
    Some(match cputime::sleep_until_used(&task, target) {
        Ok(()) => 0,
        Err(left) => {
            if !abs && !rem.is_null() {
                let _ = usercopy::write(rem, time::ns_timespec(left));
            }
            libc::EINTR
        }
    })
}

/// # Safety
/// C contract of getrusage.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn getrusage(who: c_int, usage: *mut libc::rusage) -> c_int {
    let Some(task) = (who == libc::RUSAGE_THREAD).then(caller).flatten() else {
        // SAFETY: forwarding.
        return unsafe { real::getrusage(who, usage) };
    };
    // The process-wide field (maxrss) as the kernel gives it; the thread's own counters are its own: its
    // CPU time, split as its worker's is, and its context switches (parks are voluntary, yields and
    // preemptions involuntary); no faults or block I/O of its own are known (0). The other fields are 0
    // on Linux for every thread.
    // SAFETY: a zeroed rusage is valid.
    let mut ru: libc::rusage = unsafe { core::mem::zeroed() };
    // SAFETY: ru is a valid out-pointer.
    unsafe { real::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let us = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64;
    let (u, s) = cputime::split_user_system(cputime::of(&task), us(ru.ru_utime), us(ru.ru_stime));
    let tv =
        |ns: u64| libc::timeval { tv_sec: (ns / 1_000_000_000) as i64, tv_usec: ((ns % 1_000_000_000) / 1000) as i64 };
    // SAFETY: a zeroed rusage is valid.
    let mut out: libc::rusage = unsafe { core::mem::zeroed() };
    out.ru_utime = tv(u);
    out.ru_stime = tv(s);
    out.ru_maxrss = ru.ru_maxrss;
    let (voluntary, involuntary) = task.cpu.switch_counts();
    out.ru_nvcsw = voluntary as libc::c_long;
    out.ru_nivcsw = involuntary as libc::c_long;
    match usercopy::write(usage, out) {
        Ok(()) => 0,
        Err(e) => {
            set_errno(e.0);
            -1
        }
    }
}

/// The raw system calls among these, as `syscall()` makes them. None: not one of them, or not a
/// coroutine's clock.
pub fn raw(n: libc::c_long, a1: usize, a2: usize, a3: usize, a4: usize) -> Option<Result<usize, Errno>> {
    let errno = super::errno_here;
    let c = |r: c_int| if r < 0 { Err(Errno(errno())) } else { Ok(r as usize) };
    // SAFETY: the hooks take the program's own arguments under their C contracts.
    unsafe {
        match n {
            libc::SYS_clock_gettime => thread_clock(a1 as i32).map(|_| c(clock_gettime(a1 as i32, a2 as *mut _))),
            libc::SYS_clock_getres => thread_clock(a1 as i32).map(|_| c(clock_getres(a1 as i32, a2 as *mut _))),
            libc::SYS_getrusage if a1 as c_int == libc::RUSAGE_THREAD && caller().is_some() => {
                Some(c(getrusage(a1 as c_int, a2 as *mut _)))
            }
            libc::SYS_timer_create => create_on_thread_clock(a1 as i32, a2 as *const SigEvent, false).map(|r| {
                let made = r?;
                usercopy::write(a3 as *mut i32, made).inspect_err(|_| {
                    let _ = timers::delete(made as i64);
                })?;
                Ok(0)
            }),
            libc::SYS_timer_settime if timers::is_ours(a1 as i32 as i64) => {
                Some(settime(a1 as i32 as i64, a2 as c_int, a3 as *const _, a4 as *mut _).map(|()| 0))
            }
            libc::SYS_timer_gettime if timers::is_ours(a1 as i32 as i64) => {
                Some(timers::gettime(a1 as i32 as i64).and_then(|v| write_itimerspec(a2 as *mut _, v)).map(|()| 0))
            }
            libc::SYS_timer_getoverrun if timers::is_ours(a1 as i32 as i64) => {
                Some(timers::getoverrun(a1 as i32 as i64).map(|v| v as usize))
            }
            libc::SYS_timer_delete if timers::is_ours(a1 as i32 as i64) => {
                Some(timers::delete(a1 as i32 as i64).map(|()| 0))
            }
            libc::SYS_clock_nanosleep => {
                nanosleep_on_thread_clock(a1 as i32, a2 as c_int, a3 as *const _, a4 as *mut _)
                    .map(|r| if r == 0 { Ok(0) } else { Err(Errno(r)) })
            }
            _ => None,
        }
    }
}

/// The kernel's struct sigevent: value, signal, notification, then the thread id (SIGEV_THREAD_ID) or
/// glibc's function and attributes (SIGEV_THREAD).
#[repr(C)]
#[derive(Clone, Copy)]
struct SigEvent {
    value: usize,
    signo: c_int,
    notify: c_int,
    un: [usize; 6],
}

const SIGEV_THREAD_ID: c_int = 4;

/// The notification a program's sigevent asks for, checked as the kernel checks it (`glibc`: made through
/// glibc's timer_create, which runs SIGEV_THREAD functions itself; the raw system call does not know it).
fn notify_of(sev: *const SigEvent, glibc: bool) -> Result<Box<dyn FnOnce(i32) -> timers::Notify>, Errno> {
    if sev.is_null() {
        return Ok(Box::new(|id| timers::Notify::Signal { sig: libc::SIGALRM, value: id as u32 as usize }));
    }
    let e = usercopy::read(sev)?;
    let sig_ok = timers::valid_signal(e.signo);
    Ok(match e.notify {
        libc::SIGEV_NONE => Box::new(|_| timers::Notify::None),
        libc::SIGEV_SIGNAL if sig_ok => Box::new(move |_| timers::Notify::Signal { sig: e.signo, value: e.value }),
        SIGEV_THREAD_ID if sig_ok => {
            Box::new(move |_| timers::Notify::ThreadId { tid: e.un[0] as i32, sig: e.signo, value: e.value })
        }
        // To the kernel SIGEV_THREAD is a signal to the process; glibc runs a function for it.
        libc::SIGEV_THREAD if !glibc && sig_ok => {
            Box::new(move |_| timers::Notify::Signal { sig: e.signo, value: e.value })
        }
        libc::SIGEV_THREAD if glibc && e.un[0] != 0 => {
            let attr = if e.un[1] == 0 {
                None
            } else {
                Some(Box::new(usercopy::read(e.un[1] as *const libc::pthread_attr_t)?))
            };
            // SAFETY: SIGEV_THREAD's function, `void (*)(union sigval)`: a sigval is passed as a word.
            let func: extern "C" fn(usize) = unsafe { core::mem::transmute::<usize, extern "C" fn(usize)>(e.un[0]) };
            Box::new(move |_| timers::Notify::Thread { func, value: e.value, attr })
        }
        _ => return Err(Errno(libc::EINVAL)),
    })
}

/// timer_create on a coroutine's CPU-time clock: Some(id) made, None when `clock` is not one.
fn create_on_thread_clock(clock: libc::clockid_t, sev: *const SigEvent, glibc: bool) -> Option<Result<i32, Errno>> {
    let (task, which) = match thread_clock(clock)? {
        ThreadClock::Gone => return Some(Err(Errno(libc::EINVAL))),
        ThreadClock::Of(t, _, which) => (t, which),
    };
    Some(notify_of(sev, glibc).and_then(|n| timers::create(task, which, n)))
}

/// An itimerspec the program passes, checked as the kernel does (EINVAL for a negative or
/// out-of-range field): (value, interval) in ns.
fn read_itimerspec(p: *const libc::itimerspec) -> Result<(u64, u64), Errno> {
    let its = usercopy::read(p)?;
    let value = time::timespec_ns(&its.it_value).ok_or(Errno(libc::EINVAL))?;
    let interval = time::timespec_ns(&its.it_interval).ok_or(Errno(libc::EINVAL))?;
    Ok((value, interval))
}

fn write_itimerspec(p: *mut libc::itimerspec, (value, interval): (u64, u64)) -> Result<(), Errno> {
    usercopy::write(
        p,
        libc::itimerspec { it_interval: time::ns_timespec(interval), it_value: time::ns_timespec(value) },
    )
}

fn settime(id: i64, flags: c_int, new: *const libc::itimerspec, old: *mut libc::itimerspec) -> Result<(), Errno> {
    let (value, interval) = read_itimerspec(new)?;
    let before = timers::settime(id, flags & libc::TIMER_ABSTIME != 0, value, interval)?;
    if !old.is_null() {
        write_itimerspec(old, before)?;
    }
    Ok(())
}

fn c_result(r: Result<c_int, Errno>) -> c_int {
    r.unwrap_or_else(|e| {
        set_errno(e.0);
        -1
    })
}

/// # Safety
/// C contract of timer_create.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn timer_create(
    clock: libc::clockid_t,
    sev: *mut libc::sigevent,
    id: *mut libc::timer_t,
) -> c_int {
    match create_on_thread_clock(clock, sev as *const SigEvent, true) {
        // SAFETY: forwarding.
        None => unsafe { real::timer_create(clock, sev, id) },
        Some(r) => c_result(r.and_then(|made| {
            usercopy::write(id, made as isize as libc::timer_t).inspect_err(|_| {
                let _ = timers::delete(made as i64);
            })?;
            Ok(0)
        })),
    }
}

/// The calls on a timer id: a timer of the runtime's (a thread CPU-time timer, `runtime::timers`) is the
/// runtime's, any other glibc's.
macro_rules! timer_calls {
    ($( $name:ident($id:ident: libc::timer_t $(, $arg:ident: $t:ty)*) => $ours:expr; )*) => {$(
        /// # Safety
        #[doc = concat!("C contract of ", stringify!($name), ".")]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($id: libc::timer_t $(, $arg: $t)*) -> c_int {
            if !timers::is_ours($id as i64) {
                // SAFETY: forwarding.
                return unsafe { real::$name($id $(, $arg)*) };
            }
            c_result($ours)
        }
    )*};
}

timer_calls! {
    timer_settime(id: libc::timer_t, flags: c_int, new: *const libc::itimerspec, old: *mut libc::itimerspec)
        => settime(id as i64, flags, new, old).map(|()| 0);
    timer_gettime(id: libc::timer_t, cur: *mut libc::itimerspec)
        => timers::gettime(id as i64).and_then(|v| write_itimerspec(cur, v)).map(|()| 0);
    timer_getoverrun(id: libc::timer_t) => timers::getoverrun(id as i64);
    timer_delete(id: libc::timer_t) => timers::delete(id as i64).map(|()| 0);
}
