//! Per-coroutine glibc thread identity: each coroutine owns a glibc TCB (`struct pthread`) with static TLS,
//! and the worker loads it into the FS base while the coroutine runs. errno, `__thread` data,
//! `pthread_self()`, pthread keys, C++ `thread_local` and the stack protector are then the coroutine's own,
//! whichever worker runs it. See `shared/notes/thread-identity.md` for the measured facts behind each step.
//!
//! The layout constants are glibc 2.36 x86-64 (Debian 12); [`init`] checks them against the `_thread_db_*`
//! descriptors libc exports for debuggers and against libc's TLS symbols, and refuses to run otherwise.

use super::sys::{self, fsgs};
use std::alloc::{GlobalAlloc, Layout as AllocLayout, System};
use std::ffi::{CStr, c_void};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicIsize, Ordering};

// struct pthread (nptl/descr.h), glibc 2.36 x86-64.
const HDR_TCB: usize = 0x00;
const HDR_SELF: usize = 0x10;
const HDR_MULTIPLE_THREADS: usize = 0x18;
const HDR_STACK_GUARD: usize = 0x28;
const HDR_POINTER_GUARD: usize = 0x30;
const PD_LIST: usize = 704;
const PD_TID: usize = 720;
const PD_ROBUST_HEAD: usize = 736;
const PD_CLEANUP_JMP_BUF: usize = 768;
const PD_CANCELHANDLING: usize = 776;
const PD_SPECIFIC_1STBLOCK: usize = 784;
const PD_SPECIFIC: usize = 1296;
const PD_SPECIFIC_USED: usize = 1552;
const PD_USER_STACK: usize = 1554;
const PD_JOINID: usize = 1568;
const PD_RESULT: usize = 1576;
const PD_STACKBLOCK: usize = 1680;
const PD_STACKBLOCK_SIZE: usize = 1688;
const PD_RES: usize = 1720;
const PD_RES_SIZE: usize = 568;
const PD_RSEQ_CPU_ID: usize = 2340;
const SIZEOF_PTHREAD: usize = 2368;

const KEY_2NDLEVEL: usize = 32;
const KEY_1STLEVEL: usize = 32;
const KEYS_MAX: usize = 1024;
const DESTRUCTOR_ITERATIONS: usize = 4;
/// rseq cpu_id meaning "registration failed": glibc's sched_getcpu then asks the kernel.
const RSEQ_CPU_ID_REGISTRATION_FAILED: u32 = (-2i32) as u32;

// libc.so.6's own TLS block (0x90 bytes in 2.36): the words malloc owns are kept when a TCB is recycled,
// so the thread cache and arena of the previous owner are reused instead of leaked
// (`__libc_thread_freeres`, which would free them, is not exported).
const LIBC_TLS_SIZE: usize = 0x90;
const LIBC_TLS_RESP: usize = 0x08;
const LIBC_TLS_ERRNO: usize = 0x10;
const LIBC_TLS_DLERROR: usize = 0x40;
const LIBC_TLS_H_ERRNO: usize = 0x74;
const LIBC_TLS_TCACHE: usize = 0x48;
const LIBC_TLS_TCACHE_SHUTTING_DOWN: usize = 0x50;
const LIBC_TLS_MALLOC_WORDS: [usize; 3] =
    [LIBC_TLS_TCACHE, LIBC_TLS_TCACHE_SHUTTING_DOWN, 0x58 /* thread_arena */];
/// malloc's per-thread cache (2.36): `uint16_t counts[64]` then `tcache_entry *entries[64]`; each entry's
/// `next` is mangled with its own address >> 12 (safe-linking) and followed by a `key` word.
const TCACHE_BINS: usize = 64;

unsafe extern "C" {
    fn _dl_get_tls_static_info(size: *mut usize, align: *mut usize);
    fn _dl_deallocate_tls(tcb: *mut c_void, dealloc_tcb: bool);
    fn _dl_allocate_tls(mem: *mut c_void) -> *mut c_void;
    fn _dl_allocate_tls_init(tcb: *mut c_void, init_tls: bool) -> *mut c_void;
    fn __ctype_init();
    fn __call_tls_dtors();
    static __pthread_keys: [PthreadKeyStruct; KEYS_MAX];
}

#[repr(C)]
struct PthreadKeyStruct {
    seq: usize,
    destr: Option<unsafe extern "C" fn(*mut c_void)>,
}

