//! pthread mutexes, condition variables, reader-writer locks, spin locks, barriers and semaphores.
//! While the runtime runs, every caller — coroutine or plain thread — goes through the runtime's
//! implementations (so each can wake the other). A coroutine takes robust and process-shared PI mutexes
//! through the runtime's proxy owners (`runtime::sync::proxy`), so the kernel and other processes see a
//! real owner. A coroutine's wait on a process-shared condition variable, and its blocking lock of a
//! process-shared rwlock, run in glibc's own protocol with the coroutine parked
//! (`runtime::sync::shared_cond`, `shared_rwlock`); plain threads use glibc for those. Other objects of
//! kinds the runtime leaves to glibc go to glibc (for a priority-protect mutex a coroutine retries with
//! short sleeps, instead of blocking its worker).
//! A condition wait may pair a condition variable of one family with a mutex of another: `cond_wait`
//! routes each pairing.

use super::set_errno;
use crate::real;
use crate::runtime::cancel;
use crate::runtime::sync::{
    self, Unsupported,
    barrier::{Barrier, SharedBarrier},
    cond::Cond,
    mutex::Mutex,
    proxy::Shared,
    rwlock::RwLock,
    sem::Sem,
    shared_cond::SharedCond,
    shared_rwlock::SharedRwLock,
};
use crate::runtime::{self, sys::Errno, worker};
use std::ffi::c_int;

fn valid_clock(clock: libc::clockid_t) -> bool {
    clock == libc::CLOCK_REALTIME || clock == libc::CLOCK_MONOTONIC
}

/// The waits that are cancellation points and whose three forms (wait, timedwait, clockwait) one function
/// makes with a [`Timeout`]: each entry is the C prototype and that call.
macro_rules! cancellable_waits {
    ($( $name:ident($($arg:ident: $t:ty),*) => $wait:ident($($pass:expr),*); )*) => {$(
        /// # Safety
        #[doc = concat!("C contract of ", stringify!($name), ".")]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($($arg: $t),*) -> c_int {
            // SAFETY: as for this function.
            cancel::point(|| unsafe { $wait($($pass),*) })
        }
    )*};
}

// ---- mutexes ----------------------------------------------------------------------------------------

/// The two calls with a fast path, pthread_mutex_lock and pthread_mutex_unlock: the runtime's, for an
/// uncontended mutex of its own, inline; everything else out of line ([`mutex_call`], cold).
macro_rules! mutex_fast_paths {
    ($( $name:ident: $fast:path, else $slow:ident => $call:expr; )*) => {$(
        /// # Safety
        #[doc = concat!("C contract of ", stringify!($name), ".")]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(m: *mut libc::pthread_mutex_t) -> c_int {
            if runtime::running()
                // SAFETY: an initialised mutex per the contract.
                && let Some(r) = unsafe { $fast(m) }
            {
                return r;
            }
            // SAFETY: as for this function.
            unsafe { $slow(m) }
        }

        #[cold]
        #[inline(never)]
        unsafe fn $slow(m: *mut libc::pthread_mutex_t) -> c_int {
            // SAFETY: as for the caller.
            unsafe { mutex_call(m, $call) }
        }
    )*};
}

mutex_fast_paths! {
    pthread_mutex_lock: sync::mutex::lock_fast, else mutex_lock_slow => MutexCall::Lock;
    pthread_mutex_unlock: sync::mutex::unlock_fast, else mutex_unlock_slow => MutexCall::Unlock;
}

/// # Safety
/// C contract of pthread_mutex_trylock.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_mutex_trylock(m: *mut libc::pthread_mutex_t) -> c_int {
    // SAFETY: as for this function.
    unsafe { mutex_call(m, MutexCall::TryLock) }
}

/// # Safety
/// C contract of pthread_mutex_timedlock.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_mutex_timedlock(
    m: *mut libc::pthread_mutex_t,
    abstime: *const libc::timespec,
) -> c_int {
    // SAFETY: forwarding to the common implementation.
    unsafe { pthread_mutex_clocklock(m, libc::CLOCK_REALTIME, abstime) }
}

