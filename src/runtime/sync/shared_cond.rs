//! Process-shared condition variables run by the runtime in glibc's own protocol, so that a coroutine
//! waits on one like on any other object: parked, its futex wait made in the kernel's queue through
//! io_uring ([`kernel_wait`]), with no OS thread held for it.
//!
//! Other processes use the same `pthread_cond_t` with glibc's code (a child that exec'd without the shim,
//! any program mapping the memory), and plain threads of this process call glibc too, so every step here
//! is glibc's algorithm on glibc's words: the 64-bit waiter sequence (`__wseq`, its low bit the index of
//! group G2), the start of group G1 (`__g1_start`), the remaining sizes of the two groups, the original
//! size of G1 with the condvar-internal lock in its two low bits (`__g1_orig_size`), the waiter references
//! (`__wrefs`: count << 3, destruction-wake request, clock, shared) and the two groups' signal words, on
//! which waiters block with FUTEX_WAIT. glibc has had two versions of that protocol on x86-64 since 2.25,
//! and the runtime follows the one the process's glibc runs, which every process on the machine shares:
//!
//! - [`Family::GroupRefs`] (2.31-2.40 as released, e.g. Debian 11 and 12): `__g_refs[2]` counts the
//!   futex waiters of each group; `__g1_start` and the signal words are shifted left by one (the low bit
//!   of `__g1_start` is G1's index, that of a signal word "group closing"); a signaler that must reuse a
//!   group's slot closes it and waits until its futex waiters have left (`quiesce_and_switch_g1`), and a
//!   waiter that took a signal from a newer group that aliases its own gives it back.
//! - [`Family::NoGroupRefs`] (2.41 on, and the 2.38-2.40 stable branches since their early-2025
//!   backport): no `__g_refs`, so `__wrefs` moved from byte 36 to 28; signal words count from
//!   `__g1_start`'s low 32 bits, and signalers never wait for waiters.
//!
//! Which one runs is read from the layout the runtime measured at start-up (`identity::cond_wrefs_offset`:
//! the byte `pthread_condattr_setpshared` sets), not from the version string, because the backport changed
//! the layout within 2.38-2.40 releases. Both versions of 2.31..2.40 and of 2.41..2.43 agree step for step
//! on x86-64 (the later changes are 32-bit fallbacks, time64 wrappers and comments).
//!
//! Waits, signals, broadcasts and destruction by coroutines all run here, since each of them may wait
//! for another party: a signaler of the first family for the futex waiters of a closing group, any of
//! them for the condvar-internal lock, destruction for the waiters to leave. Were any of them glibc's, the
//! worker would block in the kernel waiting for a coroutine that only this worker runs. Plain threads
//! keep glibc's own calls (exactly native; a thread blocking itself blocks no one else).
//!
//! An alternative would have run glibc's own functions and caught their internal futex calls with
//! Syscall User Dispatch (`../shared/notes/syscall-user-dispatch.md`); it would need a SIGSYS handler
//! that parks a coroutine from signal context on every such call, per-thread dispatch state for every
//! worker and helper, and its traps cost microseconds each: a larger, riskier change to the whole process
//! than two versions of a 300-line algorithm whose every step is written against glibc's source.
//!
//! Cancellation of a waiting coroutine runs glibc's cleanup (`__condvar_cleanup_waiting`): its place
//! given up (or a replacement signal sent if it had consumed one), a conservative futex wake, its
//! reference dropped, the mutex locked again; then the hook acts on the request. A handler that runs in
//! a waiting coroutine returns into the wait, which goes on (no spurious wake-up, as in glibc).

use super::super::park::OnSignal;
use super::Deadline;
use super::glibc_words::GlibcWords;
use super::kernel_wait;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};

/// The two versions of glibc's protocol (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    GroupRefs,
    NoGroupRefs,
}

/// `__PTHREAD_COND_MAX_GROUP_SIZE`.
const MAX_GROUP_SIZE: u32 = 1 << 29;
/// `__wrefs` bits.
const WREFS_SHARED: u32 = 1;
const WREFS_CLOCK_MONOTONIC: u32 = 2;
const WREFS_WAKE_REQUEST: u32 = 4;
const WREFS_ONE: u32 = 8;

/// Field offsets in glibc's x86-64 `struct __pthread_cond_s`.
const OFF_WSEQ: usize = 0;
const OFF_G1_START: usize = 8;

/// A process-shared condition variable (bit 0 of `__wrefs` set by `pthread_condattr_setpshared`).
#[derive(Clone, Copy)]
pub struct SharedCond {
    words: GlibcWords<48>,
    family: Family,
}

