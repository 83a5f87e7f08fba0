//! `/proc` paths that name a thread by tid: `/proc/self/task/TID/...`, `/proc/PID/task/TID/...` and
//! `/proc/TID/...`. A coroutine's tid is no kernel task's, so the kernel has no such entry. The entry of
//! the worker that runs the thread (or ran it last) stands in for it, with the two files whose contents
//! are the thread's own made here from what the runtime knows: `comm` (its name) and `stat` (its name,
//! its tid, running or sleeping, its CPU time; the worker's for the rest, its fault counts zero as in
//! `getrusage(RUSAGE_THREAD)`). Opened for reading they are a memory file with that text; anything else
//! is the worker's entry. A tid no live thread has is left to the kernel (ENOENT).
//!
//! Also the kernel's answer to `pidfd_open` of a coroutine's tid ([`pidfd_open_non_leader`]): like any thread
//! but the main one, it leads no thread group.

use super::scheduler;
use super::sys;
use super::sys::syscall::Errno;
use super::task::TaskRef;
use super::thread::{self, Named};
use std::ffi::CString;

/// What an open of a `/proc` path becomes.
pub enum Opened {
    /// Open this path instead.
    Path(CString),
    /// Here is the open file (or the error opening it failed with).
    File(Result<i32, Errno>),
}

/// Looks at `path` (the bytes of a path that starts with "/proc/"): None when it names no coroutine.
pub fn translate(path: &[u8], flags: i32) -> Option<Opened> {
    let rest = path.strip_prefix(b"/proc/")?;
    let (first, after) = split_component(rest);
    let own_pid = sys::getpid();
    let (tid, tail, task_dir) = if first == b"self" || parse_tid(first) == Some(own_pid) {
        let after = after.strip_prefix(b"/task/")?;
        let (t, tail) = split_component(after);
        (parse_tid(t)?, tail, true)
    } else {
        (parse_tid(first)?, after, false)
    };
    let Named::Thread(task) = thread::named_by_tid(tid) else { return None };
    if task.is_main {
        // The main thread's tid is the process id, a real task (the initial OS thread, worker 0 or not).
        return None;
    }
    let worker_tid = worker_tid_of(&task);
    let read_only = flags & libc::O_ACCMODE == libc::O_RDONLY && flags & (libc::O_CREAT | libc::O_DIRECTORY) == 0;
    let made = match tail {
        b"/comm" if read_only => Some(comm_of(&task)),
        b"/stat" if read_only => stat_of(&task, tid, worker_tid),
        _ => None,
    };
    if let Some(text) = made {
        return Some(Opened::File(memory_file(&text, flags)));
    }
    let mut p = if task_dir { b"/proc/self/task/".to_vec() } else { b"/proc/".to_vec() };
    p.extend_from_slice(worker_tid.to_string().as_bytes());
    p.extend_from_slice(tail);
    CString::new(p).ok().map(Opened::Path)
}

fn split_component(s: &[u8]) -> (&[u8], &[u8]) {
    match s.iter().position(|&b| b == b'/') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, &[]),
    }
}

