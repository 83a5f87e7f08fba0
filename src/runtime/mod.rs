//! The runtime: workers that run the program's threads as coroutines, with their own glibc identities,
//! on lazily committed stacks, woken by the workers' own timers.
//!
//! | module | job |
//! |---|---|
//! | **scheduling** | |
//! | [`scheduler`] | run queues, work stealing, lazy worker start, timers hand-off |
//! | [`worker`] | the loop each worker OS thread runs; "which coroutine am I?" via GS |
//! | [`task`] | one program thread: coroutine, park/wake state machine, join state |
//! | [`timers`] | deadlines for sleeps and timed waits, fired by the workers themselves |
//! | [`park`] | the one way a coroutine waits: a typed wait reason, interruptions by signals and cancellation; the parking lot's task parker |
//! | [`wait_reason`] | why a coroutine waits: the typed reason every park carries |
//! | [`parking_lot`] | queues of waiters keyed by an address in the program's memory, over a parker seam (a leaf; its thread parker sleeps on a futex) |
//! | [`monitor`] | notices workers stalled by one coroutine, brings in spare workers (leaves: `stall`, `wake`) |
//! | [`convoy`] | notices a lock convoy a second worker only slows down (a leaf; the worker then sits out) |
//! | [`offload`] | helper OS threads for calls that must really block in the kernel |
//! | [`worker_call`] | calls made on the worker that may wait in the kernel (FIFO open, tcdrain, mq): aborted onto a helper thread |
//! | [`os_thread`] | starting the runtime's own OS threads (workers, monitor, helpers) with the runtime's mask |
//! | **threads** | |
//! | [`thread`] | pthread semantics on tasks: create, exit, join, detach, registry |
//! | [`thread_attr`] | what a `pthread_attr_t` asks for, and whether a coroutine can give it |
//! | [`proc_task`] | `/proc/self/task/TID` of a coroutine: its worker's entry, its own `comm` and `stat` |
//! | [`thread_pidfd`] | `pidfd_open(tid, PIDFD_THREAD)` of a coroutine: a real pidfd of a stand-in OS thread that exits with it; the signals sent through it |
//! | [`cputime`] | each thread's CPU time, charged at its switches (`cputime::account`, a leaf) |
//! | [`sched_attr`] | each thread's policy, priority, nice value, affinity, as the kernel keeps them (leaf: `state`) |
//! | [`identity`] | a glibc thread descriptor and static TLS per coroutine, learned from glibc itself |
//! | [`stack`] | coroutine stacks: arenas, guards, reuse |
//! | [`signals`] | all signal policy: the program's handlers behind a wrapper, masks, routing and the held set, temporary masks and sigwait, faults and the stack-overflow report (leaves for the core: `set`, `state`, `handlers`, `held`, `accepted`, `overflow`) |
//! | [`preempt`] | makes a coroutine computing past its time slice yield (signal + trampoline; leaf: `state`) |
//! | [`cancel`] | pthread cancellation of coroutines: requests, cancellation points, glibc's unwinding |
//! | [`cancel_state`] | a coroutine's cancellation state (armed by its parks, acted on by glibc's unwind) and a plain thread's pokeable waits |
//! | [`once`] | pthread_once in glibc's encoding, for coroutines and plain threads |
//! | [`sync`] | pthread mutexes, conditions, rwlocks, barriers, semaphores, futexes that park |
//! | [`lock`] | the runtime's own small mutex |
//! | [`alloc`] | the runtime's heap: glibc's own malloc, never the program's |
//! | [`libc_malloc`] | glibc's malloc by its `__libc_*` names |
//! | [`lifecycle`] | whether the runtime runs in this process (not before start-up, not in a forked child) |
//! | **file descriptors** | |
//! | [`io`] | fds for coroutines: the fd table, the netpoller, cooperative calls (sockets, files, stdio) |
//! | [`child`] | waiting for child processes on a pidfd or a helper thread |
//! | [`dns`] | name lookups on helper threads, into copies of their own |
//! | **around** | |
//! | [`stats`] | counters every module may count in (a leaf); `stats::report` writes the ASYNCSHIM_STATS report |
//! | [`sys`] | the only door to the kernel: raw system calls (one OS facility per file), FS/GS, clocks |
//! | [`unwind`] | exact call stacks of parked and stuck threads, `asyncshim stacks`, what gdb reads |

