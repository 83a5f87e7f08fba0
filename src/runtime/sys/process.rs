//! Processes and threads through raw system calls: waiting for children, pidfds to poll for their end, a
//! thread's own exit and its rseq registration.

use super::syscall::{Errno, syscall2, syscall3, syscall4, syscall6};

/// wait4(2).
///
/// # Safety
/// `status` and `rusage` are null or the program's own.
pub unsafe fn wait4(pid: i32, status: *mut i32, options: i32, rusage: *mut libc::rusage) -> Result<usize, Errno> {
    // SAFETY: the caller vouches for the pointers.
    unsafe { syscall4(libc::SYS_wait4, pid as usize, status as usize, options as usize, rusage as usize) }
}

/// waitid(2) without a rusage.
///
/// # Safety
/// `info` is null or the program's own.
pub unsafe fn waitid(idtype: u32, id: u32, info: *mut libc::siginfo_t, options: i32) -> Result<usize, Errno> {
    // SAFETY: the caller vouches for the pointer.
    unsafe { syscall6(libc::SYS_waitid, [idtype as usize, id as usize, info as usize, options as usize, 0, 0]) }
}

/// Ends the calling OS thread (exit(2), not exit_group): nothing of it runs after this.
pub fn exit_thread(code: i32) -> ! {
    // SAFETY: the thread ends here; no Rust frame of it runs again.
    let _ = unsafe { super::syscall::syscall1(libc::SYS_exit, code as usize) };
    unreachable!("exit(2) returned")
}

/// A pidfd for process `pid` (pidfd_open(2)), readable once it ended.
pub fn pidfd_open(pid: i32) -> Result<i32, Errno> {
    // SAFETY: creates a new fd; touches no memory.
    unsafe { syscall2(libc::SYS_pidfd_open, pid as usize, 0) }.map(|fd| fd as i32)
}

/// pidfd_open(2) with the program's flags.
pub fn pidfd_open_flags(pid: i32, flags: u32) -> Result<i32, Errno> {
    // SAFETY: creates a new fd; touches no memory.
    unsafe { syscall2(libc::SYS_pidfd_open, pid as usize, flags as usize) }.map(|fd| fd as i32)
}

/// Whether `fd` names a pidfd (of a process or a thread, however it was made): since Linux 6.9 a pidfs
/// file; before, an anonymous inode whose link in `/proc/self/fd` says `[pidfd]` (the file system of
/// eventfds, epoll and signalfds too, which only the name tells apart).
pub fn is_pidfd(fd: i32) -> bool {
    const PIDFS_MAGIC: i64 = 0x5049_4446;
    const ANON_INODE_FS_MAGIC: i64 = 0x0904_1934;
    // SAFETY: all-zero is a valid statfs.
    let mut sf: libc::statfs = unsafe { core::mem::zeroed() };
    // SAFETY: fstatfs into a local struct.
    if unsafe { syscall2(libc::SYS_fstatfs, fd as usize, &mut sf as *mut libc::statfs as usize) }.is_err() {
        return false;
    }
    match sf.f_type {
        PIDFS_MAGIC => true,
        ANON_INODE_FS_MAGIC => {
            let Ok(path) = std::ffi::CString::new(format!("/proc/self/fd/{fd}")) else { return false };
            let mut link = [0u8; 32];
            // SAFETY: a NUL-terminated path and a local buffer of the length given.
            let n =
                unsafe { syscall3(libc::SYS_readlink, path.as_ptr() as usize, link.as_mut_ptr() as usize, link.len()) };
            n.is_ok_and(|n| &link[..n] == b"anon_inode:[pidfd]")
        }
        _ => false,
    }
}

/// rseq(2) with RSEQ_FLAG_UNREGISTER: takes back the calling thread's registration of `area` (`len` bytes,
/// glibc's signature), so that the kernel no longer writes into it.
pub fn rseq_unregister(area: usize, len: usize) -> Result<(), Errno> {
    const RSEQ_FLAG_UNREGISTER: usize = 1;
    const RSEQ_SIG: usize = 0x5305_3053;
    // SAFETY: unregistering touches no memory; the kernel checks address, length and signature.
    unsafe { syscall4(libc::SYS_rseq, area, len, RSEQ_FLAG_UNREGISTER, RSEQ_SIG) }.map(|_| ())
}

/// pidfd_send_signal(2) with the program's arguments.
///
/// # Safety
/// `info` is null or the program's own.
pub unsafe fn pidfd_send_signal(
    pidfd: i32,
    sig: i32,
    info: *const libc::siginfo_t,
    flags: u32,
) -> Result<usize, Errno> {
    // SAFETY: the caller vouches for the pointer, which the kernel only reads.
    unsafe { syscall4(libc::SYS_pidfd_send_signal, pidfd as usize, sig as usize, info as usize, flags as usize) }
}
