//! stdio's read side: fgets, fread, getline/getdelim, getc and their _unlocked and fortified forms, and
//! __uflow/__underflow (what the getc_unlocked/getchar_unlocked macros call). glibc refills a FILE with
//! its internal read, which no hook sees; a coroutine's call on a socket, pipe or terminal FILE waits in
//! `runtime::io::stdio` until the real call will not block. Everything else calls the real function.
//! The scanf family waits there too, until a trial scan of what has arrived finishes (the C entries are
//! in stdio_variadic.c). The write side is in `stdio_write.rs`.

use crate::real;
use crate::runtime::io::stdio::{self, Need, ScanVariant};
use crate::runtime::worker;
use libc::FILE;
use std::ffi::{c_char, c_int, c_void};

/// The stream to wait on for `need`, if the caller is a coroutine and the FILE one the runtime parks on.
#[inline]
fn cooperative(f: *mut FILE, need: Need) -> Option<stdio::Stream> {
    worker::current_task()?;
    stdio::stream(f, need)
}

fn line(f: *mut FILE, limit: usize) -> Option<stdio::Stream> {
    cooperative(f, Need::Delim { delim: b'\n', limit })
}

/// fgets and its forms: at most `limit` bytes (0: none, the real call answers) up to a newline into `buf`,
/// `locked` or not, with `real` for a FILE that cannot be read cooperatively.
fn fgets_into(
    f: *mut FILE,
    buf: *mut c_char,
    limit: usize,
    locked: bool,
    real: impl FnMut() -> *mut c_char,
) -> *mut c_char {
    match if limit > 0 { line(f, limit) } else { None } {
        Some(s) => s.read_once(Some((buf, limit)), locked, core::ptr::null_mut(), real),
        None => {
            let mut real = real;
            real()
        }
    }
}

/// What fgets(buf, n, f) may read: n - 1 bytes (n <= 1 reads nothing).
fn fgets_limit(n: c_int) -> usize {
    if n > 1 { n as usize - 1 } else { 0 }
}

/// # Safety
/// C contract of fgets.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fgets(buf: *mut c_char, n: c_int, f: *mut FILE) -> *mut c_char {
    // SAFETY: forwarding.
    fgets_into(f, buf, fgets_limit(n), true, || unsafe { real::fgets(buf, n, f) })
}

/// # Safety
/// C contract of fgets_unlocked.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fgets_unlocked(buf: *mut c_char, n: c_int, f: *mut FILE) -> *mut c_char {
    // SAFETY: forwarding.
    fgets_into(f, buf, fgets_limit(n), false, || unsafe { real::fgets_unlocked(buf, n, f) })
}

/// # Safety
/// C contract of __fgets_chk (the _FORTIFY_SOURCE fgets: reads at most min(n-1, size)).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __fgets_chk(buf: *mut c_char, size: usize, n: c_int, f: *mut FILE) -> *mut c_char {
    // SAFETY: forwarding.
    fgets_into(f, buf, fgets_limit(n).min(size), true, || unsafe { real::__fgets_chk(buf, size, n, f) })
}

/// # Safety
/// C contract of __fgets_unlocked_chk.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __fgets_unlocked_chk(buf: *mut c_char, size: usize, n: c_int, f: *mut FILE) -> *mut c_char {
    // SAFETY: forwarding.
    fgets_into(f, buf, fgets_limit(n).min(size), false, || unsafe { real::__fgets_unlocked_chk(buf, size, n, f) })
}

/// fread's count of whole items for `bytes` read.
fn items(bytes: usize, size: usize, count: usize, total: usize) -> usize {
    if bytes == total { count } else { bytes / size }
}

/// # Safety
/// C contract of fread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fread(p: *mut c_void, size: usize, count: usize, f: *mut FILE) -> usize {
    match size.checked_mul(count).filter(|&t| t > 0).and_then(|t| Some((t, cooperative(f, Need::Bytes(t))?))) {
        // SAFETY: the caller's buffer holds size * count bytes.
        Some((total, s)) => items(unsafe { s.read_bytes(p as *mut u8, total, true) }, size, count, total),
        // SAFETY: forwarding.
        None => unsafe { real::fread(p, size, count, f) },
    }
}

/// # Safety
/// C contract of fread_unlocked.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fread_unlocked(p: *mut c_void, size: usize, count: usize, f: *mut FILE) -> usize {
    match size.checked_mul(count).filter(|&t| t > 0).and_then(|t| Some((t, cooperative(f, Need::Bytes(t))?))) {
        // SAFETY: the caller's buffer holds size * count bytes.
        Some((total, s)) => items(unsafe { s.read_bytes(p as *mut u8, total, false) }, size, count, total),
        // SAFETY: forwarding.
        None => unsafe { real::fread_unlocked(p, size, count, f) },
    }
}

/// # Safety
/// C contract of __fread_chk (the _FORTIFY_SOURCE fread; an overflow of `plen` aborts in the real one).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __fread_chk(p: *mut c_void, plen: usize, size: usize, count: usize, f: *mut FILE) -> usize {
    match size.checked_mul(count).filter(|&t| t > 0 && t <= plen) {
        // SAFETY: the checks passed: an ordinary fread.
        Some(_) => unsafe { fread(p, size, count, f) },
        // SAFETY: forwarding (the real one reports the overflow).
        None => unsafe { real::__fread_chk(p, plen, size, count, f) },
    }
}

