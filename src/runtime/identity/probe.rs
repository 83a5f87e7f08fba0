//! Start-up probes: glibc observed doing its own work, so that [`super::layout`] learns where things are
//! from what they hold rather than from a version number.
//!
//! - One real thread, created with a stack the probe owns: its descriptor is copied at start, after a
//!   `pthread_setspecific`, after a `__pthread_register_cancel`, and (still in the probe's memory) after
//!   it was joined. Fields are found by the values glibc put there: its tid, the key data, the cleanup
//!   buffer, the stack bounds, the result, what a pthread_detach changes (undone before the join).
//!   Two wake-ups in all (the thread's "done" and its exit), since under load each costs a time slice.
//! - The main thread's own malloc cache: where its pointer is (the cache whose first bin holds a chunk
//!   just freed), how many bins, whether links are mangled (safe-linking), which word is the arena.
//! - A `pthread_cond_init` with process-shared and monotonic attributes: the one word with both bits is
//!   `__wrefs`.
//! - A pthread key with a known destructor, found in libc's key table (exported from 2.34, found by
//!   scanning libpthread's data on 2.31, where the table is a local symbol).
//!
//! Nothing the program can observe is left changed: the key is deleted again (the next key created gets the
//! same number), the chunks freed stay in the cache they came from, `__libc_single_threaded` is restored.

use super::x86_64;
use crate::runtime::libc_malloc as glibc;
use core::ffi::{CStr, c_void};
use core::sync::atomic::{AtomicU32, Ordering};
use std::ffi::c_int;

/// A u64 nothing in a descriptor holds by chance.
pub const MAGIC_RESULT: usize = 0x5a17_c0de_0000_0051;
pub const MAGIC_KEY_DATA: usize = 0x5a17_c0de_0000_0033;
/// `((locale_t) -1)`, the global locale (locale.h).
const LC_GLOBAL_LOCALE: libc::locale_t = -1isize as libc::locale_t;
/// Largest descriptor (plus alignment) the probe copies.
const SNAPSHOT_MAX: usize = 8 << 10;
/// Copies the probe thread takes of itself (see ThreadShared::snapshots).
const SNAPSHOTS: usize = 5;

/// What the probe thread saw of itself.
#[repr(C)]
struct ThreadShared {
    top: usize,
    key: libc::pthread_key_t,
    register_cancel: usize,
    unregister_cancel: usize,
    cancel_buf: [usize; 16],
    resp_offset: isize,
    rseq_offset: Option<isize>,
    /// At start, after setspecific, after register_cancel, before and after pthread_detach.
    snapshots: [*mut u8; SNAPSHOTS],
    detach: usize,
    tp: usize,
    tid: i32,
    resp: usize,
    rseq_cpu_id: i32,
    /// Set by the thread once it has looked at itself and is joinable again: the creator may join it.
    ready: AtomicU32,
}

/// A module of the process (from dl_iterate_phdr).
#[derive(Clone, Default, Debug)]
pub struct Module {
    pub name: String,
    /// Address range of all its segments, and of its writable ones.
    pub range: (usize, usize),
    pub writable: Vec<(usize, usize)>,
    /// Its PT_TLS segment: the calling thread's block, its size, and the initialisation image.
    pub tls_block: usize,
    pub tls_size: usize,
    pub tls_image: usize,
    pub tls_image_size: usize,
}

impl Module {
    pub fn contains(&self, a: usize) -> bool {
        (self.range.0..self.range.1).contains(&a)
    }
    pub fn writable_contains(&self, a: usize) -> bool {
        self.writable.iter().any(|&(lo, hi)| (lo..hi).contains(&a))
    }
}

/// Copies of the probe thread's descriptor, [tp, top), at the probe's steps; what changed between two of
/// them locates the fields those steps write.
#[derive(Default)]
pub struct DescriptorCopies {
    /// At start, after setspecific, after register_cancel (None if the probe made none), after the join.
    pub at_start: Vec<u8>,
    pub after_setspecific: Vec<u8>,
    pub after_register_cancel: Option<Vec<u8>>,
    pub after_join: Vec<u8>,
    /// Around a pthread_detach (undone before the join).
    pub before_detach: Vec<u8>,
    pub after_detach: Vec<u8>,
}

