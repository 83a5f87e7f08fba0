//! `asyncshim` — launcher for `libasyncshim.so`.
//!
//! ```text
//! asyncshim [--workers N] [--stack-size S] [--stats DEST] [--off] [--lib PATH] [--] cmd args...
//! asyncshim doctor [--lib PATH]
//! asyncshim stacks PID
//! ```
//!
//! It sets the shim's environment variables, prepends the library to `LD_PRELOAD` and replaces itself
//! with the command (`execvp`), so the exit status, the signals and the process id are the command's own.
//!
//! This binary deliberately does NOT link the `asyncshim` library crate: the library exports
//! `#[no_mangle]` replacements for libc functions (`pthread_create`, ...) which would take over the
//! launcher itself. Only `std` and `libc` are used.
//!
//! It is also built with `#![no_main]`: std's runtime start-up sets `SIGPIPE` to "ignore" before `main`
//! and `std::process::Command` clears the signal mask before exec. Defining the C `main` ourselves and
//! calling `execvp` directly keeps the signal dispositions and the signal mask exactly as inherited, as
//! env(1) does. (`std::env::args` still works: glibc passes argv to std's `.init_array` hook.)
//!
//! Exit status when the command does not run: 127 if it is not found, 126 if it cannot be executed
//! (permission denied, not an executable, ...), like env(1); 2 for bad usage; 125 when the library
//! cannot be found.
#![cfg_attr(not(test), no_main)]
// Under `cargo test` the harness supplies `main`, so the launcher's entry path is unused there.
#![cfg_attr(test, allow(dead_code))]
#![deny(clippy::undocumented_unsafe_blocks)]

#[path = "asyncshim/stacks.rs"]
mod stacks;