/// # Safety
/// C contract of pthread_mutex_clocklock.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_mutex_clocklock(
    m: *mut libc::pthread_mutex_t,
    clock: libc::clockid_t,
    abstime: *const libc::timespec,
) -> c_int {
    if runtime::running() {
        if !valid_clock(clock) {
            return libc::EINVAL;
        }
        // glibc looks at the time only when it has to wait.
        // SAFETY: m is an initialised mutex per the contract.
        let (deadline, error) = match sync::abs_deadline(unsafe { sync::clocklock_clock(m, clock) }, abstime) {
            Ok(d) => (Some(d), None),
            Err(e) => (None, Some(e.0)),
        };
        // SAFETY: as for this function.
        return unsafe { mutex_call(m, MutexCall::ClockLock { clock, abstime, deadline, error }) };
    }
    // SAFETY: forwarding.
    unsafe { real::pthread_mutex_clocklock(m, clock, abstime) }
}

/// A mutex call, as [`mutex_call`] makes it.
#[derive(Clone, Copy)]
enum MutexCall {
    Lock,
    TryLock,
    /// pthread_mutex_clocklock's arguments, and the deadline or the error glibc reports once it has to wait.
    ClockLock {
        clock: libc::clockid_t,
        abstime: *const libc::timespec,
        deadline: sync::Deadline,
        error: Option<c_int>,
    },
    Unlock,
}

impl MutexCall {
    /// glibc's call.
    ///
    /// # Safety
    /// The C contract of the call.
    unsafe fn real(self, m: *mut libc::pthread_mutex_t) -> c_int {
        // SAFETY: forwarding.
        unsafe {
            match self {
                MutexCall::Lock => real::pthread_mutex_lock(m),
                MutexCall::TryLock => real::pthread_mutex_trylock(m),
                MutexCall::ClockLock { clock, abstime, .. } => real::pthread_mutex_clocklock(m, clock, abstime),
                MutexCall::Unlock => real::pthread_mutex_unlock(m),
            }
        }
    }
}

/// A mutex call past the fast path (or one without): while the runtime runs, made by the mutex's family
/// (a coroutine's lock of a mutex glibc runs: glibc's trylocks, parked between them); otherwise glibc's.
///
/// # Safety
/// The C contract of the call.
#[inline(always)]
unsafe fn mutex_call(m: *mut libc::pthread_mutex_t, call: MutexCall) -> c_int {
    if runtime::running() {
        let (deadline, error) = match call {
            MutexCall::ClockLock { deadline, error, .. } => (deadline, error),
            _ => (None, None),
        };
        // SAFETY: m is an initialised mutex per the contract.
        match (unsafe { mutex_family(m) }, call) {
            (MutexFamily::Runtime(mx), MutexCall::TryLock) => return mx.trylock(),
            (MutexFamily::Runtime(mx), MutexCall::Unlock) => return mx.unlock(),
            (MutexFamily::Runtime(mx), _) => return mx.lock(deadline, error),
            (MutexFamily::Proxied(sh), MutexCall::Unlock) => return sh.unlock(),
            (MutexFamily::Proxied(sh), _) => return sh.lock(deadline, error, matches!(call, MutexCall::TryLock)),
            (MutexFamily::Protect(pp, me), MutexCall::TryLock) => return pp.trylock(&me),
            (MutexFamily::Protect(pp, me), MutexCall::Unlock) => return pp.unlock(&me),
            (MutexFamily::Protect(pp, me), _) => return pp.lock(&me, deadline, error),
            (MutexFamily::Glibc, MutexCall::Lock | MutexCall::ClockLock { .. }) if worker::current_task().is_some() => {
                if let Some(e) = error {
                    return e;
                }
                // SAFETY: forwarding.
                return sync::retry_cooperatively(libc::EBUSY, deadline, || unsafe { real::pthread_mutex_trylock(m) });
            }
            (MutexFamily::Glibc, _) => {}
        }
    }
    // SAFETY: as for this function.
    unsafe { call.real(m) }
}

