//! Reading a word of this process's memory that may not be mapped, from any thread, without a signal:
//! `process_vm_readv` on ourselves answers EFAULT where a load would fault. (The fault-catching
//! [`super::usercopy`] needs SIGSEGV deliverable, which the monitor thread, where stacks are walked,
//! blocks.) One system call per word: for stack walks, not hot paths.

use super::syscall::syscall6;

/// The word at `addr`, or None when it cannot be read.
pub fn word(addr: usize) -> Option<u64> {
    let mut value = 0u64;
    let local = libc::iovec { iov_base: &mut value as *mut u64 as *mut libc::c_void, iov_len: 8 };
    let remote = libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: 8 };
    // SAFETY: the local iovec is our own 8-byte buffer; the kernel checks the remote one.
    let read = unsafe {
        syscall6(
            libc::SYS_process_vm_readv,
            [
                super::getpid() as usize,
                &local as *const libc::iovec as usize,
                1,
                &remote as *const libc::iovec as usize,
                1,
                0,
            ],
        )
    };
    matches!(read, Ok(8)).then_some(value)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_what_is_mapped_and_nothing_else() {
        let here = 0x1234_5678_9abc_def0u64;
        assert_eq!(super::word(&here as *const u64 as usize), Some(here));
        assert_eq!(super::word(8), None);
    }
}