/// # Safety
/// C contract of __fread_unlocked_chk.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __fread_unlocked_chk(
    p: *mut c_void,
    plen: usize,
    size: usize,
    count: usize,
    f: *mut FILE,
) -> usize {
    match size.checked_mul(count).filter(|&t| t > 0 && t <= plen) {
        // SAFETY: the checks passed: an ordinary fread_unlocked.
        Some(_) => unsafe { fread_unlocked(p, size, count, f) },
        // SAFETY: forwarding.
        None => unsafe { real::__fread_unlocked_chk(p, plen, size, count, f) },
    }
}

/// # Safety
/// C contract of __getdelim.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __getdelim(line: *mut *mut c_char, n: *mut usize, delim: c_int, f: *mut FILE) -> isize {
    // SAFETY: forwarding.
    let real = || unsafe { real::__getdelim(line, n, delim, f) };
    // Bad pointers fail at once (EINVAL); so does a FILE whose error flag is set (glibc returns -1).
    if line.is_null() || n.is_null() || stdio::error_flag(f) {
        return real();
    }
    match cooperative(f, Need::Delim { delim: delim as u8, limit: usize::MAX }) {
        Some(s) => s.getdelim(line, n, delim as u8, real),
        None => real(),
    }
}

/// # Safety
/// C contract of getline.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn getline(line: *mut *mut c_char, n: *mut usize, f: *mut FILE) -> isize {
    // SAFETY: getdelim with a newline.
    unsafe { __getdelim(line, n, b'\n' as c_int, f) }
}

/// One character by `real` (locked per `locked`), cooperatively when the buffer is empty.
#[inline]
fn one_char(f: *mut FILE, locked: bool, real: impl FnMut() -> c_int) -> c_int {
    match cooperative(f, Need::Bytes(1)) {
        Some(s) => s.read_once(None, locked, libc::EOF, real),
        None => {
            let mut real = real;
            real()
        }
    }
}

/// The one-character reads, written once: each is [`one_char`] on its stream, `locked` or not as the
/// call takes the FILE lock, with its real call for a FILE that cannot be read cooperatively.
macro_rules! char_reads {
    ($( $name:ident($($arg:ident: $t:ty),*) from $f:expr, locked: $locked:literal; )*) => {$(
        /// # Safety
        #[doc = concat!("C contract of ", stringify!($name), ".")]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($($arg: $t),*) -> c_int {
            // SAFETY: forwarding.
            one_char($f, $locked, || unsafe { real::$name($($arg),*) })
        }
    )*};
}

char_reads! {
    fgetc(f: *mut FILE) from f, locked: true;
    fgetc_unlocked(f: *mut FILE) from f, locked: false;
    getchar() from stdio::stdin_file(), locked: true;
    getchar_unlocked() from stdio::stdin_file(), locked: false;
    // What inlined getc_unlocked calls on an empty buffer, and libio's own refill.
    __uflow(f: *mut FILE) from f, locked: false;
    __underflow(f: *mut FILE) from f, locked: false;
}

same_function! {
    getc = fgetc(f: *mut FILE) -> c_int;
    // getc's old name.
    _IO_getc = fgetc(f: *mut FILE) -> c_int;
    // The function; the macro calls __uflow.
    getc_unlocked = fgetc_unlocked(f: *mut FILE) -> c_int;
    getdelim = __getdelim(line: *mut *mut c_char, n: *mut usize, delim: c_int, f: *mut FILE) -> isize;
}

/// The scanf family's one entry (from stdio_variadic.c): `variant` 0 GNU, 1 C99, 2 C23 conversions.
///
/// # Safety
/// `f`, `fmt` and `ap` as for vfscanf.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn asyncshim_vfscanf(f: *mut FILE, variant: c_int, fmt: *const c_char, ap: *mut c_void) -> c_int {
    let variant = match variant {
        0 => ScanVariant::Gnu,
        1 => ScanVariant::C99,
        _ => ScanVariant::C23,
    };
    if worker::current_task().is_some()
        && let Some(s) = stdio::stream_for_scan(f, variant, fmt as *const u8)
    {
        // SAFETY: the call's format and va_list.
        return unsafe { s.scan(variant, fmt as *const u8, ap) };
    }
    // SAFETY: forwarding to glibc's engine of the same variant.
    unsafe {
        match variant {
            ScanVariant::Gnu => real::vfscanf(f, fmt, ap),
            ScanVariant::C99 => real::__isoc99_vfscanf(f, fmt, ap),
            ScanVariant::C23 => match crate::real::isoc23_vfscanf_addr() {
                Some(a) => core::mem::transmute::<
                    usize,
                    unsafe extern "C" fn(*mut FILE, *const c_char, *mut c_void) -> c_int,
                >(a)(f, fmt, ap),
                None => {
                    super::set_errno(libc::ENOSYS);
                    libc::EOF
                }
            },
        }
    }
}

variadic_export! {
    scanf => asyncshim_scanf_gnu;
    fscanf => asyncshim_fscanf_gnu;
    vscanf => asyncshim_vscanf_gnu;
    vfscanf => asyncshim_vfscanf_gnu;
    __isoc99_scanf => asyncshim_scanf_c99;
    __isoc99_fscanf => asyncshim_fscanf_c99;
    __isoc99_vscanf => asyncshim_vscanf_c99;
    __isoc99_vfscanf => asyncshim_vfscanf_c99;
    __isoc23_scanf => asyncshim_scanf_c23;
    __isoc23_fscanf => asyncshim_fscanf_c23;
    __isoc23_vscanf => asyncshim_vscanf_c23;
    __isoc23_vfscanf => asyncshim_vfscanf_c23;
}
