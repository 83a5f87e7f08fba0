//! A task is one program thread run as a coroutine: its stack, its glibc identity (TCB), its scheduling
//! state, and the pthread-level facts others ask about (join, detach, name).
//!
//! Tasks are pooled, never freed: a finished task's TCB and record are reused by a later thread, so a
//! `pthread_t` always points at valid memory (as glibc's cached descriptors do) and churn does not grow RSS.
//!
//! ## Parking
//! `state` packs a park generation (high 32 bits) with a phase (low bits). A waker names the generation it
//! wants to wake, so a timer that fires after its park already ended can never wake a later park.
//! Phases: RUNNING → PARKING (about to switch out) → PARKED; a waker moves PARKING → NOTIFIED (the worker
//! requeues it after the switch completes) or PARKED → RUNNABLE (the waker queues it). The TIMED_OUT bit
//! records why a park ended.

use super::identity::Tcb;
use super::lock::Lock;
use super::stack::CoStack;
use core::cell::{Cell, UnsafeCell};
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use corosensei::{Coroutine, Yielder};
use std::ffi::c_void;
use std::ptr::NonNull;

pub const RUNNING: u32 = 0;
pub const PARKING: u32 = 1;
pub const PARKED: u32 = 2;
pub const NOTIFIED: u32 = 3;
pub const RUNNABLE: u32 = 4;
const PHASE_MASK: u32 = 0xff;
pub const TIMED_OUT: u32 = 0x100;
pub const INTERRUPTED: u32 = 0x200;

/// What a coroutine tells its worker when it switches out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Switch {
    /// Put me at the back of the run queue.
    Yield,
    /// I parked; a waker will queue me.
    Park,
    /// I was preempted (see `preempt`): queue me behind the coroutines that did not run out their slice.
    Preempted,
}

/// What a coroutine that returned leaves its worker to do once it is off the coroutine's stack (give the
/// stack back, hand the thread to its joiner): the thread layer's answer, carried by the coroutine's
/// return value so that the scheduler core need not import that layer.
pub type Finish = fn(TaskRef);

pub type Co = Coroutine<(), Switch, Finish, CoStack>;

/// Why a park ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    Unparked,
    TimedOut,
    /// `park::interrupt` ended the wait: a signal handler is to run in the task, or it is cancelled.
    Interrupted,
}

impl Wake {
    fn bits(self) -> u32 {
        match self {
            Wake::Unparked => 0,
            Wake::TimedOut => TIMED_OUT,
            Wake::Interrupted => INTERRUPTED,
        }
    }
    fn from_bits(b: u32) -> Wake {
        if b & INTERRUPTED != 0 {
            Wake::Interrupted
        } else if b & TIMED_OUT != 0 {
            Wake::TimedOut
        } else {
            Wake::Unparked
        }
    }
}

/// Who waits for a thread to end: a coroutine (woken by unpark) or a plain OS thread (woken by futex).
#[derive(Clone, Copy)]
pub enum Waiter {
    Task(TaskRef, u32),
    Thread(*const AtomicU32),
}

// SAFETY: the pointers refer to pooled tasks or to a futex word that outlives the wait.
unsafe impl Send for Waiter {}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Life {
    /// In the pool: no thread. Joining it is EINVAL, as glibc answers for a reaped descriptor.
    Free,
    Running,
    /// Ended, waiting to be joined.
    Exited,
}

pub struct JoinState {
    pub life: Life,
    pub detached: bool,
    pub joiner: Option<Waiter>,
    pub result: *mut c_void,
}

// SAFETY: result is an opaque value handed from the thread to its joiner.
unsafe impl Send for JoinState {}

/// Stack facts readable from a signal handler.
#[derive(Clone, Copy)]
pub struct StackBounds {
    pub low: usize,
    pub size: usize,
    pub requested: usize,
    pub guard: Option<(usize, usize)>,
    /// The stack carries a canary word at `low` to check at every switch.
    pub canary: bool,
}

/// A helper call's record (an address) with the function that abandons it (see `offload::forget_abandoned`).
pub type Abandonable = (usize, unsafe fn(usize));