use std::ffi::{CStr, CString, OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

// The value grammar shared with the library (by path: this binary must not link the library crate).
#[path = "../env_values.rs"]
mod env_values;
use env_values::{parse_stack_size, parse_workers};
// The one system call the launcher makes itself (doctor's io_uring check), kept with the others in sys/.
#[path = "../runtime/sys/uring_probe.rs"]
mod uring_probe;

const LIB_NAME: &str = "libasyncshim.so";
/// Where the library is looked for, relative to the launcher's directory: beside it (the build tree,
/// `target/release/`), then where `make install` puts it (`$PREFIX/bin/../lib/asyncshim/`).
const LIB_PLACES: [&str; 2] = [LIB_NAME, "../lib/asyncshim/libasyncshim.so"];
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit the launcher was built from: `make build` passes `git describe --always --dirty`; empty or
/// absent when built outside a git checkout or by plain `cargo build`.
const GIT_COMMIT: Option<&str> = option_env!("ASYNCSHIM_GIT_COMMIT");

const EXIT_USAGE: i32 = 2;
const EXIT_LAUNCHER: i32 = 125;
const EXIT_CANNOT_INVOKE: i32 = 126;
const EXIT_NOT_FOUND: i32 = 127;

const USAGE: &str = "\
Usage: asyncshim [OPTIONS] [--] COMMAND [ARGS...]
       asyncshim doctor [--lib PATH]
       asyncshim stacks PID

Run COMMAND with libasyncshim.so preloaded: its threads become coroutines scheduled on a few
OS worker threads (M:N). The command replaces this launcher (same PID, exit status, signals).

Options:
  -w, --workers N       number of OS worker threads (1 to 1024; default: online CPUs)
  -s, --stack-size S    default thread (coroutine) stack size in bytes, with an optional
                        K, M or G suffix (powers of 1024); at least 16K (default: RLIMIT_STACK)
      --stats DEST      sets ASYNCSHIM_STATS=DEST ('stderr' or a file path): at exit the
                        runtime writes what it did (coroutines, parks, offloads, spare
                        workers, and the places where a thread stalled its worker)
      --off             load the library in pass-through mode (ASYNCSHIM=off): real OS threads
      --lib PATH        library to preload (default: $ASYNCSHIM_LIB, else libasyncshim.so
                        next to this executable, else ../lib/asyncshim/libasyncshim.so
                        relative to it, where 'make install' puts it)
  -h, --help            show this help and exit
  -V, --version         show the version and exit

`asyncshim doctor` says whether the shim will run on this machine, and if not why: the glibc and
the layout the library learns from it, FSGSBASE, the fd and memory-map limits, io_uring. It runs a
child with the library preloaded and asks it. Exit status 0 when the shim runs here, 1 when not.
(A program named doctor: `asyncshim -- doctor`.)

`asyncshim stacks PID` lists every thread of a process running under the shim, coroutines and OS
threads: its name, state, what it waits on (fd and direction, mutex, sleep, thread joined...), for
how long, on which worker, and its call stack. The process answers from inside (its monitor thread
writes the listing) and is never stopped.

Options may also be written --opt=VALUE. Option parsing stops at '--' or at the first
argument that is not an option (the command); everything after it goes to the command.

Environment set for the command: ASYNCSHIM_WORKERS, ASYNCSHIM_STACK_SIZE, ASYNCSHIM_STATS,
ASYNCSHIM=off (with --off), and LD_PRELOAD (the library first, existing entries kept).

Exit status: the command's own; 127 if COMMAND is not found, 126 if it cannot be executed,
125 if the library cannot be found, 2 for bad usage.
";

/// What the command line asks for.
#[derive(Debug, Default, PartialEq)]
struct Options {
    workers: Option<u32>,
    stack_size: Option<u64>,
    stats: Option<OsString>,
    off: bool,
    lib: Option<OsString>,
    help: bool,
    version: bool,
    /// The command and its arguments (empty when none was given).
    command: Vec<OsString>,
}

fn parse_args(args: &[OsString]) -> Result<Options, String> {
    let mut o = Options::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let bytes = arg.as_bytes();
        if bytes == b"--" {
            o.command = args[i + 1..].to_vec();
            return Ok(o);
        }
        if bytes.len() < 2 || bytes[0] != b'-' {
            // First non-option: the command. Everything from here on is its own.
            o.command = args[i..].to_vec();
            return Ok(o);
        }
        let s = arg.to_str().ok_or_else(|| format!("invalid option '{}'", arg.to_string_lossy()))?;
        let (name, inline_value) = match s.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v)),
            _ => (s, None),
        };
        // Fetches the option's value: inline (`--opt=V`) or the next argument.
        let mut value = |what: &str| -> Result<OsString, String> {
            if let Some(v) = inline_value {
                return Ok(OsString::from(v));
            }
            i += 1;
            args.get(i).cloned().ok_or_else(|| format!("option '{name}' requires {what}"))
        };
        let utf8 = |v: OsString| -> Result<String, String> {
            v.into_string().map_err(|v| format!("invalid value '{}' for '{name}'", v.to_string_lossy()))
        };
        match name {
            "-w" | "--workers" => o.workers = Some(parse_workers(&utf8(value("a number")?)?)?),
            "-s" | "--stack-size" => o.stack_size = Some(parse_stack_size(&utf8(value("a size")?)?)?),
            "--stats" => {
                let v = value("a destination ('stderr' or a file path)")?;
                if v.is_empty() {
                    return Err("option '--stats' requires a destination ('stderr' or a file path)".into());
                }
                o.stats = Some(v);
            }
            "--lib" => {
                let v = value("a path")?;
                if v.is_empty() {
                    return Err("option '--lib' requires a path".into());
                }
                o.lib = Some(v);
            }
            "--off" | "-h" | "--help" | "-V" | "--version" if inline_value.is_some() => {
                return Err(format!("option '{name}' does not take a value"));
            }
            "--off" => o.off = true,
            "-h" | "--help" => o.help = true,
            "-V" | "--version" => o.version = true,
            _ => return Err(format!("unknown option '{s}'")),
        }
        i += 1;
    }
    Ok(o)
}

