//! Lazily initialised runtime state first reached from a coroutine: `OnceLock::get_or_init` that leaves
//! the calling thread's errno as it was.
//!
//! std's `Once` waits through `syscall(SYS_futex)`, which is the shim's own hook: a coroutine that finds
//! another one initialising the same cell parks there, and gets EAGAIN in errno (its own, through FS) when
//! the initialisation ended between its check and its wait. The initialiser itself may call libc functions
//! that set errno. Both would leak into the program's errno across a call that succeeded (a blocking
//! write whose first wait creates the netpoller while another thread's first read does, for one).
//!
//! So every lazy static of the library goes through [`get_or_init`], also those only start-up or a runtime
//! thread reaches (a rule is simpler to keep than a list of exceptions): `make structure-test` fails on a
//! direct `get_or_init` (or `LazyLock`) anywhere else in src/.

use std::sync::OnceLock;

/// `cell`'s value, initialised with `init` if need be; errno is unchanged (a load when already set).
pub fn get_or_init<T>(cell: &'static OnceLock<T>, init: impl FnOnce() -> T) -> &'static T {
    if let Some(v) = cell.get() {
        return v;
    }
    // SAFETY: errno of the calling context (the TCB in FS), read and written back in that same context
    // (a coroutine parked meanwhile resumes with its own TCB in FS).
    let saved = unsafe { *libc::__errno_location() };
    let v = cell.get_or_init(init);
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved };
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_set_by_the_initialiser_is_put_back() {
        static CELL: OnceLock<u32> = OnceLock::new();
        // SAFETY: this thread's errno.
        unsafe { *libc::__errno_location() = 1234 };
        let v = get_or_init(&CELL, || {
            // SAFETY: as above.
            unsafe { *libc::__errno_location() = libc::EAGAIN };
            7
        });
        assert_eq!(*v, 7);
        // SAFETY: as above.
        assert_eq!(unsafe { *libc::__errno_location() }, 1234);
    }
}
