//! Every thread of the program with what it does or waits on, for how long, where, and its exact call
//! stack: what `asyncshim stacks PID` prints (like jstack or pstack, which see only the workers) and what
//! the statistics report adds on its signal (like Go's SIGQUIT dump).
//!
//! The listing is made inside the process by the monitor thread, which never stops the program: parked
//! coroutines are walked from the registers they saved when they switched out, coroutines holding a worker
//! in a system call and plain OS threads from what `/proc/self/task/TID/syscall` shows. A thread that moves
//! on while it is being walked gives a shorter stack, never a fault (all reads are fault-safe).
//!
//! How `asyncshim stacks PID` asks: it creates the request file [`request_path`] (the monitor looks for it
//! at least every `monitor::MAX_IDLE_TICK_NS`: one `newfstatat`), and the monitor writes the listing to the answer file beside it,
//! created exclusively (no symbolic link followed), then renamed into place. A request is honoured only
//! from the process's own user or root.

use super::super::monitor::kernel_view;
use super::super::park::WaitReason;
use super::super::sys::{self, time};
use super::super::task::{self, TaskRef};
use super::super::{scheduler, thread};
use super::{Regs, program_frames};
use core::sync::atomic::{AtomicU64, Ordering};
use std::ffi::CString;
use std::fmt::Write as _;
use std::sync::OnceLock;

/// Frames shown per thread.
const MAX_FRAMES: usize = 24;

/// Where `asyncshim stacks` puts its request for process `pid`; the answer goes to the same name with
/// `.out` added.
pub fn request_path(pid: i32) -> String {
    format!("/tmp/.asyncshim-stacks.{pid}")
}

/// The listing as text.
pub fn text() -> String {
    let mut out = String::new();
    let sched = scheduler::get();
    let workers = &sched.workers[..sched.started()];
    let tasks = thread::registry().live_tasks();
    let _ = writeln!(
        out,
        "asyncshim threads: pid {}, {} program threads as coroutines on {} workers",
        sys::getpid(),
        tasks.len(),
        workers.len()
    );
    for t in &tasks {
        let on_worker = workers.iter().find(|w| w.running_task() == Some(*t));
        let name = String::from_utf8_lossy(t.name_bytes()).into_owned();
        let main = if t.is_main { ", main" } else { "" };
        let (what, regs) = match on_worker {
            Some(w) => {
                let tid = w.os_tid.load(Ordering::Relaxed);
                match kernel_view::in_kernel(tid) {
                    Some((nr, sp, pc)) if nr >= 0 => (
                        format!(
                            "running, in {}() on worker #{} (OS thread {tid})",
                            kernel_view::syscall_name(nr),
                            w.id
                        ),
                        Some(Regs { pc, sp, bp: 0 }),
                    ),
                    _ => (format!("running on the CPU on worker #{} (OS thread {tid})", w.id), None),
                }
            }
            None => (state_of(t), t.switched_out_regs()),
        };
        let _ = writeln!(out, "\nthread {} \"{name}\" (coroutine{main}): {what}", t.tid.get());
        match regs {
            Some(r) => {
                for f in program_frames(r, MAX_FRAMES, true) {
                    let _ = writeln!(out, "    {f}");
                }
            }
            None if on_worker.is_none() => {
                let _ = writeln!(out, "    (not started yet)");
            }
            None => {}
        }
    }
    os_threads(&mut out, workers);
    out
}

