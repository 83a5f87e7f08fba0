//! Configuration from the environment, read once at start-up.
//!
//! | variable | meaning |
//! |---|---|
//! | `ASYNCSHIM=off` | pass every call through: the program runs exactly as without the shim |
//! | `ASYNCSHIM_WORKERS=N` | at most N worker OS threads (default: online CPUs) |
//! | `ASYNCSHIM_STACK_SIZE=S` | default thread stack in bytes, K/M/G suffixes as `64K` or `64KiB` (grammar in `env_values`; default: RLIMIT_STACK, as glibc) |
//! | `ASYNCSHIM_NO_FSGSBASE=1` | use `arch_prctl` instead of the FSGSBASE instructions (for testing the fallback) |
//! | `ASYNCSHIM_STALL_MS=N` | a worker kept this long by one blocked (or this long and this much CPU by one computing) coroutine while others wait is stalled (default 5; 0 turns the monitor off) |
//! | `ASYNCSHIM_SLICE_MS=N` | a coroutine computing this long while others wait is preempted (default 2; 0: never) |
//! | `ASYNCSHIM_MAX_SPARES=N` | at most N spare workers started while workers are stalled (default 256; 0: none) |
//! | `ASYNCSHIM_CONVOY_STREAK=N` | lock waits in a row that make a worker sit out a lock convoy (default 64; 0: never) |
//! | `ASYNCSHIM_CONVOY_SHARE=P` | percent of a worker's last 64 parks that are lock waits right after another kind of wait that make it sit out a lock convoy (default 12; 0: never) |
//! | `ASYNCSHIM_HANDOFF_GRACE_US=N` | a coroutine woken by another stays on the waker's worker, out of other workers' reach, while the waker's run is younger than this, longer (up to 4 ms) while such coroutines taken early only wait again (default 100; 0: others may take it at once; bench/web/ANALYSIS.md sections 8-10) |
//! | `ASYNCSHIM_COND_MORPH=1` | wait morphing: a condition variable signalled while its waiters' mutex is locked moves them onto the mutex's queue instead of waking them (with two or more workers; default 0: off, see bench/web/ANALYSIS.md section 9) |
//! | `ASYNCSHIM_IO=epoll\|uring` | the netpoller's readiness source: epoll (default) or io_uring multishot polls (falls back to epoll where io_uring is missing or forbidden) |
//! | `ASYNCSHIM_STATS=stderr\|PATH` | write the runtime's statistics there at exit |
//! | `ASYNCSHIM_STATS_SIGNAL=SIG` | also write them whenever this signal arrives (a number, or a name like `USR2`) |

use crate::env_values::{parse_stack_size, parse_workers};
use std::ffi::CStr;

#[derive(Debug, Clone)]
pub struct Config {
    pub enabled: bool,
    pub workers: usize,
    /// Default stack for new threads; None means "what glibc would give".
    pub stack_size: Option<usize>,
    pub force_arch_prctl: bool,
    /// How long a worker may run one coroutine while others wait before the monitor steps in.
    pub stall_ns: u64,
    pub max_spares: usize,
    /// Time slice after which a computing coroutine is preempted (`runtime::preempt`); 0: never.
    pub slice_ns: u64,
    /// Lock waits in a row that make a worker sit out a lock convoy (`runtime::convoy`); 0: never.
    pub convoy_streak: u32,
    /// Percent of a worker's last parks that are convoy parks that make it sit out (`runtime::convoy`); 0:
    /// never.
    pub convoy_share: u32,
    /// How long a hand-off (a coroutine woken by a coroutine) is kept from thieves while its waker runs on
    /// (`runtime::scheduler`); 0: stealable at once.
    pub handoff_grace_ns: u64,
    /// Wait morphing of condition variables (`runtime::sync::cond`).
    pub cond_morph: bool,
    /// Where statistics go: None (not collected beyond counters), Some("stderr") or a path.
    pub stats: Option<String>,
    pub stats_signal: Option<i32>,
    /// The netpoller's readiness source (`runtime::io::netpoll`).
    pub io: IoSource,
}

/// Where the netpoller learns that fds became ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoSource {
    Epoll,
    /// io_uring multishot polls, if the kernel allows them (else epoll).
    Uring,
}

/// The configured readiness source; the default before the configuration is read (unit tests).
pub fn io_source() -> IoSource {
    CONFIG.get().map_or(IoSource::Epoll, |c| c.io)
}

