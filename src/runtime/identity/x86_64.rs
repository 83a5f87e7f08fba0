//! What of glibc's thread identity is particular to x86-64, in one place, so that another architecture is
//! one more file like this one: where the thread descriptor lies relative to the thread pointer, where
//! static TLS goes, the `tcbhead_t` words the runtime fills in (self pointers, the stack-protector and
//! pointer guards), and loads relative to the thread pointer. Switching the thread pointer itself (the FS
//! base) is `sys::fsgs`.
//!
//! x86-64 uses TLS variant II: the thread pointer is the address of the thread's `struct pthread`, which
//! starts with `tcbhead_t`, and static TLS lies below it. (aarch64, for comparison: TPIDR_EL0 points just
//! past the descriptor, static TLS above it, and the stack guard is a global, not in the TCB.)

use super::super::sys::fsgs;
use core::arch::asm;

/// `tcbhead_t` (sysdeps/x86_64/nptl/tls.h), the same from glibc 2.31 to 2.43.
const HDR_TCB: usize = 0x00;
pub const HDR_DTV: usize = 0x08;
const HDR_SELF: usize = 0x10;
const HDR_MULTIPLE_THREADS: usize = 0x18;
const HDR_STACK_GUARD: usize = 0x28;
const HDR_POINTER_GUARD: usize = 0x30;

/// Alignment glibc gives `struct pthread` (TCB_ALIGNMENT).
pub const TCB_ALIGN: usize = 64;

/// The calling thread's thread pointer: one load of the self pointer at fs:0x10, whichever way FS was set.
#[inline(always)]
pub fn thread_pointer() -> usize {
    fsgs::thread_self()
}

/// The thread descriptor of the thread whose thread pointer is `tp`.
#[inline(always)]
pub fn descriptor_of(tp: usize) -> usize {
    tp
}

/// Reads the u32 `off` bytes past the calling thread's thread pointer in one instruction.
#[inline(always)]
pub fn read_u32_at_tp(off: usize) -> u32 {
    let v: u32;
    // SAFETY: FS always holds a valid TCB (glibc's or the runtime's) and callers pass offsets inside it.
    unsafe { asm!("mov {0:e}, fs:[{1}]", out(reg) v, in(reg) off, options(nostack, readonly, preserves_flags)) };
    v
}

/// Reads the word `off` bytes from the calling thread's thread pointer (negative: in static TLS).
#[inline(always)]
pub fn read_word_at_tp(off: isize) -> usize {
    let v: usize;
    // SAFETY: as above; callers pass offsets of words in the thread's own TCB or static TLS.
    unsafe {
        asm!("mov {0}, qword ptr fs:[{1}]", out(reg) v, in(reg) off, options(nostack, readonly, preserves_flags))
    };
    v
}

/// Where a descriptor of `pthread_size` bytes goes in memory ending at `top`, and the highest stack
/// address below its static TLS (`static_size` bytes including the descriptor, aligned to `align`).
pub fn place_below(top: usize, pthread_size: usize, static_size: usize, align: usize) -> (usize, usize) {
    let tcb = (top - pthread_size - TCB_ALIGN) & !(align - 1);
    (tcb, (tcb - (static_size - pthread_size)) & !63)
}

/// Fills in the `tcbhead_t` of a new descriptor the way glibc's pthread_create does: the self pointers,
/// `multiple_threads` (left 0, glibc's atomics drop their lock prefix and malloc's heap is corrupted
/// within a second), and the stack-protector and pointer guards, which are process-wide: copied from the
/// calling thread's.
///
/// # Safety
/// `tcb` must be a writable descriptor and the calling thread's TCB a live one.
pub unsafe fn init_header(tcb: usize) {
    let cur = thread_pointer();
    // SAFETY: both TCBs are live and the header words are aligned and inside them.
    unsafe {
        ((tcb + HDR_TCB) as *mut usize).write(tcb);
        ((tcb + HDR_SELF) as *mut usize).write(tcb);
        ((tcb + HDR_MULTIPLE_THREADS) as *mut i32).write(1);
        ((tcb + HDR_STACK_GUARD) as *mut usize).write(((cur + HDR_STACK_GUARD) as *const usize).read());
        ((tcb + HDR_POINTER_GUARD) as *mut usize).write(((cur + HDR_POINTER_GUARD) as *const usize).read());
    }
}
