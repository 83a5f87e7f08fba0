//! The real libc functions behind every hook, looked up once with `dlsym(RTLD_NEXT)` in the library's
//! constructor (lazily if a hook runs before it). The runtime uses the same table whenever it needs a libc
//! function that asyncshim also exports, so it never calls its own hooks by accident.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct RealFn {
    addr: AtomicUsize,
    name: &'static str,
}

impl RealFn {
    pub const fn new(name: &'static str) -> RealFn {
        RealFn { addr: AtomicUsize::new(0), name }
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
        // SAFETY: dlsym with a valid handle and name.
        let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) } as usize;
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
    ($( fn $name:ident($($arg:ident: $t:ty),* $(,)?) -> $ret:ty; )*) => {
        #[allow(non_upper_case_globals)]
        mod slot {
            $( pub static $name: super::RealFn = super::RealFn::new(concat!(stringify!($name), "\0")); )*
        }
        $(
            /// The libc function of this name (not asyncshim's hook).
            ///
            /// # Safety
            /// As for the libc function.
            #[inline(always)]
            pub unsafe fn $name($($arg: $t),*) -> $ret {
                // SAFETY: the symbol has this C signature in glibc.
                let f: unsafe extern "C" fn($($t),*) -> $ret = unsafe { core::mem::transmute(slot::$name.addr()) };
                // SAFETY: the caller upholds the libc function's contract.
                unsafe { f($($arg),*) }
            }
        )*
        /// Resolves every entry now (called from the constructor).
        pub fn resolve_all() {
            $( slot::$name.addr(); )*
        }
    };
}

type StartFn = extern "C" fn(*mut c_void) -> *mut c_void;
type MainFn = extern "C" fn(c_int, *mut *mut c_char, *mut *mut c_char) -> c_int;

declare_real! {
    fn __libc_start_main(main: MainFn, argc: c_int, argv: *mut *mut c_char, init: usize, fini: usize,
                         rtld_fini: usize, stack_end: *mut c_void) -> c_int;
    fn pthread_create(t: *mut libc::pthread_t, attr: *const libc::pthread_attr_t, start: StartFn,
                      arg: *mut c_void) -> c_int;
    fn pthread_join(t: libc::pthread_t, ret: *mut *mut c_void) -> c_int;
    fn pthread_tryjoin_np(t: libc::pthread_t, ret: *mut *mut c_void) -> c_int;
    fn pthread_timedjoin_np(t: libc::pthread_t, ret: *mut *mut c_void, abstime: *const libc::timespec) -> c_int;
    fn pthread_clockjoin_np(t: libc::pthread_t, ret: *mut *mut c_void, clock: libc::clockid_t,
                            abstime: *const libc::timespec) -> c_int;
    fn pthread_detach(t: libc::pthread_t) -> c_int;
    fn pthread_kill(t: libc::pthread_t, sig: c_int) -> c_int;
    fn pthread_exit(ret: *mut c_void) -> ();
    fn pthread_getattr_np(t: libc::pthread_t, attr: *mut libc::pthread_attr_t) -> c_int;
    fn pthread_setname_np(t: libc::pthread_t, name: *const c_char) -> c_int;
    fn pthread_getname_np(t: libc::pthread_t, name: *mut c_char, len: usize) -> c_int;
    fn pthread_once(once: *mut libc::pthread_once_t, init: extern "C" fn()) -> c_int;
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
    fn fork() -> libc::pid_t;
}