/// What ended a block on a signal word.
enum Blocked {
    /// Woken, spuriously or not, or the word had changed: look again.
    Again,
    TimedOut,
    /// A cancellation request ended the wait (the caller runs glibc's cleanup).
    Cancelled,
}

impl SharedCond {
    /// The process-shared condition variable at `c`, or None for a process-private one.
    ///
    /// # Safety
    /// `c` must point at a live, initialised `pthread_cond_t` that stays alive while the result is used.
    pub unsafe fn at(c: *mut libc::pthread_cond_t) -> Option<SharedCond> {
        let wrefs_at = super::super::identity::cond_wrefs_offset();
        let family = if wrefs_at == 36 { Family::GroupRefs } else { Family::NoGroupRefs };
        // SAFETY: a live pthread_cond_t per the contract (48 bytes, 8-aligned).
        let cv = SharedCond { words: unsafe { GlibcWords::at(c) }, family };
        (cv.wrefs().load(Relaxed) & WREFS_SHARED != 0).then_some(cv)
    }

    fn u32_at(&self, off: usize) -> &AtomicU32 {
        self.words.u32_at(off)
    }

    fn u64_at(&self, off: usize) -> &AtomicU64 {
        self.words.u64_at(off)
    }

    fn wseq(&self) -> &AtomicU64 {
        self.u64_at(OFF_WSEQ)
    }

    fn g1_start_word(&self) -> &AtomicU64 {
        self.u64_at(OFF_G1_START)
    }

    /// `__g_refs[g]` (first family only).
    fn g_refs(&self, g: u32) -> &AtomicU32 {
        debug_assert_eq!(self.family, Family::GroupRefs);
        self.u32_at(16 + 4 * g as usize)
    }

    fn g_size(&self, g: u32) -> &AtomicU32 {
        let at = if self.family == Family::GroupRefs { 24 } else { 16 };
        self.u32_at(at + 4 * g as usize)
    }

    fn orig_size_word(&self) -> &AtomicU32 {
        self.u32_at(if self.family == Family::GroupRefs { 32 } else { 24 })
    }

    fn wrefs(&self) -> &AtomicU32 {
        self.u32_at(if self.family == Family::GroupRefs { 36 } else { 28 })
    }

    fn g_signals(&self, g: u32) -> &AtomicU32 {
        let at = if self.family == Family::GroupRefs { 40 } else { 32 };
        self.u32_at(at + 4 * g as usize)
    }

    /// The futexes are process-private when the shared bit is clear (never here, but glibc derives it so).
    fn private(&self) -> bool {
        self.wrefs().load(Relaxed) & WREFS_SHARED == 0
    }

    /// The clock `pthread_cond_timedwait` measures its absolute time on (pthread_condattr_setclock).
    pub fn clock(&self) -> libc::clockid_t {
        if self.wrefs().load(Relaxed) & WREFS_CLOCK_MONOTONIC != 0 {
            libc::CLOCK_MONOTONIC
        } else {
            libc::CLOCK_REALTIME
        }
    }

    /// G1's start as a waiter position (the first family keeps G1's index in the low bit).
    fn g1_start(&self) -> u64 {
        let v = self.g1_start_word().load(Relaxed);
        if self.family == Family::GroupRefs { v >> 1 } else { v }
    }

    fn wake(&self, word: &AtomicU32, n: u32) {
        kernel_wait::wake(word as *const AtomicU32 as usize, n, self.private());
    }

    /// glibc's `futex_wait_simple`: not a cancellation point, no time limit; any end is a reason to look
    /// again, which the callers do.
    fn wait_simple(&self, word: &AtomicU32, val: u32) {
        let _ =
            kernel_wait::wait(word as *const AtomicU32 as usize, val, u32::MAX, self.private(), None, OnSignal::Resume);
    }

    // ---- the condvar-internal lock (`__condvar_acquire_lock` / `__condvar_release_lock`) --------------

    fn acquire_lock(&self) {
        let w = self.orig_size_word();
        let mut s = w.load(Relaxed);
        while s & 3 == 0 {
            match w.compare_exchange_weak(s, s | 1, Acquire, Relaxed) {
                Ok(_) => return,
                Err(now) => s = now,
            }
        }
        loop {
            while s & 3 != 2 {
                match w.compare_exchange_weak(s, (s & !3) | 2, Acquire, Relaxed) {
                    Ok(_) => {
                        if s & 3 == 0 {
                            return;
                        }
                        break;
                    }
                    Err(now) => s = now,
                }
            }
            self.wait_simple(w, (s & !3) | 2);
            s = w.load(Relaxed);
        }
    }

