//! Signals. The program's handlers are installed behind a wrapper so that the runtime knows when one ran:
//! hooks called inside a handler pass through (a handler must never park), and a handled signal
//! interrupts a coroutine waiting in an interruptible call (EINTR), as the kernel would interrupt the
//! thread it delivered the signal to. The program still sees its own handlers, flags and masks.
//!
//! The runtime's own SIGSEGV handler runs on a per-worker alternate signal stack and does three jobs:
//! resumes a faulting [`sys::usercopy`] at its EFAULT fixup, reports a coroutine stack overflow clearly
//! (which thread, its stack size, how to raise it) before the process dies of SIGSEGV as natively, and
//! passes every other fault to the program's own SIGSEGV handler or the default action.

use super::lock::Lock;
use super::sys::{self, mem, usercopy};
use super::worker;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

const ALT_STACK_SIZE: usize = 64 << 10;
const NSIG: usize = 65;
/// Set by glibc on every handler it installs (x86-64), and reported back by the kernel.
const SA_RESTORER: i32 = 0x0400_0000;

/// The program's handler per signal as the kernel would call it (a function, SIG_DFL or SIG_IGN), and its
/// flags; read by the wrappers inside signal context, so atomics only.
static HANDLER: [AtomicUsize; NSIG] = [const { AtomicUsize::new(libc::SIG_DFL) }; NSIG];
static FLAGS: [AtomicI32; NSIG] = [const { AtomicI32::new(0) }; NSIG];
/// The program's last `struct sigaction` per signal when the kernel holds our wrapper instead, reported
/// back as the old action.
static PROGRAM_ACTIONS: Lock<[Option<SigAction>; NSIG]> = Lock::new([None; NSIG]);
/// Handled signals not yet turned into EINTR for a waiting coroutine: without SA_RESTART (they interrupt
/// any interruptible wait) and with it (only waits that are never restarted, such as sleeps).
pub static PENDING_INTERRUPTS: AtomicUsize = AtomicUsize::new(0);
pub static PENDING_RESTARTING: AtomicUsize = AtomicUsize::new(0);
/// ASYNCSHIM_STATS_SIGNAL: this signal asks for the statistics report (0: none). The runtime keeps its
/// wrapper installed for it whatever the program sets; the program's own handler still runs.
static REPORT_SIGNAL: AtomicI32 = AtomicI32::new(0);

#[derive(Clone, Copy)]
struct SigAction(libc::sigaction);
// SAFETY: plain data (a function address, flags, a mask).
unsafe impl Send for SigAction {}

fn kernel_sigaction(sig: i32, act: *const libc::sigaction, old: *mut libc::sigaction) -> Result<(), i32> {
    // SAFETY: the pointers are null or valid sigaction structs.
    match unsafe { crate::real::sigaction(sig, act, old) } {
        0 => Ok(()),
        // SAFETY: errno of the calling thread.
        _ => Err(unsafe { *libc::__errno_location() }),
    }
}

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
        k.sa_sigaction = program_handler as *const () as usize;
        k.sa_flags |= libc::SA_SIGINFO | libc::SA_RESTART;
        REPORT_SIGNAL.store(sig, Ordering::Release);
        if kernel_sigaction(sig, &k, core::ptr::null_mut()).is_ok() && actions[idx].is_none() {
            actions[idx] = Some(SigAction(old));
        }
    }
}

/// Installs the SIGSEGV handler once, process-wide, remembering what was there.
pub fn install() {
    // SAFETY: a zeroed sigaction is a valid starting point; the handler is async-signal-safe (raw syscalls,
    // no allocation, no locks).
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = on_fault as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
        libc::sigemptyset(&mut sa.sa_mask);
        let mut old: libc::sigaction = core::mem::zeroed();
        if kernel_sigaction(libc::SIGSEGV, &sa, &mut old).is_ok() {
            HANDLER[libc::SIGSEGV as usize].store(old.sa_sigaction, Ordering::Relaxed);
            FLAGS[libc::SIGSEGV as usize].store(old.sa_flags, Ordering::Relaxed);
            PROGRAM_ACTIONS.lock()[libc::SIGSEGV as usize] = Some(SigAction(old));
        }
    }
}