/// Splits an `LD_PRELOAD` value the way ld.so does (on spaces and colons), dropping empty entries.
fn preload_entries(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b' ' || b == b':').filter(|e| !e.is_empty())
}

/// Composes the new `LD_PRELOAD`: `lib` first, then the existing entries in order, without `lib`
/// itself (also when an entry names the same file through another path) and without empty entries.
fn compose_ld_preload(lib: &Path, existing: Option<&OsStr>) -> OsString {
    let lib_bytes = lib.as_os_str().as_bytes();
    let lib_canon = std::fs::canonicalize(lib).ok();
    let mut out: Vec<u8> = lib_bytes.to_vec();
    if let Some(existing) = existing {
        for entry in preload_entries(existing.as_bytes()) {
            if entry == lib_bytes {
                continue;
            }
            // Entries with a slash are paths (bare names are searched by ld.so): same file, other path?
            if entry.contains(&b'/')
                && let Some(canon) = &lib_canon
                && std::fs::canonicalize(OsStr::from_bytes(entry)).is_ok_and(|p| p == *canon)
            {
                continue;
            }
            out.push(b':');
            out.extend_from_slice(entry);
        }
    }
    OsString::from_vec(out)
}

/// Where the library is: `--lib`, else `$ASYNCSHIM_LIB`, else the first of [`LIB_PLACES`] that exists
/// relative to this executable (its real path, so a symlink on PATH leads to the real installation).
fn find_library(opt_lib: Option<&OsStr>) -> Result<PathBuf, String> {
    let (candidate, origin) = if let Some(p) = opt_lib {
        (PathBuf::from(p), "--lib")
    } else if let Some(p) = std::env::var_os("ASYNCSHIM_LIB").filter(|p| !p.is_empty()) {
        (PathBuf::from(p), "ASYNCSHIM_LIB")
    } else {
        let exe = std::fs::read_link("/proc/self/exe")
            .or_else(|_| std::env::current_exe())
            .map_err(|e| format!("cannot locate this executable to find {LIB_NAME}: {e}"))?;
        let dir = exe.parent().unwrap_or(Path::new("/"));
        let places: Vec<PathBuf> = LIB_PLACES.iter().map(|rel| dir.join(rel)).collect();
        match places.iter().find(|p| p.exists()) {
            Some(p) => (p.clone(), "found relative to the launcher"),
            None => {
                let tried: Vec<String> = places.iter().map(|p| p.display().to_string()).collect();
                return Err(format!(
                    "cannot find the library {LIB_NAME} (tried {}); use --lib PATH or ASYNCSHIM_LIB",
                    tried.join(", ")
                ));
            }
        }
    };
    let meta = std::fs::metadata(&candidate).map_err(|e| {
        format!(
            "cannot find the library {} ({origin}): {}; use --lib PATH or ASYNCSHIM_LIB",
            candidate.display(),
            strip_os_error(&e)
        )
    })?;
    if !meta.is_file() {
        return Err(format!("library {} ({origin}) is not a regular file", candidate.display()));
    }
    // Absolute, so that it still resolves if the program changes directory and runs other programs.
    let abs = std::fs::canonicalize(&candidate).unwrap_or(candidate);
    let b = abs.as_os_str().as_bytes();
    if b.contains(&b' ') || b.contains(&b':') {
        return Err(format!(
            "library path {} contains a space or a colon, which LD_PRELOAD cannot express",
            abs.display()
        ));
    }
    Ok(abs)
}

/// `asyncshim VERSION`, plus `(git COMMIT)` when the build knew its commit.
fn version_line() -> String {
    match GIT_COMMIT.filter(|c| !c.is_empty()) {
        Some(commit) => format!("asyncshim {VERSION} (git {commit})"),
        None => format!("asyncshim {VERSION}"),
    }
}

