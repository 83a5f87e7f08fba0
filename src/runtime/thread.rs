//! Program threads as coroutines: create, exit, join, detach, and the registry that maps a `pthread_t`
//! back to its task. Errors follow glibc 2.36's answers case by case (see `join`).

use super::identity::{self, FAKE_TID_BASE, FAKE_TID_SPAN, Tcb};
use super::lock::Lock;
use super::park::{OnSignal, Parking, Wait, WaitReason};
use super::stack::{self, CoStack};
use super::sys::syscall::Errno;
use super::sys::{self, futex, time};
use super::task::{JoinState, Life, StackBounds, Task, TaskRef, Waiter, Wake};
use super::{scheduler, worker};
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicUsize, Ordering};

pub type StartFn = extern "C" fn(*mut c_void) -> *mut c_void;

unsafe extern "C" {
    /// src/runtime/thread_entry.c: runs `start(arg)` under an outermost cancellation buffer.
    fn asyncshim_thread_entry(
        start: StartFn,
        arg: *mut c_void,
        slot: *mut *mut c_void,
        unwound: *mut i32,
    ) -> *mut c_void;
}

/// Ended threads kept ready for reuse per stack class (stack top pages and TCB committed, about 10 KB
/// each); beyond this an ended thread's slot is given back to the kernel, so a burst does not pin memory.
const HOT_PER_CLASS: usize = 64;

pub struct Threads {
    /// pthread_t (TCB address) → task. A slot's TCB address keeps its task record for the life of the
    /// process, so a stale pthread_t always finds a record (ESRCH, or the thread now using the slot, as with
    /// glibc's reused stacks).
    registry: Lock<HashMap<usize, TaskRef>>,
    /// Ended threads ready for reuse, per stack class.
    hot: [Lock<Vec<TaskRef>>; stack::CLASSES],
    /// Task records of threads that ran on program-supplied stacks, whose TCB was freed.
    bare: Lock<Vec<TaskRef>>,
    /// Stands for every freed separately-allocated TCB address: joining it answers ESRCH.
    tombstone: TaskRef,
    /// tid → live thread: what the tid-taking calls (`tgkill`, `sched_*`, CPU-time clockids) name a
    /// thread by.
    tids: TidIndex,
    next_tid: AtomicI32,
    /// Program threads alive (coroutines and real threads the shim started for the program).
    pub live: AtomicUsize,
    multithreaded: AtomicBool,
}

/// How to run a new thread.
pub struct Spawn {
    pub start: StartFn,
    pub arg: *mut c_void,
    pub stack_size: usize,
    pub user_stack: Option<(usize, usize)>,
    pub detached: bool,
    pub guard_size: usize,
    /// The new thread's signal mask, when not its creator's (a timer's SIGEV_THREAD thread: none blocked).
    pub mask: Option<u64>,
}

/// Closure state handed to the coroutine body.
struct Body {
    task: TaskRef,
    start: StartFn,
    arg: *mut c_void,
}

// SAFETY: moved once into the coroutine that runs it.
unsafe impl Send for Body {}

static THREADS: std::sync::OnceLock<Threads> = std::sync::OnceLock::new();

/// The process's thread registry (made at start-up by [`init`]).
#[inline]
pub fn registry() -> &'static Threads {
    THREADS.get().expect("thread registry made at start-up")
}

/// Makes the thread registry, once, at start-up.
pub fn init() {
    let _ = THREADS.set(Threads::new());
}

impl Default for Threads {
    fn default() -> Self {
        Self::new()
    }
}

impl Threads {
    pub fn new() -> Threads {
        Threads {
            registry: Lock::new(HashMap::new()),
            hot: [const { Lock::new(Vec::new()) }; stack::CLASSES],
            bare: Lock::new(Vec::new()),
            tombstone: Task::alloc(Tcb(0), 0, false),
            tids: TidIndex::new(),
            next_tid: AtomicI32::new(0),
            live: AtomicUsize::new(1),
            multithreaded: AtomicBool::new(false),
        }
    }

    fn fresh_tid(&self) -> i32 {
        FAKE_TID_BASE + self.next_tid.fetch_add(1, Ordering::Relaxed).rem_euclid(FAKE_TID_SPAN)
    }

    pub fn lookup(&self, t: libc::pthread_t) -> Option<TaskRef> {
        self.registry.lock().get(&(t as usize)).copied()
    }