/// Who runs a mutex while the runtime runs, in the order the mutex calls ask: the runtime itself, the
/// runtime through a proxy owner (robust and process-shared PI mutexes, `sync::proxy`), the runtime's
/// priority-protect code for a coroutine (`sync::pp`, with the coroutine), or glibc.
enum MutexFamily {
    Runtime(Mutex),
    Proxied(Shared),
    Protect(sync::pp::PpMutex, runtime::task::TaskRef),
    Glibc,
}

/// The family of the mutex at `m` (see [`MutexFamily`]); for the runtime's lifetime only.
///
/// # Safety
/// `m` must point at a live, initialised `pthread_mutex_t`.
#[inline(always)]
unsafe fn mutex_family(m: *mut libc::pthread_mutex_t) -> MutexFamily {
    // SAFETY: per the contract.
    match unsafe { Mutex::at(m) } {
        Ok(mx) => MutexFamily::Runtime(mx),
        // SAFETY: as above.
        Err(Unsupported) if let Some(sh) = unsafe { Shared::at(m) } => MutexFamily::Proxied(sh),
        // SAFETY: as above.
        Err(Unsupported) if let Some((pp, me)) = unsafe { coroutine_pp(m) } => MutexFamily::Protect(pp, me),
        Err(Unsupported) => MutexFamily::Glibc,
    }
}

/// A priority-protect mutex used by a coroutine, which `sync::pp` runs (glibc's code would ask the kernel
/// about the coroutine's tid).
///
/// # Safety
/// `m` must point at a live, initialised `pthread_mutex_t`.
unsafe fn coroutine_pp(m: *mut libc::pthread_mutex_t) -> Option<(sync::pp::PpMutex, runtime::task::TaskRef)> {
    let me = worker::current_task()?;
    // SAFETY: per the contract.
    unsafe { sync::pp::PpMutex::at(m) }.map(|pp| (pp, me))
}

// ---- condition variables ----------------------------------------------------------------------------

/// A coroutine's wait on a condition variable the runtime runs with a mutex held through the proxy owner:
/// the runtime unlocks and relocks the mutex. None: not such a mutex, or not a coroutine.
///
/// # Safety
/// `m` must point at a live, initialised `pthread_mutex_t`.
unsafe fn cond_wait_proxied(cv: &Cond, m: *mut libc::pthread_mutex_t, deadline: sync::Deadline) -> Option<c_int> {
    // SAFETY: as for this function.
    let sh = unsafe { Shared::at(m)? };
    if sh.not_owned() {
        return Some(libc::EPERM);
    }
    Some(cv.wait_with(
        || {
            sh.unlock_in_park();
        },
        || sh.lock(None, None, false),
        deadline,
    ))
}

/// A coroutine's wait on a process-shared condition variable, run by the runtime in glibc's protocol
/// (`runtime::sync::shared_cond`), with whatever mutex the caller holds: unlocked once the waiter is
/// registered, locked again after, each kind its own way, EPERM where glibc's unlock would refuse.
///
/// # Safety
/// `m` must point at a live, initialised `pthread_mutex_t`, and both objects must stay alive for the wait.
unsafe fn shared_cond_wait(cv: SharedCond, m: *mut libc::pthread_mutex_t, deadline: sync::Deadline) -> c_int {
    // SAFETY: an initialised mutex per the contract.
    if let Ok(mx) = unsafe { Mutex::at(m) } {
        if mx.not_owned_checked() {
            return libc::EPERM;
        }
        return cv.wait_with(|| mx.unlock(), || mx.lock(None, None), deadline);
    }
    // SAFETY: as above.
    if let Some(sh) = unsafe { Shared::at(m) } {
        if sh.not_owned() {
            return libc::EPERM;
        }
        return cv.wait_with(|| sh.unlock(), || sh.lock(None, None, false), deadline);
    }
    // SAFETY: as above.
    if unsafe { glibc_mutex_not_owned(m) } {
        return libc::EPERM;
    }
    cv.wait_with(
        // SAFETY: the caller holds the mutex (checked above where glibc would check).
        || unsafe { real::pthread_mutex_unlock(m) },
        // SAFETY: as for this function.
        || unsafe { mutex_lock_slow(m) },
        deadline,
    )
}