/// Everything the probes saw, raw; [`super::layout`] turns it into facts.
#[derive(Default)]
pub struct Observations {
    pub version: String,
    pub main_tp: usize,
    pub static_size: usize,
    pub static_align: usize,
    pub libc: Module,
    pub libpthread: Option<Module>,
    /// This library's file (for the once-per-process-tree notice).
    pub own_path: String,
    // The probe thread.
    pub thread_error: Option<String>,
    pub tp: usize,
    pub top: usize,
    pub stack_low: usize,
    pub stack_size: usize,
    pub tid: i32,
    pub key: Option<libc::pthread_key_t>,
    pub key_seq_data: usize,
    pub cancel_buf: usize,
    pub resp_in_thread: usize,
    pub rseq_cpu_id: i32,
    pub start_routine: usize,
    pub copies: DescriptorCopies,
    // Exports.
    pub thread_db: Vec<(&'static str, u32)>,
    pub sizeof_pthread: Option<u32>,
    pub rseq: Option<(isize, u32)>,
    pub robust_head: Option<usize>,
    pub tls_symbols: Vec<(&'static str, Option<usize>)>,
    pub errno_addr: usize,
    // malloc.
    pub tcache: Option<usize>,
    pub tcache_bins: Option<usize>,
    pub safe_linking: Option<bool>,
    pub tcache_initial: Option<usize>,
    pub arena_candidates: Vec<usize>,
    // Others.
    pub cond_wrefs: Vec<usize>,
    pub keys_exported: bool,
    pub keys_table: Option<usize>,
    /// What `pthread_clockjoin_np(pthread_self(), .., CLOCK_PROCESS_CPUTIME_ID, ..)` answers: EINVAL
    /// where glibc checks the clock before anything else (2.32 on), EDEADLK where it checks it only while
    /// waiting for a running thread (2.31).
    pub self_join_cpu_clock: i32,
}

fn dlsym(name: &CStr) -> usize {
    // SAFETY: dlsym with a NUL-terminated name; RTLD_DEFAULT searches the global scope.
    unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) as usize }
}

/// Whether the page holding `addr` can be read (see `sys::futex::word_readable`).
pub fn readable(addr: usize) -> bool {
    let word = addr & !3;
    if word < 4096 {
        return false;
    }
    super::super::sys::futex::word_readable(word)
}

/// Whether all of [lo, hi) can be read (one check per page).
fn readable_range(lo: usize, hi: usize) -> bool {
    let mut page = lo & !4095;
    while page < hi {
        if !readable(page.max(lo)) {
            return false;
        }
        page += 4096;
    }
    true
}

/// Runs every probe. Called once, on the initial thread, before anything else of the runtime.
pub fn observe() -> Observations {
    let mut o = Observations {
        // SAFETY: gnu_get_libc_version returns a static string.
        version: unsafe { CStr::from_ptr(libc::gnu_get_libc_version()) }.to_string_lossy().into_owned(),
        main_tp: x86_64::thread_pointer(),
        ..Observations::default()
    };
    modules(&mut o);
    let static_info = dlsym(c"_dl_get_tls_static_info");
    if static_info != 0 {
        // SAFETY: ld.so's function of this signature (two out-pointers).
        let f: unsafe extern "C" fn(*mut usize, *mut usize) = unsafe { core::mem::transmute(static_info) };
        // SAFETY: two valid out-pointers.
        unsafe { f(&mut o.static_size, &mut o.static_align) };
    }
    exports(&mut o);
    keys(&mut o);
    thread(&mut o);
    malloc(&mut o);
    cond(&mut o);
    join_clock(&mut o);
    if let Some(k) = o.key {
        // SAFETY: the key this probe created.
        unsafe { libc::pthread_key_delete(k) };
    }
    o
}

struct ModuleScan<'a> {
    o: &'a mut Observations,
    own: usize,
}

