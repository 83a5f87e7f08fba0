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
//!   50 ms while all workers idle: at most once a slice while a worker is busy (an echo server at 1,000
//!   connections wakes it ~90 times a second: its workers are often in `epoll_wait`), an idle process 20.
//!   (Four looks per period cost a busy echo server ~10% of its throughput at 10,000 connections on this
//!   2-vCPU VM, where each timer wake-up is expensive.)
//!
//! With `ASYNCSHIM_STATS` it also samples where each stall happens (see [`site`]) and writes the report when
//! the report signal arrives.

use super::scheduler::{self, AddedWorker};
use super::stats;
use super::sys::{self, futex, time};
use super::task::TaskRef;
use super::unwind::{self, symbols::dl_info};
use super::worker::Worker;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

static STARTED: AtomicBool = AtomicBool::new(false);
/// The monitor sleeps on this word; bumped to wake it early (report requested).
static WAKE: AtomicU32 = AtomicU32::new(0);
const MAX_IDLE_TICK_NS: u64 = 50_000_000;

/// Starts the monitor once the program has a second thread (a lone coroutine can stall nothing).
#[inline]
pub fn ensure_started() {
    if !STARTED.load(Ordering::Relaxed) && !STARTED.swap(true, Ordering::AcqRel) {
        let config = &crate::config::get();
        // ASYNCSHIM_STALL_MS=0 turns stall detection off; the thread is then only there for the report signal.
        if config.stall_ns == 0 && config.slice_ns == 0 && config.stats_signal.is_none() {
            return;
        }
        // SAFETY: the monitor takes no argument and lives for the process.
        if !unsafe { super::thread::start_os_thread(monitor_main, core::ptr::null_mut()) } {
            STARTED.store(false, Ordering::Release);
        }
    }
}

/// True once the monitor thread runs or is starting (async-signal-safe).
pub fn started() -> bool {
    let config = &crate::config::get();
    STARTED.load(Ordering::Acquire) && (config.stall_ns != 0 || config.stats_signal.is_some())
}

/// Wakes the monitor now (async-signal-safe).
pub fn poke() {
    WAKE.fetch_add(1, Ordering::Release);
    futex::wake(&WAKE, 1);
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

/// Per worker: when its current stall began and where (written by the monitor, taken by the worker).
pub struct StallRecord {
    since: AtomicU64,
    place: super::lock::Lock<Option<String>>,
}

impl StallRecord {
    pub const fn new() -> StallRecord {
        StallRecord { since: AtomicU64::new(0), place: super::lock::Lock::new(None) }
    }
}

impl Default for StallRecord {
    fn default() -> Self {
        Self::new()
    }
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
        let word = WAKE.load(Ordering::Acquire);
        futex::wait(&WAKE, word, Some(time::monotonic_ns() + tick));
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
            if switches != s.switches {
                *s = Seen {
                    switches,
                    since: now,
                    run_cpu_at: if slice_ns != 0 { thread_cpu_ns(w) } else { 0 },
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
                let cpu = thread_cpu_ns(w);
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
                s.cpu_at = thread_cpu_ns(w);
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
    w.stall.since.store(since, Ordering::Relaxed);
    if stats::enabled() {
        *w.stall.place.lock() = Some(site(w, task));
    }
    w.stalled.store(true, Ordering::Release);
    scheduler::get().stalled.fetch_add(1, Ordering::AcqRel);
    // The worker may have moved on between our look and the mark; then undo it ourselves (once: swap).
    if w.running_task() != Some(task) && w.stalled.swap(false, Ordering::AcqRel) {
        scheduler::get().stalled.fetch_sub(1, Ordering::AcqRel);
        w.stall.place.lock().take();
    }
}

/// Work waits while workers are stalled: run what stalled workers would have run, and get a worker for it —
/// an idle one, or a spare as long as fewer than the configured number of workers are unstalled.
fn relieve(sched: &super::scheduler::Scheduler, expired: &mut Vec<(TaskRef, u32)>) {
    // Stalled workers neither fire timers nor poll fds; if no worker is left to do it, the monitor does
    // (the woken coroutines go to the global queue).
    if sched.unstalled_workers() == 0 {
        sched.fire_timers(expired);
        if super::netpoll::exists() {
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

/// Called by worker `w` at its next scheduling point after the monitor marked it stalled; `task` is the
/// coroutine that stalled it when known.
pub fn stall_ended(w: &Worker) {
    if !w.stalled.swap(false, Ordering::AcqRel) {
        return;
    }
    scheduler::get().stalled.fetch_sub(1, Ordering::AcqRel);
    let since = w.stall.since.load(Ordering::Relaxed);
    let place = w.stall.place.lock().take();
    stats::stall(time::monotonic_ns().saturating_sub(since), place);
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
            thread_cpu_ns(w).saturating_sub(s.cpu_at) >= stall_ns && !super::preempt::handles(w, stall_ns)
        }
    }
}

/// What /proc/self/task/TID/syscall says of a thread that is not running: the system call it is in (-1:
/// none) and its stack and instruction pointers. None while it runs (or if the file cannot be read).
pub(super) fn in_kernel(tid: i32) -> Option<(i64, usize, usize)> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).ok()?;
    let fields: Vec<&str> = text.split_whitespace().collect();
    let hex = |s: &str| usize::from_str_radix(s.trim_start_matches("0x"), 16).ok();
    let nr = fields.first()?.parse::<i64>().ok()?;
    let (sp, pc) = match fields.len() {
        n if n >= 3 => (hex(fields[n - 2])?, hex(fields[n - 1])?),
        _ => return None,
    };
    Some((nr, sp, pc))
}

/// True when the OS thread sleeps (state S or D): one the kernel preempted inside a system call also
/// shows that call in /proc, but it waits for a CPU, not for an event.
fn sleeping(tid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")) else { return false };
    let state = stat.rfind(')').and_then(|i| stat[i + 1..].trim_start().chars().next());
    matches!(state, Some('S' | 'D'))
}

/// CPU time consumed so far by worker `w`'s OS thread (its per-thread CPU clock, readable process-wide).
fn thread_cpu_ns(w: &Worker) -> u64 {
    let tid = w.os_tid.load(Ordering::Relaxed);
    // The kernel's encoding of a thread's CPUCLOCK_SCHED clock (what pthread_getcpuclockid returns).
    let clock = ((!tid) << 3) | 6;
    time::now_ns(clock).unwrap_or(0)
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

pub(super) fn syscall_name(nr: i64) -> String {
    let name = match nr {
        0 => "read",
        1 => "write",
        7 => "poll",
        17 => "pread64",
        18 => "pwrite64",
        19 => "readv",
        20 => "writev",
        23 => "select",
        35 => "nanosleep",
        42 => "connect",
        43 => "accept",
        44 => "sendto",
        45 => "recvfrom",
        46 => "sendmsg",
        47 => "recvmsg",
        61 => "wait4",
        72 => "fcntl",
        73 => "flock",
        74 => "fsync",
        75 => "fdatasync",
        202 => "futex",
        230 => "clock_nanosleep",
        232 => "epoll_wait",
        257 => "openat",
        270 => "pselect6",
        271 => "ppoll",
        281 => "epoll_pwait",
        288 => "accept4",
        _ => return format!("system call {nr}"),
    };
    name.to_string()
}