/// A wait's time limit, as the three entry points of a condition variable or semaphore wait give it.
#[derive(Clone, Copy)]
enum Timeout {
    Never,
    /// An absolute time on the object's own clock (pthread_cond_timedwait, sem_timedwait).
    OwnClock(*const libc::timespec),
    /// An absolute time on the given clock (pthread_cond_clockwait, sem_clockwait).
    Clock(libc::clockid_t, *const libc::timespec),
}

impl Timeout {
    /// The wait's deadline, an absolute time on the object's own clock asked of `own_clock` (only for such
    /// a time, as glibc reads it); glibc
    /// checks the time before anything else, so a bad one is the call's error at once.
    fn deadline(self, own_clock: impl FnOnce() -> libc::clockid_t) -> Result<sync::Deadline, Errno> {
        match self {
            Timeout::Never => Ok(None),
            Timeout::OwnClock(abstime) => sync::abs_deadline(own_clock(), abstime).map(Some),
            Timeout::Clock(clock, abstime) => sync::abs_deadline(clock, abstime).map(Some),
        }
    }
}

/// glibc's own condition wait, for the given time limit.
///
/// # Safety
/// The C contract of the corresponding pthread_cond_*wait function.
unsafe fn real_cond_wait(c: *mut libc::pthread_cond_t, m: *mut libc::pthread_mutex_t, t: Timeout) -> c_int {
    // SAFETY: forwarding.
    unsafe {
        match t {
            Timeout::Never => real::pthread_cond_wait(c, m),
            Timeout::OwnClock(abstime) => real::pthread_cond_timedwait(c, m, abstime),
            Timeout::Clock(clock, abstime) => real::pthread_cond_clockwait(c, m, clock, abstime),
        }
    }
}

/// glibc's rule for a condition wait with a mutex the caller does not own: EPERM for the kinds whose
/// unlock checks the owner (errorcheck, recursive, robust), read from glibc's `__kind` and `__owner`.
///
/// # Safety
/// `m` must point at a live, initialised `pthread_mutex_t`.
unsafe fn glibc_mutex_not_owned(m: *mut libc::pthread_mutex_t) -> bool {
    let p = m as *const u8;
    // SAFETY: aligned ints at glibc's offsets inside the 40-byte object.
    let (kind, owner) = unsafe { (*(p.add(16) as *const c_int), *(p.add(8) as *const c_int)) };
    let checks_owner = matches!(kind & 3, 1 | 2) || kind & 16 != 0;
    checks_owner && owner != sync::my_tid()
}

