//! A worker is one OS thread that runs coroutines. Its record is reached through the GS base (never
//! FS-relative TLS, since FS belongs to whichever coroutine runs), so hooks can ask "am I a coroutine, and
//! which?" with one instruction.
//!
//! The worker's own context (the loop below) runs with the worker's own TCB in FS; resuming a coroutine
//! loads the coroutine's TCB, and the switch back restores the worker's.

use super::scheduler::Scheduler;
use super::signals::accepted;
use super::signals::handlers;
use super::signals::held;
use super::signals::overflow;
use super::signals::set as sigset;
use super::sys::{fsgs, futex, time};
use super::task::{Switch, TaskRef};
use core::cell::Cell;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use corosensei::CoroutineResult;

/// What a worker is doing, as far as the threads that would wake it are concerned (its [`SleepWord`]).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sleep {
    /// Running coroutines or its scheduling loop.
    Awake,
    /// Asleep on its futex: woken by a futex wake on the word.
    Sleeping,
    /// A waker claimed it from Sleeping or SleepingInPoll and is waking it.
    Notified,
    /// Asleep in epoll_wait: woken through the netpoller's eventfd.
    SleepingInPoll,
    /// A spare worker no longer needed: asleep until the monitor revives it (never woken for ordinary work).
    Retired,
    /// Stepped aside from a lock convoy for a while (see `convoy`): not woken for ordinary work either.
    SittingOut,
}

/// A worker's [`Sleep`] state, in the atomic word its futex sleeps wait on. Every access is the one
/// atomic operation on the word that it names (no cost over a bare `AtomicU32`).
pub struct SleepWord(AtomicU32);

impl SleepWord {
    const fn new(state: Sleep) -> SleepWord {
        SleepWord(AtomicU32::new(state as u32))
    }

    #[inline(always)]
    pub fn store(&self, state: Sleep, order: Ordering) {
        self.0.store(state as u32, order);
    }

    /// Whether the worker is in `state`.
    #[inline(always)]
    pub fn is(&self, state: Sleep, order: Ordering) -> bool {
        self.0.load(order) == state as u32
    }

