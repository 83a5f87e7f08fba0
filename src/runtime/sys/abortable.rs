//! A system call that another thread can abort, before it starts or while it blocks, without losing its
//! result if it completed first: for the calls helper threads make for coroutines (`waitid`, a blocking
//! `fcntl` lock, ...), which must end when the coroutine they serve is interrupted by a signal or a
//! cancellation request, as the coroutine's own call would.
//!
//! The call goes through one assembly routine whose *window* — from the check of the call's abort flag up
//! to and including the `syscall` instruction — is known. The aborting thread sets the flag and then sends
//! the helper a signal whose handler calls [`abort_in_context`]: if the helper is in the window (about to
//! make the call, or in it and about to have it restarted — the kernel rewinds the instruction pointer to
//! the `syscall` instruction before it runs the handler of a restartable call), the handler moves it to
//! the routine's exit, which returns EINTR; if the call had completed, its result stands. A signal that
//! comes before the routine is entered finds the flag set when the routine checks it. (musl closes its
//! cancellation race the same way.)
//!
//! [`call_or_skip`] tells the two aborts apart: a call aborted before it began (the flag seen before the
//! `syscall` instruction ran) did nothing, and its caller may make it again once the handlers ran, as
//! for a signal that came just before the call; a call the kernel interrupted (and would restart) ends
//! with EINTR. At the `syscall` instruction the two look alike but for `rcx`: the routine loads the
//! flag's address into it, and the instruction itself overwrites it with its return address, which the
//! kernel leaves there when it rewinds a call to restart it.
//!
//! [`foreign`] aborts a call libc makes inside itself (`aio_suspend`'s futex wait), whose instructions no
//! window covers: while the helper makes it, the same signal ends a futex wait of the thread's (see
//! [`abort_foreign_in_context`]), which libc treats as the EINTR the program's handler would have caused.

use super::syscall::Errno;
use core::cell::Cell;
use core::sync::atomic::{AtomicI32, AtomicU32, Ordering};

/// A call made through [`call`] by a thread another may abort: the kernel tid of the thread while the call
/// may be under way (0 otherwise), and the call's flag.
pub struct Handle {
    pub tid: AtomicI32,
    pub flag: AtomicU32,
}

impl Handle {
    pub const fn new() -> Handle {
        Handle { tid: AtomicI32::new(0), flag: AtomicU32::new(0) }
    }
}

impl Default for Handle {
    fn default() -> Self {
        Self::new()
    }
}

/// What [`call`] passes the routine: the flag's address, then the system call number and six arguments.
#[repr(C)]
struct Frame {
    flag: *const AtomicU32,
    nr: usize,
    args: [usize; 6],
}

core::arch::global_asm!(
    ".pushsection .text.asyncshim_abortable,\"ax\",@progbits",
    ".p2align 4",
    ".globl asyncshim_abortable_syscall",
    ".hidden asyncshim_abortable_syscall",
    ".type asyncshim_abortable_syscall,@function",
    "asyncshim_abortable_syscall:",
    ".cfi_startproc",
    "push r12",
    ".cfi_adjust_cfa_offset 8",
    ".cfi_rel_offset r12, 0",
    "mov r12, rdi",
    "mov rax, [r12 + 8]",
    "mov rdi, [r12 + 16]",
    "mov rsi, [r12 + 24]",
    "mov rdx, [r12 + 32]",
    "mov r10, [r12 + 40]",
    "mov r8, [r12 + 48]",
    "mov r9, [r12 + 56]",
    ".globl asyncshim_abortable_window",
    ".hidden asyncshim_abortable_window",
    "asyncshim_abortable_window:",
    "mov rcx, [r12]",
    "cmp dword ptr [rcx], 0",
    "jne 3f",
    ".globl asyncshim_abortable_syscall_insn",
    ".hidden asyncshim_abortable_syscall_insn",
    "asyncshim_abortable_syscall_insn:",
    "syscall",
    // The one way out (the two abort exits below come here with their result in rax).
    "4:",
    "pop r12",
    ".cfi_adjust_cfa_offset -8",
    ".cfi_restore r12",
    "ret",
    ".cfi_adjust_cfa_offset 8",
    ".cfi_rel_offset r12, 0",
    ".globl asyncshim_abortable_aborted",
    ".hidden asyncshim_abortable_aborted",
    "asyncshim_abortable_aborted:",
    "mov rax, -4",
    "jmp 4b",
    ".globl asyncshim_abortable_skipped",
    ".hidden asyncshim_abortable_skipped",
    "asyncshim_abortable_skipped:",
    "3:",
    "mov rax, -512",
    "jmp 4b",
    ".cfi_endproc",
    ".size asyncshim_abortable_syscall, . - asyncshim_abortable_syscall",
    ".popsection",
);

