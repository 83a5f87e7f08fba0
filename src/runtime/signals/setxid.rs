//! glibc's SIGSETXID on workers. glibc's set*id calls signal every OS thread in its thread list with
//! SIGSETXID, and its handler marks the thread done in THREAD_SELF; on a worker, FS may hold a coroutine's
//! TCB instead of the worker's own, so the runtime puts [`on_setxid`] in front of glibc's handler to run it
//! with the right descriptor.

use crate::runtime::sys::signal::{KernelSigaction, SIGSETXID};
use crate::runtime::{sys, worker};
use core::sync::atomic::{AtomicUsize, Ordering};

/// glibc's own SIGSETXID handler (its set*id calls signal every OS thread in glibc's thread list), which the runtime's [`on_setxid`] calls (0 until wrapped).
static GLIBC_SETXID_HANDLER: AtomicUsize = AtomicUsize::new(0);

fn kernel_rt_sigaction(sig: i32, act: Option<&KernelSigaction>, old: &mut KernelSigaction) -> bool {
    sys::signal::rt_sigaction(sig, act, Some(old)).is_ok()
}

/// Puts [`on_setxid`] in front of glibc's SIGSETXID handler (once glibc has installed it: at its first
/// thread from 2.34, when libpthread loads before). Called after the runtime creates an OS thread; cheap
/// when done already.
pub fn wrap_glibc_setxid() {
    if GLIBC_SETXID_HANDLER.load(Ordering::Acquire) != 0 {
        return;
    }
    let mut old = KernelSigaction { handler: 0, flags: 0, restorer: 0, mask: 0 };
    if !kernel_rt_sigaction(SIGSETXID, None, &mut old) || old.handler <= libc::SIG_IGN {
        return;
    }
    if GLIBC_SETXID_HANDLER.compare_exchange(0, old.handler, Ordering::AcqRel, Ordering::Acquire).is_err() {
        return;
    }
    // Every signal blocked while it runs: with another TCB in FS, no program handler may run meanwhile.
    let ours = KernelSigaction { handler: on_setxid as *const () as usize, mask: !0, ..old };
    let mut ignored = old;
    if !kernel_rt_sigaction(SIGSETXID, Some(&ours), &mut ignored) {
        GLIBC_SETXID_HANDLER.store(0, Ordering::Release);
    }
}

/// SIGSETXID on a worker: glibc's handler marks the thread done in THREAD_SELF, which must be the
/// descriptor glibc signalled this OS thread for (the worker's entry in its thread list), not the
/// coroutine whose TCB happens to be in FS; otherwise glibc signals this thread again for ever.
extern "C" fn on_setxid(sig: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    type Handler = extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void);
    let glibc = GLIBC_SETXID_HANDLER.load(Ordering::Acquire);
    if glibc <= libc::SIG_IGN {
        return;
    }
    // SAFETY: the address of glibc's SA_SIGINFO handler, read back from the kernel.
    let glibc: Handler = unsafe { core::mem::transmute::<usize, Handler>(glibc) };
    let fs = sys::fsgs::fs_base();
    match worker::glibc_tcb_of_this_worker() {
        Some(tcb) if tcb != fs => {
            // SAFETY: a live descriptor glibc knows for this OS thread; glibc's handler touches only its
            // setxid words, and FS is put back before anything else runs here (all signals blocked).
            unsafe { sys::fsgs::set_fs_base(tcb) };
            glibc(sig, info, ctx);
            // SAFETY: as above.
            unsafe { sys::fsgs::set_fs_base(fs) };
        }
        _ => glibc(sig, info, ctx),
    }
}
