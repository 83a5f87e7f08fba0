//! The CPU-time accounts the scheduler core keeps at every switch: [`TaskCpu`] per thread, [`WorkerCpu`]
//! per worker, and the stamp clock they are kept in. A leaf (it imports only the clocks), so that `task` and
//! `worker` hold the accounts and charge runs without depending on the policy that answers the program's
//! CPU-time questions (the parent module).
//!
//! The kernel counts CPU time per OS thread, so a worker's clock holds the sum of every coroutine it ran;
//! each coroutine's share is accounted here, at its switches, from what it had used when it started.
//!
//! **Cheap at every switch.** Asking the kernel for the worker's CPU time is a system call (the vDSO serves
//! only wall clocks), several times what a whole switch costs. So a switch reads the time-stamp counter
//! only, once (README, per-thread CPU time, has the measured costs): the stamp that ends one coroutine's run starts the
//! next one's, and only a worker that slept takes a fresh one. A run shorter than [`LONG_RUN_TICKS`] is
//! charged its TSC length: the kernel seldom takes a CPU away for less, and when it does, the run comes
//! out longer than that and takes the exact path.
//!
//! **Exact where it matters.** A run at least that long (a coroutine computing, or a worker the kernel
//! descheduled in the middle of a run) ends with one read of the worker's CPU clock, amortised over the
//! run: what the worker used since its last such checkpoint, less what short runs were charged in
//! between, clamped to the run's wall length, is the run's CPU time. Time spent descheduled is so never
//! counted as the coroutine's, on a loaded machine or not.
//!
//! The counter's rate is learnt from CLOCK_MONOTONIC over the life of the process (frozen once a second
//! of baseline gives it to better than a part per million); a CPU without an invariant TSC uses
//! CLOCK_MONOTONIC for the stamps instead (rate 1). Values a thread reads are kept non-decreasing.

use crate::runtime::sys::time;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// A run at least this long (in stamp units: TSC ticks, about 90 µs at 2.9 GHz) ends with an exact read
/// of the worker's CPU clock.
const LONG_RUN_TICKS: u64 = 1 << 18;
/// Idle sleeps of a worker after which its checkpoint is renewed (each costs the worker a little CPU in
/// the kernel, which no stamp sees; without renewal it would be charged to the next long run).
const SLEEPS_PER_CHECKPOINT: u32 = 32;
/// Baseline after which the TSC rate is frozen (ns).
const RATE_FREEZE_NS: u64 = 1_000_000_000;

/// Where stamps come from, and the rate that turns them into ns.
struct Clock {
    use_tsc: AtomicBool,
    /// TSC and CLOCK_MONOTONIC read together at start-up: the rate's baseline.
    tsc0: AtomicU64,
    mono0: AtomicU64,
    /// ns per tick (f64 bits), once frozen.
    frozen: AtomicU64,
}

static CLOCK: Clock = Clock {
    use_tsc: AtomicBool::new(false),
    tsc0: AtomicU64::new(0),
    mono0: AtomicU64::new(0),
    frozen: AtomicU64::new(0),
};

/// Chooses the stamp source and takes the rate's baseline. Called once when the runtime starts.
pub fn init() {
    if time::tsc_is_invariant() {
        CLOCK.mono0.store(time::monotonic_ns(), Ordering::Relaxed);
        CLOCK.tsc0.store(time::tsc(), Ordering::Relaxed);
        CLOCK.use_tsc.store(true, Ordering::Release);
    }
}

#[inline(always)]
fn stamp() -> u64 {
    if CLOCK.use_tsc.load(Ordering::Relaxed) { time::tsc() } else { time::monotonic_ns() }
}

/// A timestamp for "since when" displays (when a park began, for the thread listing): the stamp clock,
/// one instruction with an invariant TSC where the coarse clock is a vDSO call. [`stamp_age_ns`] says how
/// long ago it was.
#[inline(always)]
pub fn stamp_now() -> u64 {
    stamp()
}

/// How many ns ago `then` (a [`stamp_now`] reading, 0: never) was.
pub fn stamp_age_ns(then: u64) -> u64 {
    to_ns(stamp().saturating_sub(then), ns_per_tick())
}

/// Nanoseconds per stamp unit.
fn ns_per_tick() -> f64 {
    if !CLOCK.use_tsc.load(Ordering::Acquire) {
        return 1.0;
    }
    let frozen = CLOCK.frozen.load(Ordering::Relaxed);
    if frozen != 0 {
        return f64::from_bits(frozen);
    }
    // Both read together at each end: a skew of tens of ns, so even a 10 µs baseline is good to 0.5%.
    let (t, m) = (time::tsc(), time::monotonic_ns());
    let (dt, dm) = (t.wrapping_sub(CLOCK.tsc0.load(Ordering::Relaxed)), m - CLOCK.mono0.load(Ordering::Relaxed));
    if dt == 0 {
        return 1.0;
    }
    let rate = dm as f64 / dt as f64;
    if dm >= RATE_FREEZE_NS {
        CLOCK.frozen.store(rate.to_bits(), Ordering::Relaxed);
    }
    rate
}

