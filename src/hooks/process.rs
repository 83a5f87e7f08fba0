//! Processes. `fork()` needs no hook: the runtime's atfork handler puts the child in pass-through mode
//! (this also covers glibc-internal forks such as `daemon()`). `posix_spawn`, `system` and `popen` use
//! glibc's internal CLONE_VFORK path, which runs no hook before exec. Waiting for children (waitpid and
//! friends, and the waits inside system and pclose) is made by helper threads while coroutines park.
//! The set*id calls, which glibc makes on every OS thread, run in the worker's own context.

use crate::real;
use crate::runtime::cancel;
use crate::runtime::worker;
use std::ffi::{c_char, c_int};

/// A vfork child shares its parent's stack and memory; run from a coroutine it would resume inside the
/// shim's scheduler state. A coroutine gets a real fork instead, which POSIX allows for vfork.
///
/// The hook has no stack frame when it gets to the real call: a vfork child returns from the call and
/// goes on (calling exec) on the stack its parent resumes on, so a frame of ours there would be
/// overwritten and the parent would return through garbage (a shell under the shim in pass-through died
/// of SIGSEGV after its first vfork). It asks [`vfork_target`] which function to run, then jumps to it
/// with the stack exactly as its caller left it.
///
/// # Safety
/// C contract of vfork.
#[unsafe(no_mangle)]
#[unsafe(naked)]
pub unsafe extern "C" fn vfork() -> libc::pid_t {
    core::arch::naked_asm!(
        "sub rsp, 8",
        "call {target}",
        "add rsp, 8",
        "jmp rax",
        target = sym vfork_target,
    )
}

/// The function [`vfork`] hands over to: the real vfork for a plain thread, fork for a coroutine.
extern "C" fn vfork_target() -> usize {
    crate::runtime::io::fd::sharing_with_child();
    if worker::current_task().is_none() { real::vfork_addr() } else { real::fork_addr() }
}

/// wait4 and its forms go to `runtime::child` (a pidfd wait for one child, a helper thread otherwise).
fn wait4_cooperative(pid: libc::pid_t, status: *mut c_int, options: c_int, rusage: *mut libc::rusage) -> libc::pid_t {
    super::io::ret(crate::runtime::child::wait4(pid, status as usize, options, rusage as usize)) as libc::pid_t
}

/// # Safety
/// C contract of waitpid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn waitpid(pid: libc::pid_t, status: *mut c_int, options: c_int) -> libc::pid_t {
    cancel::point(|| wait4_cooperative(pid, status, options, core::ptr::null_mut()))
}

/// # Safety
/// C contract of wait.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wait(status: *mut c_int) -> libc::pid_t {
    cancel::point(|| wait4_cooperative(-1, status, 0, core::ptr::null_mut()))
}

/// # Safety
/// C contract of wait4.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wait4(
    pid: libc::pid_t,
    status: *mut c_int,
    options: c_int,
    rusage: *mut libc::rusage,
) -> libc::pid_t {
    cancel::point(|| wait4_cooperative(pid, status, options, rusage))
}

/// # Safety
/// C contract of waitid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn waitid(
    idtype: libc::idtype_t,
    id: libc::id_t,
    info: *mut libc::siginfo_t,
    options: c_int,
) -> c_int {
    cancel::point(|| super::io::ret(crate::runtime::child::waitid(idtype, id, info, options)) as c_int)
}

/// posix_spawn, posix_spawnp and popen make a child that inherits descriptions (and may change their
/// flags) without running the atfork handlers: the fd table hears of it first, then glibc makes the call.
/// `a | b(...)`: two functions with the same prototype (posix_spawnp differs from posix_spawn only in
/// searching PATH for the file it is given).
macro_rules! shares_with_child {
    ($a:ident | $b:ident($($params:tt)*) -> $ret:ty; $($rest:tt)*) => {
        shares_with_child! { $a($($params)*) -> $ret; $b($($params)*) -> $ret; $($rest)* }
    };
    ($name:ident($($arg:ident: $t:ty),*) -> $ret:ty; $($rest:tt)*) => {
        /// # Safety
        #[doc = concat!("C contract of ", stringify!($name), ".")]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($($arg: $t),*) -> $ret {
            crate::runtime::io::fd::sharing_with_child();
            // SAFETY: forwarding.
            unsafe { real::$name($($arg),*) }
        }
        shares_with_child! { $($rest)* }
    };
    () => {};
}

