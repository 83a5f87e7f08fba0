//! Where runnable coroutines wait for a worker: a local queue per worker, a global queue for wake-ups that
//! come from outside the workers, and stealing between workers (safe because every coroutine carries its own
//! thread identity). Workers start lazily, only when there is work no running worker can take, and idle
//! workers sleep on a futex until work or the earliest timer arrives.
//!
//! Beyond the configured workers, the monitor may start *spare* workers while workers are stalled (see
//! [`super::monitor`]); a spare that falls idle while enough unstalled workers remain retires (sleeps until
//! revived), so the number of workers running coroutines stays at the configured count.

use super::io::{netpoll, ready};
use super::lock::Lock;
use super::run_ring::{self, Ring};
use super::sys::time;
use super::task::{TaskRef, Wake};
use super::timers::Timers;
use super::worker::{self, Sleep, Worker};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// A worker takes a preempted coroutine first on every this many picks, so that a steady stream of other
/// work never starves it (Go takes from its global queue on every 61st pick for the same reason).
const PREEMPTED_EVERY: u32 = 61;

/// A worker takes from the global queue first on every this many picks (half-way between two of
/// [`PREEMPTED_EVERY`]'s), as Go does: a coroutine that yields in a loop, or two that wake each other,
/// keep the worker's own queue from ever running dry, and would starve what waits in the global queue
/// (a spare worker that retires hands its queue there).
const GLOBAL_EVERY: u32 = PREEMPTED_EVERY;

/// The longest a hand-off is held (a waker that runs on longer than the monitor's stall threshold is
/// stalled, and its hand-offs free to take anyway).
const MAX_GRACE_NS: u64 = 4_000_000;

/// The shortest sleep of an idle worker waiting for a grace period to end (a hand-off's waker that has just
/// parked makes the remaining time 0; the next look is then not worth a system call sooner).
const MIN_HELD_WAIT_NS: u64 = 20_000;

pub struct Scheduler {
    /// The configured workers first, then room for spares.
    pub workers: &'static [Worker],
    /// How many workers run coroutines when none is stalled (ASYNCSHIM_WORKERS).
    pub base: usize,
    started: AtomicUsize,
    /// Spares asleep in `Sleep::Retired`, and workers the monitor marked stalled.
    retired: AtomicUsize,
    pub stalled: AtomicUsize,
    global: RunQueue,
    /// Coroutines preempted at the end of their slice (see `preempt`): taken when nothing else waits, or
    /// on every [`PREEMPTED_EVERY`]th pick of a worker.
    preempted: RunQueue,
    timers: Lock<Timers>,
    /// Earliest timer deadline (u64::MAX if none), readable without the lock.
    earliest: AtomicU64,
    spawning: Lock<()>,
    /// How far the coarse monotonic clock may lag the precise one.
    coarse_slack: u64,
    /// How long a worker's hand-offs stay out of thieves' reach while its coroutine runs on (see
    /// [`Self::may_take_held`]): from `ASYNCSHIM_HANDOFF_GRACE_US` (0: not at all) up to
    /// [`MAX_GRACE_NS`], as [`Self::handoff_run_ended`] finds taking them early futile or not.
    handoff_grace_ns: AtomicU64,
    min_grace_ns: u64,
    /// Idle workers asleep until a grace period ends (see [`Self::idle_deadline`]): while there is one, a
    /// new hand-off wakes nobody, since that worker looks again by then anyway.
    handoff_watchers: AtomicUsize,
}

static SCHEDULER: std::sync::OnceLock<Scheduler> = std::sync::OnceLock::new();

/// The process's scheduler; only called where the runtime is known to have started (a coroutine or a
/// worker exists).
#[inline]
pub fn get() -> &'static Scheduler {
    SCHEDULER.get().expect("scheduler started")
}

/// Makes the process's scheduler, once, at start-up; None if one exists already.
pub fn init(base: usize, max_spares: usize, handoff_grace_ns: u64) -> Option<&'static Scheduler> {
    SCHEDULER.set(Scheduler::new(base, max_spares, handoff_grace_ns)).ok()?;
    Some(get())
}

impl Scheduler {
    pub fn new(base: usize, max_spares: usize, handoff_grace_ns: u64) -> Scheduler {
        let workers: Vec<Worker> = (0..base + max_spares).map(Worker::new).collect();
        Scheduler {
            workers: Box::leak(workers.into_boxed_slice()),
            base,
            started: AtomicUsize::new(1),
            retired: AtomicUsize::new(0),
            stalled: AtomicUsize::new(0),
            global: RunQueue::new(),
            preempted: RunQueue::new(),
            timers: Lock::new(Timers::default()),
            earliest: AtomicU64::new(u64::MAX),
            spawning: Lock::new(()),
            coarse_slack: time::coarse_resolution_ns() * 2,
            handoff_grace_ns: AtomicU64::new(handoff_grace_ns),
            min_grace_ns: handoff_grace_ns,
            handoff_watchers: AtomicUsize::new(0),
        }
    }

    pub fn started(&self) -> usize {
        self.started.load(Ordering::Acquire)
    }

    /// Queues a runnable task: on the calling worker if there is one, else globally. A worker waking the
    /// waiters of a poll's ready fds collects them instead (see [`Self::poll_net`]).
    pub fn push(&self, task: TaskRef) {
        match worker::current_worker() {
            Some(w) if w.collecting() => w.collect(task),
            // A coroutine woke it: it runs next on this worker, as soon as the waker parks (Go's
            // `runnext`: a hand-off stays on the worker whose caches hold what it was handed), and no
            // other worker takes it while the waker's run is young (see `may_take_held`). Another worker
            // is still woken, to take it if the waker goes on computing.
            Some(w) if w.running_task().is_some() => {
                w.queue.push_next(task);
                if self.handoff_watchers.load(Ordering::SeqCst) == 0 || self.min_grace_ns == 0 {
                    self.notify();
                }
            }
            Some(w) => self.push_local(w, task),
            None => {
                self.global.push(task);
                self.notify();
            }
        }
    }

