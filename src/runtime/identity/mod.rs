//! Per-coroutine glibc thread identity: each coroutine owns a glibc TCB (`struct pthread`) with static TLS,
//! and the worker loads it into the thread pointer while the coroutine runs. errno, `__thread` data,
//! `pthread_self()`, pthread keys, C++ `thread_local` and the stack protector are then the coroutine's own,
//! whichever worker runs it. See `shared/notes/thread-identity.md` for the measured facts behind each step.
//!
//! This module knows glibc and nothing above it. Where glibc keeps things differs between releases
//! (2.31 to 2.43 moved joinid, the rseq area, libc's TLS words, malloc's cache, `__wrefs`...), so nothing is
//! assumed: [`init`] learns the layout at start-up ([`layout`]: libc's exports and the [`probe`]s,
//! cross-checked against the per-release [`table`]) or says why the shim must pass through.
//!
//! | file | job |
//! |---|---|
//! | [`layout`] | the facts, the decision, the `Layout` the rest uses |
//! | [`probe`] | start-up probes: a real thread, malloc, a condition variable, a key |
//! | [`table`] | what each known release looks like |
//! | [`malloc`] | the thread cache: holding off its creation, returning an ended thread's |
//! | [`x86_64`] | the architecture: thread pointer, descriptor position, TCB header and guards |

pub mod layout;
pub mod malloc;
pub mod probe;
pub mod table;
pub mod x86_64;

use super::sys;
use super::sys::futex;
use layout::{Join, Layout, Learned, UserStack};
use std::ffi::{CStr, c_void};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Fake tids for coroutines' descriptors: stable per thread (recursive mutexes record the owner's tid),
/// above any real pid (pid_max ≤ 2^22, so no task can have one and a stray `kill` gets ESRCH) and below
/// 2^28: a thread's CPU-time clockid is `~tid << 3 | kind` in an int (glibc's MAKE_THREAD_CPUCLOCK), which
/// the kernel decodes with an arithmetic shift, so a tid survives it only if bit 28 is clear too.
pub const FAKE_TID_BASE: i32 = 0x0800_0000;
pub const FAKE_TID_SPAN: i32 = 0x0800_0000;

/// Whether `tid` (a TCB's tid field) is one of the fake tids coroutines carry rather than an OS thread's.
#[inline(always)]
pub fn is_coroutine_tid(tid: i32) -> bool {
    (FAKE_TID_BASE..FAKE_TID_BASE + FAKE_TID_SPAN).contains(&tid)
}

/// glibc's limits on pthread keys (bits/local_lim.h, nptl internals; the same in every release).
const KEY_2NDLEVEL: usize = 32;
const KEY_1STLEVEL: usize = 32;
const DESTRUCTOR_ITERATIONS: usize = 4;
/// rseq cpu_id meaning "registration failed": glibc's sched_getcpu then asks the kernel.
const RSEQ_CPU_ID_REGISTRATION_FAILED: u32 = (-2i32) as u32;
/// `joinstate` values (2.43 on).
const THREAD_STATE_JOINABLE: u32 = 2;
const THREAD_STATE_DETACHED: u32 = 3;
/// `stack_mode` value for a stack glibc must not free (2.42 on).
const ALLOCATE_GUARD_USER: u32 = 2;

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

/// glibc's private functions the identity needs, looked up by name (they are GLIBC_PRIVATE, which a
/// library must not link against if it is to load on every release).
struct Private {
    allocate_tls: AllocateTls,
    deallocate_tls: DeallocateTls,
    ctype_init: unsafe extern "C" fn(),
    call_tls_dtors: unsafe extern "C" fn(),
}
type AllocateTls = unsafe extern "C" fn(*mut c_void) -> *mut c_void;
type DeallocateTls = unsafe extern "C" fn(*mut c_void, bool);

struct State {
    layout: &'static Layout,
    private: Private,
}

