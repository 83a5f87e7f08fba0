//! The runtime's own heap (the library's `#[global_allocator]`): glibc's malloc, except that an allocation
//! or free the runtime makes while a coroutine runs that has no malloc thread cache yet does not give it
//! one. glibc creates a thread's cache (0x290 bytes, kept for the thread's life) at its first malloc or
//! free; a thread that never allocates natively never has one, and the runtime's own bookkeeping on its
//! behalf (a parking-lot queue growing while it parks in read(), say) must not add one. The coroutine's
//! cache still appears, as natively, at the program's own first malloc in it.

use super::identity;
use std::alloc::{GlobalAlloc, Layout, System};

pub struct RuntimeAlloc;

/// Runs `f` (a malloc-family call) with glibc's thread-cache creation held off if the calling context is
/// a coroutine without a cache.
#[inline(always)]
fn without_new_tcache<R>(f: impl FnOnce() -> R) -> R {
    if identity::malloc_cache_missing_here() && super::thread::is_coroutine_tid(identity::current_tid()) {
        identity::without_malloc_cache_creation(f)
    } else {
        f()
    }
}

// SAFETY: every method forwards to the system allocator with the caller's layout; only glibc's
// per-thread cache creation is held off around the call (see without_new_tcache).
unsafe impl GlobalAlloc for RuntimeAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is System's.
        without_new_tcache(|| unsafe { System.alloc(layout) })
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        without_new_tcache(|| unsafe { System.alloc_zeroed(layout) })
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above; ptr came from this allocator, that is from System.
        without_new_tcache(|| unsafe { System.dealloc(ptr, layout) })
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        without_new_tcache(|| unsafe { System.realloc(ptr, layout, new_size) })
    }
}
