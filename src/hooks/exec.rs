//! The exec family: before the real call, `runtime::preempt::exec` makes sure no preemption signal is
//! pending or on its way (one would kill the new program). execl, execle and execlp are variadic, so their
//! hooks are frameless: they keep the argument registers, ask for the real function, and jump to it.

use crate::real;
use crate::runtime::preempt::exec;
use std::ffi::{c_char, c_int};

/// Runs `f` (a real exec call) with preemption held off; it returns only if the exec failed.
fn guarded(f: impl FnOnce() -> c_int) -> c_int {
    exec::begin();
    // The new program keeps the thread's scheduling attributes, which the worker takes on for it.
    let me = crate::runtime::worker::current_task();
    if let Some(me) = me {
        crate::runtime::sched_attr::apply_here(&me, false);
    }
    let r = f();
    if let Some(me) = me {
        crate::runtime::sched_attr::restore_here(&me);
    }
    // SAFETY: errno of the calling thread, kept across our bookkeeping.
    let e = unsafe { *libc::__errno_location() };
    exec::end();
    crate::hooks::set_errno(e);
    r
}

/// # Safety
/// C contract of execve.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn execve(path: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int {
    // SAFETY: forwarding.
    guarded(|| unsafe { real::execve(path, argv, envp) })
}

/// # Safety
/// C contract of execv.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn execv(path: *const c_char, argv: *const *const c_char) -> c_int {
    // SAFETY: forwarding.
    guarded(|| unsafe { real::execv(path, argv) })
}

/// # Safety
/// C contract of execvp.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int {
    // SAFETY: forwarding.
    guarded(|| unsafe { real::execvp(file, argv) })
}

/// # Safety
/// C contract of execvpe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn execvpe(file: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int {
    // SAFETY: forwarding.
    guarded(|| unsafe { real::execvpe(file, argv, envp) })
}

/// # Safety
/// C contract of fexecve.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fexecve(fd: c_int, argv: *const *const c_char, envp: *const *const c_char) -> c_int {
    // SAFETY: forwarding.
    guarded(|| unsafe { real::fexecve(fd, argv, envp) })
}

/// # Safety
/// C contract of execveat (glibc 2.34 on; a program can only reach this hook where glibc has it).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn execveat(
    dirfd: c_int,
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    flags: c_int,
) -> c_int {
    let Some(real) = real::execveat() else {
        crate::hooks::set_errno(libc::ENOSYS);
        return -1;
    };
    // SAFETY: forwarding.
    guarded(|| unsafe { real(dirfd, path, argv, envp, flags) })
}

/// Called by the variadic hooks: holds preemption off (until the worker next switches, as a failed call
/// returns straight to the program), puts the thread's scheduling attributes on the worker, and gives the
/// real function's address.
extern "C" fn variadic_target(which: usize) -> usize {
    exec::begin();
    // The new program keeps the thread's scheduling attributes (if the call fails, the worker keeps them).
    if let Some(me) = crate::runtime::worker::current_task() {
        crate::runtime::sched_attr::apply_here(&me, false);
    }
    real::execl_family_addr(which)
}

/// Keeps the six argument registers and AL (the count of vector registers a variadic call passes), calls
/// [`variadic_target`] with the stack aligned, and jumps to the real function with everything as it was.
macro_rules! variadic_exec_hook {
    ($name:ident, $which:literal) => {
        /// # Safety
        /// C contract of the exec function of this name.
        #[unsafe(no_mangle)]
        #[unsafe(naked)]
        pub unsafe extern "C" fn $name() {
            core::arch::naked_asm!(
                "push rdi",
                "push rsi",
                "push rdx",
                "push rcx",
                "push r8",
                "push r9",
                "push rax",
                concat!("mov edi, ", $which),
                "call {target}",
                "mov r11, rax",
                "pop rax",
                "pop r9",
                "pop r8",
                "pop rcx",
                "pop rdx",
                "pop rsi",
                "pop rdi",
                "jmp r11",
                target = sym variadic_target,
            )
        }
    };
}

variadic_exec_hook!(execl, 0);
variadic_exec_hook!(execle, 1);
variadic_exec_hook!(execlp, 2);
