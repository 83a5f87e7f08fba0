//! The real libc functions behind every hook, looked up once with `dlsym(RTLD_NEXT)` in the library's
//! constructor (lazily if a hook runs before it). The runtime uses the same table whenever it needs a libc
//! function that asyncshim also exports, so it never calls its own hooks by accident.
//!
//! Looking functions up by name also keeps the library loadable on every glibc from 2.31 on: nothing here
//! is bound to a symbol version at link time, and a function an older glibc lacks is an `Option`
//! ([`pthread_attr_setsigmask_np`]) rather than a library that fails to load.

use std::ffi::{CStr, c_char, c_int, c_uint, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct RealFn {
    addr: AtomicUsize,
    name: &'static str,
    /// Symbol version to ask for with dlvsym ("" for the default version).
    version: &'static str,
}

impl RealFn {
    pub const fn new(name: &'static str, version: &'static str) -> RealFn {
        RealFn { addr: AtomicUsize::new(0), name, version }
    }

    #[inline(always)]
    pub fn addr(&self) -> usize {
        match self.addr.load(Ordering::Relaxed) {
            0 => self.resolve(),
            a => a,
        }
    }

    #[cold]
    fn resolve(&self) -> usize {
        let name = CStr::from_bytes_with_nul(self.name.as_bytes()).expect("NUL-terminated name");
        // SAFETY: dlsym/dlvsym with a valid handle and NUL-terminated strings.
        let p = unsafe {
            if self.version.is_empty() {
                libc::dlsym(libc::RTLD_NEXT, name.as_ptr())
            } else {
                libc::dlvsym(libc::RTLD_NEXT, name.as_ptr(), self.version.as_ptr() as *const c_char)
            }
        } as usize;
        if p == 0 {
            crate::runtime::sys::write_stderr(
                format!("asyncshim: libc has no {}; cannot continue\n", &self.name[..self.name.len() - 1]).as_bytes(),
            );
            // SAFETY: abort has no preconditions.
            unsafe { libc::abort() };
        }
        self.addr.store(p, Ordering::Relaxed);
        p
    }
}

macro_rules! declare_real {
    ($( fn $name:ident($($arg:ident: $t:ty),* $(,)?) -> $ret:ty $(, $ver:literal)?; )*) => {
        #[allow(non_upper_case_globals)]
        mod slot {
            $( pub static $name: super::RealFn =
                super::RealFn::new(concat!(stringify!($name), "\0"), concat!($($ver, "\0")?)); )*
        }
        $(
            /// The libc function of this name (not asyncshim's hook).
            ///
            /// # Safety
            /// As for the libc function.
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            pub unsafe fn $name($($arg: $t),*) -> $ret {
                // SAFETY: the symbol has this C signature in glibc.
                let f: unsafe extern "C" fn($($t),*) -> $ret = unsafe { core::mem::transmute(slot::$name.addr()) };
                // SAFETY: the caller upholds the libc function's contract.
                unsafe { f($($arg),*) }
            }
        )*
        /// Address of the real `vfork`, for the frameless vfork hook.
        pub fn vfork_addr() -> usize {
            slot::vfork.addr()
        }

        /// Address of the real `vfscanf` (GNU conversions), for the scanf family's trial runs.
        pub fn vfscanf_addr() -> usize {
            slot::vfscanf.addr()
        }

        /// Address of the real `__isoc99_vfscanf`.
        pub fn isoc99_vfscanf_addr() -> usize {
            slot::__isoc99_vfscanf.addr()
        }

        /// Address of the real `pthread_detach`, for the start-up probe's thread.
        pub fn pthread_detach_addr() -> usize {
            slot::pthread_detach.addr()
        }

        /// Address of the real `fork`.
        pub fn fork_addr() -> usize {
            slot::fork.addr()
        }

        /// Resolves every entry now (called from the constructor).
        pub fn resolve_all() {
            $( slot::$name.addr(); )*
        }
    };
}

/// A libc function that older glibc releases lack, looked up once; None there.
fn optional(slot: &AtomicUsize, name: &CStr) -> Option<usize> {
    const MISSING: usize = 1;
    match slot.load(Ordering::Relaxed) {
        0 => {
            // SAFETY: dlsym with a valid handle and a NUL-terminated name.
            let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) } as usize;
            slot.store(if p == 0 { MISSING } else { p }, Ordering::Relaxed);
            (p != 0).then_some(p)
        }
        MISSING => None,
        p => Some(p),
    }
}