shares_with_child! {
    posix_spawn | posix_spawnp(
        pid: *mut libc::pid_t,
        path: *const c_char,
        actions: *const libc::posix_spawn_file_actions_t,
        attr: *const libc::posix_spawnattr_t,
        argv: *const *mut c_char,
        envp: *const *mut c_char
    ) -> c_int;
    popen(cmd: *const c_char, mode: *const c_char) -> *mut libc::FILE;
}

/// system() waits for its child inside glibc: a coroutine has a helper thread run it (see
/// `runtime::child::system`), with its own copy of the command (a handler may leave the wait by
/// `siglongjmp` while the helper still runs it).
///
/// # Safety
/// C contract of system.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn system(cmd: *const std::ffi::c_char) -> c_int {
    cancel::point(|| {
        crate::runtime::io::fd::sharing_with_child();
        if worker::current_task().is_none() {
            // SAFETY: forwarding.
            return unsafe { real::system(cmd) };
        }
        // SAFETY: a C string per the contract (or null).
        let owned = (!cmd.is_null()).then(|| unsafe { std::ffi::CStr::from_ptr(cmd) }.to_owned());
        crate::runtime::child::system(move || {
            let p = owned.as_ref().map_or(core::ptr::null(), |c| c.as_ptr());
            // SAFETY: forwarding the copy, which lives until the call returns.
            unsafe { real::system(p) }
        })
    })
}

/// pclose() waits for its child inside glibc: likewise.
///
/// # Safety
/// C contract of pclose.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pclose(f: *mut libc::FILE) -> c_int {
    let write_error = super::stdio_write::flush_before_close(f);
    if crate::runtime::running() && !f.is_null() {
        // SAFETY: a live FILE per the contract.
        let fd = unsafe { libc::fileno(f) };
        if fd >= 0 {
            let _ = crate::runtime::io::closing::closing(fd);
        }
    }
    let f = f as usize;
    // SAFETY: forwarding, on a helper thread for a coroutine (the FILE is glibc's, on the heap).
    let r = crate::runtime::child::pclose(move || unsafe { real::pclose(f as *mut libc::FILE) });
    super::io::closed_after_flush(write_error, r)
}

/// The set*id calls: glibc changes the credentials of every OS thread (signalling each one it knows);
/// from a coroutine it must take the call for the worker's own OS thread's (see
/// `worker::as_this_os_thread`), or one worker could keep the old ids.
macro_rules! set_ids {
    ($( $name:ident($($arg:ident: $t:ty),*); )*) => {$(
        /// # Safety
        #[doc = concat!("C contract of ", stringify!($name), ".")]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($($arg: $t),*) -> c_int {
            // SAFETY: forwarding.
            worker::as_this_os_thread(|| unsafe { real::$name($($arg),*) })
        }
    )*};
}

set_ids! {
    setuid(uid: libc::uid_t);
    setgid(gid: libc::gid_t);
    seteuid(uid: libc::uid_t);
    setegid(gid: libc::gid_t);
    setreuid(ruid: libc::uid_t, euid: libc::uid_t);
    setregid(rgid: libc::gid_t, egid: libc::gid_t);
    setresuid(ruid: libc::uid_t, euid: libc::uid_t, suid: libc::uid_t);
    setresgid(rgid: libc::gid_t, egid: libc::gid_t, sgid: libc::gid_t);
    setgroups(n: usize, list: *const libc::gid_t);
}
