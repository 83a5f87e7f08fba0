//! Signals: all of the runtime's signal policy. The program's handlers are installed behind a wrapper so
//! that the runtime knows when one ran (hooks called inside a handler pass through: a handler must never
//! park) and where a signal goes; the program still sees its own handlers, flags and masks.
//!
//! Masks, as the kernel applies them to threads, are applied here to coroutines. A worker running a
//! coroutine has that coroutine's mask in the kernel, so a signal the kernel gives it is one the coroutine
//! accepts, and its handler runs there. An idle worker blocks exactly the signals no live coroutine would
//! take: those stay pending in the kernel, as when every thread blocks them, until a coroutine unblocks
//! one (its worker's mask then lets the kernel deliver it, in that coroutine). A signal a worker takes in
//! its own context is *held* and routed to a coroutine that accepts it, the main thread first, as Linux
//! does: its handler then runs in that coroutine's context, and an interruptible wait it is in ends with
//! EINTR.
//!
//! One file per job:
//!
//! | file | what | layer |
//! |---|---|---|
//! | [`set`] | masks as 64-bit sets; the signals never blocked, never blockable, ignored by default | leaf |
//! | [`state`] | a thread's own signal state (`Task::signals`): mask, delivery mask, pending, waited for | leaf |
//! | [`handlers`] | the program's handler and flags per signal as the wrappers read them; SA_RESTART; dispositions | leaf |
//! | [`held`] | the held set (each real-time instance with its siginfo); raising a signal on this OS thread; the routing seam | leaf |
//! | [`accepted`] | the signals some coroutine accepts, which idle workers let through | leaf |
//! | [`queued`] | signals queued with their siginfo, per thread (sigqueue, real-time pthread_kill) and for the process (held) | leaf |
//! | [`overflow`] | the stack-overflow report and the workers' alternate signal stacks | leaf |
//! | [`action`] | sigaction as the program sees it; the statistics report signal | policy |
//! | [`routing`] | the wrapper; which thread a signal goes to; pthread_kill; handlers in parked threads | policy |
//! | [`masks`] | pthread_sigmask for coroutines; temporary masks; waking idle workers when masks change | policy |
//! | [`wait`] | sigsuspend, the sigwait family, sigpending | policy |
//! | [`fault`] | the SIGSEGV handler: usercopy fixups, the overflow report, the program's own handler | policy |
//! | [`setxid`] | glibc's SIGSETXID handler run with the worker's own descriptor | policy |
//!
//! The scheduler core uses only the leaves: the worker asks whether routing is due and runs it through
//! the `held` seam, sets idle masks from `accepted`, reports overflows; the park path asks `handlers` for
//! SA_RESTART and the task's `state` for a deliverable signal. Signals pending for a coroutine are raised
//! when it resumes, in one place (`park::resumed` through `worker::deliver_pending`).

pub mod accepted;
pub mod action;
pub mod fault;
pub mod handlers;
pub mod held;
pub mod masks;
pub mod overflow;
pub mod queued;
pub mod routing;
pub mod set;
pub mod setxid;
pub mod state;
pub mod wait;

pub use action::{program_sigaction, wraps};
pub use masks::{TempMask, change_mask};
pub use routing::{kill, process_of_tid, queue, raise, tgkill, tgsigqueueinfo, through_thread_pidfd};
pub use wait::{pause, pending, sigpause, sigsuspend, timed_wait};

/// Installs the runtime's signal machinery once, at start-up: the SIGSEGV handler, the routing of held
/// signals the workers run between coroutines, and the statistics report signal when a report is asked
/// for (ASYNCSHIM_STATS with ASYNCSHIM_STATS_SIGNAL).
pub fn install() {
    held::set_router(routing::route_process_signal);
    fault::install();
    let config = crate::config::get();
    if config.stats.is_some()
        && let Some(sig) = config.stats_signal
    {
        action::set_report_signal(sig);
    }
}