fn modules(o: &mut Observations) {
    unsafe extern "C" fn each(info: *mut libc::dl_phdr_info, size: usize, data: *mut c_void) -> c_int {
        // SAFETY: dl_iterate_phdr passes a valid info of `size` bytes and our own data pointer.
        let (info, scan) = unsafe { (&*info, &mut *(data as *mut ModuleScan)) };
        let name = if info.dlpi_name.is_null() {
            String::new()
        } else {
            // SAFETY: a NUL-terminated path.
            unsafe { CStr::from_ptr(info.dlpi_name) }.to_string_lossy().into_owned()
        };
        let mut m = Module { name, range: (usize::MAX, 0), ..Module::default() };
        for i in 0..info.dlpi_phnum as usize {
            // SAFETY: dlpi_phdr has dlpi_phnum entries.
            let ph = unsafe { &*info.dlpi_phdr.add(i) };
            let lo = info.dlpi_addr as usize + ph.p_vaddr as usize;
            let hi = lo + ph.p_memsz as usize;
            match ph.p_type {
                libc::PT_LOAD => {
                    m.range = (m.range.0.min(lo), m.range.1.max(hi));
                    if ph.p_flags & libc::PF_W != 0 {
                        m.writable.push((lo, hi));
                    }
                }
                libc::PT_TLS => {
                    m.tls_size = ph.p_memsz as usize;
                    m.tls_image = lo;
                    m.tls_image_size = ph.p_filesz as usize;
                }
                _ => {}
            }
        }
        if size >= core::mem::size_of::<libc::dl_phdr_info>() {
            m.tls_block = info.dlpi_tls_data as usize;
        }
        let base = m.name.rsplit('/').next().unwrap_or("");
        if base.starts_with("libc.so") {
            scan.o.libc = m;
        } else if base.starts_with("libpthread.so") {
            scan.o.libpthread = Some(m);
        } else if m.contains(scan.own) {
            scan.o.own_path = m.name;
        }
        0
    }
    let own = modules as *const () as usize;
    let mut scan = ModuleScan { o, own };
    // SAFETY: the callback only reads the infos and writes `scan`.
    unsafe { libc::dl_iterate_phdr(Some(each), &mut scan as *mut ModuleScan as *mut c_void) };
}

fn exports(o: &mut Observations) {
    for (name, sym) in [
        ("list", c"_thread_db_pthread_list"),
        ("tid", c"_thread_db_pthread_tid"),
        ("specific", c"_thread_db_pthread_specific"),
        ("cancelhandling", c"_thread_db_pthread_cancelhandling"),
        ("start_routine", c"_thread_db_pthread_start_routine"),
    ] {
        let p = dlsym(sym);
        if p != 0 {
            // SAFETY: a libthread_db field descriptor: three u32 (bits, count, offset).
            o.thread_db.push((name, unsafe { (p as *const u32).add(2).read() }));
        }
    }
    let p = dlsym(c"_thread_db_sizeof_pthread");
    // SAFETY: a u32 constant.
    o.sizeof_pthread = (p != 0).then(|| unsafe { (p as *const u32).read() });
    let (off, size) = (dlsym(c"__rseq_offset"), dlsym(c"__rseq_size"));
    if off != 0 && size != 0 {
        // SAFETY: glibc's constants (ptrdiff_t and unsigned int).
        o.rseq = Some(unsafe { ((off as *const isize).read(), (size as *const u32).read()) });
    }
    if let Ok((head, _)) = super::super::sys::futex::get_robust_list()
        && head != 0
    {
        o.robust_head = Some(head - o.main_tp);
    }
    // SAFETY: __errno_location has no preconditions.
    o.errno_addr = unsafe { libc::__errno_location() } as usize;
    for (name, sym) in
        [("tls.resp", c"__resp"), ("tls.h_errno", c"__h_errno"), ("tls.dlerror", c"__libc_dlerror_result")]
    {
        let p = dlsym(sym);
        o.tls_symbols.push((name, (p != 0).then_some(p)));
    }
}

fn join_clock(o: &mut Observations) {
    let past = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: joining oneself never waits nor changes anything: glibc answers EINVAL or EDEADLK at once.
    o.self_join_cpu_clock = unsafe {
        crate::real::pthread_clockjoin_np(
            libc::pthread_self(),
            core::ptr::null_mut(),
            libc::CLOCK_PROCESS_CPUTIME_ID,
            &past,
        )
    };
}

extern "C" fn key_probe_destructor(_: *mut c_void) {}

fn keys(o: &mut Observations) {
    let mut k: libc::pthread_key_t = 0;
    // SAFETY: plain key creation with a destructor that does nothing.
    if unsafe { libc::pthread_key_create(&mut k, Some(key_probe_destructor)) } != 0 {
        return;
    }
    o.key = Some(k);
    let destructor = key_probe_destructor as *const () as usize;
    let is_entry = |addr: usize| -> bool {
        // SAFETY: callers pass addresses inside a mapped writable segment or the exported table.
        let (seq, destr) = unsafe { ((addr as *const usize).read(), ((addr + 8) as *const usize).read()) };
        seq % 2 == 1 && destr == destructor
    };
    let exported = dlsym(c"__pthread_keys");
    o.keys_exported = exported != 0;
    if exported != 0 {
        if is_entry(exported + 16 * k as usize) {
            o.keys_table = Some(exported);
        }
        return;
    }
    // glibc 2.31 keeps `struct pthread_key_struct __pthread_keys[1024]` in libpthread's data, unexported.
    let mut found = Vec::new();
    let modules = o.libpthread.iter().chain(core::iter::once(&o.libc));
    for m in modules {
        for &(lo, hi) in &m.writable {
            let mut a = (lo + 7) & !7;
            while a + 16 <= hi {
                if is_entry(a) && a >= 16 * k as usize {
                    found.push(a - 16 * k as usize);
                }
                a += 8;
            }
        }
    }
    if found.len() == 1 {
        o.keys_table = Some(found[0]);
    }
}