/// Every condition wait: on a condition variable the runtime runs (process-private), the runtime queues
/// the waiter and unlocks/relocks the mutex in the way its kind needs, so a signal through the runtime
/// always finds it; on a process-shared one (which other processes signal through glibc's protocol) a
/// coroutine waits parked in glibc's protocol (`runtime::sync::shared_cond`), a plain thread in glibc's
/// own wait (with a process-private mutex the runtime runs, through a stand-in on a helper thread).
///
/// # Safety
/// The C contract of the corresponding pthread_cond_*wait function.
unsafe fn cond_wait(c: *mut libc::pthread_cond_t, m: *mut libc::pthread_mutex_t, t: Timeout) -> c_int {
    if !runtime::running() {
        // SAFETY: forwarding.
        return unsafe { real_cond_wait(c, m, t) };
    }
    // SAFETY: an initialised condition variable per the contract.
    let Ok(cv) = (unsafe { Cond::at(c) }) else {
        // A process-shared one: a coroutine waits parked, in glibc's protocol, with any mutex.
        if worker::current_task().is_some()
            // SAFETY: an initialised condition variable per the contract.
            && let Some(scv) = unsafe { SharedCond::at(c) }
        {
            // glibc checks the time before the mutex (EINVAL, not EPERM, for both wrong).
            let deadline = match t.deadline(|| scv.clock()) {
                Ok(d) => d,
                Err(e) => return e.0,
            };
            // SAFETY: as for this function.
            return unsafe { shared_cond_wait(scv, m, deadline) };
        }
        // A plain thread: glibc's own wait (as above, the time is checked first).
        if let Err(e) = t.deadline(|| libc::CLOCK_REALTIME) {
            return e.0;
        }
        let args = CondWaitArgs { c, m, t };
        // SAFETY: an initialised mutex per the contract.
        match unsafe { Mutex::at(m) } {
            // A process-shared one keeps glibc's own protocol, so glibc's wait can be given it as it is.
            Ok(mx) if !mx.is_shared() => {
                // SAFETY: the objects stay alive for the wait, which the caller waits out.
                let stand_in_wait = move |stand_in| args.with_mutex(stand_in).call();
                if let Some(r) = sync::glibc_cond::wait_with_runtime_mutex(&mx, stand_in_wait) {
                    return r;
                }
            }
            Ok(_) | Err(Unsupported) => {}
        }
        // SAFETY: forwarding.
        return unsafe { real_cond_wait(c, m, t) };
    };
    let deadline = match t.deadline(|| cv.clock()) {
        Ok(d) => d,
        Err(e) => return e.0,
    };
    // SAFETY: an initialised mutex per the contract.
    if let Ok(mx) = unsafe { Mutex::at(m) } {
        return cv.wait(&mx, deadline);
    }
    // SAFETY: as above.
    if let Some(r) = unsafe { cond_wait_proxied(&cv, m, deadline) } {
        return r;
    }
    // A mutex glibc runs (process-shared, priority-protect; robust ones for plain threads): glibc unlocks
    // it once the waiter is queued and locks it again after (a coroutine without blocking its worker).
    // SAFETY: as above.
    if unsafe { glibc_mutex_not_owned(m) } {
        return libc::EPERM;
    }
    cv.wait_with(
        // SAFETY: the caller holds the mutex (checked above where glibc would check).
        || unsafe {
            real::pthread_mutex_unlock(m);
        },
        // SAFETY: as for this function.
        || unsafe { mutex_lock_slow(m) },
        deadline,
    )
}

/// A condition wait's arguments, carried to a helper thread.
#[derive(Clone, Copy)]
struct CondWaitArgs {
    c: *mut libc::pthread_cond_t,
    m: *mut libc::pthread_mutex_t,
    t: Timeout,
}

// SAFETY: the pointers name the program's objects, valid while the coroutine that made the call waits.
unsafe impl Send for CondWaitArgs {}

impl CondWaitArgs {
    fn with_mutex(self, m: *mut libc::pthread_mutex_t) -> CondWaitArgs {
        CondWaitArgs { m, ..self }
    }

    fn call(self) -> c_int {
        // SAFETY: see CondWaitArgs.
        unsafe { real_cond_wait(self.c, self.m, self.t) }
    }
}

cancellable_waits! {
    pthread_cond_wait(c: *mut libc::pthread_cond_t, m: *mut libc::pthread_mutex_t) => cond_wait(c, m, Timeout::Never);
    pthread_cond_timedwait(c: *mut libc::pthread_cond_t, m: *mut libc::pthread_mutex_t, abstime: *const libc::timespec)
        => cond_wait(c, m, Timeout::OwnClock(abstime));
    pthread_cond_clockwait(
        c: *mut libc::pthread_cond_t, m: *mut libc::pthread_mutex_t,
        clock: libc::clockid_t, abstime: *const libc::timespec
    ) => cond_wait(c, m, Timeout::Clock(clock, abstime));
}

/// Which waiters a signal wakes.
#[derive(Clone, Copy)]
enum Notify {
    /// One (pthread_cond_signal).
    One,
    /// All (pthread_cond_broadcast).
    All,
}

