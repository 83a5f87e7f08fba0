//! exec must never meet a preemption signal: one still pending when the new program starts would find
//! SIGCANCEL's action reset to the default, termination. The exec hooks close the window first.

use super::WorkerState;
use crate::runtime::{sys, worker};
use core::sync::atomic::Ordering;

/// Called before exec: no request is sent to this worker from now on, and one sent before is delivered
/// (and refused) before this returns. Returns the state to pass to [`end`] if the exec fails.
pub fn begin() -> Option<&'static WorkerState> {
    let w = worker::current_worker()?;
    {
        let _sending = w.preempt.send.lock();
        w.preempt.exec_in_progress.store(true, Ordering::Release);
    }
    // The monitor sends under `send`, so a signal sent before the flag was set is already queued for this
    // thread, and the kernel delivers it on the way back from any system call.
    let _ = sys::getpid();
    Some(&w.preempt)
}

/// The exec failed: preemption may resume.
pub fn end(state: Option<&'static WorkerState>) {
    if let Some(s) = state {
        s.exec_in_progress.store(false, Ordering::Release);
    }
}