    /// Moves the worker from `from` to `to` (SeqCst) if it is in `from`: whether it was.
    #[inline(always)]
    pub fn claim(&self, from: Sleep, to: Sleep) -> bool {
        self.0.compare_exchange(from as u32, to as u32, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }

    /// The state now (for reports; None for a value no state has, which no store makes).
    pub fn get(&self, order: Ordering) -> Option<Sleep> {
        const STATES: [Sleep; 6] =
            [Sleep::Awake, Sleep::Sleeping, Sleep::Notified, Sleep::SleepingInPoll, Sleep::Retired, Sleep::SittingOut];
        STATES.get(self.0.load(order) as usize).copied()
    }

    /// Sleeps on the word while the worker is in `state`, until `deadline` (monotonic ns) if any: as
    /// `futex::wait`.
    pub fn wait(&self, state: Sleep, deadline: Option<u64>) -> bool {
        futex::wait(&self.0, state as u32, deadline)
    }

    /// Wakes the worker's futex sleep.
    pub fn wake(&self) {
        futex::wake(&self.0, 1);
    }
}
/// Scheduling rounds between non-blocking netpoller checks while there is other work.
const POLL_EVERY: u32 = 61;

#[repr(C)]
pub struct Worker {
    pub id: usize,
    /// The coroutine this worker is running, or null in the worker's own context. Atomic only so that
    /// the monitor may read it; relaxed accesses compile to plain moves.
    current: AtomicPtr<super::task::Task>,
    /// Coroutines resumed so far (written by the worker only): the monitor's sign of progress.
    pub switches: AtomicU32,
    /// Coroutines it resumed that ran on another worker last time (written by the worker only, for the
    /// statistics): per worker, since a shared counter's locked add at a switch in two of five made every
    /// worker's switches contend for its line.
    pub migrations: AtomicU64,
    /// Parks of the coroutines it ran, by reason, counted as they switch out (for the statistics; per
    /// worker for the same reason).
    pub parks: [AtomicU64; super::wait_reason::WaitReason::COUNT],
    /// Set by the monitor when the running coroutine has kept this worker too long; cleared by the worker.
    pub stalled: AtomicBool,
    /// When the current stall began and where (see the monitor).
    pub stall: super::monitor::stall::StallRecord,
    /// FS base of the worker's own context.
    own_tcb: Cell<usize>,
    /// The descriptor glibc's thread list has for this OS thread (its tid there): the own TCB, but for
    /// worker 0 the initial TCB, which the main coroutine carries. glibc's set*id signal handler must run
    /// on it (see `signals::setxid`).
    glibc_tcb: Cell<usize>,
    pub sleep: SleepWord,
    /// Depth of program signal handlers running on this worker, the task they interrupted and the stack
    /// pointer at the outermost one's entry (to notice a handler left by longjmp).
    handler_depth: Cell<u32>,
    handler_task: Cell<*mut super::task::Task>,
    handler_sp: Cell<usize>,
    /// The signal mask now in the kernel for this OS thread: the running coroutine's, or while idle the
    /// signals no coroutine accepts (see `signals`).
    kernel_mask: Cell<u64>,
    /// True while the signals the kernel delivers on this worker are for the code running now, whatever
    /// the routing rules: one the worker raises for the running coroutine (or its own context), or
    /// pending ones the running coroutine just unblocked.
    pub directed_delivery: Cell<bool>,
    /// The rseq area the kernel updates for this OS thread (inside the TCB glibc gave it at start).
    rseq_area: Cell<usize>,
    /// Kernel tid of the worker's OS thread (for directing signals at it).
    pub os_tid: AtomicI32,
    /// Doorbells sent to this worker and not yet rung: tgkills that only tell the coroutine running here to
    /// take the held signals routed to it (see `signals::routing`).
    pub doorbells: AtomicU32,
    /// Doorbells taken on this worker, and the signals whose handlers ran here as directed deliveries:
    /// what [`Worker::raise_directed`] looks at to tell a raise the kernel merged into a doorbell.
    pub doorbells_taken: Cell<u32>,
    pub redelivered: Cell<u64>,
    pub queue: super::scheduler::RunQueue,
    /// While the kernel mask is an idle worker's: the `signals::accepted` generation it was computed from.
    /// NOT_IDLE_MASK while the worker runs a coroutine (its mask is that coroutine's) or is retired (all
    /// blocked), so a mask change that must not leave a stale idle mask behind knows whom to wait for.
    pub idle_mask_generation: core::sync::atomic::AtomicU64,
    pub convoy: super::convoy::Detector,
    pub preempt: super::preempt::state::WorkerState,
    /// Stamps and checkpoints for the CPU time of the coroutines it runs.
    pub cpu: super::cputime::account::WorkerCpu,
    /// While the worker wakes the waiters of a poll's ready fds: the coroutines made runnable, queued
    /// together afterwards (see `Scheduler::wake_ready`). Its capacity is kept between polls.
    batch: core::cell::UnsafeCell<Vec<TaskRef>>,
    collecting: Cell<bool>,
}

/// `Worker::idle_mask_generation` while the kernel mask is not an idle worker's.
pub const NOT_IDLE_MASK: u64 = u64::MAX;

// SAFETY: the Cells are only touched by the worker's own OS thread; the rest is atomic or locked.
unsafe impl Sync for Worker {}

impl Worker {
    pub fn new(id: usize) -> Worker {
        Worker {
            id,
            current: AtomicPtr::new(core::ptr::null_mut()),
            switches: AtomicU32::new(0),
            migrations: AtomicU64::new(0),
            parks: [const { AtomicU64::new(0) }; super::wait_reason::WaitReason::COUNT],
            stalled: AtomicBool::new(false),
            stall: super::monitor::stall::StallRecord::new(),
            own_tcb: Cell::new(0),
            glibc_tcb: Cell::new(0),
            sleep: SleepWord::new(Sleep::Awake),
            os_tid: AtomicI32::new(0),
            doorbells: AtomicU32::new(0),
            handler_depth: Cell::new(0),
            rseq_area: Cell::new(0),
            directed_delivery: Cell::new(false),
            doorbells_taken: Cell::new(0),
            redelivered: Cell::new(0),
            kernel_mask: Cell::new(0),
            handler_task: Cell::new(core::ptr::null_mut()),
            handler_sp: Cell::new(0),
            queue: super::scheduler::RunQueue::new(),
            idle_mask_generation: core::sync::atomic::AtomicU64::new(NOT_IDLE_MASK),
            convoy: super::convoy::Detector::new(),
            preempt: super::preempt::state::WorkerState::new(),
            cpu: super::cputime::account::WorkerCpu::new(),
            batch: core::cell::UnsafeCell::new(Vec::new()),
            collecting: Cell::new(false),
        }
    }
}

impl Worker {
    /// True while this worker collects woken coroutines (called on its own OS thread). Not for code that
    /// a signal handler runs meanwhile in a coroutine's context (see `in_context_of`): it queues as usual.
    #[inline]
    pub fn collecting(&self) -> bool {
        self.collecting.get() && self.current.load(Ordering::Relaxed).is_null()
    }