    /// Live threads by scheduling phase (running, queued, parked), for the statistics report.
    pub fn phases(&self) -> [usize; 3] {
        let mut n = [0; 3];
        for t in self.registry.lock().values() {
            if t.join.lock().life != Life::Running {
                continue;
            }
            match t.state.load(Ordering::Relaxed) as u32 & 0xff {
                super::task::RUNNING => n[0] += 1,
                super::task::RUNNABLE | super::task::NOTIFIED => n[1] += 1,
                _ => n[2] += 1,
            }
        }
        n
    }

    /// Runs `f` over every task record in the registry, under its lock (a record no thread uses has an
    /// all-ones delivery mask, so signal routing passes it over).
    pub fn with_registered<R>(&self, f: impl FnOnce(&mut dyn Iterator<Item = &TaskRef>) -> R) -> R {
        f(&mut self.registry.lock().values())
    }

    /// The program's live threads (for the thread listing), the main thread first.
    pub fn live_tasks(&self) -> Vec<TaskRef> {
        let mut v: Vec<TaskRef> =
            self.registry.lock().values().copied().filter(|t| t.join.lock().life == Life::Running).collect();
        v.sort_by_key(|t| (!t.is_main, t.tid.get()));
        v
    }

    fn register(&self, task: TaskRef) {
        self.registry.lock().insert(task.tcb().0, task);
    }

    /// The live thread (running, not yet ended) whose tid is `tid`.
    pub fn by_tid(&self, tid: i32) -> Option<TaskRef> {
        let live = |t: TaskRef| t.tid.get() == tid && t.join.lock().life == Life::Running;
        let main = core::ptr::NonNull::new(self.tids.main.load(Ordering::Acquire)).map(TaskRef);
        if let Some(m) = main.filter(|m| m.tid.get() == tid) {
            return live(m).then_some(m);
        }
        if !identity::is_coroutine_tid(tid) {
            return None;
        }
        let slot = self.tids.slot(tid);
        if slot.tid.load(Ordering::Acquire) == tid
            && let Some(t) = core::ptr::NonNull::new(slot.task.load(Ordering::Acquire)).map(TaskRef)
            && live(t)
        {
            return Some(t);
        }
        // Its entry went to a later thread: look through every thread.
        let all: Vec<TaskRef> = self.registry.lock().values().copied().collect();
        all.into_iter().find(|&t| live(t))
    }

    /// A thread starts answering to its tid.
    fn tid_live(&self, task: TaskRef) {
        if task.is_main {
            self.tids.main.store(task.0.as_ptr(), Ordering::Release);
            return;
        }
        let slot = self.tids.slot(task.tid.get());
        slot.tid.store(0, Ordering::Relaxed);
        slot.task.store(task.0.as_ptr(), Ordering::Relaxed);
        slot.tid.store(task.tid.get(), Ordering::Release);
    }

    /// A thread ended: its tid names no thread any more (as a dead thread's tid in the kernel).
    fn tid_dead(&self, task: TaskRef) {
        if task.is_main {
            return;
        }
        let tid = task.tid.get();
        let _ = self.tids.slot(tid).tid.compare_exchange(tid, 0, Ordering::AcqRel, Ordering::Relaxed);
    }
}

/// tid → thread. Coroutines get their tids in sequence, so a table indexed by a tid's low bits finds
/// almost every live one with two loads (a thread creation costs two stores, no lock); one whose entry a
/// later thread took is found by a walk of the registry. The main thread (tid = process id) is apart.
struct TidIndex {
    slots: Box<[TidSlot]>,
    main: core::sync::atomic::AtomicPtr<Task>,
}

struct TidSlot {
    tid: AtomicI32,
    task: core::sync::atomic::AtomicPtr<Task>,
}

const TID_SLOTS: usize = 4096;

impl TidIndex {
    fn new() -> TidIndex {
        TidIndex {
            slots: (0..TID_SLOTS)
                .map(|_| TidSlot {
                    tid: AtomicI32::new(0),
                    task: core::sync::atomic::AtomicPtr::new(core::ptr::null_mut()),
                })
                .collect(),
            main: core::sync::atomic::AtomicPtr::new(core::ptr::null_mut()),
        }
    }

    fn slot(&self, tid: i32) -> &TidSlot {
        &self.slots[tid as usize & (TID_SLOTS - 1)]
    }
}