/// `repr(C)` keeps the fields a wake-up touches — the parking-lot node and the state word — together at
/// the start, on one or two cache lines (an unparker reads the node, then wakes through the state).
#[repr(C)]
pub struct Task {
    pub state: AtomicU64,
    /// The task's place in a parking-lot queue while it waits there (with the key it waits on and the
    /// token its unpark handed over; see `park::TaskParker`).
    pub wait_node: super::parking_lot::WaitNode,
    tcb: Cell<Tcb>,
    /// The stack slot that holds this thread's stack and TCB (None: the main thread's glibc TCB, or a
    /// TCB allocated apart for a program-supplied stack).
    pub slot: Cell<Option<super::stack::Slot>>,
    pub tid: Cell<i32>,
    pub is_main: bool,
    co: UnsafeCell<Option<Co>>,
    yielder: Cell<*const Yielder<(), Switch>>,
    stack: Cell<StackBounds>,
    pub join: Lock<JoinState>,
    name: Lock<[u8; 16]>,
    /// Guard size the program asked for, reported back by pthread_getattr_np.
    pub guard_request: Cell<usize>,
    /// Why the last park ended; written by the worker before resuming, read by the coroutine after.
    pub last_wake: Cell<Wake>,
    /// Worker that last ran the task.
    pub last_worker: AtomicUsize,
    /// Park generation + 1 while the task waits where `park::interrupt` can end the wait (every park but
    /// one for a helper thread's call), else 0.
    pub interruptible: AtomicU32,
    /// The wait in progress fails with EINTR on a handled signal (rather than going on after the handler).
    pub signal_ends_wait: core::sync::atomic::AtomicBool,
    /// The interruptible wait goes on if the handler has SA_RESTART (read, write, accept...).
    pub restartable_wait: core::sync::atomic::AtomicBool,
    /// The signal that interrupted the last wait asks for the call to go on (SA_RESTART).
    pub interrupt_restarts: core::sync::atomic::AtomicBool,
    /// The task is parked in a wait whose handlers run when it ends (`park::OnSignal::AfterCall`).
    pub handlers_after_wait: core::sync::atomic::AtomicBool,
    /// Why the task is parking (set by `park::Parking::begin`, taken by the worker after the switch).
    pub park_reason: Cell<Option<super::park::WaitReason>>,
    /// The task's last park was a lock wait (or it has not parked yet): see `convoy`.
    pub lock_waited_last: Cell<bool>,
    /// Another worker took it as a hand-off before its waker parked (see `scheduler::RunQueue`): what its
    /// run does then tunes how long hand-offs are held.
    pub handoff_taken: Cell<bool>,
    /// `wait_node` may still be queued in the parking lot: a handler left an `OnSignal::ResumeInPlace`
    /// wait by longjmp (see `park::TaskParker`).
    pub left_in_queue: Cell<bool>,
    /// The record of the call the task last waited for in `offload::run_abandonable` while it waits, or
    /// after a handler left that wait by longjmp (with what abandons it): see `offload::forget_abandoned`.
    pub abandonable: Cell<Option<Abandonable>>,
    /// Its signal mask, the mask deciding delivery now, the signals pending for it alone and those its
    /// sigwait waits for (see `signals::state`).
    pub signals: super::signals::state::TaskSignals,
    /// The keeper (`sync::proxy`) through which the thread holds PI mutexes the kernel must see owned by a
    /// real thread, while it has one (0 when none).
    pub keeper: Cell<usize>,
    /// What preemption needs to know of the task (FILE locks held).
    pub preempt: super::preempt::state::TaskState,
    /// Where the coroutine switched out last (pc, sp, bp): a parked coroutine's stack is walked from here
    /// (see `unwind`).
    pub switched_out_at: [AtomicUsize; 3],
    /// What the last park waited for, for the thread listing: the kind (`park::WaitReason` + 1), its object
    /// (fd, address, deadline or thread, see `park::Wait`) and when it began (`cputime::account::stamp_now`).
    pub waiting_for: [AtomicU64; 3],
    /// 1 while a thread uses the record, for debuggers (see `unwind::debugger`).
    pub debug_live: AtomicU32,
    /// The record allocated before this one: every record ever allocated, for debuggers.
    pub allocated_before: *const Task,
    /// The CPU time the thread used (see `cputime`).
    pub cpu: super::cputime::account::TaskCpu,
    /// Its scheduling policy, priority, nice value and CPU affinity (see `sched_attr`).
    pub sched: super::sched_attr::state::TaskSched,
    /// pthread cancellation state (see `cancel`), armed and noted by every park.
    pub cancel: super::cancel_state::CancelState,
    /// A system call it makes on its worker that may wait in the kernel (see `worker_call`).
    pub worker_call: super::sys::abortable::Handle,
}

// SAFETY: a task is touched by one worker at a time (the one running it, or the one finishing it);
// the fields others read (state, join, name) are atomics or behind locks.
unsafe impl Send for Task {}
// SAFETY: as above.
unsafe impl Sync for Task {}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct TaskRef(pub NonNull<Task>);

// SAFETY: tasks are pooled for the life of the process; see Task.
unsafe impl Send for TaskRef {}
// SAFETY: as above.
unsafe impl Sync for TaskRef {}

impl core::ops::Deref for TaskRef {
    type Target = Task;
    fn deref(&self) -> &Task {
        // SAFETY: tasks are never freed.
        unsafe { self.0.as_ref() }
    }
}

