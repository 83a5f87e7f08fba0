//! glibc's FILE as x86-64 lays it out (libio.h, public ABI unchanged since glibc 2.1): the head of
//! `struct _IO_FILE`, its `_flags` bits, and the `va_list` element a format is passed in. The stdio read
//! side ([`super::stdio`]) and write side ([`super::stdio_write`]) both work on a FILE's own fields, as
//! glibc's functions do, through these.

use std::ffi::{c_int, c_void};

/// The head of glibc's `struct _IO_FILE` on x86-64 (public ABI, unchanged since glibc 2.1).
#[repr(C)]
pub struct IoFile {
    pub flags: c_int,
    pub read_ptr: *mut u8,
    pub read_end: *mut u8,
    pub read_base: *mut u8,
    pub write_base: *mut u8,
    pub write_ptr: *mut u8,
    pub write_end: *mut u8,
    pub buf_base: *mut u8,
    pub buf_end: *mut u8,
    pub save_base: *mut u8,
    pub backup_base: *mut u8,
    pub save_end: *mut u8,
    pub markers: *mut c_void,
    pub chain: *mut c_void,
    pub fileno: c_int,
    pub flags2: c_int,
    pub old_offset: i64,
    pub cur_column: u16,
    pub vtable_offset: i8,
    pub shortbuf: [u8; 1],
    pub lock: *mut c_void,
    pub offset: i64,
    pub codecvt: *mut c_void,
    pub wide_data: *mut c_void,
    pub freeres_list: *mut c_void,
    pub freeres_buf: *mut c_void,
    pub pad5: usize,
    pub mode: c_int,
}

const _: () = assert!(core::mem::offset_of!(IoFile, fileno) == 112);
const _: () = assert!(core::mem::offset_of!(IoFile, mode) == 192);
const _: () = assert!(core::mem::offset_of!(IoFile, markers) == 96);
const _: () = assert!(core::mem::offset_of!(IoFile, offset) == 144);

/// x86-64's `va_list` element, copied to go through a format twice (what `va_copy` does).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct VaListTag {
    gp_offset: u32,
    fp_offset: u32,
    overflow_arg_area: *mut c_void,
    reg_save_area: *mut c_void,
}

/// `_flags` bits of libio.h.
pub const MAGIC_MASK: c_int = 0xFFFF0000u32 as c_int;
pub const MAGIC: c_int = 0xFBAD0000u32 as c_int;
pub const UNBUFFERED: c_int = 0x0002;
pub const NO_READS: c_int = 0x0004;
pub const NO_WRITES: c_int = 0x0008;
pub const EOF_SEEN: c_int = 0x0010;
pub const ERR_SEEN: c_int = 0x0020;
pub const LINKED: c_int = 0x0080;
pub const IN_BACKUP: c_int = 0x0100;
pub const LINE_BUF: c_int = 0x0200;
pub const CURRENTLY_PUTTING: c_int = 0x0800;
pub const IS_FILEBUF: c_int = 0x2000;
pub const IS_APPENDING: c_int = 0x1000;

/// The FILE's fields.
pub fn file(f: *mut libc::FILE) -> &'static mut IoFile {
    // SAFETY: callers pass live FILEs (the C contract of the function hooked); glibc's FILE starts with
    // this layout.
    unsafe { &mut *(f as *mut IoFile) }
}