/// `io::Error`'s text without the " (os error N)" tail.
fn strip_os_error(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => strerror(code),
        None => e.to_string(),
    }
}

fn strerror(code: i32) -> String {
    // SAFETY: strerror returns a valid NUL-terminated string; we are single-threaded.
    unsafe { CStr::from_ptr(libc::strerror(code)).to_string_lossy().into_owned() }
}

fn die(code: i32, msg: &str) -> i32 {
    let _ = writeln!(std::io::stderr(), "asyncshim: {msg}");
    code
}

fn usage_error(msg: &str) -> i32 {
    let _ = writeln!(std::io::stderr(), "asyncshim: {msg}\nTry 'asyncshim --help' for more information.");
    EXIT_USAGE
}

/// Everything `main` does; returns the exit status when the command could not be run.
fn run() -> i32 {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    match args.first().map(|a| a.as_bytes()) {
        Some(b"doctor") => return doctor::run(&args[1..]),
        Some(b"stacks") => return stacks::run(&args[1..]),
        Some(doctor::CHILD_ARG) => return doctor::child(),
        _ => {}
    }
    let o = match parse_args(&args) {
        Ok(o) => o,
        Err(msg) => return usage_error(&msg),
    };
    if o.help {
        let _ = std::io::stdout().write_all(USAGE.as_bytes());
        return 0;
    }
    if o.version {
        let _ = writeln!(std::io::stdout(), "{}", version_line());
        return 0;
    }
    if o.command.is_empty() {
        return usage_error("no command given");
    }
    let lib = match find_library(o.lib.as_deref()) {
        Ok(p) => p,
        Err(msg) => return die(EXIT_LAUNCHER, &msg),
    };
    let preload = compose_ld_preload(&lib, std::env::var_os("LD_PRELOAD").as_deref());

    // SAFETY: set_var: the launcher is single-threaded.
    unsafe {
        if let Some(n) = o.workers {
            std::env::set_var("ASYNCSHIM_WORKERS", n.to_string());
        }
        if let Some(n) = o.stack_size {
            std::env::set_var("ASYNCSHIM_STACK_SIZE", n.to_string());
        }
        if let Some(d) = &o.stats {
            std::env::set_var("ASYNCSHIM_STATS", d);
        }
        if o.off {
            std::env::set_var("ASYNCSHIM", "off");
        }
        std::env::set_var("LD_PRELOAD", &preload);
    }

    let cargs: Result<Vec<CString>, _> = o.command.iter().map(|a| CString::new(a.as_bytes().to_vec())).collect();
    let cmd_name = o.command[0].to_string_lossy().into_owned();
    let Ok(cargs) = cargs else {
        return die(EXIT_CANNOT_INVOKE, &format!("cannot run {cmd_name}: argument contains a NUL byte"));
    };
    if cargs[0].as_bytes().is_empty() {
        return die(EXIT_NOT_FOUND, "cannot run '': No such file or directory");
    }
    let mut argv: Vec<*const libc::c_char> = cargs.iter().map(|c| c.as_ptr()).collect();
    argv.push(std::ptr::null());
    let _ = std::io::stdout().flush();
    // SAFETY: argv is a NULL-terminated array of valid C strings that outlive the call.
    // execvp searches PATH (of the environment just set) and runs scripts without #! with /bin/sh.
    unsafe { libc::execvp(argv[0], argv.as_ptr()) };
    let err = std::io::Error::last_os_error();
    let code = if err.raw_os_error() == Some(libc::ENOENT) { EXIT_NOT_FOUND } else { EXIT_CANNOT_INVOKE };
    die(code, &format!("cannot run {cmd_name}: {}", strip_os_error(&err)))
}

mod doctor {
    //! `asyncshim doctor`: will the shim run on this machine, and if not, why.
    //!
    //! The launcher must not link the library (its hooks would take over the launcher), and what matters
    //! is what a program started with it sees: so the doctor starts itself again as a child with the
    //! library preloaded, exactly as `asyncshim CMD` would start CMD. The child asks the library for its
    //! report (`asyncshim_layout_report`: the glibc version, every layout fact and where it came from, the
    //! verdict) and checks that a thread it starts really runs as a coroutine. A library that does not load
    //! at all shows as ld.so's own message in the child's stderr.

