//! Configuration from the environment, read once at start-up.
//!
//! | variable | meaning |
//! |---|---|
//! | `ASYNCSHIM=off` | pass every call through: the program runs exactly as without the shim |
//! | `ASYNCSHIM_WORKERS=N` | at most N worker OS threads (default: online CPUs) |
//! | `ASYNCSHIM_STACK_SIZE=S` | default thread stack in bytes, K/M/G suffixes (default: RLIMIT_STACK, as glibc) |
//! | `ASYNCSHIM_NO_FSGSBASE=1` | use `arch_prctl` instead of the FSGSBASE instructions (for testing the fallback) |

use std::ffi::CStr;

#[derive(Debug, Clone)]
pub struct Config {
    pub enabled: bool,
    pub workers: usize,
    /// Default stack for new threads; None means "what glibc would give".
    pub stack_size: Option<usize>,
    pub force_arch_prctl: bool,
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

/// Parses a size such as `65536`, `256K`, `8M`, `1G` (binary units, case-insensitive).
pub fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let (digits, mult) = match s.chars().last()?.to_ascii_uppercase() {
        'K' => (&s[..s.len() - 1], 1usize << 10),
        'M' => (&s[..s.len() - 1], 1 << 20),
        'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    digits.trim().parse::<usize>().ok()?.checked_mul(mult)
}

fn warn(msg: &str) {
    super::runtime::sys::write_stderr(format!("asyncshim: {msg}\n").as_bytes());
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
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if (1..=1024).contains(&n) => n,
                _ => {
                    warn(&format!("ignoring ASYNCSHIM_WORKERS={v:?} (want 1..1024); using {cpus}"));
                    cpus
                }
            },
        };
        let stack_size = env(c"ASYNCSHIM_STACK_SIZE").and_then(|v| match parse_size(&v) {
            Some(n) if n >= 16 * 1024 => Some(n),
            _ => {
                warn(&format!("ignoring ASYNCSHIM_STACK_SIZE={v:?} (want bytes >= 16K, K/M/G suffixes allowed)"));
                None
            }
        });
        let force_arch_prctl = matches!(env(c"ASYNCSHIM_NO_FSGSBASE").as_deref(), Some("1"));
        Config { enabled, workers, stack_size, force_arch_prctl }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Some(65536));
        assert_eq!(parse_size("256K"), Some(256 << 10));
        assert_eq!(parse_size("8m"), Some(8 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("-1K"), None);
        assert_eq!(parse_size("99999999999999999999G"), None);
    }
}
