//! Signals through raw system calls (masks, waits, sending), and the numbers glibc keeps for itself.
//! Masks are the kernel's 8-byte sets.

use super::syscall::{Errno, syscall0, syscall2, syscall3, syscall4};

/// glibc's SIGCANCEL (the first real-time signal): thread cancellation. The program cannot use it;
/// glibc's `sigaction`, `pthread_kill` and the masks the program sets refuse or drop it.
pub const SIGCANCEL: i32 = 32;
/// glibc's SIGSETXID: its `set*id` calls signal every OS thread with it to change their credentials.
pub const SIGSETXID: i32 = 33;

/// Set by glibc on every handler it installs (x86-64: the kernel returns through `sa_restorer`), and
/// reported back by the kernel.
pub const SA_RESTORER: i32 = 0x0400_0000;

/// Whether `sig` is one of glibc's two reserved signals (SIGCANCEL, SIGSETXID).
pub const fn is_glibc_reserved(sig: i32) -> bool {
    sig == SIGCANCEL || sig == SIGSETXID
}

/// The calling OS thread's signal mask, optionally replacing it with `set` (SIG_SETMASK).
pub fn sigmask(set: Option<u64>) -> u64 {
    let mut old = 0u64;
    let new = set.as_ref().map_or(0, |s| s as *const u64 as usize);
    // SAFETY: 8-byte kernel sigsets at valid addresses.
    let _ = unsafe {
        syscall4(libc::SYS_rt_sigprocmask, libc::SIG_SETMASK as usize, new, &mut old as *mut u64 as usize, 8)
    };
    old
}

/// The signals pending for the calling OS thread or its process (rt_sigpending).
pub fn pending() -> Result<u64, Errno> {
    let mut set = 0u64;
    // SAFETY: an 8-byte kernel sigset into a local.
    unsafe { syscall2(libc::SYS_rt_sigpending, &mut set as *mut u64 as usize, 8) }?;
    Ok(set)
}

/// rt_sigsuspend(2) with the program's mask.
///
/// # Safety
/// `mask` is the program's own (the kernel validates it).
pub unsafe fn suspend(mask: *const libc::sigset_t) -> Result<usize, Errno> {
    // SAFETY: the caller vouches for the mask.
    unsafe { syscall2(libc::SYS_rt_sigsuspend, mask as usize, 8) }
}

/// pause(2): sleeps until a signal handler runs; always ends in an error (EINTR).
pub fn pause() -> Errno {
    // SAFETY: takes no arguments.
    unsafe { syscall0(libc::SYS_pause) }.err().unwrap_or(Errno(libc::EINTR))
}

/// rt_sigtimedwait(2) with the program's arguments.
///
/// # Safety
/// `set`, `info` and `timeout` are the program's own or valid for the call (`info`, `timeout`: or null).
pub unsafe fn timedwait(
    set: *const libc::sigset_t,
    info: *mut libc::siginfo_t,
    timeout: *const libc::timespec,
) -> Result<i32, Errno> {
    // SAFETY: the caller vouches for the pointers.
    unsafe { syscall4(libc::SYS_rt_sigtimedwait, set as usize, info as usize, timeout as usize, 8) }.map(|s| s as i32)
}

/// The kernel's `struct sigaction` as rt_sigaction(2) takes it (8-byte mask): for the signals glibc's
/// `sigaction` refuses to touch (SIGCANCEL, SIGSETXID).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct KernelSigaction {
    pub handler: usize,
    pub flags: u64,
    pub restorer: usize,
    pub mask: u64,
}

/// The signal restorer (`sa_restorer`, with SA_RESTORER) of a handler installed with [`rt_sigaction`]:
/// rt_sigreturn(2), which the kernel's signal frame on the stack tells where to resume.
///
/// # Safety
/// Only the kernel calls it, at the end of a signal handler, with the signal frame on the stack.
#[unsafe(naked)]
pub unsafe extern "C" fn restore_rt() {
    core::arch::naked_asm!("mov eax, 15", "syscall", "ud2");
}

/// rt_sigaction(2) for `sig`: installs `act` when given, reads the action before into `old` when given.
pub fn rt_sigaction(sig: i32, act: Option<&KernelSigaction>, old: Option<&mut KernelSigaction>) -> Result<(), Errno> {
    let act = act.map_or(0, |a| a as *const KernelSigaction as usize);
    let old = old.map_or(0, |o| o as *mut KernelSigaction as usize);
    // SAFETY: the pointers are null or live kernel sigaction structs; 8-byte sigsets.
    unsafe { syscall4(libc::SYS_rt_sigaction, sig as usize, act, old, 8) }.map(|_| ())
}

/// A siginfo as the kernel fills it for a signal a process sends (x86-64 layout): `code`, then the two
/// 32-bit words after signo, errno, code and padding — pid and uid for kill, tgkill and sigqueue, or the
/// timer id and overrun for a POSIX timer — and the value (sigqueue's and timers' `si_value`; 0 for kill).
pub fn siginfo(sig: i32, code: i32, first: i32, second: i32, value: usize) -> libc::siginfo_t {
    #[repr(C)]
    struct Fields {
        signo: i32,
        errno: i32,
        code: i32,
        pad: i32,
        first: i32,
        second: i32,
        value: usize,
    }
    // SAFETY: a zeroed siginfo is valid; Fields is a prefix of its layout (128 bytes).
    unsafe {
        let mut info: libc::siginfo_t = core::mem::zeroed();
        let f = &mut info as *mut libc::siginfo_t as *mut Fields;
        (*f).signo = sig;
        (*f).code = code;
        (*f).first = first;
        (*f).second = second;
        (*f).value = value;
        info
    }
}

/// kill(2): `sig` to process `pid`.
pub fn kill(pid: i32, sig: i32) -> Result<(), Errno> {
    // SAFETY: touches no memory.
    unsafe { syscall2(libc::SYS_kill, pid as usize, sig as usize) }.map(|_| ())
}

/// rt_tgsigqueueinfo(2): `sig` with `info` to thread `tid` of process `pid`.
pub fn tgsigqueueinfo(pid: i32, tid: i32, sig: i32, info: &libc::siginfo_t) -> Result<(), Errno> {
    // SAFETY: the kernel reads the siginfo, a live reference.
    unsafe {
        syscall4(libc::SYS_rt_tgsigqueueinfo, pid as usize, tid as usize, sig as usize, info as *const _ as usize)
    }
    .map(|_| ())
}

/// rt_sigqueueinfo(2): `sig` with `info` to process `pid`.
pub fn sigqueueinfo(pid: i32, sig: i32, info: &libc::siginfo_t) -> Result<(), Errno> {
    // SAFETY: the kernel reads the siginfo, a live reference.
    unsafe { syscall3(libc::SYS_rt_sigqueueinfo, pid as usize, sig as usize, info as *const _ as usize) }.map(|_| ())
}

/// tkill(2): `sig` to thread `tid`.
pub fn tkill(tid: i32, sig: i32) -> Result<(), Errno> {
    // SAFETY: plain integer arguments.
    unsafe { syscall2(libc::SYS_tkill, tid as usize, sig as usize) }.map(|_| ())
}

/// tgkill(2): `sig` to thread `tid` of process `pid`.
pub fn tgkill(pid: i32, tid: i32, sig: i32) -> Result<(), Errno> {
    // SAFETY: touches no memory.
    unsafe { syscall3(libc::SYS_tgkill, pid as usize, tid as usize, sig as usize) }.map(|_| ())
}
