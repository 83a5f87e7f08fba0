//! stdio's write side: fwrite, fputs, puts, fputc/putc/putchar, `__overflow` (what the putc_unlocked
//! macros call), fflush, the printf family and dprintf, with their _unlocked and fortified forms. glibc
//! writes a FILE out with its internal write, which no hook sees; a coroutine's put on a socket, pipe or
//! terminal FILE is made by `runtime::io::stdio_write`, whose writes park while the peer is slow. Everything
//! else calls the real function. The printf family is variadic, which Rust cannot define: the exported
//! symbols jump to small C functions (stdio_variadic.c) that hand their va_list to `asyncshim_vfprintf`.

use crate::real;
use crate::runtime::io::stdio_write::{self, Sink};
use crate::runtime::worker;
use libc::FILE;
use std::ffi::{c_char, c_int, c_void};

unsafe extern "C" {
    static mut stdout: *mut FILE;
}

/// The sink for a coroutine's put on `f`, if the FILE is one whose writes park.
#[inline]
fn sink(f: *mut FILE) -> Option<Sink> {
    worker::current_task()?;
    stdio_write::sink(f)
}

fn stdout_file() -> *mut FILE {
    // SAFETY: glibc's stdout variable, read once.
    unsafe { stdout }
}

/// # Safety
/// C contract of fwrite.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fwrite(p: *const c_void, size: usize, count: usize, f: *mut FILE) -> usize {
    match sink(f) {
        // SAFETY: the caller's buffer holds size * count bytes.
        Some(s) => unsafe { s.fwrite(p as *const u8, size, count, true) },
        // SAFETY: forwarding.
        None => unsafe { real::fwrite(p, size, count, f) },
    }
}

/// # Safety
/// C contract of fwrite_unlocked.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fwrite_unlocked(p: *const c_void, size: usize, count: usize, f: *mut FILE) -> usize {
    match sink(f) {
        // SAFETY: as fwrite.
        Some(s) => unsafe { s.fwrite(p as *const u8, size, count, false) },
        // SAFETY: forwarding.
        None => unsafe { real::fwrite_unlocked(p, size, count, f) },
    }
}

/// # Safety
/// C contract of fputs.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fputs(text: *const c_char, f: *mut FILE) -> c_int {
    match sink(f) {
        // SAFETY: a C string per the contract.
        Some(s) => unsafe { s.fputs(text as *const u8, true) },
        // SAFETY: forwarding.
        None => unsafe { real::fputs(text, f) },
    }
}

/// # Safety
/// C contract of fputs_unlocked.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fputs_unlocked(text: *const c_char, f: *mut FILE) -> c_int {
    match sink(f) {
        // SAFETY: a C string per the contract.
        Some(s) => unsafe { s.fputs(text as *const u8, false) },
        // SAFETY: forwarding.
        None => unsafe { real::fputs_unlocked(text, f) },
    }
}

/// # Safety
/// C contract of puts.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn puts(text: *const c_char) -> c_int {
    match sink(stdout_file()) {
        // SAFETY: a C string per the contract.
        Some(s) => unsafe { s.puts(text as *const u8) },
        // SAFETY: forwarding.
        None => unsafe { real::puts(text) },
    }
}

/// fputc and its forms: `real` for a FILE whose writes do not park.
#[inline]
fn put_char(ch: c_int, f: *mut FILE, locked: bool, real: impl FnOnce() -> c_int) -> c_int {
    match sink(f) {
        Some(s) => s.fputc(ch, locked),
        None => real(),
    }
}

/// The one-character writes, written once: each is [`put_char`] on its stream, `locked` or not as the
/// call takes the FILE lock, with its real call for a FILE whose writes do not park.
macro_rules! char_writes {
    ($( $name:ident($($arg:ident: $t:ty),*) puts $ch:ident to $f:expr, locked: $locked:literal; )*) => {$(
        /// # Safety
        #[doc = concat!("C contract of ", stringify!($name), ".")]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($($arg: $t),*) -> c_int {
            // SAFETY: forwarding.
            put_char($ch, $f, $locked, || unsafe { real::$name($($arg),*) })
        }
    )*};
}