fn to_ns(ticks: u64, rate: f64) -> u64 {
    (ticks as f64 * rate) as u64
}

/// A thread's account. Written only by the worker running the thread (at its switches), read by anyone.
pub struct TaskCpu {
    /// Stamp units of short runs.
    ticks: AtomicU64,
    /// ns of long runs, measured exactly.
    exact_ns: AtomicU64,
    /// The stamp its current run began at (0 while it does not run).
    since: AtomicU64,
    /// Bumped at every switch out: a reader that saw it change read a torn account and reads again.
    switches: AtomicU32,
    /// The largest value read so far (what a reader is given at least, so the clock never goes back).
    reported: AtomicU64,
    /// Switches out to wait (parks) and while still runnable (yields, preemptions): the kernel's
    /// voluntary and involuntary context switches of a thread, as `getrusage(RUSAGE_THREAD)` gives them.
    voluntary: AtomicU64,
    involuntary: AtomicU64,
    /// The earliest CPU time (ns) at which a CPU-time timer on the thread's clock may expire (u64::MAX:
    /// none armed): looked at when the thread switches out and by the monitor while it runs.
    timer_at: AtomicU64,
}

impl Default for TaskCpu {
    fn default() -> Self {
        Self::new()
    }
}

impl TaskCpu {
    pub const fn new() -> TaskCpu {
        TaskCpu {
            ticks: AtomicU64::new(0),
            exact_ns: AtomicU64::new(0),
            since: AtomicU64::new(0),
            switches: AtomicU32::new(0),
            reported: AtomicU64::new(0),
            voluntary: AtomicU64::new(0),
            involuntary: AtomicU64::new(0),
            timer_at: AtomicU64::new(u64::MAX),
        }
    }

    /// How long the thread's current run has lasted (ns), None while it does not run. Read from any
    /// thread (the scheduler asks it of another worker's coroutine); a read racing with the end of the run
    /// sees that run or none.
    pub fn running_for_ns(&self) -> Option<u64> {
        match self.since.load(Ordering::Relaxed) {
            0 => None,
            since => Some(to_ns(stamp().saturating_sub(since), ns_per_tick())),
        }
    }
}

/// A worker's side: the stamp that ends a run and can start the next, and the last exact checkpoint.
pub struct WorkerCpu {
    /// The last stamp taken (0: the worker slept since, take a fresh one).
    stamp: AtomicU64,
    /// The worker's CPU time at the last checkpoint (ns).
    checkpoint_ns: AtomicU64,
    /// Stamp units charged to short runs since the checkpoint.
    short_since: AtomicU64,
    sleeps: AtomicU32,
}

impl Default for WorkerCpu {
    fn default() -> Self {
        Self::new()
    }
}

impl WorkerCpu {
    pub const fn new() -> WorkerCpu {
        WorkerCpu {
            stamp: AtomicU64::new(0),
            checkpoint_ns: AtomicU64::new(0),
            short_since: AtomicU64::new(0),
            sleeps: AtomicU32::new(0),
        }
    }

    /// The worker starts (on its own OS thread): its first checkpoint.
    pub fn started(&self) {
        self.checkpoint();
    }

    fn checkpoint(&self) {
        self.checkpoint_ns.store(time::this_os_thread_cpu_ns(), Ordering::Relaxed);
        self.short_since.store(0, Ordering::Relaxed);
        self.sleeps.store(0, Ordering::Relaxed);
    }

    /// The worker is about to sleep (idle, retired, sitting out): the next run starts from a fresh stamp.
    pub fn before_sleep(&self) {
        self.stamp.store(0, Ordering::Relaxed);
        let n = self.sleeps.load(Ordering::Relaxed) + 1;
        self.sleeps.store(n, Ordering::Relaxed);
        if n >= SLEEPS_PER_CHECKPOINT {
            self.checkpoint();
        }
    }

    /// The thread whose account is `c` is about to run on this worker.
    #[inline(always)]
    pub fn switch_in(&self, c: &TaskCpu) {
        let s = match self.stamp.load(Ordering::Relaxed) {
            0 => stamp(),
            s => s,
        };
        c.since.store(s, Ordering::Relaxed);
    }

