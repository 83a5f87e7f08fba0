//! System V message queues (msgrcv, msgsnd) for a coroutine. A queue has no descriptor the netpoller
//! could watch, so the call is tried with IPC_NOWAIT and the coroutine sleeps between tries, longer each
//! time (`runtime::poll_call`); a handled signal ends the wait with EINTR, as it ends the kernel's.
// The pointers these functions take are the program's own messages, which Rust code never dereferences:
// they go to the kernel, which checks them (EFAULT), as the program's own call would have.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use super::super::sys::ipc;
use super::super::sys::syscall::Errno;
use super::IoResult;

/// msgrcv(id, msg, size, kind, flags) (without IPC_NOWAIT: the caller makes that call itself).
pub fn receive(id: i32, msg: *mut libc::c_void, size: usize, kind: libc::c_long, flags: i32) -> IoResult {
    super::super::poll_call(libc::ENOMSG, || {
        // SAFETY: the program's own arguments; the kernel validates them.
        unsafe { ipc::msgrcv(id, msg, size, kind, flags | libc::IPC_NOWAIT) }.map_err(|e| e.0)
    })
    .map_err(Errno)
}

/// msgsnd(id, msg, size, flags) (without IPC_NOWAIT), waiting for room in a full queue.
pub fn send(id: i32, msg: *const libc::c_void, size: usize, flags: i32) -> IoResult {
    super::super::poll_call(libc::EAGAIN, || {
        // SAFETY: the program's own arguments; the kernel validates them.
        unsafe { ipc::msgsnd(id, msg, size, flags | libc::IPC_NOWAIT) }.map_err(|e| e.0)
    })
    .map_err(Errno)
}
