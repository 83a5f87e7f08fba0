//! What the runtime did, for users who need to trust and tune it: coroutines, parks by kind of wait,
//! offloads, spare workers, and stalls — the places in the program that kept a worker from switching, with
//! where they happened. Counters are always kept (relaxed increments on paths that already cost far more);
//! stall sites are only sampled, and the report only written, when `ASYNCSHIM_STATS` asks for it.

use super::lock::Lock;
use super::sys;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::fmt::Write as _;
use std::sync::OnceLock;

use super::park::WaitReason;

/// The report's name of each [`WaitReason`].
const PARK_NAMES: [&str; WaitReason::COUNT] = [
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

const OFFLOAD_NAMES: [&str; 5] = [
    "name resolution",
    "regular-file I/O",
    "process waits/spawns",
    "process-shared futex waits",
    "other blocking calls",
];

pub struct Stats {
    pub created: AtomicU64,
    pub peak_live: AtomicU64,
    parks: [AtomicU64; WaitReason::COUNT],
    offloads: [AtomicU64; 5],
    pub spares_started: AtomicU64,
    pub spares_revived: AtomicU64,
    pub spares_retired: AtomicU64,
    pub idle_woken_for_stall: AtomicU64,
    /// Times a worker stepped aside from a lock convoy, and for how long in all (see `convoy`).
    pub convoy_sit_outs: AtomicU64,
    pub convoy_sit_out_ns: AtomicU64,
    /// Futex waits the kernel made for a parked coroutine through io_uring (see `sync::kernel_wait`).
    pub kernel_futex_waits: AtomicU64,
    /// Sleeps between attempts of a wait made by retrying (objects only glibc or a proxy can release).
    pub poll_retries: AtomicU64,
    pub stalls: AtomicU64,
    pub stall_ns_total: AtomicU64,
    pub stall_ns_max: AtomicU64,
    /// Stalls by where they happened (only with ASYNCSHIM_STATS).
    sites: Lock<Vec<Site>>,
    start_ns: u64,
}

struct Site {
    place: String,
    count: u64,
    total_ns: u64,
    max_ns: u64,
}

static STATS: OnceLock<Stats> = OnceLock::new();
/// Where the report goes; set when ASYNCSHIM_STATS is.
static TARGET: OnceLock<String> = OnceLock::new();
/// Set by the report signal's handler; the monitor writes the report.
pub static REPORT_REQUESTED: AtomicBool = AtomicBool::new(false);

pub fn get() -> &'static Stats {
    STATS.get_or_init(|| Stats {
        created: AtomicU64::new(0),
        peak_live: AtomicU64::new(0),
        parks: [const { AtomicU64::new(0) }; WaitReason::COUNT],
        offloads: [const { AtomicU64::new(0) }; 5],
        spares_started: AtomicU64::new(0),
        spares_revived: AtomicU64::new(0),
        spares_retired: AtomicU64::new(0),
        idle_woken_for_stall: AtomicU64::new(0),
        convoy_sit_outs: AtomicU64::new(0),
        convoy_sit_out_ns: AtomicU64::new(0),
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

/// A coroutine parks for `reason` (counted by `park::Parking::begin`).
#[inline]
pub fn count_park(reason: WaitReason) {
    count(&get().parks[reason as usize]);
}

#[inline]
pub fn offload(kind: Offload) {
    count(&get().offloads[kind as usize]);
}

/// True when the user asked for a report (stall sites are sampled only then).
pub fn enabled() -> bool {
    TARGET.get().is_some()
}

/// Called once at start-up with the configuration.
pub fn init(target: Option<&str>, signal: Option<i32>) {
    let _ = get();
    let Some(t) = target else { return };
    let _ = TARGET.set(t.to_string());
    extern "C" fn at_exit() {
        write_report();
    }
    // SAFETY: registering a plain function.
    unsafe { libc::atexit(at_exit) };
    if let Some(sig) = signal {
        super::signals::set_report_signal(sig);
    }
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

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// The report as text.
pub fn report() -> String {
    let s = get();
    let rt = super::get();
    let mut out = String::new();
    let r = Ordering::Relaxed;
    let _ = writeln!(
        out,
        "asyncshim stats: pid {}, {:.3} s since start",
        sys::getpid(),
        ms(sys::time::monotonic_ns() - s.start_ns) / 1e3
    );
    let _ = writeln!(
        out,
        "  workers: {} configured, {} running now; spares started {}, revived {}, retired {}; idle workers woken for stalls {}",
        rt.sched.base,
        rt.sched.started().saturating_sub(rt.sched.retired()),
        s.spares_started.load(r),
        s.spares_revived.load(r),
        s.spares_retired.load(r),
        s.idle_woken_for_stall.load(r)
    );
    let _ = writeln!(
        out,
        "  lock convoys: a worker sat out {} times, {:.1} ms in all",
        s.convoy_sit_outs.load(r),
        ms(s.convoy_sit_out_ns.load(r))
    );
    let (global, ws) = rt.sched.snapshot();
    let ws: Vec<String> = ws.iter().map(|(id, n, st)| format!("#{id} {st}, {n} queued")).collect();
    let _ = writeln!(out, "  run queues: global {global}; workers: {}", ws.join("; "));
    let [running, queued, parked] = rt.threads.phases();
    let _ = writeln!(
        out,
        "  coroutines: created {}, live {} (running {running}, queued {queued}, waiting {parked}), peak {}",
        s.created.load(r),
        rt.threads.live.load(Ordering::Relaxed),
        s.peak_live.load(r)
    );
    let parks: Vec<String> = PARK_NAMES
        .iter()
        .zip(&s.parks)
        .filter(|(_, c)| c.load(r) > 0)
        .map(|(n, c)| format!("{n} {}", c.load(r)))
        .collect();
    let _ = writeln!(out, "  parks: {}", if parks.is_empty() { "none".into() } else { parks.join(", ") });
    let offs: Vec<String> = OFFLOAD_NAMES
        .iter()
        .zip(&s.offloads)
        .filter(|(_, c)| c.load(r) > 0)
        .map(|(n, c)| format!("{n} {}", c.load(r)))
        .collect();
    let _ = writeln!(
        out,
        "  offloaded to helper threads: {}",
        if offs.is_empty() { "none".into() } else { offs.join(", ") }
    );
    let _ = writeln!(
        out,
        "  kernel futex waits (io_uring): {}; polled retries: {}",
        s.kernel_futex_waits.load(r),
        s.poll_retries.load(r)
    );
    let _ = writeln!(
        out,
        "  stalls (a worker kept by one coroutine >= {} ms while others waited): {}, total {:.1} ms, longest {:.1} ms",
        rt.config.stall_ns / 1_000_000,
        s.stalls.load(r),
        ms(s.stall_ns_total.load(r)),
        ms(s.stall_ns_max.load(r))
    );
    let _ = writeln!(out, "{}", super::preempt::report_line());
    let mut sites: Vec<(String, u64, u64, u64)> =
        s.sites.lock().iter().map(|x| (x.place.clone(), x.count, x.total_ns, x.max_ns)).collect();
    sites.sort_by_key(|s| std::cmp::Reverse(s.2));
    if !sites.is_empty() {
        let _ = writeln!(out, "  where the stalls were (by total time):");
        let _ = writeln!(out, "    {:>7} {:>10} {:>9}  place", "count", "total ms", "max ms");
        for (place, n, total, max) in sites.iter().take(20) {
            let _ = writeln!(out, "    {n:>7} {:>10.1} {:>9.1}  {place}", ms(*total), ms(*max));
        }
    }
    out
}

/// Writes the report where ASYNCSHIM_STATS says (appending to a file; "stderr" for standard error).
pub fn write_report() {
    write_report_as(report);
}

/// The report with every thread's state and stack added (the report signal's answer).
pub fn write_report_with_threads() {
    write_report_as(|| report() + &super::unwind::listing::text());
}

fn write_report_as(make: impl FnOnce() -> String) {
    let Some(target) = TARGET.get() else { return };
    if !super::running() {
        return;
    }
    let text = make();
    if target == "stderr" {
        sys::write_stderr(text.as_bytes());
        return;
    }
    let Ok(path) = std::ffi::CString::new(target.as_str()) else { return };
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND | libc::O_CLOEXEC;
    // The user's chosen report file, with raw calls: nothing the program owns.
    let Ok(fd) = sys::fs::open(&path, flags, 0o644) else {
        sys::write_stderr(format!("asyncshim: cannot write statistics to {target}\n").as_bytes());
        return;
    };
    sys::fd::write_all(fd, text.as_bytes());
    let _ = sys::fd::close(fd);
}