    /// Queues on worker `w`. If others are idle, one is woken to steal; if none is idle and more may start,
    /// one is started.
    pub fn push_local(&self, w: &Worker, task: TaskRef) {
        let was_empty = w.queue.push(task) == 1;
        // A worker in its own context with an empty queue runs the task next; others are needed only when
        // work piles up or when the pusher is a coroutine that keeps its worker busy.
        if !was_empty || worker::current_task().is_some() {
            self.notify();
        }
    }

    /// Collects fd readiness (`timeout_ms` as for `netpoll::poll`) and makes its waiters runnable. Returns
    /// the number of ready fds.
    pub fn poll_net(&self, timeout_ms: i32) -> usize {
        let mut list = netpoll::EventList::new();
        let ready = netpoll::poll(timeout_ms, &mut list);
        self.wake_ready(ready);
        ready.len()
    }

    /// Wakes the waiters of a poll's ready fds (`io::ready` turns each event into its fd's waiters). On a
    /// worker (in its own context) all of them are queued with one lock and at most one other worker is
    /// woken, and only when more than one coroutine became runnable: this worker runs the first itself,
    /// so a lone wake-up (a ping-pong connection) never costs another worker's futex wake and the cache
    /// misses of moving there. Elsewhere (the monitor) they go to the global queue one by one.
    pub fn wake_ready(&self, events: &[netpoll::Event]) {
        if events.is_empty() {
            return;
        }
        let Some(w) = worker::current_worker().filter(|w| w.current_task().is_none()) else {
            ready::wake(events);
            return;
        };
        w.begin_collecting();
        ready::wake(events);
        let queued = w.end_collecting(|tasks| w.queue.push_all(tasks));
        if queued > 1 {
            self.notify();
        }
    }

    /// Queues a coroutine preempted at the end of its slice, waking an idle worker for it.
    pub fn push_preempted(&self, task: TaskRef) {
        self.preempted.push(task);
        self.wake_sleeper();
    }

    fn notify(&self) {
        if self.wake_sleeper() {
            return;
        }
        if self.started() < self.base {
            self.start_worker();
        }
    }

    /// Wakes one idle worker (from its futex, or from epoll_wait through the netpoller's eventfd).
    ///
    /// Each state is read before it is swapped: under load every worker is awake and this is called for
    /// most pushes, and a compare-exchange, even a failing one, takes the other workers' state lines
    /// exclusive (they share a line with what a worker writes at every switch). The fence orders the
    /// caller's publication of work (a queued task, an earlier timer) before these reads, as the
    /// compare-exchanges did: a worker going to sleep stores its state (SeqCst) before it looks for work,
    /// so either it sees the work or we see it asleep.
    pub fn wake_sleeper(&self) -> bool {
        core::sync::atomic::fence(Ordering::SeqCst);
        let n = self.started();
        let swap = |w: &Worker, from: Sleep| w.sleep.is(from, Ordering::SeqCst) && w.sleep.claim(from, Sleep::Notified);
        for w in &self.workers[..n] {
            if swap(w, Sleep::Sleeping) {
                w.sleep.wake();
                super::stats::count(&super::stats::get().idle_wakeups);
                return true;
            }
        }
        for w in &self.workers[..n] {
            if swap(w, Sleep::SleepingInPoll) {
                netpoll::wake_waiter();
                super::stats::count(&super::stats::get().idle_wakeups);
                return true;
            }
        }
        false
    }

    fn start_worker(&self) -> bool {
        let Some(_g) = self.spawning.try_lock() else { return false };
        let id = self.started();
        if id >= self.workers.len() {
            return false;
        }
        let w = &self.workers[id] as *const Worker as *mut libc::c_void;
        // SAFETY: workers live for the whole process.
        if unsafe { super::os_thread::start(worker_main, w) } {
            self.started.store(id + 1, Ordering::Release);
            return true;
        }
        false
    }

    /// Workers that take coroutines right now (started, not retired, not stalled, not sitting out a lock
    /// convoy).
    pub fn unstalled_workers(&self) -> usize {
        (self.started() - self.retired.load(Ordering::Acquire))
            .saturating_sub(self.stalled.load(Ordering::Acquire) + super::convoy::sitting())
    }

