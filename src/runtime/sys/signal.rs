//! Signals as the kernel and glibc number them.

/// glibc's SIGCANCEL (the first real-time signal): thread cancellation. The program cannot use it;
/// glibc's `sigaction`, `pthread_kill` and the masks the program sets refuse or drop it.
pub const SIGCANCEL: i32 = 32;
/// glibc's SIGSETXID: its `set*id` calls signal every OS thread with it to change their credentials.
pub const SIGSETXID: i32 = 33;

/// Whether `sig` is one of glibc's two reserved signals (SIGCANCEL, SIGSETXID).
pub const fn is_glibc_reserved(sig: i32) -> bool {
    sig == SIGCANCEL || sig == SIGSETXID
}
