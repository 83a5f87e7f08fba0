//! The runtime's SIGSEGV handler, run on a per-worker alternate signal stack. It does two jobs:
//! resumes a faulting [`sys::usercopy`] at its EFAULT fixup, and reports a coroutine stack overflow
//! clearly (which thread, its stack size, how to raise it) before the process dies of SIGSEGV as it would
//! natively. Any other fault gets the default action, exactly as without the shim.

use super::sys::{self, mem, usercopy};
use super::worker;
use std::sync::atomic::{AtomicUsize, Ordering};

const ALT_STACK_SIZE: usize = 64 << 10;

/// The handler that was installed before ours (usually SIG_DFL), restored for faults that are not ours.
static PREVIOUS: AtomicUsize = AtomicUsize::new(0);

/// Installs the SIGSEGV/SIGBUS handler once, process-wide.
pub fn install() {
    // SAFETY: a zeroed sigaction is a valid starting point; the handler is async-signal-safe (raw syscalls,
    // no allocation, no locks).
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = on_fault as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
        libc::sigemptyset(&mut sa.sa_mask);
        let mut old: libc::sigaction = core::mem::zeroed();
        libc::sigaction(libc::SIGSEGV, &sa, &mut old);
        PREVIOUS.store(old.sa_sigaction, Ordering::Relaxed);
    }
}

/// Gives the calling OS thread an alternate signal stack, so an overflowed coroutine stack can still be
/// reported. Called by every worker at start.
pub fn alt_stack_for_this_thread() {
    let Ok(mem) = mem::reserve(ALT_STACK_SIZE) else { return };
    let ss = libc::stack_t { ss_sp: mem as *mut libc::c_void, ss_flags: 0, ss_size: ALT_STACK_SIZE };
    // SAFETY: the memory stays mapped for the life of the thread (never unmapped).
    unsafe { libc::sigaltstack(&ss, core::ptr::null_mut()) };
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
                }
            }
        }
        // Not ours to handle: reinstall the previous disposition and let the fault happen again.
        let prev = PREVIOUS.load(Ordering::Relaxed);
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = if prev == on_fault as *const () as usize { libc::SIG_DFL } else { prev };
        libc::sigaction(sig, &sa, core::ptr::null_mut());
    }
}

/// Prints the overflow report; also used when a canary check finds an overflow that skipped the guard.
pub fn report_overflow(name: &[u8], requested: usize, usable: usize) {
    let mut buf = [0u8; 512];
    let mut w = Writer { buf: &mut buf, len: 0 };
    w.put(b"asyncshim: stack overflow in thread \"");
    w.put(name);
    w.put(b"\": its stack is ");
    w.num(requested);
    w.put(b" bytes (");
    w.num(usable);
    w.put(b" usable). Raise it with ASYNCSHIM_STACK_SIZE=<bytes> (default for every thread, K/M/G suffixes) \
or pthread_attr_setstacksize() in the program.\n");
    let len = w.len;
    sys::write_stderr(&buf[..len]);
}

/// Allocation-free formatting for signal context.
struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn put(&mut self, s: &[u8]) {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
    }
    fn num(&mut self, mut v: usize) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.put(&digits[i..]);
    }
}