    /// Queue lengths and sleep states, for the statistics report: (global, [(worker, queued, state)]).
    pub fn snapshot(&self) -> (usize, Vec<(usize, usize, &'static str)>) {
        let global = self.global.len();
        let workers = self.workers[..self.started()]
            .iter()
            .map(|w| {
                let state = match w.sleep.get(Ordering::Relaxed) {
                    Some(Sleep::Awake) if w.running_task().is_some() => "running",
                    Some(Sleep::Awake) => "scheduling",
                    Some(Sleep::Sleeping) => "idle",
                    Some(Sleep::SleepingInPoll) => "idle in epoll_wait",
                    Some(Sleep::Notified) => "being woken",
                    Some(Sleep::Retired) => "retired",
                    Some(Sleep::SittingOut) => "sitting out a lock convoy",
                    None => "?",
                };
                (w.id, w.queue.len(), state)
            })
            .collect();
        (global, workers)
    }

    pub fn retired(&self) -> usize {
        self.retired.load(Ordering::Acquire)
    }

    /// For the monitor: work is waiting while workers are stalled. Wakes an idle worker if there is one,
    /// else revives a retired spare or starts a new one. Returns what it did.
    pub fn add_worker_for_stall(&self) -> AddedWorker {
        if self.call_back_sitting_out() || self.wake_sleeper() {
            return AddedWorker::Woken;
        }
        if self.unstalled_workers() >= self.base {
            // As many workers as configured take coroutines: the waiting work is ordinary load.
            return AddedWorker::None;
        }
        let n = self.started();
        for w in &self.workers[..n] {
            if w.sleep.claim(Sleep::Retired, Sleep::Awake) {
                self.retired.fetch_sub(1, Ordering::AcqRel);
                w.sleep.wake();
                return AddedWorker::Revived;
            }
        }
        if self.start_worker() { AddedWorker::Started } else { AddedWorker::None }
    }

    /// Called by worker `w` at its next scheduling point after the monitor marked it stalled: the stall is
    /// over, and counted with how long it lasted and where.
    pub fn end_stall(&self, w: &Worker) {
        if !w.stalled.swap(false, Ordering::AcqRel) {
            return;
        }
        self.stalled.fetch_sub(1, Ordering::AcqRel);
        let (since, place) = w.stall.take();
        super::stats::stall(time::monotonic_ns().saturating_sub(since), place);
    }

    /// An idle spare retires when the unstalled workers are enough without it.
    pub fn should_retire(&self, w: &Worker) -> bool {
        w.id >= self.base && self.unstalled_workers() > self.base
    }

    /// Moves worker `w`'s queued coroutines to the global queue (a retiring spare's), waking a worker.
    pub fn hand_off_queue(&self, w: &Worker) {
        let tasks = w.queue.take_all();
        if tasks.is_empty() {
            return;
        }
        self.global.extend(tasks);
        self.wake_sleeper();
    }

    /// Worker `w`, whose convoy detector has just found a convoy at `now`, sits out (see `convoy`) if
    /// another worker runs a coroutine and is not stalled: it hands its queue (if any) to that worker.
    /// Returns the deadline until which `w` is to sit out. (With nothing queued it would otherwise fall
    /// idle, to be woken by the next hand-off for another futile resume.)
    pub fn convoy_hand_off(&self, w: &Worker, now: u64) -> Option<u64> {
        let busy = self.workers[..self.started()].iter().find(|o| {
            o.id != w.id
                && o.sleep.is(Sleep::Awake, Ordering::Relaxed)
                && o.running_task().is_some()
                && !o.stalled.load(Ordering::Relaxed)
        })?;
        let length = w.convoy.begin_sit_out(now, busy.os_tid.load(Ordering::Relaxed), || self.unstalled_workers())?;
        let tasks = w.queue.take_all();
        if !tasks.is_empty() {
            busy.queue.extend(tasks);
            // The busy worker may have gone idle since we looked.
            self.wake_sleeper();
        }
        super::stats::count(&super::stats::get().convoy_sit_outs);
        Some(now + length)
    }

    /// Ends every convoy sit-out now (the monitor found a stalled worker, or the signals idle workers must
    /// block changed). True if one was sitting out.
    pub fn call_back_sitting_out(&self) -> bool {
        let mut any = false;
        for w in &self.workers[..self.started()] {
            if w.sleep.claim(Sleep::SittingOut, Sleep::Awake) {
                w.sleep.wake();
                any = true;
            }
        }
        any
    }

    /// Puts idle spare `w` to sleep until [`Self::add_worker_for_stall`] revives it.
    pub fn retire(&self, w: &Worker) {
        // Counted before it becomes visible, so a reviver's decrement never comes first.
        self.retired.fetch_add(1, Ordering::AcqRel);
        w.sleep.store(Sleep::Retired, Ordering::SeqCst);
        // This spare may have been the idle worker in epoll_wait while others went to sleep on their
        // futex: wake one so that it takes over the netpoller (it goes round its loop into idle()).
        self.wake_sleeper();
        super::stats::count(&super::stats::get().spares_retired);
        while w.sleep.is(Sleep::Retired, Ordering::Acquire) {
            w.sleep.wait(Sleep::Retired, None);
        }
    }

    /// True when a worker could run something now: queued tasks anywhere or a due timer (checked by an
    /// idle worker before it sleeps, and by the monitor while workers are stalled).
    ///
    /// Reads the queue lengths without their locks: the caller stored its sleep state (SeqCst) first, and
    /// a pusher stores the length before its fence in [`Self::wake_sleeper`], so one of the two sees the
    /// other (see [`RunQueue`]).
    pub fn work_pending(&self) -> bool {
        !self.global.is_empty()
            || !self.preempted.is_empty()
            || self.workers[..self.started()]
                .iter()
                .any(|o| o.queue.free_len() != 0 || (!o.queue.is_empty() && self.may_take_held(o)))
            || self.next_deadline().is_some_and(|d| d <= time::monotonic_ns())
    }

    /// Whether a thief may take worker `victim`'s hand-offs now: when the coroutine that woke them has
    /// run on for [`Self::handoff_grace_ns`] (it computes, so they would wait for nothing), when
    /// `victim` is stalled, and when it runs no coroutine. A coroutine woken by another usually has
    /// something to do with what the waker just did (took over a lock it let go, a request it handed
    /// on): on the waker's worker it runs as soon as the waker parks, on a thief it would often find the
    /// waker still holding what it needs and wait again (CPython's GIL: a waiter signalled by a
    /// `drop_gil` around a system call finds the holder back at once; bench/web/ANALYSIS.md). Go's
    /// thieves leave `runnext` alone for a few µs for the same reason.
    fn may_take_held(&self, victim: &Worker) -> bool {
        let grace = self.handoff_grace_ns.load(Ordering::Relaxed);
        grace == 0
            || victim.stalled.load(Ordering::Relaxed)
            || victim.running_task().is_none_or(|t| t.cpu.running_for_ns().is_none_or(|ns| ns >= grace))
    }

    /// The hand-off grace period now (ns), for the statistics report.
    pub fn handoff_grace_ns(&self) -> u64 {
        self.handoff_grace_ns.load(Ordering::Relaxed)
    }

    /// A coroutine taken as a hand-off by a thief while its waker still ran (the grace period was over)
    /// ended its first run there: `futile` when it waited for a lock at once. Where that is the rule (a
    /// lock whose holder is the waker: CPython's GIL, whose holder signals a waiter at every system call
    /// and takes the GIL back before the waiter can run) hand-offs are held longer, doubling up to
    /// [`MAX_GRACE_NS`]; where the taken coroutines do work in parallel (a thread pool's jobs) the grace
    /// halves back towards the configured one, so such programs keep their parallelism.
    pub fn handoff_run_ended(&self, futile: bool) {
        let grace = self.handoff_grace_ns.load(Ordering::Relaxed);
        let new = if futile {
            (grace * 2).min(MAX_GRACE_NS.max(self.min_grace_ns))
        } else {
            (grace / 2).max(self.min_grace_ns)
        };
        if new != grace {
            self.handoff_grace_ns.store(new, Ordering::Relaxed);
        }
    }

    /// When an idle worker is to look again at hand-offs it may not take yet (monotonic ns): at the
    /// earliest end of a grace period, else at the next timer deadline; and a guard that counts the worker
    /// among those watching hand-offs while it sleeps, if it waits for a grace period to end.
    pub fn idle_deadline(&self) -> (Option<u64>, Option<HandoffWatch<'_>>) {
        let timer = self.next_deadline();
        if self.min_grace_ns == 0 {
            return (timer, None);
        }
        let wait = self.workers[..self.started()]
            .iter()
            .filter(|o| !o.queue.is_empty())
            .filter_map(|o| {
                let ran = o.running_task()?.cpu.running_for_ns()?;
                (!o.stalled.load(Ordering::Relaxed))
                    .then(|| self.handoff_grace_ns.load(Ordering::Relaxed).saturating_sub(ran))
            })
            .min();
        match (timer, wait) {
            (t, None) => (t, None),
            (t, Some(w)) => {
                self.handoff_watchers.fetch_add(1, Ordering::SeqCst);
                let d = t.unwrap_or(u64::MAX).min(time::monotonic_ns() + w.max(MIN_HELD_WAIT_NS));
                (Some(d), Some(HandoffWatch(&self.handoff_watchers)))
            }
        }
    }

    /// Next task for worker `w`: its own queue, then the global queue, then half of another worker's queue
    /// (on every [`PREEMPTED_EVERY`]th and [`GLOBAL_EVERY`]th pick a preempted one, or the global queue's,
    /// first).
    ///
    /// Empty queues are passed over without their locks (a task queued meanwhile is found by the idle
    /// worker's [`Self::work_pending`] before it sleeps). Only a worker itself adds to its own queue.
    /// Inline in the worker loop, its one caller there, with its own queue's lock-free pick.
    #[inline(always)]
    pub fn next_task(&self, w: &Worker) -> Option<TaskRef> {
        if !self.preempted.is_empty()
            && w.switches.load(Ordering::Relaxed).is_multiple_of(PREEMPTED_EVERY)
            && let Some(t) = self.preempted.pop()
        {
            return Some(t);
        }
        if !self.global.is_empty()
            && w.switches.load(Ordering::Relaxed) % GLOBAL_EVERY == GLOBAL_EVERY / 2
            && let Some(t) = self.global.pop()
        {
            return Some(t);
        }
        if !w.queue.is_empty()
            && let Some(t) = w.queue.pop()
        {
            return Some(t);
        }
        if !self.global.is_empty()
            && let Some(t) = self.global.pop()
        {
            return Some(t);
        }
        self.steal(w).or_else(|| self.take_preempted(w))
    }

    /// A preempted coroutine, when nothing else is queued; first a look for fd readiness, which no worker
    /// may have collected while the coroutine computed.
    #[inline(never)]
    fn take_preempted(&self, w: &Worker) -> Option<TaskRef> {
        if self.preempted.is_empty() {
            return None;
        }
        if netpoll::exists() {
            self.poll_net(0);
            if let Some(t) = w.queue.pop().or_else(|| self.global.pop()) {
                return Some(t);
            }
        }
        self.preempted.pop()
    }

    /// Out of line: inlined, it made every call of [`Self::next_task`] save and restore its registers.
    #[inline(never)]
    fn steal(&self, w: &Worker) -> Option<TaskRef> {
        let n = self.started();
        for i in 1..n {
            let victim = &self.workers[(w.id + i) % n];
            if victim.queue.is_empty() {
                continue;
            }
            let held = self.may_take_held(victim);
            if !held && victim.queue.free_len() == 0 {
                continue;
            }
            let Some(mut stolen) = victim.queue.try_steal_half(held) else { continue };
            let stats = super::stats::get();
            stats.stolen.fetch_add(stolen.len() as u64, Ordering::Relaxed);
            let first = stolen.pop_front();
            if !stolen.is_empty() {
                // Into the ring while it has room and nothing waits in the FIFO (the thief is its owner).
                w.queue.push_all(stolen.make_contiguous());
            }
            return first;
        }
        None
    }

    pub fn next_deadline(&self) -> Option<u64> {
        match self.earliest.load(Ordering::Acquire) {
            u64::MAX => None,
            d => Some(d),
        }
    }

    /// Wakes `task` from park `park` at monotonic `deadline` unless something else wakes it first.
    pub fn add_timer(&self, deadline: u64, task: TaskRef, park: u32) {
        let earliest = {
            let mut t = self.timers.lock();
            let e = t.add(deadline, task, park);
            self.earliest.store(t.next_deadline().unwrap_or(u64::MAX), Ordering::Release);
            e
        };
        // An idle worker may be sleeping until a later deadline.
        if earliest {
            self.wake_sleeper();
        }
    }

    /// Fires due timers; run by every worker at every scheduling point. Inline up to the look at the
    /// earliest deadline: while no timer is pending that is all a scheduling round pays (the call and
    /// its register saves were 16 of the loop's instructions per round trip, no timer pending).
    #[inline(always)]
    pub fn fire_timers(&self, buf: &mut Vec<(TaskRef, u32)>) {
        let earliest = self.earliest.load(Ordering::Acquire);
        // No clock read at all while no timer is pending.
        if earliest != u64::MAX {
            self.fire_timers_pending(earliest, buf);
        }
    }

    /// [`Self::fire_timers`] once a timer is pending (deadline `earliest`).
    #[inline(never)]
    fn fire_timers_pending(&self, earliest: u64, buf: &mut Vec<(TaskRef, u32)>) {
        // The coarse clock settles most checks cheaply; the precise one only near a deadline.
        if earliest > time::monotonic_coarse_ns() + self.coarse_slack {
            return;
        }
        let now = time::monotonic_ns();
        if earliest > now {
            return;
        }
        {
            let Some(mut t) = self.timers.try_lock() else { return };
            t.expire(now, buf);
            self.earliest.store(t.next_deadline().unwrap_or(u64::MAX), Ordering::Release);
        }
        for (task, park) in buf.drain(..) {
            self.wake(task, park, Wake::TimedOut);
        }
    }

    /// Ends park `park` of `task` (if it is still that park) and queues the task.
    pub fn wake(&self, task: TaskRef, park: u32, why: Wake) -> bool {
        let (won, queue) = task.try_wake(park, why);
        if queue {
            self.push(task);
        }
        won
    }
}

/// A FIFO of runnable tasks under a lock, with its length also kept in an atomic so that empty queues
/// can be passed over (and idle checks made) without taking the lock. The length is stored under the
/// lock after every change. No wake-up is lost: a worker about to sleep stores its sleep state (SeqCst)
/// and then reads the lengths (SeqCst); a pusher that relies on another worker stores the length and
/// then, after the SeqCst fence in [`Scheduler::wake_sleeper`], reads the sleep states.
///
/// A worker's queue (given a ring with [`RunQueue::give_ring`]) keeps its oldest ordinary entries in a lock-free
/// ring ([`Ring`]) in front of the FIFO: the worker's own push and pick take no lock while the locked
/// part is empty (under the lock a pick cost a compare-exchange and an unlocking exchange on a line
/// thieves share, once per coroutine run). Every entry in the ring is older than
/// every entry in the FIFO: the owner pushes to the ring only while the locked part is empty, and
/// everything else (hand-offs, a batch beyond the ring's room, entries handed over by another worker or
/// stolen) goes to the FIFO. So the order of ordinary entries is the FIFO's it was, and the locked
/// operations below take the ring's entries first where they took the FIFO's head. Thieves take the
/// lock (one thief at a time, and none during the owner's locked operations) and the ring's head with a
/// compare-exchange, as the owner's lock-free pick does (see `run_ring` for the memory orderings).
///
/// A worker's queue also has a `next` slot, taken before the FIFO: the coroutine another coroutine on
/// this worker woke last (see [`Scheduler::push`]). So that two coroutines handing work back and forth
/// through it cannot starve the FIFO, the slot is passed over after [`NEXT_STREAK`] picks in a row.
///
/// Hand-offs (the slot, and earlier hand-offs it pushed back into the FIFO) are *held*: a thief takes
/// them only when the owner lets it (see [`Scheduler::may_take_held`]); the count of held entries is also
/// kept in an atomic, so a thief can see a queue of nothing but hand-offs without its lock. The ring
/// holds no hand-offs.
pub struct RunQueue {
    q: Lock<Queued>,
    /// The locked part's length (FIFO and slot).
    len: AtomicUsize,
    held: AtomicUsize,
    /// Picks from the `next` slot in a row (outside the lock: only pickers touch it, and a worker's own
    /// queue has one picker, which also picks without the lock).
    next_streak: AtomicU32,
    /// A worker's own queue's ring (null for the others, and for workers never started: a ring is 2 KiB,
    /// and there is room for hundreds of spares): set once by the worker as it starts, before it runs
    /// anything; then only that worker pushes to it without the lock.
    ring: AtomicPtr<Ring<TaskRef>>,
}

impl run_ring::Item for TaskRef {
    fn into_word(self) -> usize {
        self.0.as_ptr() as usize
    }
    unsafe fn from_word(w: usize) -> TaskRef {
        // SAFETY: `w` is a task pointer (`into_word`), never null.
        TaskRef(unsafe { core::ptr::NonNull::new_unchecked(w as *mut _) })
    }
}

/// Picks from the `next` slot in a row before the FIFO's head gets a turn.
const NEXT_STREAK: u32 = 16;

#[derive(Clone, Copy)]
struct Entry {
    task: TaskRef,
    /// A hand-off (see [`RunQueue`]).
    held: bool,
}

struct Queued {
    fifo: VecDeque<Entry>,
    next: Option<TaskRef>,
    /// Held entries in `fifo` and `next`.
    held: usize,
}

impl Queued {
    fn len(&self) -> usize {
        self.fifo.len() + self.next.is_some() as usize
    }
}

impl RunQueue {
    /// A queue any thread pushes to and takes from, under its lock (the global queue, the preempted one,
    /// and a worker's until it gives it a ring).
    pub const fn new() -> RunQueue {
        RunQueue {
            q: Lock::new(Queued { fifo: VecDeque::new(), next: None, held: 0 }),
            len: AtomicUsize::new(0),
            held: AtomicUsize::new(0),
            next_streak: AtomicU32::new(0),
            ring: AtomicPtr::new(core::ptr::null_mut()),
        }
    }

