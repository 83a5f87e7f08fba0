//! File descriptors for coroutines: what the runtime knows of each fd, how a blocking call on one is made
//! without blocking the worker, and the netpoller that says when to try again.
//!
//! A blocking call on an fd goes: hook (`hooks/io.rs`, `net.rs`, `poll.rs`...: C arguments in, errno out) →
//! the call's module here (`socket`, `file`, `stdio`...) → [`blocking`], which makes one try of the call
//! that cannot block ([`attempt`], in the way the fd's [`kind`] allows) and on EAGAIN registers the fd
//! with the [`netpoll`]er and parks on the fd entry's readiness sequence ([`fd`]). A worker's poll
//! returns ready events; the scheduler hands them to [`ready`], which wakes the entries' waiters.
//!
//! | file | job |
//! |---|---|
//! | [`fd`] | the fd table: what is known of each number (kind, registration, readiness sequences, socket timeouts, sharing), the runtime's own numbers |
//! | [`closing`] | close and dup2 of a number waiters use: hidden duplicates that keep the object for them; close_range |
//! | [`kind`] | what kind of object an fd names: said by the call that made it, or looked up |
//! | [`netpoll`] | one epoll instance: watches fds with a token each, returns the ready ones |
//! | [`ready`] | what a batch of netpoller events wakes |
//! | [`attempt`] | one try of read, write, readv/writev that cannot block, per kind |
//! | [`rw`] | read, write, readv, writev of a coroutine |
//! | [`blocking`] | a blocking call made cooperative: try, park until ready, timeouts, signals, closes under it |
//! | [`poll`] | poll, select and epoll waits of a coroutine on several fds |
//! | [`socket`] | socket calls: MSG_DONTWAIT tries, MSG_WAITALL, sends in full, accept, connect, options |
//! | [`mmsg`] | recvmmsg and sendmmsg on blocking sockets |
//! | [`msgq`] | System V message queues: no fd to watch, so tries with sleeps between |
//! | [`file`] | regular files: RWF_NOWAIT first, a helper thread for what the disk must supply; sendfile, splice |
//! | [`stdio`] | stdio reads (fgets, getline...) and scanf on sockets, pipes and terminals |
//! | [`stdio_write`] | stdio output (fwrite, printf...) on sockets, pipes and terminals |
//! | [`libio`] | glibc's FILE layout and flag bits, which both stdio sides work on |
//!
//! Below the scheduler core, which calls them: [`netpoll`] (it imports only `sys`), [`ready`] and [`fd`]
//! (the netpoller, the parking lot, `lock`, `sys`). The rest is policy over core.

pub mod aio;
pub mod attempt;
pub mod blocking;
pub mod closing;
pub mod fd;
pub mod file;
pub mod fopen;
pub mod kind;
mod libio;
pub mod mmsg;
pub mod msgq;
pub mod netpoll;
pub mod poll;
pub mod ready;
pub mod rw;
pub mod socket;
pub mod stdio;
pub mod stdio_write;

use super::sys::syscall::Errno;

/// What a call on an fd returns: a count, or the errno the program sees.
pub type IoResult = Result<usize, Errno>;

/// A wait ended by a handler with SA_RESTART: the call goes on, unless it already made progress (then it
/// returns what it did, as the kernel does). Never returned to the program.
pub const RESTART: Errno = Errno(512);

/// The kernel's limit on iovecs per call (UIO_MAXIOV).
pub const IOV_MAX: usize = 1024;

/// The iovecs that remain after the first `done` bytes.
pub fn advance(vecs: &[libc::iovec], mut done: usize) -> Vec<libc::iovec> {
    let mut out = Vec::with_capacity(vecs.len());
    for v in vecs {
        if done >= v.iov_len {
            done -= v.iov_len;
            continue;
        }
        out.push(libc::iovec {
            iov_base: (v.iov_base as *mut u8).wrapping_add(done) as *mut libc::c_void,
            iov_len: v.iov_len - done,
        });
        done = 0;
    }
    out
}
