//! The FS and GS segment bases. FS is the glibc thread pointer (TCB), switched at every coroutine resume and
//! suspend so each coroutine has its own thread identity. GS points at the current worker and is never
//! touched by glibc, so scheduler state is found without FS-relative TLS.
//!
//! With FSGSBASE (Linux 5.9+, checked through AT_HWCAP2) the bases are read and written by single
//! instructions; otherwise by `arch_prctl`, a system call each (which is why a switch prefers them).

use super::syscall::syscall2;
use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering};

static HAVE_FSGSBASE: AtomicBool = AtomicBool::new(false);

const HWCAP2_FSGSBASE: u64 = 1 << 1;
const ARCH_SET_GS: usize = 0x1001;
const ARCH_SET_FS: usize = 0x1002;
const ARCH_GET_FS: usize = 0x1003;
const ARCH_GET_GS: usize = 0x1004;

/// Decides once whether the fast instructions may be used (`force_syscalls` tests the fallback).
pub fn init(force_syscalls: bool) {
    // SAFETY: getauxval has no preconditions.
    let hw2 = unsafe { libc::getauxval(libc::AT_HWCAP2) };
    HAVE_FSGSBASE.store(!force_syscalls && hw2 & HWCAP2_FSGSBASE != 0, Ordering::Relaxed);
}

pub fn have_fsgsbase() -> bool {
    HAVE_FSGSBASE.load(Ordering::Relaxed)
}

/// The calling thread's glibc TCB address, from its self pointer at fs:0x10 (glibc's THREAD_SELF): one
/// load in both FS modes.
#[inline(always)]
pub fn thread_self() -> usize {
    let v: usize;
    // SAFETY: every thread that runs this code has a glibc TCB in FS whose word at 0x10 is its address.
    unsafe { asm!("mov {}, qword ptr fs:[0x10]", out(reg) v, options(nostack, preserves_flags, readonly)) };
    v
}

/// A segment base's two accessors: the instruction when FSGSBASE is enabled, `arch_prctl` otherwise.
macro_rules! segment_base {
    ($get:ident: $rd:literal, $arch_get:ident; $(#[$set_doc:meta])* $set:ident: $wr:literal, $arch_set:ident;) => {
        #[doc = concat!("The calling thread's base, read with ", $rd, " or arch_prctl.")]
        #[inline(always)]
        pub fn $get() -> usize {
            if have_fsgsbase() {
                let v: usize;
                // SAFETY: the instruction is enabled (HWCAP2_FSGSBASE) and only reads the base.
                unsafe { asm!(concat!($rd, " {}"), out(reg) v, options(nomem, nostack, preserves_flags)) };
                v
            } else {
                let mut v: usize = 0;
                // SAFETY: arch_prctl's GET writes one word to &mut v.
                let _ = unsafe { syscall2(libc::SYS_arch_prctl, $arch_get, &mut v as *mut usize as usize) };
                v
            }
        }

        $(#[$set_doc])*
        #[inline(always)]
        pub unsafe fn $set(base: usize) {
            if have_fsgsbase() {
                // SAFETY: the caller vouches for the base; the instruction is enabled.
                unsafe { asm!(concat!($wr, " {}"), in(reg) base, options(nostack, preserves_flags)) };
            } else {
                // SAFETY: as above.
                let _ = unsafe { syscall2(libc::SYS_arch_prctl, $arch_set, base) };
            }
        }
    };
}

segment_base! {
    fs_base: "rdfsbase", ARCH_GET_FS;
    /// # Safety
    /// `base` must be a valid glibc TCB for the code that runs until the next switch.
    set_fs_base: "wrfsbase", ARCH_SET_FS;
}

segment_base! {
    gs_base: "rdgsbase", ARCH_GET_GS;
    /// # Safety
    /// `base` must be 0 or point at a live worker for as long as this OS thread runs with it.
    set_gs_base: "wrgsbase", ARCH_SET_GS;
}