/// What a tid names, for the calls that take one.
pub enum Named {
    /// A thread the runtime runs (the main thread by the process id, a coroutine by its fake tid; 0 from
    /// a coroutine is itself).
    Thread(TaskRef),
    /// A fake tid no live thread has: ESRCH, as for a dead thread's tid.
    Gone,
    /// Anything else: the kernel's business.
    Kernel,
}

/// The thread `tid` names (0: the caller).
pub fn named_by_tid(tid: i32) -> Named {
    if !super::lifecycle::running() {
        return Named::Kernel;
    }
    if tid == 0 {
        return worker::current_task().map_or(Named::Kernel, Named::Thread);
    }
    match registry().by_tid(tid) {
        Some(t) => Named::Thread(t),
        None if identity::is_coroutine_tid(tid) => Named::Gone,
        None => Named::Kernel,
    }
}

/// A thread's tid while it runs (None once it ended: the kernel forgets a dead thread's tid).
pub fn tid_while_running(task: TaskRef) -> Option<i32> {
    (task.join.lock().life == Life::Running).then(|| task.tid.get())
}

/// Registers the program's initial thread (whose glibc TCB it keeps) as the main task.
pub fn main_task(tcb: Tcb, name: &[u8]) -> TaskRef {
    let task = Task::alloc(tcb, sys::getpid(), true);
    task.set_name(name);
    super::signals::masks::thread_starts(task, sys::sigmask(None));
    task.join.lock().life = Life::Running;
    task.debug_live.store(1, Ordering::Release);
    super::cputime::main_thread_started(&task);
    registry().register(task);
    registry().tid_live(task);
    task
}

/// Gives `task` a stack and a coroutine that runs `start(arg)` as a thread body.
pub fn prepare(task: TaskRef, stack: CoStack, start: StartFn, arg: *mut c_void) {
    let bounds = StackBounds {
        low: stack.low(),
        size: stack.size(),
        requested: stack.requested,
        guard: stack.guard,
        canary: stack.canary,
    };
    let body = Body { task, start, arg };
    // A new thread starts with its creator's floating-point modes, as the kernel's clone copies them.
    let fp = super::preempt::state::FpControl::save();
    let co = super::task::Co::with_stack(stack, move |yielder, ()| {
        let body = body;
        fp.restore();
        body.task.set_yielder(yielder);
        run_body(body);
        on_coroutine_finished as super::task::Finish
    });
    // SAFETY: the task is not queued yet, so nothing else touches it.
    unsafe { task.set_coroutine(co, bounds) };
}

fn run_body(body: Body) {
    let task = body.task;
    if !task.is_main {
        identity::on_thread_start();
    }
    let mut unwound = 0i32;
    // SAFETY: FS is this task's TCB; the slot is its cleanup_jmp_buf field.
    let ret = unsafe { asyncshim_thread_entry(body.start, body.arg, task.tcb().cleanup_jmp_buf_slot(), &mut unwound) };
    let ret = if unwound != 0 { task.tcb().result() } else { ret };
    thread_exit(task, ret);
}

/// What glibc does when a thread's start routine returns or it calls pthread_exit, run on the coroutine.
fn thread_exit(task: TaskRef, ret: *mut c_void) {
    identity::on_thread_exit();

    task.join.lock().result = ret;
    if super::lifecycle::forked_child() {
        // In a forked child this thread is a plain OS thread now; it ends the process if it is the last one.
        if os_thread_count() <= 1 {
            // SAFETY: exit has no preconditions.
            unsafe { libc::exit(0) };
        }
        sys::process::exit_thread(0);
    }
    super::signals::masks::thread_ends(&task);
    if registry().live.fetch_sub(1, Ordering::AcqRel) == 1 {
        // The last thread ended (main called pthread_exit earlier): the process exits with status 0, as glibc does.
        // SAFETY: exit may be called from any thread.
        unsafe { libc::exit(0) };
    }
}

fn os_thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(1)
}

