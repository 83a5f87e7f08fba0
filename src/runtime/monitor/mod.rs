//! The monitor: one OS thread that keeps a worker stuck in one coroutine from stalling the coroutines queued
//! behind it. The kernel preempts threads; coroutines switch only where the shim sees a call, so a CPU-bound
//! thread, or a blocking call the shim cannot see (glibc's internal `read` under `fgets`, the resolver's
//! `poll`), holds its worker. Modelled on Go's sysmon:
//!
//! - Every worker counts the coroutines it resumes. A worker whose count has not moved while it runs a
//!   coroutine is marked *stalled* after `ASYNCSHIM_STALL_MS` (default 5 ms — about the time slice the
//!   kernel's scheduler would have given a competing thread by then) if its OS thread sleeps in a system
//!   call, and once it has also burnt that much CPU time if it computes (see [`is_stall`]).
//! - While any worker is stalled and work is waiting (queued coroutines, due timers, fd readiness nobody
//!   polls), an idle worker is woken to take it (coroutines carry their own identity, so any worker may run
//!   them); if none is idle, a retired spare is revived or a new spare worker started, up to
//!   `ASYNCSHIM_MAX_SPARES`. Spares retire when they fall idle while enough unstalled workers remain.
//! - A coroutine that computes past its time slice while work waits is preempted first (see
//!   [`super::preempt`]); only when preemption keeps failing for a stall period (the coroutine runs inside
//!   glibc, in a callback glibc made, ...) does the stall rule above apply to it. The stall report then
//!   says why it could not be preempted, and for a worker blocked in the kernel which call the shim could
//!   not see (a glibc-internal futex, an unhooked call).
//! - The monitor looks again when a worker could first be declared stalled (at most one stall period
//!   later; a quarter of one while a computing candidate or a stall is being handled) or when the run it
//!   has just seen begin would use up its preemption slice, whichever is first, and backs off to
//!   [`MAX_IDLE_TICK_NS`] while all workers idle: at most once a slice while a worker is busy. Looking
//!   more often costs a busy server throughput, since each timer wake-up is expensive (README, Stalls, has
//!   the rates and costs measured).
//!
//! A worker ends its stall itself at its next scheduling point (`Scheduler::end_stall`), from the record
//! the monitor leaves in it ([`stall::StallRecord`], a leaf the core holds).
//! What others need of the monitor is in leaves too: [`wake`] (starting it, whether it runs, and waking it
//! early: the signal handlers and the fault report ring it) and [`kernel_view`] (what `/proc` shows of an OS
//! thread, which the thread listing shows as well).
//!
//! With `ASYNCSHIM_STATS` it also samples where each stall happens (see [`site`]) and writes the report when
//! the report signal arrives.

use super::scheduler::{self, AddedWorker};
use super::stats;
use super::sys::{self, time};
use super::task::TaskRef;
use super::unwind::{self, symbols::dl_info};
use super::worker::Worker;
use core::sync::atomic::Ordering;

pub mod kernel_view;
pub mod stall;
pub mod wake;

use kernel_view::{in_kernel, sleeping, syscall_name};

const MAX_IDLE_TICK_NS: u64 = 50_000_000;

pub use wake::ensure_started;

/// Makes the monitor startable (its thread's body, given to [`wake`]). Called once at start-up.
pub fn init() {
    wake::set_entry(monitor_main);
}

/// What the monitor remembers of one worker between checks.
#[derive(Clone, Copy, Default)]
struct Seen {
    switches: u32,
    since: u64,
    /// The worker's OS thread CPU time when the run was seen to begin (0: not read yet).
    run_cpu_at: u64,
    /// When the worker became a stall candidate, and its OS thread's CPU time then (0: not a candidate).
    candidate_at: u64,
    cpu_at: u64,
}