/// pthread_cond_signal and pthread_cond_broadcast: while the runtime runs, a condition variable it runs
/// is woken by the runtime (plain threads included), a process-shared one by a coroutine in glibc's
/// protocol (`runtime::sync::shared_cond`); anything else by glibc.
///
/// # Safety
/// `c` must point at a live, initialised `pthread_cond_t`.
#[inline(always)]
unsafe fn cond_notify(c: *mut libc::pthread_cond_t, notify: Notify) -> c_int {
    if runtime::running()
        // SAFETY: per the contract.
        && let Ok(cv) = unsafe { Cond::at(c) }
    {
        match notify {
            Notify::One => cv.signal(),
            Notify::All => cv.broadcast(),
        }
        return 0;
    }
    if runtime::running()
        && worker::current_task().is_some()
        // SAFETY: as above.
        && let Some(scv) = unsafe { SharedCond::at(c) }
    {
        match notify {
            Notify::One => scv.signal(),
            Notify::All => scv.broadcast(),
        }
        return 0;
    }
    // SAFETY: forwarding.
    unsafe {
        match notify {
            Notify::One => real::pthread_cond_signal(c),
            Notify::All => real::pthread_cond_broadcast(c),
        }
    }
}

/// # Safety
/// C contract of pthread_cond_signal.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_cond_signal(c: *mut libc::pthread_cond_t) -> c_int {
    // SAFETY: as for this function.
    unsafe { cond_notify(c, Notify::One) }
}

/// # Safety
/// C contract of pthread_cond_broadcast.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_cond_broadcast(c: *mut libc::pthread_cond_t) -> c_int {
    // SAFETY: as for this function.
    unsafe { cond_notify(c, Notify::All) }
}

/// A coroutine destroying a process-shared condition variable waits for its last waiters to leave as
/// glibc does, parked (they may be coroutines of its own worker); anyone else calls glibc.
///
/// # Safety
/// C contract of pthread_cond_destroy.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_cond_destroy(c: *mut libc::pthread_cond_t) -> c_int {
    if runtime::running()
        && worker::current_task().is_some()
        // SAFETY: an initialised condition variable per the contract.
        && let Some(scv) = unsafe { SharedCond::at(c) }
    {
        scv.destroy();
        return 0;
    }
    // SAFETY: forwarding.
    unsafe { real::pthread_cond_destroy(c) }
}

// ---- reader-writer locks ----------------------------------------------------------------------------

unsafe fn rwlock(l: *mut libc::pthread_rwlock_t) -> Option<RwLock> {
    // SAFETY: an initialised rwlock per the callers' contracts.
    if runtime::running() { unsafe { RwLock::at(l).ok() } } else { None }
}

/// A process-shared rwlock a coroutine locks: the runtime makes glibc's blocking acquisition with the
/// coroutine parked (`runtime::sync::shared_rwlock`); its trylocks and unlock stay glibc's, which never
/// wait. None for anyone else (glibc's own calls, exactly native).
///
/// # Safety
/// `l` must point at a live, initialised `pthread_rwlock_t`.
unsafe fn coroutine_shared_rwlock(l: *mut libc::pthread_rwlock_t) -> Option<SharedRwLock> {
    if !runtime::running() || worker::current_task().is_none() {
        return None;
    }
    // SAFETY: per the contract.
    unsafe { SharedRwLock::at(l) }
}

/// glibc checks a timed rwlock request up front: a bad clock or nanoseconds is EINVAL at once.
fn rw_deadline(clock: libc::clockid_t, abstime: *const libc::timespec) -> Result<u64, c_int> {
    sync::abs_deadline(clock, abstime).map_err(|e| e.0)
}

