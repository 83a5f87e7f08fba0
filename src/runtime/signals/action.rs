//! sigaction as the program sees it. The program's function handlers are installed behind the runtime's
//! wrapper (`routing::program_handler`), SIGSEGV behind the fault handler (`fault`), so that the runtime
//! knows when a handler runs and where a signal goes; the program still reads back its own handlers,
//! flags and masks. The statistics report signal keeps the wrapper whatever the program sets.

use super::handlers::{FLAGS, HANDLER, PROGRAM_ACTIONS, REPORT_SIGNAL, SigAction, fix_reset, kernel_sigaction};
use super::set::{DEFAULT_IGNORED, NSIG, bit};
use super::{accepted, fault, masks, routing};
use crate::runtime::lifecycle;
use crate::runtime::sys::signal::SA_RESTORER;
use core::sync::atomic::Ordering;

/// Takes `sig` as the statistics report signal: the wrapper is installed for it now (the program's action,
/// read back unchanged, still runs when it is a function; the default action becomes "write the report").
pub fn set_report_signal(sig: i32) {
    let idx = sig as usize;
    let mut actions = PROGRAM_ACTIONS.lock();
    // SAFETY: zeroed sigactions are valid buffers; the wrapper is async-signal-safe.
    unsafe {
        let mut old: libc::sigaction = core::mem::zeroed();
        if kernel_sigaction(sig, core::ptr::null(), &mut old).is_err() {
            return;
        }
        let mut k = old;
        if old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN {
            HANDLER[idx].store(old.sa_sigaction, Ordering::Release);
            FLAGS[idx].store(old.sa_flags, Ordering::Release);
        }
        k.sa_sigaction = routing::program_handler as *const () as usize;
        k.sa_flags |= libc::SA_SIGINFO | libc::SA_RESTART;
        REPORT_SIGNAL.store(sig, Ordering::Release);
        if kernel_sigaction(sig, &k, core::ptr::null_mut()).is_ok() && actions[idx].is_none() {
            actions[idx] = Some(SigAction(old));
        }
    }
}

/// Whether sigaction for `sig` goes through [`program_sigaction`] (once the runtime runs; SIGKILL,
/// SIGSTOP and numbers out of range go to the C library as they are, which refuses them).
pub fn wraps(sig: i32) -> bool {
    lifecycle::running() && (1..NSIG as i32).contains(&sig) && sig != libc::SIGKILL && sig != libc::SIGSTOP
}

/// sigaction(2) as the program sees it. Function handlers are installed behind [`routing::program_handler`]
/// (SIGSEGV behind the fault handler); SIG_DFL and SIG_IGN go to the kernel as they are.
pub fn program_sigaction(
    sig: i32,
    act: Option<&libc::sigaction>,
    old: Option<&mut libc::sigaction>,
) -> Result<(), i32> {
    let idx = sig as usize;
    let mut actions = PROGRAM_ACTIONS.lock();
    // SAFETY: all-zero is a valid sigaction.
    let mut kernel_old: libc::sigaction = unsafe { core::mem::zeroed() };
    match act {
        Some(a) => {
            let is_fn = a.sa_sigaction != libc::SIG_DFL && a.sa_sigaction != libc::SIG_IGN;
            let mut k = *a;
            let ours = if sig == libc::SIGSEGV {
                k.sa_sigaction = fault::handler();
                k.sa_flags |= fault::FLAGS_OURS;
                k.sa_flags &= !libc::SA_RESETHAND;
                true
            } else if is_fn || sig == REPORT_SIGNAL.load(Ordering::Relaxed) {
                k.sa_sigaction = routing::program_handler as *const () as usize;
                k.sa_flags |= libc::SA_SIGINFO;
                true
            } else {
                false
            };
            kernel_sigaction(sig, &k, &mut kernel_old)?;
            HANDLER[idx].store(a.sa_sigaction, Ordering::Release);
            FLAGS[idx].store(a.sa_flags, Ordering::Release);
            // What the program would read back natively: its handler and flags, plus what the kernel and
            // glibc add (SA_RESTORER, the restorer, the mask without SIGKILL/SIGSTOP).
            let mut seen = *a;
            // SAFETY: all-zero is a valid sigaction.
            let mut kv: libc::sigaction = unsafe { core::mem::zeroed() };
            if kernel_sigaction(sig, core::ptr::null(), &mut kv).is_ok() {
                seen.sa_flags = a.sa_flags | (kv.sa_flags & SA_RESTORER);
                seen.sa_restorer = kv.sa_restorer;
                seen.sa_mask = kv.sa_mask;
            }
            let prev = core::mem::replace(&mut actions[idx], if ours { Some(SigAction(seen)) } else { None });
            if let Some(o) = old {
                *o = prev.map(|p| p.0).unwrap_or(kernel_old);
                fix_reset(idx, o);
            }
            // A signal every thread blocks now acts by default: idle workers that were not woken when it
            // left the accepted set (it had a handler then) must block it before this returns.
            if a.sa_sigaction == libc::SIG_DFL
                && accepted::accepted() & bit(sig) == 0
                && DEFAULT_IGNORED & bit(sig) == 0
                && lifecycle::running()
            {
                drop(actions);
                masks::wake_all_sleepers();
                masks::settle_idle_workers(accepted::accepted_generation());
            }
        }
        None => {
            kernel_sigaction(sig, core::ptr::null(), &mut kernel_old)?;
            if let Some(o) = old {
                *o = actions[idx].map(|p| p.0).unwrap_or(kernel_old);
                fix_reset(idx, o);
            }
        }
    }
    Ok(())
}