    /// Makes this a worker's own queue, called once by that worker as it starts: from then on only it
    /// pushes to the queue without the lock ([`Self::push`], [`Self::push_all`]) and picks from it
    /// ([`Self::pop`]); anyone may [`Self::extend`] it or steal.
    pub fn give_ring(&self) {
        if self.ring.load(Ordering::Acquire).is_null() {
            self.ring.store(Box::into_raw(Box::new(Ring::new())), Ordering::Release);
        }
    }

    /// The ring, on a worker's own queue.
    #[inline(always)]
    fn ring(&self) -> Option<&Ring<TaskRef>> {
        // SAFETY: a ring once given is never freed.
        unsafe { self.ring.load(Ordering::Acquire).as_ref() }
    }

    #[inline(always)]
    fn ring_len(&self) -> usize {
        self.ring().map_or(0, Ring::len)
    }

    /// The length as last stored (exact for the owner while it holds the lock; a hint otherwise).
    #[inline]
    pub fn len(&self) -> usize {
        self.len.load(Ordering::SeqCst) + self.ring_len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len.load(Ordering::SeqCst) == 0 && self.ring().is_none_or(Ring::is_empty)
    }

    /// Entries a thief may take even while the owner holds its hand-offs (a hint, as [`Self::len`]).
    #[inline]
    pub fn free_len(&self) -> usize {
        self.len().saturating_sub(self.held.load(Ordering::SeqCst))
    }

