//! A thread's own signal state: its mask, the mask that decides delivery now, the signals pending for it
//! alone, and those a sigwait of it waits for. The task record carries one (`Task::signals`); the
//! scheduler core reads it on the resume and park paths ("is anything deliverable?"), the policy in
//! `signals` writes it. A leaf: atomics and pure checks, async-signal-safe.

use super::set::signals_in;
use core::cell::Cell;
use core::sync::atomic::{AtomicU64, Ordering};

pub struct TaskSignals {
    /// The thread's signal mask (the kernel's 64-bit sigset), loaded into its worker when it runs.
    pub mask: Cell<u64>,
    /// The mask that decides whether a signal may be delivered to this thread now: `mask`, or the
    /// temporary mask of a pselect/ppoll/epoll_pwait/sigsuspend wait; all ones while no thread uses the
    /// record. Read by whoever routes a process-directed signal.
    pub delivery_mask: AtomicU64,
    /// Signals sent to this thread with pthread_kill, or routed to it (bit n-1 for signal n), raised on
    /// its worker when it next resumes, so the handler runs in its context.
    pub pending: AtomicU64,
    /// Signals a sigwait/sigwaitinfo/sigtimedwait call of this thread waits for (0 when none).
    pub waited_for: AtomicU64,
    /// Real-time signals pending with an instance that has no queued siginfo (held while the `queued` pool
    /// was full): raised once as tgkill's. Every other real-time instance pending for the thread has its
    /// entry in the pool, so one pending without either was already taken with its entry.
    pub bare: AtomicU64,
    /// Standard signals pending only because a process-directed instance was routed here (a
    /// `pthread_kill` of one clears its bit): given back with the instance if the thread blocks the
    /// signal or ends before taking it (`held::give_back`). Real-time ones are told by their entries.
    pub routed: AtomicU64,
}

impl Default for TaskSignals {
    fn default() -> Self {
        Self::new()
    }
}

impl TaskSignals {
    pub const fn new() -> TaskSignals {
        TaskSignals {
            mask: Cell::new(0),
            delivery_mask: AtomicU64::new(u64::MAX),
            pending: AtomicU64::new(0),
            waited_for: AtomicU64::new(0),
            bare: AtomicU64::new(0),
            routed: AtomicU64::new(0),
        }
    }

    /// The lowest signal pending for the thread that the mask deciding delivery now lets through: a wait
    /// must not sleep through it.
    pub fn deliverable(&self) -> Option<i32> {
        let bits = self.pending.load(Ordering::Acquire) & !self.delivery_mask.load(Ordering::Acquire);
        signals_in(bits).next()
    }

    /// What blocks a pending signal's delivery when the thread resumes: its own mask; while a temporary
    /// mask is in force (ppoll, pselect, epoll_pwait, sigsuspend), everything. The kernel delivers what
    /// ends such a wait as the call returns, every signal the temporary mask lets through in one nesting
    /// (`handlers::nesting_order`): the waiting call does that itself as it ends, and what the thread's own
    /// mask lets through after (`masks::TempMask`), so a signal its own mask allows does not run alone,
    /// first, as the coroutine resumes.
    pub fn resume_mask(&self) -> u64 {
        let mask = self.mask.get();
        if self.delivery_mask.load(Ordering::Acquire) == mask { mask } else { u64::MAX }
    }

    /// Whether a pending `sig` without a queued siginfo is an instance of its own (a standard signal, or a
    /// bare real-time one, taken now); else its instances were all taken with their entries.
    pub fn take_bare(&self, sig: i32) -> bool {
        let b = super::set::bit(sig);
        sig < 32 || self.bare.fetch_and(!b, Ordering::AcqRel) & b != 0
    }

    /// Takes the pending signals `mask` does not block out of the pending set (the rest stay pending, as
    /// in the kernel), for raising now.
    pub fn take_unblocked(&self, mask: u64) -> u64 {
        self.pending.fetch_and(mask, Ordering::AcqRel) & !mask
    }
}
