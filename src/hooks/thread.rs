//! pthread thread functions: create, join (all variants), detach, exit, attributes, names, once.
//! Threads the runtime does not know (made before it started, or real threads it made on purpose) go to
//! libc unchanged.

use crate::real;
use crate::runtime::cancel;
use crate::runtime::thread::{self, JoinKind, StartFn};
use crate::runtime::thread_attr::{self, Plan};
use crate::runtime::{self, sys::time, worker};
use std::ffi::{CStr, c_char, c_int, c_void};

fn known(t: libc::pthread_t) -> Option<runtime::task::TaskRef> {
    if !runtime::running() {
        return None;
    }
    crate::runtime::thread::registry().lookup(t)
}

struct RealStart {
    start: StartFn,
    arg: *mut c_void,
}

/// A real thread started from a coroutine must not inherit its creator's GS (which names a worker).
extern "C" fn real_thread_trampoline(p: *mut c_void) -> *mut c_void {
    // SAFETY: p is the Box<RealStart> leaked by pthread_create below; GS 0 means "not a worker".
    let rs = unsafe { Box::from_raw(p as *mut RealStart) };
    // SAFETY: GS 0 marks a thread that is not a worker; nothing on this thread reads GS as a worker pointer yet.
    unsafe { runtime::sys::fsgs::set_gs_base(0) };
    (rs.start)(rs.arg)
}

/// # Safety
/// C contract of pthread_create.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_create(
    thread_out: *mut libc::pthread_t,
    attr: *const libc::pthread_attr_t,
    start: StartFn,
    arg: *mut c_void,
) -> c_int {
    if worker::current_task().is_none() {
        // SAFETY: pass-through with the caller's arguments.
        return unsafe { real::pthread_create(thread_out, attr, start, arg) };
    }
    // SAFETY: attr follows pthread_create's contract.
    match unsafe { thread_attr::plan(attr, start, arg) } {
        Plan::Coroutine(spawn) => match thread::spawn(spawn) {
            Ok(t) => {
                // SAFETY: thread_out is the caller's out-pointer.
                unsafe { *thread_out = t };
                0
            }
            Err(e) => e,
        },
        Plan::RealThread => {
            let boxed = Box::into_raw(Box::new(RealStart { start, arg })) as *mut c_void;
            // SAFETY: as above; the trampoline takes ownership of `boxed` if the thread starts.
            let r = unsafe { real::pthread_create(thread_out, attr, real_thread_trampoline, boxed) };
            if r != 0 {
                // SAFETY: the thread did not start, so the box is still ours.
                drop(unsafe { Box::from_raw(boxed as *mut RealStart) });
            }
            r
        }
    }
}

unsafe fn finish_join(r: Result<*mut c_void, i32>, ret: *mut *mut c_void) -> c_int {
    match r {
        Ok(v) => {
            if !ret.is_null() {
                // SAFETY: the caller's out-pointer, as glibc writes it.
                unsafe { *ret = v };
            }
            0
        }
        Err(e) => e,
    }
}

/// # Safety
/// C contract of pthread_join.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_join(t: libc::pthread_t, ret: *mut *mut c_void) -> c_int {
    // A cancellation point (a cancelled joiner leaves its target joinable: see `thread::join`).
    let point = cancel::Point::enter();
    let r = match known(t) {
        // SAFETY: ret is the caller's out-pointer.
        None if worker::current_task().is_some() => unsafe { thread::join_os_thread(t, ret, JoinKind::Block) },
        // SAFETY: forwarding.
        None => unsafe { real::pthread_join(t, ret) },
        // SAFETY: ret is the caller's out-pointer.
        Some(task) => unsafe { finish_join(thread::join(task, JoinKind::Block), ret) },
    };
    point.leave(r)
}

/// # Safety
/// C contract of pthread_tryjoin_np.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_tryjoin_np(t: libc::pthread_t, ret: *mut *mut c_void) -> c_int {
    match known(t) {
        // SAFETY: forwarding.
        None => unsafe { real::pthread_tryjoin_np(t, ret) },
        // SAFETY: ret is the caller's out-pointer.
        Some(task) => unsafe { finish_join(thread::join(task, JoinKind::Try), ret) },
    }
}

/// A timed join's deadline as glibc judges it: a wait, or EINVAL — from glibc 2.32 before anything else,
/// in 2.31 only once the target is found running (it checks the clock and the nanoseconds inside its wait,
/// after the self-join and detached checks, and joins a target that has ended).
enum Deadline {
    Kind(JoinKind),
    Invalid,
    InvalidIfRunning,
}