extern "C" fn monitor_main(_: *mut libc::c_void) -> *mut libc::c_void {
    // A plain thread for the hooks (GS 0), and no process signal may land here instead of in the program
    // (it was created with the runtime threads' mask, which leaves faults and glibc's set*id signal open).
    // SAFETY: clearing our own GS base.
    unsafe { sys::fsgs::set_gs_base(0) };
    let sched = scheduler::get();
    let stall_ns = crate::config::get().stall_ns;
    let busy_tick = (stall_ns / 4).max(250_000);
    let slice_ns = super::preempt::slice_ns();
    let min_tick = if slice_ns == 0 { busy_tick } else { busy_tick.min((slice_ns / 2).max(250_000)) };
    let mut seen = vec![Seen::default(); sched.workers.len()];
    let mut expired = Vec::new();
    let mut tick = busy_tick;
    loop {
        wake::sleep(tick);
        if stats::REPORT_REQUESTED.swap(false, Ordering::AcqRel) {
            stats::report::write_report_with_threads();
        }
        unwind::fault::serve();
        unwind::listing::serve_request();
        if stall_ns == 0 && super::preempt::slice_ns() == 0 {
            tick = MAX_IDLE_TICK_NS;
            continue;
        }
        let now = time::monotonic_ns();
        let mut busy = false;
        // The earliest moment a worker could be declared stalled: no need to look before.
        let mut next_look = now + stall_ns;
        for w in &sched.workers[..sched.started()] {
            let s = &mut seen[w.id];
            let switches = w.switches.load(Ordering::Relaxed);
            let Some(task) = w.running_task() else {
                *s = Seen { switches, since: now, ..Seen::default() };
                continue;
            };
            busy = true;
            // A timer on the running thread's CPU-time clock: fired when due, looked at again no later
            // than the CPU time it has left.
            if let Some(left) = super::worker::check_cpu_timers(task) {
                next_look = next_look.min(now + left);
            }
            if switches != s.switches {
                *s = Seen {
                    switches,
                    since: now,
                    run_cpu_at: if slice_ns != 0 {
                        kernel_view::thread_cpu_ns(w.os_tid.load(Ordering::Relaxed))
                    } else {
                        0
                    },
                    ..Seen::default()
                };
                // A run that began since the last look: back when its slice ends.
                if slice_ns != 0 {
                    next_look = next_look.min(now + slice_ns);
                }
                continue;
            }
            // Preemption goes on being tried on a stalled worker too: it ends the stall sooner than the
            // coroutine would.
            let tid = w.os_tid.load(Ordering::Relaxed);
            let running = || in_kernel(tid).is_none_or(|(nr, _, _)| nr < 0);
            let run_cpu_at = &mut s.run_cpu_at;
            let cpu_used = || {
                let cpu = kernel_view::thread_cpu_ns(w.os_tid.load(Ordering::Relaxed));
                if *run_cpu_at == 0 {
                    *run_cpu_at = cpu;
                }
                cpu.saturating_sub(*run_cpu_at)
            };
            if let Some(look) = super::preempt::monitor_look(w, switches, s.since, now, cpu_used, running) {
                next_look = next_look.min(look.max(now + min_tick / 2));
            }
            if stall_ns == 0 || w.stalled.load(Ordering::Relaxed) {
                continue;
            }
            if now - s.since < stall_ns {
                next_look = next_look.min(s.since + stall_ns);
                continue;
            }
            if s.candidate_at == 0 {
                s.candidate_at = now;
                s.cpu_at = kernel_view::thread_cpu_ns(w.os_tid.load(Ordering::Relaxed));
            }
            if is_stall(w, s, stall_ns) {
                mark_stalled(w, task, s.since);
            } else {
                // A candidate: watch its CPU time closely.
                next_look = next_look.min(now + busy_tick);
            }
        }
        let relieving = sched.stalled.load(Ordering::Acquire) > 0;
        if relieving {
            relieve(sched, &mut expired);
        }
        tick = if relieving {
            busy_tick
        } else if busy {
            next_look.saturating_sub(now).clamp(min_tick, if stall_ns == 0 { MAX_IDLE_TICK_NS } else { stall_ns })
        } else {
            (tick * 2).min(MAX_IDLE_TICK_NS)
        };
    }
}

fn mark_stalled(w: &Worker, task: TaskRef, since: u64) {
    // A call that waits in the kernel on the worker goes on on a helper thread, the coroutine parked.
    super::worker_call::abort(task);
    w.stall.begin(since, stats::enabled().then(|| site(w, task)));
    w.stalled.store(true, Ordering::Release);
    scheduler::get().stalled.fetch_add(1, Ordering::AcqRel);
    // The worker may have moved on between our look and the mark; then undo it ourselves (once: swap).
    if w.running_task() != Some(task) && w.stalled.swap(false, Ordering::AcqRel) {
        scheduler::get().stalled.fetch_sub(1, Ordering::AcqRel);
        w.stall.take();
    }
}

