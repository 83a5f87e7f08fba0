//! The statistics report: the counters with the scheduler's and the threads' state, written at exit, on
//! the report signal (with every thread's stack) and where `ASYNCSHIM_STATS` says.

use super::super::signals::{held, queued};
use super::super::{io, lifecycle, preempt, scheduler, sys, thread, unwind};
use super::{OFFLOAD_NAMES, PARK_NAMES, TARGET, get, named_counts};
use crate::config;
use core::sync::atomic::Ordering;
use std::fmt::Write as _;

/// Called once at start-up with the configuration (the report signal is `signals::install`'s).
pub fn init(target: Option<&str>) {
    let _ = get();
    let Some(t) = target else { return };
    let _ = TARGET.set(t.to_string());
    extern "C" fn at_exit() {
        write_report();
    }
    // SAFETY: registering a plain function.
    unsafe { libc::atexit(at_exit) };
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// The report as text.
pub fn report() -> String {
    let s = get();
    let sched = scheduler::get();
    let threads = thread::registry();
    let config = config::get();
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
        sched.base,
        sched.started().saturating_sub(sched.retired()),
        s.spares_started.load(r),
        s.spares_revived.load(r),
        s.spares_retired.load(r),
        s.idle_woken_for_stall.load(r)
    );
    let _ = writeln!(
        out,
        "  lock convoys: a worker sat out {} times, {:.1} ms in all; the rate rule paused {} times (the worker left alone waited for a CPU)",
        s.convoy_sit_outs.load(r),
        ms(s.convoy_sit_out_ns.load(r)),
        s.convoy_loaded.load(r)
    );
    let _ = writeln!(
        out,
        "  between workers: coroutines stolen {}, resumed on another worker {}, idle workers woken {}; lock waits right after a lock wait's wake-up {} (after its timeout {}); hand-offs held {} µs now",
        s.stolen.load(r),
        sched.workers.iter().map(|w| w.migrations.load(r)).sum::<u64>(),
        s.idle_wakeups.load(r),
        s.lock_rewaits.load(r),
        s.lock_rewaits_after_timeout.load(r),
        sched.handoff_grace_ns() / 1_000
    );
    let (global, ws) = sched.snapshot();
    let ws: Vec<String> = ws.iter().map(|(id, n, st)| format!("#{id} {st}, {n} queued")).collect();
    let _ = writeln!(out, "  run queues: global {global}; workers: {}", ws.join("; "));
    let [running, queued, parked] = threads.phases();
    let _ = writeln!(
        out,
        "  coroutines: created {}, live {} (running {running}, queued {queued}, waiting {parked}), peak {}",
        s.created.load(r),
        threads.live.load(Ordering::Relaxed),
        s.peak_live.load(r)
    );
    let source = io::netpoll::source_name();
    let _ = writeln!(
        out,
        "  netpoller: {} (io_uring in use: {})",
        source.unwrap_or("not started"),
        (source == Some("uring")) as u8
    );
    let parks: [core::sync::atomic::AtomicU64; PARK_NAMES.len()] = core::array::from_fn(|i| {
        core::sync::atomic::AtomicU64::new(sched.workers.iter().map(|w| w.parks[i].load(r)).sum())
    });
    let _ = writeln!(out, "  parks: {}", named_counts(&PARK_NAMES, &parks));
    let _ = writeln!(out, "  offloaded to helper threads: {}", named_counts(&OFFLOAD_NAMES, &s.offloads));
    let _ = writeln!(
        out,
        "  kernel futex waits (io_uring): {}; polled retries: {}",
        s.kernel_futex_waits.load(r),
        s.poll_retries.load(r)
    );
    let (peak, refused) = queued::usage();
    let _ = writeln!(
        out,
        "  queued signals: at most {peak} of {} siginfos at once; pool full {refused} times (held process-directed instances kept without their siginfo {})",
        queued::SLOTS,
        held::unrecorded()
    );
    let _ = writeln!(
        out,
        "  stalls (a worker kept by one coroutine >= {} ms while others waited): {}, total {:.1} ms, longest {:.1} ms",
        config.stall_ns / 1_000_000,
        s.stalls.load(r),
        ms(s.stall_ns_total.load(r)),
        ms(s.stall_ns_max.load(r))
    );
    let _ = writeln!(out, "{}", preempt::report_line());
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
    write_report_as(|| report() + &unwind::listing::text());
}

fn write_report_as(make: impl FnOnce() -> String) {
    let Some(target) = TARGET.get() else { return };
    if !lifecycle::running() {
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
