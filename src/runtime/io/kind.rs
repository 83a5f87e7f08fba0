//! What kind of object an fd names, which decides how a call on it is tried without blocking (see
//! `../shared/notes/nonblocking-per-call.md`): the call that made the object says so (a socket, a pipe,
//! an eventfd...), and a number the runtime has not seen made (inherited, opened by a path, received
//! with SCM_RIGHTS, or a dup) is looked up with fstat once per object.

use super::super::sys;
use super::fd::{self, FdEntry, Kind};

/// Finds what kind of object `fd` names (once per object), and forgets stale socket timeouts.
pub fn kind_of(fd: i32, e: &FdEntry) -> Kind {
    let k = e.kind();
    if k != Kind::Unknown {
        return k;
    }
    let k = match sys::fd::fstat(fd) {
        Err(_) => return Kind::Blocking, // bad fd: the real call reports it
        Ok(st) => match st.st_mode & libc::S_IFMT {
            libc::S_IFSOCK => Kind::Socket,
            libc::S_IFIFO => Kind::NoWait,
            libc::S_IFCHR => Kind::Pollable,
            libc::S_IFREG => Kind::File,
            // A pidfd polls readable when its task ends, which a read must not wait for.
            0 if sys::process::is_pidfd(fd) => Kind::Direct,
            // eventfd, timerfd, signalfd, epoll, inotify: anonymous inodes that poll works on.
            0 => Kind::Pollable,
            _ => Kind::Blocking,
        },
    };
    fd::note_number(fd);
    e.learned_kind(k, [fd::TIMEOUT_UNKNOWN; 2]);
    k
}

/// True when `fd` names a regular file (the kind `file`'s functions are for).
pub fn is_regular_file(fd: i32) -> bool {
    fd::entry(fd).is_some_and(|e| kind_of(fd, e) == Kind::File)
}

/// A socket the program just made (socket, accept): only this process has it.
pub fn socket_created(fd: i32) {
    fd::created(fd, Kind::Socket);
}

/// Both ends of a socketpair the program just made.
pub fn socket_pair_created(fds: [i32; 2]) {
    fds.into_iter().for_each(socket_created);
}

/// Both ends of a pipe the program just made: RWF_NOWAIT tries.
pub fn pipe_created(fds: [i32; 2]) {
    fds.into_iter().for_each(|fd| fd::created(fd, Kind::NoWait));
}

/// An eventfd, timerfd or new signalfd the program just made: poll works on them, and nothing else
/// makes a call on them non-blocking.
pub fn pollable_created(fd: i32) {
    fd::created(fd, Kind::Pollable);
}

/// A pidfd the program just made (pidfd_open).
pub fn pidfd_created(fd: i32) {
    fd::created(fd, Kind::Direct);
}

/// A number the program just made name an object made elsewhere (dup, dup2, F_DUPFD): looked up when
/// it matters.
pub fn duplicated(fd: i32) {
    fd::opened(fd, Kind::Unknown);
}