unsafe extern "C" {
    fn asyncshim_abortable_syscall(frame: *const Frame) -> isize;
    static asyncshim_abortable_window: u8;
    static asyncshim_abortable_syscall_insn: u8;
    static asyncshim_abortable_aborted: u8;
    static asyncshim_abortable_skipped: u8;
}

/// What the routine returns for a call aborted before it began: ERESTARTSYS, which the kernel never
/// lets reach user space.
const SKIPPED: isize = -512;

/// Makes system call `nr` with `args` unless `flag` is (or, while it blocks, becomes) non-zero and the
/// calling thread gets a signal whose handler calls [`abort_in_context`]: then Err(EINTR), and the call
/// either never started or was interrupted before it completed. An EINTR with the flag still 0 came from a
/// signal of no concern to the call, which is made again (as the coroutine's own call would not have been
/// interrupted).
///
/// # Safety
/// The arguments must be valid for system call `nr` until it returns.
pub unsafe fn call(flag: &AtomicU32, nr: libc::c_long, args: [usize; 6]) -> Result<usize, Errno> {
    // SAFETY: per the contract.
    unsafe { call_or_skip(flag, nr, args) }.unwrap_or(Err(Errno(libc::EINTR)))
}

/// [`call`], telling a call aborted before it began (None: it did nothing) from one the kernel
/// interrupted (Some(Err(EINTR))).
///
/// # Safety
/// As [`call`].
pub unsafe fn call_or_skip(flag: &AtomicU32, nr: libc::c_long, args: [usize; 6]) -> Option<Result<usize, Errno>> {
    let frame = Frame { flag, nr: nr as usize, args };
    loop {
        // SAFETY: the routine makes one system call with the frame's arguments, which the caller vouches
        // for; it clobbers only what the C ABI lets a call clobber (r12 is saved and restored).
        let ret = unsafe { asyncshim_abortable_syscall(&frame) };
        if ret == SKIPPED {
            return None;
        }
        if ret == -(libc::EINTR as isize) && flag.load(core::sync::atomic::Ordering::SeqCst) == 0 {
            continue;
        }
        return Some(if (-4095..0).contains(&ret) { Err(Errno(-ret as i32)) } else { Ok(ret as usize) });
    }
}

/// For a signal handler on a thread that may be in [`call`]: if the interrupted code is in the window and
/// its call's flag is set, it resumes at one of the routine's exits instead: EINTR for a call the kernel
/// rewound to restart it, "skipped" for one not made yet. Async-signal-safe.
///
/// # Safety
/// `uc` is the context the kernel passed to the handler, running on the interrupted thread.
pub unsafe fn abort_in_context(uc: *mut libc::ucontext_t) {
    // SAFETY: per the contract; the labels are addresses in this library's text.
    unsafe {
        let gregs = &mut (*uc).uc_mcontext.gregs;
        let pc = gregs[libc::REG_RIP as usize] as usize;
        let start = &asyncshim_abortable_window as *const u8 as usize;
        let insn = &asyncshim_abortable_syscall_insn as *const u8 as usize;
        if pc < start || pc > insn {
            return;
        }
        // In the window r12 holds the frame, whose first word is the flag's address.
        let frame = gregs[libc::REG_R12 as usize] as usize as *const Frame;
        if (*(*frame).flag).load(core::sync::atomic::Ordering::SeqCst) == 0 {
            return;
        }
        // The `syscall` instruction is two bytes long; it left its return address in rcx.
        let restarted = pc == insn && gregs[libc::REG_RCX as usize] as usize == insn + 2;
        let exit = if restarted { &asyncshim_abortable_aborted } else { &asyncshim_abortable_skipped };
        gregs[libc::REG_RIP as usize] = exit as *const u8 as usize as i64;
    }
}

