//! Raw `syscall` instructions (x86-64), returning `Result<usize, Errno>` instead of touching `errno`.

use core::arch::asm;

/// A kernel error number, as the kernel returned it (positive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

#[inline(always)]
fn decode(ret: isize) -> Result<usize, Errno> {
    if (-4095..0).contains(&ret) { Err(Errno(-ret as i32)) } else { Ok(ret as usize) }
}

/// # Safety
/// The caller must pass arguments valid for system call `n`.
#[inline(always)]
pub unsafe fn syscall0(n: libc::c_long) -> Result<usize, Errno> {
    let ret: isize;
    // SAFETY: the syscall instruction clobbers rcx and r11 only; the caller vouches for the arguments.
    unsafe {
        asm!("syscall", inlateout("rax") n as isize => ret, lateout("rcx") _, lateout("r11") _, options(nostack))
    };
    decode(ret)
}

/// # Safety
/// The caller must pass arguments valid for system call `n`.
#[inline(always)]
pub unsafe fn syscall1(n: libc::c_long, a1: usize) -> Result<usize, Errno> {
    let ret: isize;
    // SAFETY: as for syscall0.
    unsafe {
        asm!("syscall", inlateout("rax") n as isize => ret, in("rdi") a1,
             lateout("rcx") _, lateout("r11") _, options(nostack))
    };
    decode(ret)
}

/// # Safety
/// The caller must pass arguments valid for system call `n`.
#[inline(always)]
pub unsafe fn syscall2(n: libc::c_long, a1: usize, a2: usize) -> Result<usize, Errno> {
    let ret: isize;
    // SAFETY: as for syscall0.
    unsafe {
        asm!("syscall", inlateout("rax") n as isize => ret, in("rdi") a1, in("rsi") a2,
             lateout("rcx") _, lateout("r11") _, options(nostack))
    };
    decode(ret)
}

/// # Safety
/// The caller must pass arguments valid for system call `n`.
#[inline(always)]
pub unsafe fn syscall3(n: libc::c_long, a1: usize, a2: usize, a3: usize) -> Result<usize, Errno> {
    let ret: isize;
    // SAFETY: as for syscall0.
    unsafe {
        asm!("syscall", inlateout("rax") n as isize => ret, in("rdi") a1, in("rsi") a2, in("rdx") a3,
             lateout("rcx") _, lateout("r11") _, options(nostack))
    };
    decode(ret)
}

/// # Safety
/// The caller must pass arguments valid for system call `n`.
#[inline(always)]
pub unsafe fn syscall4(n: libc::c_long, a1: usize, a2: usize, a3: usize, a4: usize) -> Result<usize, Errno> {
    let ret: isize;
    // SAFETY: as for syscall0.
    unsafe {
        asm!("syscall", inlateout("rax") n as isize => ret, in("rdi") a1, in("rsi") a2, in("rdx") a3,
             in("r10") a4, lateout("rcx") _, lateout("r11") _, options(nostack))
    };
    decode(ret)
}

/// # Safety
/// The caller must pass arguments valid for system call `n`.
#[inline(always)]
pub unsafe fn syscall6(n: libc::c_long, args: [usize; 6]) -> Result<usize, Errno> {
    let [a1, a2, a3, a4, a5, a6] = args;
    let ret: isize;
    // SAFETY: as for syscall0.
    unsafe {
        asm!("syscall", inlateout("rax") n as isize => ret, in("rdi") a1, in("rsi") a2, in("rdx") a3,
             in("r10") a4, in("r8") a5, in("r9") a6, lateout("rcx") _, lateout("r11") _, options(nostack))
    };
    decode(ret)
}