    use super::*;
    use std::fmt::Write as _;
    use std::process::{Command, Stdio};

    pub const CHILD_ARG: &[u8] = b"--doctor-child";

    /// Runs in the child, under the library: prints its report, then whether a new thread is a coroutine.
    pub fn child() -> i32 {
        type Report = unsafe extern "C" fn(libc::c_int) -> libc::c_int;
        type Active = unsafe extern "C" fn() -> libc::c_int;
        // SAFETY: dlsym with NUL-terminated names; the symbols are the library's exported functions.
        let (report, active) = unsafe {
            (
                libc::dlsym(libc::RTLD_DEFAULT, c"asyncshim_layout_report".as_ptr()),
                libc::dlsym(libc::RTLD_DEFAULT, c"asyncshim_is_active".as_ptr()),
            )
        };
        if report.is_null() || active.is_null() {
            println!("library: not loaded");
            return 1;
        }
        let _ = std::io::stdout().flush();
        // SAFETY: the library's function of this signature.
        unsafe { std::mem::transmute::<*mut libc::c_void, Report>(report)(1) };
        // Asked on a new thread, which under a running shim is a coroutine.
        let active = active as usize;
        let in_thread = std::thread::spawn(move || {
            // SAFETY: the address of the library's asyncshim_is_active.
            unsafe { std::mem::transmute::<usize, Active>(active)() }
        })
        .join()
        .unwrap_or(0);
        println!("coroutines: {}", if in_thread == 1 { "yes" } else { "no" });
        0
    }

    fn read_trimmed(path: &str) -> Option<String> {
        std::fs::read_to_string(path).ok().map(|s| s.trim().to_string())
    }

    fn fsgsbase() -> String {
        // SAFETY: getauxval has no preconditions.
        let hw2 = unsafe { libc::getauxval(libc::AT_HWCAP2) };
        if hw2 & 2 != 0 {
            "yes (a coroutine switch loads the thread pointer with one instruction)".into()
        } else {
            "no (the thread pointer is switched with arch_prctl: about 300 ns more per switch)".into()
        }
    }

