//! The program's handler and flags per signal, as the runtime's wrappers read them inside signal context
//! (atomics only), and the calls that read them: running the program's handler, whether it asked for
//! SA_RESTART, what the kernel would do with a signal now. A leaf: the park path asks `restarts` and the
//! preemption handler calls handlers through here without reaching the signal policy.

use super::set::{DEFAULT_IGNORED, NSIG, bit};
use super::state::TaskSignals;
use crate::runtime::lock::Lock;
use crate::runtime::sys::syscall::Errno;
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
pub(super) fn kernel_sigaction(sig: i32, act: *const libc::sigaction, old: *mut libc::sigaction) -> Result<(), Errno> {
    // SAFETY: the pointers are null or valid sigaction structs.
    match unsafe { crate::real::sigaction(sig, act, old) } {
        0 => Ok(()),
        // SAFETY: errno of the calling thread.
        _ => Err(Errno(unsafe { *libc::__errno_location() })),
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

/// The kernel's synchronous signals, which it takes before any other pending one (`next_signal`).
const SYNCHRONOUS: u64 = bit(libc::SIGSEGV)
    | bit(libc::SIGBUS)
    | bit(libc::SIGILL)
    | bit(libc::SIGTRAP)
    | bit(libc::SIGFPE)
    | bit(libc::SIGSYS);

/// One step of [`nesting_order`]: raise `count` instances of `sig` (the oldest pending) with `mask` in
/// force; the kernel then runs each handler with the mask it would natively, the mask plus the handler's
/// `sa_mask` and the signal. `stacked`: the handler does not block its own signal, so the kernel gave each
/// instance a frame on top of the one before and runs the newest first (see `held::raise_here`); else
/// each runs after the one before returned, oldest first.
#[derive(Clone, Copy)]
pub struct Step {
    pub sig: i32,
    pub mask: u64,
    pub count: usize,
    pub stacked: bool,
}

/// Steps [`nesting_order`] keeps; a nesting that needs more (instances of several real-time signals that
/// interleave through their handlers' masks) leaves the rest pending, taken when the thread next resumes.
const MAX_STEPS: usize = 2 * NSIG;

/// The steps of [`nesting_order`], and the signals it left pending.
pub struct NestingOrder {
    steps: [Step; MAX_STEPS],
    len: usize,
    pub left: u64,
}

impl NestingOrder {
    pub fn steps(&self) -> &[Step] {
        &self.steps[..self.len]
    }

    /// Adds a step, merged into the one before when the kernel would run them back to back the same way
    /// (further instances of a signal whose handler blocks it, each let through as the one before returns
    /// to the same mask). False when there is no room.
    fn push(&mut self, step: Step) -> bool {
        if let Some(last) = self.len.checked_sub(1).map(|i| &mut self.steps[i])
            && last.sig == step.sig
            && last.mask == step.mask
            && !last.stacked
            && !step.stacked
        {
            last.count += step.count;
            return true;
        }
        if self.len == MAX_STEPS {
            return false;
        }
        self.steps[self.len] = step;
        self.len += 1;
        true
    }
}

/// How many instances of `sig` are pending for the thread `task`: one of a standard signal; a real-time
/// signal's entries in the `queued` pool and its bare instance (at least one: its bit is set).
fn instances(task: &TaskSignals, sig: i32) -> usize {
    if !super::queued::queues_each(sig) {
        return 1;
    }
    let owner = task as *const TaskSignals as usize;
    let bare = task.bare.load(Ordering::Acquire) & bit(sig) != 0;
    (super::queued::count(owner, sig) + bare as usize).max(1)
}

/// The order in which the kernel acts on several signals that become deliverable together (`sigs`, pending
/// for the thread `task` whose mask becomes `mask`), as steps to raise one after another. The kernel sets
/// up a handler frame for the lowest deliverable signal (its oldest instance), adds the handler's `sa_mask`
/// and the signal itself to the thread's mask, sets up the next one on top of it, and so on; the top
/// frame's handler runs first, and as each returns its frame's saved mask is back in force, letting
/// through more (another instance of its own signal among them). So with handlers whose `sa_mask` is
/// empty SIGUSR1, SIGUSR2 and SIGRTMIN run RT, USR2, USR1, each with the mask of the frames below it; with
/// masks blocking the others USR1, USR2, RT. A handler with SA_NODEFER does not block its signal: every
/// instance gets a frame, the newest on top. `restore` is the mask the first frame saves: the thread's own
/// after a wait with a temporary mask (sigsuspend, ppoll), where the first handler's return ends the wait
/// with the original mask back; signals that mask blocks and no frame took are `left`, still pending (of
/// a real-time signal, the instances no frame took). Async-signal-safe (reads the kernel's actions and
/// the thread's queue, no allocation).
pub fn nesting_order(task: &TaskSignals, sigs: u64, mask: u64, restore: u64) -> NestingOrder {
    let none = Step { sig: 0, mask: 0, count: 0, stacked: false };
    let mut order = NestingOrder { steps: [none; MAX_STEPS], len: 0, left: 0 };
    let mut to_take = [0usize; NSIG];
    for sig in super::set::signals_in(sigs) {
        to_take[sig as usize] = instances(task, sig);
    }
    // Frames set up and not yet run: the signal, the mask in force when it was set up, the mask its return
    // puts back, and how many instances it stands for (stacked frames of one signal, set up back to back
    // with the same mask and run back to back). At most one per signal: one that blocks itself is not set
    // up again above its own frame, and one that does not took all its instances at once.
    let mut frames = [(0i32, 0u64, 0u64, 0usize); NSIG];
    let mut depth = 0;
    let (mut m, mut remaining, mut first) = (mask, sigs, true);
    'nesting: loop {
        loop {
            let deliverable = remaining & !m;
            let pick = if deliverable & SYNCHRONOUS != 0 { deliverable & SYNCHRONOUS } else { deliverable };
            let Some(sig) = super::set::signals_in(pick).next() else { break };
            let idx = sig as usize;
            if !is_function(HANDLER[idx].load(Ordering::Acquire)) {
                // Ignored or acting by default: done as the kernel takes it, before the handlers stacked.
                if !order.push(Step { sig, mask: m, count: to_take[idx], stacked: false }) {
                    break 'nesting;
                }
                to_take[idx] = 0;
                remaining &= !bit(sig);
                continue;
            }
            let hm = handler_mask(sig);
            let n = if hm & bit(sig) == 0 { to_take[idx] } else { 1 };
            to_take[idx] -= n;
            if to_take[idx] == 0 {
                remaining &= !bit(sig);
            }
            let back = if first { restore } else { m };
            first = false;
            frames[depth] = (sig, m, back, n);
            depth += 1;
            m |= hm;
        }
        if depth == 0 {
            break;
        }
        depth -= 1;
        let (sig, at, back, n) = frames[depth];
        if !order.push(Step { sig, mask: at, count: n, stacked: n > 1 }) {
            depth += 1;
            break;
        }
        m = back;
    }
    // Signals of frames that found no room go back too.
    for &(sig, ..) in &frames[..depth] {
        remaining |= bit(sig);
    }
    order.left = remaining;
    order
}

/// What the kernel adds to the thread's mask while the program's handler for `sig` runs: its `sa_mask`,
/// and the signal itself unless SA_NODEFER.
fn handler_mask(sig: i32) -> u64 {
    // SAFETY: a zeroed sigaction is a valid out-buffer.
    let mut act: libc::sigaction = unsafe { core::mem::zeroed() };
    let sa_mask = if kernel_sigaction(sig, core::ptr::null(), &mut act).is_ok() {
        // SAFETY: a sigset_t starts with the kernel's 64-bit mask.
        unsafe { *(&act.sa_mask as *const libc::sigset_t as *const u64) }
    } else {
        0
    };
    let own = if FLAGS[sig as usize].load(Ordering::Acquire) & libc::SA_NODEFER != 0 { 0 } else { bit(sig) };
    sa_mask | own
}