extern "C" fn probe_thread(arg: *mut c_void) -> *mut c_void {
    // No allocation and no Rust thread-locals here: this thread must leave malloc's state as it found it.
    // SAFETY: the creator passes a ThreadShared that outlives the thread (it joins it).
    let s = unsafe { &mut *(arg as *mut ThreadShared) };
    let tp = x86_64::thread_pointer();
    s.tp = tp;
    s.tid = super::super::sys::gettid();
    let len = s.top.saturating_sub(tp).min(SNAPSHOT_MAX);
    // SAFETY: [tp, top) is this thread's descriptor and the rest of the stack the creator owns; the
    // snapshots hold SNAPSHOT_MAX bytes each.
    unsafe {
        core::ptr::copy_nonoverlapping(tp as *const u8, s.snapshots[0], len);
        // A key past the first 32 would make glibc allocate a second-level block.
        let small_key = s.key < 32;
        if small_key {
            libc::pthread_setspecific(s.key, MAGIC_KEY_DATA as *const c_void);
        }
        core::ptr::copy_nonoverlapping(tp as *const u8, s.snapshots[1], len);
        if s.register_cancel != 0 && s.unregister_cancel != 0 {
            let reg: unsafe extern "C" fn(*mut c_void) = core::mem::transmute(s.register_cancel);
            let unreg: unsafe extern "C" fn(*mut c_void) = core::mem::transmute(s.unregister_cancel);
            let buf = s.cancel_buf.as_mut_ptr() as *mut c_void;
            reg(buf);
            core::ptr::copy_nonoverlapping(tp as *const u8, s.snapshots[2], len);
            unreg(buf);
        }
        if small_key {
            libc::pthread_setspecific(s.key, core::ptr::null());
        }
        s.resp = ((tp as isize + s.resp_offset) as *const usize).read();
        if let Some(off) = s.rseq_offset {
            s.rseq_cpu_id = ((tp as isize + off + 4) as *const i32).read_volatile();
        }
    }
    // How glibc marks a thread detached: seen around a pthread_detach of itself, whose changes are then
    // undone (the creator joins only once this is done, so it never sees the thread detached).
    // SAFETY: as above; the detach function is glibc's and nothing else looks at this descriptor meanwhile.
    unsafe {
        let detach: unsafe extern "C" fn(libc::pthread_t) -> c_int = core::mem::transmute(s.detach);
        core::ptr::copy_nonoverlapping(tp as *const u8, s.snapshots[3], len);
        detach(tp as libc::pthread_t);
        core::ptr::copy_nonoverlapping(tp as *const u8, s.snapshots[4], len);
        for i in 0..len {
            let before = s.snapshots[3].add(i).read();
            if s.snapshots[4].add(i).read() != before {
                ((tp + i) as *mut u8).write_volatile(before);
            }
        }
    }
    s.ready.store(1, Ordering::Release);
    super::super::sys::futex::wake(&s.ready, 1);
    MAGIC_RESULT as *mut c_void
}

/// Copies [tp, tp + len).
///
/// # Safety
/// The range must be readable.
unsafe fn snapshot(tp: usize, len: usize) -> Vec<u8> {
    // SAFETY: as the caller promises.
    unsafe { core::slice::from_raw_parts(tp as *const u8, len) }.to_vec()
}