    fn limits() -> (String, String) {
        let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit into a local.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) };
        let show = |v: libc::rlim_t| if v == libc::RLIM_INFINITY { "unlimited".to_string() } else { v.to_string() };
        let nr_open = read_trimmed("/proc/sys/fs/nr_open").unwrap_or_else(|| "?".into());
        let files = format!("soft {}, hard {} (fs.nr_open {nr_open})", show(rl.rlim_cur), show(rl.rlim_max));
        let maps = match read_trimmed("/proc/sys/vm/max_map_count").and_then(|v| v.parse::<u64>().ok()) {
            Some(n) => format!("vm.max_map_count {n} (stacks share mappings: the shim needs few of them)"),
            None => "vm.max_map_count unknown".into(),
        };
        (files, maps)
    }

    fn io_uring() -> String {
        let disabled = read_trimmed("/proc/sys/kernel/io_uring_disabled");
        let Err(err) = uring_probe::io_uring_available() else { return "available".into() };
        match (err.raw_os_error(), disabled.as_deref()) {
            (Some(libc::ENOSYS), _) => "not in this kernel".into(),
            (_, Some(d)) if d != "0" => format!("disabled (kernel.io_uring_disabled = {d})"),
            _ => format!("not available ({})", strip_os_error(&err)),
        }
    }

    fn glibc_build(libc_path: Option<&str>) -> String {
        // SAFETY: static strings from glibc.
        let (version, release) = unsafe {
            (
                std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()).to_string_lossy().into_owned(),
                std::ffi::CStr::from_ptr(libc::gnu_get_libc_release()).to_string_lossy().into_owned(),
            )
        };
        // libc.so.6 run as a program prints its build ("GNU C Library (Debian GLIBC 2.36-9+deb12u10) ...").
        let banner = libc_path
            .and_then(|p| Command::new(p).stdin(Stdio::null()).stderr(Stdio::null()).output().ok())
            .and_then(|o| String::from_utf8_lossy(&o.stdout).lines().next().map(str::to_string));
        match banner {
            Some(b) => format!("{version} ({release}): {b}"),
            None => format!("{version} ({release})"),
        }
    }

    pub fn run(args: &[OsString]) -> i32 {
        let mut lib_opt: Option<OsString> = None;
        let mut i = 0;
        while i < args.len() {
            let a = args[i].as_bytes();
            if a == b"--lib" && i + 1 < args.len() {
                lib_opt = Some(args[i + 1].clone());
                i += 2;
            } else if let Some(v) = a.strip_prefix(b"--lib=") {
                lib_opt = Some(OsStr::from_bytes(v).to_os_string());
                i += 1;
            } else {
                return usage_error(&format!("doctor: unknown argument '{}'", args[i].to_string_lossy()));
            }
        }
        let lib = match find_library(lib_opt.as_deref()) {
            Ok(p) => p,
            Err(msg) => return die(EXIT_LAUNCHER, &msg),
        };
        let exe = match std::env::current_exe() {
            Ok(e) => e,
            Err(e) => return die(EXIT_LAUNCHER, &format!("cannot locate this executable: {}", strip_os_error(&e))),
        };
        let preload = compose_ld_preload(&lib, std::env::var_os("LD_PRELOAD").as_deref());
        let child = Command::new(&exe)
            .arg(OsStr::from_bytes(CHILD_ARG))
            .env("LD_PRELOAD", &preload)
            .stdin(Stdio::null())
            .output();
        let (out, err) = match child {
            Ok(o) => (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned()),
            Err(e) => return die(EXIT_LAUNCHER, &format!("cannot run the probe child: {}", strip_os_error(&e))),
        };
        let libc_path = out.lines().next().and_then(|l| l.split("(libc ").nth(1)).map(|s| s.trim_end_matches(')'));
        let mut o = String::new();
        let _ = writeln!(o, "asyncshim {VERSION} doctor");
        let _ = writeln!(o, "library:    {}", lib.display());
        let _ = writeln!(o, "glibc:      {}", glibc_build(libc_path));
        let _ = writeln!(o, "FSGSBASE:   {}", fsgsbase());
        let (files, maps) = limits();
        let _ = writeln!(o, "open files: {files}");
        let _ = writeln!(o, "memory map: {maps}");
        let _ = writeln!(o, "io_uring:   {}", io_uring());
        let loaded = !out.starts_with("library: not loaded") && !out.is_empty();
        if loaded {
            let _ = writeln!(o, "what the library learned in a child it was preloaded into:");
            for line in out.lines().filter(|l| !l.starts_with("coroutines:")) {
                let _ = writeln!(o, "  {line}");
            }
        }
        let coroutines = out.lines().any(|l| l == "coroutines: yes");
        let notice: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        let verdict = if coroutines {
            "the shim runs here: a thread of the probe child ran as a coroutine".to_string()
        } else if !loaded {
            format!("the shim does NOT run here: the library did not load ({})", notice.join("; "))
        } else {
            let why = notice.iter().find(|l| l.starts_with("asyncshim:")).copied().unwrap_or("no reason given");
            format!("the shim does NOT run here (programs run unchanged, without coroutines): {why}")
        };
        let _ = writeln!(o, "verdict:    {verdict}");
        let _ = std::io::stdout().write_all(o.as_bytes());
        if coroutines { 0 } else { 1 }
    }
}