fn parse_tid(s: &[u8]) -> Option<i32> {
    if s.is_empty() || s.len() > 10 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// The OS thread that runs `task` now or ran it last.
fn worker_tid_of(task: &TaskRef) -> i32 {
    let workers = scheduler::get().workers;
    let w = task.last_worker.load(core::sync::atomic::Ordering::Relaxed);
    workers.get(w).map_or(sys::getpid(), |w| w.os_tid.load(core::sync::atomic::Ordering::Relaxed))
}

fn comm_of(task: &TaskRef) -> Vec<u8> {
    let mut v = task.name_bytes().to_vec();
    v.push(b'\n');
    v
}

/// The worker's `stat` line with the thread's own pid, name, state and CPU time.
fn stat_of(task: &TaskRef, tid: i32, worker_tid: i32) -> Option<Vec<u8>> {
    let path = CString::new(format!("/proc/self/task/{worker_tid}/stat")).ok()?;
    let fd = sys::fs::open(&path, libc::O_RDONLY | libc::O_CLOEXEC, 0).ok()?;
    let mut buf = vec![0u8; 4096];
    // SAFETY: reading into our own buffer.
    let n = unsafe { sys::fd::read(fd, buf.as_mut_ptr(), buf.len()) };
    let _ = sys::fd::close(fd);
    buf.truncate(n.ok()?);
    let close = buf.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(buf.get(close + 2..)?).ok()?.trim_end();
    let mut fields: Vec<String> = rest.split(' ').map(str::to_owned).collect();
    if fields.len() < 13 {
        return None;
    }
    let running = task.state.load(core::sync::atomic::Ordering::Relaxed) as u32 & 0xff == super::task::RUNNING;
    fields[0] = if running { "R" } else { "S" }.to_owned();
    // minflt, cminflt, majflt, cmajflt: not known per thread.
    for f in &mut fields[7..11] {
        *f = "0".to_owned();
    }
    // USER_HZ: the unit of these fields, 100 on x86-64 whatever the kernel's HZ.
    let ticks = 100;
    let (mut user_us, mut system_us) = (1u64, 0u64);
    // SAFETY: a zeroed rusage is valid and `ru` a valid out-pointer.
    unsafe {
        let mut ru: libc::rusage = core::mem::zeroed();
        if crate::real::getrusage(libc::RUSAGE_THREAD, &mut ru) == 0 {
            user_us = ru.ru_utime.tv_sec as u64 * 1_000_000 + ru.ru_utime.tv_usec as u64;
            system_us = ru.ru_stime.tv_sec as u64 * 1_000_000 + ru.ru_stime.tv_usec as u64;
        }
    }
    let (u, s) = super::cputime::split_user_system(super::cputime::of(task), user_us, system_us);
    let to_ticks = |ns: u64| ns / (1_000_000_000 / ticks);
    fields[11] = to_ticks(u).to_string();
    fields[12] = to_ticks(s).to_string();
    let mut out = format!("{tid} (").into_bytes();
    out.extend_from_slice(task.name_bytes());
    out.extend_from_slice(b") ");
    out.extend_from_slice(fields.join(" ").as_bytes());
    out.push(b'\n');
    Some(out)
}

/// A memory file holding `text`, read from its start, with the caller's O_CLOEXEC.
fn memory_file(text: &[u8], flags: i32) -> Result<i32, Errno> {
    let fd = sys::fd::memfd(flags & libc::O_CLOEXEC != 0)?;
    sys::fd::write_all(fd, text);
    if let Err(e) = sys::fd::lseek(fd, 0, libc::SEEK_SET) {
        let _ = sys::fd::close(fd);
        return Err(e);
    }
    Ok(fd)
}

/// What pidfd_open(`tid`, `flags`) answers for a coroutine's tid when `flags` lack PIDFD_THREAD: the
/// kernel's answer for a thread that leads no thread group (EINVAL before Linux 6.15 or so, ENOENT after),
/// asked by a short-lived OS thread of the process about itself. Ok is not expected (the fd is closed,
/// and EINVAL given).
pub fn pidfd_open_non_leader(flags: u32) -> Errno {
    struct Job {
        flags: u32,
        answer: Errno,
    }
    extern "C" fn probe(arg: *mut core::ffi::c_void) -> *mut core::ffi::c_void {
        // SAFETY: `arg` is the Job below, which outlives this thread (joined before it is read).
        let job = unsafe { &mut *(arg as *mut Job) };
        job.answer = match sys::process::pidfd_open_flags(sys::gettid(), job.flags) {
            Ok(fd) => {
                let _ = sys::fd::close(fd);
                Errno(libc::EINVAL)
            }
            Err(e) => e,
        };
        core::ptr::null_mut()
    }
    let mut job = Job { flags, answer: Errno(libc::EINVAL) };
    // SAFETY: the job outlives the probe thread, which is joined before it is read.
    if let Some(t) = unsafe { super::os_thread::start_joinable(probe, &mut job as *mut Job as *mut core::ffi::c_void) }
    {
        // SAFETY: `t` is the joinable thread just started; it returns after one system call.
        unsafe { crate::real::pthread_join(t, core::ptr::null_mut()) };
    }
    job.answer
}