pub mod alloc;
pub mod cancel;
pub mod cancel_state;
pub mod child;
pub mod convoy;
pub mod cputime;
pub mod dns;
pub mod identity;
pub mod io;
pub mod lazy;
pub mod libc_malloc;
pub mod lifecycle;
pub mod lock;
pub mod monitor;
pub mod offload;
pub mod once;
pub mod os_thread;
pub mod park;
pub mod parking_lot;
pub mod preempt;
pub mod proc_task;
pub mod run_ring;
pub mod sched_attr;
pub mod scheduler;
pub mod signals;
pub mod stack;
pub mod stats;
pub mod sync;
pub mod sys;
pub mod task;
pub mod thread;
pub mod thread_attr;
pub mod thread_pidfd;
pub mod timers;
pub mod unwind;
pub mod wait_reason;
pub mod worker;
pub mod worker_call;

use crate::config::{self, Config};
use identity::Tcb;
use std::ffi::{c_char, c_int, c_void};
use std::sync::OnceLock;
use sys::fsgs;
use sys::syscall::Errno;
use task::Wake;

pub use lifecycle::{forked_child, running};

type MainFn = extern "C" fn(c_int, *mut *mut c_char, *mut *mut c_char) -> c_int;

struct MainArgs {
    main: MainFn,
    argc: c_int,
    argv: *mut *mut c_char,
    envp: *mut *mut c_char,
}

static MAIN_ARGS: OnceLock<MainArgsCell> = OnceLock::new();
struct MainArgsCell(MainArgs);
// SAFETY: written once before any worker starts, then only read.
unsafe impl Sync for MainArgsCell {}
// SAFETY: as above.
unsafe impl Send for MainArgsCell {}

fn rlimit_stack() -> usize {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: valid out-pointer.
    unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut rl) };
    if rl.rlim_cur == libc::RLIM_INFINITY { 32 << 20 } else { (rl.rlim_cur as usize).max(64 << 10) }
}

/// Runs the program's `main` as the first coroutine on this (the initial) thread, which becomes worker 0.
/// Returns only if the runtime cannot or must not start; the caller then runs `main` plainly.
pub fn run_main(main: MainFn, argc: c_int, argv: *mut *mut c_char, envp: *mut *mut c_char) -> Option<c_int> {
    let config = Config::from_env();
    if !config.enabled {
        return None;
    }
    fsgs::init(config.force_arch_prctl);
    if let Err(reason) = identity::init() {
        identity::refuse(&reason);
        return None;
    }
    let main_tcb = Tcb::current();
    io::fd::grow_table_early();
    let default_stack = config.stack_size.unwrap_or_else(rlimit_stack);
    let Ok(config) = config::set(config) else { return None };
    let sched = scheduler::init(config.workers, config.max_spares, config.handoff_grace_ns)?;
    sync::cond::init(config.cond_morph, config.workers);
    thread::init();
    thread_attr::set_default_stack(default_stack);
    let _ = MAIN_ARGS.set(MainArgsCell(MainArgs { main, argc, argv, envp }));
    // The seams the leaves that start threads need, before anything can start one.
    os_thread::set_signal_setup(signals::set::runtime_thread_mask(), signals::setxid::wrap_glibc_setxid);
    monitor::init();
    lifecycle::started();
    signals::install();
    cputime::init();
    preempt::init(config.slice_ns);
    stats::report::init(config.stats.as_deref());
    if config.stats.is_some() {
        // The report signal is answered by the monitor, even in a program with one thread.
        monitor::ensure_started();
    }
    // SAFETY: the handlers only touch atomics and the GS base.
    unsafe { libc::pthread_atfork(Some(atfork_prepare), None, Some(atfork_child)) };

    // Worker 0's own context needs a TCB of its own: the initial TCB now belongs to the main coroutine.
    let Some(own) = identity::allocate(sys::getpid()) else {
        identity::refuse("cannot allocate a thread control block");
        return None;
    };
    let main_stack_size = rlimit_stack().max(default_stack);
    let Some(slot) = stack::class_for(main_stack_size, 0).and_then(|c| stack::pool().take(c)) else {
        identity::refuse("cannot reserve the main stack");
        return None;
    };
    let name = thread_name_of_this_os_thread();
    let main_task = thread::main_task(main_tcb, &name);
    thread::prepare(
        main_task,
        stack::CoStack::in_slot(slot, slot.end, main_stack_size),
        main_trampoline,
        core::ptr::null_mut(),
    );
    main_task.set_runnable();
    let w0 = &sched.workers[0];
    // SAFETY: `own` was just initialised as a TCB; from here on this thread's own context runs on it.
    unsafe { fsgs::set_fs_base(own.0) };
    worker::enter(w0, main_tcb.0);
    sched.push_local(w0, main_task);
    worker::run(sched, w0)
}

