//! Program start: `__libc_start_main` is interposed so that `main` runs as the first coroutine.

use crate::real;
use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};

type MainFn = extern "C" fn(c_int, *mut *mut c_char, *mut *mut c_char) -> c_int;

static PROGRAM_MAIN: AtomicUsize = AtomicUsize::new(0);

/// glibc calls `main` through here; we start the runtime instead, which runs `main` as a coroutine.
extern "C" fn shim_main(argc: c_int, argv: *mut *mut c_char, envp: *mut *mut c_char) -> c_int {
    // SAFETY: set to the program's main just before glibc calls us.
    let main: MainFn = unsafe { core::mem::transmute(PROGRAM_MAIN.load(Ordering::Relaxed)) };
    match crate::runtime::run_main(main, argc, argv, envp) {
        Some(code) => code,
        None => main(argc, argv, envp),
    }
}

/// # Safety
/// Called by the program's `_start` with glibc's contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __libc_start_main(
    main: MainFn,
    argc: c_int,
    argv: *mut *mut c_char,
    init: usize,
    fini: usize,
    rtld_fini: usize,
    stack_end: *mut c_void,
) -> c_int {
    PROGRAM_MAIN.store(main as usize, Ordering::Relaxed);
    // SAFETY: forwarding the arguments _start gave us, with our main in place of the program's.
    unsafe { real::__libc_start_main(shim_main, argc, argv, init, fini, rtld_fini, stack_end) }
}
