//! malloc's per-thread cache ("tcache") as the runtime must handle it: glibc makes a thread's cache at its
//! first malloc or free and frees it at thread exit with a function it does not export. So the runtime
//! keeps its own allocations from giving a coroutine a cache it never asked for, and returns an ended
//! coroutine's cache to the arenas itself.
//!
//! Until 2.42 a thread without a cache has a NULL pointer and the flag `tcache_shutting_down` stops one
//! being made; from 2.43 the pointer is never NULL (it points at a read-only dummy) and pointing it at the
//! dummy's `disabled` member stops one being made. Both come from the learned [`Layout`].
//!
//! A thread is named by its descriptor's address (`Tcb.0`), not by `Tcb`: this file is the lower part of
//! `identity`, and `Tcb`'s methods in `mod.rs` call down into it.

use super::layout::{Hold, Layout};
use super::x86_64;
use crate::runtime::libc_malloc;
use core::ffi::c_void;
use core::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

/// Offset of the cache pointer from the thread pointer (0 until the layout is learned).
static CACHE_AT: AtomicIsize = AtomicIsize::new(0);
/// What the pointer holds in a thread without a cache.
static NO_CACHE: AtomicUsize = AtomicUsize::new(0);
/// Offset of `tcache_shutting_down` from the thread pointer, or 0.
static FLAG_AT: AtomicIsize = AtomicIsize::new(0);
/// Address of the "disabled" dummy, or 0.
static DISABLED: AtomicUsize = AtomicUsize::new(0);

/// Makes the fast paths below use the learned layout.
pub fn install(l: &Layout) {
    let cache_at = l.libc_tls + l.malloc.tcache as isize;
    NO_CACHE.store(l.malloc.none, Ordering::Relaxed);
    match l.malloc.hold {
        Hold::Flag(off) => FLAG_AT.store(l.libc_tls + off as isize, Ordering::Relaxed),
        Hold::Disabled(addr) => DISABLED.store(addr, Ordering::Relaxed),
    }
    CACHE_AT.store(cache_at, Ordering::Release);
}

/// Whether the calling thread has no malloc cache yet (false while the layout is not known).
#[inline(always)]
pub fn cache_missing_here() -> bool {
    let at = CACHE_AT.load(Ordering::Relaxed);
    at != 0 && x86_64::read_word_at_tp(at) == NO_CACHE.load(Ordering::Relaxed)
}

/// Runs `f` (a malloc-family call) so that it does not give the calling thread a cache: the call then
/// uses the arenas directly. Nothing switches coroutines inside a malloc call, so the state restored is
/// the same thread's.
#[inline(always)]
pub fn without_cache_creation<R>(f: impl FnOnce() -> R) -> R {
    let tp = x86_64::thread_pointer() as isize;
    let flag_at = FLAG_AT.load(Ordering::Relaxed);
    if flag_at != 0 {
        let flag = (tp + flag_at) as *mut u8;
        // SAFETY: libc's `tcache_shutting_down` byte in the calling thread's own static TLS.
        unsafe {
            let was = flag.read();
            flag.write(1);
            let r = f();
            flag.write(was);
            return r;
        }
    }
    let disabled = DISABLED.load(Ordering::Relaxed);
    if disabled != 0 {
        let slot = (tp + CACHE_AT.load(Ordering::Relaxed)) as *mut usize;
        // SAFETY: libc's cache pointer in the calling thread's own static TLS; it held the "no cache"
        // value (the caller checked) and gets it back.
        unsafe {
            let was = slot.read();
            slot.write(disabled);
            let r = f();
            slot.write(was);
            return r;
        }
    }
    f()
}

/// Returns an ended thread's malloc cache to the arenas, as glibc's (unexported) tcache_thread_shutdown
/// does at thread exit. Runs on the worker's own context: the chunks go where the worker's frees go.
pub fn release_cache(l: &Layout, tcb: usize) {
    let block = (tcb as isize + l.libc_tls) as usize;
    let m = &l.malloc;
    let slot = (block + m.tcache) as *mut usize;
    // SAFETY: the words are the ended thread's cache pointer and hold-off state in its static TLS;
    // with the pointer pointing at "no cache" (and creation held off) first, nothing can reach the chunks
    // through it again. A link that is not 16-byte aligned means the layout is not what was learned:
    // stop and leak rather than free garbage.
    unsafe {
        let tc = slot.read();
        if tc == m.none || tc == 0 || matches!(m.hold, Hold::Disabled(d) if d == tc) {
            return;
        }
        match m.hold {
            Hold::Flag(off) => {
                slot.write(0);
                ((block + off) as *mut u8).write(1);
            }
            Hold::Disabled(addr) => slot.write(addr),
        }
        let entries = (tc + m.bins * 2) as *mut usize;
        for i in 0..m.bins {
            let mut e = entries.add(i).read();
            while e != 0 {
                if e % 16 != 0 {
                    return;
                }
                let link = (e as *const usize).read();
                let next = if m.safe_linking { link ^ (e >> 12) } else { link };
                ((e + 8) as *mut usize).write(0);
                libc_malloc::free(e as *mut c_void);
                e = next;
            }
        }
        libc_malloc::free(tc as *mut c_void);
    }
}

/// The words of libc's TLS block malloc owns, read from a thread's static TLS (kept when a TCB is
/// recycled: the next thread reuses the previous owner's cache and arena instead of leaking them).
pub fn save(l: &Layout, tcb: usize) -> [usize; 3] {
    let block = (tcb as isize + l.libc_tls) as usize;
    let flag = match l.malloc.hold {
        Hold::Flag(off) => Some(off),
        Hold::Disabled(_) => None,
    };
    // SAFETY: words (and a byte) of the thread's libc TLS block, which the layout located.
    unsafe {
        [
            ((block + l.malloc.tcache) as *const usize).read(),
            ((block + l.malloc.arena) as *const usize).read(),
            flag.map_or(0, |off| ((block + off) as *const u8).read() as usize),
        ]
    }
}

/// Puts back what [`save`] read, after the block was re-initialised.
pub fn restore(l: &Layout, tcb: usize, saved: [usize; 3]) {
    let block = (tcb as isize + l.libc_tls) as usize;
    // SAFETY: as in save.
    unsafe {
        ((block + l.malloc.tcache) as *mut usize).write(saved[0]);
        ((block + l.malloc.arena) as *mut usize).write(saved[1]);
        if let Hold::Flag(off) = l.malloc.hold {
            ((block + off) as *mut u8).write(saved[2] as u8);
        }
    }
}
