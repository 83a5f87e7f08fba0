//! What the scheduler core holds of preemption: the per-worker request record ([`WorkerState`]), the
//! per-task facts the handler checks ([`TaskState`]), why a request was refused ([`Refusal`]), and the
//! floating-point control state every switch keeps ([`FpControl`]), and the counters the handler and the
//! trampoline bump for the report. Plain state and its small accessors, importing nothing of the runtime
//! but its lock, so that `task` and `worker` can hold them without depending on the preemption policy
//! (the monitor's requests, the signal, the trampoline: the parent module), which acts on them, and so
//! that the handler and the trampoline need not call up into that policy.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// Why a preemption request was refused (retried at the monitor's next look).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Refusal {
    /// The worker had switched to another coroutine, or was between coroutines.
    Moved = 0,
    /// The interrupted code ran inside glibc or the dynamic loader (their internal locks and state).
    InLibc,
    /// The interrupted code ran inside the shim itself.
    InRuntime,
    /// A callback glibc or the loader called (qsort comparator, dl_iterate_phdr, fopencookie...).
    LibcCallback,
    /// A program signal handler was running.
    InHandler,
    /// The coroutine held a FILE lock (flockfile).
    FileLock,
    /// Not on the coroutine's own stack (a stack the program switched to, an alternate signal stack).
    OtherStack,
    /// Too little stack left for the saved state.
    StackFull,
    /// The coroutine is calling exec.
    Exec,
}

pub(super) const REFUSALS: usize = 9;
pub(super) const REFUSAL_NAMES: [&str; REFUSALS] = [
    "switched away",
    "inside glibc/ld.so",
    "inside the shim",
    "in a callback from glibc",
    "in a signal handler",
    "holding a FILE lock",
    "on another stack",
    "stack almost full",
    "calling exec",
];

impl Refusal {
    fn from_code(c: u8) -> Option<Refusal> {
        use Refusal::*;
        [Moved, InLibc, InRuntime, LibcCallback, InHandler, FileLock, OtherStack, StackFull, Exec]
            .get(c as usize)
            .copied()
    }

    pub fn describe(self) -> &'static str {
        REFUSAL_NAMES[self as usize]
    }
}

/// Coroutines preempted, and requests refused by reason (for the report).
pub(super) static PREEMPTIONS: AtomicU64 = AtomicU64::new(0);
pub(super) static REFUSED: [AtomicU64; REFUSALS] = [const { AtomicU64::new(0) }; REFUSALS];

pub(super) fn count_preemption() {
    PREEMPTIONS.fetch_add(1, Ordering::Relaxed);
}

pub(super) fn count_refusal(w: &WorkerState, why: Refusal) {
    REFUSED[why as usize].fetch_add(1, Ordering::Relaxed);
    w.last_refusal.store(why as u32 + 1, Ordering::Relaxed);
}

/// Per worker: the monitor's request and what became of it.
pub struct WorkerState {
    /// The worker's switch count + 1 when the monitor asked for the coroutine it runs to be preempted
    /// (0: no request). Taken by the handler.
    pub(super) requested: AtomicU64,
    /// Last refusal (code + 1; 0: none since the last request that succeeded).
    pub(super) last_refusal: AtomicU32,
    /// Monitor-only: the switch count of the run it is trying to preempt, and since when preemption is due.
    pub(super) run_switches: AtomicU32,
    pub(super) first_request_ns: AtomicU64,
    /// When the pending request's signal was sent.
    pub(super) sent_at: AtomicU64,
    pub(super) given_up: AtomicBool,
    /// The worker's switch count + 1 while its coroutine calls exec (see [`exec`]); set with `send` held.
    /// It lapses by itself when the worker switches, so an exec that fails and returns through a hook
    /// that cannot clear it (the variadic execl family) leaves preemption off only until then.
    pub(super) exec_in_progress: AtomicU64,
    /// Held by the monitor across "check, then send", and by exec to close that window.
    pub(super) send: crate::runtime::lock::Lock<()>,
}

impl WorkerState {
    pub const fn new() -> WorkerState {
        WorkerState {
            requested: AtomicU64::new(0),
            last_refusal: AtomicU32::new(0),
            run_switches: AtomicU32::new(0),
            first_request_ns: AtomicU64::new(0),
            sent_at: AtomicU64::new(0),
            given_up: AtomicBool::new(false),
            exec_in_progress: AtomicU64::new(0),
            send: crate::runtime::lock::Lock::new(()),
        }
    }

    /// Why the last request for the current run was refused, if it was.
    pub fn last_refusal(&self) -> Option<Refusal> {
        match self.last_refusal.load(Ordering::Relaxed) {
            0 => None,
            c => Refusal::from_code((c - 1) as u8),
        }
    }
}

impl Default for WorkerState {
    fn default() -> Self {
        Self::new()
    }
}

/// Per task: FILE locks taken with flockfile and not yet released.
pub struct TaskState {
    pub file_locks: AtomicU32,
}

impl TaskState {
    pub const fn new() -> TaskState {
        TaskState { file_locks: AtomicU32::new(0) }
    }
}

impl Default for TaskState {
    fn default() -> Self {
        Self::new()
    }
}

/// The floating-point control state the ABI says a call preserves (MXCSR's control bits and the x87
/// control word). Coroutine switches are calls as far as each coroutine knows, but the switch itself
/// does not keep them, so a coroutine that changed its rounding mode and parked would hand it to the next
/// one; `task::Task::switch_out` keeps them with this. (A preempted coroutine's are also in its
/// XSAVE area.)
#[derive(Clone, Copy)]
pub struct FpControl {
    mxcsr: u32,
    x87: u16,
}

impl FpControl {
    #[inline(always)]
    pub fn save() -> FpControl {
        let mut mxcsr = 0u32;
        let mut x87 = 0u16;
        // SAFETY: stores of the control registers into locals.
        unsafe {
            core::arch::asm!(
                "stmxcsr [{m}]",
                "fnstcw [{c}]",
                m = in(reg) &mut mxcsr,
                c = in(reg) &mut x87,
                options(nostack, preserves_flags)
            )
        };
        FpControl { mxcsr, x87 }
    }

    /// Puts the saved state back where it differs (loading MXCSR or the control word costs more than a
    /// compare).
    #[inline(always)]
    pub fn restore(self) {
        let now = FpControl::save();
        if now.mxcsr != self.mxcsr {
            // SAFETY: a value read from MXCSR.
            unsafe {
                core::arch::asm!("ldmxcsr [{}]", in(reg) &self.mxcsr, options(nostack, preserves_flags, readonly))
            };
        }
        if now.x87 != self.x87 {
            // SAFETY: a value read from the x87 control word.
            unsafe { core::arch::asm!("fldcw [{}]", in(reg) &self.x87, options(nostack, preserves_flags, readonly)) };
        }
    }
}
