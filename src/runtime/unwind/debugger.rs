//! What a debugger needs to find the coroutines in a live process or a core file, without type
//! information (the release build has line tables only): `asyncshim_tasks`, the newest task record (each
//! points to the one allocated before it; records are never freed), and `asyncshim_task_layout`, the
//! offsets of the fields it reads. The gdb extension `gdb/libasyncshim.so-gdb.py` reads both.
//!
//! A leaf: it knows records only as addresses and the offsets `task` gives it ([`Offsets`]), so the task
//! record's module (the scheduler core) can register its records here without this module naming it.

use core::ffi::c_void;
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

/// The newest task record (a `*const Task`; its type is the debugger's business, through the layout).
#[unsafe(no_mangle)]
pub static asyncshim_tasks: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());

/// Byte offsets inside a task record, filled when the first record is allocated (0 in `magic` until then).
#[repr(C)]
pub struct TaskLayout {
    /// 0x6173796e ("asyn") once filled; `version` changes with the meaning of a field.
    pub magic: AtomicU32,
    pub version: AtomicU32,
    /// `*const Task`: the record allocated before.
    pub allocated_before: AtomicU32,
    /// u32: 1 while a thread uses the record.
    pub live: AtomicU32,
    /// i32: the thread's id (the process id for the main thread).
    pub tid: AtomicU32,
    /// 16 bytes, NUL-terminated: the thread's name.
    pub name: AtomicU32,
    /// u64: park generation << 32 | phase (0 running, 1 parking, 2 parked, 3 notified, 4 runnable).
    pub state: AtomicU32,
    /// 3 × u64: pc, sp, bp where the coroutine last switched out (pc 0: never).
    pub switched_out_at: AtomicU32,
    /// 3 × u64: kind of wait (park::WaitReason + 1: 1 fd read, 2 fd write, 3 poll, 4 sleep, 5 mutex, 6 cond,
    /// 7 rwlock, 8 semaphore, 9 barrier, 10 futex, 11 once, 12 join, 13 offload), its object, since when.
    pub waiting_for: AtomicU32,
    /// u8: 1 for the program's main thread.
    pub is_main: AtomicU32,
}

#[unsafe(no_mangle)]
pub static asyncshim_task_layout: TaskLayout = TaskLayout {
    magic: AtomicU32::new(0),
    version: AtomicU32::new(1),
    allocated_before: AtomicU32::new(0),
    live: AtomicU32::new(0),
    tid: AtomicU32::new(0),
    name: AtomicU32::new(0),
    state: AtomicU32::new(0),
    switched_out_at: AtomicU32::new(0),
    waiting_for: AtomicU32::new(0),
    is_main: AtomicU32::new(0),
};

/// Where a record's fields are, as byte offsets from its start: what `task` fills for
/// [`asyncshim_task_layout`] (see [`TaskLayout`] for each field's type and meaning).
pub struct Offsets {
    pub allocated_before: usize,
    pub live: usize,
    pub tid: usize,
    pub name: usize,
    pub state: usize,
    pub switched_out_at: usize,
    pub waiting_for: usize,
    pub is_main: usize,
}

/// Links a new record into `asyncshim_tasks` (under no lock: a compare-and-swap loop). `offsets` is asked
/// once, for the first record; `link` stores the record allocated before into the new one (its
/// `allocated_before` field) before the new one is published.
pub fn note_allocated(record: *mut c_void, offsets: impl FnOnce() -> Offsets, mut link: impl FnMut(*mut c_void)) {
    let l = &asyncshim_task_layout;
    if l.magic.load(Ordering::Relaxed) == 0 {
        let o = offsets();
        for (field, at) in [
            (&l.allocated_before, o.allocated_before),
            (&l.live, o.live),
            (&l.tid, o.tid),
            (&l.name, o.name),
            (&l.state, o.state),
            (&l.switched_out_at, o.switched_out_at),
            (&l.waiting_for, o.waiting_for),
            (&l.is_main, o.is_main),
        ] {
            field.store(at as u32, Ordering::Relaxed);
        }
        l.magic.store(0x6173_796e, Ordering::Release);
    }
    let mut head = asyncshim_tasks.load(Ordering::Acquire);
    loop {
        link(head);
        match asyncshim_tasks.compare_exchange_weak(head, record, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return,
            Err(now) => head = now,
        }
    }
}