fn thread(o: &mut Observations) {
    let Some(key) = o.key else {
        o.thread_error = Some("pthread_key_create failed".into());
        return;
    };
    let size = ((o.static_size + (64 << 10)) + 4095) & !4095;
    // SAFETY: a fresh private mapping, unmapped below.
    let low = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if low == libc::MAP_FAILED {
        o.thread_error = Some("cannot map a stack".into());
        return;
    }
    let low = low as usize;
    let mut snaps = vec![0u8; SNAPSHOTS * SNAPSHOT_MAX];
    let base = snaps.as_mut_ptr();
    let mut s = ThreadShared {
        top: low + size,
        key,
        register_cancel: dlsym(c"__pthread_register_cancel"),
        unregister_cancel: dlsym(c"__pthread_unregister_cancel"),
        cancel_buf: [0; 16],
        resp_offset: o.tls_symbols[0].1.map_or(0, |a| a as isize - o.main_tp as isize),
        rseq_offset: o.rseq.filter(|r| r.1 > 0).map(|r| r.0),
        // SAFETY: disjoint SNAPSHOT_MAX pieces of `snaps`.
        snapshots: core::array::from_fn(|i| unsafe { base.add(i * SNAPSHOT_MAX) }),
        detach: crate::real::pthread_detach_addr(),
        tp: 0,
        tid: 0,
        resp: 0,
        rseq_cpu_id: -1,
        ready: AtomicU32::new(0),
    };
    let single = dlsym(c"__libc_single_threaded") as *mut u8;
    // SAFETY: glibc's exported char (2.32+), read before and restored after: once the probe thread is
    // joined the process is single-threaded again, as the program last saw it.
    let was_single = (!single.is_null()).then(|| unsafe { single.read() });
    let mut t: libc::pthread_t = 0;
    let mut ret: *mut c_void = core::ptr::null_mut();
    // SAFETY: attr is initialised before use and destroyed after; the stack and `s` outlive the thread.
    let created = unsafe {
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        libc::pthread_attr_init(&mut attr);
        libc::pthread_attr_setstack(&mut attr, low as *mut c_void, size);
        let r = crate::real::pthread_create(&mut t, &attr, probe_thread, &mut s as *mut ThreadShared as *mut c_void);
        libc::pthread_attr_destroy(&mut attr);
        r
    };
    if created != 0 {
        o.thread_error = Some(format!("pthread_create failed ({created})"));
    } else {
        while s.ready.load(Ordering::Acquire) == 0 {
            super::super::sys::futex::wait(&s.ready, 0, None);
        }
        // SAFETY: joining the thread just created (joinable again).
        unsafe { crate::real::pthread_join(t, &mut ret) };
        let len = (s.top - s.tp).min(SNAPSHOT_MAX);
        let piece = |i: usize| snaps[i * SNAPSHOT_MAX..i * SNAPSHOT_MAX + len].to_vec();
        o.copies.before_detach = piece(3);
        o.copies.after_detach = piece(4);
        o.tp = s.tp;
        o.top = s.top;
        o.stack_low = low;
        o.stack_size = size;
        o.tid = s.tid;
        o.cancel_buf = s.cancel_buf.as_ptr() as usize;
        o.resp_in_thread = s.resp;
        o.rseq_cpu_id = s.rseq_cpu_id;
        o.start_routine = probe_thread as *const () as usize;
        o.copies.at_start = piece(0);
        o.copies.after_setspecific = piece(1);
        if s.register_cancel != 0 {
            o.copies.after_register_cancel = Some(piece(2));
        }
        // SAFETY: the descriptor lies in the stack this probe mapped, still mapped; glibc is done with it.
        o.copies.after_join = unsafe { snapshot(s.tp, len) };
        if ret as usize != MAGIC_RESULT {
            o.thread_error = Some("the probe thread's result did not come back".into());
        }
    }
    if let (Some(v), false) = (was_single, single.is_null()) {
        // SAFETY: as above.
        unsafe { single.write(v) };
    }
    // SAFETY: the mapping made above; the thread is gone.
    unsafe { libc::munmap(low as *mut c_void, size) };
}