/// Turns a join deadline into a [`Deadline`], with glibc's checks (bad clock or nanoseconds → EINVAL).
fn abs_deadline(clock: libc::clockid_t, abstime: *const libc::timespec) -> Result<Deadline, c_int> {
    let checks_up_front = runtime::identity::join_checks_clock();
    let invalid = if checks_up_front { Deadline::Invalid } else { Deadline::InvalidIfRunning };
    // 2.31 looks at neither the clock nor the time without a deadline: it simply waits.
    if abstime.is_null() && !checks_up_front {
        return Ok(Deadline::Kind(JoinKind::Block));
    }
    if clock != libc::CLOCK_REALTIME
        && clock != libc::CLOCK_MONOTONIC
        && (checks_up_front || time::now_ns(clock).is_none())
    {
        return Ok(invalid);
    }
    if abstime.is_null() {
        return Ok(Deadline::Kind(JoinKind::Block));
    }
    let ts = runtime::sys::usercopy::read(abstime).map_err(|e| e.0)?;
    if !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Ok(invalid);
    }
    if ts.tv_sec < 0 {
        return Ok(Deadline::Kind(JoinKind::Until(0)));
    }
    let abs = time::timespec_ns(&ts).unwrap_or(u64::MAX);
    Ok(Deadline::Kind(JoinKind::Until(thread::deadline_from_abs(clock, abs))))
}

/// Joins with `join` as [`abs_deadline`] says: an invalid deadline is EINVAL at once, or (glibc 2.31) a
/// try-join whose "still running" is EINVAL.
fn join_by_deadline(
    clock: libc::clockid_t,
    abstime: *const libc::timespec,
    join: impl FnOnce(JoinKind) -> c_int,
) -> c_int {
    match abs_deadline(clock, abstime) {
        Err(e) => e,
        Ok(Deadline::Invalid) => libc::EINVAL,
        Ok(Deadline::Kind(kind)) => join(kind),
        Ok(Deadline::InvalidIfRunning) => match join(JoinKind::Try) {
            libc::EBUSY => libc::EINVAL,
            r => r,
        },
    }
}

/// # Safety
/// C contract of pthread_timedjoin_np.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_timedjoin_np(
    t: libc::pthread_t,
    ret: *mut *mut c_void,
    abstime: *const libc::timespec,
) -> c_int {
    // SAFETY: forwarding to the common implementation.
    unsafe { pthread_clockjoin_np(t, ret, libc::CLOCK_REALTIME, abstime) }
}

/// # Safety
/// C contract of pthread_clockjoin_np.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_clockjoin_np(
    t: libc::pthread_t,
    ret: *mut *mut c_void,
    clock: libc::clockid_t,
    abstime: *const libc::timespec,
) -> c_int {
    let Some(task) = known(t) else {
        if worker::current_task().is_some() {
            return cancel::point(|| {
                // SAFETY: ret is the caller's out-pointer.
                join_by_deadline(clock, abstime, |kind| unsafe { thread::join_os_thread(t, ret, kind) })
            });
        }
        // SAFETY: forwarding.
        return unsafe { real::pthread_clockjoin_np(t, ret, clock, abstime) };
    };
    // SAFETY: ret is the caller's out-pointer.
    cancel::point(|| join_by_deadline(clock, abstime, |kind| unsafe { finish_join(thread::join(task, kind), ret) }))
}

/// # Safety
/// C contract of pthread_detach.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_detach(t: libc::pthread_t) -> c_int {
    match known(t) {
        // SAFETY: forwarding.
        None => unsafe { real::pthread_detach(t) },
        Some(task) => thread::detach(task),
    }
}

/// # Safety
/// C contract of pthread_kill.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_kill(t: libc::pthread_t, sig: c_int) -> c_int {
    match known(t) {
        // SAFETY: forwarding.
        None => unsafe { real::pthread_kill(t, sig) },
        Some(task) => crate::runtime::signals::kill(task, sig),
    }
}

/// glibc's own pthread_exit unwinds the coroutine's stack (cleanup handlers, C++ destructors) to the
/// buffer the thread entry installed, so the same call serves coroutines and real threads.
///
/// # Safety
/// C contract of pthread_exit.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_exit(ret: *mut c_void) -> ! {
    // Requests made from now on are not acted on, as glibc marks the thread exiting.
    cancel::exiting();
    // SAFETY: forwarding; glibc's pthread_exit does not return.
    unsafe { real::pthread_exit(ret) };
    unreachable!("pthread_exit returned")
}