/// What a coroutine that no worker runs is doing.
fn state_of(t: &TaskRef) -> String {
    let phase = t.state.load(Ordering::Acquire) as u32 & 0xff;
    let worker = t.last_worker.load(Ordering::Relaxed);
    if phase == task::RUNNABLE || phase == task::NOTIFIED {
        return format!("runnable, queued for a worker (last ran on worker #{worker})");
    }
    let [kind, on, since] = t.waiting_for.each_ref().map(|a| a.load(Ordering::Relaxed));
    let how_long = format!("{:.3} s", super::super::cputime::account::stamp_age_ns(since) as f64 / 1e9);
    let what = match WaitReason::from_index((kind as usize).wrapping_sub(1)) {
        Some(WaitReason::FdRead) => format!("waiting for fd {on} to be readable"),
        Some(WaitReason::FdWrite) => format!("waiting for fd {on} to be writable"),
        Some(WaitReason::Poll) => "waiting in poll/select/epoll_wait".to_string(),
        Some(WaitReason::Sleep) if on != 0 => {
            let left = on.saturating_sub(time::monotonic_ns()) as f64 / 1e9;
            format!("sleeping, {left:.3} s left")
        }
        Some(WaitReason::Sleep) => "waiting for a signal".to_string(),
        Some(WaitReason::Mutex) => format!("waiting for mutex {on:#x}"),
        Some(WaitReason::Cond) => format!("waiting on condition variable {on:#x}"),
        Some(WaitReason::RwLock) => format!("waiting for rwlock {on:#x}"),
        Some(WaitReason::Semaphore) => format!("waiting on semaphore {on:#x}"),
        Some(WaitReason::Barrier) => format!("waiting at barrier {on:#x}"),
        Some(WaitReason::Futex) => format!("waiting on futex {on:#x}"),
        Some(WaitReason::Once) => format!("waiting for pthread_once {on:#x}"),
        Some(WaitReason::Join) => {
            let target = thread::registry().lookup(on as libc::pthread_t);
            match target {
                Some(x) => format!("joining thread {} \"{}\"", x.tid.get(), String::from_utf8_lossy(x.name_bytes())),
                None => format!("joining thread {on:#x}"),
            }
        }
        Some(WaitReason::Offload) => "waiting for a call run on a helper thread".to_string(),
        None => "parked".to_string(),
    };
    format!("{what}, for {how_long} (last ran on worker #{worker})")
}

/// The process's OS threads: the workers (what they run), the runtime's helpers, and any thread of the
/// program that runs as a plain OS thread, with its stack where the kernel shows its registers.
fn os_threads(out: &mut String, workers: &[super::super::worker::Worker]) {
    let me = sys::gettid();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return };
    let mut tids: Vec<i32> = dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
    tids.sort();
    let _ = writeln!(out, "\nOS threads: {}", tids.len());
    for tid in tids {
        let comm = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).unwrap_or_default();
        let comm = comm.trim_end();
        let role = match workers.iter().find(|w| w.os_tid.load(Ordering::Relaxed) == tid) {
            Some(w) => match w.running_task() {
                Some(t) => format!("worker #{}, running thread {}", w.id, t.tid.get()),
                None => format!("worker #{}, idle", w.id),
            },
            None if tid == me => "the runtime's monitor (writing this listing)".to_string(),
            None => "not a worker".to_string(),
        };
        let kernel = kernel_view::in_kernel(tid);
        let state = match kernel {
            Some((nr, _, _)) if nr >= 0 => format!("in {}()", kernel_view::syscall_name(nr)),
            _ if tid == me => String::new(),
            _ => "running".to_string(),
        };
        let _ =
            writeln!(out, "  OS thread {tid} \"{comm}\": {role}{}{state}", if state.is_empty() { "" } else { ", " });
        // Workers' own loops are the runtime's; other threads may be the program's.
        let is_worker = workers.iter().any(|w| w.os_tid.load(Ordering::Relaxed) == tid);
        if let (false, true, Some((nr, sp, pc))) = (is_worker, tid != me, kernel)
            && nr >= 0
        {
            for f in program_frames(Regs { pc, sp, bp: 0 }, MAX_FRAMES, true) {
                let _ = writeln!(out, "      {f}");
            }
        }
    }
}

/// Answers a waiting `asyncshim stacks` request, if there is one (called by the monitor at every tick).
pub fn serve_request() {
    // At most 20 looks a second, however often the monitor ticks while it handles a stall.
    static LAST_LOOK: AtomicU64 = AtomicU64::new(0);
    let now = time::monotonic_coarse_ns();
    if now.saturating_sub(LAST_LOOK.load(Ordering::Relaxed)) < 50_000_000 {
        return;
    }
    LAST_LOOK.store(now, Ordering::Relaxed);
    static PATH: OnceLock<(CString, String)> = OnceLock::new();
    let (request, answer) = super::super::lazy::get_or_init(&PATH, || {
        let p = request_path(sys::getpid());
        (CString::new(p.clone()).unwrap_or_default(), format!("{p}.out"))
    });
    let Ok(st) = sys::fs::lstat(request) else { return };
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let _ = std::fs::remove_file(request.to_str().unwrap_or_default());
    if st.st_mode & libc::S_IFMT != libc::S_IFREG || (st.st_uid != euid && st.st_uid != 0) {
        return;
    }
    let listing = text();
    let partial = format!("{answer}.{}", sys::gettid());
    let _ = std::fs::remove_file(&partial);
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&partial)
        .and_then(|mut f| f.write_all(listing.as_bytes()));
    if written.is_ok() {
        let _ = std::fs::rename(&partial, answer);
    } else {
        let _ = std::fs::remove_file(&partial);
    }
}
