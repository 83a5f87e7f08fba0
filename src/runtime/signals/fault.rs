//! Faults: the runtime's own SIGSEGV handler, which runs on a per-worker alternate signal stack and does
//! three jobs: resumes a faulting [`usercopy`] at its EFAULT fixup, reports a coroutine stack
//! overflow clearly (see `overflow`) before the process dies of SIGSEGV as natively, and passes every
//! other fault to the program's own SIGSEGV handler or the default action. The program's SIGSEGV action
//! is kept behind it (see `action`).

use super::handlers::{FLAGS, HANDLER, PROGRAM_ACTIONS, SigAction, call_program_handler, kernel_sigaction};
use super::overflow::report_overflow;
use crate::runtime::sys::usercopy;
use crate::runtime::worker;
use core::sync::atomic::Ordering;

/// The flags the fault handler is installed with whatever the program asks: siginfo, the alternate
/// stack (an overflowed stack has no room), and no self-blocking (a fault in the handler must not hang).
pub(super) const FLAGS_OURS: i32 = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;

/// The handler's address, as `sigaction` installs it.
pub(super) fn handler() -> usize {
    on_fault as *const () as usize
}

/// Installs the SIGSEGV handler once, process-wide, remembering what was there.
pub(super) fn install() {
    // SAFETY: a zeroed sigaction is a valid starting point; the handler is async-signal-safe (raw syscalls,
    // no allocation, no locks).
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = on_fault as *const () as usize;
        sa.sa_flags = FLAGS_OURS;
        libc::sigemptyset(&mut sa.sa_mask);
        let mut old: libc::sigaction = core::mem::zeroed();
        if kernel_sigaction(libc::SIGSEGV, &sa, &mut old).is_ok() {
            HANDLER[libc::SIGSEGV as usize].store(old.sa_sigaction, Ordering::Relaxed);
            FLAGS[libc::SIGSEGV as usize].store(old.sa_flags, Ordering::Relaxed);
            PROGRAM_ACTIONS.lock()[libc::SIGSEGV as usize] = Some(SigAction(old));
        }
    }
}

extern "C" fn on_fault(sig: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo and ucontext to an SA_SIGINFO handler.
    unsafe {
        let uc = ctx as *mut libc::ucontext_t;
        let pc = (*uc).uc_mcontext.gregs[libc::REG_RIP as usize] as usize;
        if let Some(fixup) = usercopy::fixup_for(pc) {
            (*uc).uc_mcontext.gregs[libc::REG_RIP as usize] = fixup as i64;
            return;
        }
        let addr = (*info).si_addr() as usize;
        if let Some(task) = worker::current_task_any_context() {
            let stack = task.stack_bounds();
            if let Some((glow, glen)) = stack.guard {
                // A frame larger than the guard can skip it; treat faults just below the stack as overflow too.
                if addr >= glow.saturating_sub(glen) && addr < stack.low {
                    report_overflow(task.name_bytes(), stack.requested, stack.size);
                    let g = &(*uc).uc_mcontext.gregs;
                    let reg = |r: i32| g[r as usize] as usize;
                    crate::runtime::unwind::fault::write_backtrace(crate::runtime::unwind::Regs {
                        pc: reg(libc::REG_RIP),
                        sp: reg(libc::REG_RSP),
                        bp: reg(libc::REG_RBP),
                    });
                }
            }
        }
        // Not ours: the program's own SIGSEGV handler, or the default action (the fault happens again).
        if call_program_handler(sig, info, ctx) {
            return;
        }
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = libc::SIG_DFL;
        let _ = kernel_sigaction(sig, &sa, core::ptr::null_mut());
    }
}
