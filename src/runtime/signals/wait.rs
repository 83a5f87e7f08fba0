//! Waiting for signals: sigsuspend/pause ([`sigsuspend`], [`pause`]) and the sigwait family
//! ([`timed_wait`]), which park a coroutine instead of its worker, and sigpending ([`pending`]), which
//! adds what the runtime keeps pending for the thread (sent to it, or held) to what the kernel has. Other
//! callers (plain OS threads) get the kernel's calls themselves.

use super::held::{Instance, held};
use super::masks::TempMask;
use super::queued;
use super::set::{bit, sanitize_mask, signals_in};
use crate::runtime::park::{self, OnSignal, Parking, Wait, WaitReason};
use crate::runtime::sys::syscall::Errno;
use crate::runtime::sys::{self, time, usercopy};
use crate::runtime::task::{TaskRef, Wake};
use crate::runtime::worker;
use core::sync::atomic::Ordering;

/// A zero-timeout ppoll with no fds and `mask`: the kernel delivers the signals pending for this OS
/// thread (or the process) that the mask lets through, and says so with EINTR.
fn kernel_pending_let_through(mask: u64) -> bool {
    let ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: no fds, a local timeout and a local 8-byte mask.
    let r = unsafe { sys::poll::ppoll(core::ptr::null_mut(), 0, &ts, &mask as *const u64 as *const libc::sigset_t) };
    matches!(r, Err(sys::syscall::Errno(libc::EINTR)))
}

fn read_set(set: *const libc::sigset_t) -> Result<u64, Errno> {
    usercopy::read(set as *const u64)
}

/// sigsuspend(2) with the program's mask: a coroutine parks ([`suspend`]); other callers make the
/// kernel's call. Ok(what the kernel returned) or Err(errno): EINTR, as natively, once a handler ran.
///
/// # Safety
/// `mask` is the program's own argument to sigsuspend (read fault-safely here, validated by the kernel).
pub unsafe fn sigsuspend(mask: *const libc::sigset_t) -> Result<i32, Errno> {
    if worker::current_task().is_some() {
        suspend(read_set(mask)?);
        return Err(Errno(libc::EINTR));
    }
    // SAFETY: the kernel's sigsuspend with the program's mask, as the caller vouches.
    unsafe { sys::signal::suspend(mask) }.map(|r| r as i32)
}

/// pause(2): sigsuspend with the thread's own mask. Returns the errno it ends with (EINTR).
pub fn pause() -> i32 {
    match worker::current_task() {
        Some(me) => {
            suspend(me.signals.mask.get());
            libc::EINTR
        }
        None => sys::signal::pause().0,
    }
}

/// sigpause(3) for a coroutine: sigsuspend with the thread's mask less `sig_or_mask` (`is_sig`, the X/Open
/// form) or with the BSD mask `sig_or_mask` (its low 32 bits are the set of signals 1 to 32). Returns the
/// errno it ends with (EINTR), or None on a thread that is not a coroutine or for a number that is no
/// signal (glibc's call then, which answers at once).
pub fn sigpause(sig_or_mask: i32, is_sig: bool) -> Option<i32> {
    let me = worker::current_task()?;
    let mask = if is_sig {
        if !(1..=64).contains(&sig_or_mask) {
            return None;
        }
        me.signals.mask.get() & !bit(sig_or_mask)
    } else {
        sig_or_mask as u32 as u64
    };
    suspend(mask);
    Some(libc::EINTR)
}

/// sigsuspend for a coroutine: parks with `mask` in force until a handler runs for a signal it lets
/// through (pending ones at once). Always ends with EINTR, as natively.
pub fn suspend(mask: u64) {
    let Some(temp) = TempMask::begin(mask) else { return };
    let me = temp.task;
    loop {
        if temp.deliver_pending() || kernel_pending_let_through(temp.mask) {
            return;
        }
        // A signal sent between the check above and the park finds it (or the park sees it pending).
        let wait = Wait::new(WaitReason::Sleep, 0, OnSignal::Fail);
        if Parking::begin(me, wait).sleep(|why| why) == Wake::Interrupted {
            // A signal the mask lets through came: every pending one the mask lets through runs now, in
            // one nesting (nothing ran as the coroutine resumed: see `TaskSignals::resume_mask`).
            temp.deliver_pending();
            return;
        }
    }
}

/// The sigwait family with the program's arguments: Ok(signal) or Err(errno). A coroutine waits with
/// [`wait_for`] (an unreadable set is EFAULT, as natively); other callers, and a zero or invalid timeout,
/// get the kernel's call.
///
/// # Safety
/// The pointers are the program's own arguments to sigtimedwait (`info` and `ts` may be null); they are
/// read and written fault-safely here, or handed to the kernel, which validates them.
pub unsafe fn timed_wait(
    set: *const libc::sigset_t,
    info: *mut libc::siginfo_t,
    ts: *const libc::timespec,
) -> Result<i32, Errno> {
    let me_is_coroutine = worker::current_task().is_some();
    let deadline = if ts.is_null() {
        None
    } else {
        usercopy::read(ts).ok().and_then(|t| time::timespec_ns(&t)).map(|ns| time::monotonic_ns().saturating_add(ns))
    };
    let bad_timeout = !ts.is_null() && deadline.is_none();
    if !me_is_coroutine || bad_timeout || deadline == Some(0) {
        // SAFETY: the kernel's sigtimedwait with the program's arguments, as the caller vouches.
        return unsafe { sys::signal::timedwait(set, info, ts) };
    }
    let mask = read_set(set)?;
    // SAFETY: a zeroed siginfo is a valid buffer.
    let mut local: libc::siginfo_t = unsafe { core::mem::zeroed() };
    let result = wait_for(mask, &mut local, deadline);
    // Instances routed here for the wait and not taken (a second one, or one that came as it ended) that
    // the thread blocks go back to the process, whose queue they never left in the kernel.
    if let Some(me) = worker::current_task() {
        super::masks::give_back(&me.signals, mask & me.signals.mask.get());
    }
    let sig = result?;
    if !info.is_null() && usercopy::write(info, local).is_err() {
        return Err(Errno(libc::EFAULT));
    }
    Ok(sig)
}

