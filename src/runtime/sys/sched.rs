//! The calling OS thread's scheduling attributes (tid 0 = "myself" in every call): policy, real-time
//! priority, nice value, the reset-on-fork flag, and CPU affinity.

use super::Errno;
use super::syscall::{syscall2, syscall3};

/// The kernel's `struct sched_attr` (version 1, 56 bytes, with the utilisation clamps).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
    pub util_min: u32,
    pub util_max: u32,
}

/// SCHED_ATTR_SIZE_VER0: the first version's size, without the clamps.
pub const ATTR_SIZE_VER0: usize = 48;

/// SCHED_FLAG_RESET_ON_FORK.
pub const FLAG_RESET_ON_FORK: u64 = 1;

/// sched_getattr(0): the calling thread's attributes.
pub fn getattr() -> Result<SchedAttr, Errno> {
    let mut a = SchedAttr::default();
    let size = core::mem::size_of::<SchedAttr>();
    // SAFETY: `a` is writable for `size` bytes; flags must be 0.
    unsafe { super::syscall::syscall4(libc::SYS_sched_getattr, 0, &mut a as *mut _ as usize, size, 0) }?;
    Ok(a)
}

/// sched_setattr(0, attr), in the first version's size (no clamps: they are left as they are).
pub fn setattr(attr: &SchedAttr) -> Result<(), Errno> {
    let mut a = *attr;
    a.size = ATTR_SIZE_VER0 as u32;
    // SAFETY: `a` is a readable sched_attr of the size it declares; flags must be 0.
    unsafe { syscall3(libc::SYS_sched_setattr, 0, &a as *const _ as usize, 0) }.map(|_| ())
}

/// sched_setattr(0, bytes, flags) with a program's own sched_attr bytes (its size field says how many).
/// The kernel may write the size it wants back into `bytes` (E2BIG).
pub fn setattr_raw(bytes: &mut [u8], flags: u32) -> Result<(), Errno> {
    // SAFETY: `bytes` is readable and writable for its whole length, which covers the size it declares.
    unsafe { syscall3(libc::SYS_sched_setattr, 0, bytes.as_mut_ptr() as usize, flags as usize) }.map(|_| ())
}

/// sched_setscheduler(0, policy, {priority}).
pub fn setscheduler(policy: i32, priority: i32) -> Result<(), Errno> {
    let p = libc::sched_param { sched_priority: priority };
    // SAFETY: `p` is a readable sched_param.
    unsafe { syscall3(libc::SYS_sched_setscheduler, 0, policy as usize, &p as *const _ as usize) }.map(|_| ())
}

/// sched_setparam(0, {priority}).
pub fn setparam(priority: i32) -> Result<(), Errno> {
    let p = libc::sched_param { sched_priority: priority };
    // SAFETY: `p` is a readable sched_param.
    unsafe { syscall2(libc::SYS_sched_setparam, 0, &p as *const _ as usize) }.map(|_| ())
}

/// setpriority(PRIO_PROCESS, 0, nice): on Linux, the calling thread's nice value.
pub fn setnice(nice: i32) -> Result<(), Errno> {
    // SAFETY: plain integer arguments.
    unsafe { syscall3(libc::SYS_setpriority, libc::PRIO_PROCESS as usize, 0, nice as usize) }.map(|_| ())
}

/// getpriority(PRIO_PROCESS, 0): the calling thread's nice value (sched_getattr reports 0 for a
/// real-time thread, which keeps its nice value for when it returns to a fair policy).
pub fn getnice() -> Result<i32, Errno> {
    // SAFETY: plain integer arguments.
    unsafe { super::syscall::syscall2(libc::SYS_getpriority, libc::PRIO_PROCESS as usize, 0) }.map(|v| 20 - v as i32)
}

/// sched_setaffinity(0, mask).
pub fn setaffinity(mask: &[u8]) -> Result<(), Errno> {
    // SAFETY: `mask` is readable for its length.
    unsafe { syscall3(libc::SYS_sched_setaffinity, 0, mask.len(), mask.as_ptr() as usize) }.map(|_| ())
}

/// sched_getaffinity(0, len, buf): the bytes the kernel wrote (its mask size), or its EINVAL for a buffer
/// too small or not a multiple of a long.
///
/// # Safety
/// `buf` must be writable for `len` bytes.
pub unsafe fn getaffinity(buf: *mut u8, len: usize) -> Result<usize, Errno> {
    // SAFETY: per the contract.
    unsafe { syscall3(libc::SYS_sched_getaffinity, 0, len, buf as usize) }
}

/// sched_setattr(pid, attr, flags) as a program makes it (for a thread that is the kernel's).
///
/// # Safety
/// As for the system call: the kernel checks the pointer.
pub unsafe fn setattr_of(pid: i32, attr: *mut u8, flags: u32) -> Result<(), Errno> {
    // SAFETY: per the contract.
    unsafe { syscall3(libc::SYS_sched_setattr, pid as usize, attr as usize, flags as usize) }.map(|_| ())
}

/// sched_getattr(pid, attr, size, flags) as a program makes it (for a thread that is the kernel's).
///
/// # Safety
/// As for the system call: the kernel checks the pointer.
pub unsafe fn getattr_of(pid: i32, attr: *mut u8, size: u32, flags: u32) -> Result<(), Errno> {
    // SAFETY: per the contract.
    unsafe {
        super::syscall::syscall4(libc::SYS_sched_getattr, pid as usize, attr as usize, size as usize, flags as usize)
    }
    .map(|_| ())
}

/// IOPRIO_WHO_PROCESS: ioprio_set/ioprio_get name one thread by tid (0: the caller).
pub const IOPRIO_WHO_PROCESS: i32 = 1;

/// ioprio_set(IOPRIO_WHO_PROCESS, 0, ioprio): the calling thread's I/O priority.
pub fn ioprio_set_own(ioprio: i32) -> Result<(), Errno> {
    // SAFETY: plain integer arguments.
    unsafe { syscall3(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS as usize, 0, ioprio as usize) }.map(|_| ())
}

/// ioprio_get(IOPRIO_WHO_PROCESS, 0): the calling thread's I/O priority as the kernel reports it (derived
/// from its nice value and policy while none was set).
pub fn ioprio_get_own() -> Result<i32, Errno> {
    // SAFETY: plain integer arguments.
    unsafe { super::syscall::syscall2(libc::SYS_ioprio_get, IOPRIO_WHO_PROCESS as usize, 0) }.map(|v| v as i32)
}