/// # Safety
/// C contract of pthread_getattr_np.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_getattr_np(t: libc::pthread_t, attr: *mut libc::pthread_attr_t) -> c_int {
    let Some(task) = known(t) else {
        // SAFETY: forwarding.
        return unsafe { real::pthread_getattr_np(t, attr) };
    };
    let b = task.stack_bounds();
    let detached = task.join.lock().detached;
    // SAFETY: attr is the caller's uninitialised attribute object, which pthread_getattr_np initialises.
    unsafe {
        libc::pthread_attr_init(attr);
        libc::pthread_attr_setstack(attr, b.low as *mut c_void, b.size);
        libc::pthread_attr_setguardsize(attr, if task.is_main { 0 } else { task.guard_request.get() });
        if detached {
            libc::pthread_attr_setdetachstate(attr, libc::PTHREAD_CREATE_DETACHED);
        }
    }
    0
}

/// # Safety
/// C contract of pthread_setname_np.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_setname_np(t: libc::pthread_t, name: *const c_char) -> c_int {
    let Some(task) = known(t) else {
        // SAFETY: forwarding.
        return unsafe { real::pthread_setname_np(t, name) };
    };
    // SAFETY: name is a NUL-terminated string per the contract.
    let bytes = unsafe { CStr::from_ptr(name) }.to_bytes();
    if bytes.len() > 15 {
        return libc::ERANGE;
    }
    task.set_name(bytes);
    0
}

/// # Safety
/// C contract of pthread_getname_np.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_getname_np(t: libc::pthread_t, buf: *mut c_char, len: usize) -> c_int {
    let Some(task) = known(t) else {
        // SAFETY: forwarding.
        return unsafe { real::pthread_getname_np(t, buf, len) };
    };
    let name = task.name();
    let n = name.iter().position(|&b| b == 0).unwrap_or(15);
    if len < n + 1 {
        return libc::ERANGE;
    }
    // SAFETY: buf has room for len >= n + 1 bytes.
    unsafe {
        core::ptr::copy_nonoverlapping(name.as_ptr(), buf as *mut u8, n);
        *buf.add(n) = 0;
    }
    0
}

/// # Safety
/// C contract of pthread_once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_once(once: *mut libc::pthread_once_t, init: extern "C" fn()) -> c_int {
    // SAFETY: pthread_once_t is an int that every user accesses atomically.
    let state = unsafe { &*(once as *const core::sync::atomic::AtomicI32) };
    if runtime::once::done(state) {
        return 0;
    }
    if !runtime::running() {
        // SAFETY: forwarding.
        return unsafe { real::pthread_once(once, init) };
    }
    runtime::once::call_once(state, init);
    0
}

/// pthread_cancel: a coroutine's request is the runtime's (see `runtime::cancel`); a thread the shim does
/// not run as a coroutine is glibc's.
///
/// # Safety
/// C contract of pthread_cancel.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_cancel(t: libc::pthread_t) -> c_int {
    match known(t) {
        Some(task) => cancel::request(task),
        None => {
            // SAFETY: forwarding.
            let r = unsafe { real::pthread_cancel(t) };
            if r == 0 && runtime::running() {
                // A plain thread may wait in the runtime inside a cancellation point.
                cancel::plain::poke(t);
            }
            r
        }
    }
}

/// # Safety
/// C contract of pthread_setcancelstate.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_setcancelstate(state: c_int, old: *mut c_int) -> c_int {
    if worker::current_task().is_none() {
        // SAFETY: forwarding.
        return unsafe { real::pthread_setcancelstate(state, old) };
    }
    // SAFETY: old is null or the caller's out-pointer.
    cancel::set_state(state, unsafe { old.as_mut() })
}

/// # Safety
/// C contract of pthread_setcanceltype.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_setcanceltype(kind: c_int, old: *mut c_int) -> c_int {
    if worker::current_task().is_none() {
        // SAFETY: forwarding.
        return unsafe { real::pthread_setcanceltype(kind, old) };
    }
    // SAFETY: old is null or the caller's out-pointer.
    cancel::set_type(kind, unsafe { old.as_mut() })
}

/// # Safety
/// C contract of pthread_testcancel.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_testcancel() {
    if worker::current_task().is_none() {
        // SAFETY: forwarding.
        return unsafe { real::pthread_testcancel() };
    }
    cancel::test();
}