    fn release_lock(&self) {
        let w = self.orig_size_word();
        if w.fetch_and(!3, Release) & 3 == 2 {
            self.wake(w, 1);
        }
    }

    fn orig_size(&self) -> u32 {
        self.orig_size_word().load(Relaxed) >> 2
    }

    /// `__condvar_set_orig_size`, with the lock held.
    fn set_orig_size(&self, size: u32) {
        let w = self.orig_size_word();
        let s = (w.load(Relaxed) & 3) | (size << 2);
        if w.swap(s, Relaxed) & 3 != s & 3 {
            // A locker set the wake request meanwhile: keep it.
            w.store((size << 2) | 2, Relaxed);
        }
    }

    // ---- waiting ----------------------------------------------------------------------------------

    /// `__condvar_confirm_wakeup`: the waiter's reference dropped; the last one wakes a pending destroy.
    fn confirm_wakeup(&self) {
        if self.wrefs().fetch_sub(WREFS_ONE, Release) >> 2 == 3 {
            self.wake(self.wrefs(), i32::MAX as u32);
        }
    }

    /// `__condvar_dec_grefs` (first family).
    fn dec_grefs(&self, g: u32) {
        if self.g_refs(g).fetch_sub(2, Release) == 3 {
            self.g_refs(g).fetch_and(!1, Relaxed);
            self.wake(self.g_refs(g), i32::MAX as u32);
        }
    }

    /// `__condvar_cancel_waiting`: a waiter at position `seq` of group `g` gives up its place (timeout,
    /// cancellation, a failed unlock), sending a replacement signal if it had in effect consumed one.
    fn cancel_waiting(&self, seq: u64, g: u32) {
        let mut consumed_signal = false;
        self.acquire_lock();
        let g1_start = self.g1_start();
        if g1_start > seq {
            // The group is closed: someone signalled it fully, this waiter's share included.
            consumed_signal = true;
        } else if g1_start + u64::from(self.orig_size()) <= seq {
            // In G2: no signal consumed; shrink its (zero or negative) size, unless that would overflow.
            let size = self.g_size(g).load(Relaxed);
            if size.wrapping_add(MAX_GROUP_SIZE) > 0 {
                self.g_size(g).store(size.wrapping_sub(1), Relaxed);
            } else {
                self.release_lock();
                self.broadcast();
                return;
            }
        } else {
            // In G1: a size of zero means a signal was put there that only this waiter can consume.
            let size = self.g_size(g).load(Relaxed);
            if size == 0 {
                consumed_signal = true;
            } else {
                self.g_size(g).store(size - 1, Relaxed);
            }
        }
        self.release_lock();
        if consumed_signal {
            self.signal();
        }
    }

    /// Blocks on group `g`'s signal word while it holds `val`, until `deadline`; a handler that runs
    /// meanwhile returns into the wait.
    fn block(&self, g: u32, val: u32, deadline: Deadline) -> Blocked {
        let addr = self.g_signals(g) as *const AtomicU32 as usize;
        match kernel_wait::wait(addr, val, u32::MAX, self.private(), deadline, OnSignal::Resume) {
            Err(e) if e.0 == libc::ETIMEDOUT => Blocked::TimedOut,
            _ if cancelled() => Blocked::Cancelled,
            _ => Blocked::Again,
        }
    }

    /// glibc's condition wait with a mutex the caller holds: `unlock` releases it once this waiter is
    /// registered (so a signal sent after the release finds it), `relock` takes it again at the end (its
    /// error, EOWNERDEAD of a robust mutex, is the wait's result). Returns 0 or ETIMEDOUT; 0 too when a
    /// cancellation request ended the wait (the caller's cancellation point acts on it, with the mutex
    /// locked again as glibc's cleanup leaves it).
    pub fn wait_with(&self, unlock: impl FnOnce() -> i32, relock: impl FnOnce() -> i32, deadline: Deadline) -> i32 {
        let wseq = self.wseq().fetch_add(2, Acquire);
        let g = (wseq & 1) as u32;
        let seq = wseq >> 1;
        self.wrefs().fetch_add(WREFS_ONE, Relaxed);
        let err = unlock();
        if err != 0 {
            self.cancel_waiting(seq, g);
            self.confirm_wakeup();
            return err;
        }
        let result = match self.family {
            Family::GroupRefs => self.wait_group_refs(g, seq, deadline),
            Family::NoGroupRefs => self.wait_no_group_refs(g, seq, deadline),
        };
        let result = match result {
            Ok(r) => {
                self.confirm_wakeup();
                r
            }
            Err(Cancelled) => {
                // `__condvar_cleanup_waiting` (its g_refs reference was dropped already).
                self.cancel_waiting(seq, g);
                self.wake(self.g_signals(g), 1);
                self.confirm_wakeup();
                0
            }
        };
        match relock() {
            0 => result,
            e => e,
        }
    }

