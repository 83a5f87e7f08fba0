//! Asynchronous preemption: a coroutine that computes for longer than a time slice while other work waits
//! is made to yield, as if it had called `sched_yield`, without any call of its own. Without it a CPU-bound
//! thread keeps its worker until it makes a call the shim sees (the monitor could only add spare OS threads).
//!
//! How (after Go's `asyncPreempt`):
//! - The monitor sees a worker that has run one coroutine for `ASYNCSHIM_SLICE_MS` (default 2; 0 turns
//!   preemption off) in user space while work waits, records a request in the worker's [`WorkerState`] and
//!   sends the worker's OS thread glibc's SIGCANCEL (32) with `rt_tgsigqueueinfo`, tagged with a
//!   per-process cookie. Programs cannot handle, block or send that signal through glibc (glibc keeps it for
//!   thread cancellation), so the program never sees ours; a SIGCANCEL that is not ours (no cookie) goes to
//!   the handler glibc had installed, which we took over with the raw `rt_sigaction` system call.
//!   Why a slice shorter than Go's: the kernel gives a thread that wakes next to a computing one the CPU
//!   within a few ms, and a thread-per-connection server's short requests queued behind a computing
//!   coroutine wait up to about two slices (the monitor sees a run start only at its next look), so the
//!   slice must be short enough that they do not wait longer than natively (README, Preemption, has the
//!   p99 measured for each slice length).
//! - The handler ([`signal`]) checks that the interrupted code is at a safe point (see [`Refusal`] for
//!   every case that is not, each retried at the monitor's next look). If it is, it rewrites the signal
//!   context so that, when the handler returns, the coroutine enters [`trampoline`] instead of its next
//!   instruction: the trampoline saves every register, the flags and the full extended state (XSAVE),
//!   switches out to the scheduler (reason "preempted") and, when resumed, restores it all and returns to
//!   the interrupted instruction.
//! - A preempted coroutine waits in the scheduler's preempted queue, which a worker takes from when its
//!   other queues are empty or on every 61st pick (so it never starves), as Go does with its global queue.
//! - If preemption keeps failing for a stall period, the monitor falls back to a spare worker, as before.
//!
//! Limits: a coroutine is not preempted while it runs inside glibc, the dynamic loader or the shim, inside
//! a callback that glibc or the loader called (found by a scan of its stack for return addresses into them:
//! a stale one can make a coroutine unpreemptible, never the reverse), in a signal handler, while it holds a
//! stdio FILE lock taken with `flockfile`, on a stack that is not its own, with less than a few KiB of stack
//! left, or while it calls `exec`. The program's signal mask never blocks preemption (glibc does not let a
//! program block SIGCANCEL). The monitor sends the signal only to a thread it sees running in user space;
//! a system call entered in the microseconds between that look and the signal is interrupted and, if it is
//! one the kernel never restarts (select, epoll_wait, sigsuspend...), fails with EINTR.

pub mod exec;
pub mod signal;
pub mod state;
pub mod trampoline;

pub use signal::SIGNAL;
pub use state::{FpControl, Refusal, TaskState, WorkerState};
use state::{PREEMPTIONS, REFUSAL_NAMES, REFUSED};

use super::scheduler;
use super::sys::time;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::fmt::Write;

/// A request still unanswered this long after its signal (or a slice, if longer) is sent again.
const RESEND_AFTER_NS: u64 = 2_000_000;

/// The slice in ns (0: off), set by [`init`].
static SLICE_NS: AtomicU64 = AtomicU64::new(0);
/// Requests sent (signals), for the report.
static REQUESTS: AtomicU64 = AtomicU64::new(0);
/// Times the monitor gave up on preempting a run and let the stall machinery take over.
static GIVEN_UP: AtomicU64 = AtomicU64::new(0);
/// Requests the handler had not taken a slice after they were sent.
static UNANSWERED: AtomicUsize = AtomicUsize::new(0);

/// Turns preemption on (slice `slice_ns`, 0: off): installs the signal handler. Called once at start-up.
pub fn init(slice_ns: u64) {
    if slice_ns == 0 {
        return;
    }
    if signal::install() {
        SLICE_NS.store(slice_ns, Ordering::Release);
    }
}

#[inline]
pub fn slice_ns() -> u64 {
    SLICE_NS.load(Ordering::Relaxed)
}