/// sigwait/sigwaitinfo/sigtimedwait for a coroutine: takes a signal of `set` pending for this thread,
/// held by the runtime or pending in the kernel, filling `info`; else parks until one comes or `deadline`
/// (monotonic ns) passes. Signals the set holds that every worker blocks stay in the kernel, which does not
/// say when one arrives, so the park is a poll (0.1 to 10 ms apart); pthread_kill and routed signals end
/// it at once. Returns the signal, or EAGAIN (deadline) or EINTR (a handler for another signal ran).
fn wait_for(set: u64, info: &mut libc::siginfo_t, deadline: Option<u64>) -> Result<i32, Errno> {
    let Some(me) = worker::current_task() else { return Err(Errno(libc::EINVAL)) };
    let set = sanitize_mask(set);
    let mut pause = 100_000u64;
    loop {
        if let Some(sig) = take_waited(&me, set, info) {
            return Ok(sig);
        }
        let now = sys::time::monotonic_ns();
        if deadline.is_some_and(|d| d <= now) {
            return Err(Errno(libc::EAGAIN));
        }
        me.signals.waited_for.store(set, Ordering::Release);
        let wake = park::sleep_until_interruptible(deadline.map_or(now + pause, |d| d.min(now + pause)));
        me.signals.waited_for.store(0, Ordering::Release);
        if wake == Wake::Interrupted {
            if let Some(sig) = take_waited(&me, set, info) {
                return Ok(sig);
            }
            return Err(Errno(libc::EINTR));
        }
        pause = (pause * 2).min(10_000_000);
    }
}

/// One signal of `set` for the calling thread, the lowest first as the kernel takes them: sent to it,
/// held, or pending in the kernel.
fn take_waited(me: &TaskRef, set: u64, info: &mut libc::siginfo_t) -> Option<i32> {
    let mine = me.signals.pending.load(Ordering::Acquire) & set;
    let held = held() & set;
    let owner = &me.signals as *const _ as usize;
    let in_kernel = sys::signal::pending().map_or(0, |k| k & set);
    if in_kernel != 0
        && in_kernel.trailing_zeros() < (mine | held).trailing_zeros()
        && let Some(sig) = take_from_kernel(set, info)
    {
        return Some(sig);
    }
    for sig in signals_in(mine | held) {
        let b = bit(sig);
        // One queued with its siginfo (sigqueue, a real-time pthread_kill): the signal stays pending while
        // more are queued (cleared first, so a send meanwhile sets it again).
        if mine & b != 0 && queued::has(owner, sig) {
            me.signals.pending.fetch_and(!b, Ordering::AcqRel);
            let got = queued::take(owner, sig);
            if queued::has(owner, sig) {
                me.signals.pending.fetch_or(b, Ordering::AcqRel);
            }
            if let Some(i) = got {
                *info = i;
                return Some(sig);
            }
        }
        if mine & b != 0 && me.signals.pending.fetch_and(!b, Ordering::AcqRel) & b != 0 && me.signals.take_bare(sig) {
            *info = queued::sent_here(sig, libc::SI_TKILL, 0);
            return Some(sig);
        }
        if held & b != 0 {
            match super::routing::take_held(sig) {
                Some(Instance::Info(i)) => *info = i,
                Some(_) => *info = queued::sent_here(sig, libc::SI_TKILL, 0),
                None => continue,
            }
            return Some(sig);
        }
    }
    take_from_kernel(set, info)
}

/// A signal of `set` pending in the kernel for the calling OS thread or the process, if any.
fn take_from_kernel(set: u64, info: &mut libc::siginfo_t) -> Option<i32> {
    let ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a local set, the caller's info buffer, a zero timeout.
    unsafe { sys::signal::timedwait(&set as *const u64 as *const libc::sigset_t, info, &ts) }.ok()
}

/// sigpending(2): what the kernel has for the calling OS thread and the process; for a coroutine, plus
/// the signals sent to it or held by the runtime that its mask blocks ([`pending_for`]).
pub fn pending() -> Result<u64, Errno> {
    let kernel = sys::signal::pending()?;
    Ok(match worker::current_task() {
        Some(me) => pending_for(&me, kernel),
        None => kernel,
    })
}

/// sigpending for a coroutine: what the kernel has for its worker and the process, plus the signals sent
/// to this thread or held by the runtime, among those its mask blocks.
fn pending_for(me: &TaskRef, kernel: u64) -> u64 {
    kernel | ((me.signals.pending.load(Ordering::Acquire) | held()) & me.signals.mask.get())
}
