//! Exported C entry points, one file per family. A hook checks whether its caller is a coroutine
//! ([`crate::runtime::worker::current_task`]); if not — the shim is off, the runtime has not started, the
//! caller is a thread the runtime did not create, or this is a forked child — it calls the real function.
//! Otherwise it translates the call into a runtime call. Policy lives in the runtime, not here.

/// Exports `name` as a jump to the C function `target`: all argument registers, AL (the count of vector
/// registers a variadic call passes) and the stack arguments reach it untouched.
macro_rules! variadic_export {
    ($($name:ident => $target:ident;)*) => {
        unsafe extern "C" {
            $( fn $target(); )*
        }
        $(
            /// Variadic entry; see the module doc.
            ///
            /// # Safety
            /// C contract of the function of this name.
            #[unsafe(no_mangle)]
            #[unsafe(naked)]
            pub unsafe extern "C" fn $name() {
                core::arch::naked_asm!("jmp {t}", t = sym $target)
            }
        )*
    };
}

pub mod clock;
pub mod dns;
pub mod exec;
pub mod filelock;
pub mod io;
pub mod net;
pub mod poll;
pub mod probe;
pub mod proc;
pub mod process;
pub mod sched;
pub mod signal;
pub mod sleep;
pub mod start;
pub mod stdio;
pub mod stdio_write;
pub mod sync;
pub mod syscall;
pub mod thread;

/// Sets errno of the calling thread (the coroutine's own, since FS is its TCB).
#[inline]
pub(crate) fn set_errno(e: i32) {
    // SAFETY: __errno_location returns the calling thread's errno slot.
    unsafe { *libc::__errno_location() = e };
}

/// errno of the calling thread.
#[inline]
pub(crate) fn errno_here() -> i32 {
    // SAFETY: __errno_location returns the calling thread's errno slot.
    unsafe { *libc::__errno_location() }
}