    /// Stores the lengths after a change (under the lock); returns the whole length.
    #[inline]
    fn publish(&self, q: &Queued) -> usize {
        let n = q.len();
        self.held.store(q.held, Ordering::Release);
        self.len.store(n, Ordering::Release);
        n + self.ring_len()
    }

    /// The ring, if the owner may push to it and pick from it without the lock: its queue's locked part
    /// is empty, so the ring's entries stay older than the FIFO's.
    #[inline(always)]
    fn open_ring(&self) -> Option<&Ring<TaskRef>> {
        if self.len.load(Ordering::Relaxed) != 0 {
            return None;
        }
        self.ring()
    }

    /// Appends `task`; returns the new length. On a worker's own queue, only by that worker.
    pub fn push(&self, task: TaskRef) -> usize {
        if let Some(r) = self.open_ring()
            && r.push_some(&[task]) == 1
        {
            return self.len();
        }
        let mut q = self.q.lock();
        q.fifo.push_back(Entry { task, held: false });
        let n = q.len();
        self.len.store(n, Ordering::Release);
        n + self.ring_len()
    }

    /// Puts `task` in the `next` slot, held; the one there before goes to the back of the FIFO, still held.
    pub fn push_next(&self, task: TaskRef) -> usize {
        let mut q = self.q.lock();
        if let Some(old) = q.next.replace(task) {
            q.fifo.push_back(Entry { task: old, held: true });
        }
        q.held += 1;
        self.publish(&q)
    }