    /// Wake-ups pushed from here on are collected, not queued (on the worker's own OS thread, in its own
    /// context).
    pub fn begin_collecting(&self) {
        self.collecting.set(true);
    }

    /// A coroutine made runnable while collecting.
    pub fn collect(&self, task: TaskRef) {
        // SAFETY: only the worker's own OS thread touches the batch, and not re-entrantly: `collect` and
        // `end_collecting` do not call each other, and a signal handler's code runs in a coroutine's
        // context, where `collecting` is false.
        unsafe { (*self.batch.get()).push(task) };
    }

    /// Ends collecting: hands the collected coroutines to `queue` and returns what it returns.
    pub fn end_collecting(&self, queue: impl FnOnce(&[TaskRef]) -> usize) -> usize {
        self.collecting.set(false);
        // SAFETY: as in `collect`; collecting is over, so nothing pushes to the batch meanwhile.
        let batch = unsafe { &mut *self.batch.get() };
        let r = queue(batch);
        batch.clear();
        r
    }

    /// A program signal handler starts on this worker (called from signal context).
    pub fn enter_handler(&self) {
        let d = self.handler_depth.get();
        if d == 0 {
            self.handler_task.set(self.current.load(Ordering::Relaxed));
            self.handler_sp.set(stack_pointer());
        }
        self.handler_depth.set(d + 1);
    }

    /// The running coroutine changed its signal mask (already applied to this OS thread).
    pub fn mask_changed(&self, mask: u64) {
        self.kernel_mask.set(mask);
    }

    /// The signal mask in the kernel for this OS thread (called on the worker's own thread).
    pub fn kernel_mask(&self) -> u64 {
        self.kernel_mask.get()
    }

    /// Puts `mask` in the kernel for this OS thread (called on the worker's own thread).
    pub fn set_kernel_mask(&self, mask: u64) {
        super::sys::sigmask(Some(mask));
        self.kernel_mask.set(mask);
    }

    /// Raises `sigs` on this OS thread, with `mask` in force, as deliveries directed at the code running now
    /// (the wrapper runs their handlers here rather than holding them; see `signals::routing`), in the order
    /// and each with the mask the kernel would give them natively, unblocked together
    /// ([`handlers::nesting_order`]). Called on the worker's own thread.
    pub fn raise_directed(&self, task: &super::signals::state::TaskSignals, sigs: u64, mask: u64) {
        self.raise_nested(task, sigs, mask, mask);
    }

    /// [`Worker::raise_directed`] for signals a temporary mask `mask` lets through: the first handler's
    /// return puts back `restore` (the thread's own mask), and what that blocks and no handler took stays
    /// pending for the thread. Each signal is raised alone, unblocked, so none waits in the kernel for
    /// this OS thread (which other coroutines share) while a handler runs.
    pub fn raise_nested(&self, task: &super::signals::state::TaskSignals, sigs: u64, mask: u64, restore: u64) {
        let order = handlers::nesting_order(task, sigs, mask, restore);
        if order.left != 0 {
            task.pending.fetch_or(order.left, Ordering::AcqRel);
        }
        let before = self.kernel_mask();
        for step in order.steps() {
            if self.kernel_mask() != step.mask {
                self.set_kernel_mask(step.mask);
            }
            let sig = step.sig;
            self.directed_delivery.set(true);
            let doorbells = self.doorbells_taken.get();
            self.redelivered.set(self.redelivered.get() & !sigset::bit(sig));
            let raised = held::raise_here(*step, task);
            // A doorbell (a tgkill of the same standard signal) that reached this thread during the raise
            // is one pending signal with it in the kernel: when the doorbell was taken and the handler did
            // not run, the raise was swallowed; once more, or it is lost.
            if sig < 32 && self.doorbells_taken.get() != doorbells && self.redelivered.get() & sigset::bit(sig) == 0 {
                held::raise_again(sig, raised);
            }
            self.directed_delivery.set(false);
        }
        if self.kernel_mask() != before {
            self.set_kernel_mask(before);
        }
    }