extern "C" fn main_trampoline(_: *mut c_void) -> *mut c_void {
    let a = &MAIN_ARGS.get().expect("main args").0;
    let code = (a.main)(a.argc, a.argv, a.envp);
    // SAFETY: returning from main means exit(main's value), as in __libc_start_call_main.
    unsafe { libc::exit(code) }
}

fn thread_name_of_this_os_thread() -> Vec<u8> {
    let mut buf = [0u8; 17];
    // SAFETY: PR_GET_NAME writes at most 16 bytes.
    unsafe { libc::prctl(libc::PR_GET_NAME, buf.as_mut_ptr()) };
    buf.iter().take_while(|&&b| b != 0).copied().collect()
}

extern "C" fn atfork_prepare() {
    // The child inherits every description and may change their flags.
    io::fd::sharing_with_child();
}

extern "C" fn atfork_child() {
    // The child has only this OS thread: it carries on as a plain thread, every hook passing through.
    lifecycle::forked();
    // The child's thread has the forking thread's scheduling attributes (reset-on-fork rules applied).
    if let Some(me) = worker::current_task() {
        sched_attr::apply_here(&me, true);
    }
    worker::forget_rseq_after_fork();
    identity::register_robust_list_here();
    io::closing::close_hidden_in_child();
    thread_pidfd::forget_in_child();
    sync::kernel_wait::forget_in_child();
    // SAFETY: clearing GS makes this thread "not a worker"; the worker records stay valid but unused.
    unsafe { fsgs::set_gs_base(0) };
}

pub use park::{sleep_until, sleep_until_interruptible, yield_now};

/// Whether the caller is a coroutine, for the exported probe.
pub fn caller_is_coroutine() -> bool {
    worker::current_task().is_some()
}

/// A call with no file descriptor to wait on (System V message queues), made to wait cooperatively:
/// `attempt` is the non-blocking form; while it fails with `would_block` the coroutine sleeps between
/// tries (50 µs doubling to 5 ms). A handled signal ends the wait with EINTR (these calls are never
/// restarted), and so does a cancellation request (the hook acts on it).
pub fn poll_call<R>(would_block: Errno, mut attempt: impl FnMut() -> Result<R, Errno>) -> Result<R, Errno> {
    let mut pause = 50_000u64;
    loop {
        match attempt() {
            Err(e) if e == would_block => {}
            r => return r,
        }
        if sleep_until_interruptible(sys::time::monotonic_ns() + pause) == Wake::Interrupted {
            return Err(Errno(libc::EINTR));
        }
        pause = (pause * 2).min(5_000_000);
    }
}
