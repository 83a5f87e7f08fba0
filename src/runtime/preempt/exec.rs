//! exec must never meet a preemption signal: one still pending when the new program starts would find
//! SIGCANCEL's action reset to the default, termination. The exec hooks close the window first.

use crate::runtime::{sys, worker};
use core::sync::atomic::Ordering;

/// Called before exec: no request is sent to this worker from now on (until it switches), and one sent
/// before is delivered (and refused) before this returns.
pub fn begin() {
    let Some(w) = worker::current_worker() else { return };
    if worker::current_task().is_none() {
        return;
    }
    {
        let _sending = w.preempt.send.lock();
        let switches = w.switches.load(Ordering::Relaxed) as u64;
        w.preempt.exec_in_progress.store(switches + 1, Ordering::Release);
    }
    // The monitor sends under `send`, so a signal sent before the mark is already queued for this thread,
    // and the kernel delivers it on the way back from any system call.
    let _ = sys::getpid();
}

/// The exec failed and returned: preemption may resume.
pub fn end() {
    if let Some(w) = worker::current_worker() {
        w.preempt.exec_in_progress.store(0, Ordering::Release);
    }
}