/// A POSIX timer function: libc's from glibc 2.34, librt's before (loaded here if the program has not: it
/// reaches a hook only if it linked librt, but a lookup of its own may come first).
fn timer_fn(slot: &AtomicUsize, name: &CStr) -> usize {
    // The version of the timer_t ABI in use (librt's since 2.3.3, kept by libc): an unversioned
    // dlsym(RTLD_NEXT) may give the oldest, glibc 2.2's, whose ids are indexes, not pointers.
    librt_fn(slot, name, c"GLIBC_2.3.3")
}

/// A function of librt before glibc 2.34 and of libc from then on, at `version` (see [`timer_fn`]).
fn librt_fn(slot: &AtomicUsize, name: &CStr, version: &CStr) -> usize {
    let p = slot.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    // SAFETY: dlvsym/dlsym/dlopen with valid handles and NUL-terminated names.
    let p = unsafe {
        let mut p = libc::dlvsym(libc::RTLD_NEXT, name.as_ptr(), version.as_ptr());
        if p.is_null() {
            let h = libc::dlopen(c"librt.so.1".as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL);
            if !h.is_null() {
                p = libc::dlvsym(h, name.as_ptr(), version.as_ptr());
            }
        }
        if p.is_null() {
            p = libc::dlsym(libc::RTLD_NEXT, name.as_ptr());
        }
        p as usize
    };
    if p == 0 {
        crate::runtime::sys::write_stderr(format!("asyncshim: libc has no {name:?}; cannot continue\n").as_bytes());
        // SAFETY: abort has no preconditions.
        unsafe { libc::abort() };
    }
    slot.store(p, Ordering::Relaxed);
    p
}

/// # Safety
/// C contract of timer_create.
pub unsafe fn timer_create(clock: libc::clockid_t, sev: *mut libc::sigevent, id: *mut libc::timer_t) -> c_int {
    static SLOT: AtomicUsize = AtomicUsize::new(0);
    type F = unsafe extern "C" fn(libc::clockid_t, *mut libc::sigevent, *mut libc::timer_t) -> c_int;
    // SAFETY: glibc's function of this signature, called under its contract.
    unsafe { core::mem::transmute::<usize, F>(timer_fn(&SLOT, c"timer_create"))(clock, sev, id) }
}

/// # Safety
/// C contract of timer_settime.
pub unsafe fn timer_settime(
    id: libc::timer_t,
    flags: c_int,
    new: *const libc::itimerspec,
    old: *mut libc::itimerspec,
) -> c_int {
    static SLOT: AtomicUsize = AtomicUsize::new(0);
    type F = unsafe extern "C" fn(libc::timer_t, c_int, *const libc::itimerspec, *mut libc::itimerspec) -> c_int;
    // SAFETY: glibc's function of this signature, called under its contract.
    unsafe { core::mem::transmute::<usize, F>(timer_fn(&SLOT, c"timer_settime"))(id, flags, new, old) }
}

/// # Safety
/// C contract of timer_gettime.
pub unsafe fn timer_gettime(id: libc::timer_t, cur: *mut libc::itimerspec) -> c_int {
    static SLOT: AtomicUsize = AtomicUsize::new(0);
    type F = unsafe extern "C" fn(libc::timer_t, *mut libc::itimerspec) -> c_int;
    // SAFETY: glibc's function of this signature, called under its contract.
    unsafe { core::mem::transmute::<usize, F>(timer_fn(&SLOT, c"timer_gettime"))(id, cur) }
}

/// # Safety
/// C contract of timer_getoverrun.
pub unsafe fn timer_getoverrun(id: libc::timer_t) -> c_int {
    static SLOT: AtomicUsize = AtomicUsize::new(0);
    type F = unsafe extern "C" fn(libc::timer_t) -> c_int;
    // SAFETY: glibc's function of this signature, called under its contract.
    unsafe { core::mem::transmute::<usize, F>(timer_fn(&SLOT, c"timer_getoverrun"))(id) }
}

