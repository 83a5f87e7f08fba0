//! Copies from and to memory the program passed in, turning a bad pointer into EFAULT instead of a crash,
//! the way the kernel's own copy_from_user does: the copy is one `rep movsb` whose faults the SIGSEGV
//! handler recognises by address and resumes at a fixup that returns EFAULT. A compare-exchange on a
//! program's 32-bit word (the kernel's futex_atomic_op_inuser) is made the same way.

use super::syscall::Errno;
use core::arch::global_asm;

global_asm!(
    ".pushsection .text.asyncshim_user_copy,\"ax\",@progbits",
    ".globl asyncshim_user_copy",
    ".hidden asyncshim_user_copy",
    ".type asyncshim_user_copy,@function",
    "asyncshim_user_copy:",
    "    xor eax, eax",
    "    mov rcx, rdx",
    ".globl asyncshim_user_copy_insn",
    ".hidden asyncshim_user_copy_insn",
    "asyncshim_user_copy_insn:",
    "    rep movsb",
    "    ret",
    ".globl asyncshim_user_copy_fixup",
    ".hidden asyncshim_user_copy_fixup",
    "asyncshim_user_copy_fixup:",
    "    mov eax, 14",
    "    ret",
    ".size asyncshim_user_copy, .-asyncshim_user_copy",
    // (word, expected, new, current out): 0 swapped, 1 not (the word held *current), 14 a fault.
    ".globl asyncshim_user_cmpxchg",
    ".hidden asyncshim_user_cmpxchg",
    ".type asyncshim_user_cmpxchg,@function",
    "asyncshim_user_cmpxchg:",
    "    mov eax, esi",
    ".globl asyncshim_user_cmpxchg_insn",
    ".hidden asyncshim_user_cmpxchg_insn",
    "asyncshim_user_cmpxchg_insn:",
    "    lock cmpxchg dword ptr [rdi], edx",
    "    mov dword ptr [rcx], eax",
    "    setnz al",
    "    movzx eax, al",
    "    ret",
    ".globl asyncshim_user_cmpxchg_fixup",
    ".hidden asyncshim_user_cmpxchg_fixup",
    "asyncshim_user_cmpxchg_fixup:",
    "    mov eax, 14",
    "    ret",
    ".size asyncshim_user_cmpxchg, .-asyncshim_user_cmpxchg",
    ".globl asyncshim_user_load8",
    ".hidden asyncshim_user_load8",
    ".type asyncshim_user_load8,@function",
    "asyncshim_user_load8:",
    "    xor eax, eax",
    ".globl asyncshim_user_load8_insn",
    ".hidden asyncshim_user_load8_insn",
    "asyncshim_user_load8_insn:",
    "    mov rdx, qword ptr [rdi]",
    "    mov qword ptr [rsi], rdx",
    "    ret",
    ".globl asyncshim_user_load8_fixup",
    ".hidden asyncshim_user_load8_fixup",
    "asyncshim_user_load8_fixup:",
    "    mov eax, 14",
    "    ret",
    ".size asyncshim_user_load8, .-asyncshim_user_load8",
    ".popsection",
);

unsafe extern "C" {
    fn asyncshim_user_copy(dst: *mut u8, src: *const u8, len: usize) -> i32;
    static asyncshim_user_copy_insn: u8;
    static asyncshim_user_copy_fixup: u8;
    fn asyncshim_user_cmpxchg(word: *mut u32, expected: u32, new: u32, current: *mut u32) -> i32;
    static asyncshim_user_cmpxchg_insn: u8;
    static asyncshim_user_cmpxchg_fixup: u8;
    fn asyncshim_user_load8(src: *const u8, dst: *mut u64) -> i32;
    static asyncshim_user_load8_insn: u8;
    static asyncshim_user_load8_fixup: u8;
}

