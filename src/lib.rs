//! asyncshim: `LD_PRELOAD=libasyncshim.so ./program` runs the program's threads as coroutines on a few
//! worker OS threads (M:N), each coroutine keeping its own glibc thread identity.
//!
//! - [`hooks`]: the exported C functions (one file per family); they only translate C calls into runtime
//!   calls, and pass through to libc when the caller is not a coroutine.
//! - [`runtime`]: scheduler, workers, tasks, thread identity, stacks, timers.
//! - [`real`]: the libc functions behind the hooks.
//! - [`config`]: the environment, read once at start-up; [`env_values`]: the grammar of the values the
//!   launcher sets and the library reads, shared with the launcher.

// Every unsafe block says in one line why it is sound.
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod config;
pub mod env_values;
#[cfg(not(test))]
pub mod hooks;
pub mod real;
pub mod runtime;

/// The runtime's heap: glibc's malloc, without giving coroutines a malloc thread cache they never asked for.
#[global_allocator]
static ALLOCATOR: runtime::alloc::RuntimeAlloc = runtime::alloc::RuntimeAlloc;

/// Resolves the real functions before `main` (and before most hooks can run).
#[used]
#[unsafe(link_section = ".init_array")]
static CONSTRUCTOR: extern "C" fn() = constructor;

extern "C" fn constructor() {
    real::resolve_all();
    // The variadic exec hooks may run in a vfork child, where dlsym must not.
    for which in 0..3 {
        real::execl_family_addr(which);
    }
    let _ = real::execveat();
}
