//! The preemption signal: sending it, its handler, and the checks that the interrupted code is at a safe
//! point. The handler runs on the worker's alternate signal stack and only reads memory and atomics.

use super::state::{Refusal, count_refusal};
use crate::runtime::{sys, worker};
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// The preemption signal: glibc's SIGCANCEL.
pub const SIGNAL: i32 = sys::signal::SIGCANCEL;
const SI_QUEUE: i32 = -1;
/// Stack the trampoline needs beyond the saved extended state: red zone, return slot, saved registers,
/// alignment, and the switch out (and any signal handler run when the coroutine resumes).
const STACK_RESERVE: usize = 16 << 10;
/// How far up its stack a coroutine is scanned for return addresses into glibc.
const SCAN_LIMIT: usize = 256 << 10;

use sys::signal::KernelSigaction as KernelAction;

/// glibc's action for SIGCANCEL before ours, as plain words (handler, flags, restorer, mask) so that the
/// handler reads it without locks.
static OLD: [AtomicUsize; 4] = [const { AtomicUsize::new(0) }; 4];
/// Tags our signals among SIGCANCELs (si_value).
static COOKIE: AtomicUsize = AtomicUsize::new(0);

/// Code ranges where a coroutine must not be preempted, found once at start-up.
const MAX_RANGES: usize = 32;
static RANGE_START: [AtomicUsize; MAX_RANGES] = [const { AtomicUsize::new(0) }; MAX_RANGES];
static RANGE_END: [AtomicUsize; MAX_RANGES] = [const { AtomicUsize::new(0) }; MAX_RANGES];
static RANGE_KIND: [AtomicU8; MAX_RANGES] = [const { AtomicU8::new(0) }; MAX_RANGES];
static RANGES: AtomicUsize = AtomicUsize::new(0);
const KIND_LIBC: u8 = 1;
const KIND_SHIM: u8 = 2;

fn rt_sigaction(act: Option<&KernelAction>, old: Option<&mut KernelAction>) -> bool {
    sys::signal::rt_sigaction(SIGNAL, act, old).is_ok()
}

fn our_action() -> KernelAction {
    KernelAction {
        handler: on_signal as *const () as usize,
        flags: (libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART) as u64 | sys::signal::SA_RESTORER as u64,
        restorer: sys::signal::restore_rt as *const () as usize,
        mask: 0,
    }
}

/// Installs the handler (keeping glibc's), finds the code ranges. False if the kernel refuses.
pub fn install() -> bool {
    find_ranges();
    super::trampoline::state_size();
    let cookie = (&COOKIE as *const AtomicUsize as usize) ^ (sys::time::monotonic_ns() as usize).rotate_left(17) | 1;
    COOKIE.store(cookie, Ordering::Relaxed);
    take_over()
}

/// Puts our handler in place unless it is there, remembering the one it replaces (glibc installs its
/// cancellation handler lazily, from glibc 2.34 at the first pthread_cancel, replacing ours).
pub fn take_over() -> bool {
    let mut old = KernelAction { handler: 0, flags: 0, restorer: 0, mask: 0 };
    if !rt_sigaction(None, Some(&mut old)) {
        return false;
    }
    let ours = our_action();
    if old.handler == ours.handler {
        return true;
    }
    for (slot, v) in OLD.iter().zip([old.handler, old.flags as usize, old.restorer, old.mask as usize]) {
        slot.store(v, Ordering::Release);
    }
    rt_sigaction(Some(&ours), None)
}

/// Sends the preemption signal to OS thread `tid` of this process.
pub fn send(tid: i32) {
    send_tagged(tid, COOKIE.load(Ordering::Relaxed));
}

/// Sends OS thread `tid` of this process (a helper thread) the request to abort the call it makes in
/// `sys::abortable` (see there): the same signal with the other tag.
pub fn send_abort(tid: i32) {
    if COOKIE.load(Ordering::Relaxed) == 0 {
        // Preemption is off: the handler is installed for aborts only (once; racing callers agree).
        let cookie =
            (&COOKIE as *const AtomicUsize as usize) ^ (sys::time::monotonic_ns() as usize).rotate_left(17) | 1;
        let _ = COOKIE.compare_exchange(0, cookie, Ordering::AcqRel, Ordering::Acquire);
    }
    // glibc (2.34 on) puts its own handler back at its first pthread_cancel of a plain thread.
    take_over();
    send_tagged(tid, COOKIE.load(Ordering::Relaxed) ^ ABORT_TAG);
}

/// The tag of an abort request among our signals (the cookie's bit 1 flipped; the cookie itself is odd).
const ABORT_TAG: usize = 2;