    /// The next entry to run. On a worker's own queue, only by that worker: without the lock while the
    /// locked part is empty. Inline up to the ring's pick (the locked part out of line, so that the worker
    /// loop's `Scheduler::next_task` stays inline in it).
    #[inline(always)]
    pub fn pop(&self) -> Option<TaskRef> {
        if let Some(r) = self.open_ring() {
            if let Some(t) = r.pop() {
                if self.next_streak.load(Ordering::Relaxed) != 0 {
                    self.next_streak.store(0, Ordering::Relaxed);
                }
                return Some(t);
            }
            // Another worker may have handed entries over meanwhile (see `Scheduler::convoy_hand_off`).
            if self.len.load(Ordering::SeqCst) == 0 {
                return None;
            }
        }
        self.pop_locked()
    }

    #[inline(never)]
    fn pop_locked(&self) -> Option<TaskRef> {
        let mut q = self.q.lock();
        let ring = self.ring();
        let older_empty = q.fifo.is_empty() && ring.is_none_or(Ring::is_empty);
        let streak = self.next_streak.load(Ordering::Relaxed);
        let (t, held) = if q.next.is_some() && (streak < NEXT_STREAK || older_empty) {
            self.next_streak.store(streak + 1, Ordering::Relaxed);
            (q.next.take(), true)
        } else {
            self.next_streak.store(0, Ordering::Relaxed);
            match ring.and_then(Ring::pop) {
                Some(t) => (Some(t), false),
                None => {
                    let e = q.fifo.pop_front();
                    if let Some(r) = ring {
                        RunQueue::refill(r, &mut q);
                    }
                    (e.map(|e| e.task), e.is_some_and(|e| e.held))
                }
            }
        };
        // The held count is stored only when it changes (most pops are of ordinary entries).
        if held {
            q.held -= 1;
            self.held.store(q.held, Ordering::Release);
        }
        self.len.store(q.len(), Ordering::Release);
        t
    }

