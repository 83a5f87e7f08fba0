//! Whether the runtime runs in this process: every hook asks first, and passes through to libc until
//! start-up is done and again in the child of a fork (which has one OS thread and carries on as a plain
//! program). A leaf, so that any module can ask without importing the start-up code.

use core::sync::atomic::{AtomicBool, Ordering};

/// The runtime is up and this is not a forked child: one load on every hook's path.
static RUNNING: AtomicBool = AtomicBool::new(false);
static FORKED_CHILD: AtomicBool = AtomicBool::new(false);

#[inline(always)]
pub fn running() -> bool {
    RUNNING.load(Ordering::Relaxed)
}

/// True in the child of a fork: the child has one OS thread and runs in pass-through mode.
pub fn forked_child() -> bool {
    FORKED_CHILD.load(Ordering::Relaxed)
}

/// Start-up is done: the workers and the scheduler exist.
pub fn started() {
    RUNNING.store(true, Ordering::Release);
}

/// This is the child of a fork: from here on every hook passes through.
pub fn forked() {
    FORKED_CHILD.store(true, Ordering::Relaxed);
    RUNNING.store(false, Ordering::Relaxed);
}