    /// Runs `f` (from this worker's own context) in the context of `task`, a parked coroutine claimed
    /// with `Task::claim_parked`: its TCB in FS and it as the current coroutine, on the worker's stack.
    pub fn in_context_of(&self, task: TaskRef, f: impl FnOnce()) {
        let prev = self.current.swap(task.0.as_ptr(), Ordering::Relaxed);
        // SAFETY: the task is claimed, so no other worker resumes it or uses its TCB meanwhile; the
        // worker's own TCB is restored before returning.
        unsafe { fsgs::set_fs_base(task.tcb().0) };
        f();
        // SAFETY: as above.
        unsafe { fsgs::set_fs_base(self.own_tcb.get()) };
        self.current.store(prev, Ordering::Relaxed);
    }

    /// The coroutine whose context the calling code runs in (its TCB in FS), or None in the worker's own
    /// context, including the moments between coroutines. Async-signal-safe.
    pub fn task_in_context(&self) -> Option<TaskRef> {
        let running = core::ptr::NonNull::new(self.current.load(Ordering::Relaxed)).map(TaskRef)?;
        (running.tcb().0 == fsgs::thread_self()).then_some(running)
    }

    /// True while a program signal handler runs on the current coroutine below stack pointer `sp` (for
    /// the preemption signal's handler, which runs on the alternate stack).
    pub fn in_program_handler(&self, sp: usize) -> bool {
        self.handler_depth.get() != 0
            && self.handler_task.get() == self.current.load(Ordering::Relaxed)
            && sp < self.handler_sp.get()
    }

    pub fn leave_handler(&self) {
        self.handler_depth.set(self.handler_depth.get().saturating_sub(1));
    }

