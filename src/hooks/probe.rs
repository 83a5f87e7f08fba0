//! Functions a program (or a test) can look up with `dlsym(RTLD_DEFAULT, ...)` to learn whether it runs
//! under the shim.

/// 1 when the caller runs as a coroutine under an active runtime, else 0.
#[unsafe(no_mangle)]
pub extern "C" fn asyncshim_is_active() -> libc::c_int {
    crate::runtime::caller_is_coroutine() as libc::c_int
}

/// The configured number of worker OS threads (0 when the runtime is not running); spare workers started
/// while workers are stalled come on top.
#[unsafe(no_mangle)]
pub extern "C" fn asyncshim_worker_count() -> libc::c_int {
    if crate::runtime::running() { crate::runtime::get().sched.base as libc::c_int } else { 0 }
}
