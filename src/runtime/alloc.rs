//! The runtime's own heap (the library's `#[global_allocator]`): always glibc's own malloc, reached by its
//! `__libc_*` names, never the `malloc` the program links. A program on jemalloc or tcmalloc (redis-server)
//! has that allocator's locks and thread caches; the runtime allocating through them from a worker's own
//! context, from the monitor or in the middle of a switch would run the program's allocator on a thread it
//! has never seen, or while a coroutine of the program holds its lock (redis-server with I/O threads stuck
//! for good). glibc's malloc the runtime knows: it is what [`identity`] learns the layout of.
//!
//! One more rule: an allocation or free the runtime makes while a coroutine runs that has no malloc thread
//! cache yet does not give it one. glibc creates a thread's cache (0x290 bytes, kept for the thread's life)
//! at its first malloc or free; a thread that never allocates natively never has one, and the runtime's own
//! bookkeeping on its behalf (a parking-lot queue growing while it parks in read(), say) must not add one.

use super::identity;
use super::libc_malloc as glibc;
use core::ffi::c_void;
use std::alloc::{GlobalAlloc, Layout};

/// What glibc's malloc guarantees without being asked (2 × size_t on x86_64).
const MALLOC_ALIGN: usize = 16;

pub struct RuntimeAlloc;

/// Runs `f` (a malloc-family call) with glibc's thread-cache creation held off if the calling context is
/// a coroutine without a cache.
#[inline(always)]
fn without_new_tcache<R>(f: impl FnOnce() -> R) -> R {
    if identity::malloc_cache_missing_here() && identity::is_coroutine_tid(identity::current_tid()) {
        identity::without_malloc_cache_creation(f)
    } else {
        f()
    }
}

// SAFETY: every method returns memory from glibc's malloc sized and aligned as the layout asks
// (memalign above malloc's own alignment); only glibc's per-thread cache creation is held off around the
// call (see without_new_tcache).
unsafe impl GlobalAlloc for RuntimeAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: plain glibc malloc calls with the layout's size and alignment.
        without_new_tcache(|| unsafe {
            if layout.align() <= MALLOC_ALIGN {
                glibc::malloc(layout.size()) as *mut u8
            } else {
                glibc::memalign(layout.align(), layout.size()) as *mut u8
            }
        })
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above; memalign's block is zeroed by hand, calloc's by glibc.
        without_new_tcache(|| unsafe {
            if layout.align() <= MALLOC_ALIGN {
                glibc::calloc(1, layout.size()) as *mut u8
            } else {
                let p = glibc::memalign(layout.align(), layout.size()) as *mut u8;
                if !p.is_null() {
                    p.write_bytes(0, layout.size());
                }
                p
            }
        })
    }
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: ptr came from this allocator, that is from glibc's malloc.
        without_new_tcache(|| unsafe { glibc::free(ptr as *mut c_void) })
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN {
            // SAFETY: ptr came from glibc's malloc with malloc's own alignment, which realloc keeps.
            return without_new_tcache(|| unsafe { glibc::realloc(ptr as *mut c_void, new_size) as *mut u8 });
        }
        // SAFETY: a new aligned block, the old contents copied (the smaller size), the old block freed.
        unsafe {
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            let new = self.alloc(new_layout);
            if !new.is_null() {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}