    /// True while a program signal handler runs on the current coroutine. A handler left by longjmp is
    /// noticed by the stack pointer being above its entry point (or another task running) and forgotten.
    #[cold]
    fn in_handler_slow(&self) -> bool {
        if self.handler_task.get() == self.current.load(Ordering::Relaxed) && stack_pointer() < self.handler_sp.get() {
            return true;
        }
        self.handler_depth.set(0);
        false
    }
}

#[inline(always)]
fn stack_pointer() -> usize {
    let sp: usize;
    // SAFETY: reads rsp only.
    unsafe { core::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    sp
}

/// The worker the calling OS thread is, if any.
///
/// GS alone is not proof: a thread made by glibc's own `pthread_create` (a library that finds it with
/// `dlsym(RTLD_NEXT)`, as jemalloc does for its background threads) inherits its creator's GS. So the
/// calling thread's TCB must also be the worker's own or that of the coroutine it runs.
#[inline(always)]
pub fn current_worker() -> Option<&'static Worker> {
    let gs = fsgs::gs_base();
    if gs == 0 {
        return None;
    }
    // SAFETY: a nonzero GS is the address of a Worker, which lives for the whole process.
    let w = unsafe { &*(gs as *const Worker) };
    let me = fsgs::thread_self();
    let running = w.current.load(Ordering::Relaxed);
    // SAFETY: a non-null `current` points at a pooled task, never freed.
    if me == w.own_tcb.get() || (!running.is_null() && unsafe { (*running).tcb().0 } == me) { Some(w) } else { None }
}

/// The descriptor glibc's thread list has for the calling OS thread when it is a worker (see
/// `Worker::glibc_tcb`); None on any other thread, whose TCB in FS is that descriptor. Async-signal-safe.
pub fn glibc_tcb_of_this_worker() -> Option<usize> {
    current_worker().map(|w| w.glibc_tcb.get()).filter(|&t| t != 0)
}

/// Runs `f` (a libc call) in the calling worker's own context, its own TCB in FS, and gives its errno to
/// the calling coroutine: for glibc's set*id calls, which signal every OS thread glibc knows but the
/// caller's own, taken to be THREAD_SELF's. A coroutine's TCB is in no list glibc walks but the main
/// coroutine's, which is the initial OS thread's entry: from any other worker glibc would skip that OS
/// thread. In the worker's own context every OS thread but this one is signalled, and this one makes
/// the call itself. Outside a coroutine, just `f()`.
pub fn as_this_os_thread<R>(f: impl FnOnce() -> R) -> R {
    let Some(w) = current_worker().filter(|w| w.task_in_context().is_some()) else { return f() };
    let coroutine_tcb = fsgs::fs_base();
    // SAFETY: the worker's own TCB is valid on its own OS thread; the coroutine's is put back before
    // anything else runs in its context (no switch happens inside `f`, a plain libc call).
    unsafe { fsgs::set_fs_base(w.own_tcb.get()) };
    let r = f();
    // SAFETY: errno of the worker's own context, then of the coroutine's, each read/written in its context.
    unsafe {
        let e = *libc::__errno_location();
        fsgs::set_fs_base(coroutine_tcb);
        *libc::__errno_location() = e;
    }
    r
}

/// The coroutine the caller runs in, or None for plain threads, the worker's own context, a forked child,
/// or a shim that is off. This is the test every hook makes first.
#[inline(always)]
pub fn current_task() -> Option<TaskRef> {
    current_worker()?.current_task()
}

impl Worker {
    /// [`current_task`] for a caller that has already found its worker `self` ([`current_worker`]): the
    /// coroutine the caller runs in, None in the worker's own context or a handler's.
    #[inline(always)]
    pub fn current_task(&self) -> Option<TaskRef> {
        if self.handler_depth.get() != 0 && self.in_handler_slow() {
            return None;
        }
        core::ptr::NonNull::new(self.current.load(Ordering::Relaxed)).map(TaskRef)
    }