thread_local! {
    /// The abort flag of the call the thread makes now in [`foreign`] (null outside it). Read by the
    /// abort signal's handler, sent only to helper threads: their TLS is a plain thread's, allocated
    /// when the thread started (no lazy allocation in the handler).
    static FOREIGN: Cell<*const AtomicU32> = const { Cell::new(core::ptr::null()) };
}

/// Runs `f`, a libc call that waits on a futex inside libc (`aio_suspend`), so that once `flag` is set
/// the abort signal ends that wait with EINTR ([`abort_foreign_in_context`]). None when `flag` was set
/// before `f` began (it was not called). A signal that comes while `f` is not in its wait (about to
/// begin it) ends nothing: the aborting thread sends it again until `f` is over.
pub fn foreign<R>(flag: &AtomicU32, f: impl FnOnce() -> R) -> Option<R> {
    FOREIGN.with(|c| c.set(flag));
    // After the flag's address is published: an abort that came before it is seen here.
    let r = if flag.load(Ordering::SeqCst) != 0 { None } else { Some(f()) };
    FOREIGN.with(|c| c.set(core::ptr::null()));
    r
}

/// The futex operations that wait for a wake-up (FUTEX_WAIT, FUTEX_WAIT_BITSET), without the private
/// and clock flags.
fn is_futex_wait(op: usize) -> bool {
    matches!(op & !((libc::FUTEX_PRIVATE_FLAG | libc::FUTEX_CLOCK_REALTIME) as usize), 0 | 9)
}

/// For the abort signal's handler: if the thread is in [`foreign`] with its flag set and the interrupted
/// code is at a `syscall` instruction making a futex wait — the kernel rewound the wait to restart it
/// under the signal's SA_RESTART (a timed wait already fails with EINTR: the kernel does not restart it
/// after a handler), or it is about to make it — the wait returns EINTR instead, as under a handler
/// without SA_RESTART. libc's futex waits all allow spurious wake-ups (a lock's wait tries again),
/// so one that was not the call's own wait loses nothing. Async-signal-safe.
///
/// # Safety
/// `uc` is the context the kernel passed to the handler, running on the interrupted thread.
pub unsafe fn abort_foreign_in_context(uc: *mut libc::ucontext_t) {
    let flag = FOREIGN.with(|c| c.get());
    // SAFETY: a non-null FOREIGN is the flag of the call the thread is in (it outlives the call).
    if flag.is_null() || unsafe { (*flag).load(Ordering::SeqCst) } == 0 {
        return;
    }
    // SAFETY: per the contract; the instruction bytes are read at the interrupted pc, which is code.
    unsafe {
        let gregs = &mut (*uc).uc_mcontext.gregs;
        let pc = gregs[libc::REG_RIP as usize] as usize;
        if core::ptr::read_unaligned(pc as *const [u8; 2]) != [0x0f, 0x05] {
            return;
        }
        if gregs[libc::REG_RAX as usize] != libc::SYS_futex || !is_futex_wait(gregs[libc::REG_RSI as usize] as usize) {
            return;
        }
        gregs[libc::REG_RAX as usize] = -(libc::EINTR as i64);
        gregs[libc::REG_RIP as usize] = (pc + 2) as i64;
    }
}