/// Sends OS thread `tid` of this process the signal with `value` in its si_value.
fn send_tagged(tid: i32, value: usize) {
    let pid = sys::getpid();
    let mut info = [0u64; 16];
    // siginfo_t: signo, errno, code (i32 each, then padding), then pid, uid (i32 each) and the value.
    info[0] = SIGNAL as u32 as u64;
    info[1] = SI_QUEUE as u32 as u64;
    // SAFETY: getuid has no preconditions.
    info[2] = pid as u32 as u64 | ((unsafe { libc::getuid() } as u64) << 32);
    info[3] = value as u64;
    // SAFETY: the buffer is a siginfo_t's size and alignment (16 u64), the fields above set as the kernel reads them.
    let info = unsafe { &*(info.as_ptr() as *const libc::siginfo_t) };
    let _ = sys::signal::tgsigqueueinfo(pid, tid, SIGNAL, info);
}

/// The tag of a signal this module sent: Some(false) for a preemption request, Some(true) for an abort
/// request, None for glibc's own SIGCANCEL and anything else.
fn ours(info: *const libc::siginfo_t) -> Option<bool> {
    let words = info as *const u64;
    // SAFETY: the kernel passes a full siginfo (128 bytes).
    let (code, pid_word, value) = unsafe { (*words.add(1) as u32 as i32, *words.add(2), *words.add(3)) };
    let cookie = COOKIE.load(Ordering::Relaxed);
    if code != SI_QUEUE || pid_word as u32 as i32 != sys::getpid() || cookie == 0 {
        return None;
    }
    match value as usize {
        v if v == cookie => Some(false),
        v if v == cookie ^ ABORT_TAG => Some(true),
        _ => None,
    }
}

extern "C" fn on_signal(sig: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    match ours(info) {
        None => {
            forward(sig, info, ctx);
            return;
        }
        Some(true) => {
            // SAFETY: the context the kernel passed, on the thread it interrupted.
            unsafe {
                sys::abortable::abort_in_context(ctx as *mut libc::ucontext_t);
                sys::abortable::abort_foreign_in_context(ctx as *mut libc::ucontext_t);
            }
            return;
        }
        Some(false) => {}
    }
    // A request the worker's coroutine already left behind (or a forked child's copy): nothing to do.
    let Some(w) = worker::current_worker() else { return };
    let asked = w.preempt.requested.swap(0, Ordering::AcqRel);
    if asked == 0 {
        return;
    }
    let uc = ctx as *mut libc::ucontext_t;
    // SAFETY: the kernel passes the interrupted context; the checks only read memory they prove is mapped.
    let verdict = unsafe { check(w, asked, uc) };
    match verdict {
        // SAFETY: `check` proved the interrupted code runs on its coroutine's stack with room below.
        Ok(()) => unsafe { redirect(uc) },
        Err(why) => count_refusal(&w.preempt, why),
    }
}

/// A SIGCANCEL not ours: glibc's handler as glibc installed it, or the default action (termination).
fn forward(sig: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let handler = OLD[0].load(Ordering::Acquire);
    let flags = OLD[1].load(Ordering::Acquire) as i32;
    match handler {
        libc::SIG_IGN => {}
        libc::SIG_DFL => {
            let dfl = KernelAction { handler: libc::SIG_DFL, flags: 0, restorer: 0, mask: 0 };
            rt_sigaction(Some(&dfl), None);
            // Re-sent to ourselves; it is blocked until this handler returns.
            let _ = sys::signal::kill(sys::getpid(), sig);
        }
        // SAFETY: the function glibc installed for this signal, called as its flags say.
        h => unsafe { crate::runtime::signals::handlers::call_handler(h, flags, sig, info, ctx) },
    }
}

/// Whether the coroutine worker `w` was running when the signal arrived may be preempted there.
///
/// # Safety
/// `uc` is the context the kernel passed to the handler.
unsafe fn check(w: &worker::Worker, asked: u64, uc: *const libc::ucontext_t) -> Result<(), Refusal> {
    // SAFETY: per the contract.
    let gregs = unsafe { &(*uc).uc_mcontext.gregs };
    let pc = gregs[libc::REG_RIP as usize] as usize;
    let sp = gregs[libc::REG_RSP as usize] as usize;
    if w.switches.load(Ordering::Relaxed) as u64 + 1 != asked {
        return Err(Refusal::Moved);
    }
    let task = w.task_in_context().ok_or(Refusal::Moved)?;
    if w.preempt.exec_in_progress.load(Ordering::Acquire) == asked {
        return Err(Refusal::Exec);
    }
    match range_kind(pc) {
        KIND_LIBC => return Err(Refusal::InLibc),
        KIND_SHIM => return Err(Refusal::InRuntime),
        _ => {}
    }
    let b = task.stack_bounds();
    let top = b.low + b.size;
    if b.low == 0 || sp < b.low || sp > top {
        return Err(Refusal::OtherStack);
    }
    if w.in_program_handler(sp) {
        return Err(Refusal::InHandler);
    }
    if sp - b.low < super::trampoline::state_size() + STACK_RESERVE {
        return Err(Refusal::StackFull);
    }
    if task.preempt.file_locks.load(Ordering::Relaxed) != 0 {
        return Err(Refusal::FileLock);
    }
    // SAFETY: [sp, top) is the live part of the coroutine's stack, mapped.
    if unsafe { called_from_libc(sp, top.min(sp + SCAN_LIMIT)) } {
        return Err(Refusal::LibcCallback);
    }
    Ok(())
}