    /// The wait proper of the second family (2.41's `__pthread_cond_wait_common` loop).
    fn wait_no_group_refs(&self, g: u32, seq: u64, deadline: Deadline) -> Result<i32, Cancelled> {
        loop {
            let signals = self.g_signals(g).load(Acquire);
            let g1_start = self.g1_start();
            if seq < g1_start {
                // The group is closed: it had enough signals for this waiter.
                return Ok(0);
            }
            if (signals.wrapping_sub(g1_start as u32) as i32) > 0 {
                if self.g_signals(g).compare_exchange_weak(signals, signals.wrapping_sub(1), Acquire, Relaxed).is_ok() {
                    return Ok(0);
                }
                continue;
            }
            if cancelled() {
                return Err(Cancelled);
            }
            match self.block(g, signals, deadline) {
                Blocked::Again => {}
                Blocked::Cancelled => return Err(Cancelled),
                Blocked::TimedOut => {
                    self.cancel_waiting(seq, g);
                    return Ok(libc::ETIMEDOUT);
                }
            }
        }
    }

    /// The wait proper of the first family (2.31-2.40's `__pthread_cond_wait_common`, without its spinning,
    /// whose count glibc sets to 0).
    fn wait_group_refs(&self, g: u32, seq: u64, deadline: Deadline) -> Result<i32, Cancelled> {
        let mut signals = self.g_signals(g).load(Acquire);
        loop {
            // Closing (low bit): do not bother grabbing a signal.
            if signals & 1 != 0 {
                return Ok(0);
            }
            if signals != 0 {
                // Take a signal; if the word changed meanwhile, look at it again from the top.
                match self.g_signals(g).compare_exchange_weak(signals, signals - 2, Acquire, Acquire) {
                    Ok(_) => break,
                    Err(now) => {
                        signals = now;
                        continue;
                    }
                }
            }
            self.g_refs(g).fetch_add(2, Acquire);
            if self.g_signals(g).load(Acquire) & 1 != 0 || seq < self.g1_start() {
                self.dec_grefs(g);
                return Ok(0);
            }
            if cancelled() {
                self.dec_grefs(g);
                return Err(Cancelled);
            }
            match self.block(g, 0, deadline) {
                Blocked::Again => self.dec_grefs(g),
                Blocked::Cancelled => {
                    self.dec_grefs(g);
                    return Err(Cancelled);
                }
                Blocked::TimedOut => {
                    // The reference goes first, so a signaler quiescing this group cannot hold the lock
                    // the cancellation needs while waiting for this waiter.
                    self.dec_grefs(g);
                    self.cancel_waiting(seq, g);
                    return Ok(libc::ETIMEDOUT);
                }
            }
            signals = self.g_signals(g).load(Acquire);
        }
        // It may have come from a newer group aliasing this one's slot, which shows as a closed group:
        // if the current G1 is in this slot, give a signal back to it (a spurious wake-up at worst).
        let g1_start = self.g1_start_word().load(Relaxed);
        if seq < g1_start >> 1 && ((g1_start & 1) ^ 1) as u32 == g {
            let mut s = self.g_signals(g).load(Relaxed);
            while self.g1_start_word().load(Relaxed) == g1_start {
                let added = s & 1 != 0
                    || match self.g_signals(g).compare_exchange_weak(s, s.wrapping_add(2), Relaxed, Relaxed) {
                        Ok(_) => true,
                        Err(now) => {
                            s = now;
                            false
                        }
                    };
                if added {
                    self.wake(self.g_signals(g), 1);
                    break;
                }
            }
        }
        Ok(0)
    }

    // ---- signalling ---------------------------------------------------------------------------------

    /// Signal words count by 2 in the first family (the low bit is "closing"), by 1 in the second.
    fn signal_unit(&self) -> u32 {
        if self.family == Family::GroupRefs { 2 } else { 1 }
    }