static STATE: OnceLock<State> = OnceLock::new();
static LEARNED: OnceLock<Learned> = OnceLock::new();
/// Offset of `tid` in the descriptor, for the one-instruction [`current_tid`] (0 until learned).
static TID_AT: AtomicUsize = AtomicUsize::new(0);

#[inline(always)]
fn layout() -> &'static Layout {
    state().layout
}

#[inline(always)]
fn state() -> &'static State {
    STATE.get().expect("identity::init ran")
}

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
        Tcb(x86_64::descriptor_of(x86_64::thread_pointer()))
    }

    /// The thread's tid as glibc records it (a stable fake one for coroutines).
    #[inline]
    pub fn tid(self) -> i32 {
        // SAFETY: the TCB is live and the field is an aligned int.
        unsafe { self.field::<i32>(layout().tid).read() }
    }

    pub fn set_tid(self, tid: i32) {
        // SAFETY: the TCB is owned by the runtime and the field is an aligned int.
        unsafe { self.field::<i32>(layout().tid).write(tid) }
    }

    /// Records the stack so glibc's alloca cutoff (stack size / 4) and unwinder bounds see it.
    pub fn set_stack(self, low: usize, size: usize) {
        let at = layout().stackblock;
        // SAFETY: aligned pointer-sized fields (stackblock, stackblock_size) of a runtime-owned TCB.
        unsafe {
            self.field::<usize>(at).write(low);
            self.field::<usize>(at + 8).write(size);
        }
    }

    /// Marks the descriptor detached or joinable the way glibc does, for glibc code that looks at it
    /// (`pthread_getattr_np`; from 2.43 also every function that checks a descriptor is alive).
    pub fn set_detached(self, detached: bool) {
        // SAFETY: aligned fields of a runtime-owned TCB.
        unsafe {
            match layout().join {
                // `joinid == self` means detached.
                Join::Id(at) => self.field::<usize>(at).write(if detached { self.0 } else { 0 }),
                Join::State(at) => {
                    self.field::<u32>(at).write(if detached { THREAD_STATE_DETACHED } else { THREAD_STATE_JOINABLE })
                }
            }
        }
    }

    /// The value glibc's own `pthread_exit` stored (read after a cancellation-style unwind reached the
    /// coroutine's entry frame).
    pub fn result(self) -> *mut c_void {
        // SAFETY: aligned pointer field.
        unsafe { self.field::<*mut c_void>(layout().result).read() }
    }

    /// Address of the `cleanup_jmp_buf` slot, which the entry trampoline points at its outermost unwind
    /// buffer so glibc's `pthread_exit` unwinds to it, running cleanup handlers and C++ destructors.
    pub fn cleanup_jmp_buf_slot(self) -> *mut *mut c_void {
        self.field(layout().cleanup_jmp_buf)
    }
}

/// The calling thread's tid field, read relative to the thread pointer in one instruction (the kernel's
/// tid before the layout is learned: every thread is still glibc's then).
#[inline(always)]
pub fn current_tid() -> i32 {
    match TID_AT.load(Ordering::Relaxed) {
        0 => sys::gettid(),
        at => x86_64::read_u32_at_tp(at) as i32,
    }
}

fn dlsym(name: &CStr) -> Option<usize> {
    // SAFETY: dlsym with a NUL-terminated name in the global scope.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) } as usize;
    (p != 0).then_some(p)
}

fn private() -> Result<Private, String> {
    let get = |name: &CStr| dlsym(name).ok_or_else(|| format!("libc has no {}", name.to_string_lossy()));
    // SAFETY: each symbol is glibc's function of this signature (ld.so's TLS allocator, libc's ctype and
    // TLS-destructor entry points), unchanged from 2.31 to 2.43.
    unsafe {
        Ok(Private {
            allocate_tls: core::mem::transmute::<usize, AllocateTls>(get(c"_dl_allocate_tls")?),
            deallocate_tls: core::mem::transmute::<usize, DeallocateTls>(get(c"_dl_deallocate_tls")?),
            ctype_init: core::mem::transmute::<usize, unsafe extern "C" fn()>(get(c"__ctype_init")?),
            call_tls_dtors: core::mem::transmute::<usize, unsafe extern "C" fn()>(get(c"__call_tls_dtors")?),
        })
    }
}