/// Work waits while workers are stalled: run what stalled workers would have run, and get a worker for it —
/// an idle one, or a spare as long as fewer than the configured number of workers are unstalled.
fn relieve(sched: &super::scheduler::Scheduler, expired: &mut Vec<(TaskRef, u32)>) {
    // Stalled workers neither fire timers nor poll fds; if no worker is left to do it, the monitor does
    // (the woken coroutines go to the global queue).
    if sched.unstalled_workers() == 0 {
        sched.fire_timers(expired);
        if super::io::netpoll::exists() {
            sched.poll_net(0);
        }
    }
    if !sched.work_pending() {
        return;
    }
    let s = stats::get();
    match sched.add_worker_for_stall() {
        AddedWorker::Woken => stats::count(&s.idle_woken_for_stall),
        AddedWorker::Revived => stats::count(&s.spares_revived),
        AddedWorker::Started => stats::count(&s.spares_started),
        AddedWorker::None => {}
    }
}

/// Whether worker `w`, which has run one coroutine for at least a stall period, is stalled by it:
/// - blocked in a system call: yes — unless in the runtime's own lock wait (a short critical section of a
///   worker the kernel preempted; a spare would only add to the crowd);
/// - computing: once it has also used a stall period of CPU time since it became a candidate (so after
///   10 ms on an idle machine, later on a loaded one, never for a worker that is only preempted).
fn is_stall(w: &Worker, s: &Seen, stall_ns: u64) -> bool {
    let tid = w.os_tid.load(Ordering::Relaxed);
    match in_kernel(tid) {
        Some((nr, _, pc)) if nr >= 0 && sleeping(tid) => !(nr == libc::SYS_futex && in_this_library(pc)),
        _ => {
            // Running, or waiting for a CPU. What marks a hog is CPU time, not wall time: one stall period
            // of CPU consumed on this coroutine since it became a candidate. A worker the kernel merely
            // preempted on a loaded machine accumulates none, and a spare for it would only add to the
            // crowd (and be preempted in turn: wall-time rules once made a loaded run start 115 spares);
            // a real hog is found after one period of its own CPU however loaded the machine is.
            // Preemption deals with a computing coroutine unless it has been failing for a while.
            kernel_view::thread_cpu_ns(w.os_tid.load(Ordering::Relaxed)).saturating_sub(s.cpu_at) >= stall_ns
                && !super::preempt::handles(w, stall_ns)
        }
    }
}

/// True when `pc` is inside libasyncshim itself.
fn in_this_library(pc: usize) -> bool {
    let here = dl_info(in_this_library as *const () as usize).map(|i| i.dli_fbase as usize);
    dl_info(pc).map(|i| i.dli_fbase as usize) == here && here.is_some()
}

/// Where `task` keeps worker `w`: the system call it is blocked in (from /proc/self/task/TID/syscall) and
/// its callers, walked exactly from the stack and instruction pointers the kernel shows (see `unwind`), or
/// "running on the CPU".
fn site(w: &Worker, task: TaskRef) -> String {
    let name = String::from_utf8_lossy(task.name_bytes()).into_owned();
    let Some((nr, sp, pc)) = in_kernel(w.os_tid.load(Ordering::Relaxed)) else {
        return format!("thread \"{name}\": running on the CPU (no system call){}", super::preempt::stall_note(w));
    };
    let head =
        if nr < 0 { "blocked outside a system call".to_string() } else { format!("blocked in {}()", syscall_name(nr)) };
    // Eleven frames: from glibc 2.41 a blocking call goes through three internal cancellation frames
    // (__syscall_cancel and co.) before the function the program called.
    let mut names = unwind::program_frames(unwind::Regs { pc, sp, bp: 0 }, 11, false);
    if names.is_empty() {
        names.push(unwind::symbols::describe(pc, true));
    }
    format!("thread \"{name}\": {head} at {}{}", names.join(" <- "), invisible_cause(nr, pc))
}

/// Why the shim could not see a blocking call coming (the monitor is the last resort for these).
fn invisible_cause(nr: i64, pc: usize) -> String {
    let object = dl_info(pc).map(|i| {
        // SAFETY: dladdr's file name is NUL-terminated and lives while the object is loaded.
        let path = unsafe { std::ffi::CStr::from_ptr(i.dli_fname) }.to_string_lossy().into_owned();
        path.rsplit('/').next().unwrap_or(&path).to_string()
    });
    let in_glibc = object.as_deref().is_some_and(|o| o.starts_with("libc.so") || o.starts_with("libpthread"));
    match nr {
        n if n < 0 => String::new(),
        libc::SYS_futex if in_glibc => " [invisible to the shim: a glibc-internal futex wait]".into(),
        libc::SYS_futex => " [invisible to the shim: a futex wait made directly]".into(),
        _ => format!(" [invisible to the shim: {}() called where no hook sees it]", syscall_name(nr)),
    }
}