#[repr(C)]
struct PthreadKeyData {
    seq: usize,
    data: *mut c_void,
}

/// What [`init`] learned about this process's glibc.
struct Layout {
    /// Offset of libc's TLS block from the thread pointer (negative: TLS lies below the TCB).
    libc_tls: isize,
    /// Static TLS size including struct pthread, and its alignment (ld.so's figures).
    static_size: usize,
    static_align: usize,
}

static LAYOUT: OnceLock<Layout> = OnceLock::new();

/// A coroutine's glibc thread descriptor; its address is the program's `pthread_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tcb(pub usize);

impl Tcb {
    #[inline]
    fn field<T>(self, off: usize) -> *mut T {
        (self.0 + off) as *mut T
    }

    /// The TCB the calling code runs with.
    #[inline]
    pub fn current() -> Tcb {
        Tcb(fsgs::fs_base())
    }

    /// The thread's tid as glibc records it (a stable fake one for coroutines).
    #[inline]
    pub fn tid(self) -> i32 {
        // SAFETY: the TCB is live and the field is an aligned int.
        unsafe { self.field::<i32>(PD_TID).read() }
    }

    pub fn set_tid(self, tid: i32) {
        // SAFETY: the TCB is owned by the runtime and the field is an aligned int.
        unsafe { self.field::<i32>(PD_TID).write(tid) }
    }

    /// Records the stack so glibc's alloca cutoff (stack size / 4) and unwinder bounds see it.
    pub fn set_stack(self, low: usize, size: usize) {
        // SAFETY: aligned pointer-sized fields of a runtime-owned TCB.
        unsafe {
            self.field::<usize>(PD_STACKBLOCK).write(low);
            self.field::<usize>(PD_STACKBLOCK_SIZE).write(size);
        }
    }

    /// Marks the descriptor detached or joinable the way glibc does (`joinid == self` means detached), for
    /// glibc code that looks at it.
    pub fn set_detached(self, detached: bool) {
        let v = if detached { self.0 } else { 0 };
        // SAFETY: aligned pointer field of a runtime-owned TCB.
        unsafe { self.field::<usize>(PD_JOINID).write(v) }
    }

    /// The value glibc's own `pthread_exit` stored (read after a cancellation-style unwind reached the
    /// coroutine's entry frame).
    pub fn result(self) -> *mut c_void {
        // SAFETY: aligned pointer field.
        unsafe { self.field::<*mut c_void>(PD_RESULT).read() }
    }

    /// Address of the `cleanup_jmp_buf` slot, which the entry trampoline points at its outermost unwind
    /// buffer so glibc's `pthread_exit` unwinds to it, running cleanup handlers and C++ destructors.
    pub fn cleanup_jmp_buf_slot(self) -> *mut *mut c_void {
        self.field(PD_CLEANUP_JMP_BUF)
    }
}

/// The calling thread's tid field, read FS-relative in one instruction (whichever way FS was set).
#[inline(always)]
pub fn current_tid() -> i32 {
    let tid: i32;
    // SAFETY: FS always holds a valid TCB (glibc's or one of ours); PD_TID is inside struct pthread.
    unsafe {
        core::arch::asm!("mov {0:e}, fs:[{1}]", out(reg) tid, const PD_TID, options(nostack, readonly, preserves_flags))
    };
    tid
}

fn thread_db_offset(sym: &CStr) -> Option<u32> {
    // SAFETY: dlsym with a valid name; a descriptor is three u32 (bits, count, offset).
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, sym.as_ptr()) } as *const u32;
    if p.is_null() { None } else { Some(unsafe { *p.add(2) }) }
}

fn tls_symbol_offset(sym: &CStr, fs: usize) -> Option<isize> {
    // SAFETY: dlsym of a TLS symbol returns its address in the calling thread.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, sym.as_ptr()) };
    if p.is_null() { None } else { Some(p as isize - fs as isize) }
}