/// Makes the interrupted code continue in the trampoline: the interrupted instruction's address goes on
/// the stack below the red zone (the 128 bytes under the stack pointer that leaf code may use), where the
/// trampoline's final `ret 128` takes it from and steps back over the red zone.
///
/// # Safety
/// `uc` is the handler's context; its stack pointer is on a coroutine stack with room (see `check`).
unsafe fn redirect(uc: *mut libc::ucontext_t) {
    // SAFETY: per the contract.
    unsafe {
        let gregs = &mut (*uc).uc_mcontext.gregs;
        let sp = gregs[libc::REG_RSP as usize] as usize;
        let slot = sp - 128 - 8;
        *(slot as *mut usize) = gregs[libc::REG_RIP as usize] as usize;
        gregs[libc::REG_RSP as usize] = slot as i64;
        gregs[libc::REG_RIP as usize] = super::trampoline::entry() as i64;
    }
}

fn range_kind(pc: usize) -> u8 {
    let n = RANGES.load(Ordering::Acquire);
    (0..n)
        .find(|&i| pc >= RANGE_START[i].load(Ordering::Relaxed) && pc < RANGE_END[i].load(Ordering::Relaxed))
        .map_or(0, |i| RANGE_KIND[i].load(Ordering::Relaxed))
}

/// True when a word on the stack between `from` and `to` is a return address into glibc or the loader:
/// the coroutine runs in a callback they made, perhaps under one of their locks.
///
/// # Safety
/// `[from, to)` must be mapped.
unsafe fn called_from_libc(from: usize, to: usize) -> bool {
    let mut at = from & !7;
    while at + 8 <= to {
        // SAFETY: per the contract.
        let v = unsafe { core::ptr::read_volatile(at as *const usize) };
        if range_kind(v) == KIND_LIBC && after_call(v) {
            return true;
        }
        at += 8;
    }
    false
}

/// True when the bytes before `addr` (inside a glibc text range) encode a call (e8 rel32, or ff /2).
fn after_call(addr: usize) -> bool {
    if range_kind(addr - 8) != KIND_LIBC {
        return false;
    }
    // SAFETY: the 8 bytes before addr lie in the same mapped text range (checked above for addr - 8).
    let bytes = unsafe { core::ptr::read_unaligned((addr - 8) as *const [u8; 8]) };
    bytes[3] == 0xe8
        || (2..=7).any(|len| {
            let i = 8 - len;
            bytes[i] == 0xff && (bytes[i + 1] >> 3) & 7 == 2
        })
}

/// Records the executable segments of glibc's libraries, the dynamic loader and this library.
fn find_ranges() {
    // SAFETY: the callback only reads the headers dl_iterate_phdr passes.
    unsafe { libc::dl_iterate_phdr(Some(each_object), core::ptr::null_mut()) };
}

unsafe extern "C" fn each_object(info: *mut libc::dl_phdr_info, _: usize, _: *mut libc::c_void) -> i32 {
    // SAFETY: dl_iterate_phdr passes a valid info whose name and headers live during the call.
    let info = unsafe { &*info };
    let name = if info.dlpi_name.is_null() {
        &[][..]
    } else {
        // SAFETY: as above.
        unsafe { std::ffi::CStr::from_ptr(info.dlpi_name) }.to_bytes()
    };
    let base = name.rsplit(|&b| b == b'/').next().unwrap_or(name);
    let glibc = [&b"libc.so"[..], b"libc-", b"ld-linux", b"ld-2.", b"libpthread", b"libdl.", b"libdl-", b"librt."]
        .iter()
        .any(|p| base.starts_with(p));
    let here = each_object as *const () as usize;
    let mut segments = [(0usize, 0usize); 8];
    let mut n = 0;
    let mut is_shim = false;
    for i in 0..info.dlpi_phnum as usize {
        // SAFETY: dlpi_phdr has dlpi_phnum entries.
        let ph = unsafe { &*info.dlpi_phdr.add(i) };
        if ph.p_type != libc::PT_LOAD || ph.p_flags & libc::PF_X == 0 || n == segments.len() {
            continue;
        }
        let start = info.dlpi_addr as usize + ph.p_vaddr as usize;
        let end = start + ph.p_memsz as usize;
        is_shim |= (start..end).contains(&here);
        segments[n] = (start, end);
        n += 1;
    }
    let kind = if is_shim {
        KIND_SHIM
    } else if glibc {
        KIND_LIBC
    } else {
        return 0;
    };
    for &(start, end) in &segments[..n] {
        let i = RANGES.load(Ordering::Relaxed);
        if i == MAX_RANGES {
            break;
        }
        RANGE_START[i].store(start, Ordering::Relaxed);
        RANGE_END[i].store(end, Ordering::Relaxed);
        RANGE_KIND[i].store(kind, Ordering::Relaxed);
        RANGES.store(i + 1, Ordering::Release);
    }
    0
}