fn malloc(o: &mut Observations) {
    let block = o.libc.tls_block;
    if block == 0 || o.libc.tls_size == 0 {
        return;
    }
    // SAFETY: plain malloc/free; the chunks freed end up in the main thread's cache, as any free.
    unsafe {
        let p = glibc::malloc(24) as usize;
        glibc::free(p as *mut c_void);
        // The cache is a chunk (16-aligned) whose entries[0] is `p`: entries follow `bins` u16 counts.
        let mut found = Vec::new();
        const MAX_BINS: usize = 512;
        for off in (0..o.libc.tls_size).step_by(8) {
            let w = ((block + off) as *const usize).read();
            if w == 0 || !w.is_multiple_of(16) || !readable_range(w, w + 2 * MAX_BINS + 8) {
                continue;
            }
            for bins in (16..=MAX_BINS).step_by(4) {
                if ((w + 2 * bins) as *const usize).read() == p {
                    found.push((off, w, bins));
                }
            }
        }
        let [(off, cache, bins)] = found[..] else { return };
        o.tcache = Some(off);
        o.tcache_bins = Some(bins);
        let a = glibc::malloc(24) as usize;
        let b = glibc::malloc(24) as usize;
        glibc::free(a as *mut c_void);
        glibc::free(b as *mut c_void);
        if ((cache + 2 * bins) as *const usize).read() == b {
            let next = (b as *const usize).read();
            if next == a {
                o.safe_linking = Some(false);
            } else if next == a ^ (b >> 12) {
                o.safe_linking = Some(true);
            }
        }
        // The value a thread without a cache starts with: libc's TLS image (a dummy's address from 2.43).
        o.tcache_initial =
            Some(if off + 8 <= o.libc.tls_image_size { ((o.libc.tls_image + off) as *const usize).read() } else { 0 });
        // The arena pointer: on this thread it is &main_arena, in libc's writable data. So are __resp (&_res)
        // and the locale pointer (&_nl_global_locale), told apart by switching this thread's locale.
        let locale_word = locale_word(block, o.libc.tls_size);
        let resp = o.tls_symbols[0].1.map(|a| a - block);
        for off in (0..o.libc.tls_size).step_by(8) {
            let w = ((block + off) as *const usize).read();
            if o.libc.writable_contains(w) && Some(off) != resp && Some(off) != locale_word {
                o.arena_candidates.push(off);
            }
        }
    }
}

/// The word of libc's TLS block that holds the calling thread's locale (it changes with uselocale).
fn locale_word(block: usize, size: usize) -> Option<usize> {
    // SAFETY: duplocale/uselocale/freelocale in their documented order; the thread's locale is restored.
    unsafe {
        let copy = libc::duplocale(LC_GLOBAL_LOCALE);
        if copy.is_null() {
            return None;
        }
        let before: Vec<usize> = (0..size).step_by(8).map(|o| ((block + o) as *const usize).read()).collect();
        let old = libc::uselocale(copy);
        let changed: Vec<usize> = (0..size)
            .step_by(8)
            .filter(|&o| ((block + o) as *const usize).read() == copy as usize && before[o / 8] != copy as usize)
            .collect();
        libc::uselocale(old);
        libc::freelocale(copy);
        (changed.len() == 1).then(|| changed[0])
    }
}

/// Tries `hold` on the calling thread's malloc: with the cache pointer set to `none` (what a thread without
/// a cache has) and `hold` applied, do one malloc and one free leave the pointer alone (no cache made)?
/// The main thread's cache is put back afterwards, and a cache made by mistake is freed.
pub fn malloc_holds_off(tcache_addr: usize, none: usize, hold: impl Fn(bool)) -> bool {
    // SAFETY: the words are this thread's cache pointer (and the hold's own); nothing else runs.
    unsafe {
        let slot = tcache_addr as *mut usize;
        let saved = slot.read();
        slot.write(none);
        hold(true);
        let held = slot.read();
        let p = glibc::malloc(24);
        let mut made = slot.read() != held;
        glibc::free(p);
        made |= slot.read() != held;
        hold(false);
        let extra = slot.read();
        slot.write(saved);
        if made && extra != held && extra != none && extra != 0 {
            glibc::free(extra as *mut c_void);
        }
        !made
    }
}

fn cond(o: &mut Observations) {
    let mut c = core::mem::MaybeUninit::<libc::pthread_cond_t>::zeroed();
    // SAFETY: a condattr and condvar initialised and destroyed here, in memory this function owns.
    unsafe {
        let mut attr: libc::pthread_condattr_t = core::mem::zeroed();
        libc::pthread_condattr_init(&mut attr);
        libc::pthread_condattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
        libc::pthread_condattr_setclock(&mut attr, libc::CLOCK_MONOTONIC);
        if libc::pthread_cond_init(c.as_mut_ptr(), &attr) == 0 {
            let words = core::slice::from_raw_parts(c.as_ptr() as *const u32, 12);
            o.cond_wrefs = (0..12).filter(|&i| words[i] == 3).map(|i| i * 4).collect();
            if words.iter().filter(|&&w| w != 0).count() != 1 {
                o.cond_wrefs.clear();
            }
            libc::pthread_cond_destroy(c.as_mut_ptr());
        }
        libc::pthread_condattr_destroy(&mut attr);
    }
}