/// Learns this glibc's layout. Called once, on the initial thread, with its own TCB in FS. Returns the
/// reason when the shim must stay in pass-through mode (one line: the fact and both values).
pub fn init() -> Result<(), String> {
    let learned = super::lazy::get_or_init(&LEARNED, layout::learn);
    let layout = learned.result.as_ref().map_err(|why| why.clone())?;
    let private = private().map_err(|why| format!("glibc {}: {why}", learned.version))?;
    malloc::install(layout);
    TID_AT.store(layout.tid, Ordering::Relaxed);
    let _ = STATE.set(State { layout, private });
    Ok(())
}

/// What `asyncshim doctor` shows: the version, every fact and where it came from, and the verdict.
pub fn report() -> String {
    match LEARNED.get() {
        Some(l) => l.report(),
        None => "the layout was not learned (the shim is off: ASYNCSHIM=off)\n".into(),
    }
}

/// Where glibc's condition variables keep `__wrefs` (clock and process-shared bits).
/// Whether this glibc's timed joins refuse clocks other than CLOCK_REALTIME and CLOCK_MONOTONIC up front
/// (2.32 on), rather than waiting on any clock `clock_gettime` knows (2.31).
pub fn join_checks_clock() -> bool {
    layout().join_checks_clock
}

pub fn cond_wrefs_offset() -> usize {
    layout().cond_wrefs
}

/// The rseq area of a thread (from its thread pointer) and the length glibc registered it with (0: not
/// registered), or None when this glibc does not register rseq.
pub fn rseq_registration() -> Option<(isize, u32)> {
    STATE.get().and_then(|s| s.layout.rseq)
}

/// Whether the calling thread has no malloc cache yet (see [`malloc`]).
#[inline(always)]
pub fn malloc_cache_missing_here() -> bool {
    malloc::cache_missing_here()
}

/// Runs a malloc-family call without giving the calling thread a malloc cache (see [`malloc`]).
#[inline(always)]
pub fn without_malloc_cache_creation<R>(f: impl FnOnce() -> R) -> R {
    malloc::without_cache_creation(f)
}

/// Bytes a stack slot reserves at its top for a TCB and its static TLS, as glibc does with thread stacks.
pub fn tls_reserve() -> usize {
    let l = layout();
    (l.static_size + l.static_align + 64 + 4095) & !4095
}

/// Where the TCB goes in a slot whose memory ends at `top`, and the highest stack address below its TLS.
pub fn tcb_and_stack_top(top: usize) -> (Tcb, usize) {
    let l = layout();
    let (tcb, stack_top) = x86_64::place_below(top, l.pthread_size, l.static_size, l.static_align);
    (Tcb(tcb), stack_top)
}

/// Prepares a TCB at `tcb` inside zeroed memory the caller owns (the top of a stack slot), with its static
/// TLS below it; only the DTV is allocated.
pub fn allocate_in(tcb: Tcb, tid: i32) -> Option<Tcb> {
    // SAFETY: [tcb - static TLS, tcb + struct pthread) lies in zeroed memory owned by the caller.
    let p = unsafe { (state().private.allocate_tls)(tcb.0 as *mut c_void) };
    if p.is_null() {
        return None;
    }
    init_descriptor(tcb, tid);
    Some(tcb)
}