    /// The coroutine this worker runs right now (for the monitor, from another thread).
    pub fn running_task(&self) -> Option<TaskRef> {
        core::ptr::NonNull::new(self.current.load(Ordering::Relaxed)).map(TaskRef)
    }
}

/// The coroutine this worker was running when a signal arrived, handler or not (for overflow reports).
pub fn current_task_any_context() -> Option<TaskRef> {
    let w = current_worker()?;
    core::ptr::NonNull::new(w.current.load(Ordering::Relaxed)).map(TaskRef)
}

/// Raises, on the current worker, the signals pthread_kill (or routing) left pending on `task` (the
/// running coroutine): their handlers run in its context. They do not count as process signals for EINTR
/// purposes: the sender already interrupted the target's wait. The one place signals pending for a
/// coroutine are delivered as it resumes (`park::resumed`), and after a mask change unblocks them.
pub fn deliver_pending(task: &super::task::Task) -> bool {
    let mask = task.signals.resume_mask();
    deliver_pending_unblocked(task, mask, mask)
}

/// Raises the pending signals that `mask` does not block (the rest stay pending, as in the kernel), with
/// `mask` in force on the worker meanwhile (a pselect-style wait's temporary mask), so each handler runs
/// with the mask it would natively; the first handler's return puts back `restore` (see
/// [`Worker::raise_nested`]). Returns true if any was raised.
pub fn deliver_pending_unblocked(task: &super::task::Task, mask: u64, restore: u64) -> bool {
    let Some(w) = current_worker() else { return false };
    let bits = task.signals.take_unblocked(mask);
    if bits == 0 {
        return false;
    }
    w.raise_nested(&task.signals, bits, mask, restore);
    true
}

/// The check of the timers on a thread's CPU-time clock (the policy's, `cputime::timers`, set once when
/// the first such timer is made): run at a switch-out of a thread with one armed (`true`) and by the
/// monitor for a running one; gives the CPU time until the next may expire.
static CPU_TIMER_CHECK: std::sync::OnceLock<fn(TaskRef, bool) -> Option<u64>> = std::sync::OnceLock::new();

pub fn set_cpu_timer_check(check: fn(TaskRef, bool) -> Option<u64>) {
    let _ = CPU_TIMER_CHECK.set(check);
}

/// The monitor's look at running thread `task`: its CPU-time timers that expired fire; the CPU time
/// until the next may (None: none armed).
pub fn check_cpu_timers(task: TaskRef) -> Option<u64> {
    if !task.cpu.timer_armed() {
        return None;
    }
    CPU_TIMER_CHECK.get().and_then(|check| check(task, false))
}

/// Prepares the calling OS thread to be worker `w`: GS, alternate signal stack, own TCB.
/// `glibc_tcb` is the TCB glibc set up for this OS thread (where its rseq area is registered).
pub fn enter(w: &'static Worker, glibc_tcb: usize) {
    if let Some((offset, _)) = super::identity::rseq_registration() {
        w.rseq_area.set(glibc_tcb.wrapping_add_signed(offset));
    }
    // SAFETY: the worker record lives for the process.
    unsafe { fsgs::set_gs_base(w as *const Worker as usize) };
    w.own_tcb.set(fsgs::fs_base());
    w.glibc_tcb.set(glibc_tcb);
    w.os_tid.store(super::sys::gettid(), Ordering::Relaxed);
    w.kernel_mask.set(super::sys::sigmask(None));
    w.cpu.started();
    w.queue.give_ring();
    overflow::alt_stack_for_this_thread();
}

/// In a forked child: the kernel's rseq registration for this OS thread still points into the TCB of the
/// worker that forked, which glibc in the child treats as a dead thread's and may reuse or unmap (the
/// kernel would then kill the child with SIGSEGV). Unregister it; glibc's sched_getcpu falls back to the
/// system call for our TCBs.
pub fn forget_rseq_after_fork() {
    let Some(w) = current_worker() else { return };
    let area = w.rseq_area.get();
    // The length glibc registered (at least 32 bytes, more than the feature size it publishes); 0 when
    // it registered none (glibc 2.31, or rseq turned off).
    let size = super::identity::rseq_registration().map_or(0, |(_, len)| len as usize);
    if area != 0 && size != 0 {
        let _ = super::sys::process::rseq_unregister(area, size);
    }
}

/// Runs the scheduling loop forever on worker `w` (the calling OS thread).
pub fn run(sched: &'static Scheduler, w: &'static Worker) -> ! {
    let mut expired = Vec::new();
    // A countdown, not a modulo of a round count: a decrement and a branch per round.
    let mut until_poll = POLL_EVERY;
    loop {
        until_poll -= 1;
        if until_poll == 0 {
            until_poll = POLL_EVERY;
            if super::io::netpoll::exists() {
                sched.poll_net(0);
            }
        }
        sched.fire_timers(&mut expired);
        if held::routing_needed() {
            held::route_held();
        }
        if w.stalled.load(Ordering::Relaxed) {
            // Marked while between coroutines: the stall is over.
            sched.end_stall(w);
        }
        // A spare whose help is no longer needed steps back even under load (under load it would never
        // fall idle, and one worker too many on the CPUs costs every coroutine), leaving its queue to
        // the others.
        if w.id >= sched.base && sched.should_retire(w) {
            sched.hand_off_queue(w);
            retire(sched, w);
            continue;
        }
        if let Some(task) = sched.next_task(w) {
            if let Some(until) = run_one(sched, w, task) {
                sit_out(w, until);
            }
            continue;
        }
        // No non-blocking poll first: a poll(0) here could only make a system call while no worker waits
        // in epoll_wait, and then idle() makes this worker that waiter, whose epoll_wait returns at once
        // if readiness is pending. At low load the extra poll found nothing on almost every round trip.
        idle(sched, w);
    }
}

/// A retired spare sleeps until the monitor revives it, which no signal-mask change does: it blocks every
/// signal meanwhile, so none can land on it (it takes a mask again when it runs or idles).
fn retire(sched: &Scheduler, w: &Worker) {
    let all = sigset::runtime_thread_mask();
    if w.kernel_mask.get() != all {
        w.set_kernel_mask(all);
    }
    w.idle_mask_generation.store(NOT_IDLE_MASK, Ordering::Release);
    w.cpu.before_sleep();
    sched.retire(w);
}

fn idle(sched: &Scheduler, w: &Worker) {
    if sched.should_retire(w) {
        retire(sched, w);
        return;
    }
    // One idle worker waits in epoll_wait (so fd readiness wakes it); the others on their futex.
    let poll_flag = super::io::netpoll::waiting_flag()
        .filter(|f| f.compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed).is_ok());
    let state = if poll_flag.is_some() { Sleep::SleepingInPoll } else { Sleep::Sleeping };
    w.sleep.store(state, Ordering::SeqCst);
    set_idle_mask(w);
    // The poller may have left since we looked (a spare that then retired): some idle worker must wait
    // in epoll_wait, or readiness is never collected. Go round and take the flag instead of sleeping.
    // (A retiring poller wakes Sleeping workers after its own store; SeqCst on both sides.)
    let poller_left =
        poll_flag.is_none() && super::io::netpoll::waiting_flag().is_some_and(|f| !f.load(Ordering::SeqCst));
    let mut list = super::io::netpoll::EventList::new();
    let mut ready: &[super::io::netpoll::Event] = &[];
    if !poller_left && !sched.work_pending() && !held::routing_needed() {
        let (deadline, _watch) = sched.idle_deadline();
        // The clock is read only when a timer is pending or a hand-off waits out its grace period.
        let now = if deadline.is_some() { time::monotonic_ns() } else { 0 };
        if deadline.is_none_or(|d| d > now) {
            w.cpu.before_sleep();
            if poll_flag.is_some() {
                let ms = deadline.map_or(-1, |d| ((d - now).div_ceil(1_000_000)).min(i32::MAX as u64) as i32);
                ready = super::io::netpoll::poll(ms, &mut list);
            } else {
                w.sleep.wait(Sleep::Sleeping, deadline);
            }
        }
    }
    w.sleep.store(Sleep::Awake, Ordering::SeqCst);
    if let Some(f) = poll_flag {
        f.store(false, Ordering::SeqCst);
    }
    // Awake before it wakes them: a wake-up of another worker must not pick this one, still marked asleep
    // in epoll_wait, and signal the eventfd for nothing.
    sched.wake_ready(ready);
}