    /// The owner, under the lock, found the ring empty: the ordinary entries at the FIFO's head move to
    /// the ring (still the oldest), so that the picks that follow take no lock, and, once the FIFO is
    /// empty, neither do the owner's pushes. Without this a queue whose FIFO was ever used (a batch beyond
    /// the ring's room, a steal, a hand-off) stayed in the FIFO under steady load.
    fn refill(ring: &Ring<TaskRef>, q: &mut Queued) {
        ring.fill(|| match q.fifo.front() {
            Some(e) if !e.held => q.fifo.pop_front().map(|e| e.task),
            _ => None,
        });
    }

    /// Appends `tasks` (under one lock, or none while they fit in the ring); returns the new length
    /// (unchanged, without locking, if none). On a worker's own queue, only by that worker.
    pub fn push_all(&self, tasks: &[TaskRef]) -> usize {
        let tasks = match self.open_ring() {
            Some(r) => &tasks[r.push_some(tasks)..],
            None => tasks,
        };
        if tasks.is_empty() {
            return self.len();
        }
        let mut q = self.q.lock();
        q.fifo.extend(tasks.iter().map(|&task| Entry { task, held: false }));
        let n = q.len();
        self.len.store(n, Ordering::Release);
        n + self.ring_len()
    }

    /// Appends `tasks` to the FIFO (any thread).
    pub fn extend(&self, tasks: VecDeque<TaskRef>) {
        let mut q = self.q.lock();
        q.fifo.extend(tasks.into_iter().map(|task| Entry { task, held: false }));
        self.len.store(q.len(), Ordering::Release);
    }

    /// Everything queued, the `next` slot first, then the ring's and the FIFO's entries. On a worker's
    /// own queue, only by that worker.
    pub fn take_all(&self) -> VecDeque<TaskRef> {
        let mut q = self.q.lock();
        q.held = 0;
        let mut all: VecDeque<TaskRef> = q.next.take().into_iter().collect();
        if let Some(r) = self.ring() {
            r.grab(|n| n, &mut all);
        }
        all.extend(core::mem::take(&mut q.fifo).into_iter().map(|e| e.task));
        self.publish(&q);
        all
    }

    /// The first half (rounded up) of the ring and the FIFO together, or the `next` slot when both are
    /// empty, unless the queue is empty or its lock is busy. Without `held`, hand-offs stay: the first
    /// half of the other entries, and never the slot.
    pub fn try_steal_half(&self, held: bool) -> Option<VecDeque<TaskRef>> {
        let mut q = self.q.try_lock()?;
        let (fifo_len, in_slot, held_n) = (q.fifo.len(), q.next.is_some() as usize, q.held);
        // Entries a thief may take, given `ring` in the ring: all but the slot, or all ordinary ones.
        let there = |ring: usize| if held { ring + fifo_len } else { ring + fifo_len + in_slot - held_n };
        // Room for the half as it looks now (growing the deque in the steal was 2 instructions per echo
        // round trip).
        let mut stolen = VecDeque::with_capacity(there(self.ring_len()).div_ceil(2));
        // The owner's lock-free picks may take from the ring meanwhile: the half is of what `grab` finds.
        let half = core::cell::Cell::new(there(0).div_ceil(2));
        let from_ring = match self.ring() {
            Some(r) => r.grab(
                |ring| {
                    half.set(there(ring).div_ceil(2));
                    half.get()
                },
                &mut stolen,
            ),
            None => 0,
        };
        // The FIFO's entries are newer than the ring's: taken only once the ring is drained.
        let ring_drained = self.ring().is_none_or(Ring::is_empty);
        let mut take = half.get() - from_ring;
        if held && from_ring == 0 && fifo_len == 0 {
            let slot = q.next.take();
            if let Some(t) = slot {
                q.held -= 1;
                t.handoff_taken.set(true);
                stolen.push_back(t);
            }
        } else if held && ring_drained {
            let mut held_taken = 0;
            stolen.extend(q.fifo.drain(..take.min(fifo_len)).map(|e| {
                held_taken += e.held as usize;
                e.task.handoff_taken.set(e.held);
                e.task
            }));
            q.held -= held_taken;
        } else if !held && ring_drained {
            q.fifo.retain(|e| {
                if take == 0 || e.held {
                    return true;
                }
                take -= 1;
                stolen.push_back(e.task);
                false
            });
        }
        if stolen.is_empty() {
            return None;
        }
        self.publish(&q);
        Some(stolen)
    }
}

impl Default for RunQueue {
    fn default() -> Self {
        Self::new()
    }
}

/// An idle worker watching hand-offs (see [`Scheduler::idle_deadline`]) until dropped.
pub struct HandoffWatch<'a>(&'a AtomicUsize);

impl Drop for HandoffWatch<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AddedWorker {
    None,
    Woken,
    Revived,
    Started,
}

/// Body of worker OS threads 1..N (worker 0 is the program's initial thread).
extern "C" fn worker_main(arg: *mut libc::c_void) -> *mut libc::c_void {
    // SAFETY: arg is a &'static Worker passed by start_worker.
    let w: &'static Worker = unsafe { &*(arg as *const Worker) };
    worker::enter(w, super::sys::fsgs::fs_base());
    w.sleep.store(Sleep::Awake, Ordering::SeqCst);
    worker::run(get(), w)
}

#[cfg(test)]
mod tests {
    use super::{NEXT_STREAK, RunQueue, TaskRef};
    use core::ptr::NonNull;