/// # Safety
/// C contract of timer_delete.
pub unsafe fn timer_delete(id: libc::timer_t) -> c_int {
    static SLOT: AtomicUsize = AtomicUsize::new(0);
    type F = unsafe extern "C" fn(libc::timer_t) -> c_int;
    // SAFETY: glibc's function of this signature, called under its contract.
    unsafe { core::mem::transmute::<usize, F>(timer_fn(&SLOT, c"timer_delete"))(id) }
}

/// The POSIX message queue calls that wait (librt's before glibc 2.34, libc's from then on), for plain
/// threads: `mq_receive`, `mq_send` and their timed forms.
macro_rules! mq_calls {
    ($( $name:ident($($arg:ident: $t:ty),*) -> $ret:ty; )*) => {$(
        /// # Safety
        #[doc = concat!("C contract of ", stringify!($name), ".")]
        pub unsafe fn $name($($arg: $t),*) -> $ret {
            static SLOT: AtomicUsize = AtomicUsize::new(0);
            let f = librt_fn(&SLOT, &CStr::from_bytes_with_nul(concat!(stringify!($name), "\0").as_bytes()).expect("a name"), c"GLIBC_2.3.4");
            // SAFETY: glibc's function of this signature, called under its contract.
            unsafe { core::mem::transmute::<usize, unsafe extern "C" fn($($t),*) -> $ret>(f)($($arg),*) }
        }
    )*};
}

mq_calls! {
    mq_receive(mq: libc::mqd_t, msg: *mut c_char, len: usize, prio: *mut c_uint) -> isize;
    mq_timedreceive(mq: libc::mqd_t, msg: *mut c_char, len: usize, prio: *mut c_uint, abs: *const libc::timespec) -> isize;
    mq_send(mq: libc::mqd_t, msg: *const c_char, len: usize, prio: c_uint) -> c_int;
    mq_timedsend(mq: libc::mqd_t, msg: *const c_char, len: usize, prio: c_uint, abs: *const libc::timespec) -> c_int;
}

/// glibc's `aio_suspend` (librt's before glibc 2.34, libc's from then on; x86-64 has one `aio_suspend`
/// under both names and versions, GLIBC_2.2.5 the first).
pub type AioSuspendFn = unsafe extern "C" fn(*const *const libc::aiocb, c_int, *const libc::timespec) -> c_int;

/// The real `aio_suspend` (see [`AioSuspendFn`]).
pub fn aio_suspend() -> AioSuspendFn {
    static SLOT: AtomicUsize = AtomicUsize::new(0);
    // SAFETY: glibc's function of this signature.
    unsafe { core::mem::transmute::<usize, AioSuspendFn>(librt_fn(&SLOT, c"aio_suspend", c"GLIBC_2.2.5")) }
}

type SetSigmaskFn = unsafe extern "C" fn(*mut libc::pthread_attr_t, *const libc::sigset_t) -> c_int;

/// `pthread_attr_setsigmask_np` (glibc 2.32 on), or None on an older glibc.
pub fn pthread_attr_setsigmask_np() -> Option<SetSigmaskFn> {
    static SLOT: AtomicUsize = AtomicUsize::new(0);
    // SAFETY: glibc's function of this signature.
    optional(&SLOT, c"pthread_attr_setsigmask_np").map(|p| unsafe { core::mem::transmute::<usize, SetSigmaskFn>(p) })
}

/// `__isoc23_vfscanf` (glibc 2.38 on), or None on an older glibc.
pub fn isoc23_vfscanf_addr() -> Option<usize> {
    static SLOT: AtomicUsize = AtomicUsize::new(0);
    optional(&SLOT, c"__isoc23_vfscanf")
}

type ExecveatFn =
    unsafe extern "C" fn(c_int, *const c_char, *const *const c_char, *const *const c_char, c_int) -> c_int;

/// `execveat` (glibc 2.34 on), or None on an older glibc.
pub fn execveat() -> Option<ExecveatFn> {
    static SLOT: AtomicUsize = AtomicUsize::new(0);
    // SAFETY: glibc's function of this signature.
    optional(&SLOT, c"execveat").map(|p| unsafe { core::mem::transmute::<usize, ExecveatFn>(p) })
}

