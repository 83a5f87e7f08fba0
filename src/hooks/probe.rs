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
    if crate::runtime::running() { crate::runtime::scheduler::get().base as libc::c_int } else { 0 }
}

/// Writes what the shim learned about this process's glibc (version, layout facts and where each came
/// from, the verdict) to `fd`; `asyncshim doctor` runs a child that calls it. Returns 0, or -1 when the
/// write failed.
#[unsafe(no_mangle)]
pub extern "C" fn asyncshim_layout_report(fd: libc::c_int) -> libc::c_int {
    let text = crate::runtime::identity::report();
    let mut rest = text.as_bytes();
    while !rest.is_empty() {
        // SAFETY: writing the live slice `rest` to the caller's fd.
        let n = unsafe { libc::write(fd, rest.as_ptr() as *const libc::c_void, rest.len()) };
        if n <= 0 {
            return -1;
        }
        rest = &rest[n as usize..];
    }
    0
}
