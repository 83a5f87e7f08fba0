//! Address-space reservation for coroutine stacks: one large lazily-committed mapping per stack class,
//! guard regions that do not split it, and returning pages to the kernel.

use super::syscall::{Errno, syscall3, syscall6};

/// Linux 6.13+: installs guard markers in page tables, without creating a VMA (so 100,000 guarded stacks
/// stay far below vm.max_map_count). Older kernels answer EINVAL.
const MADV_GUARD_INSTALL: usize = 102;

/// Reserves `len` bytes of read-write anonymous memory that is committed only when touched.
pub fn reserve(len: usize) -> Result<*mut u8, Errno> {
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
    // SAFETY: an anonymous mapping at a kernel-chosen address touches no existing memory.
    let p = unsafe {
        syscall6(libc::SYS_mmap, [0, len, (libc::PROT_READ | libc::PROT_WRITE) as usize, flags as usize, usize::MAX, 0])
    }?;
    Ok(p as *mut u8)
}

/// Makes `[addr, addr+len)` fault on access without splitting the mapping. Returns false if unsupported.
pub fn guard_install(addr: *mut u8, len: usize) -> bool {
    // SAFETY: the range lies inside a reservation owned by the stack allocator.
    unsafe { syscall3(libc::SYS_madvise, addr as usize, len, MADV_GUARD_INSTALL) }.is_ok()
}

/// Fallback guard that does split the mapping (costs one VMA per guard).
pub fn protect_none(addr: *mut u8, len: usize) -> bool {
    // SAFETY: the range lies inside a reservation owned by the stack allocator.
    unsafe { syscall3(libc::SYS_mprotect, addr as usize, len, libc::PROT_NONE as usize) }.is_ok()
}

/// Gives the pages of `[addr, addr+len)` back to the kernel; they read as zero when touched again.
pub fn discard(addr: *mut u8, len: usize) {
    // SAFETY: the range is an unused stack inside a reservation owned by the stack allocator.
    let _ = unsafe { syscall3(libc::SYS_madvise, addr as usize, len, libc::MADV_DONTNEED as usize) };
}