/// If `pc` is the faulting copy instruction, the address to resume at instead.
pub fn fixup_for(pc: usize) -> Option<usize> {
    // SAFETY: only the addresses of the asm labels are taken.
    let insn = unsafe { &asyncshim_user_copy_insn as *const u8 as usize };
    // SAFETY: as above.
    let fixup = unsafe { &asyncshim_user_copy_fixup as *const u8 as usize };
    if pc == insn {
        return Some(fixup);
    }
    // SAFETY: as above.
    let cmpxchg = unsafe { &asyncshim_user_cmpxchg_insn as *const u8 as usize };
    // SAFETY: as above.
    let cmpxchg_fixup = unsafe { &asyncshim_user_cmpxchg_fixup as *const u8 as usize };
    if pc == cmpxchg {
        return Some(cmpxchg_fixup);
    }
    // SAFETY: as above.
    let (load, load_fixup) = unsafe {
        (&asyncshim_user_load8_insn as *const u8 as usize, &asyncshim_user_load8_fixup as *const u8 as usize)
    };
    (pc == load).then_some(load_fixup)
}

/// Atomically replaces the program's 32-bit word at `word` (aligned) by `f` of its value, as the kernel's
/// futex operations do (a compare-exchange loop); returns the old value, or Err(EFAULT) if the word is
/// not mapped writable.
// Safe to call with any pointer: a fault is caught and reported, which is this module's purpose.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn update_u32(word: *mut u32, f: impl Fn(u32) -> u32) -> Result<u32, Errno> {
    let mut cur = read(word as *const u32)?;
    loop {
        let mut seen = 0u32;
        // SAFETY: `seen` is our own; faults on the program's word are caught and reported.
        match unsafe { asyncshim_user_cmpxchg(word, cur, f(cur), &mut seen) } {
            0 => return Ok(cur),
            1 => cur = seen,
            e => return Err(Errno(e)),
        }
    }
}

/// The eight bytes at a program-supplied pointer (any alignment), read with one load: a quarter of the
/// cost of [`read`], for the head of a string on a hot path (a caller that needs only the first byte to be
/// readable keeps the eight in one page, where they are readable together); Err(EFAULT) if they are not.
// Safe to call with any pointer: a fault is caught and reported, which is this module's purpose.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn read8(src: *const u8) -> Result<[u8; 8], Errno> {
    let mut v = 0u64;
    // SAFETY: the destination is a local; a fault on the source is caught and reported.
    match unsafe { asyncshim_user_load8(src, &mut v) } {
        0 => Ok(v.to_ne_bytes()),
        e => Err(Errno(e)),
    }
}

/// Reads a `T` from a program-supplied pointer; Err(EFAULT) if it is not readable.
pub fn read<T: Copy>(src: *const T) -> Result<T, Errno> {
    let mut v = core::mem::MaybeUninit::<T>::uninit();
    // SAFETY: the destination is our own MaybeUninit; faults on the source are caught and reported.
    match unsafe { asyncshim_user_copy(v.as_mut_ptr() as *mut u8, src as *const u8, size_of::<T>()) } {
        // SAFETY: all size_of::<T>() bytes were copied and T is plain data (Copy).
        0 => Ok(unsafe { v.assume_init() }),
        e => Err(Errno(e)),
    }
}

/// Writes a `T` to a program-supplied pointer; Err(EFAULT) if it is not writable.
pub fn write<T: Copy>(dst: *mut T, val: T) -> Result<(), Errno> {
    // SAFETY: the source is a local; faults on the destination are caught and reported.
    match unsafe { asyncshim_user_copy(dst as *mut u8, &val as *const T as *const u8, size_of::<T>()) } {
        0 => Ok(()),
        e => Err(Errno(e)),
    }
}

/// Writes `src` to a program-supplied buffer; Err(EFAULT) if it is not writable.
// Safe to call with any pointer: a fault is caught and reported, which is this module's purpose.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn write_bytes(dst: *mut u8, src: &[u8]) -> Result<(), Errno> {
    // SAFETY: the source is our own slice; faults on the destination are caught and reported.
    match unsafe { asyncshim_user_copy(dst, src.as_ptr(), src.len()) } {
        0 => Ok(()),
        e => Err(Errno(e)),
    }
}

/// Reads a program-supplied buffer into `dst`; Err(EFAULT) if it is not readable.
// Safe to call with any pointer: a fault is caught and reported, which is this module's purpose.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn read_bytes(dst: &mut [u8], src: *const u8) -> Result<(), Errno> {
    // SAFETY: the destination is our own slice; faults on the source are caught and reported.
    match unsafe { asyncshim_user_copy(dst.as_mut_ptr(), src, dst.len()) } {
        0 => Ok(()),
        e => Err(Errno(e)),
    }
}