/// Checks that this glibc has the layout the constants describe. Called once, on the initial thread, with
/// its own TCB in FS. Returns a reason when the shim must stay in pass-through mode.
pub fn init() -> Result<(), String> {
    // SAFETY: gnu_get_libc_version returns a static string.
    let version = unsafe { CStr::from_ptr(libc::gnu_get_libc_version()) }.to_string_lossy().into_owned();
    let checks: [(&CStr, u32); 4] = [
        (c"_thread_db_pthread_tid", PD_TID as u32),
        (c"_thread_db_pthread_specific", PD_SPECIFIC as u32),
        (c"_thread_db_pthread_cancelhandling", PD_CANCELHANDLING as u32),
        (c"_thread_db_pthread_start_routine", 1592),
    ];
    for (sym, want) in checks {
        if thread_db_offset(sym) != Some(want) {
            return Err(format!("glibc {version}: struct pthread layout differs from 2.36 ({sym:?})"));
        }
    }
    // SAFETY: a single u32.
    let size = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"_thread_db_sizeof_pthread".as_ptr()) } as *const u32;
    if size.is_null() || unsafe { *size } != SIZEOF_PTHREAD as u32 {
        return Err(format!("glibc {version}: sizeof(struct pthread) differs from 2.36"));
    }
    let fs = fsgs::fs_base();
    // SAFETY: __errno_location has no preconditions.
    let errno_off = unsafe { libc::__errno_location() } as isize - fs as isize;
    let libc_tls = errno_off - LIBC_TLS_ERRNO as isize;
    let tls_ok = tls_symbol_offset(c"__resp", fs) == Some(libc_tls + LIBC_TLS_RESP as isize)
        && tls_symbol_offset(c"__h_errno", fs) == Some(libc_tls + LIBC_TLS_H_ERRNO as isize)
        && tls_symbol_offset(c"__libc_dlerror_result", fs) == Some(libc_tls + LIBC_TLS_DLERROR as isize)
        && libc_tls + (LIBC_TLS_SIZE as isize) <= 0;
    if !tls_ok {
        return Err(format!("glibc {version}: libc's TLS layout differs from Debian 12's 2.36"));
    }
    let (mut static_size, mut static_align) = (0usize, 0usize);
    // SAFETY: two valid out-pointers.
    unsafe { _dl_get_tls_static_info(&mut static_size, &mut static_align) };
    let _ = LAYOUT.set(Layout { libc_tls, static_size, static_align: static_align.max(64) });
    LIBC_TLS_FOR_ALLOC.store(libc_tls, Ordering::Release);
    Ok(())
}

/// libc's TLS block offset from the thread pointer once [`init`] checked it (0 before: no layout known).
static LIBC_TLS_FOR_ALLOC: AtomicIsize = AtomicIsize::new(0);

/// The runtime's own heap (the library's `#[global_allocator]`): glibc's malloc, except that an allocation
/// or free the runtime makes while a coroutine runs that has no malloc thread cache yet does not give it
/// one. glibc creates a thread's cache (0x290 bytes, kept for the thread's life) at its first malloc or
/// free; a thread that never allocates natively never has one, and the runtime's own bookkeeping on its
/// behalf (a parking-lot queue growing while it parks in read(), say) must not add one. The coroutine's
/// cache still appears, as natively, at the program's own first malloc in it.
pub struct RuntimeAlloc;

/// Runs `f` (a malloc-family call) with glibc's thread-cache creation held off if the calling context is
/// a coroutine without a cache: `tcache_shutting_down` makes glibc's `tcache_init` do nothing, and the
/// call uses the arenas directly.
#[inline(always)]
fn without_new_tcache<R>(f: impl FnOnce() -> R) -> R {
    let libc_tls = LIBC_TLS_FOR_ALLOC.load(Ordering::Relaxed);
    if libc_tls == 0 {
        return f();
    }
    let tcache_off = libc_tls + LIBC_TLS_TCACHE as isize;
    let tcache: usize;
    // SAFETY: FS holds a glibc-layout TCB on every thread (init checked the layout); the word is libc's
    // `tcache` pointer in the calling thread's static TLS.
    unsafe {
        core::arch::asm!("mov {0}, qword ptr fs:[{1}]", out(reg) tcache, in(reg) tcache_off,
            options(nostack, readonly, preserves_flags))
    };
    if tcache != 0 || !super::thread::is_coroutine_tid(current_tid()) {
        return f();
    }
    let flag = (fsgs::thread_self() as isize + libc_tls + LIBC_TLS_TCACHE_SHUTTING_DOWN as isize) as *mut u8;
    // SAFETY: the flag is libc's `tcache_shutting_down` byte in the running coroutine's own static TLS;
    // nothing switches coroutines inside a malloc call, so the same coroutine's byte is restored.
    unsafe {
        let was = flag.read();
        flag.write(1);
        let r = f();
        flag.write(was);
        r
    }
}