/// Worker `w` sits out a lock convoy (see `convoy`) until `deadline` or until
/// `Scheduler::call_back_sitting_out`: asleep in state `Sleep::SittingOut`, which no ordinary wake-up looks for.
/// It takes an idle worker's signal mask once that state is published (a later change of the accepted
/// signals calls it back).
fn sit_out(w: &Worker, deadline: u64) {
    let start = time::monotonic_ns();
    w.sleep.store(Sleep::SittingOut, Ordering::SeqCst);
    w.cpu.before_sleep();
    set_idle_mask(w);
    while w.sleep.is(Sleep::SittingOut, Ordering::Acquire) {
        // A process signal that landed here (an idle worker's mask) and waits to be routed ends it too.
        if !w.sleep.wait(Sleep::SittingOut, Some(deadline))
            || time::monotonic_ns() >= deadline
            || held::routing_needed()
        {
            break;
        }
    }
    w.sleep.store(Sleep::Awake, Ordering::SeqCst);
    let end = time::monotonic_ns();
    let stats = super::stats::get();
    if w.convoy.end_sit_out(start, end) {
        super::stats::count(&stats.convoy_loaded);
    }
    stats.convoy_sit_out_ns.fetch_add(end - start, Ordering::Relaxed);
}

/// An idle worker lets through the signals some coroutine accepts, and no others (those stay pending in
/// the kernel, as when every thread blocks them). Called after the sleep state is published: a later
/// change wakes this worker.
fn set_idle_mask(w: &Worker) {
    // The generation is read first: a mask computed from a newer accepted set is only ever reported as
    // older, never the other way round.
    let generation = accepted::accepted_generation();
    let idle_mask = accepted::idle_worker_mask();
    if w.kernel_mask.get() != idle_mask {
        w.set_kernel_mask(idle_mask);
    }
    w.idle_mask_generation.store(generation, Ordering::Release);
}