/// Creates a coroutine thread. Returns its pthread_t or an errno (EAGAIN when no stack or TCB can be had).
pub fn spawn(req: Spawn) -> Result<libc::pthread_t, Errno> {
    if !registry().multithreaded.swap(true, Ordering::AcqRel) {
        mark_process_multithreaded();
    }
    let tid = registry().fresh_tid();
    let (task, stack) = match req.user_stack {
        Some((low, size)) => user_stack_thread(low, size, tid)?,
        None => slot_thread(req.stack_size, tid)?,
    };
    task.tcb().set_detached(req.detached);
    task.guard_request.set(req.guard_size);
    let mask = match worker::current_task() {
        Some(me) => {
            task.set_name(&me.name());
            me.signals.mask.get()
        }
        None => sys::sigmask(None),
    };
    let mask = req.mask.unwrap_or(mask);
    task.lock_waited_last.set(true);
    // A new thread has its creator's mask and nothing pending.
    super::signals::masks::thread_starts(task, mask);
    *task.join.lock() =
        JoinState { life: Life::Running, detached: req.detached, joiner: None, result: core::ptr::null_mut() };
    task.debug_live.store(1, Ordering::Release);
    super::cputime::thread_started(&task);
    super::sched_attr::thread_started(&task, worker::current_task());
    super::cancel::reset(task);
    prepare(task, stack, req.start, req.arg);
    registry().tid_live(task);
    let live = registry().live.fetch_add(1, Ordering::AcqRel) + 1;
    super::stats::thread_created(live as u64);
    super::monitor::wake::ensure_started();
    task.set_runnable();
    scheduler::get().push(task);
    Ok(task.tcb().0 as libc::pthread_t)
}

/// A thread on a runtime stack slot: a hot one of the right class (TCB recycled, pages still committed),
/// else a zeroed slot with a new TCB at its top.
fn slot_thread(stack_size: usize, tid: i32) -> Result<(TaskRef, CoStack), Errno> {
    let class = stack::class_for(stack_size, identity::tls_reserve()).ok_or(Errno(libc::EAGAIN))?;
    let hot = registry().hot[class].lock().pop();
    let task = match hot {
        Some(t) => {
            if !identity::recycle(t.tcb(), tid) {
                registry().hot[class].lock().push(t);
                return Err(Errno(libc::EAGAIN));
            }
            t.tid.set(tid);
            t
        }
        None => {
            let slot = stack::pool().take(class).ok_or(Errno(libc::EAGAIN))?;
            let (tcb, _) = identity::tcb_and_stack_top(slot.end);
            if identity::allocate_in(tcb, tid).is_none() {
                stack::pool().give_back(slot);
                return Err(Errno(libc::EAGAIN));
            }
            let known = registry().lookup(tcb.0 as libc::pthread_t);
            let t = match known {
                Some(t) => t,
                None => {
                    let t = Task::alloc(tcb, tid, false);
                    registry().register(t);
                    t
                }
            };
            t.tid.set(tid);
            t.slot.set(Some(slot));
            t
        }
    };
    let slot = task.slot.get().expect("slot thread has a slot");
    let (_, top) = identity::tcb_and_stack_top(slot.end);
    task.tcb().set_stack(slot.low(), top - slot.low());
    Ok((task, CoStack::in_slot(slot, top, stack_size)))
}

/// A thread on a stack the program supplied (pthread_attr_setstack): its TCB is allocated apart.
fn user_stack_thread(low: usize, size: usize, tid: i32) -> Result<(TaskRef, CoStack), Errno> {
    let tcb = identity::allocate(tid).ok_or(Errno(libc::EAGAIN))?;
    let bare = registry().bare.lock().pop();
    let task = match bare {
        Some(t) => {
            // SAFETY: a bare task is free: no thread, in no queue.
            unsafe { t.set_tcb(tcb) };
            t.tid.set(tid);
            t
        }
        None => Task::alloc(tcb, tid, false),
    };
    registry().register(task);
    task.tcb().set_stack(low, size);
    Ok((task, CoStack::user(low, size)))
}

/// glibc switches to its multi-threaded paths (stdio locking, atomic reference counts, `__libc_single_threaded`)
/// the first time a real thread is created. Coroutines are not real threads, so create and join one tiny
/// real thread, once, before the first coroutine thread.
fn mark_process_multithreaded() {
    extern "C" fn nothing(_: *mut c_void) -> *mut c_void {
        core::ptr::null_mut()
    }
    let mut t: libc::pthread_t = 0;
    // SAFETY: plain create/join of a thread that returns at once.
    unsafe {
        if crate::real::pthread_create(&mut t, core::ptr::null(), nothing, core::ptr::null_mut()) == 0 {
            crate::real::pthread_join(t, core::ptr::null_mut());
        }
    }
    super::signals::setxid::wrap_glibc_setxid();
}