/// sigaction(2) as the program sees it. Function handlers are installed behind [`program_handler`]
/// (SIGSEGV behind the fault handler); SIG_DFL and SIG_IGN go to the kernel as they are.
pub fn program_sigaction(
    sig: i32,
    act: Option<&libc::sigaction>,
    old: Option<&mut libc::sigaction>,
) -> Result<(), i32> {
    let idx = sig as usize;
    let mut actions = PROGRAM_ACTIONS.lock();
    let mut kernel_old: libc::sigaction = unsafe { core::mem::zeroed() };
    match act {
        Some(a) => {
            let is_fn = a.sa_sigaction != libc::SIG_DFL && a.sa_sigaction != libc::SIG_IGN;
            let mut k = *a;
            let ours = if sig == libc::SIGSEGV {
                k.sa_sigaction = on_fault as *const () as usize;
                k.sa_flags |= libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
                k.sa_flags &= !libc::SA_RESETHAND;
                true
            } else if is_fn || sig == REPORT_SIGNAL.load(Ordering::Relaxed) {
                k.sa_sigaction = program_handler as *const () as usize;
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

/// A handler with SA_RESETHAND that already ran reads as SIG_DFL.
fn fix_reset(idx: usize, o: &mut libc::sigaction) {
    if o.sa_flags & libc::SA_RESETHAND != 0 && HANDLER[idx].load(Ordering::Acquire) == libc::SIG_DFL {
        o.sa_sigaction = libc::SIG_DFL;
    }
}

/// Calls the program's handler for `sig` with the arguments its flags ask for.
unsafe fn call_program_handler(sig: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) -> bool {
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
    unsafe {
        if flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void) = core::mem::transmute(h);
            f(sig, info, ctx);
        } else {
            let f: extern "C" fn(i32) = core::mem::transmute(h);
            f(sig);
        }
    }
    true
}

/// The kernel-side handler for every signal the program handles.
extern "C" fn program_handler(sig: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: errno is saved and restored around our own work, as a handler must.
    let saved_errno = unsafe { *libc::__errno_location() };
    if sig == REPORT_SIGNAL.load(Ordering::Relaxed) {
        super::stats::REPORT_REQUESTED.store(true, Ordering::Release);
        super::monitor::poke();
    }
    let w = worker::current_worker();
    if let Some(w) = w {
        w.enter_handler();
    }
    // SAFETY: arguments as the kernel passed them.
    let ran = unsafe { call_program_handler(sig, info, ctx) };
    if let Some(w) = w {
        w.leave_handler();
    }
    if ran && !w.is_some_and(|w| w.directed_delivery.get()) {
        note_handled_signal(sig);
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved_errno };
}

/// A handler ran: some waiting coroutine must see EINTR. Workers do that at their next scheduling point;
/// wake one in case all sleep. Async-signal-safe (atomics and a futex wake).
fn note_handled_signal(sig: i32) {
    let counter = if restarts(sig) { &PENDING_RESTARTING } else { &PENDING_INTERRUPTS };
    counter.fetch_add(1, Ordering::AcqRel);
    if super::running() {
        super::get().sched.wake_sleeper();
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
        // Not ours: the program's own SIGSEGV handler, or the default action (the fault happens again).
        if call_program_handler(sig, info, ctx) {
            return;
        }
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = libc::SIG_DFL;
        let _ = kernel_sigaction(sig, &sa, core::ptr::null_mut());
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
    w.put(
        b" usable). Raise it with ASYNCSHIM_STACK_SIZE=<bytes> (default for every thread, K/M/G suffixes) \
or pthread_attr_setstacksize() in the program.\n",
    );
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

pub fn disposition(sig: i32) -> Disposition {
    // SAFETY: a zeroed sigaction is a valid out-buffer.
    let mut old: libc::sigaction = unsafe { core::mem::zeroed() };
    if kernel_sigaction(sig, core::ptr::null(), &mut old).is_err() {
        return Disposition::Ignored;
    }
    match old.sa_sigaction {
        libc::SIG_IGN => Disposition::Ignored,
        libc::SIG_DFL if matches!(sig, libc::SIGCHLD | libc::SIGCONT | libc::SIGURG | libc::SIGWINCH) => {
            Disposition::Ignored
        }
        libc::SIG_DFL => Disposition::Default,
        _ => Disposition::Handled,
    }
}

/// Raises, on the current worker, the signals pthread_kill left pending on `task` (the running coroutine):
/// their handlers run in its context. They do not count as process signals for EINTR purposes: the
/// sender already interrupted the target's wait.
pub fn deliver_pending(task: &super::task::Task) -> bool {
    deliver_pending_unblocked(task, task.sigmask.get())
}

/// Raises the pending signals that `mask` does not block (the rest stay pending, as in the kernel).
/// Returns true if any handler ran.
pub fn deliver_pending_unblocked(task: &super::task::Task, mask: u64) -> bool {
    let Some(w) = worker::current_worker() else { return false };
    let bits = task.pending_signals.fetch_and(mask, Ordering::AcqRel) & !mask;
    for sig in 1..=64 {
        if bits & (1 << (sig - 1)) != 0 {
            w.directed_delivery.set(true);
            // SAFETY: tgkill of our own thread (with `mask`'s signals not blocked on this worker now).
            let _ = unsafe {
                sys::syscall::syscall3(libc::SYS_tgkill, sys::getpid() as usize, sys::gettid() as usize, sig as usize)
            };
            w.directed_delivery.set(false);
        }
    }
    bits != 0
}