/// The real execl, execle or execlp (`which` 0, 1, 2), for their frameless hooks (they are variadic).
pub fn execl_family_addr(which: usize) -> usize {
    static SLOTS: [AtomicUsize; 3] = [const { AtomicUsize::new(0) }; 3];
    const NAMES: [&CStr; 3] = [c"execl", c"execle", c"execlp"];
    optional(&SLOTS[which], NAMES[which]).unwrap_or(0)
}

type GettidNpFn = unsafe extern "C" fn(libc::pthread_t) -> libc::pid_t;

/// `pthread_gettid_np` (glibc 2.42 on), or None on an older glibc.
pub fn pthread_gettid_np() -> Option<GettidNpFn> {
    static SLOT: AtomicUsize = AtomicUsize::new(0);
    // SAFETY: glibc's function of this signature.
    optional(&SLOT, c"pthread_gettid_np").map(|p| unsafe { core::mem::transmute::<usize, GettidNpFn>(p) })
}

type StartFn = extern "C" fn(*mut c_void) -> *mut c_void;
type MainFn = extern "C" fn(c_int, *mut *mut c_char, *mut *mut c_char) -> c_int;

declare_real! {
    fn open(path: *const c_char, flags: c_int, mode: c_uint) -> c_int;
    fn __open_2(path: *const c_char, flags: c_int) -> c_int;
    fn openat(dirfd: c_int, path: *const c_char, flags: c_int, mode: c_uint) -> c_int;
    fn __openat_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int;
    fn creat(path: *const c_char, mode: libc::mode_t) -> c_int;
    fn tcdrain(fd: c_int) -> c_int;
    fn __xpg_sigpause(sig: c_int) -> c_int;
    fn __sigpause(sig_or_mask: c_int, is_sig: c_int) -> c_int;
    fn sigpause(mask: c_int) -> c_int;
    fn fopen(path: *const c_char, mode: *const c_char) -> *mut libc::FILE;
    fn pthread_setschedparam(t: libc::pthread_t, policy: c_int, param: *const libc::sched_param) -> c_int;
    fn pthread_getschedparam(t: libc::pthread_t, policy: *mut c_int, param: *mut libc::sched_param) -> c_int;
    fn pthread_setschedprio(t: libc::pthread_t, prio: c_int) -> c_int;
    fn pthread_setaffinity_np(t: libc::pthread_t, size: usize, set: *const libc::cpu_set_t) -> c_int;
    fn pthread_getaffinity_np(t: libc::pthread_t, size: usize, set: *mut libc::cpu_set_t) -> c_int;
    fn sched_setscheduler(pid: libc::pid_t, policy: c_int, param: *const libc::sched_param) -> c_int;
    fn sched_getscheduler(pid: libc::pid_t) -> c_int;
    fn sched_setparam(pid: libc::pid_t, param: *const libc::sched_param) -> c_int;
    fn sched_getparam(pid: libc::pid_t, param: *mut libc::sched_param) -> c_int;
    fn sched_setaffinity(pid: libc::pid_t, size: usize, set: *const libc::cpu_set_t) -> c_int;
    fn sched_getaffinity(pid: libc::pid_t, size: usize, set: *mut libc::cpu_set_t) -> c_int;
    fn sched_rr_get_interval(pid: libc::pid_t, ts: *mut libc::timespec) -> c_int;
    fn setpriority(which: libc::__priority_which_t, who: libc::id_t, prio: c_int) -> c_int;
    fn getpriority(which: libc::__priority_which_t, who: libc::id_t) -> c_int;
    fn nice(incr: c_int) -> c_int;
    fn clock_gettime(clock: libc::clockid_t, ts: *mut libc::timespec) -> c_int;
    fn clock_getres(clock: libc::clockid_t, ts: *mut libc::timespec) -> c_int;
    fn getrusage(who: c_int, usage: *mut libc::rusage) -> c_int;
    fn recvmmsg(fd: c_int, vec: *mut libc::mmsghdr, vlen: libc::c_uint, flags: c_int, timeout: *mut libc::timespec) -> c_int;
    fn sendmmsg(fd: c_int, vec: *mut libc::mmsghdr, vlen: libc::c_uint, flags: c_int) -> c_int;
    fn pread(fd: c_int, buf: *mut c_void, len: usize, off: libc::off_t) -> isize;
    fn pwrite(fd: c_int, buf: *const c_void, len: usize, off: libc::off_t) -> isize;
    fn fsync(fd: c_int) -> c_int;
    fn fdatasync(fd: c_int) -> c_int;
    fn msync(addr: *mut c_void, len: usize, flags: c_int) -> c_int;
    fn getaddrinfo(node: *const c_char, service: *const c_char, hints: *const libc::addrinfo,
                   res: *mut *mut libc::addrinfo) -> c_int;
    fn getnameinfo(sa: *const libc::sockaddr, salen: libc::socklen_t, host: *mut c_char, hostlen: libc::socklen_t,
                   serv: *mut c_char, servlen: libc::socklen_t, flags: c_int) -> c_int;
    fn gethostbyname(name: *const c_char) -> *mut libc::hostent;
    fn gethostbyname2(name: *const c_char, af: c_int) -> *mut libc::hostent;
    fn gethostbyaddr(addr: *const c_void, len: libc::socklen_t, af: c_int) -> *mut libc::hostent;
    fn gethostbyname_r(name: *const c_char, ret: *mut libc::hostent, buf: *mut c_char, buflen: usize,
                       result: *mut *mut libc::hostent, h_errnop: *mut c_int) -> c_int;
    fn gethostbyname2_r(name: *const c_char, af: c_int, ret: *mut libc::hostent, buf: *mut c_char, buflen: usize,
                        result: *mut *mut libc::hostent, h_errnop: *mut c_int) -> c_int;
    fn gethostbyaddr_r(addr: *const c_void, len: libc::socklen_t, af: c_int, ret: *mut libc::hostent,
                       buf: *mut c_char, buflen: usize, result: *mut *mut libc::hostent, h_errnop: *mut c_int) -> c_int;
    fn __libc_start_main(main: MainFn, argc: c_int, argv: *mut *mut c_char, init: usize, fini: usize,
                         rtld_fini: usize, stack_end: *mut c_void) -> c_int;
    fn pthread_create(t: *mut libc::pthread_t, attr: *const libc::pthread_attr_t, start: StartFn,
                      arg: *mut c_void) -> c_int;
    fn pthread_join(t: libc::pthread_t, ret: *mut *mut c_void) -> c_int;
    fn pthread_tryjoin_np(t: libc::pthread_t, ret: *mut *mut c_void) -> c_int;
    fn pthread_clockjoin_np(t: libc::pthread_t, ret: *mut *mut c_void, clock: libc::clockid_t,
                            abstime: *const libc::timespec) -> c_int;
    fn pthread_detach(t: libc::pthread_t) -> c_int;
    fn pthread_kill(t: libc::pthread_t, sig: c_int) -> c_int;
    fn pthread_sigqueue(t: libc::pthread_t, sig: c_int, value: libc::sigval) -> c_int;
    fn sigqueue(pid: libc::pid_t, sig: c_int, value: libc::sigval) -> c_int;
    fn kill(pid: libc::pid_t, sig: c_int) -> c_int;
    fn pthread_exit(ret: *mut c_void) -> ();
    fn pthread_getattr_np(t: libc::pthread_t, attr: *mut libc::pthread_attr_t) -> c_int;
    fn pthread_setname_np(t: libc::pthread_t, name: *const c_char) -> c_int;
    fn pthread_getname_np(t: libc::pthread_t, name: *mut c_char, len: usize) -> c_int;
    fn pthread_once(once: *mut libc::pthread_once_t, init: extern "C" fn()) -> c_int;
    fn pthread_cancel(t: libc::pthread_t) -> c_int;
    fn pthread_setcancelstate(state: c_int, old: *mut c_int) -> c_int;
    fn pthread_setcanceltype(kind: c_int, old: *mut c_int) -> c_int;
    fn pthread_testcancel() -> ();
    fn msgrcv(id: c_int, msg: *mut c_void, size: usize, kind: libc::c_long, flags: c_int) -> isize;
    fn msgsnd(id: c_int, msg: *const c_void, size: usize, flags: c_int) -> c_int;
    fn sched_yield() -> c_int;
    fn pthread_sigmask(how: c_int, set: *const libc::sigset_t, old: *mut libc::sigset_t) -> c_int;
    fn sigprocmask(how: c_int, set: *const libc::sigset_t, old: *mut libc::sigset_t) -> c_int;
    fn sigaction(sig: c_int, act: *const libc::sigaction, old: *mut libc::sigaction) -> c_int;
    fn signal(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t;
    fn sleep(secs: libc::c_uint) -> libc::c_uint;
    fn usleep(usecs: libc::useconds_t) -> c_int;
    fn nanosleep(req: *const libc::timespec, rem: *mut libc::timespec) -> c_int;
    fn clock_nanosleep(clock: libc::clockid_t, flags: c_int, req: *const libc::timespec,
                       rem: *mut libc::timespec) -> c_int;
    fn vfork() -> libc::pid_t;
    fn execve(path: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int;
    fn execv(path: *const c_char, argv: *const *const c_char) -> c_int;
    fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int;
    fn execvpe(file: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int;
    fn fexecve(fd: c_int, argv: *const *const c_char, envp: *const *const c_char) -> c_int;
    fn poll(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int) -> c_int;
    fn ppoll(fds: *mut libc::pollfd, n: libc::nfds_t, ts: *const libc::timespec, mask: *const libc::sigset_t) -> c_int;
    fn select(n: c_int, r: *mut libc::fd_set, w: *mut libc::fd_set, e: *mut libc::fd_set, tv: *mut libc::timeval) -> c_int;
    fn pselect(n: c_int, r: *mut libc::fd_set, w: *mut libc::fd_set, e: *mut libc::fd_set, ts: *const libc::timespec,
               mask: *const libc::sigset_t) -> c_int;
    fn epoll_wait(epfd: c_int, events: *mut libc::epoll_event, max: c_int, timeout: c_int) -> c_int;
    fn epoll_pwait(epfd: c_int, events: *mut libc::epoll_event, max: c_int, timeout: c_int,
                   mask: *const libc::sigset_t) -> c_int;
    fn read(fd: c_int, buf: *mut c_void, len: usize) -> isize;
    fn write(fd: c_int, buf: *const c_void, len: usize) -> isize;
    fn readv(fd: c_int, iov: *const libc::iovec, cnt: c_int) -> isize;
    fn writev(fd: c_int, iov: *const libc::iovec, cnt: c_int) -> isize;
    fn close(fd: c_int) -> c_int;
    fn dup(old: c_int) -> c_int;
    fn dup2(old: c_int, new: c_int) -> c_int;
    fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int;
    fn pipe(fds: *mut c_int) -> c_int;
    fn pipe2(fds: *mut c_int, flags: c_int) -> c_int;
    fn fclose(f: *mut libc::FILE) -> c_int;
    fn eventfd(init: c_uint, flags: c_int) -> c_int;
    fn fcntl64(fd: c_int, cmd: c_int, arg: usize) -> c_int;
    fn flock(fd: c_int, op: c_int) -> c_int;
    fn lockf(fd: c_int, cmd: c_int, len: libc::off_t) -> c_int;
    fn posix_spawn(pid: *mut libc::pid_t, path: *const c_char, actions: *const libc::posix_spawn_file_actions_t,
                   attr: *const libc::posix_spawnattr_t, argv: *const *mut c_char, envp: *const *mut c_char) -> c_int;
    fn posix_spawnp(pid: *mut libc::pid_t, file: *const c_char, actions: *const libc::posix_spawn_file_actions_t,
                    attr: *const libc::posix_spawnattr_t, argv: *const *mut c_char, envp: *const *mut c_char) -> c_int;
    fn popen(cmd: *const c_char, mode: *const c_char) -> *mut libc::FILE;
    fn ioctl(fd: c_int, request: libc::c_ulong, arg: usize) -> c_int;
    fn timerfd_create(clock: c_int, flags: c_int) -> c_int;
    fn signalfd(fd: c_int, mask: *const libc::sigset_t, flags: c_int) -> c_int;
    fn freopen(path: *const c_char, mode: *const c_char, f: *mut libc::FILE) -> *mut libc::FILE;
    fn freopen64(path: *const c_char, mode: *const c_char, f: *mut libc::FILE) -> *mut libc::FILE;
    fn recv(fd: c_int, buf: *mut c_void, len: usize, flags: c_int) -> isize;
    fn recvfrom(fd: c_int, buf: *mut c_void, len: usize, flags: c_int, addr: *mut libc::sockaddr,
                alen: *mut libc::socklen_t) -> isize;
    fn recvmsg(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> isize;
    fn send(fd: c_int, buf: *const c_void, len: usize, flags: c_int) -> isize;
    fn sendto(fd: c_int, buf: *const c_void, len: usize, flags: c_int, addr: *const libc::sockaddr,
              alen: libc::socklen_t) -> isize;
    fn sendmsg(fd: c_int, msg: *const libc::msghdr, flags: c_int) -> isize;
    fn accept4(fd: c_int, addr: *mut libc::sockaddr, alen: *mut libc::socklen_t, flags: c_int) -> c_int;
    fn connect(fd: c_int, addr: *const libc::sockaddr, alen: libc::socklen_t) -> c_int;
    fn socket(domain: c_int, ty: c_int, proto: c_int) -> c_int;
    fn socketpair(domain: c_int, ty: c_int, proto: c_int, fds: *mut c_int) -> c_int;
    fn setsockopt(fd: c_int, level: c_int, name: c_int, val: *const c_void, len: libc::socklen_t) -> c_int;
    fn pthread_mutex_lock(m: *mut libc::pthread_mutex_t) -> c_int;
    fn pthread_mutex_trylock(m: *mut libc::pthread_mutex_t) -> c_int;
    fn pthread_mutex_clocklock(m: *mut libc::pthread_mutex_t, clock: libc::clockid_t,
                               abstime: *const libc::timespec) -> c_int;
    fn pthread_mutex_unlock(m: *mut libc::pthread_mutex_t) -> c_int;
    fn pthread_cond_wait(c: *mut libc::pthread_cond_t, m: *mut libc::pthread_mutex_t) -> c_int, "GLIBC_2.3.2";
    fn pthread_cond_timedwait(c: *mut libc::pthread_cond_t, m: *mut libc::pthread_mutex_t,
                              abstime: *const libc::timespec) -> c_int, "GLIBC_2.3.2";
    fn pthread_cond_clockwait(c: *mut libc::pthread_cond_t, m: *mut libc::pthread_mutex_t, clock: libc::clockid_t,
                              abstime: *const libc::timespec) -> c_int;
    fn pthread_cond_signal(c: *mut libc::pthread_cond_t) -> c_int, "GLIBC_2.3.2";
    fn pthread_cond_broadcast(c: *mut libc::pthread_cond_t) -> c_int, "GLIBC_2.3.2";
    fn pthread_cond_destroy(c: *mut libc::pthread_cond_t) -> c_int, "GLIBC_2.3.2";
    fn pthread_rwlock_rdlock(l: *mut libc::pthread_rwlock_t) -> c_int;
    fn pthread_rwlock_tryrdlock(l: *mut libc::pthread_rwlock_t) -> c_int;
    fn pthread_rwlock_clockrdlock(l: *mut libc::pthread_rwlock_t, clock: libc::clockid_t,
                                  abstime: *const libc::timespec) -> c_int;
    fn pthread_rwlock_wrlock(l: *mut libc::pthread_rwlock_t) -> c_int;
    fn pthread_rwlock_trywrlock(l: *mut libc::pthread_rwlock_t) -> c_int;
    fn pthread_rwlock_clockwrlock(l: *mut libc::pthread_rwlock_t, clock: libc::clockid_t,
                                  abstime: *const libc::timespec) -> c_int;
    fn pthread_rwlock_unlock(l: *mut libc::pthread_rwlock_t) -> c_int;
    fn pthread_spin_lock(l: *mut libc::pthread_spinlock_t) -> c_int;
    fn pthread_barrier_wait(b: *mut libc::pthread_barrier_t) -> c_int;
    fn pthread_barrier_destroy(b: *mut libc::pthread_barrier_t) -> c_int;
    fn sem_wait(s: *mut libc::sem_t) -> c_int;
    fn sem_trywait(s: *mut libc::sem_t) -> c_int;
    fn sem_clockwait(s: *mut libc::sem_t, clock: libc::clockid_t, abstime: *const libc::timespec) -> c_int;
    fn sem_post(s: *mut libc::sem_t) -> c_int;
    fn fork() -> libc::pid_t;
    fn setuid(uid: libc::uid_t) -> c_int;
    fn setgid(gid: libc::gid_t) -> c_int;
    fn seteuid(uid: libc::uid_t) -> c_int;
    fn setegid(gid: libc::gid_t) -> c_int;
    fn setreuid(ruid: libc::uid_t, euid: libc::uid_t) -> c_int;
    fn setregid(rgid: libc::gid_t, egid: libc::gid_t) -> c_int;
    fn setresuid(ruid: libc::uid_t, euid: libc::uid_t, suid: libc::uid_t) -> c_int;
    fn setresgid(rgid: libc::gid_t, egid: libc::gid_t, sgid: libc::gid_t) -> c_int;
    fn setgroups(n: usize, list: *const libc::gid_t) -> c_int;
    fn system(cmd: *const c_char) -> c_int;
    fn pclose(f: *mut libc::FILE) -> c_int;
    fn fgets(buf: *mut c_char, n: c_int, f: *mut libc::FILE) -> *mut c_char;
    fn fgets_unlocked(buf: *mut c_char, n: c_int, f: *mut libc::FILE) -> *mut c_char;
    fn __fgets_chk(buf: *mut c_char, size: usize, n: c_int, f: *mut libc::FILE) -> *mut c_char;
    fn __fgets_unlocked_chk(buf: *mut c_char, size: usize, n: c_int, f: *mut libc::FILE) -> *mut c_char;
    fn fread(p: *mut c_void, size: usize, count: usize, f: *mut libc::FILE) -> usize;
    fn fread_unlocked(p: *mut c_void, size: usize, count: usize, f: *mut libc::FILE) -> usize;
    fn __fread_chk(p: *mut c_void, plen: usize, size: usize, count: usize, f: *mut libc::FILE) -> usize;
    fn __fread_unlocked_chk(p: *mut c_void, plen: usize, size: usize, count: usize, f: *mut libc::FILE) -> usize;
    fn __getdelim(line: *mut *mut c_char, n: *mut usize, delim: c_int, f: *mut libc::FILE) -> isize;
    fn fgetc(f: *mut libc::FILE) -> c_int;
    fn fgetc_unlocked(f: *mut libc::FILE) -> c_int;
    fn getchar() -> c_int;
    fn getchar_unlocked() -> c_int;
    fn __uflow(f: *mut libc::FILE) -> c_int;
    fn __underflow(f: *mut libc::FILE) -> c_int;
    fn flockfile(f: *mut libc::FILE) -> ();
    fn ftrylockfile(f: *mut libc::FILE) -> c_int;
    fn funlockfile(f: *mut libc::FILE) -> ();
    fn fflush(f: *mut libc::FILE) -> c_int;
    fn fflush_unlocked(f: *mut libc::FILE) -> c_int;
    fn __overflow(f: *mut libc::FILE, ch: c_int) -> c_int;
    fn fwrite(p: *const c_void, size: usize, count: usize, f: *mut libc::FILE) -> usize;
    fn fwrite_unlocked(p: *const c_void, size: usize, count: usize, f: *mut libc::FILE) -> usize;
    fn fputs(s: *const c_char, f: *mut libc::FILE) -> c_int;
    fn fputs_unlocked(s: *const c_char, f: *mut libc::FILE) -> c_int;
    fn puts(s: *const c_char) -> c_int;
    fn fputc(c: c_int, f: *mut libc::FILE) -> c_int;
    fn putc(c: c_int, f: *mut libc::FILE) -> c_int;
    fn fputc_unlocked(c: c_int, f: *mut libc::FILE) -> c_int;
    fn putc_unlocked(c: c_int, f: *mut libc::FILE) -> c_int;
    fn putchar(c: c_int) -> c_int;
    fn putchar_unlocked(c: c_int) -> c_int;
    fn vfprintf(f: *mut libc::FILE, fmt: *const c_char, ap: *mut c_void) -> c_int;
    fn __vfprintf_chk(f: *mut libc::FILE, flag: c_int, fmt: *const c_char, ap: *mut c_void) -> c_int;
    fn vdprintf(fd: c_int, fmt: *const c_char, ap: *mut c_void) -> c_int;
    fn vfscanf(f: *mut libc::FILE, fmt: *const c_char, ap: *mut c_void) -> c_int;
    fn __isoc99_vfscanf(f: *mut libc::FILE, fmt: *const c_char, ap: *mut c_void) -> c_int;
    fn __vdprintf_chk(fd: c_int, flag: c_int, fmt: *const c_char, ap: *mut c_void) -> c_int;
}