#[cfg(not(test))]
#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    let code = run();
    let _ = std::io::stdout().flush();
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn args() {
        let o = parse_args(&os(&["--workers", "4", "-s", "64K", "--", "ls", "-l"])).unwrap();
        assert_eq!(o.workers, Some(4));
        assert_eq!(o.stack_size, Some(65536));
        assert_eq!(o.command, os(&["ls", "-l"]));

        // The command without "--": options after it belong to the command.
        let o = parse_args(&os(&["--off", "ls", "--workers", "x"])).unwrap();
        assert!(o.off);
        assert_eq!(o.command, os(&["ls", "--workers", "x"]));

        let o = parse_args(&os(&["--workers=2", "--stack-size=1M", "--stats=stderr", "--lib=/x.so", "prog"])).unwrap();
        assert_eq!(o.workers, Some(2));
        assert_eq!(o.stack_size, Some(1 << 20));
        assert_eq!(o.stats.as_deref(), Some(OsStr::new("stderr")));
        assert_eq!(o.lib.as_deref(), Some(OsStr::new("/x.so")));

        // "--" then a command starting with '-'.
        let o = parse_args(&os(&["--", "-weird"])).unwrap();
        assert_eq!(o.command, os(&["-weird"]));
        // A lone "-" is a command name, not an option.
        assert_eq!(parse_args(&os(&["-"])).unwrap().command, os(&["-"]));

        assert!(parse_args(&os(&[])).unwrap().command.is_empty());
        assert!(parse_args(&os(&["--"])).unwrap().command.is_empty());
        assert!(parse_args(&os(&["--workers"])).is_err());
        assert!(parse_args(&os(&["--workers", "0", "ls"])).is_err());
        assert!(parse_args(&os(&["--stack-size", "4K", "ls"])).is_err());
        assert!(parse_args(&os(&["--bogus", "ls"])).is_err());
        assert!(parse_args(&os(&["--off=1", "ls"])).is_err());
        assert!(parse_args(&os(&["--stats=", "ls"])).is_err());
        assert!(parse_args(&os(&["--help"])).unwrap().help);
        assert!(parse_args(&os(&["-V"])).unwrap().version);
    }

    #[test]
    fn ld_preload() {
        let lib = Path::new("/opt/x/libasyncshim.so");
        let c = |e: Option<&str>| compose_ld_preload(lib, e.map(OsStr::new)).into_string().unwrap();
        assert_eq!(c(None), "/opt/x/libasyncshim.so");
        assert_eq!(c(Some("")), "/opt/x/libasyncshim.so");
        assert_eq!(c(Some("/a.so")), "/opt/x/libasyncshim.so:/a.so");
        // Space- and colon-separated lists, order kept, empty entries dropped.
        assert_eq!(c(Some("/a.so /b.so")), "/opt/x/libasyncshim.so:/a.so:/b.so");
        assert_eq!(c(Some(" /a.so::/b.so: ")), "/opt/x/libasyncshim.so:/a.so:/b.so");
        // No duplicate of the library, wherever it was.
        assert_eq!(c(Some("/opt/x/libasyncshim.so")), "/opt/x/libasyncshim.so");
        assert_eq!(c(Some("/a.so:/opt/x/libasyncshim.so /b.so")), "/opt/x/libasyncshim.so:/a.so:/b.so");
        // Bare names (searched by ld.so) are kept as they are.
        assert_eq!(c(Some("libfoo.so")), "/opt/x/libasyncshim.so:libfoo.so");
    }

    #[test]
    fn ld_preload_same_file_other_path() {
        let dir = std::env::temp_dir().join(format!("asyncshim-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let real = dir.join("libasyncshim.so");
        std::fs::write(&real, b"").unwrap();
        let link = dir.join("link.so");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let real = std::fs::canonicalize(&real).unwrap();
        let existing = format!("{}:/other.so", link.display());
        let got = compose_ld_preload(&real, Some(OsStr::new(&existing)));
        assert_eq!(got, OsString::from(format!("{}:/other.so", real.display())));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