impl Task {
    pub fn alloc(tcb: Tcb, tid: i32, is_main: bool) -> TaskRef {
        let t = Box::new(Task {
            state: AtomicU64::new(RUNNABLE as u64),
            tcb: Cell::new(tcb),
            slot: Cell::new(None),
            tid: Cell::new(tid),
            is_main,
            co: UnsafeCell::new(None),
            yielder: Cell::new(core::ptr::null()),
            stack: Cell::new(StackBounds { low: 0, size: 0, requested: 0, guard: None, canary: false }),
            join: Lock::new(JoinState {
                life: Life::Free,
                detached: false,
                joiner: None,
                result: core::ptr::null_mut(),
            }),
            name: Lock::new([0; 16]),
            guard_request: Cell::new(0),
            last_wake: Cell::new(Wake::Unparked),
            last_worker: AtomicUsize::new(0),
            interruptible: AtomicU32::new(0),
            signal_ends_wait: core::sync::atomic::AtomicBool::new(false),
            restartable_wait: core::sync::atomic::AtomicBool::new(false),
            interrupt_restarts: core::sync::atomic::AtomicBool::new(false),
            handlers_after_wait: core::sync::atomic::AtomicBool::new(false),
            signals: super::signals::state::TaskSignals::new(),
            wait_node: super::parking_lot::WaitNode::new(),
            park_reason: Cell::new(None),
            lock_waited_last: Cell::new(true),
            handoff_taken: Cell::new(false),
            left_in_queue: Cell::new(false),
            abandonable: Cell::new(None),
            keeper: Cell::new(0),
            preempt: super::preempt::state::TaskState::new(),
            switched_out_at: [const { AtomicUsize::new(0) }; 3],
            waiting_for: [const { AtomicU64::new(0) }; 3],
            debug_live: AtomicU32::new(0),
            allocated_before: core::ptr::null(),
            cpu: super::cputime::account::TaskCpu::new(),
            sched: super::sched_attr::state::TaskSched::new(),
            cancel: super::cancel_state::CancelState::new(),
            worker_call: super::sys::abortable::Handle::new(),
        });
        let task: &'static mut Task = Box::leak(t);
        let base = task as *const Task as usize;
        let name = task.name_bytes().as_ptr() as usize - base;
        let record = task as *mut Task;
        super::unwind::debugger::note_allocated(
            record.cast(),
            || super::unwind::debugger::Offsets {
                allocated_before: core::mem::offset_of!(Task, allocated_before),
                live: core::mem::offset_of!(Task, debug_live),
                tid: core::mem::offset_of!(Task, tid),
                name,
                state: core::mem::offset_of!(Task, state),
                switched_out_at: core::mem::offset_of!(Task, switched_out_at),
                waiting_for: core::mem::offset_of!(Task, waiting_for),
                is_main: core::mem::offset_of!(Task, is_main),
            },
            // SAFETY: the record was just leaked and is not published yet: we have it to ourselves.
            |before| unsafe { (*record).allocated_before = before.cast() },
        );
        // SAFETY: leaked just above, never freed.
        TaskRef(unsafe { NonNull::new_unchecked(record) })
    }

    /// The thread's glibc descriptor; its address is the thread's `pthread_t`.
    #[inline]
    pub fn tcb(&self) -> Tcb {
        self.tcb.get()
    }

    /// Gives a pooled task record a new descriptor.
    ///
    /// # Safety
    /// The task must be free (in no queue, no thread).
    pub unsafe fn set_tcb(&self, tcb: Tcb) {
        self.tcb.set(tcb);
    }

    /// Installs the coroutine to run; the task must not be running.
    ///
    /// # Safety
    /// No worker may be running or finishing this task.
    pub unsafe fn set_coroutine(&self, co: Co, bounds: StackBounds) {
        self.stack.set(bounds);
        self.switched_out_at[0].store(0, Ordering::Relaxed);
        // SAFETY: exclusive access per the contract.
        unsafe { *self.co.get() = Some(co) };
    }