    /// `__condvar_quiesce_and_switch_g1` (first family) / `__condvar_switch_g1` (second), with the lock
    /// held: G2 becomes G1 if it has waiters. Returns false when it has none; `g1` is updated.
    fn switch_g1(&self, wseq: u64, g1: &mut u32) -> bool {
        let old_orig_size = self.orig_size();
        let old_g1_start = self.g1_start();
        let new_g1_start = old_g1_start.wrapping_add(u64::from(old_orig_size));
        if (wseq.wrapping_sub(new_g1_start) as u32).wrapping_add(self.g_size(*g1 ^ 1).load(Relaxed)) == 0 {
            return false;
        }
        if self.family == Family::GroupRefs {
            // Close G1 for waiters about to block, then wait for its futex waiters to leave.
            self.g_signals(*g1).fetch_or(1, Relaxed);
            let refs = self.g_refs(*g1);
            let mut r = refs.fetch_or(0, Release);
            while r >> 1 > 0 {
                r = refs.fetch_or(1, Relaxed) | 1;
                if r >> 1 > 0 {
                    self.wait_simple(refs, r);
                }
                r = refs.load(Relaxed);
            }
            core::sync::atomic::fence(Acquire);
            // G1's start moves past it, and its index bit flips with it.
            let delta = (u64::from(old_orig_size) << 1).wrapping_add(if *g1 == 1 { 1 } else { u64::MAX });
            self.g1_start_word().fetch_add(delta, Relaxed);
            self.g_signals(*g1).store(0, Release);
        } else {
            self.g1_start_word().fetch_add(u64::from(old_orig_size), Relaxed);
        }
        let wseq = self.wseq().fetch_xor(1, Release) >> 1;
        *g1 ^= 1;
        if self.family == Family::NoGroupRefs {
            // The new G1's signal word starts at its start: no signals yet.
            self.g_signals(*g1).store(new_g1_start as u32, Release);
        }
        let orig_size = wseq.wrapping_sub(new_g1_start) as u32;
        self.set_orig_size(orig_size);
        let size = self.g_size(*g1).load(Relaxed).wrapping_add(orig_size);
        self.g_size(*g1).store(size, Relaxed);
        size != 0
    }

    /// The start of `pthread_cond_signal` and `pthread_cond_broadcast`: None when no thread waits
    /// (glibc's check before the lock); else the condition variable's internal lock taken, and the
    /// waiter sequence (without its G1 bit) and the index of G1.
    fn lock_for_signal(&self) -> Option<(u64, u32)> {
        if self.wrefs().load(Relaxed) >> 3 == 0 {
            return None;
        }
        self.acquire_lock();
        let wseq = self.wseq().load(Relaxed);
        Some((wseq >> 1, ((wseq & 1) ^ 1) as u32))
    }

    /// Signals every waiter of group `g` (under the internal lock); returns how many there were.
    fn signal_all(&self, g: u32) -> u32 {
        let size = self.g_size(g).load(Relaxed);
        if size != 0 {
            self.g_signals(g).fetch_add(size.wrapping_mul(self.signal_unit()), Relaxed);
            self.g_size(g).store(0, Relaxed);
        }
        size
    }

    /// `pthread_cond_signal`.
    pub fn signal(&self) {
        let Some((wseq, mut g1)) = self.lock_for_signal() else { return };
        let mut do_wake = false;
        if self.g_size(g1).load(Relaxed) != 0 || self.switch_g1(wseq, &mut g1) {
            self.g_signals(g1).fetch_add(self.signal_unit(), Relaxed);
            let size = self.g_size(g1).load(Relaxed);
            self.g_size(g1).store(size.wrapping_sub(1), Relaxed);
            do_wake = true;
        }
        self.release_lock();
        if do_wake {
            self.wake(self.g_signals(g1), 1);
        }
    }

    /// `pthread_cond_broadcast`.
    pub fn broadcast(&self) {
        let Some((wseq, mut g1)) = self.lock_for_signal() else { return };
        let mut do_wake = false;
        if self.signal_all(g1) != 0 {
            self.wake(self.g_signals(g1), i32::MAX as u32);
        }
        if self.switch_g1(wseq, &mut g1) {
            self.signal_all(g1);
            do_wake = true;
        }
        self.release_lock();
        if do_wake {
            self.wake(self.g_signals(g1), i32::MAX as u32);
        }
    }

    /// `pthread_cond_destroy`: waits until the waiters still counted have confirmed their wake-up.
    pub fn destroy(&self) {
        let w = self.wrefs();
        let mut wrefs = w.fetch_or(WREFS_WAKE_REQUEST, Acquire);
        while wrefs >> 3 != 0 {
            self.wait_simple(w, wrefs | WREFS_WAKE_REQUEST);
            wrefs = w.load(Acquire);
        }
    }
}

/// A cancellation request ended the wait.
struct Cancelled;

/// Whether a cancellation request ended a park of the calling coroutine in the current cancellation
/// point (the hook acts on it as the point ends).
fn cancelled() -> bool {
    super::super::worker::current_task().is_some_and(|me| me.cancel.point_cancelled())
}