/// Allocates and prepares a fresh TCB with the given (fake, stable) tid. Run from any context: it copies
/// the stack-protector and pointer guards from the calling TCB, which are the same process-wide.
pub fn allocate(tid: i32) -> Option<Tcb> {
    // SAFETY: ld.so's allocator returns a zeroed struct pthread with a DTV and initialised static TLS.
    let p = unsafe { (state().private.allocate_tls)(core::ptr::null_mut()) };
    if p.is_null() {
        return None;
    }
    let tcb = Tcb(p as usize);
    init_descriptor(tcb, tid);
    Some(tcb)
}

/// A coroutine thread ended holding robust mutexes: do what the kernel does for an OS thread that exits
/// (handle_futex_death over its robust list, which the kernel never sees for a coroutine): each futex word
/// still owned by `tid` gets FUTEX_OWNER_DIED, keeps its waiters bit, and one waiter is woken (glibc's
/// robust mutexes always wait with shared futex operations), so the next locker gets EOWNERDEAD.
pub fn release_robust_mutexes(tcb: Tcb, tid: i32) {
    let head = tcb.0 + layout().robust_head;
    // SAFETY: the TCB is live (its thread just ended on this worker); the list entries are the program's
    // mutexes, read and written with fault-safe copies as the kernel would.
    let futex_offset = unsafe { tcb.field::<isize>(layout().robust_head + 8).read() };
    // SAFETY: as above: a word of the live TCB's robust-list head.
    let pending = unsafe { tcb.field::<usize>(layout().robust_head + 16).read() };
    let release = |entry: usize| {
        let word = entry.wrapping_add_signed(futex_offset) as *const u32;
        if super::sys::usercopy::read(word).is_err() {
            return;
        }
        // SAFETY: an aligned u32 inside a live mutex (checked by the fault-safe read).
        let word = unsafe { &*(word as *const core::sync::atomic::AtomicU32) };
        futex::mark_owner_died(word, Some(tid));
    };
    // SAFETY: reading list links that glibc maintains in the TCB and in the mutexes.
    let mut entry = unsafe { (head as *const usize).read() };
    let mut n = 0;
    while entry != head && entry != 0 && n < futex::ROBUST_LIST_LIMIT {
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
    // The list is the dead thread's; a recycled descriptor starts empty.
    // SAFETY: writing the TCB's own list head.
    unsafe {
        (head as *mut usize).write(head);
        tcb.field::<usize>(layout().robust_head + 16).write(0);
    }
}

/// Registers the calling thread's glibc robust list with the kernel: in a forked child, whose only thread
/// goes on with the forking coroutine's descriptor, so that the kernel releases that descriptor's robust
/// mutexes (process-shared ones included) when the child dies, as it does natively.
pub fn register_robust_list_here() {
    let head = robust_head_here();
    // SAFETY: the head lives in the calling thread's TCB for as long as the thread.
    let _ = unsafe { futex::set_robust_list(head, 24) };
}

/// The address of the calling thread's robust-list head (glibc's, in its descriptor).
pub fn robust_head_here() -> usize {
    Tcb::current().0 + layout().robust_head
}

/// Fills in what glibc's pthread_create would in a new (zeroed past its header) descriptor.
fn init_descriptor(tcb: Tcb, tid: i32) {
    let l = layout();
    // SAFETY: the TCB is the caller's, being prepared; all fields are aligned and inside the descriptor.
    unsafe {
        x86_64::init_header(tcb.0);
        // The robust list is empty: its head points at itself; futex_offset is the same for every thread.
        let robust = tcb.field::<usize>(l.robust_head);
        robust.write(robust as usize);
        tcb.field::<isize>(l.robust_head + 8).write(Tcb::current().field::<isize>(l.robust_head + 8).read());
        tcb.field::<usize>(l.specific).write(tcb.0 + l.specific_1stblock);
        // fork() unlinks the forking thread's descriptor from glibc's thread list in the child: make it a
        // valid one-element list, and mark its stack as not glibc's to free.
        let list = tcb.field::<usize>(l.list);
        list.write(list as usize);
        list.add(1).write(list as usize);
        match l.user_stack {
            UserStack::Flag(at) => tcb.field::<bool>(at).write(true),
            UserStack::Mode(at) => tcb.field::<u32>(at).write(ALLOCATE_GUARD_USER),
        }
        if let Some((rseq, _)) = l.rseq {
            ((tcb.0 as isize + rseq + 4) as *mut u32).write(RSEQ_CPU_ID_REGISTRATION_FAILED);
        }
    }
    tcb.set_detached(false);
    tcb.set_tid(tid);
}

/// Makes a TCB whose thread has ended ready for a new thread, as if new: a fresh DTV and TLS images for
/// every module (through ld.so's own allocator, which passes its initialisation flag right in every
/// release), a zeroed descriptor, but the words malloc owns in libc's block kept. Runs on the worker's own
/// context (FS is not `tcb`). False when memory for the DTV ran out (the TCB is then as it was).
pub fn recycle(tcb: Tcb, tid: i32) -> bool {
    let l = layout();
    let p = &state().private;
    let kept = malloc::save(l, tcb.0);
    // SAFETY: the TCB belongs to a finished thread and no code runs with it; its header's DTV is ld.so's.
    unsafe {
        let old_dtv = tcb.field::<usize>(x86_64::HDR_DTV).read();
        if (p.allocate_tls)(tcb.0 as *mut c_void).is_null() {
            return false;
        }
        // The old DTV and the dlopen()ed modules' TLS blocks it points at, freed through a stand-in header.
        let mut old = [0usize; 2];
        old[x86_64::HDR_DTV / 8] = old_dtv;
        (p.deallocate_tls)(old.as_mut_ptr() as *mut c_void, false);
        core::ptr::write_bytes(tcb.field::<u8>(l.list), 0, l.pthread_size - l.list);
    }
    malloc::restore(l, tcb.0, kept);
    init_descriptor(tcb, tid);
    true
}

/// Frees what an ended thread's TCB holds: its malloc cache, DTV and dynamic TLS, and with `owned` the
/// descriptor itself (one from [`allocate`]; one from [`allocate_in`] lives in its slot).
pub fn destroy(tcb: Tcb, owned: bool) {
    malloc::release_cache(layout(), tcb.0);
    // SAFETY: the thread has ended and no code runs with this TCB; ld.so allocated what is freed.
    unsafe { (state().private.deallocate_tls)(tcb.0 as *mut c_void, owned) };
}

/// Per-thread libc state a new thread starts with. Runs on the coroutine itself (FS = its TCB), first thing.
pub fn on_thread_start() {
    let l = layout();
    let tcb = Tcb::current();
    let libc_block = (tcb.0 as isize + l.libc_tls) as usize;
    // SAFETY: FS is this coroutine's TCB; __resp must point at the thread's own resolver state, as glibc's
    // start_thread sets it, and the ctype tables must be initialised or isalpha() crashes.
    unsafe {
        ((libc_block + l.tls_resp) as *mut usize).write(tcb.0 + l.res);
        (state().private.ctype_init)();
        *libc::__errno_location() = 0;
    }
}

/// Runs what glibc runs when a thread ends, on the coroutine itself (FS = its TCB): C++ `thread_local` and
/// `__cxa_thread_atexit` destructors, then pthread key destructors (up to PTHREAD_DESTRUCTOR_ITERATIONS
/// rounds), then frees the key data blocks.
pub fn on_thread_exit() {
    // SAFETY: FS is the exiting coroutine's TCB, as glibc requires for both.
    unsafe {
        (state().private.call_tls_dtors)();
        run_key_destructors(Tcb::current());
    }
}

unsafe fn run_key_destructors(tcb: Tcb) {
    let l = layout();
    let keys = l.keys as *const PthreadKeyStruct;
    // SAFETY: specific[] holds KEY_1STLEVEL pointers to arrays of KEY_2NDLEVEL key data, as in
    // glibc's __nptl_deallocate_tsd, which this mirrors; `keys` is libc's key table (1024 entries).
    unsafe {
        let used = tcb.field::<bool>(l.specific_used);
        let level1 = tcb.field::<*mut PthreadKeyData>(l.specific);
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
                        let key = &*keys.add(idx);
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

/// Says why the runtime is off, on stderr, in one line: once per process tree, so the children of a shell
/// or a build under the shim stay quiet when their parent already said it. Nothing the program can see
/// carries that knowledge: the parent's memory map (in /proc) shows whether it loaded this library.
pub fn refuse(reason: &str) {
    if parent_has_this_library() {
        return;
    }
    sys::write_stderr(format!("asyncshim: {reason}; running without coroutines (pass-through)\n").as_bytes());
}

/// Whether the parent process has this library mapped (it then started with it, reached the same verdict
/// on the same glibc, and said so).
fn parent_has_this_library() -> bool {
    let Some(own) = LEARNED.get().map(|l| l.observations.own_path.as_str()).filter(|p| !p.is_empty()) else {
        return false;
    };
    let Ok(own) = std::ffi::CString::new(own) else { return false };
    let Ok(st) = sys::fs::stat(&own) else { return false };
    // A maps line: "start-end perms offset major:minor inode path".
    let dev = format!("{:02x}:{:02x}", libc::major(st.st_dev), libc::minor(st.st_dev));
    let ino = st.st_ino.to_string();
    let ppid = sys::getppid();
    let Ok(path) = std::ffi::CString::new(format!("/proc/{ppid}/maps")) else { return false };
    let mut found = false;
    for_each_line(&path, |line| {
        let mut f = line.split(|&b| b == b' ').filter(|f| !f.is_empty()).skip(3);
        if f.next() == Some(dev.as_bytes()) && f.next() == Some(ino.as_bytes()) {
            found = true;
        }
        !found
    });
    found
}

/// Reads a file with raw system calls (no hooked libc function), one line at a time, while `each` says go on.
fn for_each_line(path: &CStr, mut each: impl FnMut(&[u8]) -> bool) {
    // Closed below.
    let Ok(fd) = sys::fs::open(path, libc::O_RDONLY | libc::O_CLOEXEC, 0) else {
        return;
    };
    let mut buf = vec![0u8; 64 << 10];
    let mut have = 0;
    'read: loop {
        // SAFETY: reading into the unused part of `buf`.
        let n = match unsafe { sys::fd::read(fd, buf[have..].as_mut_ptr(), buf.len() - have) } {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        have += n;
        let mut start = 0;
        while let Some(nl) = buf[start..have].iter().position(|&b| b == b'\n') {
            if !each(&buf[start..start + nl]) {
                break 'read;
            }
            start += nl + 1;
        }
        buf.copy_within(start..have, 0);
        have -= start;
        if have == buf.len() {
            have = 0; // a line longer than the buffer: skip it
        }
    }
    // The fd opened above.
    let _ = sys::fd::close(fd);
}

/// Whether the running glibc's version is at least `major.minor` — for the few answers glibc changed
/// without a trace in memory (what `pthread_cancel` says of an ended thread: its descriptor reads the
/// same either way).
pub fn glibc_at_least(major: u32, minor: u32) -> bool {
    static VERSION: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
    let mut v = VERSION.load(core::sync::atomic::Ordering::Relaxed);
    if v == 0 {
        // SAFETY: gnu_get_libc_version returns a static NUL-terminated string.
        let s = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) };
        let mut parts = s
            .to_bytes()
            .split(|&b| b == b'.')
            .map(|p| p.iter().take_while(|b| b.is_ascii_digit()).fold(0u32, |n, &b| n * 10 + (b - b'0') as u32));
        let (a, b) = (parts.next().unwrap_or(2), parts.next().unwrap_or(0));
        v = (a << 16) | b.min(0xffff);
        VERSION.store(v, core::sync::atomic::Ordering::Relaxed);
    }
    v >= (major << 16) | minor
}
