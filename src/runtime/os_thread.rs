//! Starting the runtime's own OS threads: workers, the monitor, helper threads, probes and keepers. They
//! are real glibc threads (the program never sees them as its own), made with a 1 MiB stack and the
//! signal mask runtime threads start with, so that no program signal lands on one before it has chosen
//! its own mask.
//!
//! A leaf: the scheduler core starts workers through it, and the policies above the core start their
//! threads through it too. What the signal policy wants of a new OS thread (its initial mask, and a step
//! after each creation: glibc installs its set*id handler lazily, which the runtime must wrap) is given
//! once at start-up through [`set_signal_setup`], so that this module need not import the signal policy,
//! which itself imports the core.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::ffi::c_void;

pub type StartFn = extern "C" fn(*mut c_void) -> *mut c_void;

/// The signal mask a runtime thread is created with (0: not set yet, the creator's mask is inherited).
static INITIAL_MASK: AtomicU64 = AtomicU64::new(0);
/// A `fn()` called after every thread this module starts (0: none).
static AFTER_START: AtomicUsize = AtomicUsize::new(0);

/// The seam the signal policy fills once at start-up, before the first runtime thread: the mask runtime
/// threads start with and what to do after creating one. (The signal policy is above the core; the core
/// starts workers; so the core reaches the policy's wishes only through these two values.)
pub fn set_signal_setup(initial_mask: u64, after_start: fn()) {
    INITIAL_MASK.store(initial_mask, Ordering::Release);
    AFTER_START.store(after_start as usize, Ordering::Release);
}

/// Starts a detached OS thread for the runtime running `f(arg)`; false if glibc could not create it.
///
/// # Safety
/// `arg` must stay valid for as long as `f` uses it.
pub unsafe fn start(f: StartFn, arg: *mut c_void) -> bool {
    // SAFETY: as for this function.
    unsafe { spawn(f, arg, true).is_some() }
}

/// [`start`] for a thread the caller joins (with the real `pthread_join`).
///
/// # Safety
/// As for [`start`].
pub unsafe fn start_joinable(f: StartFn, arg: *mut c_void) -> Option<libc::pthread_t> {
    // SAFETY: as for this function.
    unsafe { spawn(f, arg, false) }
}

/// Starts a runtime OS thread, detached or not; its `pthread_t` if it started.
///
/// # Safety
/// As for [`start`].
unsafe fn spawn(f: StartFn, arg: *mut c_void, detached: bool) -> Option<libc::pthread_t> {
    let mut t: libc::pthread_t = 0;
    let mask = INITIAL_MASK.load(Ordering::Acquire);
    // SAFETY: attr is initialised before use and destroyed after; f/arg are valid for the thread's life.
    let r = unsafe {
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        libc::pthread_attr_init(&mut attr);
        libc::pthread_attr_setstacksize(&mut attr, 1 << 20);
        // A runtime thread starts with the program's signals blocked, so none lands in a helper or the
        // monitor; a worker sets its own mask when it goes idle or runs a coroutine.
        let mut set: libc::sigset_t = core::mem::zeroed();
        *(&mut set as *mut libc::sigset_t as *mut u64) = mask;
        // Before glibc 2.32 (no pthread_attr_setsigmask_np) the new thread inherits the creator's mask.
        let set_in_attr = if mask == 0 {
            Some(0)
        } else {
            crate::real::pthread_attr_setsigmask_np().map(|set_mask| set_mask(&mut attr, &set))
        };
        if detached {
            libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED);
        }
        let inherited = set_in_attr.is_none().then(|| super::sys::sigmask(Some(mask)));
        let r = crate::real::pthread_create(&mut t, &attr, f, arg);
        if let Some(old) = inherited {
            super::sys::sigmask(Some(old));
        }
        libc::pthread_attr_destroy(&mut attr);
        r
    };
    match AFTER_START.load(Ordering::Acquire) {
        0 => {}
        // SAFETY: a nonzero value was stored from a `fn()` by `set_signal_setup`.
        after => unsafe { core::mem::transmute::<usize, fn()>(after)() },
    }
    (r == 0).then_some(t)
}