char_writes! {
    fputc(ch: c_int, f: *mut FILE) puts ch to f, locked: true;
    putc(ch: c_int, f: *mut FILE) puts ch to f, locked: true;
    fputc_unlocked(ch: c_int, f: *mut FILE) puts ch to f, locked: false;
    putc_unlocked(ch: c_int, f: *mut FILE) puts ch to f, locked: false;
    putchar(ch: c_int) puts ch to stdout_file(), locked: true;
    putchar_unlocked(ch: c_int) puts ch to stdout_file(), locked: false;
}

// putc's old name (glibc's is an alias of putc).
same_function! {
    _IO_putc = putc(ch: c_int, f: *mut FILE) -> c_int;
}

/// # Safety
/// C contract of __overflow (libio's, called by the putc_unlocked macros with the FILE locked or owned).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __overflow(f: *mut FILE, ch: c_int) -> c_int {
    match sink(f) {
        Some(s) => s.overflow_call(ch),
        // SAFETY: forwarding.
        None => unsafe { real::__overflow(f, ch) },
    }
}

/// # Safety
/// C contract of fflush.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fflush(f: *mut FILE) -> c_int {
    match sink(f) {
        Some(s) => s.fflush(true),
        // SAFETY: forwarding (also fflush(NULL), every stream, which stays glibc's).
        None => unsafe { real::fflush(f) },
    }
}

/// # Safety
/// C contract of fflush_unlocked.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fflush_unlocked(f: *mut FILE) -> c_int {
    match sink(f) {
        Some(s) => s.fflush(false),
        // SAFETY: forwarding.
        None => unsafe { real::fflush_unlocked(f) },
    }
}

/// fclose's and pclose's write, made cooperatively before their real call: the errno when it failed.
pub(crate) fn flush_before_close(f: *mut FILE) -> Option<c_int> {
    let s = sink(f)?;
    // SAFETY: the calling coroutine's errno slot, read right after the failed write set it.
    (!s.flush_before_close()).then(|| unsafe { *libc::__errno_location() })
}

/// The printf family's one entry (from stdio_variadic.c): `flag` < 0 for the plain forms, glibc's
/// fortification flag for the _chk forms.
///
/// # Safety
/// `f`, `fmt` and `ap` as for vfprintf.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn asyncshim_vfprintf(f: *mut FILE, flag: c_int, fmt: *const c_char, ap: *mut c_void) -> c_int {
    // SAFETY: a format and its va_list per the contract.
    if let Some(r) = sink(f).and_then(|s| unsafe { s.vfprintf(flag, fmt as *const u8, ap) }) {
        return r;
    }
    // SAFETY: forwarding.
    unsafe { if flag < 0 { real::vfprintf(f, fmt, ap) } else { real::__vfprintf_chk(f, flag, fmt, ap) } }
}

/// The dprintf family's one entry (from stdio_variadic.c).
///
/// # Safety
/// `fmt` and `ap` as for vdprintf.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn asyncshim_vdprintf(fd: c_int, flag: c_int, fmt: *const c_char, ap: *mut c_void) -> c_int {
    if worker::current_task().is_some()
        // SAFETY: a format and its va_list per the contract.
        && let Some(r) = unsafe { stdio_write::vdprintf(fd, flag, fmt as *const u8, ap) }
    {
        return r;
    }
    // SAFETY: forwarding.
    unsafe { if flag < 0 { real::vdprintf(fd, fmt, ap) } else { real::__vdprintf_chk(fd, flag, fmt, ap) } }
}

variadic_export! {
    printf => asyncshim_printf;
    fprintf => asyncshim_fprintf;
    vprintf => asyncshim_vprintf;
    vfprintf => asyncshim_vfprintf_c;
    __printf_chk => asyncshim_printf_chk;
    __fprintf_chk => asyncshim_fprintf_chk;
    __vprintf_chk => asyncshim_vprintf_chk;
    __vfprintf_chk => asyncshim_vfprintf_chk;
    dprintf => asyncshim_dprintf;
    vdprintf => asyncshim_vdprintf_c;
    __dprintf_chk => asyncshim_dprintf_chk;
    __vdprintf_chk => asyncshim_vdprintf_chk;
}
