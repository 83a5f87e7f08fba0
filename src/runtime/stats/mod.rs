//! What the runtime did, for users who need to trust and tune it: coroutines, parks by kind of wait,
//! offloads, spare workers, and stalls — the places in the program that kept a worker from switching, with
//! where they happened. Counters are always kept (relaxed increments on paths that already cost far more);
//! stall sites are only sampled, and the report only written, when `ASYNCSHIM_STATS` asks for it.
//!
//! This module is the counters, a leaf every part of the runtime may count in; [`report`] reads them with
//! the rest of the runtime's state and writes the report.

pub mod report;

use super::lock::Lock;
use super::sys;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

use super::wait_reason::WaitReason;

/// The report's name of each [`WaitReason`].
pub(crate) const PARK_NAMES: [&str; WaitReason::COUNT] = [
    "fd read (read/recv/accept...)",
    "fd write (write/send/connect...)",
    "poll/select/epoll_wait",
    "sleep",
    "mutex",
    "condition variable",
    "rwlock",
    "semaphore",
    "barrier",
    "futex",
    "pthread_once",
    "join",
    "offloaded call",
];

/// Calls run on helper threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Offload {
    Dns,
    File,
    Process,
    SharedFutex,
    Other,
}

pub(crate) const OFFLOAD_NAMES: [&str; 5] = [
    "name resolution",
    "regular-file I/O",
    "process waits/spawns",
    "process-shared futex waits",
    "other blocking calls",
];

pub struct Stats {
    pub created: AtomicU64,
    pub peak_live: AtomicU64,
    pub(crate) offloads: [AtomicU64; 5],
    pub spares_started: AtomicU64,
    pub spares_revived: AtomicU64,
    pub spares_retired: AtomicU64,
    pub idle_woken_for_stall: AtomicU64,
    /// Times a worker stepped aside from a lock convoy, and for how long in all (see `convoy`).
    pub convoy_sit_outs: AtomicU64,
    pub convoy_sit_out_ns: AtomicU64,
    /// Sit-outs after which the rate rule paused: the worker left alone waited for a CPU (see `convoy`).
    pub convoy_loaded: AtomicU64,
    /// Coroutines taken from another worker's queue and idle workers woken for work (each a futex or
    /// eventfd wake-up): with the coroutines resumed on another worker than the last time (counted per
    /// worker, `Worker::migrations`), what hand-offs between workers cost.
    pub stolen: AtomicU64,
    pub idle_wakeups: AtomicU64,
    /// Lock waits made right after a wake-up from a lock wait (the coroutine found the lock, or what the
    /// lock guards, taken again: a futile wake-up), after a hand-off and after a timeout.
    pub lock_rewaits: AtomicU64,
    pub lock_rewaits_after_timeout: AtomicU64,
    /// Futex waits the kernel made for a parked coroutine through io_uring (see `sync::kernel_wait`).
    pub kernel_futex_waits: AtomicU64,
    /// Sleeps between attempts of a wait made by retrying (objects only glibc or a proxy can release).
    pub poll_retries: AtomicU64,
    pub stalls: AtomicU64,
    pub stall_ns_total: AtomicU64,
    pub stall_ns_max: AtomicU64,
    /// Stalls by where they happened (only with ASYNCSHIM_STATS).
    pub(crate) sites: Lock<Vec<Site>>,
    pub(crate) start_ns: u64,
}

pub(crate) struct Site {
    pub(crate) place: String,
    pub(crate) count: u64,
    pub(crate) total_ns: u64,
    pub(crate) max_ns: u64,
}

static STATS: OnceLock<Stats> = OnceLock::new();
/// Where the report goes; set when ASYNCSHIM_STATS is.
pub(crate) static TARGET: OnceLock<String> = OnceLock::new();
/// Set by the report signal's handler; the monitor writes the report.
pub static REPORT_REQUESTED: AtomicBool = AtomicBool::new(false);

pub fn get() -> &'static Stats {
    super::lazy::get_or_init(&STATS, || Stats {
        created: AtomicU64::new(0),
        peak_live: AtomicU64::new(0),
        offloads: [const { AtomicU64::new(0) }; 5],
        spares_started: AtomicU64::new(0),
        spares_revived: AtomicU64::new(0),
        spares_retired: AtomicU64::new(0),
        idle_woken_for_stall: AtomicU64::new(0),
        convoy_sit_outs: AtomicU64::new(0),
        convoy_sit_out_ns: AtomicU64::new(0),
        convoy_loaded: AtomicU64::new(0),
        stolen: AtomicU64::new(0),
        idle_wakeups: AtomicU64::new(0),
        lock_rewaits: AtomicU64::new(0),
        lock_rewaits_after_timeout: AtomicU64::new(0),
        kernel_futex_waits: AtomicU64::new(0),
        poll_retries: AtomicU64::new(0),
        stalls: AtomicU64::new(0),
        stall_ns_total: AtomicU64::new(0),
        stall_ns_max: AtomicU64::new(0),
        sites: Lock::new(Vec::new()),
        start_ns: sys::time::monotonic_ns(),
    })
}

#[inline]
pub fn count(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

#[inline]
pub fn offload(kind: Offload) {
    count(&get().offloads[kind as usize]);
}

/// True when the user asked for a report (stall sites are sampled only then).
pub fn enabled() -> bool {
    TARGET.get().is_some()
}

pub fn thread_created(live: u64) {
    let s = get();
    count(&s.created);
    s.peak_live.fetch_max(live, Ordering::Relaxed);
}

/// A stall of `ns` ended; `place` says where it was (sampled when it began), if known.
pub fn stall(ns: u64, place: Option<String>) {
    let s = get();
    count(&s.stalls);
    s.stall_ns_total.fetch_add(ns, Ordering::Relaxed);
    s.stall_ns_max.fetch_max(ns, Ordering::Relaxed);
    let Some(place) = place else { return };
    let mut sites = s.sites.lock();
    if let Some(x) = sites.iter_mut().find(|x| x.place == place) {
        x.count += 1;
        x.total_ns += ns;
        x.max_ns = x.max_ns.max(ns);
    } else if sites.len() < 256 {
        // A program that stalls in endless places still gets a bounded table.
        sites.push(Site { place, count: 1, total_ns: ns, max_ns: ns });
    }
}

/// "name count, ..." for the counters of `counts` that are not zero, named by `names` (in order);
/// "none" when all are.
pub fn named_counts(names: &[&str], counts: &[AtomicU64]) -> String {
    let r = Ordering::Relaxed;
    let nonzero: Vec<String> =
        names.iter().zip(counts).filter(|(_, c)| c.load(r) > 0).map(|(n, c)| format!("{n} {}", c.load(r))).collect();
    if nonzero.is_empty() { "none".into() } else { nonzero.join(", ") }
}
