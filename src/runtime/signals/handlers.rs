//! The program's handler and flags per signal, as the runtime's wrappers read them inside signal context
//! (atomics only), and the calls that read them: running the program's handler, whether it asked for
//! SA_RESTART, what the kernel would do with a signal now. A leaf: the park path asks `restarts` and the
//! preemption handler calls handlers through here without reaching the signal policy.

use super::set::{DEFAULT_IGNORED, NSIG, bit};
use crate::runtime::lock::Lock;
use core::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

/// The program's handler per signal as the kernel would call it (a function, SIG_DFL or SIG_IGN), and its
/// flags; read by the wrappers inside signal context, so atomics only.
pub(super) static HANDLER: [AtomicUsize; NSIG] = [const { AtomicUsize::new(libc::SIG_DFL) }; NSIG];
pub(super) static FLAGS: [AtomicI32; NSIG] = [const { AtomicI32::new(0) }; NSIG];
/// The program's last `struct sigaction` per signal when the kernel holds our wrapper instead, reported
/// back as the old action.
pub(super) static PROGRAM_ACTIONS: Lock<[Option<SigAction>; NSIG]> = Lock::new([None; NSIG]);

#[derive(Clone, Copy)]
pub(super) struct SigAction(pub libc::sigaction);
// SAFETY: plain data (a function address, flags, a mask).
unsafe impl Send for SigAction {}

/// ASYNCSHIM_STATS_SIGNAL: this signal asks for the statistics report (0: none). The runtime keeps its
/// wrapper installed for it whatever the program sets; the program's own handler still runs.
pub(super) static REPORT_SIGNAL: AtomicI32 = AtomicI32::new(0);

/// The statistics report signal as a mask (0 when there is none).
pub fn report_signal_bit() -> u64 {
    match REPORT_SIGNAL.load(Ordering::Relaxed) {
        0 => 0,
        s => bit(s),
    }
}

/// sigaction through the C library's real entry point, with errno as the error.
pub(super) fn kernel_sigaction(sig: i32, act: *const libc::sigaction, old: *mut libc::sigaction) -> Result<(), i32> {
    // SAFETY: the pointers are null or valid sigaction structs.
    match unsafe { crate::real::sigaction(sig, act, old) } {
        0 => Ok(()),
        // SAFETY: errno of the calling thread.
        _ => Err(unsafe { *libc::__errno_location() }),
    }
}

pub(super) fn is_function(h: usize) -> bool {
    h != libc::SIG_DFL && h != libc::SIG_IGN
}

/// Signals with a program handler (installed behind the wrapper).
pub(super) fn wrapped_signals() -> u64 {
    (1..NSIG as i32).filter(|&s| is_function(HANDLER[s as usize].load(Ordering::Relaxed))).fold(0, |a, s| a | bit(s))
}

/// A handler with SA_RESETHAND that already ran reads as SIG_DFL.
pub(super) fn fix_reset(idx: usize, o: &mut libc::sigaction) {
    if o.sa_flags & libc::SA_RESETHAND != 0 && HANDLER[idx].load(Ordering::Acquire) == libc::SIG_DFL {
        o.sa_sigaction = libc::SIG_DFL;
    }
}

/// Calls the program's handler for `sig` with the arguments its flags ask for. False if it has none.
///
/// # Safety
/// `info` and `ctx` are the signal's, as the kernel passed them.
pub(super) unsafe fn call_program_handler(sig: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) -> bool {
    let idx = sig as usize;
    let h = HANDLER[idx].load(Ordering::Acquire);
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        return false;
    }
    let flags = FLAGS[idx].load(Ordering::Acquire);
    if flags & libc::SA_RESETHAND != 0 {
        HANDLER[idx].store(libc::SIG_DFL, Ordering::Release);
    }
    // SAFETY: the program installed this function with these flags.
    unsafe { call_handler(h, flags, sig, info, ctx) }
    true
}

/// Calls the signal handler `h` the way its `flags` say (SA_SIGINFO: with the siginfo and context).
///
/// # Safety
/// `h` is a handler function installed with `flags`; `info` and `ctx` are the signal's.
pub(crate) unsafe fn call_handler(h: usize, flags: i32, sig: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: per the contract, `h` has the signature its flags give it.
    unsafe {
        if flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void) = core::mem::transmute(h);
            f(sig, info, ctx);
        } else {
            let f: extern "C" fn(i32) = core::mem::transmute(h);
            f(sig);
        }
    }
}

/// Whether the program's handler for `sig` asked for SA_RESTART.
pub fn restarts(sig: i32) -> bool {
    (1..NSIG as i32).contains(&sig) && FLAGS[sig as usize].load(Ordering::Relaxed) & libc::SA_RESTART != 0
}

/// What the kernel would do with a signal now.
pub enum Disposition {
    /// Default action that terminates, dumps core or stops the process.
    Default,
    Ignored,
    Handled,
}

/// What the kernel would do with `sig` now, read from its installed action.
pub fn disposition(sig: i32) -> Disposition {
    // SAFETY: a zeroed sigaction is a valid out-buffer.
    let mut old: libc::sigaction = unsafe { core::mem::zeroed() };
    if kernel_sigaction(sig, core::ptr::null(), &mut old).is_err() {
        return Disposition::Ignored;
    }
    match old.sa_sigaction {
        libc::SIG_IGN => Disposition::Ignored,
        libc::SIG_DFL if DEFAULT_IGNORED & bit(sig) != 0 => Disposition::Ignored,
        libc::SIG_DFL => Disposition::Default,
        _ => Disposition::Handled,
    }
}