/// Runs `task` until it switches out. Returns a deadline when the worker is to sit out a lock convoy.
fn run_one(sched: &Scheduler, w: &Worker, task: TaskRef) -> Option<u64> {
    let why = task.mark_running();
    task.last_wake.set(why);
    w.current.store(task.0.as_ptr(), Ordering::Relaxed);
    w.switches.store(w.switches.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    if task.last_worker.load(Ordering::Relaxed) != w.id {
        task.last_worker.store(w.id, Ordering::Relaxed);
        w.migrations.store(w.migrations.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
    // Most programs never change masks, so this costs a compare; a system call only when masks differ.
    let mask = task.signals.mask.get();
    if mask != w.kernel_mask.get() {
        super::sys::sigmask(Some(mask));
        w.kernel_mask.set(mask);
    }
    if w.idle_mask_generation.load(Ordering::Relaxed) != NOT_IDLE_MASK {
        w.idle_mask_generation.store(NOT_IDLE_MASK, Ordering::Release);
    }
    w.cpu.switch_in(&task.cpu);
    // SAFETY: this worker dequeued the task, so it alone owns it until it switches out; its TCB is
    // initialised.
    let result = unsafe {
        fsgs::set_fs_base(task.tcb().0);
        let co = task.coroutine().as_mut().expect("queued task has a coroutine");
        let r = co.resume(());
        fsgs::set_fs_base(w.own_tcb.get());
        r
    };
    w.cpu.switch_out(&task.cpu);
    if task.cpu.timer_armed()
        && let Some(check) = CPU_TIMER_CHECK.get()
    {
        check(task, true);
    }
    w.current.store(core::ptr::null_mut(), Ordering::Relaxed);
    if w.stalled.load(Ordering::Relaxed) {
        sched.end_stall(w);
    }
    check_canary(&task);
    // Taken as a hand-off by this worker while its waker ran: the run's end says whether that helped.
    let taken = task.handoff_taken.get();
    if taken {
        task.handoff_taken.set(false);
        if !matches!(result, CoroutineResult::Yield(Switch::Park)) {
            sched.handoff_run_ended(false);
        }
    }
    match result {
        CoroutineResult::Yield(Switch::Yield) => {
            task.set_runnable();
            sched.push_local(w, task);
        }
        CoroutineResult::Yield(Switch::Preempted) => {
            task.set_runnable();
            sched.push_preempted(task);
        }
        CoroutineResult::Yield(Switch::Park) => {
            let reason = task.park_reason.take();
            if let Some(r) = reason {
                let n = &w.parks[r as usize];
                n.store(n.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            }
            let lock = reason.is_some_and(super::wait_reason::WaitReason::is_lock_wait);
            let lock_waited_last = task.lock_waited_last.replace(lock);
            if lock && lock_waited_last {
                count_rewait(task.last_wake.get());
            }
            if taken {
                sched.handoff_run_ended(lock);
            }
            if task.finish_park() {
                sched.push_local(w, task);
            }
            let now = w.convoy.lock_park(lock, lock_waited_last)?;
            return sched.convoy_hand_off(w, now);
        }
        // The thread layer's end of a thread (see `task::Finish`).
        CoroutineResult::Return(finish) => finish(task),
    }
    None
}

/// A coroutine woken from a lock wait (`why`) waits for a lock again without having parked for anything
/// else: counted, cold, for the statistics.
#[cold]
fn count_rewait(why: super::task::Wake) {
    let s = super::stats::get();
    super::stats::count(if why == super::task::Wake::TimedOut {
        &s.lock_rewaits_after_timeout
    } else {
        &s.lock_rewaits
    });
}

fn check_canary(task: &TaskRef) {
    // SAFETY: the worker owns the task between resume and requeue.
    let b = task.stack_bounds();
    let intact = !b.canary || super::stack::canary_intact_at(b.low);
    if !intact {
        overflow::report_overflow(task.name_bytes(), b.requested, b.size);
        // The neighbouring stack may be corrupt: stop now, as a guard page would have.
        // SAFETY: raising a signal has no preconditions.
        unsafe {
            libc::signal(libc::SIGSEGV, libc::SIG_DFL);
            libc::raise(libc::SIGSEGV);
        }
    }
}