macro_rules! rwlock_hooks {
    ($lock:ident, $try:ident, $timed:ident, $clock:ident, $method:ident, $try_method:ident, $write:expr) => {
        /// # Safety
        /// C contract of the pthread_rwlock function of this name.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $lock(l: *mut libc::pthread_rwlock_t) -> c_int {
            // SAFETY: an initialised rwlock per the contract.
            match unsafe { rwlock(l) } {
                Some(rw) => rw.$method(None, None),
                // SAFETY: as above.
                None if let Some(rw) = unsafe { coroutine_shared_rwlock(l) } => {
                    if $write {
                        rw.write(None)
                    } else {
                        rw.read(None)
                    }
                }
                // SAFETY: forwarding.
                None => unsafe { real::$lock(l) },
            }
        }

        /// # Safety
        /// C contract of the pthread_rwlock function of this name.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $try(l: *mut libc::pthread_rwlock_t) -> c_int {
            // SAFETY: an initialised rwlock per the contract.
            match unsafe { rwlock(l) } {
                Some(rw) => rw.$try_method(),
                // SAFETY: forwarding.
                None => unsafe { real::$try(l) },
            }
        }

        /// # Safety
        /// C contract of the pthread_rwlock function of this name.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $timed(l: *mut libc::pthread_rwlock_t, abstime: *const libc::timespec) -> c_int {
            // SAFETY: forwarding to the clock variant.
            unsafe { $clock(l, libc::CLOCK_REALTIME, abstime) }
        }

        /// # Safety
        /// C contract of the pthread_rwlock function of this name.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $clock(
            l: *mut libc::pthread_rwlock_t,
            clock: libc::clockid_t,
            abstime: *const libc::timespec,
        ) -> c_int {
            // SAFETY: an initialised rwlock per the contract.
            match unsafe { rwlock(l) } {
                Some(rw) => match rw_deadline(clock, abstime) {
                    Ok(d) => rw.$method(Some(d), None),
                    Err(e) => e,
                },
                // SAFETY: as above.
                None if let Some(rw) = unsafe { coroutine_shared_rwlock(l) } => match rw_deadline(clock, abstime) {
                    Ok(d) => {
                        if $write {
                            rw.write(Some(d))
                        } else {
                            rw.read(Some(d))
                        }
                    }
                    Err(e) => e,
                },
                // SAFETY: forwarding.
                None => unsafe { real::$clock(l, clock, abstime) },
            }
        }
    };
}

rwlock_hooks!(
    pthread_rwlock_rdlock,
    pthread_rwlock_tryrdlock,
    pthread_rwlock_timedrdlock,
    pthread_rwlock_clockrdlock,
    read,
    try_read,
    false
);
rwlock_hooks!(
    pthread_rwlock_wrlock,
    pthread_rwlock_trywrlock,
    pthread_rwlock_timedwrlock,
    pthread_rwlock_clockwrlock,
    write,
    try_write,
    true
);

/// # Safety
/// C contract of pthread_rwlock_unlock.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_rwlock_unlock(l: *mut libc::pthread_rwlock_t) -> c_int {
    // SAFETY: an initialised rwlock per the contract.
    match unsafe { rwlock(l) } {
        Some(rw) => rw.unlock(),
        // SAFETY: forwarding.
        None => unsafe { real::pthread_rwlock_unlock(l) },
    }
}

// ---- spin locks and barriers ------------------------------------------------------------------------

/// # Safety
/// C contract of pthread_spin_lock.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_spin_lock(l: *mut libc::pthread_spinlock_t) -> c_int {
    if !runtime::running() {
        // SAFETY: forwarding.
        return unsafe { real::pthread_spin_lock(l) };
    }
    // SAFETY: l is a live spin lock per the contract.
    unsafe { sync::spin::lock(l) };
    0
}

/// # Safety
/// C contract of pthread_barrier_wait.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_barrier_wait(b: *mut libc::pthread_barrier_t) -> c_int {
    if runtime::running()
        // SAFETY: an initialised barrier per the contract.
        && let Ok(bar) = unsafe { Barrier::at(b) }
    {
        return bar.wait();
    }
    if runtime::running()
        // SAFETY: as above.
        && let Some(bar) = unsafe { SharedBarrier::at(b) }
    {
        return bar.wait();
    }
    // SAFETY: forwarding.
    unsafe { real::pthread_barrier_wait(b) }
}