    /// The thread whose account is `c` switched out (or ended) on this worker: charge the run.
    #[inline(always)]
    pub fn switch_out(&self, c: &TaskCpu) {
        let now = stamp();
        self.stamp.store(now, Ordering::Relaxed);
        let run = now.wrapping_sub(c.since.load(Ordering::Relaxed));
        if run < LONG_RUN_TICKS {
            c.ticks.store(c.ticks.load(Ordering::Relaxed) + run, Ordering::Relaxed);
            self.short_since.store(self.short_since.load(Ordering::Relaxed) + run, Ordering::Relaxed);
        } else {
            let ns = self.exact_share(run, time::this_os_thread_cpu_ns());
            c.exact_ns.store(c.exact_ns.load(Ordering::Relaxed) + ns, Ordering::Relaxed);
            self.checkpoint();
        }
        c.since.store(0, Ordering::Relaxed);
        c.switches.store(c.switches.load(Ordering::Relaxed).wrapping_add(1), Ordering::Release);
    }

    /// The CPU time of a run of `run` stamp units that is going on or just ended, given the worker's CPU
    /// clock now: what the worker used since its checkpoint less what short runs had, within the run's
    /// wall length.
    fn exact_share(&self, run: u64, worker_now_ns: u64) -> u64 {
        let rate = ns_per_tick();
        let used = worker_now_ns.saturating_sub(self.checkpoint_ns.load(Ordering::Relaxed));
        let others = to_ns(self.short_since.load(Ordering::Relaxed), rate);
        used.saturating_sub(others).min(to_ns(run, rate))
    }
}

impl TaskCpu {
    /// A new account, for a thread that has used `ns` so far.
    pub fn start_at(&self, ns: u64) {
        let c = self;
        c.ticks.store(0, Ordering::Relaxed);
        c.exact_ns.store(ns, Ordering::Relaxed);
        c.since.store(0, Ordering::Relaxed);
        c.reported.store(0, Ordering::Relaxed);
        c.voluntary.store(0, Ordering::Relaxed);
        c.involuntary.store(0, Ordering::Relaxed);
        c.timer_at.store(u64::MAX, Ordering::Relaxed);
    }

    /// Sets the earliest CPU time a timer on the thread's clock may expire at (u64::MAX: none armed).
    pub fn set_timer_at(&self, ns: u64) {
        self.timer_at.store(ns, Ordering::Release);
    }

    /// Whether a timer on the thread's clock may have expired: one is armed and the time charged so far
    /// (the runs that ended; called as the thread switches out) reaches it. One load when none is armed.
    #[inline(always)]
    pub fn timer_maybe_due(&self) -> bool {
        let at = self.timer_at.load(Ordering::Relaxed);
        at != u64::MAX
            && self.exact_ns.load(Ordering::Relaxed) + to_ns(self.ticks.load(Ordering::Relaxed), ns_per_tick()) >= at
    }

    /// Whether a timer is armed on the thread's clock.
    pub fn timer_armed(&self) -> bool {
        self.timer_at.load(Ordering::Relaxed) != u64::MAX
    }

    /// The thread switches out (on its own stack): to wait (`voluntary`) or while still runnable.
    #[inline(always)]
    pub fn count_switch(&self, voluntary: bool) {
        let n = if voluntary { &self.voluntary } else { &self.involuntary };
        n.store(n.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// The thread's voluntary and involuntary context switches so far.
    pub fn switch_counts(&self) -> (u64, u64) {
        (self.voluntary.load(Ordering::Relaxed), self.involuntary.load(Ordering::Relaxed))
    }

    /// The CPU time the thread has used, in ns: the calling coroutine's own (`own`: the thread is the
    /// caller), or another thread's, running or not. `worker` gives the OS tid and the account of the worker
    /// the thread last ran on, to read that worker's clock during a long run.
    pub fn used_ns(&self, own: bool, worker: impl Fn() -> Option<(i32, &'static WorkerCpu)>) -> u64 {
        let c = self;
        let value = loop {
            let seen = c.switches.load(Ordering::Acquire);
            let rate = ns_per_tick();
            let mut v = c.exact_ns.load(Ordering::Relaxed) + to_ns(c.ticks.load(Ordering::Relaxed), rate);
            let since = c.since.load(Ordering::Relaxed);
            if since != 0 {
                let run = stamp().wrapping_sub(since);
                v += if run < LONG_RUN_TICKS {
                    to_ns(run, rate)
                } else if let Some((tid, w)) = worker() {
                    // The running part of a long run, exactly: the worker's clock (the caller's own OS thread
                    // when the task is the caller; else that worker's, read through its tid's clock).
                    let now = if own {
                        time::this_os_thread_cpu_ns()
                    } else {
                        time::cpu_clock_ns(time::thread_cpu_clock_of(tid)).unwrap_or(0)
                    };
                    w.exact_share(run, now)
                } else {
                    to_ns(run, rate)
                };
            }
            if c.switches.load(Ordering::Acquire) == seen {
                break v;
            }
        };
        c.reported.fetch_max(value, Ordering::Relaxed).max(value)
    }
}
