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

/// The calls that are cancellation points and whose coroutine form is the runtime's, written once: a
/// plain thread's call (or one the entry sends to libc by its `real if` condition) is the real call;
/// `also alias` exports the same function under glibc's second name for it (x86-64 has no separate
/// 64-bit offset forms).
macro_rules! coroutine_or_real {
    (
        $( $name:ident $params:tt -> $ret:ty $(, also $alias:ident)? $(, real if $plain:expr)? => $coop:expr; )*
    ) => {$(
        coroutine_or_real!(@call $name $params -> $ret, [$($plain)?] => $coop);
        $( coroutine_or_real!(@alias $alias = $name $params -> $ret); )?
    )*};
    (@call $name:ident ($($arg:ident: $t:ty),*) -> $ret:ty, [$($plain:expr)?] => $coop:expr) => {
        /// # Safety
        #[doc = concat!("C contract of ", stringify!($name), ".")]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($($arg: $t),*) -> $ret {
            $crate::runtime::cancel::point_task(|me| {
                if me.is_none() $(|| $plain)? {
                    // SAFETY: forwarding.
                    return unsafe { $crate::real::$name($($arg),*) };
                }
                $crate::hooks::io::ret($coop) as $ret
            })
        }
    };
    (@alias $alias:ident = $name:ident ($($arg:ident: $t:ty),*) -> $ret:ty) => {
        /// # Safety
        #[doc = concat!("C contract of ", stringify!($alias), ".")]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $alias($($arg: $t),*) -> $ret {
            // SAFETY: the same contract.
            $crate::runtime::cancel::point(|| unsafe { $name($($arg),*) })
        }
    };
}

/// glibc's _FORTIFY_SOURCE forms of calls (`__read_chk`...): the call itself once the buffer is known to
/// be large enough, glibc's own overflow report and abort otherwise.
macro_rules! fortified {
    ($( $name:ident($($arg:ident: $t:ty),*) -> $ret:ty, if $fits:expr => $call:ident($($pass:ident),*); )*) => {$(
        /// # Safety
        #[doc = concat!("C contract of ", stringify!($name), " (the _FORTIFY_SOURCE ", stringify!($call), ").")]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($($arg: $t),*) -> $ret {
            if !$fits {
                // SAFETY: glibc's own overflow report and abort.
                unsafe { $crate::hooks::__chk_fail() }
            }
            // SAFETY: the call's own contract, the buffer's length checked.
            unsafe { $call($($pass),*) }
        }
    )*};
}

/// Functions glibc exports under a second name (`getc` for `fgetc`...): each calls its target hook.
macro_rules! same_function {
    ($( $alias:ident = $target:ident($($arg:ident: $t:ty),*) -> $ret:ty; )*) => {$(
        /// # Safety
        #[doc = concat!("C contract of ", stringify!($alias), " (the same function as ", stringify!($target), ").")]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $alias($($arg: $t),*) -> $ret {
            // SAFETY: the same function, the same contract.
            unsafe { $target($($arg),*) }
        }
    )*};
}

unsafe extern "C" {
    /// glibc's report of a buffer overflow a fortified call found; aborts.
    fn __chk_fail() -> !;
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