/// # Safety
/// C contract of pthread_barrier_destroy.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_barrier_destroy(b: *mut libc::pthread_barrier_t) -> c_int {
    if runtime::running()
        // SAFETY: an initialised barrier per the contract.
        && let Ok(bar) = unsafe { Barrier::at(b) }
    {
        return if bar.busy() { libc::EBUSY } else { 0 };
    }
    if runtime::running()
        // SAFETY: as above.
        && let Some(bar) = unsafe { SharedBarrier::at(b) }
    {
        return bar.destroy();
    }
    // SAFETY: forwarding.
    unsafe { real::pthread_barrier_destroy(b) }
}

// ---- semaphores --------------------------------------------------------------------------------------

unsafe fn semaphore(s: *mut libc::sem_t) -> Option<Sem> {
    // SAFETY: an initialised semaphore per the callers' contracts.
    if runtime::running() { unsafe { Sem::at(s).ok() } } else { None }
}

fn sem_result(r: Result<(), Errno>) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => {
            set_errno(e.0);
            -1
        }
    }
}

/// A coroutine waiting on a semaphore glibc must handle (named or process-shared).
fn sem_shared_wait(s: *mut libc::sem_t, deadline: sync::Deadline) -> c_int {
    // SAFETY: forwarding; trywait answers -1/EAGAIN while the value is 0.
    let r = sync::retry_cooperatively(libc::EAGAIN, deadline, || match unsafe { real::sem_trywait(s) } {
        0 => 0,
        // SAFETY: reading the calling thread's errno.
        _ => unsafe { *libc::__errno_location() },
    });
    sem_result(if r == 0 { Ok(()) } else { Err(Errno(r)) })
}

/// A semaphore wait for `t` (its own clock is CLOCK_REALTIME): glibc checks the clock and the time before
/// anything else; a semaphore the runtime runs waits in the runtime, one glibc runs (named, process-shared)
/// with a coroutine's retries, parked between them; anyone else calls glibc.
///
/// # Safety
/// The C contract of the corresponding sem_*wait function.
unsafe fn sem_wait_for(s: *mut libc::sem_t, t: Timeout) -> c_int {
    // SAFETY: forwarding.
    let real = || unsafe {
        match t {
            Timeout::Never => real::sem_wait(s),
            Timeout::OwnClock(abstime) => real::sem_clockwait(s, libc::CLOCK_REALTIME, abstime),
            Timeout::Clock(clock, abstime) => real::sem_clockwait(s, clock, abstime),
        }
    };
    if !runtime::running() {
        return real();
    }
    let deadline = match t.deadline(|| libc::CLOCK_REALTIME) {
        Ok(d) => d,
        Err(e) => return sem_result(Err(e)),
    };
    // SAFETY: an initialised semaphore per the contract.
    match unsafe { semaphore(s) } {
        Some(sem) => sem_result(sem.wait(deadline)),
        None if worker::current_task().is_some() => sem_shared_wait(s, deadline),
        None => real(),
    }
}

cancellable_waits! {
    sem_wait(s: *mut libc::sem_t) => sem_wait_for(s, Timeout::Never);
    sem_timedwait(s: *mut libc::sem_t, abstime: *const libc::timespec) => sem_wait_for(s, Timeout::OwnClock(abstime));
    sem_clockwait(s: *mut libc::sem_t, clock: libc::clockid_t, abstime: *const libc::timespec)
        => sem_wait_for(s, Timeout::Clock(clock, abstime));
}

/// # Safety
/// C contract of sem_trywait.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sem_trywait(s: *mut libc::sem_t) -> c_int {
    // SAFETY: an initialised semaphore per the contract.
    match unsafe { semaphore(s) } {
        Some(sem) => sem_result(if sem.try_wait() { Ok(()) } else { Err(Errno(libc::EAGAIN)) }),
        // SAFETY: forwarding.
        None => unsafe { real::sem_trywait(s) },
    }
}

/// # Safety
/// C contract of sem_post.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sem_post(s: *mut libc::sem_t) -> c_int {
    // SAFETY: an initialised semaphore per the contract.
    match unsafe { semaphore(s) } {
        Some(sem) => sem_result(sem.post()),
        // SAFETY: forwarding.
        None => unsafe { real::sem_post(s) },
    }
}