    /// Distinct task handles that are never dereferenced: the queue's paths under test (pushes, pops, a
    /// steal that leaves hand-offs) only move them around.
    fn fake(i: usize) -> TaskRef {
        TaskRef(NonNull::new((0x1000 * (i + 1)) as *mut super::super::task::Task).unwrap())
    }

    /// A push of `fake(i)`: into the FIFO, or as a hand-off.
    enum Push {
        Fifo(usize),
        Next(usize),
    }
    use Push::*;

    /// A worker's queue (with its ring).
    fn local_queue() -> RunQueue {
        let q = RunQueue::new();
        q.give_ring();
        q
    }

    /// A new queue after these pushes, in this order.
    fn queue_after(pushes: &[Push]) -> RunQueue {
        let q = local_queue();
        for p in pushes {
            // The queue's length after the push is not needed here.
            let _ = match *p {
                Fifo(i) => q.push(fake(i)),
                Next(i) => q.push_next(fake(i)),
            };
        }
        q
    }

    #[test]
    fn hand_offs_stay_while_held() {
        // Two plain pushes, then three hand-offs: the last in the slot, the two before pushed back into the
        // FIFO, all held.
        let q = queue_after(&[Fifo(0), Fifo(1), Next(2), Next(3), Next(4)]);
        assert_eq!((q.len(), q.free_len()), (5, 2));
        // A thief that may not take hand-offs gets the first of the two others (half, rounded up)...
        let stolen = q.try_steal_half(false).unwrap();
        assert_eq!(Vec::from(stolen), vec![fake(0)]);
        assert_eq!((q.len(), q.free_len()), (4, 1));
        let stolen = q.try_steal_half(false).unwrap();
        assert_eq!(Vec::from(stolen), vec![fake(1)]);
        // ...and then nothing: only hand-offs are left.
        assert!(q.try_steal_half(false).is_none());
        assert_eq!((q.len(), q.free_len()), (3, 0));
        // The owner runs the slot first, then the hand-offs in the order they were made.
        assert_eq!(q.pop(), Some(fake(4)));
        assert_eq!(q.pop(), Some(fake(2)));
        assert_eq!(q.pop(), Some(fake(3)));
        assert_eq!(q.pop(), None);
        assert_eq!((q.len(), q.free_len()), (0, 0));
    }

    #[test]
    fn the_slot_yields_to_the_fifo_after_a_streak() {
        let q = queue_after(&[Fifo(100)]);
        for i in 0..NEXT_STREAK as usize {
            q.push_next(fake(i));
            assert_eq!(q.pop(), Some(fake(i)));
        }
        q.push_next(fake(50));
        assert_eq!(q.pop(), Some(fake(100)));
        assert_eq!(q.pop(), Some(fake(50)));
        assert_eq!((q.len(), q.free_len()), (0, 0));
    }

    #[test]
    fn take_all_clears_the_held_count() {
        let q = queue_after(&[Next(0), Next(1), Fifo(2)]);
        assert_eq!(Vec::from(q.take_all()), vec![fake(1), fake(0), fake(2)]);
        assert_eq!((q.len(), q.free_len()), (0, 0));
        q.push(fake(3));
        assert_eq!(q.free_len(), 1);
    }

    #[test]
    fn a_full_ring_spills_into_the_fifo_in_order() {
        let q = local_queue();
        let n = crate::runtime::run_ring::CAP as usize + 5;
        let tasks: Vec<TaskRef> = (0..n).map(fake).collect();
        assert_eq!(q.push_all(&tasks[..n - 1]), n - 1);
        // The FIFO is not empty: this push goes behind it, not into the ring's freed room.
        assert_eq!(q.pop(), Some(fake(0)));
        q.push(fake(n - 1));
        // A hand-off still comes first.
        q.push_next(fake(n));
        assert_eq!(q.pop(), Some(fake(n)));
        for i in 1..n {
            assert_eq!(q.pop(), Some(fake(i)));
        }
        assert_eq!(q.pop(), None);
        assert_eq!((q.len(), q.free_len()), (0, 0));
    }

    /// The owner pushes (one at a time, in batches, as hand-offs) and picks while thieves steal halves of
    /// the ordinary entries: every task is taken exactly once, and hand-offs only by the owner.
    #[test]
    fn concurrent_thieves_take_each_task_once() {
        use crate::runtime::run_ring::race;
        const N: usize = 100_000;
        let q = local_queue();
        let id = |t: TaskRef| t.0.as_ptr() as usize / 0x1000 - 1;
        let mut handoffs = std::collections::HashSet::new();
        let steal = || q.try_steal_half(false).map_or(Vec::new(), |b| b.into_iter().map(id).collect());
        let (mine, stolen) = race::with_thieves(
            3,
            steal,
            || q.free_len() != 0,
            || {
                let mut mine = Vec::new();
                let mut next = 0;
                while next < N {
                    match next % 11 {
                        0 => {
                            let batch: Vec<TaskRef> = (next..(next + 40).min(N)).map(fake).collect();
                            q.push_all(&batch);
                            next += batch.len();
                        }
                        5 => {
                            handoffs.insert(next);
                            q.push_next(fake(next));
                            next += 1;
                        }
                        _ => {
                            q.push(fake(next));
                            next += 1;
                        }
                    }
                    if next % 2 == 0 {
                        mine.extend(q.pop().map(id));
                    }
                }
                mine.extend(std::iter::from_fn(|| q.pop()).map(id));
                mine
            },
        );
        assert!(stolen.iter().flatten().all(|t| !handoffs.contains(t)), "a thief took a held hand-off");
        race::each_once(stolen.into_iter().flatten().chain(mine).collect(), N);
        assert_eq!((q.len(), q.free_len()), (0, 0));
    }
}