// SAFETY: every method forwards to the system allocator with the caller's layout; only glibc's
// per-thread cache creation is held off around the call (see without_new_tcache).
unsafe impl GlobalAlloc for RuntimeAlloc {
    unsafe fn alloc(&self, layout: AllocLayout) -> *mut u8 {
        // SAFETY: the caller's contract is System's.
        without_new_tcache(|| unsafe { System.alloc(layout) })
    }
    unsafe fn alloc_zeroed(&self, layout: AllocLayout) -> *mut u8 {
        // SAFETY: as above.
        without_new_tcache(|| unsafe { System.alloc_zeroed(layout) })
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: AllocLayout) {
        // SAFETY: as above; ptr came from this allocator, that is from System.
        without_new_tcache(|| unsafe { System.dealloc(ptr, layout) })
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: AllocLayout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        without_new_tcache(|| unsafe { System.realloc(ptr, layout, new_size) })
    }
}

fn layout() -> &'static Layout {
    LAYOUT.get().expect("identity::init ran")
}

/// Bytes a stack slot reserves at its top for a TCB and its static TLS, as glibc does with thread stacks.
pub fn tls_reserve() -> usize {
    let l = layout();
    (l.static_size + l.static_align + 64 + 4095) & !4095
}

/// Where the TCB goes in a slot whose memory ends at `top`, and the highest stack address below its TLS.
pub fn tcb_and_stack_top(top: usize) -> (Tcb, usize) {
    let l = layout();
    let tcb = (top - SIZEOF_PTHREAD - 64) & !(l.static_align - 1);
    (Tcb(tcb), (tcb - (l.static_size - SIZEOF_PTHREAD)) & !63)
}

/// Prepares a TCB at `tcb` inside zeroed memory the caller owns (the top of a stack slot), with its static
/// TLS below it; only the DTV is allocated.
pub fn allocate_in(tcb: Tcb, tid: i32) -> Option<Tcb> {
    // SAFETY: [tcb - static TLS, tcb + struct pthread) lies in zeroed memory owned by the caller.
    let p = unsafe { _dl_allocate_tls(tcb.0 as *mut c_void) };
    if p.is_null() {
        return None;
    }
    init_header(tcb, tid);
    Some(tcb)
}

/// Allocates and prepares a fresh TCB with the given (fake, stable) tid. Run from any context: it copies
/// the stack-protector and pointer guards from the calling TCB, which are the same process-wide.
pub fn allocate(tid: i32) -> Option<Tcb> {
    // SAFETY: ld.so's allocator returns a zeroed struct pthread with a DTV and initialised static TLS.
    let p = unsafe { _dl_allocate_tls(core::ptr::null_mut()) };
    if p.is_null() {
        return None;
    }
    let tcb = Tcb(p as usize);
    init_header(tcb, tid);
    Some(tcb)
}