/// The coroutine of `task` returned (on its worker): recycle the stack, then hand the thread to its joiner,
/// or to the pool if detached.
pub fn on_coroutine_finished(task: TaskRef) {
    registry().tid_dead(task);
    if task.left_in_queue.replace(false) {
        // The thread left a condition-variable wait by longjmp from a handler and never parked again.
        super::parking_lot::leave_queue(&task.wait_node);
    }
    // A name lookup (or `system`) it left by longjmp or a cancellation: its result is freed.
    super::offload::forget_abandoned(&task);
    identity::release_robust_mutexes(task.tcb(), task.tid.get());
    // Robust mutexes (not PI) it held through the shared keeper are on that keeper's list instead (PI ones
    // are its own keeper's: see `proxy::holder_ended`).
    super::sync::proxy::release_held_by(task.tid.get());
    super::sync::proxy::holder_ended(&task);
    // SAFETY: the worker that ran the task is the only one touching it now. The stack's memory belongs to
    // the task's slot, released with it.
    if let Some(co) = unsafe { task.coroutine() }.take() {
        let _ = co.into_stack();
    }
    let waiter = {
        let mut j = task.join.lock();
        j.life = Life::Exited;
        task.debug_live.store(0, Ordering::Release);
        // Before a joiner can return: natively the thread's pidfd is readable once pthread_join returned.
        super::thread_pidfd::thread_ended(task.tid.get());
        if j.detached {
            None
        } else {
            match j.joiner.take() {
                Some(w) => Some(w),
                None => return,
            }
        }
    };
    match waiter {
        None => release(task),
        Some(w) => wake_waiter(w),
    }
}

fn wake_waiter(w: Waiter) {
    match w {
        Waiter::Task(t, park) => {
            scheduler::get().wake(t, park, Wake::Unparked);
        }
        Waiter::Thread(word) => {
            // SAFETY: the joining thread keeps the word alive until it sees the store.
            let word = unsafe { &*word };
            word.store(1, Ordering::Release);
            futex::wake(word, 1);
        }
    }
}

/// Returns an ended thread's task to the pool (the main thread's TCB is glibc's and stays as it is).
fn release(task: TaskRef) {
    task.join.lock().life = Life::Free;
    if task.is_main {
        return;
    }
    let threads = registry();
    match task.slot.get() {
        Some(slot) => {
            {
                let mut hot = threads.hot[slot.class as usize].lock();
                if hot.len() < HOT_PER_CLASS {
                    hot.push(task);
                    return;
                }
            }
            identity::destroy(task.tcb(), false);
            task.slot.set(None);
            stack::pool().give_back(slot);
        }
        None => {
            let tcb = task.tcb();
            threads.registry.lock().insert(tcb.0, threads.tombstone);
            identity::destroy(tcb, true);
            threads.bare.lock().push(task);
        }
    }
}

pub enum JoinKind {
    Block,
    Try,
    /// Absolute CLOCK_MONOTONIC deadline in ns.
    Until(u64),
}

