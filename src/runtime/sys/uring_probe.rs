//! Whether this kernel lets a process make an io_uring: the launcher's `asyncshim doctor` asks, so that
//! a user sees why the kernel futex waits (`sys::uring`) fall back to helper threads.
//!
//! The launcher must not link the library, so it includes this file by path; it therefore depends on
//! nothing but `std` and `libc`. It lives here because every raw system call of the project does.

/// Makes a one-entry ring and closes it at once. `Err` holds the errno of the refused `io_uring_setup`
/// (ENOSYS: not in this kernel; EPERM: disabled by `kernel.io_uring_disabled` or a seccomp filter).
pub fn io_uring_available() -> Result<(), std::io::Error> {
    // The kernel's `struct io_uring_params` (120 bytes), zeroed: no flags, no features asked for.
    let mut params = [0u8; 120];
    // SAFETY: io_uring_setup with one entry and a writable params struct of the kernel's size.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1, params.as_mut_ptr()) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: closing the fd just made, which nothing else knows of.
    unsafe { libc::close(fd as i32) };
    Ok(())
}
