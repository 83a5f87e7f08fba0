//! What a program's `pthread_attr_t` asks of a new thread, and whether a coroutine can give it: the
//! stack (its size, with ASYNCSHIM_STACK_SIZE standing in for glibc's default; or the program's own
//! memory), the guard, the detach state; attributes a coroutine cannot honour (an explicit scheduling
//! policy, a CPU affinity) call for a real thread.

use super::thread::{Spawn, StartFn};
use core::sync::atomic::{AtomicUsize, Ordering};
use std::ffi::{c_int, c_void};

/// Stack size glibc would give a new thread (RLIMIT_STACK, or 32 MiB when unlimited) unless the program or
/// ASYNCSHIM_STACK_SIZE changed it; set at start-up.
static DEFAULT_STACK: AtomicUsize = AtomicUsize::new(8 << 20);

pub fn set_default_stack(size: usize) {
    DEFAULT_STACK.store(size, Ordering::Relaxed);
}

fn default_stack() -> usize {
    DEFAULT_STACK.load(Ordering::Relaxed)
}

unsafe extern "C" {
    fn pthread_getattr_default_np(attr: *mut libc::pthread_attr_t) -> c_int;
    fn pthread_attr_getdetachstate(attr: *const libc::pthread_attr_t, state: *mut c_int) -> c_int;
    fn pthread_attr_getstackaddr(attr: *const libc::pthread_attr_t, addr: *mut *mut c_void) -> c_int;
}

/// What to make of a `pthread_attr_t`.
pub enum Plan {
    Coroutine(Spawn),
    /// Attributes a coroutine cannot honour (explicit scheduling policy, CPU affinity): a real thread.
    RealThread,
}

/// How `pthread_create(attr, start, arg)` is to be honoured.
///
/// # Safety
/// `attr` is null or an initialised attribute object, as pthread_create requires.
pub unsafe fn plan(attr: *const libc::pthread_attr_t, start: StartFn, arg: *mut c_void) -> Plan {
    let mut spawn = Spawn {
        start,
        arg,
        stack_size: default_stack(),
        user_stack: None,
        detached: false,
        guard_size: 4096,
        mask: None,
    };
    // SAFETY: attr is NULL or an initialised attribute object, as pthread_create requires; the
    // getters only read it.
    unsafe {
        if attr.is_null() {
            let mut def: libc::pthread_attr_t = core::mem::zeroed();
            if pthread_getattr_default_np(&mut def) == 0 {
                let mut s = 0usize;
                libc::pthread_attr_getstacksize(&def, &mut s);
                libc::pthread_attr_destroy(&mut def);
                spawn.stack_size = crate::config::get().stack_size.unwrap_or(s);
            }
            return Plan::Coroutine(spawn);
        }
        let mut detach = 0;
        pthread_attr_getdetachstate(attr, &mut detach);
        spawn.detached = detach == libc::PTHREAD_CREATE_DETACHED;
        let mut inherit = 0;
        libc::pthread_attr_getinheritsched(attr, &mut inherit);
        if inherit == libc::PTHREAD_EXPLICIT_SCHED {
            return Plan::RealThread;
        }
        let mut cpus: libc::cpu_set_t = core::mem::zeroed();
        if libc::pthread_attr_getaffinity_np(attr, size_of::<libc::cpu_set_t>(), &mut cpus) == 0 {
            let all = (0..libc::CPU_SETSIZE as usize).all(|i| libc::CPU_ISSET(i, &cpus));
            if !all {
                return Plan::RealThread;
            }
        }
        let mut guard = 0usize;
        libc::pthread_attr_getguardsize(attr, &mut guard);
        spawn.guard_size = guard;
        let mut addr: *mut c_void = core::ptr::null_mut();
        let mut size = 0usize;
        pthread_attr_getstackaddr(attr, &mut addr);
        if !addr.is_null() {
            libc::pthread_attr_getstack(attr, &mut addr, &mut size);
            spawn.user_stack = Some((addr as usize, size));
            return Plan::Coroutine(spawn);
        }
        libc::pthread_attr_getstacksize(attr, &mut size);
        // An attribute left at glibc's default takes ASYNCSHIM_STACK_SIZE when that is set.
        let glibc_default = {
            let mut def: libc::pthread_attr_t = core::mem::zeroed();
            let mut s = 0usize;
            if pthread_getattr_default_np(&mut def) == 0 {
                libc::pthread_attr_getstacksize(&def, &mut s);
                libc::pthread_attr_destroy(&mut def);
            }
            s
        };
        spawn.stack_size = match crate::config::get().stack_size {
            Some(cfg) if size == glibc_default => cfg,
            _ => size,
        };
    }
    Plan::Coroutine(spawn)
}
