//! glibc's malloc under the names it exports for exactly this (`__libc_malloc` and kin, in every release
//! since 2.2.5): the runtime's heap (see [`super::alloc`]) and the start-up probes of its thread cache
//! use it, never the `malloc` the program links. A leaf: it imports nothing of the runtime.

use core::ffi::c_void;

unsafe extern "C" {
    #[link_name = "__libc_malloc"]
    pub fn malloc(size: usize) -> *mut c_void;
    #[link_name = "__libc_calloc"]
    pub fn calloc(n: usize, size: usize) -> *mut c_void;
    #[link_name = "__libc_realloc"]
    pub fn realloc(p: *mut c_void, size: usize) -> *mut c_void;
    #[link_name = "__libc_memalign"]
    pub fn memalign(align: usize, size: usize) -> *mut c_void;
    #[link_name = "__libc_free"]
    pub fn free(p: *mut c_void);
}