/// A coroutine thread ended holding robust mutexes: do what the kernel does for an OS thread that exits
/// (handle_futex_death over its robust list, which the kernel never sees for a coroutine): each futex word
/// still owned by `tid` gets FUTEX_OWNER_DIED, keeps its waiters bit, and one waiter is woken (glibc's
/// robust mutexes always wait with shared futex operations), so the next locker gets EOWNERDEAD.
pub fn release_robust_mutexes(tcb: Tcb, tid: i32) {
    const FUTEX_WAITERS: u32 = 0x8000_0000;
    const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
    const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
    const LIMIT: usize = 2048; // the kernel's ROBUST_LIST_LIMIT
    let head = tcb.0 + PD_ROBUST_HEAD;
    // SAFETY: the TCB is live (its thread just ended on this worker); the list entries are the program's
    // mutexes, read and written with fault-safe copies as the kernel would.
    let futex_offset = unsafe { tcb.field::<isize>(PD_ROBUST_HEAD + 8).read() };
    let pending = unsafe { tcb.field::<usize>(PD_ROBUST_HEAD + 16).read() };
    let release = |entry: usize| {
        let word = entry.wrapping_add_signed(futex_offset) as *mut u32;
        // SAFETY: an aligned u32 inside a live mutex (checked by the fault-safe read).
        let Ok(mut cur) = super::sys::usercopy::read(word as *const u32) else { return };
        loop {
            if cur & FUTEX_TID_MASK != tid as u32 {
                return;
            }
            let new = (cur & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
            // SAFETY: the word is the mutex's futex, alive (read just above).
            let atom = unsafe { &*(word as *const core::sync::atomic::AtomicU32) };
            match atom.compare_exchange(
                cur,
                new,
                core::sync::atomic::Ordering::AcqRel,
                core::sync::atomic::Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        if cur & FUTEX_WAITERS != 0 {
            // SAFETY: FUTEX_WAKE only uses the address as a key.
            let _ = unsafe {
                super::sys::syscall::syscall4(libc::SYS_futex, word as usize, libc::FUTEX_WAKE as usize, 1, 0)
            };
        }
    };
    // SAFETY: reading list links that glibc maintains in the TCB and in the mutexes.
    let mut entry = unsafe { (head as *const usize).read() };
    let mut n = 0;
    while entry != head && entry != 0 && n < LIMIT {
        let next = super::sys::usercopy::read(entry as *const usize).unwrap_or(head);
        if entry != pending {
            release(entry & !1);
        }
        entry = next & !1;
        n += 1;
    }
    if pending != 0 {
        release(pending & !1);
    }
    // Robust mutexes (not PI) it held through the shared keeper are on that keeper's list instead (PI ones
    // are its own keeper's: see `proxy::holder_ended`).
    super::sync::proxy::release_held_by(tid);
    // The list is the dead thread's; a recycled descriptor starts empty.
    // SAFETY: writing the TCB's own list head.
    unsafe {
        (head as *mut usize).write(head);
        tcb.field::<usize>(PD_ROBUST_HEAD + 16).write(0);
    }
}

/// Puts a robust mutex the calling thread holds on its own robust list, as glibc's ENQUEUE_MUTEX_BOTH
/// does: `entry` is the mutex's `__list.__next`, its `__prev` the word before; the list is doubly linked
/// through those, the word before the head (`robust_prev`) serving as the head's `__prev`. `pi` marks
/// the entry (bit 0) as a PI futex.
pub fn robust_enqueue(entry: usize, pi: bool) {
    let head = Tcb::current().0 + PD_ROBUST_HEAD;
    // SAFETY: the head and the first entry's node are live (the calling thread's TCB and a mutex it holds);
    // the new entry is a mutex the caller holds.
    unsafe {
        let first = (head as *const usize).read();
        ((first & !1) as *mut usize).sub(1).write(entry);
        (entry as *mut usize).write(first);
        (entry as *mut usize).sub(1).write(head);
        core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
        (head as *mut usize).write(entry | pi as usize);
    }
}

/// Takes a robust mutex the calling thread holds off its own robust list (glibc's DEQUEUE_MUTEX).
pub fn robust_dequeue(entry: usize) {
    // SAFETY: `entry` is on the calling thread's list (it holds the mutex); its neighbours are the head or
    // mutexes the thread holds.
    unsafe {
        let next = (entry as *const usize).read();
        let prev = (entry as *const usize).sub(1).read();
        ((next & !1) as *mut usize).sub(1).write(prev);
        ((prev & !1) as *mut usize).write(next);
        core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
        (entry as *mut usize).sub(1).write(0);
        (entry as *mut usize).write(0);
    }
}

/// Registers the calling thread's glibc robust list with the kernel: in a forked child, whose only thread
/// goes on with the forking coroutine's descriptor, so that the kernel releases that descriptor's robust
/// mutexes (process-shared ones included) when the child dies, as it does natively.
pub fn register_robust_list_here() {
    let head = robust_head_here();
    // SAFETY: the head lives in the calling thread's TCB for as long as the thread.
    let _ = unsafe { super::sys::syscall::syscall2(libc::SYS_set_robust_list, head, 24) };
}

/// The address of the calling thread's robust-list head (glibc's, in its descriptor).
pub fn robust_head_here() -> usize {
    Tcb::current().0 + PD_ROBUST_HEAD
}

/// Fills in what glibc's pthread_create would in a new descriptor.
fn init_header(tcb: Tcb, tid: i32) {
    let cur = Tcb::current();
    // SAFETY: both TCBs are live; all fields are aligned and inside SIZEOF_PTHREAD.
    unsafe {
        tcb.field::<usize>(HDR_TCB).write(tcb.0);
        tcb.field::<usize>(HDR_SELF).write(tcb.0);
        tcb.field::<i32>(HDR_MULTIPLE_THREADS).write(1);
        tcb.field::<usize>(HDR_STACK_GUARD).write(cur.field::<usize>(HDR_STACK_GUARD).read());
        tcb.field::<usize>(HDR_POINTER_GUARD).write(cur.field::<usize>(HDR_POINTER_GUARD).read());
        // The robust list is empty: its head points at itself; futex_offset is the same for every thread.
        let robust = tcb.field::<usize>(PD_ROBUST_HEAD);
        robust.write(robust as usize);
        tcb.field::<isize>(PD_ROBUST_HEAD + 8).write(cur.field::<isize>(PD_ROBUST_HEAD + 8).read());
        tcb.field::<usize>(PD_SPECIFIC).write(tcb.0 + PD_SPECIFIC_1STBLOCK);
        // fork() unlinks the forking thread's descriptor from glibc's thread list in the child: make it a
        // valid one-element list, and mark its stack as not glibc's to free.
        let list = tcb.field::<usize>(PD_LIST);
        list.write(list as usize);
        list.add(1).write(list as usize);
        tcb.field::<bool>(PD_USER_STACK).write(true);
        tcb.field::<u32>(PD_RSEQ_CPU_ID).write(RSEQ_CPU_ID_REGISTRATION_FAILED);
    }
    tcb.set_tid(tid);
}

/// Makes a TCB whose thread has ended ready for a new thread: fresh TLS images for every module except the
/// words malloc owns in libc's block, empty key data, no leftovers of the previous owner.
/// Runs on the worker's own context (FS is not `tcb`).
pub fn recycle(tcb: Tcb, tid: i32) {
    let libc_block = (tcb.0 as isize + layout().libc_tls) as usize;
    let mut kept = [0usize; LIBC_TLS_MALLOC_WORDS.len()];
    // SAFETY: the TCB belongs to a finished thread; its DTV and TLS blocks are ld.so's layout.
    unsafe {
        for (slot, off) in kept.iter_mut().zip(LIBC_TLS_MALLOC_WORDS) {
            *slot = ((libc_block + off) as *const usize).read();
        }
        free_dynamic_tls(tcb);
        _dl_allocate_tls_init(tcb.0 as *mut c_void, true);
        for (val, off) in kept.iter().zip(LIBC_TLS_MALLOC_WORDS) {
            ((libc_block + off) as *mut usize).write(*val);
        }
        core::ptr::write_bytes(tcb.field::<u8>(PD_SPECIFIC_1STBLOCK), 0, PD_SPECIFIC - PD_SPECIFIC_1STBLOCK);
        core::ptr::write_bytes(tcb.field::<u8>(PD_RES), 0, PD_RES_SIZE);
        tcb.field::<i32>(PD_CANCELHANDLING).write(0);
        tcb.field::<usize>(PD_CLEANUP_JMP_BUF).write(0);
        tcb.field::<usize>(PD_RESULT).write(0);
        tcb.field::<u32>(PD_RSEQ_CPU_ID).write(RSEQ_CPU_ID_REGISTRATION_FAILED);
    }
    tcb.set_tid(tid);
}

/// Returns an ended thread's malloc cache to the arenas, as glibc's (unexported) tcache_thread_shutdown
/// does at thread exit; its pointer is cleared first, so the chunks go to whoever frees them.
fn release_malloc_cache(tcb: Tcb) {
    let libc_block = (tcb.0 as isize + layout().libc_tls) as usize;
    // SAFETY (block): the words are this thread's tcache pointer and shutting-down flag; with the pointer
    // cleared first, free() sends each chunk straight to its arena. A link that is not 16-byte aligned means
    // the layout is not what we expect: stop and leak rather than free garbage.
    unsafe {
        let slot = (libc_block + LIBC_TLS_TCACHE) as *mut usize;
        let tc = slot.read();
        if tc == 0 {
            return;
        }
        slot.write(0);
        ((libc_block + LIBC_TLS_TCACHE_SHUTTING_DOWN) as *mut u8).write(1);
        let entries = (tc + TCACHE_BINS * 2) as *mut usize;
        for i in 0..TCACHE_BINS {
            let mut e = entries.add(i).read();
            while e != 0 {
                if e % 16 != 0 {
                    return;
                }
                let next = (e as *const usize).read() ^ (e >> 12);
                ((e + 8) as *mut usize).write(0);
                libc::free(e as *mut c_void);
                e = next;
            }
        }
        libc::free(tc as *mut c_void);
    }
}

/// Frees what an ended thread's TCB holds: its malloc cache, DTV and dynamic TLS, and with `owned` the
/// descriptor itself (one from [`allocate`]; one from [`allocate_in`] lives in its slot).
pub fn destroy(tcb: Tcb, owned: bool) {
    release_malloc_cache(tcb);
    // SAFETY: the thread has ended and no code runs with this TCB; ld.so allocated what is freed.
    unsafe { _dl_deallocate_tls(tcb.0 as *mut c_void, owned) };
}

/// Frees TLS blocks of dlopen()ed modules that `__tls_get_addr` allocated for this thread; re-initialising
/// the DTV would otherwise leak them.
unsafe fn free_dynamic_tls(tcb: Tcb) {
    // SAFETY (whole fn): header.dtv points at dtv[0]; dtv[-1].counter is the number of module slots;
    // each slot is {val, to_free}, and to_free is the malloc'ed block or NULL for static TLS.
    unsafe {
        let dtv = tcb.field::<*mut [usize; 2]>(8).read();
        let len = (*dtv.offset(-1))[0];
        for i in 1..=len {
            let slot = dtv.add(i);
            let to_free = (*slot)[1];
            if to_free != 0 {
                libc::free(to_free as *mut c_void);
                (*slot)[0] = usize::MAX; // TLS_DTV_UNALLOCATED
                (*slot)[1] = 0;
            }
        }
    }
}

/// Per-thread libc state a new thread starts with. Runs on the coroutine itself (FS = its TCB), first thing.
pub fn on_thread_start() {
    let tcb = Tcb::current();
    let libc_block = (tcb.0 as isize + layout().libc_tls) as usize;
    // SAFETY: FS is this coroutine's TCB; __resp must point at the thread's own resolver state, as glibc's
    // start_thread sets it, and the ctype tables must be initialised or isalpha() crashes.
    unsafe {
        ((libc_block + LIBC_TLS_RESP) as *mut usize).write(tcb.0 + PD_RES);
        __ctype_init();
        *libc::__errno_location() = 0;
    }
}

/// Runs what glibc runs when a thread ends, on the coroutine itself (FS = its TCB): C++ `thread_local` and
/// `__cxa_thread_atexit` destructors, then pthread key destructors (up to PTHREAD_DESTRUCTOR_ITERATIONS
/// rounds), then frees the key data blocks.
pub fn on_thread_exit() {
    // SAFETY: FS is the exiting coroutine's TCB, as glibc requires for both.
    unsafe {
        __call_tls_dtors();
        run_key_destructors(Tcb::current());
    }
}

unsafe fn run_key_destructors(tcb: Tcb) {
    // SAFETY (whole fn): specific[] holds KEY_1STLEVEL pointers to arrays of KEY_2NDLEVEL key data, as in
    // glibc's __nptl_deallocate_tsd, which this mirrors; __pthread_keys is libc's key table.
    unsafe {
        let used = tcb.field::<bool>(PD_SPECIFIC_USED);
        let level1 = tcb.field::<*mut PthreadKeyData>(PD_SPECIFIC);
        if used.read() {
            let mut round = 0;
            loop {
                used.write(false);
                for i in 0..KEY_1STLEVEL {
                    let level2 = level1.add(i).read();
                    if level2.is_null() {
                        continue;
                    }
                    for j in 0..KEY_2NDLEVEL {
                        let idx = i * KEY_2NDLEVEL + j;
                        let slot = &mut *level2.add(j);
                        let data = slot.data;
                        if data.is_null() {
                            continue;
                        }
                        slot.data = core::ptr::null_mut();
                        let key = &__pthread_keys[idx];
                        if slot.seq == key.seq
                            && let Some(d) = key.destr
                        {
                            d(data);
                        }
                    }
                }
                round += 1;
                if !used.read() || round >= DESTRUCTOR_ITERATIONS {
                    break;
                }
            }
        }
        for i in 1..KEY_1STLEVEL {
            let level2 = level1.add(i).read();
            if !level2.is_null() {
                libc::free(level2 as *mut c_void);
                level1.add(i).write(core::ptr::null_mut());
            }
        }
        used.write(false);
    }
}

/// Writes a diagnostic naming why the runtime is off; kept here so every refusal reads the same.
pub fn refuse(reason: &str) {
    sys::write_stderr(format!("asyncshim: {reason}; running without coroutines (pass-through)\n").as_bytes());
}
