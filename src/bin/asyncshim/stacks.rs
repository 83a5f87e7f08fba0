//! `asyncshim stacks PID`: every thread of a shimmed process — coroutines and OS threads — with what it
//! does or waits on, for how long, on which worker, and its call stack.
//!
//! The library makes the listing itself (its monitor thread walks the coroutines' stacks; see the
//! library's `runtime::unwind::listing`): this command leaves a request file for it, waits for the answer
//! file and prints it. The process is never stopped.

use std::io::Write;
use std::time::{Duration, Instant};

/// Must match the library's `listing::request_path`.
fn request_path(pid: i32) -> String {
    format!("/tmp/.asyncshim-stacks.{pid}")
}

const WAIT: Duration = Duration::from_secs(10);

pub fn run(args: &[std::ffi::OsString]) -> i32 {
    let Some(pid) = args.first().and_then(|a| a.to_str()).and_then(|a| a.parse::<i32>().ok()).filter(|&p| p > 0) else {
        return super::usage_error("stacks needs a process id: asyncshim stacks PID");
    };
    let maps = match std::fs::read_to_string(format!("/proc/{pid}/maps")) {
        Ok(m) => m,
        Err(e) => return super::die(1, &format!("cannot read process {pid}: {e}")),
    };
    if !maps.contains(super::LIB_NAME) {
        return super::die(1, &format!("process {pid} does not run under {}", super::LIB_NAME));
    }
    let request = request_path(pid);
    let answer = format!("{request}.out");
    let _ = std::fs::remove_file(&answer);
    let _ = std::fs::remove_file(&request);
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Err(e) = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&request)
    {
        return super::die(1, &format!("cannot create {request}: {e}"));
    }
    let start = Instant::now();
    while start.elapsed() < WAIT {
        // Only an answer the process itself wrote (same owner as the process: nobody else's file in /tmp).
        let owner_ok = |path: &str| {
            use std::os::unix::fs::MetadataExt as _;
            let owner = std::fs::metadata(format!("/proc/{pid}")).map(|m| m.uid()).ok();
            std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file() && Some(m.uid()) == owner)
        };
        if owner_ok(&answer)
            && let Ok(text) = std::fs::read_to_string(&answer)
        {
            let _ = std::fs::remove_file(&answer);
            let _ = std::io::stdout().write_all(text.as_bytes());
            return 0;
        }
        if std::fs::metadata(format!("/proc/{pid}")).is_err() {
            let _ = std::fs::remove_file(&request);
            return super::die(1, &format!("process {pid} ended before it answered"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = std::fs::remove_file(&request);
    super::die(
        1,
        &format!(
            "process {pid} did not answer within {} s: its monitor thread is not running (a program with one \
             thread, or ASYNCSHIM_STALL_MS=0 without ASYNCSHIM_STATS_SIGNAL)",
            WAIT.as_secs()
        ),
    )
}
