//! Where a coroutine's stack overflowed: the fault handler cannot walk and name the stack itself (that
//! allocates and takes locks, and the fault can come from inside malloc or the loader), so it hands the
//! faulting registers to the monitor thread, which writes the call stack to stderr with names and lines
//! ([`super::program_frames`]), and waits for it at most [`WAIT_NS`] before the process goes on to die.
//! The faulting thread sits in its handler meanwhile, so its stack does not change under the walk. Without
//! a monitor (a program with one thread) there is no call stack in the report.

use super::super::monitor::wake as monitor_wake;
use super::super::sys::{self, futex, time};
use super::{Regs, program_frames};
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

const IDLE: u32 = 0;
const ASKED: u32 = 1;
const DONE: u32 = 2;
/// How long the faulting thread waits for the monitor (a monitor stuck on a lock the faulting thread holds
/// only delays the crash by this much).
const WAIT_NS: u64 = 2_000_000_000;
/// Lines of the report (a run of one function is one line).
const MAX_LINES: usize = 16;

static STATE: AtomicU32 = AtomicU32::new(IDLE);
static REGS: [AtomicUsize; 3] = [const { AtomicUsize::new(0) }; 3];

/// Called by the fault handler of a thread whose stack overflowed: has the monitor write its call stack
/// (async-signal-safe: atomics, a futex, a clock).
pub fn write_backtrace(regs: Regs) {
    if !monitor_wake::started() || STATE.compare_exchange(IDLE, ASKED, Ordering::AcqRel, Ordering::Acquire).is_err() {
        return;
    }
    for (slot, v) in REGS.iter().zip([regs.pc, regs.sp, regs.bp]) {
        slot.store(v, Ordering::Release);
    }
    STATE.store(ASKED, Ordering::Release);
    monitor_wake::poke();
    let deadline = time::monotonic_ns() + WAIT_NS;
    while STATE.load(Ordering::Acquire) == ASKED && time::monotonic_ns() < deadline {
        futex::wait(&STATE, ASKED, Some(deadline));
    }
    // Ready for the next one (a program's own SIGSEGV handler may let the process go on).
    let _ = STATE.compare_exchange(DONE, IDLE, Ordering::AcqRel, Ordering::Acquire);
}

/// Called by the monitor at every tick: writes the call stack a fault handler asked for.
pub fn serve() {
    if STATE.load(Ordering::Acquire) != ASKED {
        return;
    }
    let [pc, sp, bp] = REGS.each_ref().map(|r| r.load(Ordering::Acquire));
    let mut text = String::from("asyncshim: where it overflowed, innermost first:\n");
    let mut lines = 0;
    let frames = program_frames(Regs { pc, sp, bp }, 4096, true);
    let mut i = 0;
    while i < frames.len() && lines < MAX_LINES {
        // A recursion is one line: the same function (its name up to the offset) over and over.
        let function = |f: &str| f.split('+').next().unwrap_or_default().to_string();
        let run = frames[i..].iter().take_while(|f| function(f) == function(&frames[i])).count();
        let times = if run > 1 { format!(" ({run} frames)") } else { String::new() };
        text.push_str(&format!("    {}{times}\n", frames[i]));
        lines += 1;
        i += run;
    }
    sys::write_stderr(text.as_bytes());
    STATE.store(DONE, Ordering::Release);
    futex::wake(&STATE, 1);
}