/// pthread_join and its _np variants for a target that is a coroutine thread. Same results as glibc 2.36:
/// reaped → ESRCH; detached → EINVAL; self, or a thread joining us → EDEADLK; already being joined →
/// EINVAL; tryjoin of a running thread → EBUSY; deadline passed → ETIMEDOUT.
pub fn join(target: TaskRef, kind: JoinKind) -> Result<*mut c_void, Errno> {
    let me = worker::current_task();
    let deadline = match kind {
        JoinKind::Until(d) => Some(d),
        _ => None,
    };
    // Checked before taking the target's lock: two threads joining each other must not lock in opposite orders.
    let joined_by_target =
        me.is_some_and(|me| matches!(me.join.lock().joiner, Some(Waiter::Task(t, _)) if t == target));
    let flag = AtomicU32::new(0);
    loop {
        let parking = {
            let mut j = target.join.lock();
            if j.life == Life::Free {
                return Err(Errno(libc::ESRCH));
            }
            if matches!(kind, JoinKind::Try) && j.life == Life::Running {
                return Err(Errno(libc::EBUSY));
            }
            if j.detached {
                return Err(Errno(libc::EINVAL));
            }
            if me == Some(target) || (joined_by_target && j.life == Life::Running) {
                return Err(Errno(libc::EDEADLK));
            }
            if j.joiner.is_some() {
                return Err(Errno(libc::EINVAL));
            }
            if j.life == Life::Exited {
                let r = j.result;
                drop(j);
                release(target);
                return Ok(r);
            }
            match me {
                Some(me) => {
                    let wait = Wait::new(WaitReason::Join, target.tcb().0, OnSignal::Resume).until(deadline);
                    let p = Parking::begin(me, wait);
                    j.joiner = Some(Waiter::Task(me, p.generation()));
                    Some(p)
                }
                None => {
                    j.joiner = Some(Waiter::Thread(&flag));
                    None
                }
            }
        };
        let timed_out = match parking {
            // Interrupted (a handler is to run in this thread, which may leave by longjmp; or a
            // cancellation request) or timed out: the target must not keep pointing at this wait.
            Some(p) => match p.sleep(|why| (why, leave_join(target, me, why))) {
                // Ended by a cancellation request (see `cancel`): the target stays joinable, as glibc leaves
                // it, and the hook acts on the request.
                (Wake::Interrupted, _) if super::cancel::woken() => return Err(Errno(libc::EINTR)),
                // The handlers returned: join again (the target may have ended meanwhile).
                (Wake::Interrupted, _) => continue,
                (why, still_waiting) => why == Wake::TimedOut && still_waiting,
            },
            None => loop {
                if flag.load(Ordering::Acquire) != 0 {
                    break false;
                }
                if !futex::wait(&flag, 0, deadline) && flag.load(Ordering::Acquire) == 0 {
                    break true;
                }
            },
        };
        let mut j = target.join.lock();
        if timed_out && j.life != Life::Exited {
            j.joiner = None;
            return Err(Errno(libc::ETIMEDOUT));
        }
        j.joiner = None;
        let r = j.result;
        drop(j);
        release(target);
        return Ok(r);
    }
}

/// A joiner's park ended (`why`): unless it was woken by the target's end, the target stops pointing at
/// it — interrupted, always (the join starts again or ends); timed out, unless the target has already
/// ended (then the join completes). Returns true if the joiner still waits for a running target.
fn leave_join(target: TaskRef, me: Option<TaskRef>, why: Wake) -> bool {
    if why == Wake::Unparked {
        return false;
    }
    let mut j = target.join.lock();
    if why == Wake::TimedOut && j.life == Life::Exited {
        return false;
    }
    if matches!(j.joiner, Some(Waiter::Task(t, _)) if Some(t) == me) {
        j.joiner = None;
    }
    true
}

/// pthread_detach for a coroutine thread.
pub fn detach(target: TaskRef) -> i32 {
    let mut j = target.join.lock();
    match j.life {
        Life::Free => libc::ESRCH,
        _ if j.detached => libc::EINVAL,
        // glibc leaves a thread that someone is joining as it is, and reports success.
        _ if j.joiner.is_some() => 0,
        Life::Exited => {
            j.detached = true;
            drop(j);
            target.tcb().set_detached(true);
            release(target);
            0
        }
        Life::Running => {
            j.detached = true;
            drop(j);
            target.tcb().set_detached(true);
            0
        }
    }
}

pub use super::sys::time::deadline_from_abs;

/// A coroutine joining a real OS thread (one the runtime did not make a coroutine) must not block its
/// worker: the thread it waits for may itself wait for coroutines queued behind it. It polls glibc's
/// tryjoin, parking between polls with a backoff from 50 µs to 5 ms.
///
/// # Safety
/// `ret` must be null or writable, as for pthread_join.
pub unsafe fn join_os_thread(t: libc::pthread_t, ret: *mut *mut c_void, kind: JoinKind) -> i32 {
    let mut pause = 50_000u64;
    loop {
        // SAFETY: the caller's thread handle and out-pointer, as for pthread_tryjoin_np.
        let r = unsafe { crate::real::pthread_tryjoin_np(t, ret) };
        if r != libc::EBUSY {
            return r;
        }
        let now = time::monotonic_ns();
        let wake = match kind {
            JoinKind::Try => return libc::EBUSY,
            JoinKind::Until(d) if d <= now => return libc::ETIMEDOUT,
            JoinKind::Until(d) => d.min(now + pause),
            JoinKind::Block => now + pause,
        };
        if super::park::sleep_until(wake) == Wake::Interrupted && super::cancel::woken() {
            // A cancellation request ended the pause (see `cancel`): the hook acts on it.
            return libc::EINTR;
        }
        pause = (pause * 2).min(5_000_000);
    }
}