/// For the monitor, about worker `w` running one coroutine since `since` with switch count `switches`:
/// returns when to look again if preemption is pending. `cpu_used` gives the CPU time the worker's OS thread
/// has used since then: the slice is CPU time, as the kernel's is, so a worker the kernel keeps off the CPU
/// on a loaded machine does not have its coroutine preempted for the wait (each preemption also leaves the
/// signal frame's and the saved state's pages touched on the coroutine's stack). `running_in_user` tells
/// whether the OS thread is outside any system call now (the signal would interrupt a blocking one).
pub fn monitor_look(
    w: &super::worker::Worker,
    switches: u32,
    since: u64,
    now: u64,
    cpu_used: impl FnOnce() -> u64,
    running_in_user: impl FnOnce() -> bool,
) -> Option<u64> {
    let slice = slice_ns();
    if slice == 0 {
        return None;
    }
    let st = &w.preempt;
    if st.run_switches.load(Ordering::Relaxed) != switches {
        st.run_switches.store(switches, Ordering::Relaxed);
        st.first_request_ns.store(0, Ordering::Relaxed);
        st.last_refusal.store(0, Ordering::Relaxed);
        st.given_up.store(false, Ordering::Relaxed);
    }
    // An asynchronous cancellation request for the running coroutine is acted on through preemption at
    // once (see `cancel`), slice or not, other work or not; so is a signal sent to it that its mask lets
    // through (its handler runs as it resumes).
    let cancel = w.running_task().is_some_and(|t| t.cancel.async_pending() || t.signals.deliverable().is_some());
    if !cancel {
        if now < since + slice {
            return Some(since + slice);
        }
        // Wall time is an upper bound of CPU time: only now is the CPU clock worth a system call.
        let used = cpu_used();
        if used < slice {
            return Some(now + (slice - used));
        }
        if !work_waits() {
            return None;
        }
    }
    // From here preemption is due: if it cannot happen for a while (no chance to send the signal, or
    // every attempt refused), the stall machinery takes over (see `handles`).
    if st.first_request_ns.load(Ordering::Relaxed) == 0 {
        st.first_request_ns.store(now, Ordering::Relaxed);
    }
    if running_in_user() {
        send_request(w, switches, now);
    }
    Some(now)
}

/// Other coroutines could run: queued ones, due timers, or fd readiness no worker collects meanwhile.
fn work_waits() -> bool {
    scheduler::get().work_pending() || super::io::netpoll::exists()
}

fn send_request(w: &super::worker::Worker, switches: u32, now: u64) {
    let st = &w.preempt;
    let _g = st.send.lock();
    if st.exec_in_progress.load(Ordering::Acquire) == switches as u64 + 1 {
        return;
    }
    // The signal for this run may still be on its way (the kernel has not run the worker's OS thread yet on
    // a loaded machine): sent again only after a while, and then counted as unanswered, in case glibc
    // replaced the handler (see `signal::take_over`).
    if st.requested.load(Ordering::Acquire) == switches as u64 + 1 {
        if now < st.sent_at.load(Ordering::Relaxed) + slice_ns().max(RESEND_AFTER_NS) {
            return;
        }
        UNANSWERED.fetch_add(1, Ordering::Relaxed);
        signal::take_over();
    }
    st.requested.store(switches as u64 + 1, Ordering::Release);
    st.sent_at.store(now, Ordering::Relaxed);
    REQUESTS.fetch_add(1, Ordering::Relaxed);
    signal::send(w.os_tid.load(Ordering::Relaxed));
}

/// An asynchronous cancellation request for `target`: if a worker runs it now, that worker is sent the
/// preemption signal, and the coroutine unwinds from the trampoline (see `trampoline::preempted`). The
/// monitor repeats the request while it is refused (see [`monitor_look`]). Off with preemption.
pub fn cancel_running(target: super::task::TaskRef) {
    preempt_running(target);
}

/// Asks the worker running `target` now, if any, to preempt it at once (an asynchronous cancellation, a
/// signal sent to it); the monitor repeats the request while it is refused. Off with preemption.
pub fn preempt_running(target: super::task::TaskRef) {
    if slice_ns() == 0 {
        return;
    }
    for w in scheduler::get().workers.iter() {
        if w.running_task() == Some(target) {
            send_request(w, w.switches.load(Ordering::Relaxed), time::monotonic_ns());
        }
    }
    super::monitor::wake::ensure_started();
}

/// Whether preemption still deals with worker `w`'s computing coroutine: it is on and has not been failing
/// for a whole stall period (after which the monitor's stall handling, spare workers, takes over).
pub fn handles(w: &super::worker::Worker, stall_ns: u64) -> bool {
    if slice_ns() == 0 {
        return false;
    }
    let first = w.preempt.first_request_ns.load(Ordering::Relaxed);
    if first != 0 && time::monotonic_ns().saturating_sub(first) >= stall_ns.max(slice_ns()) {
        if !w.preempt.given_up.swap(true, Ordering::Relaxed) {
            GIVEN_UP.fetch_add(1, Ordering::Relaxed);
        }
        return false;
    }
    true
}

/// The report's line about preemption.
pub fn report_line() -> String {
    let r = Ordering::Relaxed;
    let slice = slice_ns();
    if slice == 0 {
        return "  preemption: off".into();
    }
    let mut out = format!(
        "  preemption (slice {} ms): {} preemptions, {} requests",
        slice / 1_000_000,
        PREEMPTIONS.load(r),
        REQUESTS.load(r)
    );
    let _ = write!(out, "; refused: {}", super::stats::named_counts(&REFUSAL_NAMES, &REFUSED));
    let _ = write!(out, "; unanswered {}; left to spare workers {}", UNANSWERED.load(r), GIVEN_UP.load(r));
    out
}

/// What the stall report adds about a computing coroutine preemption could not move.
pub fn stall_note(w: &super::worker::Worker) -> String {
    match (slice_ns(), w.preempt.last_refusal()) {
        (0, _) => String::new(),
        (_, Some(why)) => format!("; not preemptible: {}", why.describe()),
        (_, None) => "; preemption not answered".into(),
    }
}
