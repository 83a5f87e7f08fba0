//! Where a preempted coroutine goes: [`entry`] saves the complete user-visible state (general registers,
//! flags, and the extended state — x87, SSE, AVX, AVX-512 — with XSAVE, or FXSAVE without it), switches
//! out to the worker, and on resumption restores it all and returns to the interrupted instruction.
//!
//! On entry (set up by `signal::redirect`) the stack holds the interrupted instruction's address with the
//! interrupted code's 128-byte red zone above it; `ret 128` returns there and steps over the red zone in
//! one instruction, so no register is needed to carry the address and nothing below the stack pointer is
//! live at any moment.

use crate::runtime::task::Switch;
use crate::runtime::worker;
use core::sync::atomic::{AtomicU64, Ordering};

/// Bytes the extended-state area takes (CPUID leaf 0xD for the features the OS enabled), plus the 64
/// bytes of alignment slack; 512 + 64 for FXSAVE.
static AREA_SIZE: AtomicU64 = AtomicU64::new(0);
/// 1 when XSAVE is usable (the OS enabled it), else FXSAVE is used. A byte the assembly compares.
static USE_XSAVE: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);

/// The stack the saved state needs (for the handler's room check).
pub fn state_size() -> usize {
    if AREA_SIZE.load(Ordering::Relaxed) == 0 {
        measure();
    }
    AREA_SIZE.load(Ordering::Relaxed) as usize + 256
}

fn measure() {
    let leaf1 = core::arch::x86_64::__cpuid(1);
    let osxsave = leaf1.ecx & (1 << 27) != 0;
    let size = if osxsave {
        // Leaf 0xD exists when XSAVE does; EBX is the size for the features XCR0 enables now.
        let d = core::arch::x86_64::__cpuid_count(0xd, 0);
        USE_XSAVE.store(1, Ordering::Relaxed);
        (d.ebx as u64).max(576)
    } else {
        512
    };
    AREA_SIZE.store((size + 64 + 63) & !63, Ordering::Relaxed);
}

/// The trampoline's address, for the handler.
pub fn entry() -> usize {
    trampoline as *const () as usize
}

/// Entered instead of the interrupted instruction; see the module doc.
///
/// # Safety
/// Only `signal::redirect` sends code here, with the return slot it sets up.
#[unsafe(naked)]
unsafe extern "C" fn trampoline() {
    core::arch::naked_asm!(
        // Unwind information (DWARF register numbers: rax 0, rdx 1, rcx 2, rbx 3, rsi 4, rdi 5, rbp 6,
        // rsp 7, r8-r15 8-15, return address 16): the frame of the interrupted code is the caller, with
        // its stack pointer 136 bytes above ours at entry (return slot + red zone) and every register
        // saved below; a signal frame, so the unwinder looks up the interrupted instruction itself rather
        // than the one before it. An asynchronous cancellation unwinds through it (see `preempted`).
        ".cfi_startproc",
        ".cfi_signal_frame",
        ".cfi_def_cfa 7, 136",
        ".cfi_offset 16, -136",
        "pushfq",
        "push rax",
        "push rbx",
        "push rcx",
        "push rdx",
        "push rsi",
        "push rdi",
        "push rbp",
        "push r8",
        "push r9",
        "push r10",
        "push r11",
        "push r12",
        "push r13",
        "push r14",
        "push r15",
        "cld",
        "mov rbx, rsp",
        ".cfi_def_cfa 3, 264",
        ".cfi_offset 0, -152",
        ".cfi_offset 3, -160",
        ".cfi_offset 2, -168",
        ".cfi_offset 1, -176",
        ".cfi_offset 4, -184",
        ".cfi_offset 5, -192",
        ".cfi_offset 6, -200",
        ".cfi_offset 8, -208",
        ".cfi_offset 9, -216",
        ".cfi_offset 10, -224",
        ".cfi_offset 11, -232",
        ".cfi_offset 12, -240",
        ".cfi_offset 13, -248",
        ".cfi_offset 14, -256",
        ".cfi_offset 15, -264",
        "sub rsp, qword ptr [rip + {size}]",
        "and rsp, -64",
        // The XSAVE header (bytes 512..576) must start zeroed for XRSTOR to accept it.
        "xor eax, eax",
        "mov qword ptr [rsp + 512], rax",
        "mov qword ptr [rsp + 520], rax",
        "mov qword ptr [rsp + 528], rax",
        "mov qword ptr [rsp + 536], rax",
        "mov qword ptr [rsp + 544], rax",
        "mov qword ptr [rsp + 552], rax",
        "mov qword ptr [rsp + 560], rax",
        "mov qword ptr [rsp + 568], rax",
        "cmp byte ptr [rip + {xsave}], 0",
        "je 2f",
        "mov eax, -1",
        "mov edx, -1",
        "xsave64 [rsp]",
        "call {switch}",
        "mov eax, -1",
        "mov edx, -1",
        "xrstor64 [rsp]",
        "jmp 3f",
        "2:",
        "fxsave64 [rsp]",
        "call {switch}",
        "fxrstor64 [rsp]",
        "3:",
        "mov rsp, rbx",
        "pop r15",
        "pop r14",
        "pop r13",
        "pop r12",
        "pop r11",
        "pop r10",
        "pop r9",
        "pop r8",
        "pop rbp",
        "pop rdi",
        "pop rsi",
        "pop rdx",
        "pop rcx",
        "pop rbx",
        "pop rax",
        "popfq",
        "ret 128",
        ".cfi_endproc",
        size = sym AREA_SIZE,
        xsave = sym USE_XSAVE,
        switch = sym preempted,
    )
}

/// The preempted coroutine's switch out, called by the trampoline on the coroutine's stack with its TCB
/// in FS. Keeps errno, which the runtime's code may change meanwhile.
///
/// A coroutine with an asynchronous cancellation request unwinds from here instead (before switching out,
/// or when resumed if the request came meanwhile): glibc's forced unwind goes through the trampoline's
/// frame, whose unwind information restores the interrupted code's registers, as a signal frame does.
extern "C" fn preempted() {
    // SAFETY: errno of the calling coroutine.
    let errno = unsafe { *libc::__errno_location() };
    if let Some(task) = worker::current_task() {
        if task.cancel.async_pending() {
            task.cancel.act();
        }
        super::state::count_preemption();
        task.switch_out(Switch::Preempted);
        crate::runtime::park::resumed(&task);
        if task.cancel.async_pending() {
            task.cancel.act();
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}