fn env(name: &CStr) -> Option<String> {
    // SAFETY: getenv with a valid C string; the result is copied before any setenv can run.
    let p = unsafe { libc::getenv(name.as_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: getenv returns a NUL-terminated string.
    Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// A signal by number or name (`USR2`, `SIGUSR2`, `RTMIN+3`); only signals a program may catch.
pub fn parse_signal(s: &str) -> Option<i32> {
    let s = s.trim().to_ascii_uppercase();
    let name = s.strip_prefix("SIG").unwrap_or(&s);
    let sig = if let Ok(n) = name.parse::<i32>() {
        n
    } else if let Some(off) = name.strip_prefix("RTMIN+") {
        libc::SIGRTMIN() + off.parse::<i32>().ok()?
    } else {
        match name {
            "HUP" => libc::SIGHUP,
            "INT" => libc::SIGINT,
            "QUIT" => libc::SIGQUIT,
            "USR1" => libc::SIGUSR1,
            "USR2" => libc::SIGUSR2,
            "PIPE" => libc::SIGPIPE,
            "ALRM" => libc::SIGALRM,
            "TERM" => libc::SIGTERM,
            "URG" => libc::SIGURG,
            "WINCH" => libc::SIGWINCH,
            "PWR" => libc::SIGPWR,
            _ => return None,
        }
    };
    let catchable = (1..=64).contains(&sig)
        && ![libc::SIGKILL, libc::SIGSTOP, libc::SIGSEGV, libc::SIGBUS, libc::SIGFPE, libc::SIGILL].contains(&sig);
    catchable.then_some(sig)
}

/// A whole number from the environment within `range`, or `default` (with a warning when malformed).
fn number(name: &CStr, default: usize, range: std::ops::RangeInclusive<usize>) -> usize {
    match env(name) {
        None => default,
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if range.contains(&n) => n,
            _ => {
                warn(&format!(
                    "ignoring {}={v:?} (want {}..={}); using {default}",
                    name.to_string_lossy(),
                    range.start(),
                    range.end()
                ));
                default
            }
        },
    }
}

fn warn(msg: &str) {
    super::runtime::sys::write_stderr(format!("asyncshim: {msg}\n").as_bytes());
}

static CONFIG: std::sync::OnceLock<Config> = std::sync::OnceLock::new();

/// The configuration the runtime started with; only called once the runtime has started.
pub fn get() -> &'static Config {
    CONFIG.get().expect("configuration read at start-up")
}

/// Keeps `config` as the process's configuration (once, at start-up).
pub fn set(config: Config) -> Result<&'static Config, Config> {
    CONFIG.set(config)?;
    Ok(get())
}

impl Config {
    pub fn from_env() -> Config {
        let enabled = !matches!(env(c"ASYNCSHIM").as_deref(), Some("off" | "0" | "false" | "no"));
        // Online CPUs. sysconf is cheap; std's available_parallelism reads
        // cgroup files, which costs every program start a tenth of a millisecond.
        // SAFETY: sysconf has no preconditions.
        let cpus = (unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }).clamp(1, 1024) as usize;
        let workers = match env(c"ASYNCSHIM_WORKERS") {
            None => cpus,
            Some(v) => match parse_workers(&v) {
                Ok(n) => n as usize,
                Err(why) => {
                    warn(&format!("ignoring ASYNCSHIM_WORKERS: {why}; using {cpus}"));
                    cpus
                }
            },
        };
        let stack_size = env(c"ASYNCSHIM_STACK_SIZE").and_then(|v| match parse_stack_size(&v) {
            Ok(n) => Some(n as usize),
            Err(why) => {
                warn(&format!("ignoring ASYNCSHIM_STACK_SIZE: {why}"));
                None
            }
        });
        let force_arch_prctl = matches!(env(c"ASYNCSHIM_NO_FSGSBASE").as_deref(), Some("1"));
        let stall_ms = number(c"ASYNCSHIM_STALL_MS", 5, 0..=10_000);
        let max_spares = number(c"ASYNCSHIM_MAX_SPARES", 256, 0..=4096);
        let slice_ms = number(c"ASYNCSHIM_SLICE_MS", 2, 0..=10_000);
        let convoy_streak = number(c"ASYNCSHIM_CONVOY_STREAK", 64, 0..=1_000_000) as u32;
        let convoy_share = number(c"ASYNCSHIM_CONVOY_SHARE", 12, 0..=100) as u32;
        let handoff_grace_us = number(c"ASYNCSHIM_HANDOFF_GRACE_US", 100, 0..=1_000_000);
        let cond_morph = number(c"ASYNCSHIM_COND_MORPH", 0, 0..=1) == 1;
        let stats = env(c"ASYNCSHIM_STATS").filter(|s| !s.is_empty());
        let stats_signal = env(c"ASYNCSHIM_STATS_SIGNAL").and_then(|v| match parse_signal(&v) {
            Some(sig) => Some(sig),
            None => {
                warn(&format!("ignoring ASYNCSHIM_STATS_SIGNAL={v:?} (want a signal number or name such as USR2)"));
                None
            }
        });
        let io = match env(c"ASYNCSHIM_IO").as_deref() {
            None | Some("" | "epoll") => IoSource::Epoll,
            Some("uring" | "io_uring") => IoSource::Uring,
            Some(v) => {
                warn(&format!("ignoring ASYNCSHIM_IO={v:?} (want epoll or uring); using epoll"));
                IoSource::Epoll
            }
        };
        Config {
            enabled,
            workers,
            stack_size,
            force_arch_prctl,
            stall_ns: stall_ms as u64 * 1_000_000,
            max_spares,
            slice_ns: slice_ms as u64 * 1_000_000,
            convoy_streak,
            convoy_share,
            handoff_grace_ns: handoff_grace_us as u64 * 1_000,
            cond_morph,
            stats,
            stats_signal,
            io,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn signals() {
        use super::parse_signal;
        assert_eq!(parse_signal("USR2"), Some(libc::SIGUSR2));
        assert_eq!(parse_signal("sigusr1"), Some(libc::SIGUSR1));
        assert_eq!(parse_signal("12"), Some(12));
        assert_eq!(parse_signal("RTMIN+2"), Some(libc::SIGRTMIN() + 2));
        assert_eq!(parse_signal("KILL"), None);
        assert_eq!(parse_signal("9"), None);
        assert_eq!(parse_signal("SEGV"), None);
        assert_eq!(parse_signal("bogus"), None);
        assert_eq!(parse_signal("0"), None);
    }
}
