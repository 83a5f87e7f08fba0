//! Processes. `fork()` needs no hook: the runtime's atfork handler puts the child in pass-through mode
//! (this also covers glibc-internal forks such as `daemon()`). `posix_spawn`, `system` and `popen` use
//! glibc's internal CLONE_VFORK path, which runs no hook before exec.

use crate::real;
use crate::runtime::worker;

/// A vfork child shares its parent's stack and memory; run from a coroutine it would resume inside the
/// shim's scheduler state. A coroutine gets a real fork instead, which POSIX allows for vfork.
///
/// # Safety
/// C contract of vfork.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vfork() -> libc::pid_t {
    if worker::current_task().is_none() {
        // SAFETY: forwarding; a plain thread may vfork as usual.
        return unsafe { real::vfork() };
    }
    // SAFETY: fork from a coroutine is supported (see the runtime's atfork handler).
    unsafe { real::fork() }
}