    /// # Safety
    /// Only the worker that owns the task right now (about to resume or finishing it) may call this.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn coroutine(&self) -> &mut Option<Co> {
        // SAFETY: exclusive access per the contract.
        unsafe { &mut *self.co.get() }
    }

    pub fn set_yielder(&self, y: &Yielder<(), Switch>) {
        self.yielder.set(y as *const _);
    }

    /// The registers a walk of this parked coroutine's stack starts from (None before its first switch).
    pub fn switched_out_regs(&self) -> Option<super::unwind::Regs> {
        let [pc, sp, bp] = self.switched_out_at.each_ref().map(|a| a.load(Ordering::Relaxed));
        (pc != 0).then_some(super::unwind::Regs { pc, sp, bp })
    }

    pub fn stack_bounds(&self) -> StackBounds {
        self.stack.get()
    }

    /// Switches from this coroutine back to its worker. Must run on this task's own stack. The caller
    /// delivers the signals that came meanwhile (`park::resumed`).
    pub fn switch_out(&self, why: Switch) {
        let y = self.yielder.get();
        let fp = super::preempt::state::FpControl::save();
        let here = super::unwind::capture_here();
        for (slot, v) in self.switched_out_at.iter().zip([here.pc, here.sp, here.bp]) {
            slot.store(v, Ordering::Relaxed);
        }
        self.cpu.count_switch(why == Switch::Park);
        // SAFETY: the yielder lives at the bottom of this coroutine's stack for its whole life, and we are
        // running on that stack.
        unsafe { (*y).suspend(why) };
        fp.restore();
        if why == Switch::Park {
            self.cancel.after_park(self.last_wake.get() == Wake::Interrupted);
        }
    }

    pub fn name_bytes(&self) -> &[u8] {
        // Lock-free read for the fault handler: names are at most 15 bytes and a torn read is harmless.
        // SAFETY: the array lives as long as the task.
        let raw = unsafe { &*(self.name.data_ptr()) };
        let n = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        &raw[..n]
    }

    pub fn name(&self) -> [u8; 16] {
        *self.name.lock()
    }

    pub fn set_name(&self, name: &[u8]) {
        let mut n = [0u8; 16];
        let len = name.len().min(15);
        n[..len].copy_from_slice(&name[..len]);
        *self.name.lock() = n;
    }

    #[inline]
    pub fn generation(&self) -> u32 {
        (self.state.load(Ordering::Acquire) >> 32) as u32
    }

    /// Begins a park: a new generation in phase PARKING. Returns the generation wakers must name. The
    /// caller (`park::Parking::begin`) then arms it for cancellation (`CancelState::on_park`).
    pub fn begin_park(&self) -> u32 {
        // u32::MAX is skipped so that `park + 1` (see `interruptible`) is never 0.
        let park = match self.generation().wrapping_add(1) {
            u32::MAX => 0,
            g => g,
        };
        self.state.store(((park as u64) << 32) | PARKING as u64, Ordering::Release);
        park
    }

    /// Called by the worker after the coroutine switched out with `Switch::Park`. Returns true if a waker
    /// already came (the task must be queued now).
    pub fn finish_park(&self) -> bool {
        let cur = self.state.load(Ordering::Acquire);
        let park = cur & !(u32::MAX as u64);
        match self.state.compare_exchange(
            park | PARKING as u64,
            park | PARKED as u64,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => false,
            Err(now) => {
                debug_assert_eq!(now as u32 & PHASE_MASK, NOTIFIED);
                let why = now as u32 & (TIMED_OUT | INTERRUPTED);
                self.state.store(park | (RUNNABLE | why) as u64, Ordering::Release);
                true
            }
        }
    }

    /// Tries to end park `park`. Returns true if the caller must queue the task (it was fully parked);
    /// false if the park already ended or the worker will queue it.
    pub fn try_wake(&self, park: u32, why: Wake) -> (bool, bool) {
        let timed = why.bits();
        let g = (park as u64) << 32;
        loop {
            let cur = self.state.load(Ordering::Acquire);
            if cur & !(u32::MAX as u64) != g {
                return (false, false);
            }
            let (next, queue) = match cur as u32 & PHASE_MASK {
                PARKING => (NOTIFIED | timed, false),
                PARKED => (RUNNABLE | timed, true),
                _ => return (false, false),
            };
            if self.state.compare_exchange(cur, g | next as u64, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                return (true, queue);
            }
        }
    }

    /// Claims a fully parked task for a moment without resuming it (to run a signal handler in its
    /// context): it goes back to PARKING, so a waker that comes meanwhile leaves the queueing to the
    /// claimer, who ends the claim with [`Task::finish_park`]. False if it is not parked now.
    pub fn claim_parked(&self) -> bool {
        let cur = self.state.load(Ordering::Acquire);
        if cur as u32 & PHASE_MASK != PARKED {
            return false;
        }
        let g = cur & !(u32::MAX as u64);
        self.state.compare_exchange(cur, g | PARKING as u64, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Marks the task running (by the worker about to resume it); returns why its last park ended.
    pub fn mark_running(&self) -> Wake {
        let cur = self.state.load(Ordering::Acquire);
        self.state.store((cur & !(u32::MAX as u64)) | RUNNING as u64, Ordering::Release);
        Wake::from_bits(cur as u32)
    }

    /// Marks a task that yielded (or is new) as queued.
    pub fn set_runnable(&self) {
        let cur = self.state.load(Ordering::Acquire);
        self.state.store((cur & !(u32::MAX as u64)) | RUNNABLE as u64, Ordering::Release);
    }
}
